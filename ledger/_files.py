"""New output files, written so that no file a user keeps is ever lost: the one way the library and the CLI
write a file (checkpoints, proofs, bundles, evidence, key files, the demo, a repair's side file); a ledger's
frames are :mod:`ledger.storage`'s.

Every file is written the same way (docs/format.md §8.1):

1. The data goes to a new temporary file ``.<name>.<random>.tmp`` in the target's directory, created with
   ``O_CREAT | O_EXCL | O_NOFOLLOW`` (never an existing file, never through a symbolic link), then fsynced.
2. The temporary file is hard-linked to the target name. ``link(2)`` fails if the name exists in any form — a
   file (a ledger, even one a writer holds locked), a directory, a symbolic link, dangling or not — and never
   follows a link, so nothing is overwritten, and the name appears only once the whole file is on disk. (On a
   file system without hard links the name is claimed exclusively instead, and the temporary file renamed
   over that empty claim.)
3. The temporary name is removed and the directory fsynced, so the new name survives a crash.

A failure at any step removes the temporary file: the target then does not exist, and a retry starts afresh.
Only a crash between steps 1 and 3 can leave a temporary file behind (a dot file; delete it).

One name is meant to change: a ledger's published ``checkpoint.txt`` (always the newest checkpoint).
:func:`replace_file` replaces such a file without losing the old one: the new data goes to a temporary file as
above; the old file, opened without following a link, is hard-linked to a name the caller derives from its bytes
(a checkpoint's ``checkpoint-<tree size>.txt``: the old bytes are never lost), that name is fsynced, and only
then is the temporary file renamed over the target (``rename(2)``: atomic, never follows a link). A target that
is a symbolic link or not a regular file is refused, never replaced.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError, StorageError

__all__ = ["Replaced", "check_new", "fsync_dir", "io_errors", "link_new", "replace_file", "write_all", "write_file",
           "write_files"]

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
PUBLIC_MODE, PRIVATE_MODE = 0o644, 0o600  # before the umask; a private file's mode is made exact
_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}
#: Largest file :func:`replace_file` reads back before replacing it, in bytes (a checkpoint is at most 1 MiB).
MAX_REPLACED_SIZE = 16 * 1024 * 1024


def write_file(path: str | os.PathLike[str], data: bytes | Iterable[bytes], *, private: bool = False) -> Path:
    """Write ``data`` (bytes, or byte strings written one after the other, each made when the one before is
    written: a large file need not be held in memory) to the new file ``path``, atomically, durably and never over
    an existing name; return it.

    ``private``: mode exactly 0600 (a private key), else 0644 narrowed by the umask.
    Raises:
        StorageError: "store.exists" if ``path`` exists as anything, a symbolic link included (it is left
            untouched and not followed); "store.io" on any other operating-system failure (``path`` is then
            not created).
    """
    return write_files([(Path(path), data)], private=private)[0]


def write_files(files: Sequence[tuple[Path, bytes | Iterable[bytes]]], *, private: bool = False) -> list[Path]:
    """Write several new files (path, data), all or none: every file is fsynced under a temporary name before
    the first target name appears, and the names linked here are removed if a later one fails. Raises as
    :func:`write_file`."""
    targets = [Path(path) for path, _ in files]
    for target in targets:
        check_new(target)
    with _staged() as stage:
        temps = [stage.write(target, data, private=private) for target, (_, data) in zip(targets, files, strict=True)]
        for target, temp in zip(targets, temps, strict=True):
            stage.link(temp, target)
        _sync_directories(targets)
    return targets


class _Stage:
    """Temporary files written beside their targets, and the new names linked to them (see :func:`_staged`)."""

    def __init__(self) -> None:
        self.temps: list[Path] = []
        self.linked: list[Path] = []

    def write(self, target: Path, data: bytes | Iterable[bytes], *, private: bool) -> Path:
        """``data`` in a new fsynced temporary file beside ``target``; its path."""
        with io_errors(target, "writing"):
            self.temps.append(_write_temporary(target, data, private=private))
        return self.temps[-1]

    def link(self, temp: Path, target: Path) -> None:
        """Give ``temp`` the new name ``target`` (exclusively)."""
        link_new(temp, target)
        self.linked.append(target)


@contextmanager
def _staged() -> Iterator[_Stage]:
    """A :class:`_Stage` whose temporary files are always removed, and whose linked names are removed too if the
    work inside fails: all or nothing."""
    stage = _Stage()
    try:
        yield stage
    except BaseException:
        for target in stage.linked:
            _unlink_quietly(target)  # our own new name, linked a moment ago
        raise
    finally:
        for temp in stage.temps:
            _unlink_quietly(temp)  # a renamed one is gone already


def _sync_directories(paths: Sequence[Path]) -> None:
    """fsync the directories of ``paths``, so that their new names survive a crash."""
    for directory in {path.parent for path in paths}:
        with io_errors(directory, "syncing"):
            fsync_dir(directory)


@dataclass(frozen=True, slots=True, kw_only=True)
class Replaced:
    """What :func:`replace_file` did: ``kept`` is the name the previous file is kept under (None if there was
    none, or if it already held the new bytes: ``unchanged``, nothing was written to the target)."""

    kept: Path | None
    unchanged: bool


def replace_file(target: str | os.PathLike[str], data: bytes, keep: Callable[[bytes], Path], *,
                 also: Sequence[tuple[Path, bytes]] = ()) -> Replaced:
    """Make ``target`` hold ``data``, atomically and durably, keeping its previous bytes under ``keep(old)``.

    ``keep`` gets the old file's bytes and returns the name (normally beside ``target``) to keep them under; it
    may raise to refuse the replacement (nothing is then changed). If that name already holds the same bytes it
    is reused, else it must be new. ``also``: new files (never overwritten, as :func:`write_files`) written with
    the replacement, all or none. A missing ``target`` is simply created (exclusively).

    Raises:
        StorageError: ``store.exists`` (``target`` is a symbolic link, not followed; the keep name or an
            ``also`` name exists with other content), ``store.not_a_file`` (``target`` is a directory, a pipe, a
            device), ``store.io`` (an operating-system failure, or ``target`` changed while being replaced).
            Whatever ``keep`` raises. InputError ``input.too_large``: the old file is over
            :data:`MAX_REPLACED_SIZE`. On any error until ``target`` is replaced it is untouched and no ``also``
            file is left; one after (syncing the directories) leaves the replacement and the ``also`` files.
    """
    target = Path(target)
    news = [(Path(path), content) for path, content in also]
    for path, _ in news:
        check_new(path)
    with _staged() as stage:
        temps = [stage.write(path, content, private=False) for path, content in [(target, data), *news]]
        for (path, _), temp in zip(news, temps[1:], strict=True):
            stage.link(temp, path)
        done = _swap(temps[0], target, data, keep)
    # replaced: from here an error (an interrupt, a failed fsync) leaves every file in place (an adversarial
    # review: SIGTERM while syncing removed the consistency proof written with a checkpoint that stayed)
    _sync_directories([target, *stage.linked])
    return done


def _swap(temp: Path, target: Path, data: bytes, keep: Callable[[bytes], Path]) -> Replaced:
    """Keep ``target``'s old bytes under ``keep(old)``, then rename the complete ``temp`` over it."""
    fd = _open_old(target)
    if fd is None:
        link_new(temp, target)  # nothing to replace: a new name, exclusively
        return Replaced(kept=None, unchanged=False)
    try:
        before = os.fstat(fd)
        old = _read_old(fd, target)
        if old == data:
            return Replaced(kept=None, unchanged=True)
        kept = keep(old)
        _keep(target, kept, old, before)
        with io_errors(target.parent, "syncing"):
            fsync_dir(target.parent)  # the old bytes' new name is durable before the target changes
        _check_unchanged(target, before)
        with io_errors(target, "replacing"):
            os.rename(temp, target)
        return Replaced(kept=kept, unchanged=False)
    finally:
        os.close(fd)


