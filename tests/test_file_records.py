"""A replay for display keeps where each record is in the file, not the record (ledger.file_records): its memory
follows the items, not the log (a decoded record takes ~4 KB: 3.5 GB at 10^6 records), a record asked for is read
again and must be the one replayed, and what show and items print is unchanged."""

from __future__ import annotations

import gc
import shutil
import tracemalloc
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_listed_from_audit import _rewrite

from ledger import Attested, Trust, replay_ledger
from ledger.errors import CorruptStoreError, StorageError
from ledger.file_records import FileRecords
from ledger.history import item_scope, trace
from ledger.inventory import item_lines
from ledger.record import Record
from ledger.replay import Replay
from ledger.storage import FileStore, scan
from stonetrail_cli.main import main
from world import ORIGIN, TRUST, World


def _copy(demo: Path, tmp_path: Path) -> tuple[Path, Trust]:
    folder = tmp_path / "d"
    folder.mkdir()
    shutil.copy(demo / "trust.keys", folder)
    return Path(shutil.copy(demo / "demo.ledger", folder)), Trust.parse((demo / "trust.keys").read_text())


def _held(replay: Replay) -> Replay:
    """``replay`` with its records decoded in memory and no heads: what a replay held before."""
    return Replay(origin=replay.origin, records=tuple(replay.records), state=replay.state, tree=replay.tree,
                  framing_ok=replay.framing_ok, findings=replay.findings, omitted=replay.omitted,
                  damage=replay.damage, unreadable=replay.unreadable)


def test_the_records_read_again_are_the_ones_in_the_file(demo: Path, tmp_path: Path) -> None:
    ledger, trust = _copy(demo, tmp_path)
    replay = replay_ledger(ledger, trust)
    assert isinstance(replay.records, FileRecords)
    decoded = [Record.from_bytes(frame.payload) for frame in scan(ledger).frames]
    assert list(replay.records) == decoded  # in order
    assert [replay.records[i] for i in reversed(range(len(decoded)))] == decoded[::-1]  # by position
    assert replay.records[-1] == decoded[-1] and replay.records[3:7] == decoded[3:7]
    with pytest.raises(IndexError):
        replay.records[len(decoded)]


def test_histories_and_items_are_those_of_the_records_held(demo: Path, tmp_path: Path) -> None:
    ledger, trust = _copy(demo, tmp_path)
    replay = replay_ledger(ledger, trust)
    held = _held(replay)
    assert item_lines(replay) == item_lines(held)
    for item in list(replay.state.items)[::7]:
        assert item_scope(replay, item) == item_scope(held, item)
        assert trace(item_scope(replay, item), item) == trace(item_scope(held, item), item), item


def test_a_damaged_files_unreadable_positions_stay_none(demo: Path, tmp_path: Path) -> None:
    ledger, trust = _copy(demo, tmp_path)
    frames = scan(ledger).frames
    data = bytearray(ledger.read_bytes())
    data[frames[10].offset + 30] ^= 0xFF  # record 10's frame fails its checksum
    ledger.write_bytes(bytes(data))
    replay = replay_ledger(ledger, trust)
    assert replay.records[10] is None and replay.damage[0].position == 10
    assert replay.records[11] == Record.from_bytes(frames[11].payload)
    assert [r is None for r in replay.records].count(True) == 1


@pytest.mark.parametrize("how", ["checksum", "rewritten"])
def test_a_file_changed_after_its_replay_is_refused(demo: Path, tmp_path: Path, how: str) -> None:
    """A record read again must be the one the replay judged: a frame whose checksum fails, or one rewritten whole
    with a valid checksum (a signature byte changed), is CorruptStoreError store.changed, never shown."""
    ledger, trust = _copy(demo, tmp_path)
    replay = replay_ledger(ledger, trust)
    read = scan(ledger)
    target = read.frames[20]
    if how == "checksum":
        with ledger.open("r+b") as f:
            f.seek(target.offset + 40)
            byte = f.read(1)
            f.seek(target.offset + 40)
            f.write(bytes([byte[0] ^ 1]))
    else:  # inside its last signature, the frame whole
        _rewrite(ledger, lambda index, payload: payload.__setitem__(-40, payload[-40] ^ 1) if index == 20 else None)
    assert replay.records[19] is not None  # the records before are as they were
    with pytest.raises(CorruptStoreError) as caught:
        replay.records[20]
    assert caught.value.code == "store.changed"
    with pytest.raises(CorruptStoreError):
        list(replay.records)


def test_a_file_gone_after_its_replay_is_a_storage_error(demo: Path, tmp_path: Path) -> None:
    ledger, trust = _copy(demo, tmp_path)
    replay = replay_ledger(ledger, trust)
    ledger.unlink()
    with pytest.raises(StorageError) as caught:
        replay.records[0]
    assert caught.value.code == "store.io"


def test_a_replay_holds_no_record(tmp_path: Path) -> None:
    """A replay keeps no record: one stone with 800 statements about its mining keeps less than its records take
    decoded (it kept them as well before; what it keeps a record now is the custody state's hashes of it, about
    500 bytes, where the record took 1.3 KB here and about 4 KB in the benchmark's ledgers)."""
    world = World()
    world.enrol_all()
    world.enrol_party("auditor-x", ["auditor"], "BE")
    mined = world.mine("S1")
    assert world.add(mined) == []
    for n in range(800):
        statement = world.make(Attested(subject=mined.record_hash, statement=f"seen {n}"), "auditor-x")
        assert world.add(statement) == [], n
    ledger = tmp_path / "stated.ledger"
    with FileStore.create(ledger, ORIGIN) as store:
        store.append_batch([r.raw for r in world.records])
    gc.collect()
    tracemalloc.start()
    try:
        start = tracemalloc.take_snapshot()
        replay = replay_ledger(ledger, TRUST)
        kept = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(start, "filename"))
        records = tuple(replay.records)
        both = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(start, "filename"))
    finally:
        tracemalloc.stop()
    assert not replay.findings and len(records) == len(world.records) > 800
    assert kept < both - kept, (kept, both - kept)
    assert trace(item_scope(replay, "S1"), "S1").path[-1].position == len(records) - 1


def test_show_and_items_print_what_they_printed(demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --trust and without an index (the replay): the same output as from a replay holding its records."""
    ledger, _ = _copy(demo, tmp_path)
    runner = CliRunner()
    args = [["show", str(ledger), "R-00001-A"], ["show", str(ledger), "RING-0001", "--json"],
            ["items", str(ledger), "--json"]]
    now = [runner.invoke(main, a) for a in args]
    import ledger.replay as replaying
    whole = replaying.replay_ledger

    def holding(*a: object, **k: object) -> Replay:
        return _held(whole(*a, **k))  # type: ignore[arg-type]

    monkeypatch.setattr(replaying, "replay_ledger", holding)
    monkeypatch.setattr("ledger.replay_ledger", holding)
    before = [runner.invoke(main, a) for a in args]
    for got, want in zip(now, before, strict=True):
        assert (got.exit_code, got.stdout) == (want.exit_code, want.stdout)
        assert got.exit_code == 0 and "unverified" in got.stdout
