"""The ledger file's bytes: header and frames, parsed and built without touching a file (:mod:`ledger.store` does
the I/O). Payloads are opaque bytes.

File format, version 1 (integers unsigned big-endian; CRC32 = ``zlib.crc32``, ISO-HDLC / IEEE 802.3)::

    header, at offset 0 (n = origin length)
      offset  size  field
      0       8     magic        b"STNTRAIL"
      8       2     version      u16, 1
      10      2     origin_len   u16, n, 1..255
      12      n     origin       ASCII 0x21..0x7E except "+" (C2SP tlog-checkpoint: no spaces, no plus)
      12+n    4     header_crc   u32, CRC32 of header bytes 0 .. 11+n
    frames, back to back from offset 16+n to end of file; frame i (0-based) holds record i
      0       4     frame_magic  b"STR1"
      4       4     length       u32, payload length in bytes, 1 .. MAX_RECORD_SIZE (1 MiB = 1_048_576)
      8       4     payload_crc  u32, CRC32 of the payload
      12      len   payload      the record's bytes

No padding, trailer or index. The frame magic matters: CRC32 of empty input is 0, so without it a zero-filled
tail (a crash on file systems that grow a file before its data reaches the disk) would parse as records.

Damage found by :func:`survey` and so by :func:`ledger.store.scan` (a :class:`StoreProblem` covers the bytes
from ``offset`` to the next valid frame or end of file; ``index`` is the number of the record that would start
at ``offset``):

- ``store.checksum_mismatch``: frame magic present but the payload CRC does not match, or the declared length
  is 0 or does not end at a frame boundary (then the bytes up to the next fully valid frame are skipped).
- ``store.bad_magic``: no frame magic where a frame should start. If the rest of that frame checks out
  (length, CRC) only it is skipped; else scanning resumes at the next offset holding a fully valid frame. How
  many records such a span held is unknown: the frames after it are numbered as if it held one.
- ``store.oversize``: frame magic present but the declared length exceeds MAX_RECORD_SIZE.
- ``store.torn_tail``: damage running to end of file, with no valid frame after it, that looks like an
  interrupted append: a prefix of a frame header, a frame whose length runs past end of file, or only zeros.
"""

from __future__ import annotations

import struct
import zlib
from array import array
from dataclasses import dataclass

from .errors import CorruptStoreError, InputError

__all__ = ["FORMAT_VERSION", "FRAME_MAGIC", "MAGIC", "MAX_RECORD_SIZE", "Frame", "ScanResult", "StoreProblem",
           "pack_frame", "pack_header", "read_frame", "survey"]

MAGIC = b"STNTRAIL"
FRAME_MAGIC = b"STR1"
FORMAT_VERSION = 1
MAX_RECORD_SIZE = 1 << 20  # bytes of payload in one frame
MAX_ORIGIN_SIZE = 255
_HEAD, _FRAME, _CRC = struct.Struct(">8sHH"), struct.Struct(">4sII"), struct.Struct(">I")
_FH = _FRAME.size  # 12 bytes of frame header
TORN, BAD_MAGIC, CHECKSUM = "store.torn_tail", "store.bad_magic", "store.checksum_mismatch"
OVERSIZE, FSYNC_FAILED = "store.oversize", "store.fsync_failed"


@dataclass(frozen=True, slots=True)
class Frame:
    """A valid frame: record ``index`` starts at byte ``offset`` (its frame magic) and holds ``payload``."""

    index: int
    offset: int
    payload: bytes


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreProblem:
    """Damaged framing found by :func:`scan`; ``code`` is a ``store.*`` code of the module docstring."""

    code: str
    index: int
    offset: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ScanResult:
    """What :func:`scan` found; ``end_offset`` is the byte after the last valid frame (or the header)."""

    origin: str
    frames: list[Frame]
    problems: list[StoreProblem]
    end_offset: int