def _open_old(target: Path) -> int | None:
    """A descriptor of the regular file ``target``, opened without following a link; None if it does not exist."""
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError(f"cannot read {target}: {exc.strerror or exc}", code="store.io") from exc
    if stat.S_ISLNK(info.st_mode):
        raise StorageError(f"{target} is a symbolic link (not followed); not replaced", code="store.exists")
    if not stat.S_ISREG(info.st_mode):
        raise StorageError(f"{target} is not a regular file; not replaced", code="store.not_a_file")
    with io_errors(target, "opening"):
        fd = os.open(target, os.O_RDONLY | os.O_NONBLOCK | _O_CLOEXEC | _O_NOFOLLOW)
    if not _same(os.fstat(fd), info):
        os.close(fd)
        raise StorageError(f"{target} changed while being replaced; nothing replaced", code="store.io")
    return fd


def _read_old(fd: int, target: Path) -> bytes:
    """The whole file behind ``fd``, at most :data:`MAX_REPLACED_SIZE` bytes."""
    chunks, size = [], 0
    with io_errors(target, "reading"):
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_REPLACED_SIZE:
                raise InputError(f"{target} is over {MAX_REPLACED_SIZE} bytes; not replaced", code="input.too_large")
    return b"".join(chunks)


def _keep(target: Path, kept: Path, old: bytes, before: os.stat_result) -> None:
    """Give the old file (``before``) the further name ``kept``: a hard link (never following a link), or on a file
    system without hard links an exclusive copy. A ``kept`` that already holds ``old`` is reused."""
    if _holds(kept, old):
        return
    try:
        os.link(target, kept, follow_symlinks=False)
    except FileExistsError:
        raise StorageError(f"{kept} exists with other content; {target} not replaced (move one of them away)",
                           code="store.exists") from None
    except OSError as exc:
        if exc.errno not in _NO_HARD_LINKS:
            raise StorageError(f"cannot create {kept}: {exc.strerror or exc}", code="store.io") from exc
        write_file(kept, old)
        return
    if not _same(os.lstat(kept), before):  # the target changed hands between opening and linking
        _unlink_quietly(kept)
        raise StorageError(f"{target} changed while being replaced; nothing replaced", code="store.io")


