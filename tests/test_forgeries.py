"""What a bundle says, a full audit would say (issue 8, attacks 1-3).

An insider operator writes validly signed records in an order of its choosing and signs a checkpoint over the
file (``checkpoint_file`` signs any well-framed file: the operator vouches for bytes, an audit for rules). Each
attack is a bundle that used to verify "valid" while the full audit of the same file named a fault in the
bundle's provenance; now the bundle fails with the audit's code, or says in its report that the check was not
possible from a bundle (``BundleReport.unchecked``) — never a silent "valid".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from ledger import Output, Record
from ledger.audit import check_ledger
from ledger.bundle import BundleReport, build_bundle, check_bundle, read_bundle
from ledger.events import Corrected, Graded, Inscribed, Merged, Mined, Set, Split, Transferred, Unset
from ledger.export import export_bundle
from ledger.findings import Finding
from ledger.reader import checkpoint_file
from ledger.storage import FileStore
from world import OPERATOR, ORIGIN, TRUST, World, codes


class Insider(World):
    """Records built and signed against a World's state in one order, written to a ledger file in another."""

    def __init__(self) -> None:
        super().__init__()
        self.enrol_all()
        self.enrol_party("producer-ru", ["producer"], "RU")

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
    b = read_bundle(data)
    return build_bundle(b.item, b.checkpoint, [(e.index, e.leaf, e.proof) for e in b.entries if e.index != position],
                        [(h.item, h.index, h.proof) for h in b.heads],
                        [(e.index, e.leaf, e.proof) for e in b.identities])


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


# --- attack 2: identity rules are ledger-wide: the checkpoint's identity tree proves them ---------------------

def _twins(tmp_path: Path) -> tuple[Insider, Path, str, int, int]:
    """S1 graded RPT-1; then S2 graded RPT-1 too, and a stone created as s1 (both refused by the rules)."""
    w = Insider()
    w.ok(w.mine("S1", 1_000))
    w.ok(w.mine("S2", 1_000))
    w.ok(w.make(Graded(lab="lab-d", report="RPT-1", mass_mct=1_000, colour="E", clarity="VS1", nature="natural"),
                "producer-a", inputs=["S1"]))
    second = w.make(Graded(lab="lab-d", report="rpt-1", mass_mct=1_000, colour="E", clarity="VS1",
                           nature="natural"), "producer-a", inputs=["S2"])
    twin = w.mine("s1", 1_000)  # an id a reader confuses with S1
    path = tmp_path / "twins.ledger"
    note = w.write(path, [*w.records, second, twin])
    return w, path, note, len(w.records), len(w.records) + 1


def test_a_second_stone_with_a_report_number_or_an_id_read_alike_fails_its_bundle(tmp_path: Path) -> None:
    _, path, note, at_second, at_twin = _twins(tmp_path)
    assert audit_codes(path, at_second) == {"identity.duplicate_report"}
    assert audit_codes(path, at_twin) == {"item.duplicate_id"}
    for item, position, code in (("S2", at_second, "identity.duplicate_report"), ("s1", at_twin, "item.duplicate_id")):
        report = bundle_of(path, item, note)
        assert at(report.findings, position) == {code}, report.findings
    first = bundle_of(path, "S1", note)  # the stone that held RPT-1 and the id first is untouched
    assert first.ok and first.unchecked == (), first.findings


def _identities(data: bytes, keep: Callable[[int], bool]) -> bytes:
    b = read_bundle(data)
    return build_bundle(b.item, b.checkpoint, [(e.index, e.leaf, e.proof) for e in b.entries],
                        [(h.item, h.index, h.proof) for h in b.heads],
                        [(e.index, e.leaf, e.proof) for e in b.identities if keep(e.index)])


def test_identity_proofs_cannot_be_left_out_or_bent(tmp_path: Path) -> None:
    path, note = _twins(tmp_path)[1:3]
    data = export_bundle(path, "S2", note)
    indices = [e.index for e in read_bundle(data).identities]
    assert len(indices) >= 3  # S2's id, RPT-1, and the neighbours around them
    for index in indices:  # dropping any leaf (the claim's own or a neighbour) leaves the claim unproven
        report = check_bundle(_identities(data, lambda i, index=index: i != index), TRUST)  # type: ignore[misc]
        assert "identity.unproven" in codes(report.findings), index
    b = read_bundle(data)
    bent = [(e.index, e.leaf[:-1] + bytes([e.leaf[-1] ^ 1]), e.proof) for e in b.identities]
    report = check_bundle(build_bundle(b.item, b.checkpoint, [(e.index, e.leaf, e.proof) for e in b.entries],
                                       [(h.item, h.index, h.proof) for h in b.heads], bent), TRUST)
    assert not report.ok and "proof.root_mismatch" in codes(report.findings)


def test_a_checkpoint_without_an_identities_line_is_refused_by_a_bundle(tmp_path: Path) -> None:
    from ledger.checkpoint import read_unverified_checkpoint, sign_checkpoint

    _, path, note, _, _ = _twins(tmp_path)
    cp = read_unverified_checkpoint(note)
    old = sign_checkpoint(replace(cp, extensions=cp.extensions[:2]), ORIGIN, OPERATOR)
    data = _identities(export_bundle(path, "S1", note), lambda _: True)
    b = read_bundle(data)
    report = check_bundle(build_bundle(b.item, old, [(e.index, e.leaf, e.proof) for e in b.entries],
                                       [(h.item, h.index, h.proof) for h in b.heads],
                                       [(e.index, e.leaf, e.proof) for e in b.identities]), TRUST)
    assert "checkpoint.identities_missing" in codes(report.findings)


