"""Rollback evidence: a witness cosigned a log's checkpoint of size N, then was shown a validly signed one of a
smaller size M. Pure: values in, values out; the bytes are :mod:`ledger.evidence`'s (kind ``rollback``).

Wire value (inside the evidence document of docs/format.md §7b §2)::

    {"kind": "rollback",
     "cosigned":  str   the signed note of size N: the operator's signature and the witness's cosignature
     "witness":   str   the witness's cosigner key (C2SP tlog-cosignature vkey, type 0x04)
     "presented": str   the signed note of size M < N, as the witness received it
     "received":  uint  when the witness received it (POSIX seconds): the witness's own word, not signed}

What verifies offline: both notes are signed by a pinned operator key, of one origin, M < N, and the witness key's
v1 cosignature of the size-N note (its timestamp T: "as of T, this is the largest tree I have seen"). So it is
proven that the operator signed a tree of N records, that it existed by T, and that the operator also signed a
smaller tree. A checkpoint carries no time of its own, so that the smaller one was *presented after* T — a
rollback — rests on the witness's word (``received``, and the witness's refusal); if the two trees are not
prefixes of each other, only the ledgers can show it (``stonetrail consistency --evidence-out``). None of this is
misbehaviour by the operator: a growing log signs every size, and anyone holding the older checkpoint can present
it to a witness. ``evidence verify`` reports it as witnessed, never as misbehaviour proven (exit 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from .checkpoint import MAX_TREE_SIZE, Checkpoint, open_checkpoint_signers
from .cosignature import CosignerKey, open_cosignatures
from .errors import InputError, KeyFormatError, NoteFormatError, VerificationError
from .note import MAX_NOTE_BYTES
from .trust import Trust

__all__ = ["ROLLBACK_KEYS", "Rollback", "RollbackClaim", "parse_rollback", "rollback_value", "verify_rollback"]

#: The keys of a rollback evidence document.
ROLLBACK_KEYS: Final = frozenset({"kind", "cosigned", "witness", "presented", "received"})


@dataclass(frozen=True, slots=True, kw_only=True)
class RollbackClaim:
    """The notes as carried in the file (unverified): ``cosigned`` (size N, cosigned by ``witness``, a vkey
    text), ``presented`` (size M < N) and ``received`` (POSIX seconds, the witness's statement)."""

    cosigned: str
    witness: str
    presented: str
    received: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Rollback:
    """Proven: the operator of ``origin`` signed ``larger`` (cosigned by ``witness`` at ``cosigned_at``) and
    ``smaller``; ``pinned``: the witness's name in the trust file's witness policy (None: not in it)."""

    origin: str
    larger: Checkpoint
    smaller: Checkpoint
    signers_larger: tuple[str, ...]
    signers_smaller: tuple[str, ...]
    witness: CosignerKey
    pinned: str | None
    cosigned_at: int
    received: int

    def describe(self) -> list[str]:
        """Lines for people: what is proven, and what rests on the witness's word."""
        big, small = self.larger, self.smaller
        who = f"witness {self.pinned} (pinned in the trust file)" if self.pinned else \
            f"witness {self.witness.text()} (NOT pinned in the trust file: its word is only as good as that key)"
        return [f"rollback: pinned operator keys signed a tree of {big.tree_size} records of {self.origin}, then a "
                f"witness was shown its checkpoint of {small.tree_size}",
                f"  checkpoint N: tree size {big.tree_size}, root {big.root_hash.b64()}, signed by "
                f"{', '.join(self.signers_larger)}",
                f"    cosigned by {who} at {_when(self.cosigned_at)}: as of then the largest tree it had seen",
                f"  checkpoint M: tree size {small.tree_size}, root {small.root_hash.b64()}, signed by "
                f"{', '.join(self.signers_smaller)}",
                f"  the witness says it received M at {_when(self.received)}, after cosigning N, and refused it",
                "  proven by the signatures: the operator signed both trees and N existed by the cosignature's "
                "time; a checkpoint carries no time, so that M was presented as the latest after N rests on the "
                "witness's word",
                "  no misbehaviour is proven: a growing log signs every size, and anyone holding checkpoint M can "
                "present it again"]


def _when(timestamp: int) -> str:
    return datetime.fromtimestamp(min(timestamp, 253402300799), UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def rollback_value(claim: RollbackClaim) -> dict[str, object]:
    """The evidence document of ``claim`` (module docstring), before encoding."""
    return {"kind": "rollback", "cosigned": claim.cosigned, "witness": claim.witness,
            "presented": claim.presented, "received": claim.received}


def parse_rollback(value: Mapping[str, object]) -> RollbackClaim:
    """The claim in a decoded rollback document (its keys exactly :data:`ROLLBACK_KEYS`, checked here).

    Raises:
        InputError: ``evidence.malformed`` (the caller wraps it as its format error).
    """
    if set(value) != ROLLBACK_KEYS:
        raise InputError(f"evidence: keys {sorted(value)}, want {sorted(ROLLBACK_KEYS)}", code="evidence.malformed")
    received = value["received"]
    if isinstance(received, bool) or not isinstance(received, int) or not 0 <= received <= MAX_TREE_SIZE:
        raise InputError("evidence received: expected an integer in 0..2**64-1", code="evidence.malformed")
    texts = [value[k] for k in ("cosigned", "witness", "presented")]
    for name, text in zip(("cosigned", "witness", "presented"), texts, strict=True):
        if not isinstance(text, str) or not 0 < len(text.encode("utf-8")) <= MAX_NOTE_BYTES:
            raise InputError(f"evidence {name}: expected text of 1..{MAX_NOTE_BYTES} bytes", code="evidence.malformed")
    return RollbackClaim(cosigned=str(texts[0]), witness=str(texts[1]), presented=str(texts[2]), received=received)


def verify_rollback(claim: RollbackClaim, trust: Trust) -> Rollback:
    """Check a rollback claim against the pinned operator keys of ``trust``, in order: both notes open under
    ``trust.operators``; one origin; the presented tree is smaller; the witness key parses and its cosignature
    of the larger note verifies.

    Raises:
        KeyFormatError: ``witness.bad_vkey``. NoteFormatError, SignatureError, UnverifiedNoteError: as
            :func:`ledger.checkpoint.open_note`, or ``witness.bad_cosignature``.
        VerificationError: ``evidence.origin_mismatch``, ``evidence.consistent`` (the presented tree is not
            smaller: no rollback), ``evidence.no_cosignature`` (the witness key did not cosign the larger note).
    """
    big, signers_big = open_checkpoint_signers(claim.cosigned, trust.operators)
    small, signers_small = open_checkpoint_signers(claim.presented, trust.operators)
    if big.origin != small.origin:
        raise VerificationError(f"the checkpoints are of two ledgers: {big.origin!r:.80} and {small.origin!r:.80}",
                                code="evidence.origin_mismatch")
    if small.tree_size >= big.tree_size:
        raise VerificationError(f"the presented checkpoint ({small.tree_size} records) is not smaller than the "
                                f"cosigned one ({big.tree_size}): no rollback", code="evidence.consistent")
    try:
        witness = CosignerKey.parse(claim.witness)
    except NoteFormatError as exc:
        raise KeyFormatError(f"bad witness key: {exc}", code="witness.bad_vkey") from exc
    found = open_cosignatures(claim.cosigned, [witness])
    if not found:
        raise VerificationError(f"the larger checkpoint carries no cosignature of {witness.text()}",
                                code="evidence.no_cosignature")
    policy = trust.witnesses
    pinned = next((w.name for w in policy.witnesses if w.key == witness), None) if policy else None
    return Rollback(origin=big.origin, larger=big, smaller=small, signers_larger=signers_big,
                    signers_smaller=signers_small, witness=witness, pinned=pinned, cosigned_at=found[0].timestamp,
                    received=claim.received)
