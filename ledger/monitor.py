"""Builders for append-only checks, from ledger files: consistency proofs and fork evidence.

The I/O side of :mod:`ledger.consistency` and :mod:`ledger.evidence` (which verify, from bytes alone). Each
builder reads the ledger files without locking (:func:`ledger.storage.scan`) and refuses a file whose framing is
damaged, since its tree would then be ambiguous. Builders read checkpoints without verifying their
signatures (:func:`~ledger.checkpoint.read_unverified_checkpoint`): what they build is checked by the verifier, which
trusts only the pinned keys; :func:`consistency_proof_for` verifies the old note when given ``trust``.
Each builder checks that a checkpoint is the file's tree at the checkpoint's own size before proving anything
under it: a checkpoint that is not is itself a split view (:class:`~ledger.consistency.SplitViewError`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .checkpoint import Checkpoint, open_checkpoint, read_unverified_checkpoint
from .consistency import ConsistencyError, ConsistencyProof, SplitViewError
from .errors import CorruptStoreError, InputError
from .evidence import ChainForkClaim, EvidenceError, IncludedRecord, LeafProof, SplitViewClaim, format_evidence
from .merkle import MerkleTree, leaf_hash
from .record import Record
from .storage import scan
from .trust import Trust

__all__ = ["consistency_proof_for", "fork_evidence", "split_view_evidence"]


@dataclass(frozen=True, slots=True)
class _File:
    """A ledger file read whole: its origin, record payloads (leaf i = payloads[i]) and tree."""

    path: Path
    origin: str
    payloads: list[bytes]
    tree: MerkleTree


def _read(path: str | Path) -> _File:
    """Raises CorruptStoreError (damaged framing), StorageError (I/O)."""
    result = scan(path)
    if result.problems:
        problem = result.problems[0]
        raise CorruptStoreError(f"{path}: {problem.reason}; run `stonetrail verify` for every finding",
                                code=problem.code)
    payloads = [frame.payload for frame in result.frames]
    return _File(Path(path), result.origin, payloads, MerkleTree(leaf_hash(p) for p in payloads))


def _match(file: _File, cp: Checkpoint, which: str) -> None:
    """``cp`` must be ``file``'s tree at ``cp``'s size (origin, size within the file, root)."""
    if cp.origin != file.origin:
        raise ConsistencyError(f"the {which} checkpoint is of {cp.origin!r:.80}, {file.path} of "
                               f"{file.origin!r:.80}", code="consistency.origin_mismatch")
    if cp.tree_size > file.tree.size:
        raise ConsistencyError(f"rollback: the {which} checkpoint has {cp.tree_size} records, {file.path} only "
                               f"{file.tree.size}", code="consistency.rollback")
    if file.tree.root_at(cp.tree_size) != cp.root_hash:
        raise SplitViewError(f"split view: the {which} checkpoint's root at tree size {cp.tree_size} is not the "
                             f"root of the first {cp.tree_size} records of {file.path}: the operator signed a "
                             "tree that this file is not")


def consistency_proof_for(ledger_path: str | Path, old_note: str | bytes, new_note: str | bytes | None = None,
                          *, trust: Trust | None = None) -> ConsistencyProof:
    """The RFC 9162 §2.1.4.1 consistency proof from the checkpoint ``old_note`` to ``new_note`` (default: the
    file's whole tree as it is now), built from the ledger file at ``ledger_path``.

    With ``trust``, ``old_note`` must first open under ``trust.operators``. Old size 0 gives a proof with no
    hash (docs/format.md §7b §1).

    Raises:
        SplitViewError: ``consistency.split_view``: a checkpoint's root is not the file's root at its size.
        ConsistencyError: ``consistency.origin_mismatch``; ``consistency.rollback`` (a checkpoint is larger
            than the file, or the new one smaller than the old one).
        NoteFormatError and, with ``trust``, the errors of :func:`~ledger.checkpoint.open_checkpoint`.
        CorruptStoreError, StorageError: as :func:`ledger.storage.scan`, or damaged framing.
    """
    old = open_checkpoint(old_note, trust.operators) if trust else read_unverified_checkpoint(old_note)
    file = _read(ledger_path)
    _match(file, old, "old")
    new_size = file.tree.size
    if new_note is not None:
        new = read_unverified_checkpoint(new_note)
        _match(file, new, "new")
        new_size = new.tree_size
    if new_size < old.tree_size:
        raise ConsistencyError(f"rollback: the new checkpoint has {new_size} records, the old one "
                               f"{old.tree_size}", code="consistency.rollback")
    hashes = file.tree.consistency_proof(old.tree_size, new_size) if old.tree_size else []
    return ConsistencyProof(old_size=old.tree_size, new_size=new_size, hashes=tuple(hashes))


def fork_evidence(ledger_path: str | Path, checkpoint_note: str) -> bytes | None:
    """Chain-fork evidence (docs/format.md §7b §2) for the first fork among the records covered by
    ``checkpoint_note``, or None if they hold none.

    A fork is two records whose ``inputs`` name the same (item id, previous record hash); the first is the one
    whose second record comes first in the log (what an audit reports first as ``chain.fork``). Unreadable
    records are skipped (an audit reports them).

    Raises:
        SplitViewError, ConsistencyError, NoteFormatError, CorruptStoreError, StorageError: as
            :func:`consistency_proof_for` (the checkpoint must be this file's tree at its size).
    """
    cp = read_unverified_checkpoint(checkpoint_note)
    file = _read(ledger_path)
    _match(file, cp, "given")
    first: dict[tuple[str, bytes], int] = {}
    for index, payload in enumerate(file.payloads[: cp.tree_size]):
        try:
            record = Record.from_bytes(payload)
        except InputError:
            continue
        for pair in record.body.inputs:
            if pair in first:
                return format_evidence(ChainForkClaim(note=checkpoint_note, a=_entry(file, cp, first[pair]),
                                                      b=_entry(file, cp, index)))
            first[pair] = index
    return None


def _entry(file: _File, cp: Checkpoint, index: int) -> IncludedRecord:
    return IncludedRecord(index=index, record=file.payloads[index],
                          proof=tuple(file.tree.inclusion_proof(index, cp.tree_size)))


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
        SplitViewError, ConsistencyError, NoteFormatError, CorruptStoreError, StorageError: as
            :func:`consistency_proof_for`, for each file against its checkpoint.
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
    file_a, file_b = _read(ledger_a), _read(ledger_b)
    _match(file_a, a, "first")
    _match(file_b, b, "second")
    leaves_a, leaves_b = file_a.tree.leaf_hashes, file_b.tree.leaf_hashes
    shared = min(a.tree_size, b.tree_size)
    index = next((i for i in range(shared) if leaves_a[i] != leaves_b[i]), None)
    if index is None:
        why = (f"the two files agree on their first {shared} records: the checkpoints are consistent (the smaller "
               "one is a prefix of the larger)" if shared else
               "a checkpoint has tree size 0: nothing to compare (the empty tree is a prefix of every tree)")
        raise EvidenceError(why, code="evidence.consistent")
    return format_evidence(SplitViewClaim(
        note_a=note_a, note_b=note_b, index=index,
        leaf_a=LeafProof(leaf_hash=leaves_a[index], proof=tuple(file_a.tree.inclusion_proof(index, a.tree_size))),
        leaf_b=LeafProof(leaf_hash=leaves_b[index], proof=tuple(file_b.tree.inclusion_proof(index, b.tree_size)))))
