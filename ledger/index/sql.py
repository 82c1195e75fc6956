"""The SQL the index's tables are written in, for the two databases that hold them: SQLite (the index beside a
ledger file, :mod:`ledger.index.db`) and PostgreSQL (the database store, :mod:`ledger.pg`).

Queries use the subset both understand (``?`` placeholders, ``INSERT ... ON CONFLICT``, subqueries named with
``AS``); a PostgreSQL connection is wrapped so that it takes them (:class:`Db`). Only table definitions differ
(:func:`table`): SQLite's ``BLOB`` and ``WITHOUT ROWID`` tables, PostgreSQL's ``BYTEA`` and ``BIGINT``. Both
order ``BLOB`` / ``BYTEA`` keys byte by byte, the order the checkpoint's trees need.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any, Protocol

__all__ = ["Db", "table", "upsert"]


class Db(Protocol):
    """A database connection as the index's tables use it: :class:`sqlite3.Connection` as it is, or a
    PostgreSQL connection wrapped by :class:`ledger.pg.db.PgDb`."""

    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Any: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Any: ...


def table(db: Db, name: str, columns: str) -> None:
    """Create table ``name`` if it does not exist. ``columns`` is written with ``BLOB`` and ``INTEGER`` (64-bit) as
    SQLite reads them; for PostgreSQL they become ``BYTEA`` and ``BIGINT``. SQLite tables with a primary key are
    ``WITHOUT ROWID`` (the key is the row's place)."""
    if isinstance(db, sqlite3.Connection):
        db.execute(f"CREATE TABLE IF NOT EXISTS {name} ({columns})" +
                   (" WITHOUT ROWID" if "PRIMARY KEY (" in columns else ""))
    else:
        columns = columns.replace("BLOB", "BYTEA").replace("INTEGER", "BIGINT")
        db.execute(f"CREATE TABLE IF NOT EXISTS {name} ({columns})")


def upsert(name: str, keys: Sequence[str], values: Sequence[str]) -> str:
    """``INSERT`` of one row of table ``name`` (columns ``keys`` then ``values``) that replaces the values of a row
    with the same key."""
    columns = [*keys, *values]
    return (f"INSERT INTO {name} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) "
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {', '.join(f'{v} = excluded.{v}' for v in values)}")
