"""The ledger file's bytes: header and frames, parsed and built without touching a file (:mod:`ledger.storage` does
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
      0       4     frame_magic  b"STR1" (ends a batch; a single append is a batch of one) or
                                 b"STRB" (a batch frame that another frame of the same batch follows)
      4       4     length       u32, payload length in bytes, 1 .. MAX_RECORD_SIZE (1 MiB = 1_048_576)
      8       4     payload_crc  u32, CRC32 of the payload
      12      len   payload      the record's bytes

No padding, trailer or index. The frame magic matters: CRC32 of empty input is 0, so without it a zero-filled
tail (a crash on file systems that grow a file before its data reaches the disk) would parse as records. The two
magics make a batch all or nothing across a crash (docs/adr/0012-batch-frames.md): a file whose valid frames end
with ``STRB`` frames ends inside a batch, and those frames are a torn tail, never records.

Damage found by :func:`survey` and so by :func:`ledger.storage.scan` (a :class:`StoreProblem` covers the bytes
from ``offset`` to the next valid frame or end of file; ``index`` is the number of the record that would start
at ``offset``):

- ``store.checksum_mismatch``: frame magic present but the payload CRC does not match, or the declared length
  is 0 or does not end at a frame boundary (then the bytes up to the next fully valid frame are skipped).
- ``store.bad_magic``: no frame magic where a frame should start. If the rest of that frame checks out
  (length, CRC) only it is skipped; else scanning resumes at the next offset holding a fully valid frame. How
  many records such a span held is unknown: the frames after it are numbered as if it held one.
- ``store.oversize``: frame magic present but the declared length exceeds MAX_RECORD_SIZE.
- ``store.torn_tail``: damage running to end of file, with no valid frame after it, that looks like an
  interrupted append: a prefix of a frame header, a frame whose length runs past end of file, or only zeros;
  it starts at the first frame of the batch it interrupted, if that batch has ``STRB`` frames before it. Valid
  ``STRB`` frames running to end of file are a torn tail too (the batch's last frame was never written).
- ``store.resync_limit``: the damage was so dense that checking candidate frames used up the work budget of
  the pass (:func:`work_budget`: one per file, shared by every damaged span); the rest of the file, from the
  position being read, is one damaged span, never searched further and never taken as records.
"""

from __future__ import annotations

import re
import struct
import zlib
from array import array
from dataclasses import dataclass

from ..errors import CorruptStoreError, InputError

__all__ = ["BATCH_MAGIC", "FORMAT_VERSION", "FRAME_MAGIC", "MAGIC", "MAX_RECORD_SIZE", "Frame", "ScanResult",
           "StoreProblem", "pack_batch", "pack_header", "read_frame", "survey", "work_budget"]

MAGIC = b"STNTRAIL"
FRAME_MAGIC = b"STR1"  # the last frame of a batch (of one, for a single append)
BATCH_MAGIC = b"STRB"  # a frame of a batch, more of it follows
_MAGICS = (FRAME_MAGIC, BATCH_MAGIC)
_ANY_MAGIC = re.compile(b"STR[1B]")
_WANT = f"{FRAME_MAGIC!r} or {BATCH_MAGIC!r}"
FORMAT_VERSION = 1
MAX_RECORD_SIZE = 1 << 20  # bytes of payload in one frame
MAX_ORIGIN_SIZE = 255
_HEAD, _FRAME, _CRC = struct.Struct(">8sHH"), struct.Struct(">4sII"), struct.Struct(">I")
_FH = _FRAME.size  # 12 bytes of frame header
TORN, BAD_MAGIC, CHECKSUM = "store.torn_tail", "store.bad_magic", "store.checksum_mismatch"
OVERSIZE, FSYNC_FAILED, RESYNC_LIMIT = "store.oversize", "store.fsync_failed", "store.resync_limit"
_REPAIR = "`stonetrail repair LEDGER` (ledger.repair) moves it aside"  # what a torn tail's reason tells to run


def work_budget(size: int) -> int:
    """Bytes of frame checking (12 per candidate frame header, plus its payload if a CRC is computed) that one
    :func:`survey` of a ``size``-byte file may spend: 64 MiB plus 16 times the file size. An undamaged file needs
    at most its size; the cap keeps a file crafted full of fake frame headers linear to read."""
    return 64 * MAX_RECORD_SIZE + 16 * size


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
    """Return (origin, header length). Raises InputError("store.not_a_ledger") if the file is empty or does not
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
           else "header CRC32 does not match" if zlib.crc32(data[: end - 4]) != _CRC.unpack(data[end - 4 : end])[0]
           else f"format version {version}, want {FORMAT_VERSION}" if version != FORMAT_VERSION
           else _origin_problem(data[_HEAD.size : end - 4]))
    if why is not None:
        raise CorruptStoreError(why, code="store.bad_header")
    return data[_HEAD.size : end - 4].decode("ascii"), end


def _magic_prefix(raw: bytes) -> bool:
    """True if ``raw`` (at most 4 bytes) is where a frame magic starts: a prefix of one, or empty."""
    return any(m.startswith(raw) for m in _MAGICS)


class _OutOfWork(Exception):
    """The survey's work budget is spent (internal: becomes a ``store.resync_limit`` problem)."""


