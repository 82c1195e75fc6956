"""``show`` and ``items`` without --trust (and no index), and on an invalid ledger, read what they print from a
streaming pass (check_ledger(inventory=True), memory that follows the items) and the file, not from a replay
holding the log: the same output as the replay's, findings included; a file with a part that cannot be read is
still replayed, which names that part."""

from __future__ import annotations

import functools
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ledger import Trust, check_ledger, replay_ledger
from ledger.errors import CorruptStoreError, InputError
from ledger.history import item_history
from ledger.index.db import index_path
from ledger.storage import FileStore, scan
from stonetrail_cli.main import main

ITEMS = ("R-00001-A", "RING-0001", "CVD-0001", "LOT-AO-CATOCA")


def _copy(demo: Path, tmp_path: Path) -> tuple[Path, Trust]:
    """The demo's ledger and trust file, copied without the index."""
    folder = tmp_path / "d"
    folder.mkdir()
    shutil.copy(demo / "trust.keys", folder)
    return Path(shutil.copy(demo / "demo.ledger", folder)), Trust.parse((demo / "trust.keys").read_text())


def _rewrite(ledger: Path, change: Callable[[int, bytearray], None]) -> None:
    """Rewrite ``ledger`` record by record (valid frames), ``change(index, payload)`` changing the payloads."""
    read = scan(ledger)
    again = ledger.with_suffix(".new")
    with FileStore.create(again, read.origin) as store:
        for frame in read.frames:
            payload = bytearray(frame.payload)
            change(frame.index, payload)
            store.append(bytes(payload))
    again.replace(ledger)


def _run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _replayed(monkeypatch: pytest.MonkeyPatch, run: Callable[[], Result]) -> Result:
    """``run()`` the way it ran before: from a replay of the file."""
    with monkeypatch.context() as patched:
        patched.setattr("stonetrail_cli.show._show_audited", lambda *_: None)
        patched.setattr("stonetrail_cli.items.audited", lambda *_: None)
        return run()


def _not_replayed(monkeypatch: pytest.MonkeyPatch, run: Callable[[], Result]) -> Result:
    with monkeypatch.context() as patched:

        def no_replay(*_: object) -> None:
            raise AssertionError("the ledger was replayed")

        patched.setattr("stonetrail_cli.show.replay_file", no_replay)
        patched.setattr("stonetrail_cli.items.replay_file", no_replay)
        return run()


def _same(monkeypatch: pytest.MonkeyPatch, args: list[str], exit_code: int) -> Result:
    want = _replayed(monkeypatch, lambda: _run(*args))
    got = _not_replayed(monkeypatch, lambda: _run(*args))
    assert (got.exit_code, got.stdout) == (want.exit_code, want.stdout) and got.exit_code == exit_code, args
    return got


