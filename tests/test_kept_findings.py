"""An audit keeps the first findings in log order and counts the rest by code (ledger.kept_findings), so that a file
crafted to fail on every record cannot exhaust the auditor's memory; what it keeps and counts is the same however
the work is done (one process, workers, chunk sizes, a resumed state)."""

from __future__ import annotations

import functools
import json
import shutil
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from vector_ledgers import TRUST, VECTORS, insider

from ledger import AuditReport, check_ledger, replay_ledger
from ledger.errors import InputError
from ledger.findings import Finding
from ledger.kept_findings import KeptFindings, order
from ledger.storage import scan
from ledger.storage.frames import pack_batch
from stonetrail_cli.main import main

NOT_A_RECORD = b"\x00"  # a frame's payload that is not a record: record.tag


def _unreadable(tmp_path: Path, name: str, count: int) -> Path:
    """The vectors' ledger with ``count`` frames appended, each holding a byte that is not a record."""
    return insider(tmp_path, name, [NOT_A_RECORD] * count)


def _spans(tmp_path: Path, count: int) -> Path:
    """The vectors' ledger with ``count`` damaged spans appended: two stray bytes after each of ``count`` frames
    that are not records (two findings a span)."""
    path = tmp_path / "spans.bin"
    shutil.copy(VECTORS / "ledger.bin", path)
    frame, _ = pack_batch([NOT_A_RECORD])
    with path.open("ab") as f:
        f.write((frame + b"XX") * count)
    return path


def _as_expected(report: AuditReport, full: AuditReport, limit: int) -> None:
    """``report``, audited keeping ``limit`` findings, holds the first ``limit`` of ``full`` (every finding kept),
    and counts the others by code."""
    assert report.findings == full.findings[:limit]
    assert dict(report.omitted) == dict(sorted(Counter(f.code for f in full.findings[limit:]).items()))
    assert report.finding_count == len(full.findings)
    assert (report.verdict, report.record_count, report.root_hash) == (full.verdict, full.record_count,
                                                                       full.root_hash)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.integers(0, 40)), st.sampled_from("abc")), max_size=120),
       st.integers(1, 30), st.lists(st.integers(1, 25), min_size=1, max_size=8))
def test_the_findings_kept_are_the_first_in_report_order(found: list[tuple[int | None, str]], limit: int,
                                                          batches: list[int]) -> None:
    findings = [Finding(code=code, position=p, item=None, reason=str(n)) for n, (p, code) in enumerate(found)]
    want = sorted(findings, key=order)  # the report's order: stable, so equal positions stay as found
    kept, rest = KeptFindings(limit), iter(findings)
    for size in batches * (len(findings) // sum(batches) + 1):
        kept.add([f for _, f in zip(range(size), rest, strict=False)])
    assert kept.kept == want[:limit]
    assert kept.omitted == dict(sorted(Counter(f.code for f in want[limit:]).items()))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.sampled_from("abc"), max_size=60), st.lists(st.sampled_from("abc"), max_size=60),
       st.integers(1, 20), st.integers(0, 10))
def test_findings_kept_go_on_from_a_saved_walk_as_a_whole_one(before: list[str], after: list[str], limit: int,
                                                              fewer: int) -> None:
    """A resumed audit (findings kept up to record A, then the records after it) keeps what one walk keeps, with the
    same limit or a smaller one."""
    first = [Finding(code=c, position=n, item=None, reason="") for n, c in enumerate(before)]
    then = [Finding(code=c, position=len(before) + n, item=None, reason="") for n, c in enumerate(after)]
    saved = KeptFindings(limit, first)
    smaller = max(1, limit - fewer)
    resumed = KeptFindings(smaller, saved.kept, saved.omitted) if saved.kept else KeptFindings(smaller)
    resumed.add(then)
    whole = KeptFindings(smaller, first + then)
    assert (resumed.kept, resumed.omitted) == (whole.kept, whole.omitted)


def test_a_file_of_unreadable_records_keeps_the_first_findings_every_way(tmp_path: Path) -> None:
    path = _unreadable(tmp_path, "unreadable.bin", 300)
    full = check_ledger(path, TRUST, max_findings=None)
    assert len(full.findings) == 300 and not full.omitted
    with ThreadPoolExecutor(2) as pool:
        for limit in (1, 7, 120):
            _as_expected(check_ledger(path, TRUST, max_findings=limit), full, limit)
            for chunk in (1, 3, 64):
                _as_expected(check_ledger(path, TRUST, max_findings=limit, executor=pool, chunk_records=chunk),
                             full, limit)
    structure = check_ledger(path, TRUST, level="structure", max_findings=None)
    _as_expected(check_ledger(path, TRUST, level="structure", max_findings=9, jobs=2, chunk_records=5), structure, 9)


