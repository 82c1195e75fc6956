"""The append-only ledger file: the only filesystem code (DESIGN.md §6). Payloads are opaque bytes.

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

Damage found by :func:`scan` (a :class:`StoreProblem` covers the bytes from ``offset`` to the next valid frame
or end of file; ``index`` is the number of the record that would start at ``offset``):

- ``store.checksum_mismatch``: frame magic present but the payload CRC does not match, or the declared length
  is 0 or does not end at a frame boundary (then the bytes up to the next fully valid frame are skipped).
- ``store.bad_magic``: no frame magic where a frame should start. If the rest of that frame checks out
  (length, CRC) only it is skipped; else scanning resumes at the next offset holding a fully valid frame. How
  many records such a span held is unknown: the frames after it are numbered as if it held one.
- ``store.oversize``: frame magic present but the declared length exceeds MAX_RECORD_SIZE.
- ``store.torn_tail``: damage running to end of file, with no valid frame after it, that looks like an
  interrupted append: a prefix of a frame header, a frame whose length runs past end of file, or only zeros.

One writer per file (``fcntl.flock``); readers take no lock and see a snapshot of the file's size, so a reader
racing an append may see it as a torn tail. A handle is not thread-safe.
"""

from __future__ import annotations

import fcntl
import os
import struct
import zlib
from array import array
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Self

from .errors import CorruptStoreError, InputError, LockedError, StorageError

__all__ = ["FORMAT_VERSION", "FRAME_MAGIC", "MAGIC", "MAX_RECORD_SIZE", "FileStore", "Frame", "ScanResult",
           "StoreProblem", "repair", "scan"]

MAGIC = b"STNTRAIL"
FRAME_MAGIC = b"STR1"
FORMAT_VERSION = 1
MAX_RECORD_SIZE = 1 << 20  # bytes of payload in one frame
MAX_ORIGIN_SIZE = 255
FILE_MODE = 0o644  # ledger and sidecar files, before the umask
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


def _pread(fd: int, n: int, offset: int) -> bytes:
    """Up to ``n`` bytes at ``offset``, short only at end of file. Raises OSError."""
    parts: list[bytes] = []
    while n > 0 and (part := os.pread(fd, n, offset)):
        parts.append(part)
        n, offset = n - len(part), offset + len(part)
    return b"".join(parts)


