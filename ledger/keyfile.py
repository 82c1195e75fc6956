"""Private key files: unencrypted PKCS #8 PEM (RFC 8410), mode 0600, never overwritten.

This is the one place key material touches the file system; :mod:`ledger.keys` stays free of I/O.

Writing is atomic and exclusive, as for every output file (:func:`ledger._files.write_file`, mode exactly 0600):
a key file is never overwritten, never written through a symbolic link and never seen half-written.
"""

from __future__ import annotations

import os
from pathlib import Path

from ._files import write_file
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
    try:
        write_file(target, key.to_pem(), private=True)
    except StorageError as exc:
        code = "key.exists" if exc.code == "store.exists" else "key.io"
        raise StorageError(f"cannot write key file: {exc}", code=code) from exc


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
