"""The append-only ledger file: the file-system code of ledgers (DESIGN.md §6; other files a user is given are
:mod:`ledger._files`'s). Payloads are opaque bytes.

The file's bytes (header, frames, and the ``store.*`` codes of damaged framing) are :mod:`ledger.storage.framing`'s;
this module reads, appends, fsyncs, locks and repairs. One writer per file (``fcntl.flock``); readers take no
lock and see a snapshot of the file's size, so a reader racing an append may see it as a torn tail. A handle is
not thread-safe. A write or fsync that fails poisons the writing handle: every later append through it raises
``store.poisoned`` (what reached the disk is unknown until the file is reopened, and repaired if torn).
"""

from __future__ import annotations

import fcntl
import os
import stat
from array import array
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Self

from .._files import fsync_dir, io_errors, write_all
from ..errors import CorruptStoreError, InputError, LockedError, StorageError
from .frames import pack_batch, read_frame
from .framing import (
    BATCH_MAGIC,
    FRAME_MAGIC,
    FSYNC_FAILED,
    KEPT_PROBLEMS,
    MAX_RECORD_SIZE,
    TORN,
    Frame,
    ScanResult,
    StoreProblem,
    Survey,
    read_all,
)
from .header import FORMAT_VERSION, MAGIC, MAX_HEADER, pack_header, read_header

__all__ = ["BATCH_MAGIC", "FORMAT_VERSION", "FRAME_MAGIC", "MAGIC", "MAX_RECORD_SIZE", "FileStore", "Frame",
           "FrameFile", "ScanResult", "StoreProblem", "origin_of", "scan"]

FILE_MODE = 0o644  # ledger and sidecar files, before the umask


def _pread(fd: int, n: int, offset: int) -> bytes:
    """Up to ``n`` bytes at ``offset``, short only at end of file. Raises OSError."""
    parts: list[bytes] = []
    while n > 0 and (part := os.pread(fd, n, offset)):
        parts.append(part)
        n, offset = n - len(part), offset + len(part)
    return b"".join(parts)


