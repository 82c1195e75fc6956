"""The checkpoint published beside a ledger file: ``checkpoint.txt`` in its directory (docs/format.md §8.1), where
``stonetrail checkpoint`` puts the newest one (:mod:`ledger.publish`) and the commands that read or write the
ledger find it: its tree size bounds the file below (a file holding fewer records lost records its operator
signed, and an append to it would fork the published log)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Final

from .checkpoint import Checkpoint, read_unverified_checkpoint
from .errors import NoteFormatError, StoneTrailError
from .note import MAX_NOTE_BYTES

__all__ = ["CHECKPOINT_FILE", "published_at", "published_checkpoint", "published_of", "published_places",
           "read_published", "short_of"]

#: The name of the published (newest) checkpoint, in the ledger file's directory.
CHECKPOINT_FILE: Final = "checkpoint.txt"


def published_checkpoint(ledger_path: str | Path) -> Path:
    """The path of the published checkpoint of the ledger file at ``ledger_path``: ``checkpoint.txt`` beside it
    (beside the path as given: where ``stonetrail checkpoint`` publishes)."""
    return Path(ledger_path).parent / CHECKPOINT_FILE


def published_places(ledger_path: str | Path) -> list[Path]:
    """Every place a checkpoint published for the ledger file at ``ledger_path`` may be: beside the path as given,
    and, if it is a symbolic link (or in a linked folder), beside the file it names. Both bound the file: a
    checkpoint beside either is one a verifier may hold."""
    given = published_checkpoint(ledger_path)
    real = Path(os.path.realpath(ledger_path)).parent / CHECKPOINT_FILE
    return [given] if os.path.realpath(given.parent) == str(real.parent) else [given, real]


def published_at(ledger_path: str | Path, origin: str, *, strict: bool = False) -> tuple[Path, Checkpoint] | None:
    """The checkpoint of ``origin`` published for the ledger file at ``ledger_path`` (:func:`published_places`;
    of two, the one of the larger tree) and where it is, read without verifying its signature; None if there is
    none, or it is of another ledger, or not a regular file holding a checkpoint. Its tree size bounds the ledger:
    a file holding fewer records lost records its operator signed (a rollback), and records appended to it would
    fork the published log (docs/format.md §8.1). An unsigned or false file can only make a command refuse or
    warn, never accept more. ``strict`` (a command about to cut or make a file): a name there that is not a
    checkpoint raises NoteFormatError ``checkpoint.unreadable`` instead of being passed over."""
    found = [(place, cp) for place in published_places(ledger_path)
             if (cp := _checkpoint_at(place, origin, strict)) is not None]
    return max(found, key=lambda found: found[1].tree_size, default=None)


def published_of(ledger_path: str | Path, origin: str, *, strict: bool = False) -> Checkpoint | None:
    """The checkpoint of :func:`published_at`, without its place."""
    at = published_at(ledger_path, origin, strict=strict)
    return at[1] if at is not None else None


def _checkpoint_at(target: Path, origin: str, strict: bool) -> Checkpoint | None:
    if not os.path.lexists(target):
        return None
    try:
        data = read_published(target)
        if data is None:
            raise NoteFormatError("not a regular file that can be read")
        checkpoint = read_unverified_checkpoint(data.decode("utf-8-sig"))  # a byte-order mark, as editors write
    except (UnicodeDecodeError, StoneTrailError) as exc:
        if strict:
            raise NoteFormatError(f"{target} is not a checkpoint ({exc}), so it cannot bound the file: move it aside, "
                                  "or give the ledger's latest checkpoint", code="checkpoint.unreadable") from exc
        return None
    return checkpoint if checkpoint.origin == origin else None


def short_of(ledger_path: str | Path, origin: str, records: int) -> str | None:
    """Why the ledger file at ``ledger_path`` (of ``origin``), holding ``records`` records, is short of the
    checkpoint published for it (:func:`published_at`), in words; None if it is not (or none is published)."""
    at = published_at(ledger_path, origin)
    if at is None or at[1].tree_size <= records:
        return None
    return (f"{ledger_path} holds {records} records, fewer than the {at[1].tree_size} of the checkpoint "
            f"published beside it ({at[0]}): records its operator signed are missing "
            "(the file was cut short, or restored from an older copy)")


def read_published(target: Path) -> bytes | None:
    """The bytes of the published checkpoint ``target`` (at most a note's cap and one byte), if it is a regular
    file that can be read; None otherwise (a link or a FIFO is not read)."""
    if target.is_symlink() or not target.is_file():
        return None
    with contextlib.suppress(OSError), open(target, "rb") as file:
        return file.read(MAX_NOTE_BYTES + 1)
    return None
