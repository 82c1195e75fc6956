"""The exception tree of StoneTrail, split by who is at fault.

::

    StoneTrailError                    every error this library raises
    ├── InputError                     the caller's bytes or text are malformed (fix the input)
    │   ├── ArgumentError              a public call got an argument of the wrong type (``input.type``)
    │   ├── BundleFormatError          bytes that are not a proof bundle at all (ledger.bundle)
    │   ├── DecodeError                not canonical msgpack, or over a size/depth cap (ledger._codec)
    │   ├── KeyFormatError             a key, key file or verifier-key string is malformed or unsafe (ledger.keys)
    │   ├── NoteFormatError            a signed note or checkpoint body is malformed (ledger.checkpoint)
    │   ├── RecordFormatError          a record's bytes decode but break the record schema (ledger.record)
    │   ├── TrustFileError             a trust file line is malformed (ledger.trust)
    │   └── UnknownItemError           no record of the ledger created this item id (also a KeyError)
    ├── VerificationError              well-formed input that fails a check (the evidence is bad)
    │   ├── SignatureError             an Ed25519 signature is malformed or does not verify
    │   ├── ProofError                 an RFC 9162 inclusion or consistency proof does not verify
    │   ├── UnverifiedNoteError        no signature by a trusted key on a signed note
    │   └── RuleError                  a custody, chain, registry or store rule failed; carries a Finding
    └── StorageError                   the file system or the ledger file failed us
        ├── LockedError                another writer holds the ledger
        └── CorruptStoreError          the ledger file's framing is damaged (torn tail, bad frame)

Every class has a stable ``code`` (e.g. ``sig.invalid``) used in reports and by the CLI; the CLI maps
``InputError`` to exit 2, ``VerificationError`` to exit 1 and ``StorageError`` to exit 3. Third-party exceptions
are wrapped at the one module that imports the third-party library.
"""

from __future__ import annotations

from collections.abc import Iterable
from os import PathLike
from typing import Any, ClassVar

__all__ = [
    "ArgumentError",
    "BundleFormatError",
    "CorruptStoreError",
    "DecodeError",
    "InputError",
    "InvalidLedgerError",
    "KeyFormatError",
    "LockedError",
    "NoteFormatError",
    "ProofError",
    "RecordFormatError",
    "RuleError",
    "SignatureError",
    "StoneTrailError",
    "StorageError",
    "TrustFileError",
    "UnknownItemError",
    "UnverifiedNoteError",
    "VerificationError",
    "expect",
    "expect_each",
    "expect_path",
]


class StoneTrailError(Exception):
    """Base of every StoneTrail error.

    ``code`` is a stable dotted identifier (``area.reason``); an instance may carry a more specific code than
    its class default. ``str(err)`` is a one-line human reason. ``file``: the file or database (a URL without its
    password) the error is about, set by a call that takes two and knows which one failed
    (:func:`ledger.copy.copy_ledger`); None elsewhere.
    """

    default_code: ClassVar[str] = "error"
    file: str | None = None

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.code: str = code or self.default_code

    def about(self, what: str) -> None:
        """Prefix the message with ``what`` (e.g. which of two files it is about), keeping type, code and
        traceback: call it in an ``except`` block, then re-raise. A message that opens with ``what`` already is
        left as it is."""
        if not str(self).startswith(what):
            self.args = (f"{what}: {self}",)


class InputError(StoneTrailError):
    """The caller supplied malformed input (bytes, text, arguments)."""

    default_code = "input.invalid"


class ArgumentError(InputError):
    """A public function, method or constructor got an argument of the wrong type; the message names the
    argument, what it got and what it wants (instead of an AttributeError or TypeError from deep inside)."""

    default_code = "input.type"


def expect(value: object, kind: type | tuple[type, ...], name: str, want: str) -> None:
    """Raise :class:`ArgumentError` naming argument ``name`` unless ``value`` is an instance of ``kind`` (a bool
    is never accepted where an int is wanted). ``want``: what it should be, in words (e.g. ``"a Trust"``)."""
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _types(kind)):
        raise ArgumentError(f"{name}: got {type(value).__name__}, want {want}")


