"""The heads line of a checkpoint signed through the index is the log's (ledger.index.heads_check;
docs/adr/0028-signed-root-anchor.md): someone who rewrites the index's item-head rows and their checksums — to
hide a stone's later record, or a statement about one of its records — gets neither the writer nor
`stonetrail checkpoint` to sign it; a sound index is signed through without reading the whole log."""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from differential_ledgers import forge

from ledger import Ledger
from ledger._codec import pack_local, unpack_local
from ledger.backends import FileBackend
from ledger.index.db import index_path
from ledger.index.maps import row_check
from ledger.reader import checkpoint_file as checkpoint_log
from ledger.record import Record
from ledger.signing import checkpoint_file as sign_file
from world import OPERATOR, ORIGIN, TRUST

STATEMENTS = ("attested", "corrected")


def _trade(tmp_path: Path, seed: int) -> tuple[Path, list[Record], int]:
    """A random valid trade with statements (tests/differential_ledgers.py) written by the writer: a checkpoint
    (the anchor) at a third of its records, then the rest. Returns the path, the records and the anchor's size."""
    records = forge(random.Random(seed), 90).records
    assert sum(r.body.kind in STATEMENTS for r in records[len(records) // 3:]) >= 2
    path, at = tmp_path / "trade.ledger", len(records) // 3
    with Ledger.create(path, ORIGIN, TRUST.authority_keys) as ledger:
        ledger.append_batch(records[:at])
        ledger.checkpoint(OPERATOR)
        ledger.append_batch(records[at:])
    return path, records, at


def _log_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make both signing paths fail if they leave the index: the log-only signer, the writer's rebuild."""
    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("the index was not used")

    monkeypatch.setattr("ledger.signing.checkpoint_log", refuse)
    monkeypatch.setattr(FileBackend, "_reopen_index", refuse)


@pytest.mark.parametrize("anchor", [True, False], ids=["after an anchor", "without one"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_sound_index_is_signed_through_with_the_logs_heads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            seed: int, anchor: bool) -> None:
    """Statements (about records below the anchor, after it, and about statements) counted as the log counts
    them: both signers sign what the log alone gives, through the index."""
    path, _, _ = _trade(tmp_path, seed)
    want = checkpoint_log(path, OPERATOR)
    if not anchor:
        with closing(sqlite3.connect(index_path(path))) as db:
            db.execute("DELETE FROM meta WHERE k = 'anchor'")
            db.commit()
    _log_only(monkeypatch)
    assert sign_file(path, OPERATOR) == want
    with Ledger.open(path, TRUST.authority_keys) as ledger:
        assert ledger.checkpoint(OPERATOR) == want


def _rows(db: sqlite3.Connection, table: str, key: bytes, change: Callable[[Any], Any]) -> None:
    value = pack_local(change(unpack_local(db.execute(f"SELECT v FROM {table} WHERE k = ?", (key,)).fetchone()[0])))
    db.execute(f"UPDATE {table} SET v = ?, c = ? WHERE k = ?", (value, row_check(table, key, value), key))


def _hide_last(db: sqlite3.Connection, records: list[Record], item: str) -> None:
    """``item``'s latest record taken out of its head: positions one short, latest hash the one before."""
    at = unpack_local(db.execute("SELECT v FROM head_positions WHERE k = ?", (item.encode(),)).fetchone()[0])
    _rows(db, "head_positions", item.encode(), lambda _: at[:-1])
    latest = bytes(records[at[-2]].record_hash)  # a raw value, not msgpack (ledger.index.state.TABLES)
    db.execute("UPDATE head_latest SET v = ?, c = ? WHERE k = ?",
               (latest, row_check("head_latest", item.encode(), latest), item.encode()))


def _drop_early(db: sqlite3.Connection, records: list[Record], item: str) -> None:
    """``item``'s first record taken out of its count (the rest as they are)."""
    _rows(db, "head_positions", item.encode(), lambda at: at[1:])


def _items_after(records: list[Record], at: int, statement: bool) -> list[str]:
    """Items with at least two records, whose latest is after ``at`` and is (or is not) a statement."""
    from ledger.heads import ItemHeads

    heads = ItemHeads.of(enumerate(records))
    return sorted(item for item, positions in heads.index.items() if len(positions) >= 2 and positions[-1] >= at
                  and (records[positions[-1]].body.kind in STATEMENTS) == statement)


@pytest.mark.parametrize("forgery", ["latest record hidden", "latest statement hidden", "first record dropped"])
@pytest.mark.parametrize("through", ["writer", "checkpoint command"])
def test_forged_head_rows_with_their_checksums_are_never_signed(tmp_path: Path, forgery: str, through: str) -> None:
    path, records, at = _trade(tmp_path, 0)
    want = checkpoint_log(path, OPERATOR)
    item = _items_after(records, at, statement=forgery == "latest statement hidden")[0]
    with closing(sqlite3.connect(index_path(path))) as db:
        (_drop_early if forgery == "first record dropped" else _hide_last)(db, records, item)
        db.commit()
    if through == "writer":
        with Ledger.open(path, TRUST.authority_keys) as ledger:
            assert ledger.checkpoint(OPERATOR) == want  # rebuilt from the log, then signed
    else:
        assert sign_file(path, OPERATOR) == want  # read from the log


def test_a_writer_that_built_its_index_from_the_log_signs_from_it_unchecked(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """An index this handle built from the log is the log's: its first checkpoint needs no check against an
    anchor (which a new index has not got: a pass that decodes every record), and signs what the log gives."""
    from ledger.index import discard_index

    path, _, _ = _trade(tmp_path, 1)
    want = checkpoint_log(path, OPERATOR)
    discard_index(path)

    def refuse(*_: Any) -> Any:
        raise AssertionError("checked against the log again")

    monkeypatch.setattr("ledger.backends.check_tree", refuse)
    with Ledger.open(path, TRUST.authority_keys) as ledger:
        assert ledger.checkpoint(OPERATOR) == want
