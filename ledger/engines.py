"""Which library computes the Ed25519 verification equation (docs/adr/0021-libsodium-engine.md; issue 11).

:meth:`ledger.keys.PublicKey.verify` runs StoneTrail's own pre-checks (DESIGN.md §2, docs/adr/0005 and 0019), then
one RFC 8032 §5.1.7 equation through an *engine*:

* ``"libsodium"`` (the default): ``crypto_sign_open`` through PyNaCl's low-level bindings;
* ``"cryptography"``: OpenSSL through ``cryptography``.

Both engines reach the same verdict and the same error code on every input (the ADR says why; tests/test_engines.py
checks it on the 914 CCTV vectors, forged signatures and every test ledger). The engine is chosen per thread or
task with :func:`signature_engine` (a :mod:`contextvars` variable): a new thread starts on :data:`DEFAULT_ENGINE`;
a worker process, which may inherit its parent's context or not depending on how it was started, calls
:func:`signature_engine` itself.

libsodium's released branch (1.0.18 to 1.0.21, ``src/libsodium/crypto_sign/ed25519/ref10/open.c``) compares the
encoding of [S]B - [k]A with R's bytes, as OpenSSL does (cofactorless); its development branch tests whether
R - ([S]B - [k]A) has small order (cofactored), which would accept an R with a small-order component.
:data:`LIBSODIUM_COFACTORED` is the answer of the linked library to one CCTV vector that tells them apart; when it
is true, ``ledger.keys`` puts the full R point check in front of the libsodium equation (ADR 0019).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from typing import Final

from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

from .errors import InputError

__all__ = [
    "DEFAULT_ENGINE",
    "ENGINES",
    "LIBSODIUM_COFACTORED",
    "current_engine",
    "engine_context",
    "libsodium_equation",
    "signature_engine",
]

#: The engine names, fastest first.
ENGINES: Final[tuple[str, ...]] = ("libsodium", "cryptography")
#: The engine of a thread or process that chose none.
DEFAULT_ENGINE: Final = "libsodium"

_CURRENT: Final[ContextVar[str]] = ContextVar("stonetrail_signature_engine", default=DEFAULT_ENGINE)

#: CCTV ed25519 vector 336 (flags low_order_component_R, low_order_residue): (key, signature, message) where the key
#: is a prime-order point and R a prime-order point plus one of order 8, so that the cofactored equation holds and
#: the cofactorless one fails.
_COFACTOR_PROBE: Final = (
    bytes.fromhex("ef75b20e7540e3dff77404193652ba2bd13df99c1508eee1515e27ae25f28076"),
    bytes.fromhex("5ae36d433a7bd0efb150b6b04610d1986e3044c46b6ad69bae17aaf76b608d21"
                  "fd3eacd8d7a35408e669bbf20fa791fc50be2a753015c51a7ff9554c4c540902"),
    b"ed25519vectors 9",
)


def current_engine() -> str:
    """The name of the engine :meth:`ledger.keys.PublicKey.verify` uses in this context (one of :data:`ENGINES`)."""
    return _CURRENT.get()


@contextmanager
def signature_engine(name: str) -> Iterator[str]:
    """Use engine ``name`` for every signature verified in this thread or task until the block ends, then restore
    the previous one (blocks nest). Yields ``name``.

    Raises:
        InputError: ``input.engine`` if ``name`` is not one of :data:`ENGINES` (checked before the block runs).
    """
    if not isinstance(name, str) or name not in ENGINES:
        want = ", ".join(ENGINES)
        raise InputError(f"unknown signature engine {name!r:.40}; want one of {want}", code="input.engine")
    token = _CURRENT.set(name)
    try:
        yield name
    finally:
        _CURRENT.reset(token)


def engine_context(name: str | None) -> AbstractContextManager[object]:
    """:func:`signature_engine` for ``name``, or for None a block that keeps the current engine (the API's
    ``engine=None``: the caller's choice, else :data:`DEFAULT_ENGINE`). Raises InputError for an unknown name."""
    return nullcontext() if name is None else signature_engine(name)


def libsodium_equation(public_key: bytes, signature: bytes, message: bytes) -> bool:
    """Whether libsodium's ``crypto_sign_open`` accepts the 64-byte ``signature`` over ``message`` under the 32-byte
    ``public_key`` (its own checks, then the RFC 8032 §5.1.7 equation; cofactorless unless
    :data:`LIBSODIUM_COFACTORED`). Never raises for a wrong signature."""
    try:
        crypto_sign_open(signature + message, public_key)
    except BadSignatureError:
        return False
    return True


#: Whether the linked libsodium accepts the probe, i.e. checks the cofactored equation (asked once, at import).
LIBSODIUM_COFACTORED: Final = libsodium_equation(*_COFACTOR_PROBE)
