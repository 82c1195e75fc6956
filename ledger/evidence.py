"""Evidence that a ledger forked: portable bytes that anyone checks offline with the pinned keys alone.

DESIGN.md §1.4: two conflicting checkpoints, or two records claiming the same predecessor, are reported as a
fork *with the evidence*. Evidence proves misbehaviour by itself: it holds signed checkpoints and inclusion
proofs, never a claim that must be taken on trust. Normative text: docs/format.md §7b §2.

The wire format (version 1: a tag, then one canonical document of kind ``split_view``, ``chain_fork`` or
``rollback``) is :mod:`ledger._evidence_format`'s, re-exported here; :mod:`ledger.rollback` says what a
witness's rollback evidence proves and what rests on its word.

A split view is two checkpoints of one origin, both signed by a pinned operator key, that cannot both be
honest: the same tree size with different roots, or with one root and a ``stonetrail-*`` line both carry with
other values (the lines one tree's records give, :func:`ledger.checkpoint.trees_conflict`; ``index``, ``leaf`` nil
and ``proof`` empty), or a leaf index
below both tree sizes whose leaf hashes differ, each shown by an RFC 9162 §2.1.3 inclusion proof under its own
checkpoint. A chain fork is one signed checkpoint and two records at different leaf indices, each with its
inclusion proof, whose ``inputs`` share an (item id, previous record hash) pair: two successors of one record.
The same record bytes at two indices also count (a replayed record).

Fault split: bytes that are not this format raise :class:`EvidenceFormatError` (InputError,
``evidence.malformed`` or a ``codec.*`` code); well-formed evidence that proves nothing raises
:class:`EvidenceError` (``evidence.*``) or the error of the check that failed (``sig.*``, ``note.unverified``,
``proof.*``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from ._evidence_format import (
    EVIDENCE_TAG,
    MAX_EVIDENCE_SIZE,
    ChainForkClaim,
    EvidenceClaim,
    EvidenceFormatError,
    IncludedRecord,
    LeafProof,
    SplitViewClaim,
    format_evidence,
    parse_evidence,
)
from .checkpoint import Checkpoint, open_checkpoint_signers, trees_conflict
from .errors import VerificationError
from .hashing import Digest
from .merkle import verify_inclusion
from .record import Record
from .rollback import Rollback, RollbackClaim, verify_rollback
from .trust import Trust

__all__ = [
    "EVIDENCE_TAG",
    "MAX_EVIDENCE_SIZE",
    "ChainFork",
    "ChainForkClaim",
    "Evidence",
    "EvidenceClaim",
    "EvidenceError",
    "EvidenceFormatError",
    "IncludedRecord",
    "LeafProof",
    "SplitView",
    "SplitViewClaim",
    "format_evidence",
    "parse_evidence",
    "verify_evidence",
]

class EvidenceError(VerificationError):
    """Well-formed evidence that proves no misbehaviour (``evidence.*``)."""

    default_code = "evidence.unproven"


# --- what verified evidence proves ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class SplitView:
    """Proven: operator keys the trust file pins signed checkpoints ``a`` and ``b`` of ``origin``, of two different
    trees (which keys: ``signers_*``, each named after the origin: :func:`ledger.checkpoint.open_checkpoint`).

    ``index`` is None when the sizes are equal and the roots differ; else leaf ``index`` is ``leaf_a`` under
    ``a`` and ``leaf_b`` under ``b``. ``signers_*``: the pinned operator key names whose signatures verified.
    """

    origin: str
    a: Checkpoint
    b: Checkpoint
    index: int | None
    leaf_a: Digest | None
    leaf_b: Digest | None
    signers_a: tuple[str, ...]
    signers_b: tuple[str, ...]

    def describe(self) -> list[str]:
        """Lines for people: what is proven, and by what."""
        head = (f"split view: operator keys the trust file pins signed two checkpoints of {self.origin} that cannot "
                "both be the log (the keys below)")
        a, b = self.a, self.b
        lines = [head, f"  checkpoint A: tree size {a.tree_size}, root {a.root_hash.b64()}, signed by "
                       f"{', '.join(self.signers_a)}",
                 f"  checkpoint B: tree size {b.tree_size}, root {b.root_hash.b64()}, signed by "
                 f"{', '.join(self.signers_b)}"]
        if self.index is None or self.leaf_a is None or self.leaf_b is None:
            if a.root_hash == b.root_hash:
                return [*lines, "  one tree, two different stonetrail lines (registry, item heads or identities): "
                                "one tree's records give one of each"]
            return [*lines, "  same tree size, different root hashes"]
        return [*lines, f"  leaf {self.index} is {self.leaf_a.b64()} under A and {self.leaf_b.b64()} under B "
                        "(inclusion proofs verified)"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainFork:
    """Proven: the log of ``origin``, as signed in ``checkpoint``, holds records ``record_a`` (leaf ``index_a``)
    and ``record_b`` (leaf ``index_b``) that both claim each (item id, previous record hash) of ``shared``."""

    origin: str
    checkpoint: Checkpoint
    index_a: int
    index_b: int
    record_a: Record
    record_b: Record
    shared: tuple[tuple[str, Digest], ...]
    signers: tuple[str, ...]

    def describe(self) -> list[str]:
        """Lines for people: what is proven, and by what."""
        cp = self.checkpoint
        lines = [f"chain fork: the log of {self.origin} holds two records claiming the same predecessor",
                 f"  checkpoint: tree size {cp.tree_size}, root {cp.root_hash.b64()}, signed by "
                 f"{', '.join(self.signers)}"]
        for index, record in ((self.index_a, self.record_a), (self.index_b, self.record_b)):
            signed = ", ".join(s.party for s in record.signatures)
            lines.append(f"  record {index}: {record.body.kind} by {record.body.actor}, signed by {signed}, "
                         f"hash {record.record_hash.b64()} (inclusion proof verified)")
        lines += [f"  both follow record {prev.b64()} of item {item}" for item, prev in self.shared]
        return lines


Evidence: TypeAlias = SplitView | ChainFork | Rollback


# --- verify ---------------------------------------------------------------------------------------------------

def verify_evidence(data: bytes, trust: Trust) -> Evidence:
    """Check evidence offline against the pinned operator keys of ``trust``; return what it proves.

    Split view, in order: both notes open under ``trust.operators``; same origin; then either equal tree
    sizes and different roots, or different leaf hashes at ``index``, each verified by inclusion (RFC 9162
    §2.1.3.2, index and size from the signed checkpoint). Chain fork, in order: the note opens; the two leaf
    indices differ; each record parses, is included at its index under the checkpoint, names the
    checkpoint's origin and carries only signatures that verify under the keys they name; the two records share
    an (item id, previous record hash) input.

    Raises:
        EvidenceFormatError: as :func:`parse_evidence`. RecordFormatError: a record's bytes break the record
            format. NoteFormatError, KeyFormatError: a malformed note or key.
        SignatureError, UnverifiedNoteError: a note or a record signature does not verify.
        ProofError: ``proof.index_out_of_range``, ``proof.wrong_length``, ``proof.root_mismatch``.
        EvidenceError: ``evidence.origin_mismatch`` (two ledgers), ``evidence.consistent`` (same tree, or the
            same leaf at ``index``: nothing conflicts), ``evidence.unproven`` (different sizes and no leaf),
            ``evidence.same_record`` (one leaf index twice), ``evidence.wrong_origin`` (a record of another
            ledger), ``evidence.no_shared_predecessor``; for a rollback, as :func:`ledger.rollback.verify_rollback`.
    """
    claim = parse_evidence(data)
    if isinstance(claim, SplitViewClaim):
        return _verify_split_view(claim, trust)
    if isinstance(claim, RollbackClaim):
        return verify_rollback(claim, trust)
    return _verify_chain_fork(claim, trust)


def _verify_split_view(claim: SplitViewClaim, trust: Trust) -> SplitView:
    a, signers_a = open_checkpoint_signers(claim.note_a, trust.operators)
    b, signers_b = open_checkpoint_signers(claim.note_b, trust.operators)
    if a.origin != b.origin:
        raise EvidenceError(f"the checkpoints are of two ledgers: {a.origin!r:.80} and {b.origin!r:.80}",
                            code="evidence.origin_mismatch")
    if claim.index is None or claim.leaf_a is None or claim.leaf_b is None:
        if a.tree_size != b.tree_size:
            raise EvidenceError(f"tree sizes {a.tree_size} and {b.tree_size} differ and no leaf is given: two "
                                "roots of different sizes prove nothing", code="evidence.unproven")
        if not trees_conflict(a, b):
            raise EvidenceError("both checkpoints have the same tree (and no StoneTrail line that both carry differs):"
                                " nothing conflicts", code="evidence.consistent")
        return SplitView(origin=a.origin, a=a, b=b, index=None, leaf_a=None, leaf_b=None,
                         signers_a=signers_a, signers_b=signers_b)
    if claim.leaf_a.leaf_hash == claim.leaf_b.leaf_hash:
        raise EvidenceError(f"leaf {claim.index} is the same under both checkpoints: nothing conflicts",
                            code="evidence.consistent")
    verify_inclusion(claim.leaf_a.leaf_hash, claim.index, a.tree_size, claim.leaf_a.proof, a.root_hash)
    verify_inclusion(claim.leaf_b.leaf_hash, claim.index, b.tree_size, claim.leaf_b.proof, b.root_hash)
    return SplitView(origin=a.origin, a=a, b=b, index=claim.index, leaf_a=claim.leaf_a.leaf_hash,
                     leaf_b=claim.leaf_b.leaf_hash, signers_a=signers_a, signers_b=signers_b)


def _verify_chain_fork(claim: ChainForkClaim, trust: Trust) -> ChainFork:
    cp, signers = open_checkpoint_signers(claim.note, trust.operators)
    if claim.a.index == claim.b.index:
        raise EvidenceError(f"both entries are leaf {claim.a.index}: one record is no fork",
                            code="evidence.same_record")
    record_a, record_b = _included_record(claim.a, cp), _included_record(claim.b, cp)
    shared = tuple(sorted(set(record_a.body.inputs) & set(record_b.body.inputs)))
    if not shared:
        raise EvidenceError(f"records {claim.a.index} and {claim.b.index} share no (item, previous record) input",
                            code="evidence.no_shared_predecessor")
    return ChainFork(origin=cp.origin, checkpoint=cp, index_a=claim.a.index, index_b=claim.b.index,
                     record_a=record_a, record_b=record_b, shared=shared, signers=signers)


def _included_record(entry: IncludedRecord, cp: Checkpoint) -> Record:
    record = Record.from_bytes(entry.record)
    verify_inclusion(record.record_hash, entry.index, cp.tree_size, entry.proof, cp.root_hash)
    if record.body.origin != cp.origin:
        raise EvidenceError(f"record {entry.index} names ledger {record.body.origin!r:.80}, the checkpoint "
                            f"{cp.origin!r:.80}", code="evidence.wrong_origin")
    for sig in record.signatures:
        record.verify_signature(sig)
    return record
