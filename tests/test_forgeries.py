"""What a bundle says, a full audit would say (issue 8, attacks 1-3).

An insider operator writes validly signed records in an order of its choosing and signs a checkpoint over the
file (``checkpoint_file`` signs any well-framed file: the operator vouches for bytes, an audit for rules). Each
attack is a bundle that used to verify "valid" while the full audit of the same file named a fault in the
bundle's provenance; now the bundle fails with the audit's code, or says in its report that the check was not
possible from a bundle (``BundleReport.unchecked``) — never a silent "valid".
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ledger import AUTHORITY, Enrolled, Output, Record, Trust
from ledger._ledger import checkpoint_file
from ledger.audit import check_ledger
from ledger.bundle import BundleReport, check_bundle, read_bundle
from ledger.events import Corrected, Graded, Merged, Mined, Set, Transferred
from ledger.export import export_bundle
from ledger.findings import Finding
from ledger.keys import note_verifier_key
from ledger.store import FileStore
from world import ORIGIN, World, codes, key

OPERATOR = key("operator")
TRUST = Trust(operators=(note_verifier_key(ORIGIN, OPERATOR.public_key),),
              authorities=(note_verifier_key("authority", key(AUTHORITY).public_key),))


class Insider(World):
    """Records built and signed against a World's state in one order, written to a ledger file in another."""

    def __init__(self) -> None:
        super().__init__()
        self.keys["producer-ru"] = key("producer-ru")
        self.enrol_all()
        event = Enrolled(external_ids=(), party="producer-ru", name="producer-ru", roles=("producer",),
                         country="RU", key=self.keys["producer-ru"].public_key.raw,
                         registry_prev=self.state.registry.head)
        assert self.add(self.make(event, AUTHORITY)) == []

    def ok(self, record: Record) -> Record:
        assert self.add(record) == [], record.body.kind
        return record

    def write(self, path: Path, records: Sequence[Record]) -> str:
        """Write ``records`` as the file's whole log, and sign a checkpoint over it as the operator."""
        with FileStore.create(path, ORIGIN) as store:
            for record in records:
                store.append(record.raw)
        return checkpoint_file(path, OPERATOR)


def audit_codes(path: Path, position: int) -> set[str]:
    return {f.code for f in check_ledger(path, TRUST).findings if f.position == position}


def bundle_of(path: Path, item: str, note: str) -> BundleReport:
    return check_bundle(export_bundle(path, item, note), TRUST)


def at(findings: Sequence[Finding], position: int) -> set[str]:
    return {f.code for f in findings if f.position == position}


# --- attack 1: mass from nothing, the Russian share vanished ---------------------------------------------------

def test_a_merge_naming_a_stone_before_its_own_records_is_refused_as_the_audit_refuses_it(tmp_path: Path) -> None:
    w = Insider()
    clean = w.ok(w.make(Mined(mine="Jwaneng", country="BW"), "producer-a", place="BW",
                        outputs=[Output(id="CLEAN-1", type="stone", mass_mct=3_000)]))
    ru = w.ok(w.make(Mined(mine="Udachny", country="RU"), "producer-ru", place="RU",
                     outputs=[Output(id="RU-9", type="stone", mass_mct=2_000)]))
    merge = w.make(Merged(loss_mct=0), "producer-a", place="BW", inputs=["CLEAN-1", "RU-9"],
                   consumes=["CLEAN-1", "RU-9"], outputs=[Output(id="LOT-X", type="lot", mass_mct=1_000_000)])
    log = w.records[:-2]  # the enrolments
    path = tmp_path / "l.ledger"
    note = w.write(path, [*log, clean, merge, ru])  # the merge before RU-9 is mined
    position = len(log) + 1
    assert audit_codes(path, position) == {"custody.unknown_item"}
    report = bundle_of(path, "LOT-X", note)
    assert not report.ok and at(report.findings, position) == {"custody.unknown_item"}
    assert report.provenance is None  # no "BW 1000 ct" summary of a lot made from a 3 ct stone

    honest = tmp_path / "honest.ledger"  # the same records in the order they happened: the mass check runs
    note = w.write(honest, [*log, clean, ru, merge])
    report = bundle_of(honest, "LOT-X", note)
    assert at(report.findings, position + 1) >= {"mass.exceeds_input", "custody.not_holder"}


