"""Evidence that a ledger forked: portable bytes that anyone checks offline with the pinned keys alone.

DESIGN.md §1.4: two conflicting checkpoints, or two records claiming the same predecessor, are reported as a
fork *with the evidence*. Evidence proves misbehaviour by itself: it holds signed checkpoints and inclusion
proofs, never a claim that must be taken on trust. Normative text: docs/format.md §7b §2.

Wire format, version 1::

    evidence bytes = EVIDENCE_TAG || canonical-msgpack(map)          EVIDENCE_TAG = b"stonetrail/v1/evidence\\n"

    split view   {"kind": "split_view", "index": uint64 leaf index | nil, "a": side, "b": side}
      side       {"checkpoint": str signed note, "leaf": bin32 leaf hash | nil, "proof": [bin32, ...]}
    chain fork   {"kind": "chain_fork", "checkpoint": str signed note, "a": entry, "b": entry}
      entry      {"index": uint64 leaf index, "record": bin record bytes, "proof": [bin32, ...]}
    rollback     {"kind": "rollback", "cosigned": str, "witness": str, "presented": str, "received": uint}
                 (a witness's: :mod:`ledger.rollback` says what it proves and what rests on the witness's word)

A split view is two checkpoints of one origin, both signed by a pinned operator key, that cannot both be
honest: the same tree size with different roots, or with one root and different ``stonetrail-*`` lines (the
lines one tree's records give; ``index``, ``leaf`` nil and ``proof`` empty), or a leaf index
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
from typing import Final, TypeAlias

from ._codec import MAX_DOCUMENT_SIZE, Value, decode, encode
from .checkpoint import MAX_NOTE_BYTES, MAX_TREE_SIZE, Checkpoint, open_note, parse_checkpoint
from .errors import DecodeError, InputError, VerificationError
from .hashing import Digest
from .merkle import verify_inclusion
from .record import MAX_RECORD_SIZE, Record
from .rollback import ROLLBACK_KEYS, Rollback, RollbackClaim, parse_rollback, rollback_value, verify_rollback
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

#: Prefix of every evidence file: domain-separates it from records, bundles and anything else StoneTrail writes.
EVIDENCE_TAG: Final = b"stonetrail/v1/evidence\n"
#: Largest evidence file read, in bytes: the tag and one canonical document (ledger._codec's cap).
MAX_EVIDENCE_SIZE: Final = len(EVIDENCE_TAG) + MAX_DOCUMENT_SIZE
#: Most hashes in an inclusion proof (tree sizes are below 2**64).
_MAX_PATH: Final = 64


class EvidenceFormatError(InputError):
    """Evidence bytes are not the format of docs/format.md §7b §2 (``evidence.malformed``)."""

    default_code = "evidence.malformed"


class EvidenceError(VerificationError):
    """Well-formed evidence that proves no misbehaviour (``evidence.*``)."""

    default_code = "evidence.unproven"


# --- the claims, as carried in the file (unverified) -----------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class LeafProof:
    """A leaf hash and its RFC 9162 inclusion proof (sibling hashes from the leaf up) under one checkpoint."""

    leaf_hash: Digest
    proof: tuple[Digest, ...]

    def __post_init__(self) -> None:
        """Raises EvidenceFormatError: a hash not 32 bytes, or over 64 proof hashes."""
        object.__setattr__(self, "leaf_hash", _digest(self.leaf_hash, "leaf"))
        object.__setattr__(self, "proof", _path(list(self.proof), "proof"))


@dataclass(frozen=True, slots=True, kw_only=True)
class SplitViewClaim:
    """Two signed notes and, unless their tree sizes are equal, a leaf ``index`` with a leaf under each.

    Raises:
        EvidenceFormatError: ``index`` given without both leaves, or leaves without an index.
    """

    note_a: str
    note_b: str
    index: int | None = None
    leaf_a: LeafProof | None = None
    leaf_b: LeafProof | None = None

    def __post_init__(self) -> None:
        if (self.index is None) != (self.leaf_a is None) or (self.index is None) != (self.leaf_b is None):
            raise EvidenceFormatError("a split view has a leaf index exactly when it has a leaf on each side")


@dataclass(frozen=True, slots=True, kw_only=True)
class IncludedRecord:
    """Record bytes at leaf ``index`` with their inclusion proof."""

    index: int
    record: bytes
    proof: tuple[Digest, ...]

    def __post_init__(self) -> None:
        """Raises EvidenceFormatError: index not in 0..2**64-1, record not 1..1 MiB of bytes, bad proof."""
        _uint(self.index, "index")
        if not isinstance(self.record, bytes) or not 0 < len(self.record) <= MAX_RECORD_SIZE:
            raise _fail("record", f"expected 1..{MAX_RECORD_SIZE} bytes")
        object.__setattr__(self, "proof", _path(list(self.proof), "proof"))


@dataclass(frozen=True, slots=True, kw_only=True)
class ChainForkClaim:
    """One signed note and two included records said to claim the same predecessor."""

    note: str
    a: IncludedRecord
    b: IncludedRecord


EvidenceClaim: TypeAlias = SplitViewClaim | ChainForkClaim | RollbackClaim


# --- what verified evidence proves ----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class SplitView:
    """Proven: the operator of ``origin`` signed checkpoints ``a`` and ``b`` of two different trees.

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
        head = f"split view: the operator of {self.origin} signed two checkpoints that cannot both be the log"
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