def test_unverified_histories_and_items_without_an_index(demo: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    ledger, _ = _copy(demo, tmp_path)
    for item in ITEMS:
        assert json.loads(_same(monkeypatch, ["show", str(ledger), item, "--json"], 0).stdout)["verdict"] == \
            "unverified"
    assert "unverified: pass --trust" in _same(monkeypatch, ["show", str(ledger), ITEMS[0]], 0).stdout
    listed = json.loads(_same(monkeypatch, ["items", str(ledger), "--json"], 0).stdout)
    assert listed["verdict"] == "unverified" and listed["findings"] is None and len(listed["items"]) == 432
    assert "432 items; unverified" in _same(monkeypatch, ["items", str(ledger)], 0).stdout
    assert not index_path(ledger).exists()  # a reader writes nothing beside the ledger
    unknown = _not_replayed(monkeypatch, lambda: _run("show", str(ledger), "R-00001-a"))
    assert unknown.exit_code == 2 and "did you mean 'R-00001-A'" in unknown.output


def test_an_invalid_ledgers_history_and_items_name_its_findings(demo: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """A signature byte changed in one record of the stone's history (its operator can): the stone's history shows
    the finding on that record, another item's counts it elsewhere; items lists the audit's findings."""
    ledger, trust = _copy(demo, tmp_path)
    forged = item_history(replay_ledger(ledger, trust), ITEMS[0])[3].position
    _rewrite(ledger, lambda index, payload: payload.__setitem__(-40, payload[-40] ^ 1) if index == forged else None)
    keys = str(ledger.parent / "trust.keys")
    shown = json.loads(_same(monkeypatch, ["show", str(ledger), ITEMS[0], "--trust", keys, "--json"], 1).stdout)
    assert shown["verdict"] == "invalid" and shown["findings"][0]["position"] == forged
    other = json.loads(_same(monkeypatch, ["show", str(ledger), "CVD-0001", "--trust", keys, "--json"], 1).stdout)
    assert other["findings"] == [] and other["findings_elsewhere"] >= 1
    assert "INVALID: " in _same(monkeypatch, ["show", str(ledger), ITEMS[0], "--trust", keys], 1).stdout
    listed = json.loads(_same(monkeypatch, ["items", str(ledger), "--trust", keys, "--json"], 1).stdout)
    assert listed["verdict"] == "invalid" and listed["finding_count"] >= 1 and len(listed["items"]) == 432
    _same(monkeypatch, ["items", str(ledger), "--trust", keys], 1)
    for args in (["show", str(ledger), ITEMS[0], "--json"], ["items", str(ledger), "--json"]):  # unverified
        assert json.loads(_same(monkeypatch, args, 0).stdout)["verdict"] == "unverified"


@pytest.mark.parametrize("how", ["frame", "record"])
def test_a_part_that_cannot_be_read_is_replayed(demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                how: str) -> None:
    """A damaged frame, or a record that does not decode in a whole frame: the replay names the part, so it runs."""
    ledger, _ = _copy(demo, tmp_path)
    if how == "frame":
        data = bytearray(ledger.read_bytes())
        data[scan(ledger).frames[100].offset + 30] ^= 0xFF
        ledger.write_bytes(bytes(data))
    else:
        _rewrite(ledger, lambda index, payload: payload.__setitem__(0, payload[0] ^ 0xFF) if index == 100 else None)
    replays: list[object] = []
    import stonetrail_cli._reading as reading
    replay = reading.replay_file
    monkeypatch.setattr("stonetrail_cli.show.replay_file", lambda *a: replays.append(a) or replay(*a))
    got = _run("show", str(ledger), ITEMS[0], "--json")
    assert got.exit_code == 1 and len(replays) == 1
    shown = json.loads(got.stdout)
    assert shown["verdict"] == "invalid" and shown["damage"][0]["position"] == 100


def test_an_audit_without_trust_and_until_a_part_that_cannot_be_read(demo: Path, tmp_path: Path) -> None:
    ledger, trust = _copy(demo, tmp_path)
    unverified = check_ledger(ledger, None, inventory=True)
    audited = check_ledger(ledger, trust, inventory=True)
    assert unverified.inventory is not None and audited.inventory is not None
    assert unverified.inventory.lines() == audited.inventory.lines() and unverified.findings
    assert unverified.root_hash == audited.root_hash and unverified.unreadable == audited.unreadable == 0
    forged = tmp_path / "forged.ledger"
    forged.write_bytes(ledger.read_bytes())
    _rewrite(forged, lambda index, payload: payload.__setitem__(-40, payload[-40] ^ 1) if index == 300 else None)
    bad = {f.code for f in check_ledger(forged, trust).findings if f.position == 300}
    unjudged = {f.code for f in check_ledger(forged, None, max_findings=None).findings if f.position == 300}
    assert "sig.r_invalid_point" in bad and "sig.r_invalid_point" not in unjudged  # no key trusted: none checked
    for refused in ({"checkpoint": (demo / "checkpoint.txt").read_text()}, {"save_state": tmp_path / "s"}):
        with pytest.raises(InputError) as caught:
            check_ledger(ledger, None, **refused)  # type: ignore[arg-type]
        assert caught.value.code == "input.value"
    _rewrite(ledger, lambda index, payload: payload.__setitem__(0, payload[0] ^ 0xFF) if index in (100, 200) else None)
    for jobs in (1, 2):
        whole = check_ledger(ledger, trust, jobs=jobs, chunk_records=16)
        stopped = check_ledger(ledger, trust, jobs=jobs, chunk_records=16, until_unreadable=True)
        assert whole.unreadable == 2 and stopped.unreadable >= 1 and stopped.record_count < whole.record_count


def test_mutated_ledgers_list_and_tell_as_their_replay(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The differential fuzzer's ledgers (valid trades changed as an insider operator could: records inserted,
    dropped, moved, duplicated): every item's line, scope and history from the audit and the file are the
    replay's, and so are the findings."""
    from differential import TRUST as FUZZ_TRUST
    from differential import write_ledger
    from differential_run import case

    from ledger.history import item_scope, trace
    from ledger.history_scan import scanned_scope
    from ledger.inventory import item_lines
    invalid, disagreed = 0, set()
    for index in range(40):
        seq, _, _ = case(11, index)
        path = tmp_path / f"m{index}.ledger"
        write_ledger(path, seq)
        report, replay = check_ledger(path, FUZZ_TRUST, inventory=True), replay_ledger(path, FUZZ_TRUST)
        assert report.inventory is not None and report.root_hash is not None and report.unreadable == 0
        assert (report.findings, report.finding_count) == (replay.findings, replay.finding_count), index
        assert report.inventory.lines() == item_lines(replay), index
        invalid += bool(report.findings)
        for item in replay.state.items:
            try:
                found = scanned_scope(path, item, report.inventory, report.record_count, report.root_hash)
            except CorruptStoreError as exc:  # a statement before its subject, which a scan cannot place: replayed
                assert report.findings and exc.code == "store.changed", (index, item)
                if not disagreed:  # show says so, and prints the replay's history
                    keys = tmp_path / "fuzz.keys"
                    keys.write_text(FUZZ_TRUST.format())
                    args = ["show", str(path), item, "--trust", str(keys), "--json"]
                    got, want = _run(*args), _replayed(monkeypatch, functools.partial(_run, *args))
                    assert (got.exit_code, got.stdout) == (want.exit_code, want.stdout) and got.exit_code == 1
                    assert "a record of this history is out of place" in got.stderr
                disagreed.add(index)
                continue
            want = item_scope(replay, item)
            assert (found.scope, found.records) == (want.scope, want.records), (index, item)
            assert trace(found, item) == trace(want, item), (index, item)
    assert invalid >= 20 and len(disagreed) <= invalid // 4, (invalid, disagreed)


def test_what_show_says_when_it_replays_or_cannot_find(demo: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A breaker's review: without trust (an audit then always has findings) a file changed after its audit was
    called "out of place", and an item missing from a file cut short of its checkpoint.txt lost its JSON "file"."""
    ledger, _ = _copy(demo, tmp_path)

    def changed(*_: object, **__: object) -> None:
        raise CorruptStoreError("the file changed", code="store.changed")

    with monkeypatch.context() as patched:
        patched.setattr("stonetrail_cli.show.scanned_scope", changed)
        got = _run("show", str(ledger), ITEMS[0], "--json")
    assert got.exit_code == 0 and "it changed since it was audited; replaying the whole ledger" in got.stderr
    shutil.copy(demo / "checkpoint.txt", ledger.parent)
    ledger.write_bytes(ledger.read_bytes()[:scan(ledger).frames[701].offset])
    for trust in ([], ["--trust", str(ledger.parent / "trust.keys")]):
        missing = _run("show", str(ledger), "NOPE", "--json", *trust)
        error = json.loads(missing.output)["error"]
        assert missing.exit_code == 1 and error["code"] == "item.unreadable" and error["file"] == str(ledger)