def test_a_file_of_damaged_spans_keeps_the_first_findings_and_counts_the_spans(tmp_path: Path) -> None:
    path = _spans(tmp_path, 150)
    full = check_ledger(path, TRUST, max_findings=None)
    assert Counter(f.code for f in full.findings) == {"record.tag": 150, "store.bad_magic": 150}
    for limit in (1, 40, 299):  # the survey keeps as many spans as the audit keeps findings, and the latest
        _as_expected(check_ledger(path, TRUST, max_findings=limit), full, limit)
        _as_expected(check_ledger(path, TRUST, max_findings=limit, jobs=2), full, limit)


def test_the_checkpoints_findings_come_last_within_the_limit(tmp_path: Path) -> None:
    """A checkpoint's findings follow the pass's in the report: kept while there is room, counted past it."""
    clean = (VECTORS / "ledger.bin").read_bytes()
    cut = scan(VECTORS / "ledger.bin").frames[4].end
    frame, _ = pack_batch([NOT_A_RECORD])
    path = tmp_path / "damaged.bin"  # a damaged span below the checkpoint's size: it cannot be checked
    path.write_bytes(clean[:cut] + b"XX" + clean[cut:] + frame * 20)
    note = (VECTORS / "checkpoint.txt").read_text(encoding="utf-8")
    full = check_ledger(path, TRUST, checkpoint=note, max_findings=None)
    assert full.findings[-1].code == "checkpoint.unchecked" and len(full.findings) == 22
    for limit in (1, 21, 22):
        _as_expected(check_ledger(path, TRUST, checkpoint=note, max_findings=limit), full, limit)


def test_a_display_replay_keeps_what_an_audit_keeps_and_counts_every_damaged_part(tmp_path: Path) -> None:
    """show and items replay in memory: they keep the first findings as an audit does, and count every part of the
    file that cannot be read (each frame that is not a record, each damaged span), kept or not."""
    path = _spans(tmp_path, 150)
    full = replay_ledger(path, TRUST, max_findings=None)
    assert full.findings == check_ledger(path, TRUST, max_findings=None).findings and full.unreadable == 300
    for limit in (1, 40, 299):
        replay, report = replay_ledger(path, TRUST, max_findings=limit), check_ledger(path, TRUST, max_findings=limit)
        assert (replay.findings, replay.omitted) == (full.findings[:limit], report.omitted)
        assert (replay.finding_count, replay.unreadable, len(replay.records)) == (300, 300, len(full.records))
    with pytest.raises(InputError) as exc:
        replay_ledger(path, TRUST, max_findings=0)
    assert exc.value.code == "input.value"


def test_items_and_show_list_the_first_findings_and_count_them_all(tmp_path: Path) -> None:
    """A file crafted with 10,050 damaged spans (20,100 findings): items and show list the first 10,000 and count
    every one, in the text and in --json, and still judge it invalid (exit 1)."""
    path, trust = _spans(tmp_path, 10_050), str(VECTORS / "trust.keys")
    runner = CliRunner()
    listed = runner.invoke(main, ["items", str(path), "--trust", trust, "--json"])
    data = json.loads(listed.stdout)
    assert listed.exit_code == 1 and data["verdict"] == "invalid"
    assert (len(data["findings"]), data["finding_count"], len(data["damage"]), data["damaged_parts"]) == (
        10_000, 20_100, 10_000, 20_100)
    text = runner.invoke(main, ["items", str(path), "--trust", trust])
    assert text.exit_code == 1 and "INVALID: 20,100 parts of the file cannot be read (first: record" in text.stdout
    assert "(20,099 more damaged parts)" in text.stderr
    item = next(iter(replay_ledger(VECTORS / "ledger.bin", TRUST).state.items))
    shown = runner.invoke(main, ["show", str(path), item, "--trust", trust, "--json"])
    data = json.loads(shown.stdout)
    assert shown.exit_code == 1 and data["verdict"] == "invalid" and data["damaged_parts"] == 20_100
    assert len(data["findings"]) + data["findings_elsewhere"] == 20_100 and len(data["damage"]) == 10_000


