"""New output files, written so that no file a user keeps is ever lost: the one way the library and the CLI
write a file (checkpoints, proofs, bundles, evidence, key files, the demo, a repair's side file); a ledger's
frames are :mod:`ledger.store`'s.

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
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .errors import StorageError

__all__ = ["check_new", "fsync_dir", "io_errors", "write_all", "write_file", "write_files"]

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
PUBLIC_MODE, PRIVATE_MODE = 0o644, 0o600  # before the umask; a private file's mode is made exact
_NO_HARD_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS}


def write_file(path: str | os.PathLike[str], data: bytes, *, private: bool = False) -> Path:
    """Write ``data`` to the new file ``path``, atomically, durably and never over an existing name; return it.

    ``private``: mode exactly 0600 (a private key), else 0644 narrowed by the umask.
    Raises:
        StorageError: "store.exists" if ``path`` exists as anything, a symbolic link included (it is left
            untouched and not followed); "store.io" on any other operating-system failure (``path`` is then
            not created).
    """
    return write_files([(Path(path), data)], private=private)[0]


def write_files(files: Sequence[tuple[Path, bytes]], *, private: bool = False) -> list[Path]:
    """Write several new files (path, data), all or none: every file is fsynced under a temporary name before
    the first target name appears, and the names linked here are removed if a later one fails. Raises as
    :func:`write_file`."""
    targets = [Path(path) for path, _ in files]
    for target in targets:
        check_new(target)
    temps: list[Path] = []
    linked: list[Path] = []
    try:
        for target, (_, data) in zip(targets, files, strict=True):
            with io_errors(target, "writing"):
                temps.append(_write_temporary(target, data, private=private))
        for target, temp in zip(targets, temps, strict=True):
            _link(temp, target)
            linked.append(target)
        for directory in {target.parent for target in targets}:
            with io_errors(directory, "syncing"):
                fsync_dir(directory)
    except BaseException:
        for target in linked:
            _unlink_quietly(target)  # our own new name, linked a moment ago
        raise
    finally:
        for temp in temps:
            _unlink_quietly(temp)
    return targets


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


def _link(temp: Path, target: Path) -> None:
    """Give the complete ``temp`` the new name ``target``: ``link(2)``, or where the file system has no hard
    links (FAT, some network file systems), claim the name with ``O_CREAT | O_EXCL | O_NOFOLLOW`` and rename
    ``temp`` over that empty claim (a crash between the two leaves the empty file)."""
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
    """Turn an OSError inside into StorageError("store.io") saying what was done to which file."""
    try:
        yield
    except OSError as exc:
        raise StorageError(f"{action} {path}: {exc.strerror or exc}", code="store.io") from exc


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


def _write_temporary(target: Path, data: bytes, *, private: bool) -> Path:
    """Write and fsync ``data`` in a new temporary file beside ``target``; return its path (on failure it is
    removed). Raises OSError."""
    path = target.with_name(f".{target.name[:64]}.{secrets.token_hex(8)}.tmp")
    mode = PRIVATE_MODE if private else PUBLIC_MODE
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | _O_CLOEXEC | _O_NOFOLLOW, mode)
    done = False
    try:
        if private:
            os.fchmod(fd, mode)  # the umask may only narrow the mode; make it exact
        write_all(fd, data)
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
