"""An audit keeps its per-record facts in a temporary database (ledger.spill, issue 11's bounded memory): the
report is the in-memory replay's, however the facts are cut into written batches and however often the body
filter answers "maybe"; a duplicate is found however far apart its copies are; a false "maybe" is no finding."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from vector_ledgers import TRUST, VECTORS, insider

from ledger import Trust, check_ledger, replay_ledger
from ledger import spill as spill_module
from ledger._state_file import StateFile, state_bytes
from ledger.audit_state import Saved, begin
from ledger.policy import Policy, check_policy
from ledger.spill import BLOOM_BITS, Bloom, Spill, bloom_bits
from ledger.storage import scan

RULES = json.loads((VECTORS / "negative-ledger.json").read_text(encoding="utf-8"))
POLICIES = (Policy(deny_origin=frozenset({"RU"})), Policy(require_verified=True, kp_rules=True),
            Policy(require_known_origin=True, regrade_tolerance_mct=10))


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch written after every record, and a body filter that answers "maybe" to every body."""
    monkeypatch.setattr(spill_module, "BATCH", 1)
    monkeypatch.setattr(spill_module, "BLOOM_BITS", 8)


def _in_memory(path: Path, trust: Trust, policy: Policy | None = None) -> tuple[Any, ...]:
    replay = replay_ledger(path, trust)
    return tuple(replay.findings), tuple(check_policy(replay, policy)) if policy else ()


def _audited(path: Path, trust: Trust, policy: Policy | None = None) -> tuple[Any, ...]:
    report = check_ledger(path, trust, policy=policy)
    return report.findings, report.policy_findings


@pytest.mark.usefixtures("tiny")
def test_every_rule_breaking_vector_ledger_gets_the_in_memory_replays_findings(tmp_path: Path) -> None:
    for n, vector in enumerate(RULES):
        path = insider(tmp_path, f"rules-{n}.bin", [base64.b64decode(b) for b in vector["records_b64"]])
        findings, _ = _audited(path, TRUST)
        assert findings == _in_memory(path, TRUST)[0], vector["want_code"]
        assert vector["want_code"] in {f.code for f in findings}


@pytest.mark.usefixtures("tiny")
def test_a_policy_reads_the_spilled_items_as_the_in_memory_ones(demo: Path) -> None:
    trust = Trust.parse((demo / "trust.keys").read_text())
    for policy in POLICIES:
        assert _audited(demo / "demo.ledger", trust, policy) == _in_memory(demo / "demo.ledger", trust, policy)


