"""An incremental audit (issue 11 item 4) gives the report a full audit gives: an auditor audits a ledger up to
A, keeps the state, and later reads only the records after A (with checkpoints at A and beyond, any worker count
and chunk size, on valid and rule-breaking ledgers); a state that is not this ledger's, this trust's, this
level's or whole is refused with its code, and so is a checkpoint below A."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vector_ledgers import TRUST, VECTORS, insider

from ledger import Trust, check_ledger
from ledger._codec import pack_local, unpack_local
from ledger.audit_state import VERSION
from ledger.errors import InputError, StorageError, VerificationError
from ledger.keyfile import load_private_key
from ledger.signing import checkpoint_file
from ledger.storage import scan
from ledger.storage.framing import FRAME_MAGIC
from stonetrail_cli.main import main

RULES = json.loads((VECTORS / "negative-ledger.json").read_text(encoding="utf-8"))


def _report(path: Path, trust: Trust, **how: Any) -> tuple[Any, ...]:
    r = check_ledger(path, trust, **how)
    return (r.record_count, r.root_hash, r.findings, r.checkpoint, r.items, r.stones, r.parties, r.verdict)


def _cut(full: Path, records: int, out: Path) -> int:
    """A copy of ``full`` holding its first ``records`` records, or fewer: cut after the last frame of a whole
    batch at or below (a batch cut short is a torn tail). Returns the records it holds."""
    frames, data = scan(full).frames, full.read_bytes()
    while data[frames[records - 1].offset:][:4] != FRAME_MAGIC:  # a frame of a batch that goes on
        records -= 1
    out.write_bytes(data[: frames[records - 1].end])
    assert not scan(out).problems
    return records


def _resumed(prefix: Path, full: Path, trust: Trust, state: Path, **how: Any) -> tuple[Any, ...]:
    """Audit ``prefix`` saving ``state``, then ``full`` from it."""
    state.unlink(missing_ok=True)
    check_ledger(prefix, trust, save_state=state, **{k: v for k, v in how.items() if k != "checkpoints"})
    return _report(full, trust, resume=state, **how)


def _signed(demo: Path, path: Path, trust: Trust) -> str:
    return checkpoint_file(path, load_private_key(demo / "keys" / "operator.pem"), trust=trust)


def test_a_resumed_audit_of_the_demo_is_the_full_audit_with_checkpoints_at_a_and_beyond(demo: Path,
                                                                                         tmp_path: Path) -> None:
    trust, full = Trust.parse((demo / "trust.keys").read_text()), demo / "demo.ledger"
    size = _cut(full, 500, tmp_path / "a.ledger")
    notes = [_signed(demo, tmp_path / "a.ledger", trust), (demo / "checkpoint.txt").read_text()]
    want = _report(full, trust, checkpoints=notes)
    assert want[-1] == "valid" and want[3] is not None
    state = tmp_path / "a.state"
    assert _resumed(tmp_path / "a.ledger", full, trust, state, checkpoints=notes) == want
    with ThreadPoolExecutor(2) as pool:
        for chunk in (1, 3, 64):
            assert _report(full, trust, resume=state, checkpoints=notes, executor=pool, chunk_records=chunk) == want
    assert _report(full, trust, resume=state, checkpoints=notes, jobs=2, chunk_records=50) == want
    assert check_ledger(full, trust, resume=state).record_count == want[0] > size


def test_a_state_saved_by_a_resumed_audit_resumes_again(demo: Path, tmp_path: Path) -> None:
    trust, full = Trust.parse((demo / "trust.keys").read_text()), demo / "demo.ledger"
    _cut(full, 300, tmp_path / "a.ledger")
    _cut(full, 600, tmp_path / "b.ledger")
    check_ledger(tmp_path / "a.ledger", trust, save_state=tmp_path / "a.state")
    check_ledger(tmp_path / "b.ledger", trust, resume=tmp_path / "a.state", save_state=tmp_path / "b.state")
    assert _report(full, trust, resume=tmp_path / "b.state") == _report(full, trust)
    assert _report(full, trust, resume=tmp_path / "b.state", level="custody") == _report(full, trust)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cuts=st.lists(st.integers(min_value=1, max_value=704), min_size=1, max_size=2, unique=True),
       level=st.sampled_from(["structure", "signatures", "custody"]))
def test_any_cuts_at_any_level_resume_to_the_full_audit(demo: Path, tmp_path: Path, cuts: list[int],
                                                        level: str) -> None:
    """Audit a first cut, save; audit a second (longer) one from that state, save again; resume the whole file."""
    trust, full = Trust.parse((demo / "trust.keys").read_text()), demo / "demo.ledger"
    state = None
    for n, records in enumerate(sorted(cuts)):
        _cut(full, records, tmp_path / "cut.ledger")
        (tmp_path / f"{n}.state").unlink(missing_ok=True)
        check_ledger(tmp_path / "cut.ledger", trust, level=level, resume=state, save_state=tmp_path / f"{n}.state")
        state = tmp_path / f"{n}.state"
    assert _report(full, trust, level=level, resume=state) == _report(full, trust, level=level)


def test_every_rule_breaking_vector_ledger_resumes_to_its_full_audit(tmp_path: Path) -> None:
    for n, vector in enumerate(RULES):
        payloads = [base64.b64decode(b) for b in vector["records_b64"]]
        full = insider(tmp_path, f"rules-{n}.bin", payloads)
        want = _report(full, TRUST)
        assert vector["want_code"] in {f.code for f in want[2]}, vector
        for cut in {0, len(payloads) - 1, len(payloads)}:  # before the faults, among them, after them
            prefix = insider(tmp_path, f"rules-{n}-{cut}.bin", payloads[:cut])
            assert _resumed(prefix, full, TRUST, tmp_path / "s") == want, (vector["desc"], cut)
            with ThreadPoolExecutor(2) as pool:
                assert _report(full, TRUST, resume=tmp_path / "s", executor=pool, chunk_records=2) == want


def _refusal(path: Path, trust: Trust, **how: Any) -> InputError:
    with pytest.raises(InputError) as refused:
        check_ledger(path, trust, **how)
    return refused.value


def test_a_state_for_another_ledger_or_trust_or_level_is_refused(demo: Path, tmp_path: Path) -> None:
    trust, full = Trust.parse((demo / "trust.keys").read_text()), demo / "demo.ledger"
    check_ledger(_cut(full, 400, tmp_path / "a.ledger") and tmp_path / "a.ledger", trust,
                 save_state=tmp_path / "demo.state")
    assert _refusal(VECTORS / "ledger.bin", TRUST, resume=tmp_path / "demo.state").code == "audit.state_mismatch"
    other_trust = _refusal(full, TRUST, resume=tmp_path / "demo.state")
    assert other_trust.code == "audit.state_mismatch" and "authority keys" in str(other_trust)
    assert _refusal(full, trust, resume=tmp_path / "demo.state", level="hashes").code == "audit.state_mismatch"
    payloads = [base64.b64decode(b) for b in RULES[0]["records_b64"]]
    check_ledger(insider(tmp_path, "one.bin", payloads[:1]), TRUST, save_state=tmp_path / "one.state")
    rewritten = insider(tmp_path, "two.bin", [b"\x00"])  # same origin, another record in its place
    shorter = insider(tmp_path, "none.bin", [])  # the audited record is not there at all (rolled back)
    for changed in (rewritten, shorter):  # an integrity verdict on the ledger, not a usage error
        with pytest.raises(VerificationError) as refused:
            check_ledger(changed, TRUST, resume=tmp_path / "one.state")
        assert refused.value.code == "audit.log_rewritten"
        told = CliRunner().invoke(main, ["verify", str(changed), "--trust", str(VECTORS / "trust.keys"), "--json",
                                         "--resume", str(tmp_path / "one.state")])
        assert told.exit_code == 1, told.output  # a script reading the verdict finds it: invalid
        assert json.loads(told.output)["verdict"] == "invalid"
        assert json.loads(told.output)["error"]["code"] == "audit.log_rewritten"


def test_a_damaged_or_foreign_state_file_is_refused(demo: Path, tmp_path: Path) -> None:
    trust, full = Trust.parse((demo / "trust.keys").read_text()), demo / "demo.ledger"
    check_ledger(full, trust, save_state=tmp_path / "s")
    good = (tmp_path / "s").read_bytes()
    for n, bad in enumerate((good[:-1], good[:100] + bytes([good[100] ^ 1]) + good[101:], b"", b"not a state\n",
                             good[:60])):
        (tmp_path / f"bad-{n}").write_bytes(bad)
        assert _refusal(full, trust, resume=tmp_path / f"bad-{n}").code == "audit.state_damaged", n
    line = f"stonetrail-audit-state {VERSION}\n".encode()
    (tmp_path / "other").write_bytes(good.replace(line, f"stonetrail-audit-state {VERSION + 1}\n".encode(), 1))
    assert _refusal(full, trust, resume=tmp_path / "other").code == "audit.state_mismatch"
    length = int.from_bytes(good[-40:-32], "big")  # the head, its length, the digest (docs/format.md §8.3)
    head = unpack_local(good[-40 - length:-40])
    head["schema"] += 1  # the index's tables encoded another way: its rows would decode wrong
    packed = pack_local(head)
    rest = good[:-40 - length] + packed + len(packed).to_bytes(8, "big")
    (tmp_path / "schema").write_bytes(rest + hashlib.sha256(rest).digest())
    assert _refusal(full, trust, resume=tmp_path / "schema").code == "audit.state_mismatch"


def test_a_checkpoint_below_the_state_is_refused_and_a_damaged_ledger_gets_no_state(demo: Path,
                                                                                   tmp_path: Path) -> None:
    trust, full = Trust.parse((demo / "trust.keys").read_text()), demo / "demo.ledger"
    _cut(full, 200, tmp_path / "early.ledger")
    early = _signed(demo, tmp_path / "early.ledger", trust)
    _cut(full, 400, tmp_path / "a.ledger")
    check_ledger(tmp_path / "a.ledger", trust, save_state=tmp_path / "a.state")
    assert _refusal(full, trust, resume=tmp_path / "a.state", checkpoint=early).code \
        == "audit.checkpoint_before_state"
    data = full.read_bytes()
    (tmp_path / "torn.ledger").write_bytes(data[:-7])
    unsafe = check_ledger(tmp_path / "torn.ledger", trust, save_state=tmp_path / "torn.state")
    assert unsafe.verdict == "invalid" and unsafe.findings[-1].code == "store.torn_tail"  # the verdict stands
    assert unsafe.state_unsaved and "audit.state_unsafe" in unsafe.state_unsaved \
        and "stonetrail repair" in unsafe.state_unsaved  # tells what to do
    assert not (tmp_path / "torn.state").exists()
    told = CliRunner().invoke(main, ["verify", str(tmp_path / "torn.ledger"), "--trust", str(demo / "trust.keys"),
                                     "--save-state", str(tmp_path / "torn.state"), "--json"])
    assert told.exit_code == 1, told.output  # an invalid verdict, not a usage error
    report = json.loads(told.output)
    assert report["verdict"] == "invalid" and report["saved_state"] is None and report["state_not_saved"]
    with pytest.raises(StorageError) as exists:
        check_ledger(full, trust, save_state=tmp_path / "a.state")
    assert exists.value.code == "store.exists"


def test_verify_saves_and_resumes_from_the_command_line(demo: Path, tmp_path: Path) -> None:
    full, keys = str(demo / "demo.ledger"), str(demo / "trust.keys")
    cut = _cut(demo / "demo.ledger", 500, tmp_path / "a.ledger")
    runner = CliRunner()
    saved = runner.invoke(main, ["verify", str(tmp_path / "a.ledger"), "--trust", keys, "--jobs", "1",
                                 "--save-state", str(tmp_path / "a.state")])
    assert saved.exit_code == 0 and f"state:     saved to {tmp_path / 'a.state'}" in saved.output, saved.output
    outputs = [runner.invoke(main, ["verify", full, "--trust", keys, "--jobs", "1", "--json", *extra])
               for extra in ([], ["--resume", str(tmp_path / "a.state")])]
    reports = [json.loads(out.output) for out in outputs]
    assert [r.pop("resumed_from") for r in reports] == [None, str(tmp_path / "a.state")]
    assert [r.pop("resumed_at") for r in reports] == [None, cut]  # the records the state covered
    for report in reports:
        del report["seconds"]
    assert reports[0] == reports[1] and reports[0]["verdict"] == "valid"
    text = runner.invoke(main, ["verify", full, "--trust", keys, "--resume", str(tmp_path / "a.state")]).output
    assert f"audited before, {reports[0]['records'] - cut} read now" in text, text
    refused = runner.invoke(main, ["verify", full, "--trust", keys, "--resume", str(tmp_path / "a.state"),
                                   "--level", "structure", "--json"])
    assert refused.exit_code == 2, refused.output
    assert json.loads(refused.output)["error"] | {"message": ""} == {
        "code": "audit.state_mismatch", "message": "", "file": str(tmp_path / "a.state")}  # names the state file
    exists = runner.invoke(main, ["verify", full, "--trust", keys, "--save-state", str(tmp_path / "a.state")])
    assert exists.exit_code == 3 and "store.exists" in exists.output  # refused before the audit, kept as it was


def test_a_saved_state_is_the_same_bytes_in_every_run(demo: Path, tmp_path: Path) -> None:
    """The state is a function of the ledger and the audit: two processes whose string hashes differ
    (PYTHONHASHSEED: the order of a set's items) save the same bytes."""
    states = []
    for seed in ("1", "2"):
        state = tmp_path / f"{seed}.state"
        run = subprocess.run([sys.executable, "-c", "from stonetrail_cli.main import main; main()", "verify",
                              str(demo / "demo.ledger"), "--trust", str(demo / "trust.keys"), "--jobs", "1",
                              "--save-state", str(state)],
                             env={**os.environ, "PYTHONHASHSEED": seed}, capture_output=True, text=True, check=False)
        assert run.returncode == 0, run.stderr
        states.append(state.read_bytes())
    assert states[0] == states[1]


def test_a_state_that_is_not_a_regular_file_is_refused_at_once(demo: Path, tmp_path: Path) -> None:
    """--resume of a FIFO blocked for ever in open(2) (adversarial review): it is refused, as a directory is."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for state in (fifo, tmp_path):
        run = subprocess.run([sys.executable, "-c", "from stonetrail_cli.main import main; main()", "verify",
                              str(demo / "demo.ledger"), "--trust", str(demo / "trust.keys"), "--resume", str(state)],
                             capture_output=True, text=True, timeout=60, check=False)
        assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
