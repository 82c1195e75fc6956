"""The ledger file's frames, parsed without touching a file (:mod:`ledger.storage` does the I/O); its header is
:mod:`ledger.storage.header`'s. Payloads are opaque bytes.

File format, version 1 (integers unsigned big-endian; CRC32 = ``zlib.crc32``, ISO-HDLC / IEEE 802.3)::

    header, at offset 0: 16+n bytes (:mod:`ledger.storage.header`, n = origin length)
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
  interrupted append: a prefix of a frame header, a frame whose length runs past end of file (unless the bytes
  it has are a whole payload under its CRC: then its length field is damaged), a frame whose payload fails its
  CRC where zeros run from a disk sector boundary inside it to end of file and it ends the file or its batch
  (a power cut after the file grew but before all its data reached the disk: :func:`_unwritten`), a prefix of
  a frame magic followed by such zeros, or only zeros;
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
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from ..errors import CorruptStoreError
from .header import MAX_HEADER, read_header
from .window import Read, Window

__all__ = ["BATCH_MAGIC", "FRAME_HEADER", "FRAME_MAGIC", "FRAME_MAGICS", "FRAME_STRUCT", "MAX_RECORD_SIZE", "Frame",
           "ScanResult", "StoreProblem", "Survey", "read_all", "survey", "work_budget"]

FRAME_MAGIC = b"STR1"  # the last frame of a batch (of one, for a single append)
BATCH_MAGIC = b"STRB"  # a frame of a batch, more of it follows
FRAME_MAGICS = (FRAME_MAGIC, BATCH_MAGIC)  # either starts a valid frame
_ANY_MAGIC = re.compile(b"STR[1B]")
_WANT = f"{FRAME_MAGIC!r} or {BATCH_MAGIC!r}"
MAX_RECORD_SIZE = 1 << 20  # bytes of payload in one frame
#: A frame's header: magic, payload length, CRC-32 of the payload (big-endian).
FRAME_STRUCT: Final = struct.Struct(">4sII")
_FH = FRAME_HEADER = FRAME_STRUCT.size  # 12 bytes of frame header: magic, payload length (big-endian), CRC-32
#: The unit in which a power cut leaves a grown file's unwritten data as zeros (a disk sector, in file offsets).
SECTOR = 512
#: How many of the bytes written just before such a sector may be zeros themselves (a length's high bytes, ...).
ZERO_SLACK = 16
TORN, BAD_MAGIC, CHECKSUM = "store.torn_tail", "store.bad_magic", "store.checksum_mismatch"
OVERSIZE, FSYNC_FAILED, RESYNC_LIMIT = "store.oversize", "store.fsync_failed", "store.resync_limit"
#: What one held frame costs beyond its payload (its object, its numbers), counted against ``hold``: a batch of
#: many tiny frames is bounded as one of a few large ones.
_HELD_FRAME = 160
#: Payload bytes of an unclosed batch a :class:`Survey` holds by default before it reads them again at its end.
HOLD: Final = 32 << 20
#: Damaged spans a survey keeps by default: the first ones, then only the latest (and a torn tail, always last);
#: the others are counted by code (:attr:`Survey.omitted`), so that a file crafted with a damaged span every few
#: bytes (a million in 15 MB) cannot fill memory. An audit keeps as many as it keeps findings.
KEPT_PROBLEMS: Final = 10_000
#: What a torn tail's reason tells to run (a repair refuses to cut records a checkpoint covers: ``repair.rollback``).
_REPAIR = ("`stonetrail repair` (ledger.repair) moves it aside, unless it took records a checkpoint covers: then "
           "recover them from a backup")


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

    @property
    def end(self) -> int:
        """The offset of the byte after this frame."""
        return self.offset + _FH + len(self.payload)


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


def _magic_prefix(raw: bytes) -> bool:
    """True if ``raw`` (at most 4 bytes) is where a frame magic starts: a prefix of one, or empty."""
    return any(m.startswith(raw) for m in FRAME_MAGICS)


class _OutOfWork(Exception):
    """The survey's work budget is spent (internal: becomes a ``store.resync_limit`` problem)."""


