"""The evidence file's bytes: the claims it carries (unverified) and their strict format (docs/format.md §7b.2).

Re-exported by :mod:`ledger.evidence`, which verifies what this module only parses. Wire format, version 1::

    evidence bytes = EVIDENCE_TAG || canonical-msgpack(map)          EVIDENCE_TAG = b"stonetrail/v1/evidence\\n"

    split view   {"kind": "split_view", "index": uint64 leaf index | nil, "a": side, "b": side}
      side       {"checkpoint": str signed note, "leaf": bin32 leaf hash | nil, "proof": [bin32, ...]}
    chain fork   {"kind": "chain_fork", "checkpoint": str signed note, "a": entry, "b": entry}
      entry      {"index": uint64 leaf index, "record": bin record bytes, "proof": [bin32, ...]}
    rollback     {"kind": "rollback", "cosigned": str, "witness": str, "presented": str, "received": uint}

Bytes that are not this format raise :class:`EvidenceFormatError` (InputError, ``evidence.malformed`` or a
``codec.*`` code). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, TypeAlias

from ._codec import MAX_DOCUMENT_SIZE, Value, decode, encode
from .checkpoint import MAX_TREE_SIZE
from .errors import DecodeError, InputError
from .hashing import Digest
from .note import MAX_NOTE_BYTES
from .record import MAX_RECORD_SIZE
from .rollback import ROLLBACK_KEYS, RollbackClaim, parse_rollback, rollback_value

__all__ = ["EVIDENCE_TAG", "MAX_EVIDENCE_SIZE", "ChainForkClaim", "EvidenceClaim", "EvidenceFormatError",
           "IncludedRecord", "LeafProof", "SplitViewClaim", "format_evidence", "parse_evidence"]

#: Prefix of every evidence file: domain-separates it from records, bundles and anything else StoneTrail writes.
EVIDENCE_TAG: Final = b"stonetrail/v1/evidence\n"
#: Largest evidence file read, in bytes: the tag and one canonical document (ledger._codec's cap).
MAX_EVIDENCE_SIZE: Final = len(EVIDENCE_TAG) + MAX_DOCUMENT_SIZE
#: Most hashes in an inclusion proof (tree sizes are below 2**64).
_MAX_PATH: Final = 64


class EvidenceFormatError(InputError):
    """Evidence bytes are not the format of docs/format.md §7b §2 (``evidence.malformed``)."""

    default_code = "evidence.malformed"


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
