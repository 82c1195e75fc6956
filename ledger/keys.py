"""Ed25519 keys, signed-note key IDs and verifier-key strings (DESIGN.md §2; the only importer of
``cryptography`` and ``nacl``).

Verification policy (docs/ed25519-policy.md). RFC 8032 leaves room for verifiers to disagree on edge cases
(the CCTV ed25519 vectors), and ``cryptography`` accepts a universal forgery under the identity key. So:

* a :class:`PublicKey` exists only for a 32-byte, canonically encoded point of the prime-order subgroup
  (libsodium ``crypto_core_ed25519_is_valid_point``): small-order, mixed-order, off-curve and non-canonical
  encodings are refused when the key is built;
* :meth:`PublicKey.verify` requires a 64-byte signature R || S with S < L, R canonically encoded, R not a
  small-order point and R in the prime-order subgroup, and only then runs the equation through the current engine
  (:mod:`ledger.engines`: libsodium or ``cryptography``, same verdict and code; docs/adr/0021).

With A and R both in the prime-order subgroup and S reduced, the cofactored and cofactorless verification
equations agree, so every RFC 8032 verifier that applies the same pre-checks reaches the same verdict.

Signed-note keys (https://c2sp.org/signed-note, golang.org/x/mod/sumdb/note)::

    key ID        = SHA-256(name || 0x0A || 0x01 || 32-byte public key)[:4]
    verifier key  = name "+" hex8(key ID) "+" base64(0x01 || 32-byte public key)
    signer key    = "PRIVATE+KEY+" name "+" hex8(key ID) "+" base64(0x01 || 32-byte seed)

A key name is non-empty UTF-8 with no Unicode space, no "+" and no control character. Base64 is standard
padded base64 (RFC 4648 §4), parsed strictly: it must re-encode to the same text.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, TypeVar

from nacl.bindings import crypto_core_ed25519_is_valid_point
from nacl.exceptions import UnavailableError

from ._ed25519 import GROUP_ORDER as _L
from ._ed25519 import SMALL_ORDER as _SMALL_ORDER
from ._ed25519 import is_canonical as _is_canonical
from .engines import DEFAULT_ENGINE, ENGINES, LIBSODIUM_COFACTORED, current_engine, libsodium_equation, signature_engine
from .errors import KeyFormatError, SignatureError

if TYPE_CHECKING:  # imported where used: a process that verifies through libsodium and loads no private key
    from cryptography.hazmat.primitives.asymmetric import ed25519  # never imports cryptography (~15 ms a start)

__all__ = [
    "DEFAULT_ENGINE",
    "ENGINES",
    "KEY_SIZE",
    "NOTE_ALG_ED25519",
    "SIGNATURE_SIZE",
    "NoteVerifierKey",
    "PrivateKey",
    "PublicKey",
    "current_engine",
    "format_note_signer_key",
    "is_valid_key_name",
    "note_key_id",
    "note_verifier_key",
    "parse_note_signer_key",
    "parse_verifier_key",
    "signature_engine",
    "verify_signature",
]

KEY_SIZE: Final = 32
SIGNATURE_SIZE: Final = 64
#: Signature type byte of Ed25519 in signed notes (C2SP signed-note, "Signature types").
NOTE_ALG_ED25519: Final = 0x01

_TEXT_PREFIX: Final = "ed25519:"
_MAX_PEM_BYTES: Final = 16 * 1024
_MAX_KEY_TEXT: Final = 4096

_T = TypeVar("_T")


def _in_prime_order_subgroup(enc: bytes) -> bool:
    """libsodium: on the curve, canonical, not small order, in the prime-order subgroup."""
    try:
        return bool(crypto_core_ed25519_is_valid_point(enc))
    except UnavailableError as exc:  # a minimal libsodium build: fail closed
        raise KeyFormatError("libsodium point check unavailable", code="key.check_unavailable") from exc


def _b64decode(text: str, what: str, code: str) -> bytes:
    """Strict standard base64: alphabet and padding checked, and it must re-encode to ``text``."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise KeyFormatError(f"{what}: not standard base64", code=code) from exc
    if base64.b64encode(raw).decode("ascii") != text:
        raise KeyFormatError(f"{what}: non-canonical base64", code=code)
    return raw


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