def _origin_problem(raw: bytes) -> str | None:
    if not 1 <= len(raw) <= MAX_ORIGIN_SIZE:
        return f"origin is {len(raw)} bytes, want 1..{MAX_ORIGIN_SIZE}"
    if any(b < 0x21 or b > 0x7E or b == 0x2B for b in raw):
        return f"origin {raw[:60]!r} has a byte outside ASCII 0x21..0x7E, or a '+'"
    return None


def _not_a_ledger(data: bytes) -> str:
    for tag, what in ((b"stonetrail/v1/bundle\n", "a proof bundle (use 'stonetrail proof verify')"),
                      (b"stonetrail/v1/evidence\n", "an evidence file (use 'stonetrail evidence verify')")):
        if data.startswith(tag):
            return f"not a StoneTrail ledger file: it is {what}"
    return f"not a StoneTrail ledger file (it does not start with {MAGIC.decode()})"


def _read_header(data: bytes) -> tuple[str, int]:
    """Return (origin, header length). Raises CorruptStoreError("store.bad_header")."""
    if len(data) < _HEAD.size:
        raise CorruptStoreError(f"file is {len(data)} bytes, too short for a header", code="store.bad_header")
    magic, version, n = _HEAD.unpack_from(data)
    end = _HEAD.size + n + _CRC.size
    why = (_not_a_ledger(data) if magic != MAGIC
           else f"the file ends inside the header ({n}-byte origin)" if len(data) < end
           else "header CRC32 does not match" if zlib.crc32(data[: end - 4]) != _CRC.unpack(data[end - 4 : end])[0]
           else f"format version {version}, want {FORMAT_VERSION}" if version != FORMAT_VERSION
           else _origin_problem(data[_HEAD.size : end - 4]))
    if why is not None:
        raise CorruptStoreError(why, code="store.bad_header")
    return data[_HEAD.size : end - 4].decode("ascii"), end


def _frame_at(data: bytes, pos: int, *, need_magic: bool = True) -> bytes | None:
    """The payload of a fully valid frame at ``pos`` (magic if ``need_magic``, length, CRC), else None."""
    if len(data) < pos + _FH:
        return None
    magic, length, crc = _FRAME.unpack_from(data, pos)
    if (need_magic and magic != FRAME_MAGIC) or not 1 <= length <= MAX_RECORD_SIZE:
        return None  # the declared length is bounded before it is used
    start, end = pos + _FH, pos + _FH + length
    if end > len(data) or zlib.crc32(memoryview(data)[start:end]) != crc:  # no copy until it checks out
        return None
    return data[start:end]


def _resync(data: bytes, pos: int) -> int:
    """Offset of the next fully valid frame after ``pos``, or -1.

    Each candidate costs a CRC over up to 1 MiB, so a span crafted full of fake frame headers could make this
    quadratic. The work is capped (64 MiB plus 16 times the bytes left); past the cap the rest of the file is
    treated as one damaged span (reported, never accepted).
    """
    budget = 64 * MAX_RECORD_SIZE + 16 * (len(data) - pos)
    nxt = data.find(FRAME_MAGIC, pos + 1)
    while nxt >= 0 and _frame_at(data, nxt) is None:
        budget -= min(_FRAME.unpack_from(data, nxt)[1], MAX_RECORD_SIZE) if nxt + _FH <= len(data) else 0
        if budget < 0:
            return -1
        nxt = data.find(FRAME_MAGIC, nxt + 1)
    return nxt