def test_a_resumed_audit_reads_the_saved_spill(demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    trust, ledger = Trust.parse((demo / "trust.keys").read_text()), demo / "demo.ledger"
    monkeypatch.setattr(spill_module, "BATCH", 7)
    state = tmp_path / "s"
    check_ledger(ledger, trust, save_state=state)
    saved = Saved.read(state)
    kept = begin(ledger, saved.origin, trust.authority_keys, saved.level, frozenset(), saved=saved, keep=False)
    restored, spilled = kept.walk.state, check_ledger(ledger, trust).findings
    saved_rows = {name: saved.file.section(name)[:] for name in _sections(restored.spill)}
    assert _sections(restored.spill) == saved_rows and spilled == _in_memory(ledger, trust)[0]
    restored.close()
    saved.close()


def _sections(spill: Spill) -> dict[str, bytes]:
    return {name: b"".join(pieces) for name, pieces in spill.sections()}


def _state_file(path: Path, sections: dict[str, bytes]) -> StateFile:
    """A state file holding ``sections`` (ledger._state_file), opened."""
    path.write_bytes(b"".join(state_bytes(1, ((n, [b]) for n, b in sections.items()), lambda at: {"sections": at})))
    return StateFile(path, 1)


@pytest.mark.usefixtures("tiny")
def test_a_resumed_audit_finds_in_the_saved_rows_what_a_full_one_finds(demo: Path, tmp_path: Path) -> None:
    for n, vector in enumerate(RULES):  # statements, forks and duplicates of records audited before the state
        payloads = [base64.b64decode(b) for b in vector["records_b64"]]
        for cut in {1, len(payloads) // 2, len(payloads) - 1} - {0, len(payloads)}:
            state = tmp_path / f"{n}-{cut}.state"
            check_ledger(insider(tmp_path, f"{n}-{cut}.bin", payloads[:cut]), TRUST, save_state=state)
            full = insider(tmp_path, f"{n}.bin", payloads)
            assert check_ledger(full, TRUST, resume=state).findings == _in_memory(full, TRUST)[0], vector
    trust, ledger = Trust.parse((demo / "trust.keys").read_text()), demo / "demo.ledger"
    cut = tmp_path / "cut.ledger"
    data, frames = ledger.read_bytes(), scan(ledger).frames
    cut.write_bytes(data[:frames[len(frames) // 2].offset])
    for n, policy in enumerate(POLICIES):
        check_ledger(cut, trust, policy=policy, save_state=tmp_path / f"p{n}")
        resumed = check_ledger(ledger, trust, policy=policy, resume=tmp_path / f"p{n}")
        assert (resumed.findings, resumed.policy_findings) == _in_memory(ledger, trust, policy)


def _digest(n: int) -> bytes:
    return n.to_bytes(4, "big") * 8


def test_a_body_seen_ten_thousand_records_before_is_found_after_its_batch_was_written() -> None:
    spill = Spill()
    spill.add_body(_digest(0), 0)
    for position in range(1, 10_001):
        spill.note(_digest(position), position, 1_000 + position, b"p")
        spill.add_body(_digest(position), position)
        spill.settle()
    spill.flush()
    assert spill.first_body(_digest(0)) == 0 and spill.first_body(_digest(9_999)) == 9_999
    spill.add_body(_digest(0), 10_001)  # a duplicate keeps the first position
    assert spill.first_body(_digest(0)) == 0 and spill.first_body(_digest(10_001)) is None
    assert spill.record(_digest(5_000)) == (6_000, b"p", b"")
    spill.close()


def test_a_false_maybe_of_the_filter_is_no_duplicate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spill_module, "BLOOM_BITS", 8)
    spill = Spill()
    for position in range(64):  # every bit of the 8-bit filter set: it says "maybe" to any body
        spill.add_body(os.urandom(32), position)
    spill.flush()
    fresh = os.urandom(32)
    assert fresh in spill._seen and spill.first_body(fresh) is None  # the database settles it
    spill.close()


def test_a_record_met_twice_is_a_record_of_the_items_of_both_copies() -> None:
    spill = Spill()
    spill.note(_digest(1), 0, 5, b"a\x00b")
    spill.chain(0, "stone-1")
    spill.flush()
    spill.note(_digest(1), 3, 5, b"a\x00b")
    spill.chain(3, "stone-2")
    assert spill.record(_digest(1)) == (5, b"a\x00b", b"stone-1\x00stone-2\x00")
    assert spill.entry(3) == (5).to_bytes(8, "big") + b"a\x00b\x01stone-2\x00" and spill.entry(2) == b""
    spill.close()


def test_the_bloom_filter_has_no_false_negative() -> None:
    bloom, added = Bloom(1 << 12), [os.urandom(32) for _ in range(2_000)]
    for digest in added:
        bloom.add(digest)
    assert all(digest in bloom for digest in added) and "text" not in bloom
    with pytest.raises(ValueError):
        Bloom(1000)


def test_the_body_filter_follows_the_file_up_to_its_cap() -> None:
    assert bloom_bits(0) == bloom_bits(1 << 20) == 1 << 16  # the least: 8 KiB
    assert bloom_bits(50_000_000) == 1 << 22 and bloom_bits(500_000_000) == 1 << 25  # the bench's 10^5 and 10^6
    assert bloom_bits(1 << 40) == BLOOM_BITS and all(bloom_bits(n) & (bloom_bits(n) - 1) == 0 for n in range(0, 99))


def test_a_saved_filter_is_kept_unless_far_smaller_than_the_file_now_wants(tmp_path: Path) -> None:
    small = Spill(1 << 16)
    for position in range(100):
        small.note(_digest(position), position, 1_000 + position, b"p")
        small.add_body(_digest(position), position)
    rows = _sections(small)
    for wanted, kept in ((1 << 18, 1 << 16), (1 << 19, 1 << 19)):  # a quarter is enough; under, made again
        spill = Spill(wanted)
        spill.load(_state_file(tmp_path / str(wanted), rows))
        assert len(spill._seen.bits) * 8 == kept and all(_digest(p) in spill._seen for p in range(100))
        assert spill.first_body(_digest(7)) == 7 and spill.first_body(_digest(100)) is None
        spill.close()
    small.close()


def test_a_spill_loads_only_rows_of_its_shape(tmp_path: Path) -> None:
    spill = Spill()
    spill.note(_digest(1), 0, 5, b"a")
    spill.add_body(_digest(2), 0)
    rows = _sections(spill)
    copy = Spill()
    copy.load(_state_file(tmp_path / "good", rows))
    assert _sections(copy) == rows and copy.first_body(_digest(2)) == 0 and copy.record(_digest(1)) == (5, b"a", b"")
    for n, (table, bad) in enumerate((("records", b"short"), ("bodies", b"\x00" * 41),
                                      ("facts", b"\x00" * 8 + b"\x00\x00\x00\x05" + b"\x00\x00\x00\x01\xff"),
                                      ("facts", rows["spill.facts"] * 2),  # a first position twice
                                      ("facts", rows["spill.facts"][:-1]))):  # a row cut short
        with pytest.raises(ValueError):
            Spill().load(_state_file(tmp_path / str(n), {**rows, f"spill.{table}": bad}))


_FULL_DISK = """
import resource, sys
from ledger import Trust, check_ledger, spill, spilled_of
from ledger.errors import StorageError
spill.BATCH = spilled_of.BATCH = 1  # every record written at once,
spill._CACHE_KIB = spilled_of._CACHE_KIB = 1  # and to the file, not kept in SQLite's page cache
resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))  # files of 8 KiB at most: a full temporary folder
ledger, trust, checkpoint = sys.argv[1:4]
try:
    check_ledger(ledger, Trust.parse(open(trust).read()), checkpoint=open(checkpoint).read(), level=sys.argv[4])
except StorageError as exc:
    print(exc.code, exc)
"""


@pytest.mark.parametrize("level", ["hashes", "custody"])
def test_a_full_temporary_folder_is_a_storage_error_not_a_crash(demo: Path, level: str) -> None:
    """The audit's temporary databases (the spill from level custody; the item heads' record map at every level
    that checks a checkpoint) cannot be written: StorageError ``store.io`` naming the temporary folder, not
    :mod:`sqlite3`'s exception (a real fault: the process's file size limit, which Python turns into EFBIG)."""
    ran = subprocess.run([sys.executable, "-c", _FULL_DISK, str(demo / "demo.ledger"), str(demo / "trust.keys"),
                          str(demo / "checkpoint.txt"), level], capture_output=True, text=True, check=False)
    assert ran.returncode == 0 and not ran.stderr, ran.stderr
    assert ran.stdout.startswith("store.io the audit's temporary database:") and "TMPDIR" in ran.stdout, ran.stdout


def test_a_record_map_goes_on_from_its_saved_rows(tmp_path: Path) -> None:
    """The item heads' record -> items map (ledger.spilled_of) saved in a state and read where it is: rows set,
    replaced and deleted after the resume read as a dictionary would, and saving again merges both."""
    from ledger.hashing import Digest
    from ledger.spilled_of import SpilledOf

    rows = {Digest(_digest(i)): (f"S{i}", "P") if i % 3 else () for i in range(50)}
    first = SpilledOf()
    first.update(rows)
    again = SpilledOf()
    again.load(_state_file(tmp_path / "a", {name: b"".join(pieces) for name, pieces in first.sections()}))
    assert dict(again.items()) == rows
    again[Digest(_digest(3))] = ("NEW",)
    again[Digest(_digest(99))] = ("X",)
    del again[Digest(_digest(4))]
    want = {**rows, Digest(_digest(3)): ("NEW",), Digest(_digest(99)): ("X",)}
    del want[Digest(_digest(4))]
    assert dict(again.items()) == want and len(again) == len(want)
    third = SpilledOf()
    third.load(_state_file(tmp_path / "b", {name: b"".join(pieces) for name, pieces in again.sections()}))
    assert dict(third.items()) == want and Digest(_digest(4)) not in third
    for store in (first, again, third):
        store.close()
