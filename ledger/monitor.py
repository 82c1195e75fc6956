"""Builders for append-only checks, from ledger files: consistency proofs and fork evidence.

The I/O side of :mod:`ledger.consistency` and :mod:`ledger.evidence` (which verify, from bytes alone). Each
builder reads the ledger files once each, without locking and in bounded memory (:class:`ledger.reader.LogPass`),
and refuses a file whose framing is damaged, since its tree would then be ambiguous. Builders read checkpoints
without verifying their signatures (:func:`~ledger.checkpoint.read_unverified_checkpoint`): what they build is
checked by the verifier, which trusts only the pinned keys; :func:`consistency_proof_for` verifies the old note
when given ``trust``. Each builder checks that a checkpoint is the file's at the checkpoint's own size before
proving anything under it, as every reader decides it (:func:`ledger.reader.checkpoint_problems`: a checkpoint
that is not this file's gets the same ``checkpoint.*`` code as from an audit or an export). Two checkpoints that
contradict each other are :mod:`ledger.consistency`'s (``consistency.split_view``, ``consistency.rollback``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .checkpoint import Checkpoint, open_checkpoint, read_unverified_checkpoint
from .consistency import ConsistencyError, ConsistencyProof
from .errors import InputError, StoneTrailError
from .evidence import ChainForkClaim, EvidenceError, IncludedRecord, LeafProof, SplitViewClaim, format_evidence
from .merkle import MerkleTree
from .pg.db import redact
from .pg.store import as_file
from .reader import LogPass, check_checkpoint
from .record import Record
from .storage import Frame, FrameFile
from .trust import Trust

__all__ = ["consistency_proof_for", "fork_evidence", "split_view_evidence"]


@dataclass(frozen=True, slots=True)
class _File:
    """A ledger file read whole (:class:`ledger.reader.LogPass`) and found to be checkpoint ``cp``'s tree at its
    size: ``payload(i)`` reads leaf i again, ``log.tree`` is its tree."""

    log: LogPass
    cp: Checkpoint

    @property
    def tree(self) -> MerkleTree:
        return self.log.tree

    def payload(self, index: int) -> bytes:
        return self.log.file.payload(index)


#: Called with each frame of a file and its record (or why it is unreadable) as the file is read.
_Visit = Callable[[Frame, Record | InputError], None]


@contextmanager
def _of(path: str | Path, cp: Checkpoint, which: str, visit: _Visit | None = None) -> Iterator[_File]:
    """The ledger file at ``path`` (a ``postgresql://`` URL: :func:`ledger.pg.store.as_file`), read once
    (``visit`` sees each record), after checking that ``cp`` (the ``which`` checkpoint) is its checkpoint at its
    tree size (:func:`ledger.reader.check_checkpoint`: the one answer of the read side). Raises its errors, and
    CorruptStoreError (damaged framing), StorageError (I/O)."""
    with as_file(path) as local, FrameFile(local) as file:  # a database ledger: a dump of its records
        log = LogPass(file, at=cp.tree_size)
        if cp.origin == file.origin:
            for frame, record in log.records():
                if visit is not None:
                    visit(frame, record)
        try:
            check_checkpoint(log, cp)
        except StoneTrailError as exc:
            exc.about(f"the {which} checkpoint and {redact(str(path))}")
            raise
        yield _File(log, cp)


def consistency_proof_for(ledger_path: str | Path, old_note: str | bytes, new_note: str | bytes | None = None,
                          *, trust: Trust | None = None) -> ConsistencyProof:
    """The RFC 9162 §2.1.4.1 consistency proof from the checkpoint ``old_note`` to ``new_note`` (default: the
    file's whole tree as it is now), built from the ledger file at ``ledger_path``.

    With ``trust``, ``old_note`` must first open under ``trust.operators``. Old size 0 gives a proof with no
    hash (docs/format.md §7b §1).

    Raises:
        VerificationError / NoteFormatError: a checkpoint is not the file's at its tree size: the first of
            :func:`ledger.reader.checkpoint_problems` (``checkpoint.origin_mismatch``, ``checkpoint.beyond_log``,
            ``checkpoint.root_mismatch``, ``checkpoint.registry_*``, ``checkpoint.heads_*``,
            ``checkpoint.identities_*``), its message prefixed with which checkpoint and file.
        ConsistencyError: ``consistency.rollback`` (the new checkpoint is smaller than the old one).
        NoteFormatError and, with ``trust``, the errors of :func:`~ledger.checkpoint.open_checkpoint`.
        CorruptStoreError, StorageError: as :func:`ledger.storage.scan`, or damaged framing.
    """
    old = open_checkpoint(old_note, trust.operators) if trust else read_unverified_checkpoint(old_note)
    with _of(ledger_path, old, "old") as file:
        tree = file.tree
    new_size = tree.size
    if new_note is not None:  # its lines are checked in a second pass (each pass keeps one tree size's lines)
        new = read_unverified_checkpoint(new_note)
        with _of(ledger_path, new, "new") as file:
            tree, new_size = file.tree, new.tree_size
    if new_size < old.tree_size:
        raise ConsistencyError(f"rollback: the new checkpoint has {new_size} records, the old one "
                               f"{old.tree_size}", code="consistency.rollback")
    hashes = tree.consistency_proof(old.tree_size, new_size) if old.tree_size else []
    return ConsistencyProof(old_size=old.tree_size, new_size=new_size, hashes=tuple(hashes))


def fork_evidence(ledger_path: str | Path, checkpoint_note: str) -> bytes | None:
    """Chain-fork evidence (docs/format.md §7b §2) for the first fork among the records covered by
    ``checkpoint_note``, or None if they hold none.

    A fork is two records whose ``inputs`` name the same (item id, previous record hash); the first is the one
    whose second record comes first in the log (what an audit reports first as ``chain.fork``). Unreadable
    records are skipped (an audit reports them).

    Raises:
        VerificationError, NoteFormatError, CorruptStoreError, StorageError: as :func:`consistency_proof_for`
            (the checkpoint must be this file's at its size).
    """
    cp = read_unverified_checkpoint(checkpoint_note)
    first: dict[tuple[str, bytes], int] = {}
    forks: list[tuple[int, int]] = []

    def visit(frame: Frame, record: Record | InputError) -> None:
        if forks or frame.index >= cp.tree_size or isinstance(record, InputError):
            return
        for pair in record.body.inputs:
            if pair in first:
                forks.append((first[pair], frame.index))
                return
            first[pair] = frame.index

    with _of(ledger_path, cp, "given", visit) as file:
        return format_evidence(ChainForkClaim(note=checkpoint_note, a=_entry(file, forks[0][0]),
                                              b=_entry(file, forks[0][1]))) if forks else None


def _entry(file: _File, index: int) -> IncludedRecord:
    return IncludedRecord(index=index, record=file.payload(index),
                          proof=tuple(file.tree.inclusion_proof(index, file.cp.tree_size)))


def split_view_evidence(ledger_a: str | Path | None, note_a: str, ledger_b: str | Path | None,
                        note_b: str) -> bytes:
    """Split-view evidence (docs/format.md §7b §2) that checkpoints ``note_a`` and ``note_b`` of one
    origin are not one log.

    With both ledger files (each must be its checkpoint's tree at the checkpoint's size): the first leaf index
    below both tree sizes whose leaves differ, with an inclusion proof under each checkpoint. Without them:
    only for equal tree sizes and different roots (the roots are the proof).

    Raises:
        EvidenceError: ``evidence.origin_mismatch``; ``evidence.consistent`` (the files agree on every leaf
            below both sizes, or equal sizes and equal roots: nothing conflicts).
        InputError: ``evidence.needs_ledgers`` (different sizes, and not both ledger files given).
        VerificationError, NoteFormatError, CorruptStoreError, StorageError: as :func:`consistency_proof_for`,
            for each file against its checkpoint.
    """
    a, b = read_unverified_checkpoint(note_a), read_unverified_checkpoint(note_b)
    if a.origin != b.origin:
        raise EvidenceError(f"the checkpoints are of two ledgers: {a.origin!r:.80} and {b.origin!r:.80}",
                            code="evidence.origin_mismatch")
    if ledger_a is None or ledger_b is None:
        if a.tree_size != b.tree_size:
            raise InputError("checkpoints of different sizes: give both ledger files to find the leaf that "
                             "differs", code="evidence.needs_ledgers")
        if a.root_hash == b.root_hash:
            raise EvidenceError("both checkpoints have the same tree: nothing conflicts", code="evidence.consistent")
        return format_evidence(SplitViewClaim(note_a=note_a, note_b=note_b))
    with _of(ledger_a, a, "first") as file_a, _of(ledger_b, b, "second") as file_b:
        tree_a, tree_b = file_a.tree, file_b.tree
    leaves_a, leaves_b = tree_a.leaf_hashes, tree_b.leaf_hashes
    shared = min(a.tree_size, b.tree_size)
    index = next((i for i in range(shared) if leaves_a[i] != leaves_b[i]), None)
    if index is None:
        why = (f"the two files agree on their first {shared} records: the checkpoints are consistent (the smaller "
               "one is a prefix of the larger)" if shared else
               "a checkpoint has tree size 0: nothing to compare (the empty tree is a prefix of every tree)")
        raise EvidenceError(why, code="evidence.consistent")
    return format_evidence(SplitViewClaim(
        note_a=note_a, note_b=note_b, index=index,
        leaf_a=LeafProof(leaf_hash=leaves_a[index], proof=tuple(tree_a.inclusion_proof(index, a.tree_size))),
        leaf_b=LeafProof(leaf_hash=leaves_b[index], proof=tuple(tree_b.inclusion_proof(index, b.tree_size)))))
