"""``show --trust`` on a ledger with an index: the whole ledger audited in a streaming pass, the history read
through the index with every fact checked against that audit (ledger.history.audited_scope), so that it is the
history a replay tells; an index that disagrees is set aside and the ledger replayed, never shown as verified."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sqlite3
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from test_index_forgery import _set_row

from ledger import Trust, check_ledger, replay_ledger
from ledger.errors import StorageError
from ledger.history import audited_scope, item_scope, trace
from ledger.index import rebuild_index
from ledger.index.db import index_path
from ledger.index.reading import indexed_log
from stonetrail_cli.main import main

STONE = "R-00001-A"


def _files(demo: Path, tmp_path: Path) -> tuple[Path, Trust]:
    """A copy of the demo's ledger and trust file, with an index of its own (one copied with it is another
    file's)."""
    folder = tmp_path / "d"
    folder.mkdir()
    shutil.copy(demo / "trust.keys", folder)
    trust = Trust.parse((folder / "trust.keys").read_text(encoding="utf-8"))
    ledger = shutil.copy(demo / "demo.ledger", folder)
    rebuild_index(ledger, trust.authority_keys)
    return Path(ledger), trust


def _show(ledger: Path, item: str = STONE) -> Result:
    return CliRunner().invoke(main, ["show", str(ledger), item, "--trust", str(ledger.parent / "trust.keys"), "--json"])


def test_every_items_audited_history_is_the_one_a_replay_tells(demo: Path, tmp_path: Path) -> None:
    ledger, trust = _files(demo, tmp_path)
    report, replay = check_ledger(ledger, trust, inventory=True), replay_ledger(ledger, trust)
    assert report.inventory is not None and report.root_hash is not None and report.ok
    log = indexed_log(ledger, at=report.record_count)
    assert log is not None
    with log:
        for item in replay.state.items:  # 432: stones split, merged, set in articles, graded, exported
            found = audited_scope(log, item, report.inventory, report.record_count, report.root_hash)
            want = item_scope(replay, item)
            whole = want.items[item]  # an audit keeps an item's creation, not the position and hash of every record
            assert (found.scope, found.records, found.items[item]) == (
                want.scope, want.records, dataclasses.replace(whole, history=whole.history[:1], hashes=set()))
            assert trace(found, item) == trace(want, item), item
        with pytest.raises(KeyError):
            audited_scope(log, "R-99999-Z", report.inventory, report.record_count, report.root_hash)


class _Edited(Mapping[str, Sequence[int]]):
    """An index's item -> positions with one item's positions replaced."""

    def __init__(self, index: Mapping[str, Sequence[int]], item: str, positions: list[int]) -> None:
        self._index, self._item, self._positions = index, item, positions

    def __getitem__(self, item: str) -> Sequence[int]:
        return self._positions if item == self._item else self._index[item]

    def __iter__(self) -> Iterator[str]:
        return iter(self._index)

    def __len__(self) -> int:
        return len(self._index)


def test_an_index_that_disagrees_with_the_audit_is_refused(demo: Path, tmp_path: Path) -> None:
    """Each fact the index gives is checked: the stone's positions (one dropped, one of another record, out of
    order, one past the records audited), and every record read against the audited root."""
    ledger, trust = _files(demo, tmp_path)
    report = check_ledger(ledger, trust, inventory=True)
    assert report.inventory is not None and report.root_hash is not None
    size, root = report.record_count, report.root_hash
    edits: dict[str, Callable[[list[int]], list[int]]] = {
        "none": lambda at: at, "one dropped": lambda at: at[:1] + at[2:], "another record's": lambda at: [0, *at[1:]],
        "out of order": lambda at: [at[1], at[0], *at[2:]], "past the audit": lambda at: [*at[:-1], size]}
    for name, edit in edits.items():
        log = indexed_log(ledger, at=size)
        assert log is not None
        with log:
            heads = log.commitments.heads
            heads.index = _Edited(heads.index, STONE, edit(list(heads.index[STONE])))  # type: ignore[assignment]
            if name == "none":
                assert audited_scope(log, STONE, report.inventory, size, root).scope.target == STONE
                continue
            with pytest.raises(StorageError) as caught:
                audited_scope(log, STONE, report.inventory, size, root)
            assert caught.value.code == "index.damaged", name
    log = indexed_log(ledger, at=size)
    assert log is not None
    with log, pytest.raises(StorageError) as caught:  # the records are proven against the audited root
        audited_scope(log, STONE, report.inventory, size, log.tree.root_at(size - 1))
    assert caught.value.code == "index.damaged"


def shows_the_replays_history(ledger: Path, items: Sequence[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Assert that ``show ITEM --trust --json`` on the valid ledger ``ledger`` prints, for each of ``items``, what
    the replay prints, verified, without replaying; and the suggestion for an id in the wrong case."""
    with monkeypatch.context() as patched:  # the replay's answer, as before
        patched.setattr("stonetrail_cli.show._show_audited", lambda *_: None)
        want = {item: _show(ledger, item) for item in items}
    with monkeypatch.context() as patched:

        def no_replay(*_: object) -> None:
            raise AssertionError("a valid ledger was replayed")

        patched.setattr("stonetrail_cli.show.replay_file", no_replay)
        for item, shown in want.items():
            got = _show(ledger, item)
            assert got.exit_code == shown.exit_code == 0 and got.stdout == shown.stdout, item
            assert json.loads(got.stdout)["verdict"] == "valid"
        unknown = _show(ledger, "R-00001-a")
        assert unknown.exit_code == 2 and "did you mean 'R-00001-A'" in unknown.stdout


def test_show_trust_tells_a_valid_ledgers_history_from_the_index(demo: Path, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    ledger, _ = _files(demo, tmp_path)
    shows_the_replays_history(ledger, (STONE, "R-00002-A"), monkeypatch)


def test_show_trust_replays_when_the_index_disagrees(demo: Path, tmp_path: Path) -> None:
    """A row of the index rewritten with its checksum (a position of another record among the stone's): the
    history shown is the replay's, verified, never the index's."""
    ledger, _ = _files(demo, tmp_path)
    want = _show(ledger)
    with closing(sqlite3.connect(index_path(ledger))) as db:
        _set_row(db, "head_positions", STONE.encode(), lambda at: [*at[:-2], 0, at[-1]])
        db.commit()
    got = _show(ledger)
    assert got.exit_code == 0 and got.stdout == want.stdout


def test_show_trust_says_when_it_sets_the_index_aside(demo: Path, tmp_path: Path) -> None:
    """A breaker's review: one of the stone's positions dropped from the index, its row's checksum made again. The
    index opens, then disagrees with the audit: the replay's history is shown, and the index named as set aside."""
    ledger, _ = _files(demo, tmp_path)
    want = _show(ledger)
    with closing(sqlite3.connect(index_path(ledger))) as db:
        _set_row(db, "head_positions", STONE.encode(), lambda at: at[:1] + at[2:])
        db.commit()
    got = _show(ledger)
    assert got.exit_code == 0 and got.stdout == want.stdout
    assert "its index disagrees with the audit: set aside" in got.stderr  # said, not silently passed over
