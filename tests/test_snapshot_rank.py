"""A snapshot's ranks (ledger.index.snapshot): a key's rank is read from the first-keys row (kind 3) and the one
leaf row that holds the key, and is the key's place among the snapshot's sorted leaves; rows that disagree or fail
to decode are damage, never a wrong rank."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger._codec import pack_local
from ledger.checkpoint import format_counted_line
from ledger.heads import HEADS_EXTENSION
from ledger.index.maps import IndexDamaged
from ledger.index.snapshot import HEADS, WIDTH, Snapshot, create_snapshot_table, write_snapshot
from ledger.merkle import MerkleTree, leaf_hash


def _stored(db: sqlite3.Connection, keys: list[bytes], size: int = 7) -> Snapshot:
    """A snapshot at log size ``size`` of a tree whose leaves are ``keys`` (sorted), each leaf input its key
    reversed."""
    leaves = [(k, k[::-1], leaf_hash(k[::-1])) for k in sorted(keys)]
    line = format_counted_line(HEADS_EXTENSION, len(leaves), MerkleTree(h for _, _, h in leaves).root())
    create_snapshot_table(db)
    write_snapshot(db, size, HEADS, line, leaves)
    return Snapshot(db, size, HEADS)


@settings(max_examples=40, deadline=None)
@given(st.sets(st.binary(min_size=1, max_size=6), min_size=1, max_size=3 * WIDTH + 17),
       st.lists(st.binary(max_size=7), max_size=30))
def test_a_rank_is_the_keys_place_among_the_sorted_leaves(keys: set[bytes], probes: list[bytes]) -> None:
    with closing(sqlite3.connect(":memory:")) as db:
        snapshot = _stored(db, list(keys))
        ordered = sorted(keys)
        for rank, key in enumerate(ordered):
            assert snapshot.rank(key) == rank
            assert snapshot.leaf(rank)[0] == key
        for probe in probes:
            assert snapshot.rank(probe) == (ordered.index(probe) if probe in keys else None)


def _keys(n: int) -> list[bytes]:
    return [f"item-{i:05d}".encode() for i in range(n)]


def test_a_rank_reads_the_first_keys_row_and_one_leaf_row() -> None:
    with closing(sqlite3.connect(":memory:")) as db:
        snapshot = _stored(db, _keys(10 * WIDTH))
        reads: list[tuple[int, int]] = []
        row = snapshot._row
        snapshot._row = lambda kind, k: reads.append((kind, k)) or row(kind, k)  # type: ignore[method-assign]
        assert snapshot.rank(b"item-01234") == 1234
        assert reads == [(3, 0), (0, 1234 // WIDTH)]


def _rewrite(db: sqlite3.Connection, kind: int, value: object) -> None:
    """Replace the snapshot's row of ``kind`` (k = 0) by ``value``, encoded, with a checksum that passes."""
    from ledger.index.snapshot import _check

    raw = pack_local(value)
    db.execute("UPDATE snap SET v = ?, c = ? WHERE kind = ? AND k = 0", (raw, _check(7, HEADS, kind, 0, raw, None),
                                                                          kind))


@pytest.mark.parametrize("firsts", [
    [b"item-00000", b"item-00255"],  # a row whose first key is another
    [b"item-00256", b"item-00000"],  # out of order
    [b"item-00000"],  # too few rows
    "not a list",
])
def test_first_keys_that_are_not_the_rows_are_damage(firsts: object) -> None:
    with closing(sqlite3.connect(":memory:")) as db:
        _stored(db, _keys(2 * WIDTH))
        _rewrite(db, 3, firsts)
        with pytest.raises(IndexDamaged):
            Snapshot(db, 7, HEADS).rank(b"item-00300")


def test_a_first_keys_row_that_fails_its_checksum_or_is_missing_is_damage() -> None:
    with closing(sqlite3.connect(":memory:")) as db:
        _stored(db, _keys(WIDTH + 1))
        db.execute("UPDATE snap SET c = c + 1 WHERE kind = 3")
        with pytest.raises(IndexDamaged):
            Snapshot(db, 7, HEADS).rank(b"item-00000")
        db.execute("DELETE FROM snap WHERE kind = 3")
        with pytest.raises(IndexDamaged):
            Snapshot(db, 7, HEADS).rank(b"item-00000")