# --- attack 3: a lab's correction of a stone set in a ring ---------------------------------------------------

def _ring(w: Insider, *, correct_before_set: bool) -> tuple[Record, Record]:
    """S1 (mined, sold to the cutter, graded natural) set in RING-1; the lab corrects the grading before or
    after the set. Returns (grading, correction)."""
    w.ok(w.mine("S1", 1_200))
    w.ok(w.make(Transferred(to="cutter-c", mode="title"), "producer-a", inputs=["S1"]))
    grading = w.ok(w.make(Graded(lab="lab-d", report="RPT-9", mass_mct=1_200, colour="F", clarity="VS2",
                                 nature="natural"), "cutter-c", inputs=["S1"]))
    correction = w.make(Corrected(subject=grading.record_hash, statement="laboratory-grown (CVD), not natural"),
                        "lab-d")
    if correct_before_set:
        w.ok(correction)
    w.ok(w.make(Set(description="solitaire ring"), "cutter-c", inputs=["S1"],
                outputs=[Output(id="RING-1", type="article", mass_mct=1_200)]))
    if not correct_before_set:
        w.ok(correction)
    return grading, correction


def _without(data: bytes, position: int) -> bytes:
    from ledger.bundle import build_bundle

    b = read_bundle(data)
    return build_bundle(b.item, b.checkpoint, [(e.index, e.leaf, e.proof) for e in b.entries if e.index != position],
                        [(h.item, h.index, h.proof) for h in b.heads])


def test_a_correction_of_a_set_stone_is_in_the_rings_bundle_and_cannot_be_dropped(tmp_path: Path) -> None:
    for before in (False, True):
        w = Insider()
        _, correction = _ring(w, correct_before_set=before)
        path = tmp_path / f"ring-{before}.ledger"
        note = w.write(path, w.records)
        data = export_bundle(path, "RING-1", note)
        report = check_bundle(data, TRUST)
        assert report.ok, report.findings
        assert report.provenance is not None
        assert any("laboratory-grown" in claim for claim in report.provenance.attested)
        position = w.records.index(correction)
        assert position in {e.index for e in read_bundle(data).entries}
        cut = check_bundle(_without(data, position), TRUST)  # the seller drops the lab's correction
        assert "bundle.head_mismatch" in codes(cut.findings)
        assert {f.item for f in cut.findings if f.code == "bundle.head_mismatch"} == {"S1"}


# --- attack 2: identity rules a bundle cannot see --------------------------------------------------------------

def test_ledger_wide_identity_rules_are_reported_as_not_checked_by_a_bundle(tmp_path: Path) -> None:
    w = Insider()
    w.ok(w.mine("S1", 1_000))
    w.ok(w.mine("S2", 1_000))
    first = w.ok(w.make(Graded(lab="lab-d", report="RPT-1", mass_mct=1_000, colour="E", clarity="VS1",
                               nature="natural"), "producer-a", inputs=["S1"]))
    second = w.make(Graded(lab="lab-d", report="RPT-1", mass_mct=1_000, colour="E", clarity="VS1",
                           nature="natural"), "producer-a", inputs=["S2"])
    twin = w.mine("s1", 1_000)  # an id a reader confuses with S1
    path = tmp_path / "l.ledger"
    note = w.write(path, [*w.records, second, twin])
    at_second, at_twin = len(w.records), len(w.records) + 1
    assert audit_codes(path, at_second) == {"identity.duplicate_report"}
    assert audit_codes(path, at_twin) == {"item.duplicate_id"}
    for item, position, code in (("S2", at_second, "identity.duplicate_report"), ("s1", at_twin, "item.duplicate_id")):
        report = bundle_of(path, item, note)
        assert code in at(report.findings, position) | at(report.unchecked, position), (item, report.findings)
        shown = report.to_json()["unchecked"]
        assert isinstance(shown, list) and code in {f["code"] for f in shown} | set(codes(report.findings))
    assert w.records.index(first) in {f.position for f in bundle_of(path, "S1", note).unchecked}
