"""The checkpoint published beside a ledger: ``checkpoint.txt`` is always the newest one, older ones are kept under
their tree size (docs/format.md §8.1).

``stonetrail proof export`` proves against ``checkpoint.txt`` by default and refuses a checkpoint that misses
later records of the item (``checkpoint.stale``), so the published checkpoint must be replaceable: each new one
replaces it atomically (:func:`ledger._files.replace_file`), the previous one kept as ``checkpoint-<its tree
size>.txt`` (old checkpoints are evidence: a later one is proven to extend them), or, when the new one is of the
same tree size (the same checkpoint with other witness cosignatures, docs/format.md §7e), as
``checkpoint-<size>-<16 hex of SHA-256 of its bytes>.txt``. A replacement is refused unless
the ledger file extends the published checkpoint (same origin, its tree a prefix of the file's): a checkpoint of
another ledger in the same directory, of a longer log (a rollback) or of another tree (a split view) is never
hidden behind a new one. Nor is a witnessed one behind the same checkpoint with fewer cosignatures: signing again
a ledger that has not grown leaves the published checkpoint, and every cosignature it carries, as it is.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ._beside import CHECKPOINT_FILE, published_checkpoint, published_of, read_published
from ._files import replace_file
from .checkpoint import read_unverified_checkpoint
from .errors import StoneTrailError, VerificationError
from .monitor import consistency_proof_for
from .note import note_signers, split_note

__all__ = ["CHECKPOINT_FILE", "Published", "check_signer", "kept_checkpoint_name", "publish_checkpoint",
           "published_checkpoint", "published_of"]

@dataclass(frozen=True, slots=True, kw_only=True)
class Published:
    """Where :func:`publish_checkpoint` wrote: ``path`` holds the new checkpoint (of ``tree_size`` records);
    ``kept`` is where the previous one now is (None: there was none, or ``unchanged``: it was this one, or this one
    with cosignatures the new one lacks, ``cosigned``, and was left as it is)."""

    path: Path
    tree_size: int
    kept: Path | None
    unchanged: bool
    cosigned: bool = False


def kept_checkpoint_name(tree_size: int) -> str:
    """The name a replaced checkpoint is kept under: ``checkpoint-<tree size>.txt``."""
    return f"checkpoint-{tree_size}.txt"


def publish_checkpoint(ledger_path: str | Path, note: str, *,
                       also: Sequence[tuple[Path, bytes]] = (), pinned: bool = False) -> Published:
    """Publish the signed checkpoint ``note`` of the ledger file at ``ledger_path`` as its ``checkpoint.txt``,
    keeping the one it replaces as ``checkpoint-<tree size>.txt`` beside it; ``also``: new files written with
    it, all or none (e.g. the consistency proof from an earlier checkpoint).

    The note is not verified here (the caller signed it); the published one is read without verifying it.
    ``pinned``: the caller checked that ``note``'s signer is the operator key a trust file pins; else ``note``
    must be signed by a key that signed the published one, if any (:func:`check_signer`).

    Raises:
        NoteFormatError: ``note``, or the published file, is not a checkpoint (the file is left as it is).
        VerificationError: the ledger file does not extend the published checkpoint, or ``note`` is not the
            file's (:func:`ledger.reader.checkpoint_problems`: ``checkpoint.origin_mismatch``: another ledger's;
            ``checkpoint.beyond_log``: of more records; ``checkpoint.root_mismatch``: of another tree; a line
            that is not the file's); ConsistencyError ``consistency.rollback``: ``note`` is older than it.
        StorageError: as :func:`ledger._files.replace_file` (``store.exists`` for a symbolic link, or a kept
            name that holds other bytes), CorruptStoreError for damaged framing.
    """
    if not pinned:
        check_signer(ledger_path, note)
    target = published_checkpoint(ledger_path)
    size = read_unverified_checkpoint(note).tree_size
    if _holds_more_of(target, note):
        return Published(path=target, tree_size=size, kept=None, unchanged=True, cosigned=True)

    def keep(old: bytes) -> Path:
        try:
            consistency_proof_for(ledger_path, old, note)
        except StoneTrailError as exc:
            exc.about(f"{target} is not replaced")
            raise
        kept = read_unverified_checkpoint(old).tree_size
        if kept == size:  # the same tree witnessed again: other cosignatures, kept apart by their bytes' hash
            return target.with_name(f"checkpoint-{kept}-{hashlib.sha256(old).hexdigest()[:16]}.txt")
        return target.with_name(kept_checkpoint_name(kept))

    done = replace_file(target, note.encode("utf-8"), keep, also=also)
    return Published(path=target, tree_size=size, kept=done.kept, unchanged=done.unchanged)


def check_signer(ledger_path: str | Path, note: str) -> None:
    """Refuse ``note`` unless a key that signed the checkpoint published beside the ledger file at ``ledger_path``
    signed it too (keys by name and key ID, signatures not verified; nothing to compare when none is published, or
    it is not a signed note): a checkpoint of another key would replace one that clients pinning the first accept
    (a new user's review: a fresh key's checkpoint replaced the pinned one, and every bundle exported under it then
    failed to verify). Sign with the pinned key, or check the new one against a trust file (``pinned``).
    Raises VerificationError ``checkpoint.other_signer``."""
    target = published_checkpoint(ledger_path)
    old = read_published(target)
    if old is None or not _same_origin(old, note):  # another ledger's: publishing refuses it by name
        return
    before, now = note_signers(old), note_signers(note)
    if before and not before & now:
        raise VerificationError(f"{target} is signed by {', '.join(sorted(before))} and this checkpoint by "
                                f"{', '.join(sorted(now)) or 'no operator key'}: verifiers that pin the first would "
                                "refuse it; sign with that key, or pass --trust to check this key against the "
                                "operator key your trust file pins", code="checkpoint.other_signer")


def _same_origin(old: bytes, note: str) -> bool:
    """True if ``old`` is a checkpoint (read without verifying it) of the same origin as ``note``."""
    with contextlib.suppress(StoneTrailError, UnicodeDecodeError):
        return read_unverified_checkpoint(old.decode("utf-8")).origin == read_unverified_checkpoint(note).origin
    return False


def _holds_more_of(target: Path, note: str) -> bool:
    """Whether the checkpoint published at ``target`` is ``note`` with more signature lines (witness cosignatures,
    C2SP tlog-cosignature) than ``note`` has: the same text, and every one of ``note``'s lines among its own. An
    unreadable, linked or malformed file is not (replacing it is then :func:`replace_file`'s to refuse or do)."""
    old = read_published(target)
    with contextlib.suppress(StoneTrailError):
        (text, lines), (new_text, new_lines) = split_note(old or b""), split_note(note)
        return text == new_text and set(new_lines) < set(lines)
    return False
