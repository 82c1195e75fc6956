"""SHA-256 digests and domain-separated hashing.

Every byte string StoneTrail hashes starts with a fixed context (DESIGN.md §2): either an RFC 9162 prefix byte
(0x00 leaf, 0x01 node; see :mod:`ledger.merkle`) or one of the versioned ASCII tags below, each ending in a
newline so that no tag is a prefix of another tag plus data.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from .errors import InputError

__all__ = [
    "DIGEST_SIZE",
    "TAG_IDENTITY",
    "TAG_ITEM_HEAD",
    "TAG_RECORD_BODY",
    "TAG_RECORD_SIG",
    "Digest",
    "sha256",
    "tagged_hash",
]

DIGEST_SIZE = 32

#: Context of an identity leaf, the leaf input of the checkpoint's identity tree (docs/format.md §7d):
#: TAG_IDENTITY || canonical-msgpack([kind, folded key, [[position, item, until], ...]]).
TAG_IDENTITY = b"stonetrail/v1/identity\n"
#: Context of an item-head leaf, the leaf input of the checkpoint's item-head tree (docs/format.md §7c):
#: TAG_ITEM_HEAD || canonical-msgpack([item id, leaf index, record hash]).
TAG_ITEM_HEAD = b"stonetrail/v1/item-head\n"
#: Context of the hash of a record body (docs/format.md §3, "Hashes and domain separation").
TAG_RECORD_BODY = b"stonetrail/v1/record-body\n"
#: Context of the message an Ed25519 record signature signs: TAG_RECORD_SIG || body hash (32 bytes).
TAG_RECORD_SIG = b"stonetrail/v1/record-signature\n"


class Digest(bytes):
    """A SHA-256 digest: exactly 32 bytes (immutable, hashable, compares as bytes).

    Raises:
        InputError: on construction from anything but 32 bytes.
    """

    __slots__ = ()

    def __new__(cls, value: bytes) -> Digest:
        if not isinstance(value, bytes | bytearray | memoryview) or len(value) != DIGEST_SIZE:
            raise InputError(f"a digest is {DIGEST_SIZE} bytes, got {_describe(value)}", code="hash.length")
        return super().__new__(cls, value)

    @classmethod
    def from_b64(cls, text: str) -> Digest:
        """Parse standard base64 (RFC 4648 §4, padded) strictly; raises InputError."""
        try:
            raw = base64.b64decode(text.encode("ascii"), validate=True)
        except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
            raise InputError(f"not standard base64: {text[:60]!r}", code="hash.base64") from exc
        if base64.b64encode(raw).decode("ascii") != text:
            raise InputError(f"non-canonical base64: {text[:60]!r}", code="hash.base64")
        return cls(raw)

    def b64(self) -> str:
        """Standard padded base64 of the 32 bytes (as in C2SP checkpoints and RFC 9162 test vectors)."""
        return base64.b64encode(self).decode("ascii")

    def __repr__(self) -> str:
        return f"Digest({self.hex()})"


def _describe(value: object) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return f"{len(value)} bytes"
    return type(value).__name__


def sha256(data: bytes) -> Digest:
    """SHA-256 of ``data`` (FIPS 180-4). Callers are responsible for the domain-separation prefix."""
    return Digest(hashlib.sha256(data).digest())


def tagged_hash(tag: bytes, data: bytes) -> Digest:
    """SHA-256(tag || data): the domain-separated hash used for every non-Merkle hash in StoneTrail.

    ``tag`` must be one of the module's ``TAG_*`` constants (versioned ASCII ending in a newline).
    """
    h = hashlib.sha256(tag)
    h.update(data)
    return Digest(h.digest())
