"""The file an audit state is saved in (docs/format.md §8.3): sections of bytes written as they are made, a head
naming them, and a SHA-256 of it all; read back section by section, with positioned reads, so that neither saving
nor resuming holds the parts that grow with the log (a few rows per record) in memory.

Layout: the line ``stonetrail-audit-state <version>`` (LF); the sections, back to back; the head (a msgpack map,
:func:`ledger._codec.pack_local`, whose ``sections`` entry maps each section's name to its [offset, length] in the
file); the head's length (8 bytes, big-endian); the SHA-256 of every byte before it (32 bytes). The digest detects
damage, not forgery: a state is the auditor's own file.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from ._codec import pack_local, unpack_local
from ._file_kinds import binary_kind, text_kind
from ._files import io_errors
from .errors import DecodeError, InputError

__all__ = ["MAGIC", "Section", "StateFile", "damaged", "state_bytes"]

MAGIC = b"stonetrail-audit-state "
_LINE_MAX = 64  # the first line (magic and version) is shorter
_TAIL = 8 + 32  # the head's length, then the digest
_READ = 8 << 20  # bytes read at a time to check the digest


def damaged(why: str) -> InputError:
    """The refusal of a state file that does not hold a state (``audit.state_damaged``)."""
    return InputError(f"audit state: {why}", code="audit.state_damaged")


def state_bytes(version: int, sections: Iterable[tuple[str, Iterable[bytes]]],
                head: Callable[[dict[str, list[int]]], dict[str, Any]]) -> Iterator[bytes]:
    """The file's bytes, a piece at a time (for :func:`ledger._files.write_file`): the ``sections`` (name, pieces),
    each piece made when the one before is written, then ``head(sections)`` given where each section is."""
    digest, offset, where = hashlib.sha256(), 0, dict[str, list[int]]()

    def out(piece: bytes) -> bytes:
        nonlocal offset
        digest.update(piece)
        offset += len(piece)
        return piece

    yield out(MAGIC + str(version).encode() + b"\n")
    for name, pieces in sections:
        start = offset
        for piece in pieces:
            if piece:
                yield out(piece)
        where[name] = [start, offset - start]
    packed = pack_local(head(where))
    yield out(packed)
    yield out(len(packed).to_bytes(8, "big"))
    yield digest.digest()


class StateFile:
    """A state file opened and checked: its version line, its digest, its head (:attr:`head`) and sections
    (:meth:`section`). Keep it open while its sections are read; :meth:`close` after.

    Raises (from the constructor):
        InputError: ``audit.state_damaged`` (not a state file, its digest fails, or its head is not a map naming
            sections inside the file), ``audit.state_mismatch`` (another version than ``version``: the
            message names it). StorageError ``store.io``.
    """

    def __init__(self, path: str | Path, version: int) -> None:
        self.path = Path(path)
        with io_errors(self.path, "reading"):  # never blocks (a FIFO), then only a regular file is read
            self._fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        try:
            if not stat.S_ISREG(os.fstat(self._fd).st_mode):
                raise damaged(f"{self.path} is not a regular file")
            self.head = self._check(version)
        except BaseException:
            os.close(self._fd)
            raise

    def _check(self, version: int) -> dict[str, Any]:
        self._stamp = self._stat()
        size = self._stamp[0]
        with io_errors(self.path, "reading"):
            first = os.pread(self._fd, _LINE_MAX, 0)
        line, newline, _ = first.partition(b"\n")
        if not newline or not line.startswith(MAGIC):
            kind = binary_kind(first) or text_kind(first.decode("utf-8", "replace"))
            raise damaged(f"{self.path} is not an audit state file" + (f": it is {kind}" if kind else "") +
                          " (--resume takes a file 'verify --save-state' wrote)")
        if line != MAGIC + str(version).encode():
            raise InputError(f"audit state: {self.path} is in another format version ({line[len(MAGIC):][:20]!r}, this "
                             f"reads {version})", code="audit.state_mismatch")
        end = size - _TAIL
        if end < len(line) + 1 or self._digest(size - 32) != self.read_at(size - 32, 32):
            raise damaged(f"{self.path} is damaged (its SHA-256 does not match its contents)")
        self.recheck()  # not changed while the digest was read
        length = int.from_bytes(self.read_at(end, 8), "big")
        if not len(line) + 1 <= end - length <= end:
            raise damaged(f"{self.path} does not hold an audit state (a head of {length} bytes)")
        try:
            head = unpack_local(self.read_at(end - length, length))
        except DecodeError as exc:
            raise damaged(f"{self.path} does not hold an audit state ({exc})") from exc
        if not isinstance(head, dict):
            raise damaged(f"{self.path} does not hold an audit state (its head is not a map)")
        sections = head.get("sections")
        if not isinstance(sections, dict) or not all(
                type(at) is list and len(at) == 2 and all(type(n) is int for n in at)
                and len(line) + 1 <= at[0] <= at[0] + at[1] <= end - length for at in sections.values()):
            raise damaged(f"{self.path} does not hold an audit state (its sections are not inside it)")
        return head

    def recheck(self) -> None:
        """Check that the file has not changed since it was opened (its size, and its change and modification
        times, which any write sets): its sections are read when asked, after its digest was checked, so one
        rewritten meanwhile (it is the auditor's own file) must not go unseen. Raises InputError
        ``audit.state_damaged`` if it changed."""
        if self._stat() != self._stamp:
            raise damaged(f"{self.path} changed while the audit read it: resume again from a state no one writes")

    def _stat(self) -> tuple[int, int, int]:
        with io_errors(self.path, "reading"):
            found = os.fstat(self._fd)
        return found.st_size, found.st_mtime_ns, found.st_ctime_ns

    def _digest(self, stop: int) -> bytes:
        digest, offset = hashlib.sha256(), 0
        with io_errors(self.path, "reading"):
            while offset < stop:
                piece = os.pread(self._fd, min(_READ, stop - offset), offset)
                if not piece:
                    break
                digest.update(piece)
                offset += len(piece)
        return digest.digest()

    def read_at(self, offset: int, length: int) -> bytes:
        """Bytes [offset, offset + length) of the file. Raises InputError ``audit.state_damaged`` if it ends before."""
        with io_errors(self.path, "reading"):
            data = os.pread(self._fd, length, offset)
        if len(data) != length:
            raise damaged(f"{self.path} was cut short while it was read")
        return data

    def section(self, name: str) -> Section:
        """The section ``name``. Raises KeyError if the head names none (the caller's shape check)."""
        offset, length = self.head["sections"][name]
        return Section(self, offset, length)

    def close(self) -> None:
        """Close the file (idempotent); its sections cannot be read after."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class Section:
    """Bytes [offset, offset + length) of a :class:`StateFile`, read when sliced (``section[a:b]`` gives bytes:
    a positioned read, never a mapping of the file, so that a file cut short while it is read is a typed error,
    not a signal)."""

    def __init__(self, file: StateFile, offset: int, length: int) -> None:
        self._file, self._offset, self._length = file, offset, length

    def __len__(self) -> int:
        return self._length

    def __getitem__(self, span: slice) -> bytes:
        start, stop, step = span.indices(self._length)
        if step != 1:
            raise ValueError("a section is read in runs")
        return self._file.read_at(self._offset + start, max(0, stop - start))

    def part(self, start: int, length: int) -> Section:
        """Bytes [start, start + length) of this section, as a section (within it: the caller checks)."""
        return Section(self._file, self._offset + start, length)
