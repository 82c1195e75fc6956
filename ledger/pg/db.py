"""A PostgreSQL database holding a ledger (issue 12, docs/adr/0023-postgresql-store.md): the connection, its
errors, its tables.

The database holds the log itself (table ``log``: position, record hash, payload) and, in the same transactions,
every table of the persistent index (:class:`ledger.index.db.Tables`: the replay's state, the C2SP tiles, the
registry's positions, the checkpoint trees' snapshots). psycopg 3 is an optional dependency
(``pip install 'stonetrail[postgres]'``), imported when a ``postgresql://`` URL is first opened.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ..errors import InputError, StorageError
from ..index.db import Tables, checked
from .url import is_url, redact

if TYPE_CHECKING:
    import psycopg

__all__ = ["LOCK", "PgDb", "PgTables", "connect", "is_url", "reading_connection", "redact", "release"]

#: The transaction-scoped advisory lock every write transaction takes first (one ledger per database): writers
#: are sequenced by it, so positions are assigned gap-free in commit order.
LOCK = 0x53544C47  # "STLG"


def _psycopg() -> Any:
    try:
        import psycopg
    except ImportError as exc:
        raise StorageError("a postgresql:// ledger needs psycopg 3: pip install 'psycopg[binary]' (the postgres "
                           "extra of stonetrail)", code="store.unsupported") from exc
    return psycopg


def translate(exc: Exception, url: str) -> StorageError:
    """A psycopg error as the StorageError a caller can act on, by SQLSTATE (PostgreSQL docs, appendix A):
    ``store.timeout`` (a statement or lock timeout, 57014 and 55P03), ``store.unavailable`` (no server, or the
    connection broke: no SQLSTATE, class 08; the server shutting down, starting up or ending the session: class
    57; too many connections, 53300), ``store.db`` (anything else, a full disk 53100 included).

    psycopg files most of these under OperationalError, a full disk and a lock timeout too: the class alone
    would call a full disk ``store.unavailable`` and a lock timeout neither a timeout."""
    psycopg = _psycopg()
    state = getattr(exc, "sqlstate", None) or ""
    if isinstance(exc, psycopg.errors.QueryCanceled | psycopg.errors.LockNotAvailable):
        code = "store.timeout"
    elif isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError) and (
            not state or state[:2] in ("08", "57") or state == "53300"):
        code = "store.unavailable"
    else:
        code = "store.db"
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return StorageError(f"{redact(url)}: {first}", code=code)


def connect(url: str, *, timeout_s: int = 10) -> psycopg.Connection[Any]:
    """A connection to the database at ``url`` in autocommit mode (transactions are explicit). Raises
    InputError ``input.url`` (``url`` is not a well-formed libpq URL), StorageError (``store.unavailable``,
    ``store.unsupported``: psycopg missing)."""
    psycopg = _psycopg()
    try:
        parts = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.Error as exc:
        raise InputError(f"{redact(url)} is not a PostgreSQL URL: {str(exc).strip().splitlines()[0]} (want "
                         "postgresql://USER@HOST:PORT/DATABASE)", code="input.url") from exc
    if not all(p.isdigit() for p in str(parts.get("port") or "0").split(",")):
        raise InputError(f"{redact(url)}: the port is not a number (want postgresql://USER@HOST:PORT/DATABASE)",
                         code="input.url")
    try:
        return psycopg.connect(url, autocommit=True, connect_timeout=timeout_s)  # type: ignore[no-any-return]
    except psycopg.Error as exc:
        raise translate(exc, url) from exc


#: Idle connections a process keeps per URL for its read views (:func:`reading_connection`), with the process
#: that opened them (a forked child never uses its parent's socket).
_IDLE: dict[str, list[tuple[int, Any]]] = {}
_KEPT = 4


def reading_connection(url: str) -> psycopg.Connection[Any]:
    """A connection for a read view: an idle one this process kept for ``url`` (:func:`release`), else a new one
    (:func:`connect`): a one-stone export then pays no connection set-up (~4 ms)."""
    idle = _IDLE.get(url, [])
    while idle:
        pid, conn = idle.pop()
        if pid == os.getpid() and not conn.broken:
            return conn  # type: ignore[no-any-return]
    return connect(url)


def release(conn: psycopg.Connection[Any], url: str) -> None:
    """End a read view's transaction and keep its connection for the next (at most :data:`_KEPT` a URL), or
    close it (broken, or enough kept)."""
    idle = _IDLE.setdefault(url, [])
    try:
        if not conn.broken and len(idle) < _KEPT:
            conn.rollback()
            idle.append((os.getpid(), conn))
            return
    except _psycopg().Error:
        pass
    conn.close()


class PgDb:
    """A psycopg connection taking the index's SQL (``?`` placeholders, :mod:`ledger.index.sql`); psycopg
    errors become StorageError (:func:`translate`)."""

    def __init__(self, conn: psycopg.Connection[Any], url: str) -> None:
        self.conn, self.url = conn, url

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> Any:
        with self.errors():
            return self.conn.execute(sql.replace("?", "%s"), parameters, binary=True)  # bytea as bytes, not hex

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Any:
        with self.errors(), self.conn.cursor() as cursor:
            cursor.executemany(sql.replace("?", "%s"), parameters)

    @property
    def lost(self) -> bool:
        """True if the connection broke or was closed (a new one is needed)."""
        return bool(self.conn.broken or self.conn.closed)

    def drain_notices(self) -> None:
        """Drop the ``NOTIFY`` notices received so far (:meth:`wait_notices` then waits for a later one)."""
        with self.errors():
            for _ in self.conn.notifies(timeout=0):
                pass

    def wait_notices(self, channel: str, timeout_s: float) -> list[str]:
        """The payloads of the ``NOTIFY`` notices on ``channel`` (which this connection listens to) received since
        :meth:`drain_notices`, waiting up to ``timeout_s`` seconds for the first (none: an empty list)."""
        with self.errors():
            heard = [n.payload for n in self.conn.notifies(timeout=timeout_s, stop_after=1) if n.channel == channel]
            heard += [n.payload for n in self.conn.notifies(timeout=0) if n.channel == channel]
        return heard

    @contextmanager
    def pipeline(self) -> Iterator[None]:
        """Statements executed inside are sent together and their results taken as asked for (psycopg's pipeline
        mode): one round trip for many. An error may surface only when a result is taken or the block ends:
        StorageError (:func:`translate`) either way."""
        with self.errors(), self.conn.pipeline():
            yield

    @contextmanager
    def errors(self) -> Iterator[None]:
        """Turn a psycopg error raised inside into a StorageError."""
        psycopg = _psycopg()
        try:
            yield
        except psycopg.Error as exc:
            raise translate(exc, self.url) from exc


class PgTables(Tables):
    """The index's tables in a PostgreSQL database, plus the log (table ``log``)."""

    def __init__(self, db: PgDb, *, reused: bool = False) -> None:
        super().__init__(db, redact(db.url))
        self.pg = db
        self.reused = reused  # a read view's connection: kept for the next view when closed (release)
        self._frozen: dict[tuple[str, object], bytes | None] | None = None
        self._meta: dict[object, bytes] | None = None  # the meta rows, while held (:meth:`meta_held`, frozen)

    def freeze(self) -> None:
        """Keep every row read from now on (a read-only view inside one repeatable-read transaction sees no
        change): a proof's upper tiles, shared by the proofs of one bundle, are read once; the meta rows are read
        in one query now (:meth:`_read_meta`)."""
        self._frozen = {}
        self._meta = self._read_meta() if self.has_meta() else None

    @contextmanager
    def meta_held(self) -> Iterator[None]:
        """Inside a write transaction holding the ledger's lock (no other writer sets a meta row until it ends):
        the meta rows read in one query now, then answered from memory, what the transaction sets included."""
        self._meta = self._read_meta()
        try:
            yield
        finally:
            self._meta = None

    def _read_meta(self) -> dict[object, bytes]:
        """Every meta row, each checked as :meth:`_get` checks it (IndexDamaged)."""
        return {key: checked("meta", key, value, check)
                for key, value, check in self.pg.execute("SELECT k, v, c FROM meta").fetchall()}

    def has_meta(self) -> bool:
        """True if the database has the ledger's ``meta`` table."""
        if self._meta is not None:
            return True
        return bool(self.pg.execute("SELECT to_regclass('meta') IS NOT NULL").fetchone()[0])

    def _get(self, table: str, key: object) -> bytes | None:
        if table == "meta" and self._meta is not None:  # all read at once: a name not there has no row
            return self._meta.get(key)
        if self._frozen is None:
            return super()._get(table, key)
        if (table, key) not in self._frozen:
            self._frozen[(table, key)] = super()._get(table, key)
        return self._frozen[(table, key)]

    def _put(self, table: str, rows: Iterable[tuple[object, bytes]]) -> None:
        rows = list(rows)
        super()._put(table, rows)
        if table == "meta" and self._meta is not None:
            self._meta.update((key, bytes(value)) for key, value in rows)

    def prefetch_tiles(self, leaves: Sequence[int]) -> None:
        """In a frozen view (:meth:`freeze`), read in one query the tiles an inclusion proof of each of ``leaves``
        reads (:meth:`~ledger.index.db.Tables.path_tiles`; pass the tree's last leaf too, for its right edge), each
        checked as :meth:`_get` checks it; elsewhere nothing (a writer's tiles change under it). Raises
        IndexDamaged (a row fails its checksum)."""
        if self._frozen is None or not leaves:
            return
        ids = [i for i in self.path_tiles(leaves) if ("tiles", i) not in self._frozen]
        rows = self.pg.execute("SELECT id, v, c FROM tiles WHERE id = ANY(?)", (ids,)).fetchall() if ids else []
        for key, value, check in rows:
            self._frozen[("tiles", key)] = checked("tiles", key, value, check)
        for key in ids:
            self._frozen.setdefault(("tiles", key), None)

    def create_all(self) -> None:
        """Create the log and every index table (in the caller's transaction)."""
        self.create()
        self.pg.execute("CREATE TABLE IF NOT EXISTS log (position BIGINT PRIMARY KEY, hash BYTEA NOT NULL UNIQUE, "
                        "payload BYTEA NOT NULL)")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A transaction, committed when the block ends; inside the caller's, a part of it (no savepoint: the
        caller's transaction commits or rolls back the whole)."""
        if self.pg.conn.info.transaction_status != _psycopg().pq.TransactionStatus.IDLE:
            yield
            return
        with self.pg.errors(), self.pg.conn.transaction():
            yield

    def close(self) -> None:
        if self.reused:
            release(self.pg.conn, self.pg.url)
        else:
            self.pg.conn.close()

    def payload(self, position: int) -> bytes | None:
        """The payload of record ``position``, or None."""
        row = self.pg.execute("SELECT payload FROM log WHERE position = ?", (position,)).fetchone()
        return None if row is None else bytes(row[0])

    def payloads(self, positions: Sequence[int]) -> dict[int, bytes]:
        """Position -> payload of those of ``positions`` the log holds, in one query."""
        if not positions:
            return {}
        rows = self.pg.execute("SELECT position, payload FROM log WHERE position = ANY(?)", (list(positions),))
        return {p: bytes(v) for p, v in rows.fetchall()}

    def positions_of(self, hashes: Sequence[bytes]) -> dict[bytes, int]:
        """Record hash -> position of those of ``hashes`` the log holds."""
        rows = self.pg.execute("SELECT hash, position FROM log WHERE hash = ANY(?)", (list(hashes),)).fetchall()
        return {bytes(h): p for h, p in rows}

    def add_log(self, first: int, rows: Sequence[tuple[bytes, bytes]]) -> None:
        """Insert records ``first``, ``first + 1``, ... as (record hash, payload)."""
        self.pg.executemany("INSERT INTO log (position, hash, payload) VALUES (?, ?, ?)",
                            [(first + i, h, p) for i, (h, p) in enumerate(rows)])

    def table_names(self) -> list[str]:
        """The tables of the connection's schema (``current_schema()``), sorted."""
        return [name for name, in self.pg.execute("SELECT tablename::text FROM pg_tables WHERE schemaname = "
                                                  "current_schema() ORDER BY 1").fetchall()]

    def drop_tables(self, names: Sequence[str]) -> None:
        """Drop the tables ``names`` of the connection's schema (in the caller's transaction)."""
        if names:
            sql = _psycopg().sql
            with self.pg.errors():
                self.pg.conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(
                    sql.SQL(", ").join(sql.Identifier(n) for n in names)))

    def lock(self, *, wait: bool = True) -> bool:
        """Take the ledger's write lock until the end of the transaction (:data:`LOCK`): waiting until it is
        free, or (``wait=False``) only if it is free now. True if held."""
        if wait:
            self.pg.execute("SELECT pg_advisory_xact_lock(?)", (LOCK,))
            return True
        return bool(self.pg.execute("SELECT pg_try_advisory_xact_lock(?)", (LOCK,)).fetchone()[0])
