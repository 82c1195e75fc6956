"""The index's ``records`` table (ledger.index.state.RecordRows): three dictionaries of the replay keyed by record
hash (signers, time, the items a record is of) kept in one row per record. Each field must read and write as its
own dictionary would — across flushes, a reopen of the table and abandoned changes — or the index would hold
something a replay of the log does not (docs/adr/0018-sqlite-index.md)."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.hashing import Digest
from ledger.index.maps import Codec, create_table
from ledger.index.state import TABLES, RecordRows

KEYS = [Digest(bytes([i]) * 32) for i in range(4)]
VALUES: list[list[Any]] = [[frozenset({"trader-b"}), frozenset({"lab-d", "trader-b"})], [1_700_000_000_000, 7],
                           [("S1",), ("S1", "S2")]]
FIELD, KEY = st.integers(0, 2), st.integers(0, len(KEYS) - 1)
STEPS = st.lists(st.one_of(st.tuples(st.just("set"), FIELD, KEY, st.integers(0, 1)),
                           st.tuples(st.just("del"), FIELD, KEY), st.tuples(st.just("get"), FIELD, KEY),
                           st.tuples(st.sampled_from(["flush", "forget", "reopen"]))), max_size=40)


def _rows(db: sqlite3.Connection) -> RecordRows:
    (key, unkey), (value, unvalue) = TABLES["records"]
    return RecordRows(db, Codec(key, unkey, value, unvalue))


def _flush(db: sqlite3.Connection, rows: RecordRows) -> None:
    db.execute("BEGIN IMMEDIATE")
    rows.flush()
    db.execute("COMMIT")


@settings(max_examples=300, deadline=None)
@given(STEPS)
def test_each_field_of_a_records_row_behaves_as_its_own_dictionary(steps: list[tuple[Any, ...]]) -> None:
    with closing(sqlite3.connect(":memory:", isolation_level=None)) as db:
        create_table(db, "records")
        rows = _rows(db)
        model: list[dict[Digest, Any]] = [{}, {}, {}]
        kept = [dict(m) for m in model]  # what the table holds after the last flush
        for step in steps:
            fields = [rows.field(i) for i in range(3)]
            if step[0] == "set":
                fields[step[1]][KEYS[step[2]]] = model[step[1]][KEYS[step[2]]] = VALUES[step[1]][step[3]]
            elif step[0] == "del" and KEYS[step[2]] in model[step[1]]:
                del fields[step[1]][KEYS[step[2]]], model[step[1]][KEYS[step[2]]]
            elif step[0] == "get":
                assert fields[step[1]].get(KEYS[step[2]]) == model[step[1]].get(KEYS[step[2]])
                assert (KEYS[step[2]] in fields[step[1]]) == (KEYS[step[2]] in model[step[1]])
            elif step[0] == "forget":  # a batch abandoned: back to what the table holds
                rows.forget()
                model = [dict(m) for m in kept]
            elif step[0] in ("flush", "reopen"):
                _flush(db, rows)
                kept = [dict(m) for m in model]
                rows = _rows(db) if step[0] == "reopen" else rows
        for i in range(3):
            assert dict(rows.field(i).items()) == model[i]
        assert db.execute("SELECT count(*) FROM records").fetchone()[0] == len(set().union(*model))
