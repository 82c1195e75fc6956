"""A StoredMap (ledger.index.maps) reads and writes as a dictionary would, counted or not, with or without the
Written filter of a build from scratch (a key never written is a miss without a read)."""

from __future__ import annotations

import contextlib
import sqlite3
import tracemalloc
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.index.db import IndexDB
from ledger.index.maps import Codec, IndexDamaged, StoredMap, Written, create_table, row_check, row_checker
from ledger.index.snapshot import _pairs
from ledger.index.state import TABLES

KEYS = ["a", "b", "item-1", "x" * 32, "y" * 40]
STEPS = st.lists(st.tuples(st.sampled_from(["set", "del", "get", "setdefault", "flush", "forget"]),
                           st.integers(0, len(KEYS) - 1), st.integers(0, 3)), max_size=60)


def _codec() -> Codec[str, int]:
    return Codec(lambda k: k.encode(), lambda raw: raw.decode(), lambda v: b"%d" % v, lambda raw: int(raw))


class _Counting:
    """A connection that counts the lookups (SELECTs) made through it."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db, self.selects = db, 0

    def execute(self, sql: str, parameters: Any = ()) -> Any:
        self.selects += sql.startswith("SELECT")
        return self.db.execute(sql, parameters)

    def executemany(self, sql: str, parameters: Any) -> Any:
        return self.db.executemany(sql, parameters)


@settings(max_examples=300, deadline=None)
@given(STEPS, st.booleans(), st.booleans())
def test_a_stored_map_behaves_as_a_dictionary(steps: list[tuple[str, int, int]], counted: bool,
                                              written: bool) -> None:
    with closing(sqlite3.connect(":memory:", isolation_level=None)) as raw:
        create_table(raw, "t")
        db = _Counting(raw)
        rows: StoredMap[str, int] = StoredMap(db, "t", _codec(), 0 if counted else None)
        if written:
            rows.written = Written(1 << 10)
        model: dict[str, int] = {}
        kept = dict(model)
        for op, k, v in steps:
            key = KEYS[k]
            if op == "set":
                rows[key] = model[key] = v
            elif op == "del" and key in model:
                del rows[key], model[key]
            elif op == "get":
                assert rows.get(key) == model.get(key) and (key in rows) == (key in model)
            elif op == "setdefault":
                assert rows.setdefault(key, v) == model.setdefault(key, v)
            elif op == "forget":
                rows.forget()
                rows.recount(len(kept) if counted else None)
                model = dict(kept)
            elif op == "flush":
                raw.execute("BEGIN")
                rows.flush()
                raw.execute("COMMIT")
                kept = dict(model)
            if counted:
                assert len(rows) == len(model)
        raw.execute("BEGIN")
        rows.flush()
        raw.execute("COMMIT")
        assert dict(rows.rows()) == model


def test_a_key_never_written_is_a_miss_without_a_read() -> None:
    with closing(sqlite3.connect(":memory:", isolation_level=None)) as raw:
        create_table(raw, "t")
        db = _Counting(raw)
        rows: StoredMap[str, int] = StoredMap(db, "t", _codec(), None)
        rows.written = Written()
        rows["a"] = 1
        raw.execute("BEGIN")
        rows.flush()
        raw.execute("COMMIT")
        assert rows.get("b") is None and db.selects == 0
        assert rows["a"] == 1 and db.selects == 1


def test_row_checker_is_row_check() -> None:
    for table in ("records", "t", "id_claims"):
        check = row_checker(table)
        for key, value in ((b"", b""), (b"k" * 33, b"v"), (bytes(range(40)), b"x" * 300)):
            assert check(key, value) == row_check(table, key, value)


#: 5-byte values claiming 2**28 entries: marshal's list and tuple, msgpack's array and map headers.
_BOMBS = (b"[\x00\x00\x00\x10", b"(\x00\x00\x00\x10", b"\xdd\x10\x00\x00\x00", b"\xdf\x10\x00\x00\x00")


def _peak_of(decode: Callable[[bytes], object]) -> int:
    """The peak of memory traced while ``decode`` is given each of :data:`_BOMBS` (whatever it raises)."""
    tracemalloc.start()
    try:
        for bomb in _BOMBS:
            with contextlib.suppress(Exception):
                decode(bomb)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("table", sorted(TABLES))
def test_a_row_claiming_a_huge_container_is_refused_without_allocating_it(table: str) -> None:
    """A row's checksum is not a signature: whoever writes the index (or an audit state, whose rows use the same
    encodings) can give any value a checksum that passes. A 5-byte value claiming 2**28 entries fails to decode;
    it never allocates them (marshal did: 2.1 GB, a fourth review)."""
    assert _peak_of(TABLES[table][1][1]) < 1 << 20


def test_meta_and_snapshot_values_claiming_a_huge_container_are_damage_without_allocating_it(
        tmp_path: Path) -> None:
    db = IndexDB.open(tmp_path / "x.index", create=True)
    try:
        def meta(bomb: bytes) -> object:
            with db.transaction():
                db._put("meta", [("counts", bomb)])
            with pytest.raises(IndexDamaged):
                db.meta("counts")
            return None
        assert _peak_of(meta) < 1 << 20
    finally:
        db.close()
    assert _peak_of(lambda bomb: _pairs(bomb, 2, "test")) < 1 << 20
