"""A ledger in a PostgreSQL database, for many writers at once (issue 12, docs/adr/0023-postgresql-store.md).

Every write is one transaction that first takes the ledger's advisory lock (:data:`ledger.pg.db.LOCK`), brings
this handle's view up to what other writers committed, checks the batch against it, and writes the records (table
``log``) with everything derived from them (the replay's state, the C2SP tiles, the registry) before it commits:
positions are gap-free and in commit order, a record is acknowledged only once committed, and a failed
transaction leaves nothing. The index's code is the file store's (:class:`~ledger.index.indexed.LedgerIndex`)
over the same tables, so both stores give the same state, roots and checkpoints for the same records.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..backends import CheckpointBody, lines_of
from ..custody import signature_findings
from ..errors import InputError, StorageError
from ..findings import Finding, raise_first
from ..identity import claims_of, sort_key
from ..index.db import SCHEMA
from ..index.indexed import CHECKED, LedgerIndex
from ..index.maps import IndexDamaged
from ..index.reading import IndexedLog
from ..index.snapshot import HEADS, IDENTITIES
from ..merkle import leaf_hash
from ..record import Record
from ..storage import FileStore
from ..storage.framing import pack_header
from ..storage.tiles import TiledTree
from .db import PgDb, PgTables, connect, is_url, reading_connection, redact

__all__ = ["PgBackend", "PgIndex", "as_file", "dump", "payloads", "pg_view"]

_DUMPED = 4096  # records read and written at a time by :func:`dump`


class PgIndex(LedgerIndex):
    """The replayed state of the records in a PostgreSQL ledger, kept in its tables."""

    def __init__(self, tables: PgTables, authority_keys: frozenset[bytes] | None, *,
                 known: Sequence[tuple[int, Record]] = ()) -> None:
        self.tables = tables
        super().__init__(tables, None, authority_keys, known=known)
        self.verified: set[bytes] = set()  # record hashes whose signatures all verified (before the lock)
        self.state.signatures = self._signatures

    def _signatures(self, record: Record, position: int) -> list[Finding]:
        """The ``sig.*`` findings of ``record``: none for one checked before the write lock was taken
        (:meth:`PgBackend.append_batch`), else :func:`~ledger.custody.signature_findings`."""
        return [] if bytes(record.record_hash) in self.verified else signature_findings(record, position)

    def payload(self, position: int) -> bytes:
        """The payload of record ``position``, checked against its leaf hash. Raises IndexDamaged."""
        payload = self.tables.payload(position)
        if payload is None or leaf_hash(payload) != self.tree.leaf_hash(position):
            raise IndexDamaged(f"record {position} of {self.tables.path} is not the one its tiles hold")
        return payload

    def prefetch(self, records: Sequence[Record]) -> None:
        """Read the rows checking and applying ``records`` looks up (their items, bodies and identity claims): one
        query per table, all sent in one round trip, so that a batch costs a few round trips, not a few per
        record."""
        ids = {i for r in records for i, _ in r.body.inputs} | {o.id for r in records for o in r.body.outputs}
        claims = {(kind, key) for r in records for kind, key, _ in claims_of(r)}
        changed = {bytes([HEADS]) + i.encode() for i in ids} | {bytes([IDENTITIES]) + sort_key(*c) for c in claims}
        with self.tables.pg.pipeline():  # every table's query sent before any result is taken: one round trip
            taken = [self.table(table).send_prefetch(keys) for table, keys in (
                ("items", ids), ("bodies", {r.body_hash for r in records}), ("head_positions", ids),
                ("head_latest", ids), ("id_claims", claims), ("id_holder", claims), ("id_standing", ids),
                ("id_frozen", ids), ("changed", changed))]
            for take in taken:
                take()

    def payloads(self, positions: Sequence[int]) -> dict[int, bytes]:
        """Position -> payload of each of ``positions``, each checked against its leaf hash, in two queries: the
        tiles on their paths to the root (:meth:`PgTables.prefetch_tiles`: what their leaf hashes and inclusion
        proofs read, in a read view), then the records. Raises IndexDamaged."""
        self.tables.prefetch_tiles([*positions, self.size - 1] if positions else ())
        found = self.tables.payloads(positions)
        for position in positions:
            payload = found.get(position)
            if payload is None or leaf_hash(payload) != self.tree.leaf_hash(position):
                raise IndexDamaged(f"record {position} of {self.tables.path} is not the one its tiles hold")
        return found

    def _add_records(self, first: int, records: Sequence[tuple[Record, int, int]]) -> None:
        self.tables.add_log(first, [(bytes(r.record_hash), r.raw) for r, _, _ in records])


class PgBackend:
    """A PostgreSQL ledger held by one writer among many (a :class:`ledger.backends.Backend`)."""

    def __init__(self, tables: PgTables, authority_keys: frozenset[bytes]) -> None:
        self._tables, self._keys = tables, authority_keys
        self._origin: str = tables.meta("origin")
        self._version: Any = None
        self._index = self._load()
        self._stale = False  # after a failed write: the view may count what was not committed (see _recover)

    @classmethod
    def create(cls, url: str, origin: str, authority_keys: frozenset[bytes]) -> PgBackend:
        """Create a new, empty ledger for ``origin`` in the database at ``url`` (its tables, ``log`` and the
        index's). Raises StorageError ``store.exists`` (the database holds a ledger already),
        ``store.unavailable``, ``store.db``."""
        pack_header(origin)  # StorageError store.bad_origin, as for a ledger file (docs/format.md §8)
        tables = PgTables(PgDb(connect(url), url))
        try:
            with tables.transaction():
                tables.lock()
                tables.create_all()
                if tables.meta("origin") is not None:
                    raise StorageError(f"{redact(url)} holds a ledger already ({tables.meta('origin')})",
                                       code="store.exists")
                tables.set_meta(origin=origin, size=0, end=0, counts={}, version=0)
            return cls(tables, authority_keys)
        except BaseException:
            tables.close()
            raise

    @classmethod
    def open(cls, url: str, authority_keys: frozenset[bytes]) -> PgBackend:
        """Open the ledger in the database at ``url``. Raises InputError ``store.not_a_ledger`` (no ledger there,
        or one of another schema: copy it into a new database with ``stonetrail copy``), StorageError
        ``store.unavailable``."""
        tables = PgTables(PgDb(connect(url), url))
        try:
            with tables.transaction():
                _check_ledger(tables)
                tables.lock()  # the view and the log's end read together, no writer between them
                backend = cls(tables, authority_keys)
                _check_end(backend._index)
                return backend
        except BaseException:
            tables.close()
            raise

    @property
    def origin(self) -> str:
        return self._origin

    @property
    def index(self) -> LedgerIndex:
        """This handle's view; after a failed write or a broken connection, reloaded first (:meth:`_recover`:
        StorageError ``store.unavailable`` while the server is out of reach)."""
        self._recover()
        return self._index

    def _load(self, known: Sequence[tuple[int, Record]] = ()) -> PgIndex:
        """A fresh view of the committed ledger (inside or outside a transaction); ``known``: registry records
        an earlier view checked (not read nor checked again)."""
        self._version = self._tables.meta("version")
        return PgIndex(self._tables, self._keys, known=known)

    def _recover(self) -> None:
        """After a failed write or a broken connection, a fresh view, on a new connection if the old one broke;
        else nothing. The handle thus goes on after a dropped connection or a server restart (the next use
        reconnects) and never answers from a view counting a batch whose transaction failed: it may have been
        applied in memory, and if the connection broke at COMMIT, it may or may not have committed (a retry
        of the batch then finds it: stored once). Raises StorageError (``store.unavailable``: the server is
        still out of reach; the next use tries again)."""
        if not (self._stale or self._tables.pg.conn.broken):
            return
        if self._tables.pg.conn.broken:
            url = self._tables.pg.url
            tables = PgTables(PgDb(connect(url), url))
            self._tables.close()
            self._tables = tables
        self._stale = True  # until a view is loaded
        with self._tables.transaction():
            self._index = self._load()
        self._stale = False

    def refresh(self) -> None:
        """Reload the view if another writer committed since it was read (its meta ``version`` moved), or if it
        must be recovered (:meth:`_recover`)."""
        if self._stale or self._tables.pg.conn.broken:
            self._recover()
        elif self._tables.meta("version") != self._version:
            self._index = self._load(self._index.registry)

    def append_batch(self, records: Sequence[Record]) -> int:
        """Check and append ``records`` in one transaction under the ledger's lock; return the position of the
        first. A batch the log holds already, whole and in order (a retry after a lost acknowledgement), is not
        stored again: its position is returned. A batch holding only some records the log holds is refused
        (``record.duplicate``, as the file store refuses it). Raises RuleError (nothing written), StorageError (the
        transaction did not commit: nothing written; but ``store.unavailable`` raised as the connection broke at
        COMMIT may come after the server committed: retry the same batch, it is stored once)."""
        verified = {bytes(r.record_hash) for r in records if not signature_findings(r, 0)}  # no lock held yet
        with self._locked():
            self._index.verified = verified
            self._index.prefetch(records)
            known = self._tables.positions_of([bytes(r.record_hash) for r in records])
            at = [known.get(bytes(r.record_hash)) for r in records]
            if at[0] is not None and at == list(range(at[0], at[0] + len(records))):
                return at[0]  # a retry of a batch the log holds whole, in order: stored once
            first = self._index.size  # a record held already in any other batch: record.duplicate
            for i, record in enumerate(records):
                if findings := self._index.apply(first + i, record):
                    raise_first(findings)
            with self._tables.pg.pipeline():  # the writes in one round trip, not one per table
                self._index.commit([(r, 0, 0) for r in records])
                self._written()
        return first

    def checkpoint_body(self) -> CheckpointBody:
        """The checkpoint body of the whole log, read and kept (its trees' snapshot) under the lock."""
        with self._locked():
            body = lines_of(self._index)
            self._written()
        return body

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """One write transaction under the ledger's lock, on a view refreshed inside it. If it raises, whatever
        was applied in memory was not committed (or, the connection broken at COMMIT, may not have been): the
        view is reloaded before it is used again, reconnecting if need be (:meth:`_recover`; reloading here would
        go through the broken connection, fail, and leave the view counting the batch)."""
        self._recover()
        try:
            with self._tables.transaction():
                self._tables.lock()
                with self._tables.meta_held():  # no other writer sets meta until this commits
                    self.refresh()
                    yield
        except BaseException:
            self._stale = True
            raise

    def _written(self) -> None:
        """Tell the other writers' views that this transaction changed the ledger (meta ``version``)."""
        self._version = (self._version or 0) + 1
        self._tables.set_meta(version=self._version)

    def close(self) -> None:
        """Close the connection."""
        self._tables.close()


def _reading(url: str) -> PgTables:
    """The tables of the ledger at ``url`` in one repeatable-read, read-only transaction (one consistent view
    while writers go on), rows kept as read. Raises InputError ``store.not_a_ledger``, StorageError."""
    tables = PgTables(PgDb(reading_connection(url), url), reused=True)
    try:
        tables.pg.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        tables.freeze()
        _check_ledger(tables)
        return tables
    except BaseException:
        tables.close()
        raise


def _check_ledger(tables: PgTables) -> None:
    """Raise InputError ``store.not_a_ledger`` unless ``tables`` hold a StoneTrail ledger of this schema."""
    schema = tables.meta("schema") if tables.has_meta() else None
    if schema != SCHEMA or tables.meta("origin") is None:
        raise InputError(f"{tables.path} holds no StoneTrail ledger of schema {SCHEMA} (found {schema!r}); create one "
                         "with `stonetrail init` (or copy one in with `stonetrail copy`)", code="store.not_a_ledger")


def _check_end(index: PgIndex) -> None:
    """The log's last :data:`~ledger.index.indexed.CHECKED` records are where the tables say, with the leaf
    hashes the tiles hold, and the log ends there (a row deleted or changed behind the library's back is damage,
    never signed or exported). Raises IndexDamaged."""
    tail = range(max(0, index.size - CHECKED), index.size)
    found = index.tables.payloads(tail)
    if any((payload := found.get(p)) is None or leaf_hash(payload) != index.tree.leaf_hash(p) for p in tail):
        raise IndexDamaged(f"{index.tables.path}: a record of the log's end is not the one its tiles hold")
    last = index.tables.pg.execute("SELECT max(position) FROM log").fetchone()[0]
    if (last if last is not None else -1) != index.size - 1:
        raise IndexDamaged(f"{index.tables.path}: the log ends at record {last}, its tables count {index.size}")


def pg_view(url: str, at: int | None = None) -> IndexedLog:
    """The ledger in the database at ``url`` as a read side (:class:`~ledger.index.reading.IndexedLog`) at tree
    size ``at`` (None: all of it), in one repeatable-read transaction (:func:`_reading`); close it after use.
    Raises InputError ``store.not_a_ledger``, ``input.range`` (``at`` beyond the ledger's size), IndexDamaged
    (the log's end is not what the tables hold: :func:`_check_end`), KeyError (no trees kept at ``at``: read a
    :func:`dump` instead), StorageError (``store.unavailable``...)."""
    tables = _reading(url)
    try:
        index = PgIndex(tables, None)
        _check_end(index)
        if at is not None and not 0 < at <= index.size:
            raise InputError(f"tree size {at}: {tables.path} holds {index.size} records", code="input.range")
        return IndexedLog(index, index.size if at is None else at, index.size)
    except BaseException:
        tables.close()
        raise


def payloads(url: str) -> tuple[str, int, Iterator[bytes]]:
    """(origin, records, payloads) of the ledger at ``url`` as committed now (:func:`_reading`): every position
    from 0 on, each payload checked against the leaf hash the tiles hold, read :data:`_DUMPED` at a time; the
    iterator closes the connection when exhausted or closed. Raises as :func:`_reading`; the iterator raises
    IndexDamaged for a missing row or one whose bytes are not the tiles' leaf (never a shorter or altered copy)."""
    tables = _reading(url)
    origin, size = tables.meta("origin"), tables.meta("size") or 0

    def read() -> Iterator[bytes]:
        try:
            tree = TiledTree(tables, size)
            for start in range(0, size, _DUMPED):
                found = tables.payloads(range(start, min(size, start + _DUMPED)))
                for position in range(start, min(size, start + _DUMPED)):
                    payload = found.get(position)
                    if payload is None or leaf_hash(payload) != tree.leaf_hash(position):
                        raise IndexDamaged(f"{tables.path}: record {position} is missing from the log or is not "
                                           "the one its tiles hold")
                    yield payload
        finally:
            tables.close()

    return origin, int(size), read()


def dump(url: str, path: str | Path) -> int:
    """Write the records of the ledger in the database at ``url`` (as committed when it starts) to a new ledger
    file at ``path``, byte for byte, each checked against its leaf hash but not replayed (:func:`payloads`), for
    the readers that replay a whole ledger from a file (an audit, a verified history:
    docs/adr/0023-postgresql-store.md); return the number of records. The file is written under a temporary
    name and renamed once whole. Raises as :func:`payloads`, StorageError ``store.exists``."""
    target = Path(path)
    if target.exists():
        raise StorageError(f"{target} exists; it is never overwritten", code="store.exists")
    origin, size, rows = payloads(url)
    partial = target.with_name(f"{target.name}.{secrets.token_hex(4)}.partial")  # a name nobody else uses
    try:
        with FileStore.create(partial, origin) as store:
            batch: list[bytes] = []
            for payload in rows:
                batch.append(payload)
                if len(batch) == _DUMPED:
                    store.append_batch(batch)
                    batch = []
            if batch:
                store.append_batch(batch)
        partial.rename(target)
        return size
    finally:
        partial.unlink(missing_ok=True)
        if isinstance(rows, Generator):
            rows.close()


@contextmanager
def as_file(location: str | Path) -> Iterator[Path]:
    """``location`` as a ledger file: itself, or for a database ledger (a ``postgresql://`` URL) a :func:`dump`
    of its records as committed now into a temporary folder, removed when the block ends. The readers that
    replay or hash a whole ledger (an audit, a verified history, a consistency proof) read a file: a dump reads
    the database once, in order, where a replay through the tables would read it a record at a time
    (docs/adr/0023-postgresql-store.md). Raises as :func:`dump`."""
    if not is_url(location):
        yield Path(location)
        return
    with tempfile.TemporaryDirectory(prefix="stonetrail-") as folder:
        path = Path(folder) / "ledger"
        dump(str(location), path)
        yield path
