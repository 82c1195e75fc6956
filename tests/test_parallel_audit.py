"""The audit gives the same report whoever does the work (issue 11): one process, worker threads or processes, any
chunk size, on valid ledgers, on every rule-breaking and parse-breaking vector ledger, on forged signatures and on
damaged files; and each level checks what it says."""

from __future__ import annotations

import base64
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from vector_ledgers import TRUST, VECTORS, insider

from ledger import Trust, check_ledger
from ledger.errors import InputError
from ledger.storage import scan

RULES = json.loads((VECTORS / "negative-ledger.json").read_text(encoding="utf-8"))
PARSE = json.loads((VECTORS / "negative.json").read_text(encoding="utf-8"))


def _report(path: Path, trust: Trust, **how: Any) -> tuple[Any, ...]:
    r = check_ledger(path, trust, **how)
    return (r.record_count, r.root_hash, r.findings, r.checkpoint, r.items, r.stones, r.parties, r.policy_findings,
            r.verdict)


def _all_ways(path: Path, trust: Trust, **how: Any) -> tuple[Any, ...]:
    """The one-process report, after asserting that every other way of doing the work gives it too."""
    want = _report(path, trust, **how)
    with ThreadPoolExecutor(2) as pool:
        for chunk in (1, 3, 64):
            assert _report(path, trust, executor=pool, chunk_records=chunk, **how) == want, chunk
    return want


def test_the_demo_audits_the_same_with_workers_processes_and_checkpoints(demo: Path) -> None:
    trust = Trust.parse((demo / "trust.keys").read_text())
    note = (demo / "checkpoint.txt").read_text()
    want = _all_ways(demo / "demo.ledger", trust, checkpoint=note)
    assert want[-1] == "valid" and want[3] is not None
    assert _report(demo / "demo.ledger", trust, checkpoint=note, jobs=2, chunk_records=50) == want


def test_every_rule_breaking_vector_ledger_audits_the_same(tmp_path: Path) -> None:
    for n, vector in enumerate(RULES):
        path = insider(tmp_path, f"rules-{n}.bin", [base64.b64decode(b) for b in vector["records_b64"]])
        report = _all_ways(path, TRUST)
        assert vector["want_code"] in {f.code for f in report[2]}, vector


def test_every_unreadable_record_audits_the_same(tmp_path: Path) -> None:
    for n, vector in enumerate(PARSE[:40]):
        path = insider(tmp_path, f"parse-{n}.bin", [base64.b64decode(vector["record_b64"])])
        assert vector["want_code"] in {f.code for f in _all_ways(path, TRUST)[2]}, vector


def test_a_forged_signature_and_damaged_frames_audit_the_same(tmp_path: Path) -> None:
    last = scan(VECTORS / "ledger.bin").frames[-1].payload
    forged = bytearray(last)
    forged[-40] ^= 0x01  # inside its signature
    report = _all_ways(insider(tmp_path, "forged.bin", [bytes(forged)]), TRUST)
    assert any(f.code.startswith("sig.") for f in report[2])
    clean = (VECTORS / "ledger.bin").read_bytes()
    damaged = bytearray(clean)
    damaged[len(clean) // 2] ^= 0x01  # a frame's checksum fails
    for n, data in enumerate((bytes(damaged), clean[: len(clean) - 7])):  # and a torn tail
        path = tmp_path / f"damaged-{n}.bin"
        path.write_bytes(data)
        assert _all_ways(path, TRUST)[-1] == "invalid"


def test_each_level_checks_what_it_says(tmp_path: Path) -> None:
    vector = next(v for v in RULES if v["want_code"].startswith("custody."))
    path = insider(tmp_path, "custody.bin", [base64.b64decode(b) for b in vector["records_b64"]])
    verdicts = {level: _all_ways(path, TRUST, level=level)[-1] for level in ("structure", "signatures", "custody")}
    assert verdicts == {"structure": "valid", "signatures": "valid", "custody": "invalid"}
    with pytest.raises(InputError) as refused:
        check_ledger(path, TRUST, level="everything")
    assert refused.value.code == "input.value"


def test_a_policy_is_checked_at_level_policy_only(demo: Path) -> None:
    """A policy below level policy would be reported met without being checked: refused (a new user's trial)."""
    from ledger.policy import Policy
    trust = Trust.parse((demo / "trust.keys").read_text())
    policy = Policy(deny_origin=frozenset({"RU"}))
    assert check_ledger(demo / "demo.ledger", trust, policy=policy).verdict == "valid_not_compliant"
    for level in ("structure", "custody"):
        with pytest.raises(InputError) as refused:
            check_ledger(demo / "demo.ledger", trust, policy=policy, level=level)
        assert refused.value.code == "input.value"
    with pytest.raises(InputError):
        check_ledger(demo / "demo.ledger", trust, level="policy")