# --- format / parse -------------------------------------------------------------------------------------------

def format_evidence(claim: EvidenceClaim) -> bytes:
    """The evidence bytes of ``claim`` (module docstring). Raises InputError for unencodable values."""
    value: dict[str, object]
    if isinstance(claim, SplitViewClaim):
        value = {"kind": "split_view", "index": claim.index,
                 "a": _side_value(claim.note_a, claim.leaf_a), "b": _side_value(claim.note_b, claim.leaf_b)}
    elif isinstance(claim, RollbackClaim):
        value = rollback_value(claim)
    else:
        value = {"kind": "chain_fork", "checkpoint": claim.note,
                 "a": _entry_value(claim.a), "b": _entry_value(claim.b)}
    return EVIDENCE_TAG + encode(value)


def _side_value(note: str, leaf: LeafProof | None) -> dict[str, object]:
    return {"checkpoint": note, "leaf": leaf.leaf_hash if leaf else None, "proof": list(leaf.proof if leaf else ())}


def _entry_value(entry: IncludedRecord) -> dict[str, object]:
    return {"index": entry.index, "record": entry.record, "proof": list(entry.proof)}


def _what_it_is(data: object) -> str:
    """For a refusal: the StoneTrail file ``data`` is instead, and the command that reads it ("" if none)."""
    if not isinstance(data, bytes):
        return ""
    return (": it is a ledger file (use 'stonetrail verify')" if data.startswith(b"STNTRAIL")
            else ": it is a proof bundle (use 'stonetrail proof verify')" if data.startswith(b"stonetrail/v1/bundle\n")
            else "")


def parse_evidence(data: bytes) -> EvidenceClaim:
    """Parse evidence bytes strictly (tag, one canonical msgpack document, exact keys and types, caps).

    Structure only: nothing is verified. Use :func:`verify_evidence`.

    Raises:
        EvidenceFormatError: ``evidence.malformed``, or a ``codec.*`` code for msgpack that is not canonical.
    """
    if not isinstance(data, bytes) or not data.startswith(EVIDENCE_TAG):
        raise EvidenceFormatError(f"not a StoneTrail evidence file (it does not start with the line "
                                  f"{EVIDENCE_TAG.decode().strip()}){_what_it_is(data)}")
    try:
        top = _map(decode(data[len(EVIDENCE_TAG):]), "evidence",
                   {"kind", "a", "b", "index", "checkpoint"} | ROLLBACK_KEYS)
    except DecodeError as exc:
        raise EvidenceFormatError(f"evidence: {exc}", code=exc.code) from exc
    kind = top.get("kind")
    if kind == "split_view":
        _keys(top, "evidence", {"kind", "index", "a", "b"})
        a, b = _side(top["a"], "a"), _side(top["b"], "b")
        index = None if top["index"] is None else _uint(top["index"], "index")
        return SplitViewClaim(note_a=a[0], note_b=b[0], index=index, leaf_a=a[1], leaf_b=b[1])
    if kind == "chain_fork":
        _keys(top, "evidence", {"kind", "checkpoint", "a", "b"})
        return ChainForkClaim(note=_note(top["checkpoint"], "checkpoint"), a=_entry(top["a"], "a"),
                              b=_entry(top["b"], "b"))
    if kind == "rollback":
        try:
            return parse_rollback(top)
        except InputError as exc:
            raise EvidenceFormatError(str(exc)) from exc
    raise _fail("kind", "want 'split_view', 'chain_fork' or 'rollback'")


def _fail(field: str, why: str) -> EvidenceFormatError:
    return EvidenceFormatError(f"evidence {field}: {why}")


def _map(value: Value, field: str, allowed: set[str]) -> dict[str, Value]:
    if not isinstance(value, dict):
        raise _fail(field, "expected a map")
    if set(value) - allowed:
        raise _fail(field, f"unknown keys {sorted(set(value) - allowed)}")
    return value