def _regular(path: Path) -> None:
    """Refuse anything but a regular file before opening it (a named pipe would block the open forever, a
    device would never end). Raises InputError "store.not_a_file"; OSError."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise InputError(f"{path} is not a regular file, so not a ledger", code="store.not_a_file")


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


def _survey(fd: int, frames: list[Frame] | None = None) -> tuple[str, array[int], list[StoreProblem], int]:
    """Read and parse the whole file (:func:`ledger.storage.framing.read_all`). Raises CorruptStoreError
    ("store.bad_header"), InputError ("store.not_a_ledger"), OSError."""
    # a snapshot of the size: bytes appended later are not seen
    return read_all(lambda offset, n: _pread(fd, n, offset), os.fstat(fd).st_size, frames)


def _header(fd: int) -> tuple[str, array[int], list[StoreProblem], int]:
    """The header alone (origin, no offsets, no problems, end of header). Raises as :func:`_survey`."""
    origin, end = read_header(_pread(fd, MAX_HEADER, 0))
    return origin, array("Q"), [], end


def _unlocated(index: int) -> bytes:
    raise IndexError(f"record index {index}: not read by this handle")


def _open_regular(p: Path) -> int:
    """A read-only descriptor of the regular file ``p``. Raises StorageError "store.io", InputError
    "store.not_a_file"."""
    with io_errors(p, "scanning"):
        _regular(p)
        return os.open(p, os.O_RDONLY)


def origin_of(path: str | os.PathLike[str]) -> str:
    """The origin in the header of the ledger file at ``path``, reading its first bytes only. Raises InputError
    "store.not_a_file" (a FIFO, say: never opened), "store.not_a_ledger"; CorruptStoreError "store.bad_header";
    StorageError "store.io"."""
    p = Path(path)
    fd = _open_regular(p)
    try:
        with io_errors(p, "reading"):
            return read_header(_pread(fd, MAX_HEADER, 0))[0]
    finally:
        os.close(fd)


def scan(path: str | os.PathLike[str]) -> ScanResult:
    """Read the whole ledger file, without locking, and report every valid frame and every damaged span.
    Every payload is held in memory: to read a file of any size, use :class:`FrameFile`.

    Damaged frames never raise: they are listed in ``problems`` (codes in the module docstring).
    Raises:
        CorruptStoreError: "store.bad_header" if the file header is short, damaged or of another version.
        InputError: "store.not_a_ledger" if the file is empty or does not start with the ledger magic.
        StorageError: "store.io" on any OSError (missing file, permissions, read error).
    """
    p, frames = Path(path), list[Frame]()
    fd = _open_regular(p)
    try:
        with io_errors(p, "scanning"):
            origin, _, problems, end = _survey(fd, frames)
    finally:
        os.close(fd)
    return ScanResult(origin=origin, frames=frames, problems=problems, end_offset=end)


class FrameFile:
    """A ledger file read front to back without locking, in memory bounded whatever its size
    (:class:`ledger.storage.framing.Survey`): :meth:`frames` once, then any frame again by its record index
    (:meth:`payload`). A context manager (closes the file). ``resume`` (record index, byte offset of its frame):
    read from there on (a piece of the file whose earlier frames are known). ``kept``: the damaged spans the
    survey keeps (:class:`~ledger.storage.framing.Survey`; None: all).

    Raises on creation: as :func:`scan`.
    """

    def __init__(self, path: str | os.PathLike[str], *, resume: tuple[int, int] | None = None,
                 kept: int | None = KEPT_PROBLEMS) -> None:
        self.path = Path(path)
        self._fd = _open_regular(self.path)
        try:
            with io_errors(self.path, "scanning"):
                self.survey = Survey(lambda offset, n: _pread(self._fd, n, offset), os.fstat(self._fd).st_size,
                                     resume=resume, kept=kept)
        except BaseException:
            os.close(self._fd)
            raise
        self.origin = self.survey.origin

    def frames(self) -> Iterator[Frame]:
        """Every valid frame in order (damaged spans: ``survey.problems``, whole at the end). Raises
        StorageError "store.io"; CorruptStoreError "store.checksum_mismatch" if a frame changed while read."""
        with io_errors(self.path, "scanning"):
            yield from self.survey.frames()

    def read(self, offset: int, n: int) -> bytes:
        """Up to ``n`` bytes of the file at ``offset``, short only at its end. Raises StorageError "store.io"."""
        with io_errors(self.path, "reading"):
            return _pread(self._fd, n, offset)

    def payload(self, index: int) -> bytes:
        """The payload of record ``index`` (after :meth:`frames`), read again by its offset and re-checked.
        Raises as :meth:`FileStore.read`."""
        return _read_at(self._fd, self.path, self.survey.offsets, self.survey.end, index)

    def close(self) -> None:
        """Close the file. Idempotent."""
        if self._fd >= 0:
            fd, self._fd = self._fd, -1
            os.close(fd)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _read_at(fd: int, path: Path, offsets: array[int], end: int, index: int) -> bytes:
    """The payload of record ``index`` of a file whose frames start at ``offsets`` and end at ``end``.
    Raises IndexError; CorruptStoreError "store.checksum_mismatch" (the frame changed); StorageError "store.io"."""
    if not 0 <= index < len(offsets):
        raise IndexError(f"record index {index} out of range 0..{len(offsets) - 1}")
    start = offsets[index]
    stop = offsets[index + 1] if index + 1 < len(offsets) else end
    with io_errors(path, "reading"):
        raw = _pread(fd, stop - start, start)
    if (payload := read_frame(raw)) is None:
        raise CorruptStoreError(f"record {index} at offset {start} has changed", code="store.checksum_mismatch")
    return payload


class FileStore:
    """An open ledger (from :meth:`create` or :meth:`open`): read records by index; append if writable."""

    def __init__(self, path: Path, fd: int, origin: str, offsets: array[int], end: int, *, writable: bool,
                 problems: Sequence[StoreProblem] = ()) -> None:
        self.path, self.origin, self.writable, self.problems = path, origin, writable, tuple(problems)
        self._fd, self._offsets, self._end, self._poisoned = fd, offsets, end, False
        self._base = 0  # records before ``_offsets``, read by ``_locate`` (see resume)
        self._locate: Callable[[int], bytes] = _unlocated

    @classmethod
    def create(cls, path: str | os.PathLike[str], origin: str) -> FileStore:
        """Create a new ledger (O_EXCL), write and fsync its header, fsync the directory; hold the lock.

        Raises:
            InputError: "store.bad_origin" unless origin is 1..255 ASCII 0x21..0x7E bytes without "+".
            StorageError: "store.exists" if the path exists; "store.fsync_failed" if the header write fails.
        """
        p, head = Path(path), pack_header(origin)
        try:
            fd = os.open(p, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except FileExistsError as exc:
            raise StorageError(f"{p} already exists; refusing to overwrite it", code="store.exists") from exc
        except OSError as exc:
            raise StorageError(f"cannot create {p}: {exc.strerror or exc}", code="store.io") from exc
        try:
            _lock(fd, p)
            write_all(fd, head)
            os.fsync(fd)
            fsync_dir(p.parent)
        except BaseException as exc:
            os.close(fd)
            p.unlink(missing_ok=True)  # our own new file, holding no record
            if isinstance(exc, OSError):
                raise StorageError(f"writing the header of {p}: {exc}", code=FSYNC_FAILED) from exc
            raise
        return cls(p, fd, origin, array("Q"), len(head), writable=True)

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, writable: bool = False, survey: bool = True) -> FileStore:
        """Open a ledger and index its frames; writable takes the writer lock. Without ``survey`` only the header
        is read, and the handle holds no record until :meth:`resume` says where they end (an index knows).

        A read-only handle tolerates a torn tail (maybe an append in progress), listed in ``problems``.
        Raises:
            LockedError: writable, and another handle or process holds the writer lock.
            InputError: "store.not_a_ledger" (an empty file, or not a ledger at all).
            CorruptStoreError: "store.bad_header", or the code of the first problem (a torn tail too, if
                writable): run :func:`repair` for a torn tail, an audit for anything else.
            StorageError: "store.io" on OSError.
        """
        p = Path(path)
        with io_errors(p, "opening"):
            _regular(p)
            fd = os.open(p, os.O_RDWR | os.O_APPEND if writable else os.O_RDONLY)
        try:
            if writable:
                _lock(fd, p)
            with io_errors(p, "scanning"):
                origin, offsets, problems, end = _survey(fd) if survey else _header(fd)
            if bad := [q for q in problems if writable or q.code != TORN]:
                more = " or more" if len(problems) > KEPT_PROBLEMS else ""  # the survey kept the first ones
                raise CorruptStoreError(f"{p}: {bad[0].reason} ({len(problems)} problems{more})", code=bad[0].code)
        except BaseException:
            os.close(fd)
            raise
        return cls(p, fd, origin, offsets, end, writable=writable, problems=problems)

    @property
    def size(self) -> int:
        """Number of valid records: as of open, plus this handle's own appends."""
        return self._base + len(self._offsets)

    def resume(self, records: int, end: int, locate: Callable[[int], bytes]) -> None:
        """Take the file's first ``records`` records, whose frames end at byte ``end``, as this handle's, read by
        ``locate(index)`` (the persistent index's reader); later appends follow them. Raises StorageError
        "store.closed"."""
        self._check_open()
        self._base, self._offsets, self._end, self._locate = records, array("Q"), end, locate

    def append(self, payload: bytes) -> int:
        """Append one record; return its index once it is durable (fsynced). Raises as append_batch."""
        return self.append_batch([payload])

    def append_batch(self, payloads: Sequence[bytes]) -> int:
        """Append records as one batch, with one write and one fsync; return the first index (``size`` if none).

        All or nothing, across a crash too: the batch's frames are marked (:func:`ledger.storage.frames.pack_batch`),
        so a batch cut short reads as a torn tail, which :func:`repair` moves aside whole.
        Raises:
            TypeError: a payload is not bytes.
            InputError: "store.oversize" / "store.empty_payload"; nothing is written.
            StorageError: "store.fsync_failed" if the write or fsync fails (the handle is then poisoned, never
                retried: reopen the file, repair a torn tail); "store.poisoned" if an earlier one failed;
                "store.read_only", "store.closed".
        """
        self.check_intact()
        if not self.writable:
            raise StorageError(f"{self.path} was opened read-only", code="store.read_only")
        first = self.size
        blob, offsets = pack_batch(list(payloads))
        if not blob:
            return first
        try:
            if os.fstat(self._fd).st_size != self._end:
                raise OSError(f"the file changed size under the writer lock (expected {self._end} bytes)")
            write_all(self._fd, blob)
            os.fsync(self._fd)
        except BaseException as exc:
            self._poisoned = True  # some of the bytes may be on disk: this handle's view of the file is stale
            if isinstance(exc, OSError):
                raise StorageError(f"append to {self.path} failed: {exc}", code=FSYNC_FAILED) from exc
            raise
        self._offsets.extend(self._end + offset for offset in offsets)
        self._end += len(blob)
        return first

    def span(self, index: int) -> tuple[int, int]:
        """(offset, length) of the frame of record ``index``, appended through this handle or surveyed when it
        was opened. Raises IndexError for any other."""
        at = index - self._base
        if not 0 <= at < len(self._offsets):
            raise IndexError(f"record index {index}: not read by this handle")
        stop = self._offsets[at + 1] if at + 1 < len(self._offsets) else self._end
        return self._offsets[at], stop - self._offsets[at]

    def poison(self) -> None:
        """Refuse every later append through this handle (``store.poisoned``): its owner lost track of what it
        holds (e.g. an index it could not rebuild)."""
        self._poisoned = True

    def check_intact(self) -> None:
        """Raise unless this handle is open and no write through it has failed.

        Raises StorageError: "store.closed"; "store.poisoned" (an append failed: the file may hold part of it,
        so nothing may be written or signed from this handle's view; reopen the file).
        """
        self._check_open()
        if self._poisoned:
            raise StorageError(f"an earlier append to {self.path} failed, so this handle no longer knows what the "
                               "file holds; close it and reopen the file (repair a torn tail)", code="store.poisoned")

    def read(self, index: int) -> bytes:
        """The payload of record ``index`` (0 <= index < size), read from the file and re-checked.

        Raises IndexError; CorruptStoreError "store.checksum_mismatch" if the frame changed since it was
        indexed; StorageError "store.io", "store.closed".
        """
        self._check_open()
        if 0 <= index < self._base:
            return self._locate(index)
        return _read_at(self._fd, self.path, self._offsets, self._end, index - self._base)

    def records(self) -> Iterator[bytes]:
        """Every record's payload in order, read from the file."""
        return map(self.read, range(self.size))

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
