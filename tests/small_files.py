"""Small input files for command-line tests (tests/test_exit_codes.py, tests/test_json_output.py): a ledger of
four records (two enrolments, stone S1 mined in BW, S1 sold), its checkpoints, S1's proof bundle, a trust file,
damaged copies, and a second ledger of the same origin whose fourth record differs (a split view).
Built through the library in well under a second."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ledger import AUTHORITY, Ledger, Record, Transferred, Trust
from ledger.consistency import format_consistency_proof
from ledger.export import export_bundle
from ledger.keys import note_verifier_key
from ledger.monitor import consistency_proof_for, split_view_evidence
from world import ORIGIN, PARTIES, World, key


@dataclass(frozen=True, slots=True, kw_only=True)
class SmallFiles:
    """Paths of the files :func:`small_files` wrote."""

    trust: Path
    ledger: Path  # 4 records, valid; S1 is of BW origin
    bad_ledger: Path  # one byte of the last record flipped
    checkpoint_3: Path  # after 3 records
    checkpoint: Path  # after 4 records
    proof_3_4: Path  # consistency proof from checkpoint_3 to checkpoint
    bundle: Path  # S1's proof bundle under checkpoint
    bad_bundle: Path  # one byte flipped
    other_checkpoint: Path  # another signed checkpoint of size 4, with another root (of other.ledger)
    proof_4_4: Path  # consistency proof from checkpoint to itself (empty)
    split_view: Path  # evidence: checkpoint and other_checkpoint


def small_files(d: Path) -> SmallFiles:
    """Write the files into the directory ``d`` (which must exist)."""
    trust = Trust(operators=(note_verifier_key(ORIGIN, key("operator").public_key),),
                  authorities=(note_verifier_key("authority", key(AUTHORITY).public_key),))
    (d / "trust.keys").write_text(trust.format(), encoding="utf-8")
    notes = _ledger(d / "good.ledger", "trader-b")
    other = _ledger(d / "other.ledger", "trader-e")
    (d / "bad.ledger").write_bytes(_flipped((d / "good.ledger").read_bytes(), -10))
    (d / "cp3.txt").write_text(notes[0], encoding="utf-8")
    (d / "cp4.txt").write_text(notes[1], encoding="utf-8")
    proof = consistency_proof_for(d / "good.ledger", notes[0], notes[1])
    (d / "p3-4.txt").write_text(format_consistency_proof(proof), encoding="utf-8")
    same = consistency_proof_for(d / "good.ledger", notes[1], notes[1])
    (d / "p4-4.txt").write_text(format_consistency_proof(same), encoding="utf-8")
    (d / "other-cp4.txt").write_text(other[1], encoding="utf-8")
    bundle = export_bundle(d / "good.ledger", "S1", notes[1])
    (d / "good.stproof").write_bytes(bundle)
    (d / "bad.stproof").write_bytes(_flipped(bundle, -40))
    (d / "split.ev").write_bytes(split_view_evidence(None, notes[1], None, other[1]))
    return SmallFiles(trust=d / "trust.keys", ledger=d / "good.ledger", bad_ledger=d / "bad.ledger",
                      checkpoint_3=d / "cp3.txt", checkpoint=d / "cp4.txt", proof_3_4=d / "p3-4.txt",
                      bundle=d / "good.stproof", bad_bundle=d / "bad.stproof", other_checkpoint=d / "other-cp4.txt",
                      proof_4_4=d / "p4-4.txt", split_view=d / "split.ev")


def _ledger(path: Path, buyer: str) -> tuple[str, str]:
    """Write the four records, S1 sold to ``buyer``; the checkpoints after 3 and after 4 records."""
    w = World()
    steps: list[Callable[[], Record]] = [
        lambda: w.enrol("producer-a", PARTIES["producer-a"]), lambda: w.enrol(buyer, PARTIES[buyer]),
        lambda: w.mine("S1", 900), lambda: w.make(Transferred(to=buyer, mode="title"), "producer-a", inputs=["S1"])]
    notes = []
    with Ledger.create(path, ORIGIN, {key(AUTHORITY).public_key.raw}) as ledger:
        for step in steps:
            record = step()  # each built on the state the one before left
            assert w.add(record) == []
            ledger.append(record)
            if len(w.records) >= 3:
                notes.append(ledger.checkpoint(key("operator")))
    return notes[0], notes[1]


def _flipped(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 1]) + data[at:][1:]
