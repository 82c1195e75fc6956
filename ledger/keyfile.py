"""Private key files: unencrypted PKCS #8 PEM (RFC 8410), mode 0600, never overwritten.

This is the one place key material touches the file system; :mod:`ledger.keys` stays free of I/O.

Writing is atomic and exclusive: the PEM goes to a fresh temporary file in the target directory (created with
``O_CREAT | O_EXCL | O_WRONLY`` and mode 0o600, then fsynced), which is then hard-linked to the target name.
``link(2)`` fails if the name exists, so a key file is never overwritten and never seen half-written; the
directory is fsynced so the new name survives a crash.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from .errors import KeyFormatError, StorageError
from .keys import PrivateKey

__all__ = ["MAX_KEY_FILE_SIZE", "load_private_key", "save_private_key"]

#: Largest key file :func:`load_private_key` reads, in bytes (an Ed25519 PKCS #8 PEM is 119 bytes).
MAX_KEY_FILE_SIZE = 16 * 1024

_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)


def save_private_key(path: str | os.PathLike[str], key: PrivateKey) -> None:
    """Write ``key`` as PEM to a new file ``path`` with mode 0600.

    Raises:
        StorageError: ``key.exists`` if ``path`` exists (it is left untouched); ``key.io`` on any other
            operating-system failure (the temporary file is removed; ``path`` holds either nothing or the
            complete key).
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(8)}.tmp")
    data = key.to_pem()
    try:
        _write_new(tmp, data)
        try:
            os.link(tmp, target)
        except FileExistsError:
            raise StorageError(f"key file exists, not overwriting: {target}", code="key.exists") from None
        _fsync_dir(target.parent)
    except OSError as exc:
        raise StorageError(f"cannot write key file {target}: {exc.strerror}", code="key.io") from exc
    finally:
        _unlink_quietly(tmp)


def load_private_key(path: str | os.PathLike[str]) -> PrivateKey:
    """Read a PEM private key file written by :func:`save_private_key` (or ``openssl genpkey``).

    Raises:
        StorageError: ``key.io`` if the file cannot be opened or read (symlinks are not followed).
        KeyFormatError: ``key.pem`` / ``key.not_ed25519`` for bad content, including a file over
            :data:`MAX_KEY_FILE_SIZE`.
    """
    target = Path(path)
    try:
        fd = os.open(target, os.O_RDONLY | _O_CLOEXEC | _O_NOFOLLOW)
        with os.fdopen(fd, "rb") as fh:
            data = fh.read(MAX_KEY_FILE_SIZE + 1)
    except OSError as exc:
        raise StorageError(f"cannot read key file {target}: {exc.strerror}", code="key.io") from exc
    if len(data) > MAX_KEY_FILE_SIZE:
        raise KeyFormatError(f"key file over {MAX_KEY_FILE_SIZE} bytes: {target}", code="key.pem")
    return PrivateKey.from_pem(data)


def _write_new(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | _O_CLOEXEC | _O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)  # the umask may only narrow the mode; make it exact
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | _O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):  # best effort: the key is at the target name, or nowhere
        os.unlink(path)
