"""``show --trust`` on a ledger without an index: the whole ledger audited in a streaming pass, then the item's
records read from the file (ledger.history_scan.scanned_scope), each fact checked against that audit, so that the
history is the one a replay tells, in memory that follows the item's records, not the log's; a file that disagrees
with its audit is replayed, never shown as verified."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest
from test_audited_history import _show, shows_the_replays_history

import ledger.history_scan as scanning
from ledger import Output, Split, Trust, check_ledger, replay_ledger
from ledger.errors import CorruptStoreError
from ledger.heads import Head
from ledger.history import item_scope, trace
from ledger.history_scan import scanned_scope
from ledger.index.db import index_path
from ledger.item import Inventory
from ledger.storage import FileStore, scan
from world import ORIGIN, TRUST, World

ITEMS = ("R-00001-A", "R-00002-A", "RING-0001", "CVD-0001", "LOT-AO-CATOCA")


def _files(demo: Path, tmp_path: Path) -> tuple[Path, Trust]:
    """A copy of the demo's ledger and trust file, with no index."""
    folder = tmp_path / "d"
    folder.mkdir()
    shutil.copy(demo / "trust.keys", folder)
    return Path(shutil.copy(demo / "demo.ledger", folder)), Trust.parse((demo / "trust.keys").read_text())


def test_every_items_scanned_history_is_the_one_a_replay_tells(demo: Path, tmp_path: Path) -> None:
    ledger, trust = _files(demo, tmp_path)
    report, replay = check_ledger(ledger, trust, inventory=True), replay_ledger(ledger, trust)
    assert report.inventory is not None and report.root_hash is not None and report.ok
    for item in replay.state.items:  # 432: stones split, merged, set in articles, graded, exported, corrected
        found = scanned_scope(ledger, item, report.inventory, report.record_count, report.root_hash)
        want = item_scope(replay, item)
        whole = want.items[item]  # an audit keeps an item's creation, not the position and hash of every record
        assert (found.origin, found.scope, found.records, found.items[item]) == (
            want.origin, want.scope, want.records, dataclasses.replace(whole, history=whole.history[:1], hashes=set()))
        assert trace(found, item) == trace(want, item), item
    with pytest.raises(KeyError):
        scanned_scope(ledger, "R-99999-Z", report.inventory, report.record_count, report.root_hash)


def test_a_file_that_disagrees_with_its_audit_is_refused(demo: Path, tmp_path: Path) -> None:
    """The records read must have the audited root (the file rewritten since: a record's signature changed, as its
    operator can), and each item of the scope as many records as the audit counted, the latest its head."""
    ledger, trust = _files(demo, tmp_path)
    report = check_ledger(ledger, trust, inventory=True)
    audited, size, root = report.inventory, report.record_count, report.root_hash
    assert audited is not None and root is not None
    stone = "R-00001-A"
    head = audited.heads[stone]
    miscounted = {"one more": Head(head.position, head.record_hash, head.count + 1),
                  "another head": Head(head.position - 1, head.record_hash, head.count)}
    for name, wrong in miscounted.items():
        with pytest.raises(CorruptStoreError) as caught:
            scanned_scope(ledger, stone, Inventory(audited.items, {**audited.heads, stone: wrong}), size, root)
        assert caught.value.code == "store.changed", name
    with pytest.raises(CorruptStoreError) as caught:
        scanned_scope(ledger, stone, audited, size - 1, root)
    assert caught.value.code == "store.changed"
    read = scan(ledger)
    rewritten = tmp_path / "rewritten.ledger"
    with FileStore.create(rewritten, read.origin) as store:
        for frame in read.frames:
            payload = bytearray(frame.payload)
            if frame.index == head.position:
                payload[-40] ^= 0x01  # inside its last signature
            store.append(bytes(payload))
    with pytest.raises(CorruptStoreError) as caught:
        scanned_scope(rewritten, stone, audited, size, root)
    assert caught.value.code == "store.changed"


def test_show_trust_tells_a_valid_ledgers_history_from_the_file(demo: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    ledger, _ = _files(demo, tmp_path)
    shows_the_replays_history(ledger, ITEMS, monkeypatch)
    assert not index_path(ledger).exists()  # a reader writes nothing beside the ledger


def test_show_trust_replays_a_file_that_changed_since_its_audit(demo: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The file rewritten between the audit and the read (a race a test cannot time: the read is made to find it):
    the history shown is the replay's, of the file as it is then."""
    ledger, _ = _files(demo, tmp_path)
    want = _show(ledger, ITEMS[0])

    def changed(*_: object, **__: object) -> None:
        raise CorruptStoreError("the file changed", code="store.changed")

    monkeypatch.setattr("stonetrail_cli.show.scanned_scope", changed)
    got = _show(ledger, ITEMS[0])
    assert got.exit_code == 0 and got.stdout == want.stdout
    assert "it changed since it was audited; replaying the whole ledger" in got.stderr


def test_a_deep_lineage_is_read_in_two_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A breaker's review: a stone split 40 times over (each split's larger part split again) made one read of
    the file per generation, each looking for more ids (301 reads, 12 s, for 300 generations). The first read now
    notes every record's lineage, so the second has every item of the scope."""
    world = World()
    world.enrol_all()
    assert world.add(world.mine("A", 10**9)) == []
    stone, mass = "A", 10**9
    for generation in range(40):
        big, small = f"N{generation:03d}a", f"N{generation:03d}b"
        split = world.make(Split(loss_mct=0), "producer-a", inputs=[stone], consumes=[stone],
                           outputs=[Output(id=big, type="stone", mass_mct=mass - 1),
                                    Output(id=small, type="stone", mass_mct=1)])
        assert world.add(split) == [], generation
        stone, mass = big, mass - 1
    ledger = tmp_path / "deep.ledger"
    with FileStore.create(ledger, ORIGIN) as store:
        for record in world.records:
            store.append(record.raw)
    report, replay = check_ledger(ledger, TRUST, inventory=True), replay_ledger(ledger, TRUST)
    assert report.ok and report.inventory is not None and report.root_hash is not None
    reads = []
    read = scanning._read
    monkeypatch.setattr(scanning, "_read", lambda *args: reads.append(1) or read(*args))
    found = scanned_scope(ledger, stone, report.inventory, report.record_count, report.root_hash)
    assert len(reads) == 2 and len(found.scope.items) == 41  # the stone and its 40 ancestors
    assert trace(found, stone) == trace(item_scope(replay, stone), stone)
