"""The ledger file's header, parsed and built without touching a file: which ledger the file is (its origin) and
where its frames start (:mod:`ledger.storage.framing`).

Format version 1 (integers unsigned big-endian; CRC32 = ``zlib.crc32``, ISO-HDLC / IEEE 802.3)::

    header, at offset 0 (n = origin length)
      offset  size  field
      0       8     magic        b"STNTRAIL"
      8       2     version      u16, 1
      10      2     origin_len   u16, n, 1..255
      12      n     origin       ASCII 0x21..0x7E except "+" (C2SP tlog-checkpoint: no spaces, no plus)
      12+n    4     header_crc   u32, CRC32 of header bytes 0 .. 11+n
"""

from __future__ import annotations

import struct
import zlib
from typing import Final

from .._file_kinds import binary_kind, text_kind
from ..errors import CorruptStoreError, InputError

__all__ = ["FORMAT_VERSION", "MAGIC", "MAX_HEADER", "MAX_ORIGIN_SIZE", "pack_header", "read_header"]

MAGIC = b"STNTRAIL"
FORMAT_VERSION = 1
MAX_ORIGIN_SIZE = 255
_HEAD, _CRC = struct.Struct(">8sHH"), struct.Struct(">I")


def _origin_problem(raw: bytes) -> str | None:
    if not 1 <= len(raw) <= MAX_ORIGIN_SIZE:
        return f"origin is {len(raw)} bytes, want 1..{MAX_ORIGIN_SIZE}"
    if any(b < 0x21 or b > 0x7E or b == 0x2B for b in raw):
        shown = raw[:60].decode("utf-8", "backslashreplace")
        return (f"origin {shown!r} has a character outside printable ASCII without spaces (0x21..0x7E) or a '+' "
                "(C2SP: an origin is a schema-less URL, e.g. example.com/diamonds)")
    return None


def _not_a_ledger(data: bytes) -> str:
    """Why a file starting with ``data`` is not a ledger: what it is instead, if it is one of the project's other
    kinds (:mod:`ledger._file_kinds`), and where it goes."""
    kind = binary_kind(data) or text_kind(data.decode("utf-8", "replace"))
    use = {"a proof bundle": " (use 'stonetrail proof verify')",
           "an evidence file": " (use 'stonetrail evidence verify')", "a trust file": " (a command's --trust takes it)",
           "a checkpoint": " (a command's --checkpoint takes it)", "an audit state file": " (verify --resume takes it)",
           "a ledger's index (an SQLite file)": " (give the ledger file beside it, without .index)"}
    if kind is not None:
        return f"not a StoneTrail ledger file: it is {kind}{use.get(kind, '')}"
    return f"not a StoneTrail ledger file (it does not start with {MAGIC.decode()})"


def read_header(data: bytes) -> tuple[str, int]:
    """(origin, header length) of a file starting with ``data`` (its first :data:`MAX_HEADER` bytes or more).
    Raises InputError("store.not_a_ledger") if the file is empty or does not
    start with :data:`MAGIC` (not a ledger at all: the caller named the wrong file); CorruptStoreError
    ("store.bad_header") if a ledger's header is cut short or damaged, or of another version."""
    if not data or not data.startswith(MAGIC[:len(data)]):
        raise InputError("an empty file, not a StoneTrail ledger file" if not data else _not_a_ledger(data),
                         code="store.not_a_ledger")
    if len(data) < _HEAD.size:
        raise CorruptStoreError(f"file is {len(data)} bytes, too short for a header", code="store.bad_header")
    _, version, n = _HEAD.unpack_from(data)
    end = _HEAD.size + n + _CRC.size
    why = (f"the file ends inside the header ({n}-byte origin)" if len(data) < end
           else "the ledger's header is damaged (its CRC32 does not match): the file's first bytes were changed; "
                "restore the file from a backup or a copy (the records after it cannot be trusted to be this "
                "ledger's)" if zlib.crc32(data[: end - 4]) != _CRC.unpack(data[end - 4 : end])[0]
           else f"format version {version}, want {FORMAT_VERSION}" if version != FORMAT_VERSION
           else _origin_problem(data[_HEAD.size : end - 4]))
    if why is not None:
        raise CorruptStoreError(why, code="store.bad_header")
    return data[_HEAD.size : end - 4].decode("ascii"), end


#: Bytes a header takes at most (a 255-byte origin): reading this many gives :func:`read_header` all it needs.
MAX_HEADER: Final = _HEAD.size + MAX_ORIGIN_SIZE + _CRC.size


def pack_header(origin: str) -> bytes:
    """The header bytes for ``origin``. Raises InputError("store.bad_origin") unless it is 1..255 ASCII
    0x21..0x7E bytes without "+"."""
    raw = origin.encode("utf-8")
    if (why := _origin_problem(raw)) is not None:
        raise InputError(why, code="store.bad_origin")
    head = _HEAD.pack(MAGIC, FORMAT_VERSION, len(raw)) + raw
    return head + _CRC.pack(zlib.crc32(head))