class _Pass:
    """One survey of a file's bytes: frames and problems found so far, and the work budget left, which every
    candidate frame checked (valid or not, in any damaged span) draws on."""

    def __init__(self, data: bytes, frames: list[Frame] | None) -> None:
        self.data, self.frames, self.work = data, frames, work_budget(len(data))
        self.offsets, self.problems = array("Q"), list[StoreProblem]()
        self.end = 0
        self.batch: tuple[int, int, int] | None = None  # (offset, index, frames before) of an unclosed batch

    def frame_at(self, pos: int, *, need_magic: bool = True) -> bytes | None:
        """The payload of a fully valid frame at ``pos`` (magic if ``need_magic``, length, CRC), else None.
        Raises _OutOfWork."""
        data, length = self.data, 0
        if len(data) >= pos + _FH:
            magic, length, crc = _FRAME.unpack_from(data, pos)
            if (need_magic and magic not in _MAGICS) or not 1 <= length <= MAX_RECORD_SIZE \
                    or pos + _FH + length > len(data):
                length = 0  # the declared length is bounded before it is used
        self.work -= _FH + length
        if self.work < 0:
            raise _OutOfWork
        view = memoryview(data)[pos + _FH : pos + _FH + length]
        if not length or zlib.crc32(view) != crc:  # no copy until it checks out
            return None
        return bytes(view)

    def resync(self, pos: int) -> int:
        """Offset of the next fully valid frame after ``pos``, or -1. Raises _OutOfWork."""
        found = _ANY_MAGIC.search(self.data, pos + 1)
        while found is not None and self.frame_at(found.start()) is None:
            found = _ANY_MAGIC.search(self.data, found.start() + 1)
        return -1 if found is None else found.start()

    def take(self, pos: int, index: int, payload: bytes) -> int:
        """Record the valid frame at ``pos``; return where the next one starts."""
        if self.data[pos : pos + 4] == BATCH_MAGIC:
            self.batch = self.batch or (pos, index, len(self.offsets))
        else:
            self.batch = None
        self.offsets.append(pos)
        if self.frames is not None:
            self.frames.append(Frame(index, pos, payload))
        self.end = pos + _FH + len(payload)
        return self.end

    def damage(self, problem: StoreProblem) -> None:
        """Record a damaged span; a torn tail takes the unclosed batch before it along."""
        if problem.code == TORN and self.batch is not None:
            problem = self.unclosed_batch(self.batch)
        self.batch = None
        self.problems.append(problem)

    def unclosed_batch(self, batch: tuple[int, int, int]) -> StoreProblem:
        """Drop the frames of ``batch``, still open at end of file: a torn tail from its first frame."""
        offset, index, before = batch
        del self.offsets[before:]
        if self.frames is not None:
            del self.frames[before:]
        self.end, self.batch = offset, None
        reason = (f"record {index}: incomplete batch (interrupted append: {_REPAIR}); {len(self.data) - offset} "
                  f"bytes from offset {offset} to end of file skipped")
        return StoreProblem(code=TORN, index=index, offset=offset, reason=reason)

    def run(self, pos: int) -> None:
        """Read frames from ``pos`` (the end of the header) to end of file."""
        index, self.end = 0, pos
        while pos < len(self.data):
            try:
                payload = self.frame_at(pos)
                if payload is not None:
                    pos = self.take(pos, index, payload)
                else:
                    problem, pos = _diagnose(self, pos, index)
                    self.damage(problem)
            except _OutOfWork:
                reason = (f"record {index}: damage too dense to search for frames (over {work_budget(len(self.data))} "
                          f"bytes checked); {len(self.data) - pos} bytes from offset {pos} to end of file skipped")
                self.damage(StoreProblem(code=RESYNC_LIMIT, index=index, offset=pos, reason=reason))
                pos = len(self.data)
            index += 1
        if self.batch is not None:
            self.problems.append(self.unclosed_batch(self.batch))