@dataclass(frozen=True, slots=True, kw_only=True)
class PublicKey:
    """An Ed25519 public key that is safe to verify with: 32 bytes, a canonical prime-order point.

    Raises:
        KeyFormatError: on construction, with code ``key.length``, ``key.non_canonical`` (y >= p or x = -0),
            ``key.small_order`` (one of the 8 low-order points) or ``key.invalid_point`` (off the curve or
            with a low-order component, per libsodium ``crypto_core_ed25519_is_valid_point``).
    """

    raw: bytes
    _key: ed25519.Ed25519PublicKey | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        raw = self.raw
        if not isinstance(raw, bytes) or len(raw) != KEY_SIZE:
            got = f"{len(raw)} bytes" if isinstance(raw, bytes) else type(raw).__name__
            raise KeyFormatError(f"an Ed25519 public key is {KEY_SIZE} bytes, got {got}", code="key.length")
        if not _is_canonical(raw):
            raise KeyFormatError("public key encoding is not canonical", code="key.non_canonical")
        if raw in _SMALL_ORDER:
            raise KeyFormatError("public key is a small-order point", code="key.small_order")
        if not _in_prime_order_subgroup(raw):
            raise KeyFormatError("public key is not a prime-order point", code="key.invalid_point")

    @classmethod
    def from_bytes(cls, raw: bytes) -> PublicKey:
        """Validate 32 raw bytes (RFC 8032 §5.1.2 encoding) as a public key; raises KeyFormatError."""
        return cls(raw=bytes(raw))

    @classmethod
    def from_text(cls, text: str) -> PublicKey:
        """Parse ``"ed25519:" + base64(32 bytes)``, the inverse of :meth:`text`; raises KeyFormatError."""
        if not isinstance(text, str) or not text.startswith(_TEXT_PREFIX) or len(text) > _MAX_KEY_TEXT:
            raise KeyFormatError("public key text must start with 'ed25519:'", code="key.text")
        return cls.from_bytes(_b64decode(text[len(_TEXT_PREFIX) :], "public key text", "key.text"))

    def text(self) -> str:
        """``"ed25519:"`` + standard base64 of the 32 raw bytes."""
        return _TEXT_PREFIX + _b64(self.raw)

    def verify(self, signature: bytes, message: bytes) -> None:
        """Check an RFC 8032 Ed25519 signature R || S (64 bytes) over ``message``; return None or raise.

        Checks (DESIGN.md §2, docs/adr/0019-r-check-after-the-equation.md), in order: 64 bytes (``sig.length``);
        S < L (``sig.s_not_reduced``, RFC 8032 §5.1.7 step 1); R canonical (``sig.r_non_canonical``); R not a
        small-order point (``sig.r_small_order``); then the cofactorless equation of the current engine
        (:func:`ledger.engines.signature_engine`, docs/adr/0021). R in the prime-order subgroup
        (``sig.r_invalid_point``, docs/adr/0005) is checked only when the equation fails, to name the reason: this
        key passed the full point check, so [S]B - [k]A lies in the prime-order subgroup and an R outside it never
        satisfies the equation — the verdict and the code are those of checking R first.
        Any other failure is ``sig.invalid``.

        Raises:
            SignatureError: with one of the codes above.
        """
        if not isinstance(signature, bytes) or len(signature) != SIGNATURE_SIZE:
            got = f"{len(signature)} bytes" if isinstance(signature, bytes) else type(signature).__name__
            raise SignatureError(f"signature is {SIGNATURE_SIZE} bytes, got {got}", code="sig.length")
        r, s = signature[:32], signature[32:]
        if int.from_bytes(s, "little") >= _L:
            raise SignatureError("signature scalar S is not reduced (S >= L)", code="sig.s_not_reduced")
        if not _is_canonical(r):
            raise SignatureError("signature point R is not canonically encoded", code="sig.r_non_canonical")
        if r in _SMALL_ORDER:
            raise SignatureError("signature point R is a small-order point", code="sig.r_small_order")
        if not self._equation_holds(signature, bytes(message)):
            if not _in_prime_order_subgroup(r):
                raise SignatureError("signature R is not a prime-order point", code="sig.r_invalid_point")
            raise SignatureError(f"signature does not verify under {self!r}", code="sig.invalid")

    def _equation_holds(self, signature: bytes, message: bytes) -> bool:
        """RFC 8032 §5.1.7 through the current engine; a cofactored libsodium gets R's full point check in front
        (docs/adr/0019, 0021), so that it accepts exactly what the cofactorless equation accepts."""
        if current_engine() == "cryptography":
            from cryptography.exceptions import InvalidSignature
            try:
                self._cryptography_key().verify(signature, message)
            except InvalidSignature:
                return False
            return True
        if LIBSODIUM_COFACTORED and not _in_prime_order_subgroup(signature[:32]):
            return False
        return libsodium_equation(self.raw, signature, message)

    def _cryptography_key(self) -> ed25519.Ed25519PublicKey:
        """The key as ``cryptography``'s, made at its first use (any 32 bytes make one: the checks are above)."""
        key = self._key
        if key is None:
            from cryptography.hazmat.primitives.asymmetric import ed25519
            key = ed25519.Ed25519PublicKey.from_public_bytes(self.raw)
            object.__setattr__(self, "_key", key)
        return key

    def __repr__(self) -> str:
        return f"PublicKey({self.text()[:20]}…)"


