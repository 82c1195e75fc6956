"""A ledger in a PostgreSQL database (issue 12, docs/adr/0023-postgresql-store.md): its replayed state in tables
and the read side over them.

:class:`PgIndex` is the file store's :class:`~ledger.index.indexed.LedgerIndex` over the same tables, with the
log in table ``log``, so both stores give the same state, roots and checkpoints for the same records.
:func:`pg_view` answers readers (export, show, checkpoint) from one repeatable-read transaction, asking for rows
in sets (a round trip costs what a page read does not); :func:`payloads`, :func:`dump` and :func:`as_file` give
the records in order, each checked against its leaf hash, to the readers of a whole ledger. The writer, many at
once, is :mod:`ledger.pg.writer`.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ..errors import InputError, StorageError
from ..findings import Finding
from ..identity import claims_of, sort_key
from ..index.db import SCHEMA
from ..index.indexed import CHECKED, LedgerIndex
from ..index.maps import IndexDamaged
from ..index.reading import IndexedLog
from ..index.snapshot import HEADS, IDENTITIES
from ..merkle import leaf_hash
from ..record import Record
from ..sig_findings import signature_findings
from ..storage import FileStore
from ..storage.tiles import TiledTree
from .db import PgDb, PgTables, is_url, reading_connection

__all__ = ["PgIndex", "as_file", "check_end", "dump", "payloads", "pg_view", "require_ledger"]

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
        """The ``sig.*`` findings of ``record``: none for one checked already (before the write lock was taken,
        :meth:`ledger.pg.writer.PgBackend.append_batch`, or earlier in this round: :attr:`verified`), else
        :func:`~ledger.sig_findings.signature_findings`."""
        if bytes(record.record_hash) in self.verified:
            return []
        findings = signature_findings(record, position)
        if not findings:
            self.verified.add(bytes(record.record_hash))
        return findings

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


def _reading(url: str) -> PgTables:
    """The tables of the ledger at ``url`` in one repeatable-read, read-only transaction (one consistent view
    while writers go on), rows kept as read. Raises InputError ``store.not_a_ledger``, StorageError."""
    tables = PgTables(PgDb(reading_connection(url), url), reused=True)
    try:
        tables.pg.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        tables.freeze()
        require_ledger(tables)
        return tables
    except BaseException:
        tables.close()
        raise


def require_ledger(tables: PgTables) -> None:
    """Raise InputError ``store.not_a_ledger`` unless ``tables`` hold a StoneTrail ledger of this schema."""
    try:
        schema = tables.meta("schema") if tables.has_meta() else None
        origin = None if schema is None else tables.meta("origin")
    except IndexDamaged:  # schema 8 and before encoded meta values with marshal, which this does not read
        schema, origin = "8 or older", ""
    if schema is None or origin is None:
        raise InputError(f"{tables.path} holds no StoneTrail ledger; create one with `stonetrail init` (or copy one "
                         "in with `stonetrail copy`)", code="store.not_a_ledger")
    if schema != SCHEMA:
        raise InputError(f"{tables.path} holds a StoneTrail ledger of schema {schema}, this version reads schema "
                         f"{SCHEMA}: copy it into a new database with the version that wrote it (`stonetrail "
                         "copy`)", code="store.not_a_ledger")


def check_end(index: PgIndex) -> None:
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
    (the log's end is not what the tables hold: :func:`check_end`), KeyError (no trees kept at ``at``: read a
    :func:`dump` instead), StorageError (``store.unavailable``...)."""
    tables = _reading(url)
    try:
        index = PgIndex(tables, None)
        check_end(index)
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
