"""The log as an index sees it (:class:`LogFile`): its own read-only descriptor, and what an index records of the
file to know, when it is opened again, that the file beside it is the one it was written for
(docs/adr/0018-sqlite-index.md)."""

from __future__ import annotations

import contextlib
import glob
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import StorageError
from ..storage.header import pack_header

__all__ = ["LogFile"]


@dataclass(frozen=True, slots=True)
class LogFile:
    """The log as the index sees it: its origin, header bytes and a ``pread`` (its own read-only descriptor,
    so the writer's lock is never touched)."""

    path: Path
    fd: int
    origin: str

    @classmethod
    def open(cls, path: Path, origin: str) -> LogFile:
        """Open the log at ``path`` (of ``origin``) for reading. Raises StorageError "store.io"."""
        try:
            return cls(path, os.open(path, os.O_RDONLY), origin)
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc.strerror or exc}", code="store.io") from exc

    def close(self) -> None:
        """Close the descriptor (idempotent: the writer may close an index it failed to replace)."""
        with contextlib.suppress(OSError):
            os.close(self.fd)

    @property
    def header(self) -> bytes:
        return pack_header(self.origin)

    def read(self, offset: int, n: int) -> bytes:
        parts = []
        while n > 0 and (part := os.pread(self.fd, n, offset)):
            parts.append(part)
            n, offset = n - len(part), offset + len(part)
        return b"".join(parts)

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def identity(self, end: int) -> list[int]:
        """[inode number, size, modification time in ns, side files of a repair at byte ``end``] of the file: what
        an index ending at ``end`` written after the log's last change recorded, unless the file was changed since
        (appended to by a writer that stopped before its index commit, repaired, overwritten in place) or another
        file is in its place (a copy, an inode number reused). The side files are a repair's
        (``<log>.torn-<end>`` and ``...-<hash>``, docs/format.md §8): one more than recorded tells a log cut back
        to ``end`` by a repair from one written over (a time would not: a clock tick can hold both)."""
        stat, name, sides = os.fstat(self.fd), f"{self.path.name}.torn-{end}", 0
        with contextlib.suppress(OSError):  # a directory that cannot be listed: no side file seen
            sides = sum(1 for side in self.path.parent.glob(f"{glob.escape(name)}*")
                        if side.name == name or side.name.startswith(f"{name}-"))
        return [stat.st_ino, stat.st_size, stat.st_mtime_ns, sides]

    def seen_as(self, seen: object, end: int) -> bool:
        """True if the file is the one an index ending at byte ``end`` recorded as ``seen`` (:meth:`identity` at its
        last commit): unchanged; grown since (appended to, by a writer that stopped before its index commit or
        behind its back: the records after ``end`` are then caught up and checked); or cut back to ``end`` by a
        repair since (one more side file there than recorded). Not a copy, another file with the inode number,
        or the file written over or cut short otherwise."""
        now = self.identity(end)
        if not (type(seen) is list and len(seen) == len(now) and all(type(v) is int for v in seen)
                and now[0] == seen[0]):
            return False
        return now[:3] == seen[:3] or now[1] > seen[1] or (now[1] == end and now[3] > seen[3])