class PrivateKey:
    """An Ed25519 private key (RFC 8032 §5.1.5). Build it with :meth:`generate`, :meth:`from_seed` or
    :meth:`from_pem`; its repr shows only the public key."""

    __slots__ = ("_key", "_public")

    def __init__(self, key: ed25519.Ed25519PrivateKey) -> None:
        if not isinstance(key, _private_type()):
            raise KeyFormatError("not an Ed25519 private key", code="key.not_ed25519")
        self._key = key
        self._public = PublicKey.from_bytes(key.public_key().public_bytes_raw())

    @classmethod
    def generate(cls) -> PrivateKey:
        """A new key from the operating system's CSPRNG."""
        return cls(_private_type().generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> PrivateKey:
        """The key of a 32-byte RFC 8032 seed; raises KeyFormatError (``key.length``)."""
        if not isinstance(seed, bytes) or len(seed) != KEY_SIZE:
            raise KeyFormatError(f"an Ed25519 seed is {KEY_SIZE} bytes", code="key.length")
        return cls(_private_type().from_private_bytes(seed))

    @classmethod
    def from_pem(cls, data: bytes) -> PrivateKey:
        """Load an unencrypted PKCS #8 PEM Ed25519 key (RFC 8410).

        Raises:
            KeyFormatError: ``key.pem`` (not PEM, encrypted, too large, unreadable) or ``key.not_ed25519``.
        """
        if not isinstance(data, bytes) or len(data) > _MAX_PEM_BYTES:
            raise KeyFormatError(f"a PEM private key is bytes of at most {_MAX_PEM_BYTES}", code="key.pem")
        from cryptography.exceptions import UnsupportedAlgorithm
        from cryptography.hazmat.primitives import serialization
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
            raise KeyFormatError("not an unencrypted PEM private key", code="key.pem") from exc
        if not isinstance(key, _private_type()):
            raise KeyFormatError(f"not an Ed25519 key: {type(key).__name__}", code="key.not_ed25519")
        return cls(key)

    @property
    def public_key(self) -> PublicKey:
        return self._public

    def sign(self, message: bytes) -> bytes:
        """The 64-byte RFC 8032 signature R || S of ``message`` (deterministic)."""
        return self._key.sign(bytes(message))

    def seed(self) -> bytes:
        """The 32-byte secret seed. Handle with care."""
        return self._key.private_bytes_raw()

    def to_pem(self) -> bytes:
        """Unencrypted PKCS #8 PEM ("-----BEGIN PRIVATE KEY-----"); protect it with file permissions."""
        from cryptography.hazmat.primitives import serialization
        return self._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )

    def __repr__(self) -> str:
        return f"PrivateKey(public={self._public!r})"