def _diagnose(data: bytes, pos: int, index: int) -> tuple[StoreProblem, int]:
    """Classify the damage at ``pos``, where no valid frame starts; return it and where scanning resumes."""
    head, size = data[pos : pos + _FH], len(data)
    magic_ok, length = head[:4] == FRAME_MAGIC, -1
    if len(head) == _FH:
        length = _FRAME.unpack(head)[1]
        end = pos + _FH + length
        at_boundary = end <= size and (  # a frame, or the start of one, or end of file, follows
            FRAME_MAGIC.startswith(data[end : end + 4]) or _frame_at(data, end, need_magic=False) is not None)
        if 1 <= length <= MAX_RECORD_SIZE and at_boundary:
            if magic_ok:
                what = f"record {index}: payload CRC32 does not match ({length} bytes skipped)"
                return StoreProblem(code=CHECKSUM, index=index, offset=pos, reason=what), end
            if _frame_at(data, pos, need_magic=False) is not None:
                what = f"record {index}: frame magic {head[:4]!r}, want {FRAME_MAGIC!r} (frame skipped)"
                return StoreProblem(code=BAD_MAGIC, index=index, offset=pos, reason=what), end
    nxt = _resync(data, pos)
    incomplete = (FRAME_MAGIC.startswith(head[:4]) if len(head) < _FH  # an interrupted append, or only zeros
                  else magic_ok and 1 <= length <= MAX_RECORD_SIZE and pos + _FH + length > size)
    if nxt < 0 and (incomplete or data.count(0, pos) == size - pos):
        code, what = TORN, "incomplete last frame (interrupted append)"
    elif not magic_ok:
        code, what = BAD_MAGIC, f"frame magic {head[:4]!r}, want {FRAME_MAGIC!r}"
    elif length > MAX_RECORD_SIZE:
        code, what = OVERSIZE, f"declared length {length} exceeds {MAX_RECORD_SIZE}"
    else:
        code, what = CHECKSUM, f"declared length {length} does not end at a valid frame"
    stop, where = (size, "end of file") if nxt < 0 else (nxt, f"the next valid frame at offset {nxt}")
    reason = f"record {index}: {what}; {stop - pos} bytes from offset {pos} to {where} skipped"
    return StoreProblem(code=code, index=index, offset=pos, reason=reason), stop


def survey(data: bytes, frames: list[Frame] | None = None) -> tuple[str, array[int], list[StoreProblem], int]:
    """Parse a whole file's bytes: (origin, frame offsets, problems, end of last valid frame); fill ``frames``.

    Raises CorruptStoreError("store.bad_header").
    """
    origin, pos = _read_header(data)
    offsets, problems, end, index = array("Q"), list[StoreProblem](), pos, 0
    while pos < len(data):
        if (payload := _frame_at(data, pos)) is None:
            problem, pos = _diagnose(data, pos, index)
            problems.append(problem)
        else:
            offsets.append(pos)
            if frames is not None:
                frames.append(Frame(index, pos, payload))
            pos = end = pos + _FH + len(payload)
        index += 1
    return origin, offsets, problems, end


def pack_header(origin: str) -> bytes:
    """The header bytes for ``origin``. Raises InputError("store.bad_origin") unless it is 1..255 ASCII
    0x21..0x7E bytes without "+"."""
    raw = origin.encode("utf-8")
    if (why := _origin_problem(raw)) is not None:
        raise InputError(why, code="store.bad_origin")
    head = _HEAD.pack(MAGIC, FORMAT_VERSION, len(raw)) + raw
    return head + _CRC.pack(zlib.crc32(head))


def pack_frame(payload: bytes) -> bytes:
    """The frame holding ``payload`` (magic, length, CRC32, payload).

    Raises TypeError (not bytes); InputError "store.oversize" / "store.empty_payload" (not 1..MAX_RECORD_SIZE).
    """
    if not isinstance(payload, bytes):
        raise TypeError(f"payload must be bytes, got {type(payload).__name__}")
    if not 1 <= len(payload) <= MAX_RECORD_SIZE:
        code = OVERSIZE if payload else "store.empty_payload"
        raise InputError(f"payload is {len(payload)} bytes, want 1..{MAX_RECORD_SIZE}", code=code)
    return _FRAME.pack(FRAME_MAGIC, len(payload), zlib.crc32(payload)) + payload


def read_frame(raw: bytes) -> bytes | None:
    """The payload of ``raw`` if it is exactly one valid frame, else None."""
    payload = raw[_FH:]
    if len(raw) < _FH or _FRAME.unpack_from(raw) != (FRAME_MAGIC, len(payload), zlib.crc32(payload)):
        return None
    return payload
