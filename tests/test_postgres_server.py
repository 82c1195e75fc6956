"""The PostgreSQL server of the tests behaves as the PostgreSQL store (issue 12) will rely on.

Through psycopg 3 and the `postgres_url` fixture (tests/conftest.py): another connection sees a transaction's rows
once it committed and never before (READ COMMITTED, PostgreSQL docs §13.2.1); a second row at a taken position is
refused with a typed error (SQLSTATE 23505) that leaves the transaction aborted until rolled back; a writer that
would take a position another transaction holds waits for it (a lock timeout bounds the wait, SQLSTATE 55P03);
two SERIALIZABLE transactions that each decide from what the other changes cannot both commit (SQLSTATE 40001,
docs §13.2.3); and every test has a fresh, empty database of its own.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (pip install -e '.[postgres]')")

pytestmark = pytest.mark.postgres

_RECORDS = "CREATE TABLE records (position bigint PRIMARY KEY, item text NOT NULL, body bytea NOT NULL)"


def _positions(connection: psycopg.Connection[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return connection.execute("SELECT position, item, body FROM records ORDER BY position").fetchall()


def test_another_connection_sees_committed_rows_and_never_uncommitted_ones(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as writer, psycopg.connect(postgres_url, autocommit=True) as reader:
        writer.execute(_RECORDS)
        writer.commit()
        writer.execute("INSERT INTO records VALUES (0, 'R-1', %s)", (b"mined",))
        assert _positions(reader) == []
        writer.commit()
        assert _positions(reader) == [(0, "R-1", b"mined")]
        writer.execute("INSERT INTO records VALUES (1, 'R-1', %s)", (b"sold",))
        assert _positions(reader) == [(0, "R-1", b"mined")]
        writer.rollback()
        assert _positions(reader) == [(0, "R-1", b"mined")]
        assert _positions(writer) == [(0, "R-1", b"mined")]


def test_a_taken_position_is_refused_with_a_typed_error_and_the_transaction_is_rolled_back(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as connection:
        connection.execute(_RECORDS)
        connection.execute("INSERT INTO records VALUES (0, 'R-1', %s)", (b"mined",))
        connection.commit()
        with pytest.raises(psycopg.errors.UniqueViolation) as refused:
            connection.execute("INSERT INTO records VALUES (0, 'R-2', %s)", (b"mined",))
        assert isinstance(refused.value, psycopg.IntegrityError)
        assert refused.value.sqlstate == "23505"
        assert refused.value.diag.constraint_name == "records_pkey"
        with pytest.raises(psycopg.errors.InFailedSqlTransaction):
            connection.execute("SELECT 1")
        connection.rollback()
        assert _positions(connection) == [(0, "R-1", b"mined")]


def test_a_writer_waits_for_a_position_another_transaction_holds_then_is_refused(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as first, psycopg.connect(postgres_url) as second:
        first.execute(_RECORDS)
        first.commit()
        first.execute("INSERT INTO records VALUES (0, 'R-1', %s)", (b"mined",))
        second.execute("SET lock_timeout = '200ms'")
        with pytest.raises(psycopg.errors.LockNotAvailable) as waited:
            second.execute("INSERT INTO records VALUES (0, 'R-2', %s)", (b"mined",))
        assert waited.value.sqlstate == "55P03"
        second.rollback()
        first.commit()
        with pytest.raises(psycopg.errors.UniqueViolation):
            second.execute("INSERT INTO records VALUES (0, 'R-2', %s)", (b"mined",))
        second.rollback()
        assert _positions(second) == [(0, "R-1", b"mined")]


def test_serializable_transactions_deciding_from_each_others_writes_cannot_both_commit(postgres_url: str) -> None:
    with psycopg.connect(postgres_url) as first, psycopg.connect(postgres_url) as second:
        first.execute(_RECORDS)
        first.commit()
        for connection in (first, second):
            connection.isolation_level = psycopg.IsolationLevel.SERIALIZABLE
        # Each finds no record of one item and writes one about the other: each decision rests on a read that the
        # other's write changes (a write skew), so one of them must fail.
        next_first = first.execute("SELECT count(*) FROM records WHERE item = 'R-1'").fetchone()
        next_second = second.execute("SELECT count(*) FROM records WHERE item = 'R-2'").fetchone()
        assert next_first == next_second == (0,)
        first.execute("INSERT INTO records VALUES (0, 'R-2', %s)", (b"first",))
        with pytest.raises(psycopg.errors.SerializationFailure) as conflict:
            second.execute("INSERT INTO records VALUES (1, 'R-1', %s)", (b"second",))
            first.commit()
            second.commit()
        assert conflict.value.sqlstate == "40001"
        second.rollback()
        first.commit()
        assert _positions(second) == [(0, "R-2", b"first")]


@pytest.mark.parametrize("run", [1, 2])
def test_each_test_has_a_fresh_empty_database_dropped_after_it(
    postgres_url: str, postgres_server: str, run: int
) -> None:
    name = urlsplit(postgres_url).path.removeprefix("/")
    assert name != urlsplit(postgres_server).path.removeprefix("/")
    session_prefix = name.rsplit("_", 1)[0] + "_"
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        assert connection.execute("SELECT current_database()").fetchone() == (name,)
        tables = "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        assert connection.execute(tables).fetchone() == (0,)
        connection.execute("CREATE TABLE left_by_a_test (run int)")  # the other run would see it in a shared database
        connection.execute("INSERT INTO left_by_a_test VALUES (%s)", (run,))
        session_databases = "SELECT datname FROM pg_database WHERE starts_with(datname, %s)"
        assert connection.execute(session_databases, (session_prefix,)).fetchall() == [(name,)]
