"""``items --trust`` lists a valid ledger's items from a streaming audit (``check_ledger(inventory=True)``: memory
that follows the items, every core), the same lines a replay gives; a ledger with a finding is replayed, so that
the parts of the file that cannot be read are named."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from ledger import Trust, check_ledger, replay_ledger
from ledger.errors import InputError
from ledger.inventory import item_lines
from stonetrail_cli.main import main


def _files(demo: Path) -> tuple[Path, Trust]:
    return demo / "demo.ledger", Trust.parse((demo / "trust.keys").read_text(encoding="utf-8"))


def test_an_audit_lists_the_items_a_replay_lists(demo: Path, tmp_path: Path) -> None:
    ledger, trust = _files(demo)
    want = item_lines(replay_ledger(ledger, trust))
    assert len(want) == 432 and any(line.state != "live" for line in want)  # splits, merges, articles
    for how in ({}, {"jobs": 2, "chunk_records": 7}):
        report = check_ledger(ledger, trust, inventory=True, **how)  # type: ignore[arg-type]
        assert report.inventory is not None and report.inventory.lines() == want and report.ok, how
    saved = check_ledger(ledger, trust, inventory=True, save_state=tmp_path / "a.state")  # a walk kept to save
    assert saved.inventory is not None and saved.inventory.lines() == want
    assert check_ledger(ledger, trust).inventory is None  # only when asked


@pytest.mark.parametrize("how", [{"level": "signatures"}, {"resume": "a.state"}], ids=["below custody", "resumed"])
def test_an_audit_that_cannot_list_the_items_refuses_to(demo: Path, tmp_path: Path, how: dict[str, str]) -> None:
    ledger, trust = _files(demo)
    if "resume" in how:
        check_ledger(ledger, trust, save_state=tmp_path / "a.state")
        how = {"resume": str(tmp_path / "a.state")}
    with pytest.raises(InputError) as caught:
        check_ledger(ledger, trust, inventory=True, **how)  # type: ignore[arg-type]
    assert caught.value.code == "input.value"


def test_items_trust_lists_a_valid_ledger_without_replaying_it(demo: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    ledger, trust = _files(demo)
    want = [dataclasses.asdict(line) for line in item_lines(replay_ledger(ledger, trust))]

    def no_replay(*_: object) -> None:
        raise AssertionError("a valid ledger was replayed")

    with monkeypatch.context() as patched:
        patched.setattr("stonetrail_cli.items.replay_file", no_replay)
        listed = CliRunner().invoke(main, ["items", str(ledger), "--trust", str(demo / "trust.keys"), "--json"])
    data = json.loads(listed.stdout)
    assert listed.exit_code == 0 and data["verdict"] == "valid" and data["items"] == want
    assert (data["findings"], data["finding_count"], data["damage"], data["damaged_parts"]) == ([], 0, [], 0)
    forged = tmp_path / "forged.ledger"  # one byte of the last record changed: its frame no longer checks out
    shutil.copy(ledger, forged)
    raw = bytearray(forged.read_bytes())
    raw[-40] ^= 1
    forged.write_bytes(raw)
    listed = CliRunner().invoke(main, ["items", str(forged), "--trust", str(demo / "trust.keys"), "--json"])
    data = json.loads(listed.stdout)
    assert listed.exit_code == 1 and data["verdict"] == "invalid" and data["finding_count"] >= 1
    assert data["damaged_parts"] == 1 and data["damage"][0]["code"] == "store.checksum_mismatch"  # the replay names it