def _holds(path: Path, data: bytes) -> bool:
    """True if ``path`` is a regular file (not a link) holding exactly ``data``."""
    try:
        info = os.lstat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size != len(data):
            return False
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | _O_CLOEXEC | _O_NOFOLLOW)
    except OSError:
        return False
    try:
        return _read_old(fd, path) == data
    finally:
        os.close(fd)


def _check_unchanged(target: Path, before: os.stat_result) -> None:
    """Refuse to replace ``target`` if it is no longer the file whose bytes were kept."""
    try:
        now = os.lstat(target)
    except OSError as exc:
        raise StorageError(f"{target} changed while being replaced; nothing replaced", code="store.io") from exc
    if not _same(now, before):
        raise StorageError(f"{target} changed while being replaced; nothing replaced", code="store.io")


def _same(a: os.stat_result, b: os.stat_result) -> bool:
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def check_new(target: Path) -> None:
    """Refuse a name that exists, as :func:`write_file` would: call it to fail early, before long work (the
    write refuses it again, atomically). Raises StorageError "store.exists", "store.io"."""
    try:
        os.lstat(target)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StorageError(f"cannot write {target}: {exc.strerror or exc}", code="store.io") from exc
    raise _exists(target)


def _exists(target: Path) -> StorageError:
    what = "is a symbolic link (not followed)" if target.is_symlink() else "exists"
    return StorageError(f"{target} {what}; not overwritten (choose another name)", code="store.exists")


def link_new(temp: Path, target: Path) -> None:
    """Give the complete ``temp`` the new name ``target``: ``link(2)``, or where the file system has no hard
    links (FAT, some network file systems), claim the name with ``O_CREAT | O_EXCL | O_NOFOLLOW`` and rename
    ``temp`` over that empty claim (a crash between the two leaves the empty file). Never overwrites: a name that
    exists in any form raises StorageError ``store.exists``; ``store.io`` on other errors."""
    try:
        try:
            os.link(temp, target)
        except OSError as exc:
            if exc.errno not in _NO_HARD_LINKS:
                raise
            _claim_and_rename(temp, target)
    except FileExistsError:
        raise _exists(target) from None
    except OSError as exc:
        raise StorageError(f"cannot create {target}: {exc.strerror or exc}", code="store.io") from exc


def _claim_and_rename(temp: Path, target: Path) -> None:
    os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY | _O_CLOEXEC | _O_NOFOLLOW, PUBLIC_MODE))
    try:
        os.rename(temp, target)
    except BaseException:
        _unlink_quietly(target)  # our own empty claim
        raise


@contextmanager
def io_errors(path: Path, action: str) -> Iterator[None]:
    """Turn an OSError inside into StorageError("store.io") saying what was done to which file (and, for a file
    whose folder is missing, which folder: a new user's review)."""
    try:
        yield
    except OSError as exc:
        why = exc.strerror or str(exc)
        if isinstance(exc, FileNotFoundError) and not path.parent.is_dir():
            why = f"no folder {path.parent} (create it first)"
        raise StorageError(f"{action} {path}: {why}", code="store.io") from exc


def write_all(fd: int, data: bytes | bytearray) -> None:
    """Write all of ``data`` to ``fd`` (``os.write`` may write less than asked). Raises OSError."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def fsync_dir(directory: Path) -> None:
    """fsync ``directory``, so that names created or removed in it survive a crash. Raises OSError."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | _O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_temporary(target: Path, data: bytes | Iterable[bytes], *, private: bool) -> Path:
    """Write and fsync ``data`` in a new temporary file beside ``target``; return its path (on failure it is
    removed). Raises OSError."""
    path = target.with_name(f".{target.name[:64]}.{secrets.token_hex(8)}.tmp")
    mode = PRIVATE_MODE if private else PUBLIC_MODE
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | _O_CLOEXEC | _O_NOFOLLOW, mode)
    done = False
    try:
        if private:
            os.fchmod(fd, mode)  # the umask may only narrow the mode; make it exact
        for part in (data,) if isinstance(data, bytes) else data:
            write_all(fd, part)
        os.fsync(fd)
        done = True
    finally:
        os.close(fd)
        if not done:
            _unlink_quietly(path)
    return path


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):  # best effort: the data is at the target name, or nowhere
        os.unlink(path)