class _Pass:
    """One survey of a file's bytes, front to back through a :class:`~ledger.storage.window.Window`: frames and
    problems found so far, and the work budget left, which every candidate frame checked (valid or not, in any
    damaged span) draws on. The frames of a batch not closed yet are held back until its last frame is read (a
    batch cut short is a torn tail, never records); past ``hold`` bytes of payload they are held as offsets only
    and read again when the batch closes."""

    def __init__(self, data: Window, hold: int, kept: int | None = KEPT_PROBLEMS) -> None:
        self.data, self.hold, self.work = data, hold, work_budget(data.size)
        self.offsets, self.problems = array("Q"), list[StoreProblem]()
        self.kept, self.omitted = kept, Counter[str]()  # problems past the ``kept`` first: see :meth:`note`
        self.end = 0
        self.batch: tuple[int, int, int] | None = None  # (offset, index, frames before) of an unclosed batch
        self.held, self.held_bytes = list[Frame](), 0  # its first frames, within ``hold`` bytes
        self.spilled: tuple[int, int, int] | None = None  # its frames past them: (index, offsets position, count)
        self._zeros: int | None = None  # where the run of zero bytes that ends the file starts, once read

    def frame_at(self, pos: int, *, need_magic: bool = True) -> bytes | None:
        """The payload of a fully valid frame at ``pos`` (magic if ``need_magic``, length, CRC), else None.
        Raises _OutOfWork."""
        data, length = self.data, 0
        head = data.view(pos, pos + _FH)
        if len(head) == _FH:
            magic, length, crc = FRAME_STRUCT.unpack_from(head)
            if (need_magic and magic not in FRAME_MAGICS) or not 1 <= length <= MAX_RECORD_SIZE \
                    or pos + _FH + length > data.size:
                length = 0  # the declared length is bounded before it is used
        self.work -= _FH + length
        if self.work < 0:
            raise _OutOfWork
        if not length:
            return None
        view = data.view(pos + _FH, pos + _FH + length)
        return view.tobytes() if zlib.crc32(view) == crc else None  # no copy until it checks out

    def zeros_start(self) -> int:
        """Where the run of zero bytes that ends the file starts (:meth:`Window.zeros_start`, read once)."""
        if self._zeros is None:
            self._zeros = self.data.zeros_start()
        return self._zeros

    def unwritten_from(self) -> int | None:
        """The disk sector boundary from which the file may never have been written: the first multiple of
        :data:`SECTOR` at or after :meth:`zeros_start`, if it is at most :data:`ZERO_SLACK` bytes after it (bytes
        written just before it may be zeros) and inside the file; else None."""
        zeros = self.zeros_start()
        boundary = -(-zeros // SECTOR) * SECTOR
        return boundary if boundary - zeros <= ZERO_SLACK and boundary < self.data.size else None

    def resync(self, pos: int) -> int:
        """Offset of the next fully valid frame after ``pos``, or -1. Raises _OutOfWork."""
        found = self.data.search(_ANY_MAGIC, pos + 1, len(FRAME_MAGIC))
        while found >= 0 and self.frame_at(found) is None:
            found = self.data.search(_ANY_MAGIC, found + 1, len(FRAME_MAGIC))
        return found

    def take(self, pos: int, index: int, payload: bytes) -> Iterator[Frame]:
        """Record the valid frame at ``pos``; yield the frames now known to be records (a batch's, at its end)."""
        frame = Frame(index, pos, payload)
        if self.data.view(pos, pos + 4) == BATCH_MAGIC:
            self.batch = self.batch or (pos, index, len(self.offsets))
            if self.spilled is not None:
                self.spilled = (*self.spilled[:2], self.spilled[2] + 1)
            elif self.held_bytes + len(payload) + _HELD_FRAME > self.hold:  # from here on, offsets only
                self.spilled = (index, len(self.offsets), 1)
            else:
                self.held.append(frame)
                self.held_bytes += len(payload) + _HELD_FRAME
        else:
            self.batch = None
        self.offsets.append(pos)
        self.end = pos + _FH + len(payload)
        if self.batch is None:
            yield from self.release()
            yield frame

    def release(self) -> Iterator[Frame]:
        """The held frames of a batch that closed (or was followed by damage other than a torn tail), then its
        frames past them, read again by their offsets."""
        held, spilled = self.held, self.spilled
        self.held, self.held_bytes, self.spilled = [], 0, None
        yield from held
        if spilled is not None:
            index, at, count = spilled
            for k in range(count):
                yield Frame(index + k, self.offsets[at + k], self.reread(self.offsets[at + k]))

    def reread(self, pos: int) -> bytes:
        """The payload of the valid frame at ``pos``, read again. Raises CorruptStoreError if it changed."""
        _, length, crc = FRAME_STRUCT.unpack_from(self.data.view(pos, pos + _FH))
        payload = self.data.copy(pos + _FH, pos + _FH + length)
        if len(payload) != length or zlib.crc32(payload) != crc:
            raise CorruptStoreError(f"the frame at offset {pos} changed while the file was read", code=CHECKSUM)
        return payload

    def damage(self, problem: StoreProblem) -> Iterator[Frame]:
        """Record a damaged span; a torn tail takes the unclosed batch before it along, other damage lets the
        batch's frames be records (yielded)."""
        if problem.code == TORN and self.batch is not None:
            problem = self.unclosed_batch(self.batch)
        yield from self.release()
        self.batch = None
        self.note(problem)

    def note(self, problem: StoreProblem) -> None:
        """Add ``problem`` to :attr:`problems`: past the first :attr:`kept`, it takes the place of the latest one
        (counted in :attr:`omitted` by code), so that the first and the last problem are always there, and the last
        one before a torn tail (the largest damaged position: where the records of the file end)."""
        problems, kept = self.problems, self.kept
        if kept is not None and len(problems) > kept and problem.code != TORN:  # a torn tail is the last problem
            self.omitted[problems[-1].code] += 1
            problems[-1] = problem
        else:
            problems.append(problem)

    def unclosed_batch(self, batch: tuple[int, int, int]) -> StoreProblem:
        """Drop the frames of ``batch``, still open at end of file: a torn tail from its first frame."""
        offset, index, before = batch
        del self.offsets[before:]
        self.held, self.held_bytes, self.spilled = [], 0, None
        self.end, self.batch = offset, None
        reason = (f"record {index}: incomplete batch (interrupted append: {_REPAIR}); {self.data.size - offset} "
                  f"bytes from offset {offset} to end of file skipped")
        return StoreProblem(code=TORN, index=index, offset=offset, reason=reason)

    def run(self, pos: int, index: int = 0) -> Iterator[Frame]:
        """Read frames from ``pos`` (the end of the header, or where record ``index`` begins) to end of file,
        yielding each record's frame."""
        self.end, size = pos, self.data.size
        while pos < size:
            try:
                payload = self.frame_at(pos)
                if payload is not None:
                    yield from self.take(pos, index, payload)
                    pos = self.end
                else:
                    problem, pos = _diagnose(self, pos, index)
                    yield from self.damage(problem)
            except _OutOfWork:
                reason = (f"record {index}: damage too dense to search for frames (over {work_budget(size)} "
                          f"bytes checked); {size - pos} bytes from offset {pos} to end of file skipped")
                yield from self.damage(StoreProblem(code=RESYNC_LIMIT, index=index, offset=pos, reason=reason))
                pos = size
            index += 1
        if self.batch is not None:
            self.note(self.unclosed_batch(self.batch))


def _unwritten(scan: _Pass, pos: int, head: bytes) -> bool:
    """True if the frame at ``pos`` with header ``head`` (a frame magic, a valid length) is the end of an append
    that never reached the disk: the file reads as zeros from a disk sector boundary inside the frame
    (:meth:`_Pass.unwritten_from`) to its end, and the frame ends the file, or, a ``STRB`` frame, its batch
    (whose later frames were in the zeros). Records of earlier appends were on the disk before it began, so
    zeros that start elsewhere, or run past a ``STR1`` frame, are damage."""
    magic, length, _ = FRAME_STRUCT.unpack(head)
    end = pos + _FH + length
    if end > scan.data.size or (magic != BATCH_MAGIC and end != scan.data.size):
        return False
    unwritten = scan.unwritten_from()
    return unwritten is not None and pos < unwritten < end


def _header_unwritten(scan: _Pass, pos: int) -> bool:
    """True if the file reads as zeros from a disk sector boundary inside the 12-byte frame header at ``pos``
    (:meth:`_Pass.unwritten_from`), after a prefix of a frame magic: a power cut in an append's first sector."""
    unwritten = scan.unwritten_from()
    return unwritten is not None and pos < unwritten < pos + _FH and _magic_prefix(
        scan.data.copy(pos, min(unwritten, pos + 4)))


def _cut_short(data: Window, pos: int, head: bytes) -> bool:
    """True if the frame at ``pos`` with header ``head`` (a frame magic, a valid length) runs past end of file
    and the bytes it has do not check out as a whole payload under its CRC (else the record was whole and its
    length field is damaged)."""
    _, length, crc = FRAME_STRUCT.unpack(head)
    if pos + _FH + length <= data.size:
        return False
    return data.size == pos + _FH or zlib.crc32(data.view(pos + _FH, data.size)) != crc


def _diagnose(scan: _Pass, pos: int, index: int) -> tuple[StoreProblem, int]:
    """Classify the damage at ``pos``, where no valid frame starts; return it and where scanning resumes.
    Raises _OutOfWork."""
    data = scan.data
    head, size = data.copy(pos, pos + _FH), data.size
    magic_ok, length = head[:4] in FRAME_MAGICS, -1
    if len(head) == _FH:
        length = FRAME_STRUCT.unpack(head)[1]
        end = pos + _FH + length
        at_boundary = end <= size and (  # a frame, or the start of one, or end of file, follows
            _magic_prefix(data.copy(end, end + 4)) or scan.frame_at(end, need_magic=False) is not None)
        if 1 <= length <= MAX_RECORD_SIZE and at_boundary and not (
                magic_ok and end == size and _unwritten(scan, pos, head)):
            if magic_ok:
                what = f"record {index}: payload CRC32 does not match ({length} bytes skipped)"
                return StoreProblem(code=CHECKSUM, index=index, offset=pos, reason=what), end
            if scan.frame_at(pos, need_magic=False) is not None:
                what = f"record {index}: frame magic {head[:4]!r}, want {_WANT} (frame skipped)"
                return StoreProblem(code=BAD_MAGIC, index=index, offset=pos, reason=what), end
    nxt = scan.resync(pos)
    if nxt < 0 and (scan.zeros_start() <= pos or _header_unwritten(scan, pos) or (  # zeros, or an interrupted append
            _magic_prefix(head[:4]) if len(head) < _FH else magic_ok and 1 <= length <= MAX_RECORD_SIZE and (
                _cut_short(data, pos, head) or _unwritten(scan, pos, head)))):
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


class Survey:
    """One front-to-back read of a ledger file's frames (:meth:`frames`, once), in memory bounded by
    :data:`~ledger.storage.window.WINDOW` plus ``hold`` bytes of an unclosed batch's payloads, whatever the file's
    size. One work budget (:func:`work_budget`), so the time is linear in the file size however the damage is laid
    out. ``origin`` is read on creation; ``offsets`` (frame offsets by record index: a frame can be read again by
    its offset), ``problems`` and ``end`` (the byte after the last valid frame) are whole once :meth:`frames` is
    exhausted.

    ``read(offset, n)``: up to n bytes of the file at offset, short only at end of file; ``size``: the file's
    size in bytes (a snapshot: bytes appended later are not read); ``start``: the offset of the first frame.
    Raises InputError("store.not_a_ledger"), CorruptStoreError("store.bad_header"); whatever ``read`` raises.
    """

    def __init__(self, read: Read, size: int, *, hold: int = HOLD, resume: tuple[int, int] | None = None,
                 kept: int | None = KEPT_PROBLEMS) -> None:
        self.origin, self.start = read_header(read(0, min(size, MAX_HEADER)))
        self.size = size
        self._first = 0
        if resume is not None:  # (record index, byte offset) where a reader that knows the frames before goes on
            self._first, self.start = resume
        self._pass = _Pass(Window(read, size), hold, kept)

    def frames(self) -> Iterator[Frame]:
        """Every valid frame, in order (a record's once its batch is known to be whole), from ``resume`` if given
        (``offsets`` then holds only the frames from there)."""
        return self._pass.run(self.start, self._first)

    @property
    def offsets(self) -> array[int]:
        return self._pass.offsets

    @property
    def problems(self) -> list[StoreProblem]:
        """The damaged spans, in file order: every one, or past the first ``kept`` only the latest (and a torn
        tail, always last); the others are counted in :attr:`omitted`."""
        return self._pass.problems

    @property
    def omitted(self) -> dict[str, int]:
        """The damaged spans not in :attr:`problems`, counted by code (sorted by code)."""
        return dict(sorted(self._pass.omitted.items()))

    @property
    def end(self) -> int:
        return self._pass.end


def survey(data: bytes, frames: list[Frame] | None = None) -> tuple[str, array[int], list[StoreProblem], int]:
    """Parse a whole file's bytes (:class:`Survey`): (origin, frame offsets, problems, end of last valid frame);
    fill ``frames``. Raises InputError("store.not_a_ledger"), CorruptStoreError("store.bad_header")."""
    return read_all(lambda offset, n: data[offset : offset + n], len(data), frames)


def read_all(read: Read, size: int, frames: list[Frame] | None = None
             ) -> tuple[str, array[int], list[StoreProblem], int]:
    """As :func:`survey`, of the file ``read`` gives (:class:`Survey`); every frame is held in ``frames`` (so
    a batch's frames are never read twice)."""
    whole = Survey(read, size, hold=size if frames is not None else HOLD)
    for frame in whole.frames():
        if frames is not None:
            frames.append(frame)
    return whole.origin, whole.offsets, whole.problems, whole.end
