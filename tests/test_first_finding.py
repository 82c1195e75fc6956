"""``check_ledger(first_finding=True)``: the audit of ``stonetrail show --trust`` and ``items --trust``, which show a
valid ledger from the audit and replay an invalid one to show what is wrong. A valid ledger gets the whole audit;
an invalid one stops at its first finding, in one pass, however the work is shared."""

from __future__ import annotations

import itertools
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from ledger import Trust, check_ledger
from ledger.errors import InputError
from ledger.storage import FileStore, scan

HOW: tuple[dict[str, Any], ...] = ({}, {"jobs": 2, "chunk_records": 16}, {"chunk_records": 3})


def _report(path: Path, trust: Trust, **how: Any) -> tuple[Any, ...]:
    r = check_ledger(path, trust, **how)
    return r.record_count, r.root_hash, r.findings, r.omitted, r.items, r.verdict, r.inventory


def _trust(demo: Path) -> Trust:
    return Trust.parse((demo / "trust.keys").read_text())


def _forged_at(demo: Path, to: Path, position: int) -> Path:
    """The demo's ledger written again with the signature of record ``position`` changed (as its operator can:
    the frame is whole, the record is not)."""
    read = scan(demo / "demo.ledger")
    payloads = [frame.payload for frame in read.frames]
    forged = bytearray(payloads[position])
    forged[-40] ^= 0x01  # inside its last signature
    payloads[position] = bytes(forged)
    with FileStore.create(to, read.origin) as store:
        for payload in payloads:
            store.append(payload)
    return to


def _audit(path: Path, trust: Trust, how: dict[str, Any]) -> tuple[Any, list[int]]:
    """The report of a first-finding audit done ``how`` (a thread pool for a chunk size alone), and every count of
    records its progress told."""
    told: list[int] = []
    with ThreadPoolExecutor(2) as pool:
        extra = {"executor": pool} if "chunk_records" in how and "jobs" not in how else {}
        report = check_ledger(path, trust, first_finding=True, progress=lambda done, _: told.append(done),
                              **how, **extra)
    return report, told


def test_a_valid_ledger_gets_the_whole_audit(demo: Path) -> None:
    trust = _trust(demo)
    whole = _report(demo / "demo.ledger", trust, inventory=True)
    assert whole[-2] == "valid"
    for how in HOW:
        assert _report(demo / "demo.ledger", trust, inventory=True, first_finding=True, **how) == whole, how


def test_an_invalid_ledger_stops_at_its_first_finding(demo: Path, tmp_path: Path) -> None:
    trust = _trust(demo)
    path = _forged_at(demo, tmp_path / "forged.ledger", 40)
    whole = check_ledger(path, trust)
    assert whole.verdict == "invalid" and whole.findings[0].position == 40 and whole.record_count > 600
    for how in HOW:
        report, told = _audit(path, trust, how)
        assert report.verdict == "invalid" and report.findings[0] == whole.findings[0], how
        assert report.record_count < 100 and max(told) < 100, how  # it read no further than the chunk of record 40


def test_a_damaged_file_is_read_once(demo: Path, tmp_path: Path) -> None:
    """A file whose framing is damaged is audited again in one process, to name what follows the damage; with
    first_finding it is not: the first pass stops there."""
    data = bytearray((demo / "demo.ledger").read_bytes())
    data[len(data) // 3] ^= 0x01  # a frame's checksum fails
    path = tmp_path / "damaged.ledger"
    path.write_bytes(bytes(data))
    trust = _trust(demo)
    told: list[int] = []
    whole = check_ledger(path, trust, jobs=2, chunk_records=16, progress=lambda done, _: told.append(done))
    assert whole.verdict == "invalid" and any(a > b for a, b in itertools.pairwise(told))  # read again
    for how in HOW:
        report, told = _audit(path, trust, how)
        assert report.verdict == "invalid" and report.findings[0].code == "store.checksum_mismatch", how
        assert told == sorted(told) and max(told) < whole.record_count, how  # one pass, stopped at the damage


def test_first_finding_neither_saves_nor_resumes_a_state(demo: Path, tmp_path: Path) -> None:
    for how in ({"save_state": tmp_path / "state"}, {"resume": tmp_path / "state"}):
        with pytest.raises(InputError) as refused:
            check_ledger(demo / "demo.ledger", _trust(demo), first_finding=True, **how)
        assert refused.value.code == "input.value" and not (tmp_path / "state").exists()