# --- statements the operator moved before their subject --------------------------------------------------------

def test_a_statement_written_before_its_subject_is_in_the_bundle_and_refused_as_the_audit_refuses_it(
        tmp_path: Path) -> None:
    """The item heads count a statement about a later record (only a reordered log holds one), so the bundle
    must carry it; its copy in the right place is then a duplicate, as the audit says."""
    w = Insider()
    w.ok(w.mine("S1", 1_000))
    grading = w.ok(w.make(Graded(lab="lab-d", report="RPT-5", mass_mct=1_000, colour="E", clarity="VS1",
                                 nature="natural"), "producer-a", inputs=["S1"]))
    fix = w.make(Corrected(subject=grading.record_hash, statement="colour F"), "lab-d")
    path = tmp_path / "early.ledger"
    records = [*w.records[:-1], fix, grading, fix]  # the correction first, then its subject, then again
    note = w.write(path, records)
    early, late = len(w.records) - 1, len(w.records) + 1
    assert audit_codes(path, early) == {"record.unknown_subject"}
    assert audit_codes(path, late) == {"record.duplicate"}
    report = bundle_of(path, "S1", note)
    assert at(report.findings, early) == {"record.unknown_subject"}
    assert at(report.findings, late) == {"record.duplicate"}


def test_a_fork_of_the_holders_chain_does_not_free_its_report_number(tmp_path: Path) -> None:
    """Adversarial review: a record that forks S1's chain is not applied by the replay, so S1 keeps RPT-1 (or its
    inscription) and S2's claim is refused by the audit; the identity tree must not end S1's claim there either,
    or S2's bundle would say "valid" (a re-grade, a cut and a re-inscription of S1, each forking its chain)."""
    def graded(report: str) -> Graded:
        return Graded(lab="lab-d", report=report, mass_mct=1_000, colour="E", clarity="VS1", nature="natural")

    for fork in ("graded", "split", "inscribed"):
        w = Insider()
        mined = w.ok(w.mine("S1", 1_000))
        w.ok(w.mine("S2", 1_000))
        old = {"S1": mined.record_hash}
        if fork == "inscribed":
            w.ok(w.make(Inscribed(lab="lab-d", inscription="INS-7"), "producer-a", inputs=["S1"]))
            w.add(w.make(Inscribed(lab="lab-d", inscription="INS-8"), "producer-a", inputs=["S1"], prev=old))
            claim = w.make(Inscribed(lab="lab-d", inscription="ins-7"), "producer-a", inputs=["S2"])
            code = "identity.duplicate_inscription"
        else:
            w.ok(w.make(graded("RPT-1"), "producer-a", inputs=["S1"]))
            w.add(w.make(graded("RPT-2"), "producer-a", inputs=["S1"], prev=old) if fork == "graded" else
                  w.make(Split(loss_mct=0), "producer-a", inputs=["S1"], consumes=["S1"], prev=old,
                         outputs=[Output(id="S1-A", type="stone", mass_mct=1_000)]))
            claim = w.make(graded("RPT-1"), "producer-a", inputs=["S2"])
            code = "identity.duplicate_report"
        w.add(claim)
        path = tmp_path / f"fork-{fork}.ledger"
        note = w.write(path, w.records)
        position = len(w.records) - 1
        assert code in audit_codes(path, position), fork
        assert code in at(bundle_of(path, "S2", note).findings, position), fork


# --- second review: shape rules a partial replay can judge without the goods outside ----------------------------

def _ring_and(w: Insider, *others: str) -> None:
    """S1 and ``others`` mined and sold to the cutter; S1 set in RING."""
    for stone in ("S1", *others):
        w.ok(w.mine(stone, 1_000))
        w.ok(w.make(Transferred(to="cutter-c", mode="title"), "producer-a", inputs=[stone]))
    w.ok(w.make(Set(description="ring"), "cutter-c", inputs=["S1"],
                outputs=[Output(id="RING", type="article", mass_mct=1_000)]))


def test_an_article_merged_into_a_parcel_is_refused_by_its_bundle(tmp_path: Path) -> None:
    w = Insider()
    _ring_and(w, "Z")
    w.add(w.make(Merged(loss_mct=0), "cutter-c", inputs=["RING", "Z"], consumes=["RING", "Z"],
                 outputs=[Output(id="LOT", type="lot", mass_mct=2_000)]))
    path, position = tmp_path / "merged-ring.ledger", len(w.records) - 1
    note = w.write(path, w.records)
    assert "record.shape" in audit_codes(path, position)
    for item in ("RING", "S1"):
        assert "record.shape" in at(bundle_of(path, item, note).findings, position), item


def test_an_unset_naming_a_stone_or_article_the_set_did_not_name_is_refused(tmp_path: Path) -> None:
    for stranger in ("stone", "article"):
        w = Insider()
        _ring_and(w, "S3")
        if stranger == "article":
            w.ok(w.make(Set(description="pendant"), "cutter-c", inputs=["S3"],
                        outputs=[Output(id="RING2", type="article", mass_mct=1_000)]))
        named = ["RING", "S1", "S3" if stranger == "stone" else "RING2"]
        w.add(w.make(Unset(reason="remount"), "cutter-c", inputs=named, consumes=["RING"]))
        path, position = tmp_path / f"unset-{stranger}.ledger", len(w.records) - 1
        note = w.write(path, w.records)
        assert "record.shape" in audit_codes(path, position), stranger
        assert "record.shape" in at(bundle_of(path, "S1", note).findings, position), stranger