def test_a_resumed_audit_keeps_what_a_whole_one_keeps(tmp_path: Path) -> None:
    first = _unreadable(tmp_path, "first.bin", 100)
    whole = tmp_path / "whole.bin"
    shutil.copy(first, whole)
    with whole.open("ab") as f:  # the same frames appended again: the first file is a prefix of this one
        f.write(first.read_bytes()[(VECTORS / "ledger.bin").stat().st_size:])
    state = tmp_path / "a.state"
    saved = check_ledger(first, TRUST, max_findings=20, save_state=state)
    assert saved.state_unsaved is None and dict(saved.omitted) == {"record.tag": 80}
    full = check_ledger(whole, TRUST, max_findings=None)
    for limit in (20, 5):
        _as_expected(check_ledger(whole, TRUST, max_findings=limit, resume=state), full, limit)
    for limit in (21, None):  # it kept 20 and counted the rest: it cannot give more
        with pytest.raises(InputError) as refused:
            check_ledger(whole, TRUST, max_findings=limit, resume=state)
        assert refused.value.code == "audit.state_mismatch" and "kept the first 20 findings" in str(refused.value)


def _verify(*args: Any) -> Any:
    return CliRunner().invoke(main, ["verify", *(str(a) for a in args), "--trust", str(VECTORS / "trust.keys")])


def test_verify_says_how_many_findings_it_kept_and_counted(tmp_path: Path) -> None:
    path = _unreadable(tmp_path, "unreadable.bin", 30)
    text = _verify(path, "--max-findings", "4")
    assert text.exit_code == 1
    assert "integrity: INVALID (30 findings)" in text.output and "verdict:   INVALID (30 findings)" in text.output
    assert "  ... and 26 counted but not kept (record.tag 26): --max-findings 0 keeps every one" in text.output
    data = json.loads(_verify(path, "--max-findings", "4", "--json").output)
    assert (len(data["findings"]), data["finding_count"], data["findings_omitted"]) == (4, 30, {"record.tag": 26})
    assert data["max_findings"] == 4
    data = json.loads(_verify(path, "--max-findings", "0", "--json").output)
    assert (len(data["findings"]), data["finding_count"], data["findings_omitted"]) == (30, 30, {})
    assert data["max_findings"] is None
    state = tmp_path / "a.state"  # resumed from a state that counted some: only an audit from the start lists them
    assert _verify(path, "--max-findings", "4", "--save-state", state).exit_code == 1
    resumed = _verify(path, "--max-findings", "4", "--resume", state)
    assert "(record.tag 26): an audit from the start with --max-findings 0 keeps every one" in resumed.output
    assert "verdict:   INVALID (30 findings)" in resumed.output
    valid = json.loads(_verify(VECTORS / "ledger.bin", "--json").output)
    assert (valid["verdict"], valid["finding_count"], valid["findings_omitted"]) == ("valid", 0, {})
    assert valid["policy"] is None and valid["policy_valid"] is None  # no policy checked: neither met nor failed


def test_max_findings_must_be_a_whole_number() -> None:
    for bad in (0, -1, 1.5, "3", True):
        with pytest.raises(InputError) as refused:
            check_ledger(VECTORS / "ledger.bin", TRUST, max_findings=bad)  # type: ignore[arg-type]
        assert refused.value.code == "input.value"
    assert "Invalid value for '--max-findings'" in _verify(VECTORS / "ledger.bin", "--max-findings", "-1").output


def test_the_parts_that_cannot_be_read_are_kept_apart_from_the_other_findings(
        demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new-user review: a replay without trust has findings on every record, so on a large file the first 10,000
    filled up before a damaged record and show and items, reading the whole log, named no damage (exit 0). The
    parts that cannot be read are kept apart; here with 5 findings kept and a record damaged near the end."""
    path = tmp_path / "late.ledger"
    shutil.copy(demo / "demo.ledger", path)
    data = bytearray(path.read_bytes())
    data[-300] ^= 1  # inside the last records: its frame no longer checks out
    path.write_bytes(bytes(data))
    replay = replay_ledger(path, None, max_findings=5)
    assert replay.finding_count > 1000 and all(f.position is not None and f.position < 5 for f in replay.findings)
    assert [f.code for f in replay.damage] == ["store.checksum_mismatch"] and replay.unreadable == 1
    monkeypatch.setattr("ledger.replay_ledger", functools.partial(replay_ledger, max_findings=5))
    shown = CliRunner().invoke(main, ["show", str(path), "R-00001-A", "--json"])
    data_out = json.loads(shown.stdout)
    assert shown.exit_code == 1 and data_out["verdict"] == "invalid" and data_out["damaged_parts"] == 1
    assert data_out["findings"] == [] and data_out["findings_elsewhere"] == 0  # unverified: no finding reported
    assert "is damaged at record" in shown.stderr
    listed = CliRunner().invoke(main, ["items", str(path)])
    assert listed.exit_code == 1 and "INVALID: 1 part of the file cannot be read" in listed.stdout