def _private_type() -> type[ed25519.Ed25519PrivateKey]:
    """``cryptography``'s Ed25519 private key class, imported at the first private key made or loaded."""
    from cryptography.hazmat.primitives.asymmetric import ed25519
    return ed25519.Ed25519PrivateKey


def verify_signature(public_key: PublicKey, signature: bytes, message: bytes) -> None:
    """Same as :meth:`PublicKey.verify`; raises SignatureError."""
    public_key.verify(signature, message)


def is_valid_key_name(name: object) -> bool:
    """C2SP signed-note key name: non-empty valid UTF-8 without Unicode spaces, "+" or control characters."""
    if not isinstance(name, str) or not name or "+" in name:
        return False
    try:
        name.encode("utf-8")  # refuses lone surrogates
    except UnicodeEncodeError:
        return False
    return not any(ch.isspace() or ch < " " for ch in name)


def _check_name(name: str, code: str) -> None:
    if not is_valid_key_name(name):
        raise KeyFormatError(f"invalid signed-note key name: {name!r:.80} (a key name is one word of visible "
                             "characters: no spaces, no '+', no control characters; C2SP signed-note)", code=code)


def note_key_id(name: str, public_key: PublicKey, alg: int = NOTE_ALG_ED25519) -> bytes:
    """SHA-256(name || 0x0A || alg || public key)[:4] (C2SP signed-note, "Ed25519 signatures": ``alg`` 0x01; C2SP
    tlog-cosignature, "Format": 0x04 for an Ed25519 cosigner key)."""
    _check_name(name, "note.bad_name")
    data = name.encode("utf-8") + b"\n" + bytes([alg]) + public_key.raw
    return hashlib.sha256(data).digest()[:4]


@dataclass(frozen=True, slots=True, kw_only=True)
class NoteVerifierKey:
    """A signed-note Ed25519 verifier key: ``name+hex8(key ID)+base64(0x01 || public key)``.

    Raises:
        KeyFormatError: (``note.bad_vkey``) on construction with a bad name or a key ID that is not the one
            computed by :func:`note_key_id`.
    """

    name: str
    key_id: bytes
    public_key: PublicKey

    def __post_init__(self) -> None:
        _check_name(self.name, "note.bad_vkey")
        if not isinstance(self.public_key, PublicKey):
            raise KeyFormatError("verifier key needs a PublicKey", code="note.bad_vkey")
        if self.key_id != note_key_id(self.name, self.public_key):
            raise KeyFormatError(f"key ID does not match key {self.name!r:.80}", code="note.bad_vkey")

    def text(self) -> str:
        return f"{self.name}+{self.key_id.hex()}+{_b64(bytes([NOTE_ALG_ED25519]) + self.public_key.raw)}"

    @classmethod
    def parse(cls, text: str) -> NoteVerifierKey:
        """Parse a verifier key strictly (split on the first two "+": base64 may contain "+").

        Raises:
            KeyFormatError: ``note.bad_vkey`` for any defect (name, 8 lowercase hex digits, base64, algorithm
                byte 0x01, 32-byte valid point, key ID); the specific key error is chained as ``__cause__``.
        """
        name, key_id, public_key = parse_verifier_key(text, NOTE_ALG_ED25519, "note.bad_vkey")
        return cls(name=name, key_id=key_id, public_key=public_key)


