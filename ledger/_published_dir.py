"""A published log's directory (docs/format.md §8.5): what it may hold, one publisher at a time, its checkpoint
read and replaced, new files written in batches and never over other bytes. :mod:`ledger.published` decides what
the files are.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import os
import secrets
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Final

from ._files import fsync_dir, io_errors, write_all, write_files
from ._published_format import MAX_CHECKPOINT
from .errors import InputError, StorageError, VerificationError

__all__ = ["CHECKPOINT_NAME", "check_directory", "exclusive", "read_published", "replace", "write_new"]

#: The published checkpoint's name in the directory (C2SP tlog-tiles ``<prefix>/checkpoint``).
CHECKPOINT_NAME: Final = "checkpoint"
_BATCH = 512  # new files written (and fsynced) together, at most
_BATCH_BYTES = 16 << 20  # ... and at most about this many bytes (a bundle of 256 entries is ~128 KB)
_LOCK_NAME: Final = ".publish.lock"
#: The names a published log's directory holds (docs/format.md §8.5), and its lock.
_LOG_NAMES = frozenset({CHECKPOINT_NAME, "tile", "heads", "identities", "item", "registry", _LOCK_NAME})


def check_directory(out: Path) -> None:
    """Refuse a directory that holds anything but a published log's files (``publish.not_a_log``): whatever is in
    it is served with the log, and a ledger's output folder holds its private keys."""
    with io_errors(out, "read"):
        names = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    foreign = [n for n in names if n not in _LOG_NAMES and not (n.startswith(".") and n.endswith(".tmp"))]
    if foreign:
        raise InputError(f"{out} holds files that are not a published log's ({', '.join(foreign[:3])}"
                         f"{', ...' if len(foreign) > 3 else ''}): everything in it is served with the log; publish "
                         "to a new or empty directory", code="publish.not_a_log")


@contextlib.contextmanager
def exclusive(out: Path) -> Iterator[None]:
    """Hold the lock file ``.publish.lock`` of the directory (created with it) for one publish. A directory this
    publish created, with the parents it created, is removed again if the publish fails before anything but the
    lock file is in it (a refusal leaves no empty folder behind).

    Raises:
        StorageError: ``publish.locked`` (another publish holds it), ``store.io``.
    """
    made = list(itertools.takewhile(lambda folder: not folder.exists(), (out, *out.parents)))  # deepest first
    with io_errors(out, "create"):
        out.mkdir(parents=True, exist_ok=True)
        fd = os.open(out / _LOCK_NAME, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    locked = False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            locked = True
        except BlockingIOError:
            raise StorageError(f"{out} is being published by another process; try again when it is done",
                               code="publish.locked") from None
        yield
    except BaseException:
        if made and locked:  # never another publisher's lock: two may both have seen no directory
            with contextlib.suppress(OSError):
                if [p.name for p in out.iterdir()] == [_LOCK_NAME]:
                    (out / _LOCK_NAME).unlink()
                    for folder in made:  # its parents this publish made too, while they are empty
                        folder.rmdir()
        raise
    finally:
        os.close(fd)


def read_published(out: Path) -> bytes | None:
    """The checkpoint the directory holds, or None."""
    path = out / CHECKPOINT_NAME
    with io_errors(path, "read"):
        if not path.exists():
            return None
        with open(path, "rb") as f:
            return f.read(MAX_CHECKPOINT + 1)


def write_new(out: Path, files: Iterable[tuple[str, bytes]]) -> list[str]:
    """Write the files that do not exist yet, :data:`_BATCH` (or :data:`_BATCH_BYTES`) at a time; one that exists
    must hold the same bytes (``publish.conflict``). Returns the names written."""
    written: list[str] = []
    for batch in _batches(_unwritten(out, files)):
        write_files([(out / name, data) for name, data in batch])
        written += [name for name, _ in batch]
    return written


def _unwritten(out: Path, files: Iterable[tuple[str, bytes]]) -> Iterator[tuple[str, bytes]]:
    """Those of ``files`` the directory does not hold yet (their folders made); raises ``publish.conflict`` for one
    it holds with other bytes."""
    for name, data in files:
        path = out / name
        with io_errors(path, "read"):
            if path.exists():
                if path.read_bytes() != data:
                    raise VerificationError(f"{path} holds other bytes than this log's {name}: the directory holds "
                                            "another log, or was altered; nothing replaced", code="publish.conflict")
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
        yield name, data


def _batches(files: Iterable[tuple[str, bytes]]) -> Iterator[list[tuple[str, bytes]]]:
    """``files`` in lists of at most :data:`_BATCH` files and about :data:`_BATCH_BYTES` bytes."""
    batch: list[tuple[str, bytes]] = []
    held = 0
    for file in files:
        batch.append(file)
        held += len(file[1])
        if len(batch) == _BATCH or held >= _BATCH_BYTES:
            yield batch
            batch, held = [], 0
    if batch:
        yield batch


def replace(target: Path, data: bytes) -> None:
    """Make ``target`` hold ``data`` atomically and durably: a new temporary file beside it, fsynced, renamed over
    it, and the directory fsynced."""
    temp = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
    with io_errors(target, "write"):
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
        try:
            write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.replace(temp, target)
        except OSError:
            temp.unlink(missing_ok=True)
            raise
        fsync_dir(target.parent)
