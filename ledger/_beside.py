"""The checkpoint published beside a ledger file: ``checkpoint.txt`` in its directory (docs/format.md §8.1), where
``stonetrail checkpoint`` puts the newest one (:mod:`ledger.publish`) and the commands that read or write the
ledger find it: its tree size bounds the file below (a file holding fewer records lost records its operator
signed, and an append to it would fork the published log)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Final

from .checkpoint import Checkpoint, read_unverified_checkpoint
from .errors import NoteFormatError, StoneTrailError
from .note import MAX_NOTE_BYTES

__all__ = ["CHECKPOINT_FILE", "published_checkpoint", "published_of"]

#: The name of the published (newest) checkpoint, in the ledger file's directory.
CHECKPOINT_FILE: Final = "checkpoint.txt"


def published_checkpoint(ledger_path: str | Path) -> Path:
    """The path of the published checkpoint of the ledger file at ``ledger_path``: ``checkpoint.txt`` beside it."""
    return Path(ledger_path).parent / CHECKPOINT_FILE


def published_of(ledger_path: str | Path, origin: str, *, strict: bool = False) -> Checkpoint | None:
    """The checkpoint published beside the ledger file at ``ledger_path`` (:func:`published_checkpoint`), read
    without verifying its signature, if it is one of ``origin``; None if there is none, or it is of another ledger,
    or it is not a regular file holding a checkpoint. Its tree size bounds the ledger: a file holding fewer records
    lost records its operator signed (a rollback), and records appended to it would fork the published log
    (docs/format.md §8.1). An unsigned or false file can only make a command refuse or warn, never accept more.
    ``strict`` (a command about to cut the file): a name there that is not a checkpoint raises NoteFormatError
    ``checkpoint.unreadable`` instead of being passed over."""
    target = published_checkpoint(ledger_path)
    if not os.path.lexists(target):
        return None
    try:
        if target.is_symlink() or not target.is_file():  # a link or a FIFO: not read here
            raise NoteFormatError("not a regular file")
        with open(target, "rb") as file:
            checkpoint = read_unverified_checkpoint(file.read(MAX_NOTE_BYTES + 1).decode("utf-8"))
    except (OSError, UnicodeDecodeError, StoneTrailError) as exc:
        if strict:
            raise NoteFormatError(f"{target} is not a checkpoint ({exc}), so it cannot bound the file: move it aside, "
                                  "or give the ledger's latest checkpoint", code="checkpoint.unreadable") from exc
        return None
    return checkpoint if checkpoint.origin == origin else None