def _keys(value: dict[str, Value], field: str, want: set[str]) -> None:
    if set(value) != want:
        raise _fail(field, f"keys {sorted(value)}, want {sorted(want)}")


def _side(value: Value, field: str) -> tuple[str, LeafProof | None]:
    side = _map(value, field, {"checkpoint", "leaf", "proof"})
    _keys(side, field, {"checkpoint", "leaf", "proof"})
    path = _path(side["proof"], f"{field}.proof")
    if side["leaf"] is None:
        if path:
            raise _fail(f"{field}.proof", "a side without a leaf has no proof")
        return _note(side["checkpoint"], f"{field}.checkpoint"), None
    return _note(side["checkpoint"], f"{field}.checkpoint"), LeafProof(leaf_hash=_digest(side["leaf"], field),
                                                                        proof=path)


def _entry(value: Value, field: str) -> IncludedRecord:
    entry = _map(value, field, {"index", "record", "proof"})
    _keys(entry, field, {"index", "record", "proof"})
    record = entry["record"]
    if not isinstance(record, bytes):
        raise _fail(f"{field}.record", "expected bytes")
    return IncludedRecord(index=_uint(entry["index"], f"{field}.index"), record=record,
                          proof=_path(entry["proof"], f"{field}.proof"))


def _note(value: Value, field: str) -> str:
    if not isinstance(value, str) or not 0 < len(value.encode("utf-8")) <= MAX_NOTE_BYTES:
        raise _fail(field, f"expected a signed note: text of 1..{MAX_NOTE_BYTES} bytes")
    return value


def _uint(value: Value, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TREE_SIZE:
        raise _fail(field, "expected an integer in 0..2**64-1")
    return value


def _digest(value: Value, field: str) -> Digest:
    if not isinstance(value, bytes) or len(value) != 32:
        raise _fail(field, "expected a 32-byte hash")
    return Digest(value)


def _path(value: Value, field: str) -> tuple[Digest, ...]:
    if not isinstance(value, list) or len(value) > _MAX_PATH:
        raise _fail(field, f"expected an array of at most {_MAX_PATH} hashes")
    return tuple(_digest(h, field) for h in value)


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


def _open(note: str, trust: Trust) -> tuple[Checkpoint, tuple[str, ...]]:
    text, keys = open_note(note, trust.operators)
    return parse_checkpoint(text), tuple(k.name for k in keys)


def _verify_split_view(claim: SplitViewClaim, trust: Trust) -> SplitView:
    (a, signers_a), (b, signers_b) = _open(claim.note_a, trust), _open(claim.note_b, trust)
    if a.origin != b.origin:
        raise EvidenceError(f"the checkpoints are of two ledgers: {a.origin!r:.80} and {b.origin!r:.80}",
                            code="evidence.origin_mismatch")
    if claim.index is None or claim.leaf_a is None or claim.leaf_b is None:
        if a.tree_size != b.tree_size:
            raise EvidenceError(f"tree sizes {a.tree_size} and {b.tree_size} differ and no leaf is given: two "
                                "roots of different sizes prove nothing", code="evidence.unproven")
        if a.root_hash == b.root_hash and _commitments(a) == _commitments(b):
            raise EvidenceError("both checkpoints have the same tree: nothing conflicts", code="evidence.consistent")
        return SplitView(origin=a.origin, a=a, b=b, index=None, leaf_a=None, leaf_b=None,
                         signers_a=signers_a, signers_b=signers_b)
    if claim.leaf_a.leaf_hash == claim.leaf_b.leaf_hash:
        raise EvidenceError(f"leaf {claim.index} is the same under both checkpoints: nothing conflicts",
                            code="evidence.consistent")
    verify_inclusion(claim.leaf_a.leaf_hash, claim.index, a.tree_size, claim.leaf_a.proof, a.root_hash)
    verify_inclusion(claim.leaf_b.leaf_hash, claim.index, b.tree_size, claim.leaf_b.proof, b.root_hash)
    return SplitView(origin=a.origin, a=a, b=b, index=claim.index, leaf_a=claim.leaf_a.leaf_hash,
                     leaf_b=claim.leaf_b.leaf_hash, signers_a=signers_a, signers_b=signers_b)


def _commitments(cp: Checkpoint) -> tuple[str, ...]:
    """The checkpoint's StoneTrail lines (``stonetrail-registry``, ``-heads``, ``-identities``, docs/format.md §7):
    given by the tree's records, so one tree has one of each; other extension lines are not compared."""
    return tuple(line for line in cp.extensions if line.startswith("stonetrail-"))


def _verify_chain_fork(claim: ChainForkClaim, trust: Trust) -> ChainFork:
    cp, signers = _open(claim.note, trust)
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