def _write_all(fd: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextmanager
def _io(path: Path, action: str) -> Iterator[None]:
    """Turn an OSError into StorageError("store.io")."""
    try:
        yield
    except OSError as exc:
        raise StorageError(f"{action} {path}: {exc.strerror or exc}", code="store.io") from exc


def _lock(fd: int, path: Path) -> None:
    # flock, not lockf / fcntl(F_SETLK): a POSIX record lock belongs to the (process, file) pair, so it never
    # conflicts within one process and is silently released when the process closes *any* descriptor of the
    # file (a scan() in the writer's process would drop it). A flock lock belongs to the open file
    # description: a second open() conflicts even in-process, and the lock lasts until this fd is closed.
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError as exc:
        raise LockedError(f"{path} is locked by another writer", code="store.locked") from exc
    except OSError as exc:
        raise StorageError(f"cannot lock {path}: {exc.strerror or exc}", code="store.io") from exc


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


def _survey(fd: int, frames: list[Frame] | None = None) -> tuple[str, array[int], list[StoreProblem], int]:
    """Read the whole file: (origin, frame offsets, problems, end of last valid frame); fill ``frames``.

    Raises CorruptStoreError("store.bad_header"), OSError.
    """
    data = _pread(fd, os.fstat(fd).st_size, 0)  # a snapshot: bytes appended later are not seen
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


def scan(path: str | os.PathLike[str]) -> ScanResult:
    """Read the whole ledger file, without locking, and report every valid frame and every damaged span.

    Damaged frames never raise: they are listed in ``problems`` (codes in the module docstring).
    Raises:
        CorruptStoreError: "store.bad_header" if the file header is short, damaged or of another version.
        StorageError: "store.io" on any OSError (missing file, permissions, read error).
    """
    p, frames = Path(path), list[Frame]()
    with _io(p, "scanning"):
        fd = os.open(p, os.O_RDONLY)
        try:
            origin, _, problems, end = _survey(fd, frames)
        finally:
            os.close(fd)
    return ScanResult(origin=origin, frames=frames, problems=problems, end_offset=end)


class FileStore:
    """An open ledger (from :meth:`create` or :meth:`open`): read records by index; append if writable."""

    def __init__(self, path: Path, fd: int, origin: str, offsets: array[int], end: int, *, writable: bool,
                 problems: Sequence[StoreProblem] = ()) -> None:
        self.path, self.origin, self.writable, self.problems = path, origin, writable, tuple(problems)
        self._fd, self._offsets, self._end, self._broken = fd, offsets, end, False

    @classmethod
    def create(cls, path: str | os.PathLike[str], origin: str) -> FileStore:
        """Create a new ledger (O_EXCL), write and fsync its header, fsync the directory; hold the lock.

        Raises:
            InputError: "store.bad_origin" unless origin is 1..255 ASCII 0x21..0x7E bytes without "+".
            StorageError: "store.exists" if the path exists; "store.fsync_failed" if the header write fails.
        """
        p, raw = Path(path), origin.encode("utf-8")
        if (why := _origin_problem(raw)) is not None:
            raise InputError(why, code="store.bad_origin")
        head = _HEAD.pack(MAGIC, FORMAT_VERSION, len(raw)) + raw
        head += _CRC.pack(zlib.crc32(head))
        try:
            fd = os.open(p, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except FileExistsError as exc:
            raise StorageError(f"{p} already exists; refusing to overwrite it", code="store.exists") from exc
        except OSError as exc:
            raise StorageError(f"cannot create {p}: {exc.strerror or exc}", code="store.io") from exc
        try:
            _lock(fd, p)
            _write_all(fd, head)
            os.fsync(fd)
            _fsync_dir(p.parent)
        except BaseException as exc:
            os.close(fd)
            p.unlink(missing_ok=True)  # our own new file, holding no record
            if isinstance(exc, OSError):
                raise StorageError(f"writing the header of {p}: {exc}", code=FSYNC_FAILED) from exc
            raise
        return cls(p, fd, origin, array("Q"), len(head), writable=True)

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, writable: bool = False) -> FileStore:
        """Open a ledger and index its frames; writable takes the writer lock.

        A read-only handle tolerates a torn tail (maybe an append in progress), listed in ``problems``.
        Raises:
            LockedError: writable, and another handle or process holds the writer lock.
            CorruptStoreError: "store.bad_header", or the code of the first problem (a torn tail too, if
                writable): run :func:`repair` for a torn tail, an audit for anything else.
            StorageError: "store.io" on OSError.
        """
        p = Path(path)
        with _io(p, "opening"):
            fd = os.open(p, os.O_RDWR | os.O_APPEND if writable else os.O_RDONLY)
        try:
            if writable:
                _lock(fd, p)
            with _io(p, "scanning"):
                origin, offsets, problems, end = _survey(fd)
            if bad := [q for q in problems if writable or q.code != TORN]:
                raise CorruptStoreError(f"{p}: {bad[0].reason} ({len(problems)} problems)", code=bad[0].code)
        except BaseException:
            os.close(fd)
            raise
        return cls(p, fd, origin, offsets, end, writable=writable, problems=problems)

    @property
    def size(self) -> int:
        """Number of valid records: as of open, plus this handle's own appends."""
        return len(self._offsets)

    def append(self, payload: bytes) -> int:
        """Append one record; return its index once it is durable (fsynced). Raises as append_batch."""
        return self.append_batch([payload])

    def append_batch(self, payloads: Sequence[bytes]) -> int:
        """Append records with one write and one fsync; return the first index (``size`` if none).

        Raises:
            TypeError: a payload is not bytes.
            InputError: "store.oversize" / "store.empty_payload"; nothing is written.
            StorageError: "store.fsync_failed" if the write or fsync fails, now or in an earlier append
                (the handle is broken for good, never retried: reopen, repair a torn tail); "store.read_only",
                "store.closed".
        """
        self._check_open()
        if not self.writable:
            raise StorageError(f"{self.path} was opened read-only", code="store.read_only")
        if self._broken:
            raise StorageError(f"an earlier append to {self.path} failed; reopen it", code=FSYNC_FAILED)
        first, pos, blob, offsets = len(self._offsets), self._end, bytearray(), array("Q")
        for payload in payloads:
            if not isinstance(payload, bytes):
                raise TypeError(f"payload must be bytes, got {type(payload).__name__}")
            if not 1 <= len(payload) <= MAX_RECORD_SIZE:
                code = OVERSIZE if payload else "store.empty_payload"
                raise InputError(f"payload is {len(payload)} bytes, want 1..{MAX_RECORD_SIZE}", code=code)
            offsets.append(pos)
            blob += _FRAME.pack(FRAME_MAGIC, len(payload), zlib.crc32(payload)) + payload
            pos += _FH + len(payload)
        if not blob:
            return first
        try:
            if os.fstat(self._fd).st_size != self._end:
                raise OSError(f"the file changed size under the writer lock (expected {self._end} bytes)")
            _write_all(self._fd, blob)
            os.fsync(self._fd)
        except OSError as exc:
            self._broken = True
            raise StorageError(f"append to {self.path} failed: {exc}", code=FSYNC_FAILED) from exc
        self._offsets.extend(offsets)
        self._end = pos
        return first

    def read(self, index: int) -> bytes:
        """The payload of record ``index`` (0 <= index < size), read from the file and re-checked.

        Raises IndexError; CorruptStoreError "store.checksum_mismatch" if the frame changed since it was
        indexed; StorageError "store.io", "store.closed".
        """
        self._check_open()
        if not 0 <= index < len(self._offsets):
            raise IndexError(f"record index {index} out of range 0..{len(self._offsets) - 1}")
        start = self._offsets[index]
        stop = self._offsets[index + 1] if index + 1 < len(self._offsets) else self._end
        with _io(self.path, "reading"):
            raw = _pread(self._fd, stop - start, start)
        payload = raw[_FH:]
        if len(raw) < _FH or _FRAME.unpack_from(raw) != (FRAME_MAGIC, len(payload), zlib.crc32(payload)):
            raise CorruptStoreError(f"record {index} at offset {start} has changed", code=CHECKSUM)
        return payload

    def records(self) -> Iterator[bytes]:
        """Every record's payload in order, read from the file."""
        return map(self.read, range(len(self._offsets)))

    __iter__ = records

    def close(self) -> None:
        """Close the file, releasing the writer lock. Idempotent."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def _check_open(self) -> None:
        if self._fd < 0:
            raise StorageError(f"{self.path} is closed", code="store.closed")

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _move_aside(tail: bytes, side: Path) -> None:
    """Write ``tail`` into the new file ``side``; fsync it and its directory. A ``side`` that already holds
    exactly ``tail`` (left by an interrupted repair) is kept. Raises StorageError "store.exists"; OSError."""
    try:
        out = os.open(side, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        if side.read_bytes() != tail:
            raise StorageError(f"{side} exists with other bytes; move it away", code="store.exists") from None
        return
    try:
        _write_all(out, tail)
        os.fsync(out)
    finally:
        os.close(out)
    _fsync_dir(side.parent)


def repair(path: str | os.PathLike[str]) -> Path | None:
    """Move a torn tail into ``<path>.torn-<offset>``; truncate the ledger to the end of its last valid frame.

    Takes the writer lock. The sidecar is written and fsynced before the ledger is truncated and fsynced, so
    no byte is ever lost. Returns the sidecar's path, or None if the file has no problem.
    Raises:
        LockedError: a writer holds the ledger.
        CorruptStoreError: "store.bad_header", or the code of a problem other than a torn tail (that needs an
            audit, not a truncate); the file is left untouched.
        StorageError: "store.io" on OSError; "store.exists" if the sidecar exists with other bytes.
    """
    p = Path(path)
    with _io(p, "opening"):
        fd = os.open(p, os.O_RDWR)
    try:
        _lock(fd, p)
        with _io(p, "repairing"):
            _, _, problems, end = _survey(fd)
            if not problems:
                return None
            if problems[0].code != TORN:  # a torn tail is always the last problem
                raise CorruptStoreError(f"{p}: {problems[0].reason}; audit it", code=problems[0].code)
            side = p.with_name(f"{p.name}.torn-{end}")
            _move_aside(_pread(fd, os.fstat(fd).st_size - end, end), side)
            os.ftruncate(fd, end)
            os.fsync(fd)
            return side
    finally:
        os.close(fd)