def _diagnose(scan: _Pass, pos: int, index: int) -> tuple[StoreProblem, int]:
    """Classify the damage at ``pos``, where no valid frame starts; return it and where scanning resumes.
    Raises _OutOfWork."""
    data = scan.data
    head, size = data[pos : pos + _FH], len(data)
    magic_ok, length = head[:4] in _MAGICS, -1
    if len(head) == _FH:
        length = _FRAME.unpack(head)[1]
        end = pos + _FH + length
        at_boundary = end <= size and (  # a frame, or the start of one, or end of file, follows
            _magic_prefix(data[end : end + 4]) or scan.frame_at(end, need_magic=False) is not None)
        if 1 <= length <= MAX_RECORD_SIZE and at_boundary:
            if magic_ok:
                what = f"record {index}: payload CRC32 does not match ({length} bytes skipped)"
                return StoreProblem(code=CHECKSUM, index=index, offset=pos, reason=what), end
            if scan.frame_at(pos, need_magic=False) is not None:
                what = f"record {index}: frame magic {head[:4]!r}, want {_WANT} (frame skipped)"
                return StoreProblem(code=BAD_MAGIC, index=index, offset=pos, reason=what), end
    nxt = scan.resync(pos)
    incomplete = (_magic_prefix(head[:4]) if len(head) < _FH  # an interrupted append, or only zeros
                  else magic_ok and 1 <= length <= MAX_RECORD_SIZE and pos + _FH + length > size)
    if nxt < 0 and (incomplete or data.count(0, pos) == size - pos):
        code, what = TORN, f"incomplete last frame (interrupted append: {_REPAIR})"
    elif not magic_ok:
        code, what = BAD_MAGIC, f"frame magic {head[:4]!r}, want {_WANT}"
    elif length > MAX_RECORD_SIZE:
        code, what = OVERSIZE, f"declared length {length} exceeds {MAX_RECORD_SIZE}"
    else:
        code, what = CHECKSUM, f"declared length {length} does not end at a valid frame"
    stop, where = (size, "end of file") if nxt < 0 else (nxt, f"the next valid frame at offset {nxt}")
    reason = f"record {index}: {what}; {stop - pos} bytes from offset {pos} to {where} skipped"
    return StoreProblem(code=code, index=index, offset=pos, reason=reason), stop


def survey(data: bytes, frames: list[Frame] | None = None) -> tuple[str, array[int], list[StoreProblem], int]:
    """Parse a whole file's bytes: (origin, frame offsets, problems, end of last valid frame); fill ``frames``.

    One pass with one work budget (:func:`work_budget`), so the time is linear in the file size however the
    damage is laid out. Raises InputError("store.not_a_ledger"), CorruptStoreError("store.bad_header").
    """
    origin, pos = _read_header(data)
    scan = _Pass(data, frames)
    scan.run(pos)
    return origin, scan.offsets, scan.problems, scan.end


def pack_header(origin: str) -> bytes:
    """The header bytes for ``origin``. Raises InputError("store.bad_origin") unless it is 1..255 ASCII
    0x21..0x7E bytes without "+"."""
    raw = origin.encode("utf-8")
    if (why := _origin_problem(raw)) is not None:
        raise InputError(why, code="store.bad_origin")
    head = _HEAD.pack(MAGIC, FORMAT_VERSION, len(raw)) + raw
    return head + _CRC.pack(zlib.crc32(head))


def pack_batch(payloads: list[bytes]) -> tuple[bytes, list[int]]:
    """The frames holding ``payloads`` as one batch (``STRB`` frames, the last ``STR1``) and each frame's offset
    in them. A complete batch means the same records as appending each alone; a batch cut short by a crash is a
    torn tail.

    Raises TypeError (a payload is not bytes); InputError "store.oversize" / "store.empty_payload" (a payload
    not 1..MAX_RECORD_SIZE bytes).
    """
    blob, offsets = bytearray(), list[int]()
    for i, payload in enumerate(payloads):
        if not isinstance(payload, bytes):
            raise TypeError(f"payload must be bytes, got {type(payload).__name__}")
        if not 1 <= len(payload) <= MAX_RECORD_SIZE:
            code = OVERSIZE if payload else "store.empty_payload"
            raise InputError(f"payload is {len(payload)} bytes, want 1..{MAX_RECORD_SIZE}", code=code)
        offsets.append(len(blob))
        magic = FRAME_MAGIC if i == len(payloads) - 1 else BATCH_MAGIC
        blob += _FRAME.pack(magic, len(payload), zlib.crc32(payload)) + payload
    return bytes(blob), offsets


def read_frame(raw: bytes) -> bytes | None:
    """The payload of ``raw`` if it is exactly one valid frame (either magic), else None."""
    payload = raw[_FH:]
    if len(raw) < _FH:
        return None
    magic, length, crc = _FRAME.unpack_from(raw)
    return payload if magic in _MAGICS and (length, crc) == (len(payload), zlib.crc32(payload)) else None
