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


def signed_trade(tmp_path: Path, seed: int = 0) -> tuple[Path, list[Record], str]:
    """A random valid trade (tests/differential_ledgers.py) written by the writer and signed at its end: the path,
    the records and the checkpoint note."""
    records = forge(random.Random(seed), 90).records
    path = tmp_path / "trade.ledger"
    with Ledger.create(path, ORIGIN, TRUST.authority_keys) as ledger:
        ledger.append_batch(records)
        return path, records, ledger.checkpoint(OPERATOR)


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


def test_a_writer_that_built_its_index_checks_it_before_each_signing(tmp_path: Path) -> None:
    """The index file can be written while the writer that built it is open: a second review hid a stone's latest
    record in its rows and stored snapshot between two checkpoints, and the handle, which then trusted the index
    it had built, signed it and kept it in its anchor (so later signers signed it too)."""
    from ledger.heads import Head, head_leaf
    from ledger.index import discard_index

    path, records, at = _trade(tmp_path, 0)
    want = checkpoint_log(path, OPERATOR)
    discard_index(path)
    item = _items_after(records, at, statement=False)[0]
    with Ledger.open(path, TRUST.authority_keys) as ledger:  # builds the index from the log
        assert ledger.checkpoint(OPERATOR) == want
        with closing(sqlite3.connect(index_path(path))) as db:
            _hide_last(db, records, item)
            size, pairs = _snapshot_pairs(db)
            at_ = unpack_local(db.execute("SELECT v FROM head_positions WHERE k = ?", (item.encode(),)).fetchone()[0])
            for pair in pairs:
                if bytes(pair[0]) == item.encode():
                    pair[1] = head_leaf(item, Head(at_[-1], records[at_[-1]].record_hash, len(at_)))
            _put_snapshot_pairs(db, size, pairs)
            db.commit()
        assert ledger.checkpoint(OPERATOR) == want
    assert sign_file(path, OPERATOR) == want


def _snapshot_pairs(db: sqlite3.Connection) -> tuple[int, list[list[Any]]]:
    """The anchor's size and the item-head snapshot's (sort key, leaf input) pairs stored at it."""
    (size,) = db.execute("SELECT max(size) FROM snap").fetchone()
    rows = dict(db.execute("SELECT k, v FROM snap WHERE size = ? AND tree = 0 AND kind = 0", (size,)).fetchall())
    return size, [list(pair) for k in sorted(rows) for pair in unpack_local(rows[k])]


