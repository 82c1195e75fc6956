"""A record counts once (docs/format.md §5.1 step 4, ``record.duplicate``).

``attested`` and ``corrected`` link to no earlier record, so before this rule a byte-identical copy of one was
accepted by ``Ledger.append``, by the audit and by a proof bundle holding both copies: the duplicated-leaf class
of CVE-2012-2459. A copy signed again (same body, other signature bytes) is the same claim and refused too; the
same statement made again later (another ``time_ms``) and a single statement stand.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ledger import AUTHORITY, Ledger, Record, check_ledger, checkpoint_file
from ledger.bundle import check_bundle, verify_bundle
from ledger.errors import RuleError
from ledger.events import Attested, Corrected, Graded
from ledger.export import export_bundle
from ledger.storage import FileStore
from stonetrail_cli.main import main
from world import OPERATOR, ORIGIN, TRUST, World, codes, key, key_record


def graded_world() -> World:
    """Enrolments (and an auditor), S1 mined, S1 graded by lab-d's holder; the grading is the statements' subject."""
    w = World()
    w.enrol_all()
    w.enrol_party("auditor-x", ["auditor"], "BE")
    assert w.add(w.mine("S1")) == []
    grading = w.make(Graded(lab="lab-d", report="R-1", mass_mct=1_990, colour="E", clarity="VS1", nature="natural"),
                     "producer-a", inputs=["S1"], place="BW", signers=["producer-a", "lab-d"])
    assert w.add(grading) == [], w.state.check(grading)
    return w


def statement(w: World, kind: str) -> Record:
    """An ``attested`` by the auditor or a ``corrected`` by the lab, about the grading (the last record)."""
    subject = next(r for r in reversed(w.records) if r.body.kind == "graded").record_hash
    if kind == "attested":
        return w.make(Attested(subject=subject, statement="stock held in Antwerp before 2024-03-01"), "auditor-x")
    return w.make(Corrected(subject=subject, statement="mass is 1.989 ct"), "lab-d", signers=["lab-d"])


def write(w: World, path: Path, extra: list[Record]) -> str:
    """The world's records plus ``extra`` written as an insider operator can (no rule checked), and a checkpoint
    of the file signed by the operator."""
    with FileStore.create(path, ORIGIN) as store:
        store.append_batch([r.raw for r in [*w.records, *extra]])
    return checkpoint_file(path, OPERATOR)


KINDS = ["attested", "corrected"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_copied_statement_is_refused_where_the_single_one_is_accepted(kind: str) -> None:
    w = graded_world()
    once = statement(w, kind)
    assert w.state.check(once) == []
    position = len(w.records)
    w.add(once)
    found = w.state.check(once)
    assert codes(found) == ["record.duplicate"]
    assert found[0].position == position + 1 and f"as record {position}" in found[0].reason


@pytest.mark.parametrize("kind", KINDS)
def test_ledger_append_refuses_the_copy(kind: str, tmp_path: Path) -> None:
    w = graded_world()
    once = statement(w, kind)
    with Ledger.create(tmp_path / "l.ledger", ORIGIN, {key(AUTHORITY).public_key.raw}) as ledger:
        ledger.append_batch(w.records)
        ledger.append(once)
        size = ledger.size
        with pytest.raises(RuleError) as err:
            ledger.append(once)
        assert err.value.code == "record.duplicate" and ledger.size == size
        with pytest.raises(RuleError) as err:
            ledger.append_batch([statement(w, "attested" if kind == "corrected" else "corrected"), once])
        assert err.value.code == "record.duplicate" and ledger.size == size


def test_a_statement_signed_again_with_another_key_is_the_same_claim() -> None:
    """lab-d gets a second key and signs the same correction body with it: other record bytes, same claim."""
    w = graded_world()
    second = key("lab-d second key")
    assert w.add(key_record(w, "key_added", "lab-d", second.public_key.raw)) == []
    once = statement(w, "corrected")
    again = Record.create(once.body, [("lab-d", second)])
    assert again.raw != once.raw and again.body_bytes == once.body_bytes
    assert w.add(once) == []
    assert codes(w.state.check(again)) == ["record.duplicate"]


def test_the_same_statement_made_again_later_stands() -> None:
    w = graded_world()
    first = statement(w, "corrected")
    later = statement(w, "corrected")  # the builder moves time on: another body
    assert later.body.event == first.body.event and later.body_bytes != first.body_bytes
    assert w.add(first) == [] and w.add(later) == []


@pytest.mark.parametrize("kind", KINDS)
def test_the_audit_reports_the_copy_at_its_position(kind: str, tmp_path: Path) -> None:
    w = graded_world()
    once = statement(w, kind)
    path = tmp_path / "dup.ledger"
    write(w, path, [once, once])
    report = check_ledger(path, TRUST)
    assert [(f.code, f.position) for f in report.findings] == [("record.duplicate", len(w.records) + 1)]
    (tmp_path / "trust.keys").write_text(TRUST.format(), encoding="utf-8")
    result = CliRunner().invoke(main, ["verify", str(path), "--trust", str(tmp_path / "trust.keys")])
    assert result.exit_code == 1 and "record.duplicate" in result.output, result.output
    write(w, tmp_path / "single.ledger", [once])
    assert check_ledger(tmp_path / "single.ledger", TRUST).ok


@pytest.mark.parametrize("kind", KINDS)
def test_a_bundle_holding_both_copies_is_rejected(kind: str, tmp_path: Path) -> None:
    """The copies are statements about S1's grading, so S1's bundle holds both (the heads count both)."""
    w = graded_world()
    once = statement(w, kind)
    note = write(w, tmp_path / "dup.ledger", [once, once])
    data = export_bundle(tmp_path / "dup.ledger", "S1", note)
    report = check_bundle(data, TRUST)
    assert [(f.code, f.position) for f in report.findings] == [("record.duplicate", len(w.records) + 1)]
    with pytest.raises(RuleError) as err:
        verify_bundle(data, TRUST)
    assert err.value.code == "record.duplicate"
    single = write(w, tmp_path / "single.ledger", [once])
    assert check_bundle(export_bundle(tmp_path / "single.ledger", "S1", single), TRUST).ok


def test_a_copied_registry_or_custody_record_keeps_its_code_and_is_named_a_duplicate() -> None:
    w = graded_world()
    enrolment, mined, grading = w.records[0], w.records[-2], w.records[-1]
    assert codes(w.state.check(enrolment))[-2:] == ["registry.duplicate_party", "record.duplicate"]
    assert codes(w.state.check(mined)) == ["item.duplicate_id", "record.duplicate"]
    assert codes(w.state.check(grading))[0] == "chain.fork" and codes(w.state.check(grading))[-1] == "record.duplicate"
