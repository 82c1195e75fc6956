"""Reading the files a command is given: bounded reads of regular files, UTF-8 text (a binary file of the
project's named), and the trust and checkpoint files every checking command takes. Errors name the file
(:func:`stonetrail_cli._common._about`)."""

from __future__ import annotations

import stat
from pathlib import Path

from ledger import Trust, keyfile
from ledger._file_kinds import binary_kind, text_kind
from ledger.checkpoint import read_unverified_checkpoint
from ledger.errors import InputError, KeyFormatError, NoteFormatError, StorageError, TrustFileError
from ledger.keys import PrivateKey
from ledger.witness_policy import WitnessPolicy

from ._common import _about

#: Largest text input read (trust, checkpoint, policy, consistency-proof files); far above any real one.
MAX_TEXT_FILE = 16 * 1024 * 1024


def _read_bytes(path: Path, what: str, limit: int = MAX_TEXT_FILE) -> bytes:
    """The bytes of the regular file ``path``, reading at most one byte over ``limit`` (a huge file is refused,
    not loaded).

    Raises InputError ``input.not_a_file``, ``input.too_large``; StorageError on an OS error."""
    with _about(path):
        try:
            if not stat.S_ISREG(path.stat().st_mode):  # a named pipe would block, a device never end
                raise InputError(f"{what} {path} is not a regular file", code="input.not_a_file")
            with path.open("rb") as fh:
                data = fh.read(limit + 1)
        except OSError as exc:
            raise StorageError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
        if len(data) > limit:
            raise InputError(f"{what} {path} is over {limit} bytes", code="input.too_large")
    return data


def _read_text(path: Path, what: str) -> str:
    """UTF-8 text of at most :data:`MAX_TEXT_FILE` bytes (a leading byte-order mark, as some editors write, is
    dropped)."""
    data = _read_bytes(path, what)
    with _about(path):
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise InputError(f"{what} {path} is not UTF-8 text{_binary_kind(data)}") from exc


def _binary_kind(data: bytes) -> str:
    """``: it is a proof bundle`` (or evidence file, ledger file) for a file of one of the project's binary
    formats given where a text file belongs; empty otherwise."""
    kind = binary_kind(data)
    return f": it is {kind}" if kind else ""


def _read_checkpoint(path: Path, what: str = "checkpoint") -> str:
    """A signed checkpoint's text, checked for form here so that an error names the file."""
    text = _read_text(path, what)
    with _about(path, f"{what} {path}"):
        if (kind := text_kind(text)) not in (None, "a checkpoint"):
            raise NoteFormatError(f"it is {kind}, not a checkpoint (a checkpoint is the signed note 'stonetrail "
                                  "checkpoint' writes, e.g. checkpoint.txt)", code="note.malformed")
        read_unverified_checkpoint(text)
    return text


def load_key(path: Path) -> PrivateKey:
    """The private key in the PEM file ``path`` (:func:`ledger.keyfile.load_private_key`), an error naming the file
    and, for a file of another kind (a ledger, a checkpoint, a trust file), what it is."""
    with _about(path, f"key file {path}"):
        try:
            return keyfile.load_private_key(path)
        except KeyFormatError as exc:
            data = _read_bytes(path, "key file")
            kind = binary_kind(data) or text_kind(data.decode("utf-8", "replace"))
            if kind:
                exc.args = (f"it is {kind}, not a private key (a PEM file 'stonetrail keygen' writes)",)
            raise


def _load_trust(path: Path, witness_policy: Path | None = None) -> Trust:
    """The trust file at ``path``, with the C2SP tlog-policy file ``witness_policy`` as its witness policy."""
    text = _read_text(path, "trust file")
    with _about(path, f"trust file {path}"):
        if (kind := text_kind(text)) not in (None, "a trust file"):
            raise TrustFileError(f"it is {kind}, not a trust file (the public keys you pin: 'operator', 'authority' "
                                 "and witness lines)", code="trust.malformed")
        trust = Trust.parse(text)
    if witness_policy is None:
        return trust
    policy_text = _read_text(witness_policy, "witness policy")
    with _about(witness_policy, f"witness policy {witness_policy}"):
        return trust.with_witnesses(WitnessPolicy.parse(policy_text))