def expect_each(values: object, kind: type | tuple[type, ...], name: str, want: str) -> tuple[Any, ...]:
    """``values`` as a tuple, after raising :class:`ArgumentError` naming ``name`` unless it is a collection (a
    list, tuple, set, a mapping's keys or values, ...: not text or bytes, which iterate as characters or ints) of
    instances of ``kind`` (``want``: one element, in words). A generator is read once."""
    if isinstance(values, str | bytes | bytearray | memoryview) or not isinstance(values, Iterable):
        raise ArgumentError(f"{name}: got {type(values).__name__}, want a collection of {want}")
    items = tuple(values)
    for index, value in enumerate(items):
        expect(value, kind, f"{name}[{index}]", want)
    return items


def expect_path(value: object, name: str) -> None:
    """Raise :class:`ArgumentError` naming ``name`` unless ``value`` is a file-system path (str or os.PathLike)."""
    expect(value, (str, PathLike), name, "a path (str or os.PathLike)")


def _types(kind: type | tuple[type, ...]) -> tuple[type, ...]:
    return kind if isinstance(kind, tuple) else (kind,)


class UnknownItemError(InputError, KeyError):
    """No record of the ledger created this item id (``item.unknown``); the message suggests an id read alike.
    Also a KeyError, which :meth:`ledger.Ledger.item` raised before (a new user's review: a bare KeyError)."""

    default_code = "item.unknown"

    def __str__(self) -> str:  # the message as it is, not KeyError's quoted repr of it
        return Exception.__str__(self)


class BundleFormatError(InputError):
    """Bytes are not a StoneTrail proof bundle (tag, canonical encoding, layout; docs/format.md §7a)."""

    default_code = "bundle.malformed"


class DecodeError(InputError):
    """Bytes are not canonical StoneTrail msgpack, or exceed a documented cap."""

    default_code = "codec.invalid"


class KeyFormatError(InputError):
    """A key (raw, PEM, text or verifier-key string) is malformed or not a safe Ed25519 point."""

    default_code = "key.invalid"


class NoteFormatError(InputError):
    """A C2SP signed note or tlog-checkpoint body is malformed."""

    default_code = "note.malformed"


class RecordFormatError(InputError):
    """A record decodes as msgpack but breaks the record schema of docs/format.md."""

    default_code = "record.malformed"


class TrustFileError(InputError):
    """A trust file (pinned operator and authority keys) is malformed."""

    default_code = "trust.malformed"


class VerificationError(StoneTrailError):
    """Well-formed input failed a verification rule."""

    default_code = "verify.failed"


class SignatureError(VerificationError):
    """An Ed25519 signature is malformed (length, S >= L, bad R) or does not verify."""

    default_code = "sig.invalid"


class ProofError(VerificationError):
    """An RFC 9162 inclusion or consistency proof is malformed or does not verify."""

    default_code = "proof.invalid"


class UnverifiedNoteError(VerificationError):
    """A signed note carries no valid signature by any trusted key (C2SP signed-note)."""

    default_code = "note.unverified"


class RuleError(VerificationError):
    """A ledger rule failed; ``finding`` names the rule, the record position and the item."""

    default_code = "rule.failed"

    def __init__(self, message: str, *, code: str | None = None, finding: object = None) -> None:
        super().__init__(message, code=code)
        self.finding = finding


class StorageError(StoneTrailError):
    """Reading or writing the ledger file failed (I/O, permissions, fsync)."""

    default_code = "store.io"


class LockedError(StorageError):
    """Another process holds the single-writer lock on the ledger file."""

    default_code = "store.locked"


class CorruptStoreError(StorageError):
    """The ledger file's header or framing is damaged (torn tail, bad magic, checksum mismatch)."""

    default_code = "store.corrupt"


class InvalidLedgerError(CorruptStoreError, VerificationError):
    """The ledger holds a record its writer would refuse (found while opening or indexing it): an integrity
    verdict, so the CLI exits 1. ``code`` is the rule's finding code (docs/format.md §10); an audit names every
    such record."""

    default_code = "rule.failed"
