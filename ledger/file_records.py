"""The records of a ledger file kept as where they are in it, not as objects: what a replay holds for display
(:mod:`ledger.replay`), so that its memory follows the items, not the log (44 bytes a record, where a decoded
record takes about 4 KB: 3.5 GB at 10^6 records).
"""

from __future__ import annotations

import os
from array import array
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import overload

from .errors import CorruptStoreError, InputError, StorageError
from .merkle import leaf_hash
from .record import Record
from .storage.frames import read_frame
from .storage.framing import FRAME_HEADER, Frame

__all__ = ["FileRecords"]

#: Records a :class:`FileRecords` keeps decoded after reading them (a scope's records are read several times).
CACHED = 4096


class FileRecords(Sequence[Record | None]):
    """``records[i]``: the record at position i of the ledger file at ``path`` (None where unreadable), as a
    replay read it: the replay notes each position (:meth:`add`, :meth:`skip`), and a record asked for is read
    again from the file (one read of its frame), its frame checksum and leaf hash (RFC 9162 §2.1.1, the record
    hash the replay judged) checked. Iterating reads the file's records in order, keeping none.

    Reads raise CorruptStoreError ``store.changed`` if the file no longer holds the record the replay read there,
    StorageError ``store.io`` if it cannot be read (a database ledger's copy, deleted after its replay, say).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._offsets = array("q")  # -1: unreadable
        self._lengths = array("I")
        self._hashes = bytearray()  # 32 bytes a position (zeros where unreadable)
        self._cache: dict[int, Record] = {}

    def add(self, frame: Frame, record: Record) -> None:
        """Note ``record``, read from ``frame``, at the next position (``frame.index`` must be it)."""
        if frame.index != len(self._offsets):
            raise InputError(f"record {frame.index} noted at position {len(self._offsets)}", code="input.value")
        self._offsets.append(frame.offset)
        self._lengths.append(len(frame.payload))
        self._hashes += record.record_hash

    def skip(self) -> None:
        """Note an unreadable position (a damaged frame, or a record that does not decode)."""
        self._offsets.append(-1)
        self._lengths.append(0)
        self._hashes += bytes(32)

    def __len__(self) -> int:
        return len(self._offsets)

    @overload
    def __getitem__(self, index: int) -> Record | None: ...

    @overload
    def __getitem__(self, index: slice) -> list[Record | None]: ...

    def __getitem__(self, index: int | slice) -> Record | list[Record | None] | None:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(f"record {index} out of range 0..{len(self) - 1}")
        if (record := self._cache.get(index)) is not None or self._offsets[index] < 0:
            return record
        with self._open() as read:
            record = self._read(read, index)
        if len(self._cache) >= CACHED:
            self._cache.clear()
        self._cache[index] = record
        return record

    def __iter__(self) -> Iterator[Record | None]:
        with self._open() as read:
            for index in range(len(self)):
                yield self._cache.get(index) or (None if self._offsets[index] < 0 else self._read(read, index))

    def _open(self) -> _Reader:
        try:
            return _Reader(os.open(self.path, os.O_RDONLY), self.path)
        except OSError as exc:
            raise StorageError(f"cannot read the ledger file {self.path} again: {exc.strerror or exc}",
                               code="store.io") from exc

    def _read(self, read: _Reader, index: int) -> Record:
        payload = read_frame(read(self._offsets[index], FRAME_HEADER + self._lengths[index]))
        if payload is None or bytes(leaf_hash(payload)) != self._hashes[32 * index:32 * index + 32]:
            raise CorruptStoreError(f"{self.path}: record {index} is not the one read before: the file changed",
                                    code="store.changed")
        return Record.from_bytes(payload)  # the bytes decoded before: they decode again


class _Reader:
    """An open file descriptor read at offsets; a context manager that closes it."""

    def __init__(self, fd: int, path: Path) -> None:
        self._fd, self._path = fd, path

    def __call__(self, offset: int, n: int) -> bytes:
        try:
            return os.pread(self._fd, n, offset)
        except OSError as exc:
            raise StorageError(f"cannot read the ledger file {self._path} again: {exc.strerror or exc}",
                               code="store.io") from exc

    def __enter__(self) -> _Reader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        os.close(self._fd)