def _put_snapshot_pairs(db: sqlite3.Connection, size: int, pairs: list[list[Any]]) -> None:
    from ledger.index.snapshot import WIDTH, _check

    for row in range(-(-len(pairs) // WIDTH)):
        value = pack_local(pairs[row * WIDTH:(row + 1) * WIDTH])
        db.execute("UPDATE snap SET v = ?, c = ? WHERE size = ? AND tree = 0 AND kind = 0 AND k = ?",
                   (value, _check(size, 0, 0, row, value, None), size, row))


def _leaf_under_another_key(db: sqlite3.Connection, records: list[Record], at: int, *, cut: bool) -> None:
    """A second adversarial review's edits: a snapshot leaf moved under a made-up key (its leaf input unchanged).
    With ``cut``: the key ``id + NUL`` for the leaf of a stone with records on both sides of the anchor, whose
    positions row is cut to those after it — the stone's leaf at the anchor seemed to be the made-up key's, and
    the count signed left out its earlier records. Without: the key ``new + NUL`` for the leaf just before a new
    item ``new`` (one with no records below the anchor) — the leaf was signed on the wrong side of it."""
    from ledger.heads import ItemHeads

    positions = ItemHeads.of(enumerate(records)).index
    size, pairs = _snapshot_pairs(db)
    keys = [bytes(key) for key, _ in pairs]
    new = sorted(item.encode() for item, at_ in positions.items() if at_[0] >= at)
    for j, key in enumerate(keys):
        after = [n for n in new if key < n and (j + 1 == len(keys) or n + b"\x00" < keys[j + 1])]
        made_up = key + b"\x00" if cut else (after[0] + b"\x00" if after else None)
        at_ = positions[key.decode()]
        if made_up is not None and (j + 1 == len(keys) or made_up < keys[j + 1]) \
                and (at_[0] < at <= at_[-1] if cut else at_[-1] < at):
            break
    pairs[j][0] = made_up
    _put_snapshot_pairs(db, size, pairs)
    if cut:
        _rows(db, "head_positions", keys[j], lambda rows: [p for p in rows if p >= at])
        counts = unpack_local(db.execute("SELECT v FROM meta WHERE k = 'counts'").fetchone()[0])
        value = pack_local({**counts, "head_positions": counts["head_positions"] + 1,
                            "head_latest": counts["head_latest"] + 1})
        db.execute("UPDATE meta SET v = ?, c = ? WHERE k = 'counts'", (value, row_check("meta", b"counts", value)))


@pytest.mark.parametrize("cut", [True, False], ids=["earlier records cut", "moved"])
@pytest.mark.parametrize("through", ["writer", "checkpoint command"])
def test_a_snapshot_leaf_under_another_key_is_never_signed(tmp_path: Path, cut: bool, through: str) -> None:
    """Each leaf must open with its sort key's item id, the keys increasing (both forgeries were signed before)."""
    path, records, at = _trade(tmp_path, 1 if cut else 0)
    want = checkpoint_log(path, OPERATOR)
    with closing(sqlite3.connect(index_path(path))) as db:
        _leaf_under_another_key(db, records, at, cut=cut)
        db.commit()
    if through == "writer":
        with Ledger.open(path, TRUST.authority_keys) as ledger:
            assert ledger.checkpoint(OPERATOR) == want
            assert ledger.checkpoint(OPERATOR) == want  # and the index it rebuilt stays the log's
    else:
        assert sign_file(path, OPERATOR) == want


@pytest.mark.parametrize("items", [[1], [[]], [None]], ids=["a number", "a list", "nil"])
def test_a_records_row_of_the_wrong_shape_makes_the_writer_rebuild_not_fail(tmp_path: Path, items: list[Any]
                                                                          ) -> None:
    """A record's items (the third field of its `records` row) that are not ids: appending a statement about it
    rebuilds the index from the log (it gave an AttributeError or a TypeError before)."""
    records = forge(random.Random(0), 90).records
    k = next(i for i, r in enumerate(records) if i > 10 and r.body.kind in STATEMENTS)
    path = tmp_path / "trade.ledger"
    with Ledger.create(path, ORIGIN, TRUST.authority_keys) as ledger:
        ledger.append_batch(records[:k])
    with closing(sqlite3.connect(index_path(path))) as db:
        subject = bytes(records[k].body.event.subject)  # type: ignore[attr-defined]
        _rows(db, "records", subject, lambda row: [*row[:2], items])
        db.commit()
    with Ledger.open(path, TRUST.authority_keys) as ledger:
        ledger.append_batch(records[k:])
        assert ledger.checkpoint(OPERATOR) == checkpoint_log(path, OPERATOR)


@pytest.mark.parametrize("before", [True, False], ids=["its subject before the anchor", "after it"])
def test_a_statement_about_a_statement_about_a_registry_record_is_placed(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch,
                                                                        before: bool) -> None:
    """S1 is about an enrolment (no item's record, so no item's position places it: it waits, and the waiting
    statements do), S2 about S1 after the anchor: signed through the index, no rebuild and no log read."""
    world = forge(random.Random(5), 60)
    enrolment = world.records[0]
    first = world.step(lambda: world.attest(subject=enrolment.record_hash))
    assert first is not None
    at = len(world.records) if before else len(world.records) - 1
    assert world.step(lambda: world.attest(subject=first.record_hash)) is not None
    path = tmp_path / "trade.ledger"
    with Ledger.create(path, ORIGIN, TRUST.authority_keys) as ledger:
        ledger.append_batch(world.records[:at])
        ledger.checkpoint(OPERATOR)
        ledger.append_batch(world.records[at:])
    want = checkpoint_log(path, OPERATOR)
    _log_only(monkeypatch)
    assert sign_file(path, OPERATOR) == want
    with Ledger.open(path, TRUST.authority_keys) as ledger:
        assert ledger.checkpoint(OPERATOR) == want


def test_the_writer_signs_the_root_it_checked_not_the_tiles_read_again(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A third review rewrote the tiles right after the check (a large writer, whose node cache no longer holds
    the root's nodes): the writer read the root from them again and signed a second tree. It now signs the root
    the check computed from the log."""
    from test_index_forgery import _forge_tiles

    import ledger.backends
    import ledger.storage.tiles

    path, records, _ = _trade(tmp_path, 0)
    want = checkpoint_log(path, OPERATOR)
    real = ledger.backends.check_tree

    def racing(index: Any, *args: Any) -> Any:
        checked = real(index, *args)
        _forge_tiles(path, len(records) - 2)  # between the check and the signing
        return checked

    monkeypatch.setattr(ledger.backends, "check_tree", racing)
    monkeypatch.setattr(ledger.storage.tiles, "_KEPT", 4)  # the node cache of a large ledger: full
    with Ledger.open(path, TRUST.authority_keys) as ledger_:
        assert ledger_.checkpoint(OPERATOR) == want


def test_a_statement_swapped_into_a_stones_positions_is_never_exported_or_published(tmp_path: Path) -> None:
    """A review replaced one of a stone's positions by a statement about another stone's record (count and latest
    record as signed, checksum computed again): publish wrote an item file every client refused, and `proof
    export` was left to its bundle's self-check. A statement is a record of the stone only if its subject is one of
    the stone's records: the index's positions are refused, publish asks for a rebuild, export reads the log."""
    import shutil

    from ledger.errors import StoneTrailError
    from ledger.export import export_bundle
    from ledger.heads import ItemHeads
    from ledger.index import rebuild_index
    from ledger.published import publish_log

    path, records, note = signed_trade(tmp_path)
    positions = ItemHeads.of(enumerate(records)).index
    item, swapped, at = next((item, p, at) for item, at in sorted(positions.items()) if len(at) >= 3
                             for p in range(at[0] + 1, at[-1]) if records[p].body.kind in STATEMENTS and p not in at)
    bare = tmp_path / "bare.ledger"
    shutil.copy(path, bare)
    want = export_bundle(bare, item, note)  # no index: the log alone
    with closing(sqlite3.connect(index_path(path))) as db:
        _rows(db, "head_positions", item.encode(), lambda _: sorted([*at[:1], *at[2:], swapped]))
        db.commit()
    assert export_bundle(path, item, note) == want
    with pytest.raises(StoneTrailError) as refused:
        publish_log(path, tmp_path / "site", note)
    assert refused.value.code == "publish.no_index"
    rebuild_index(path, TRUST.authority_keys)
    publish_log(path, tmp_path / "site", note)