def parse_verifier_key(text: str, alg: int, code: str) -> tuple[str, bytes, PublicKey]:
    """(name, key ID, public key) of a signed-note verifier key ``name+hex8(key ID)+base64(alg || key)`` whose
    signature type is ``alg`` (0x01: note signatures; 0x04: tlog-cosignature/v1), split on the first two "+"
    (base64 may contain "+"). The key ID is NOT compared with the key here (the caller's type does that).

    Raises:
        KeyFormatError: ``code`` for any defect (name, 8 lowercase hex digits, base64, type byte, 32-byte valid
            point); the specific key error is chained as ``__cause__``.
    """
    if not isinstance(text, str) or len(text) > _MAX_KEY_TEXT:
        raise KeyFormatError("verifier key must be a short string", code=code)
    parts = text.split("+", 2)
    if len(parts) != 3:
        raise KeyFormatError("verifier key is name+keyid+key", code=code)
    name, hex_id, b64 = parts
    _check_name(name, code)
    return name, _parse_hex_id(hex_id, code), _parse_alg_key(b64, code, PublicKey.from_bytes, alg)


def _parse_hex_id(text: str, code: str) -> bytes:
    if len(text) != 8 or any(ch not in "0123456789abcdef" for ch in text):
        raise KeyFormatError("key ID must be 8 lowercase hex digits", code=code)
    return bytes.fromhex(text)


def _parse_alg_key(b64: str, code: str, build: Callable[[bytes], _T], alg: int = NOTE_ALG_ED25519) -> _T:
    raw = _b64decode(b64, "signed-note key", code)
    if len(raw) != 1 + KEY_SIZE or raw[0] != alg:
        raise KeyFormatError(f"signed-note key must be 0x{alg:02x} || 32 bytes (Ed25519)", code=code)
    try:
        return build(raw[1:])
    except KeyFormatError as exc:
        raise KeyFormatError(f"signed-note key refused: {exc} ({exc.code})", code=code) from exc


def note_verifier_key(name: str, public_key: PublicKey) -> NoteVerifierKey:
    """The verifier key of ``public_key`` under ``name``; raises KeyFormatError on a bad name."""
    return NoteVerifierKey(name=name, key_id=note_key_id(name, public_key), public_key=public_key)


def parse_note_signer_key(text: str) -> tuple[str, PrivateKey]:
    """Parse a Go sumdb/note signer key ``PRIVATE+KEY+name+hex8(key ID)+base64(0x01 || seed)``.

    The key ID is checked against the public key derived from the seed. Error messages never echo the text.

    Raises:
        KeyFormatError: ``note.bad_skey``.
    """
    if not isinstance(text, str) or len(text) > _MAX_KEY_TEXT:
        raise KeyFormatError("signer key must be a short string", code="note.bad_skey")
    parts = text.split("+", 4)
    if len(parts) != 5 or parts[0] != "PRIVATE" or parts[1] != "KEY":
        raise KeyFormatError("signer key is PRIVATE+KEY+name+keyid+key", code="note.bad_skey")
    _, _, name, hex_id, b64 = parts
    _check_name(name, "note.bad_skey")
    key_id = _parse_hex_id(hex_id, "note.bad_skey")
    key = _parse_alg_key(b64, "note.bad_skey", PrivateKey.from_seed)
    if key_id != note_key_id(name, key.public_key):
        raise KeyFormatError("signer key ID does not match its key", code="note.bad_skey")
    return name, key


def format_note_signer_key(name: str, key: PrivateKey) -> str:
    """The Go sumdb/note signer-key text of ``key`` under ``name`` (the inverse of parse_note_signer_key)."""
    key_id = note_key_id(name, key.public_key)
    return f"PRIVATE+KEY+{name}+{key_id.hex()}+{_b64(bytes([NOTE_ALG_ED25519]) + key.seed())}"
