"""A writer of a PostgreSQL ledger, one of many at once (issue 12, docs/adr/0023-postgresql-store.md "Sequencing").

Appends go through the queue of :mod:`ledger.pg.queue` (group commit): a writer queues its batch, then whichever
writer holds the ledger's write lock (:data:`ledger.pg.db.LOCK`) sequences every batch queued, in one
transaction: it brings its view up to what the others committed, checks each batch against it in queue order, and
writes the records (table ``log``) with everything derived from them (the replay's state, the C2SP tiles, the
registry). Positions are gap-free and in commit order; a batch is acknowledged only once that transaction
committed; a batch that fails a rule is refused alone; a failed transaction leaves nothing.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from ..backends import CheckpointBody, lines_of
from ..errors import RuleError, StoneTrailError, StorageError
from ..findings import raise_first
from ..index.indexed import LedgerIndex
from ..keys import NoteVerifierKey
from ..record import Record
from ..sig_findings import signature_findings
from ..storage.header import pack_header
from . import queue
from .db import PgDb, PgTables, connect, redact
from .queue import Outcome, Queued
from .store import PgIndex, check_end, require_ledger

__all__ = ["PgBackend", "drop_ledger", "ledger_tables"]

#: Longest wait for a sequencer's commit notice before looking again, in seconds (a sequencer that failed
#: sends none).
_GLANCE_S = 0.05


class PgBackend:
    """A PostgreSQL ledger held by one writer among many (a :class:`ledger.backends.Backend`)."""

    def __init__(self, tables: PgTables, authority_keys: frozenset[bytes]) -> None:
        self._tables, self._keys = tables, authority_keys
        self._origin: str = tables.meta("origin")
        self._version: Any = None
        self._index = self._load()
        self._stale = False  # after a failed write: the view may count what was not committed (see _recover)
        self._behind = False  # another writer sequenced this handle's batch: the view lacks it (see index)
        self._patience_s = _listen(tables)

    @classmethod
    def create(cls, url: str, origin: str, authority_keys: frozenset[bytes]) -> PgBackend:
        """Create a new, empty ledger for ``origin`` in the database at ``url`` (its tables, ``log``, the queue
        and the index's). Raises StorageError ``store.exists`` (the database holds a ledger already),
        ``store.unavailable``, ``store.db``."""
        pack_header(origin)  # StorageError store.bad_origin, as for a ledger file (docs/format.md §8)
        tables = PgTables(PgDb(connect(url), url))
        try:
            with tables.transaction():
                tables.lock()
                if found := tables.table_names():  # one database per ledger: never tables of another's
                    if "meta" in found and tables.has_meta() and tables.meta("origin") is not None:
                        raise StorageError(f"{redact(url)} holds a ledger already ({tables.meta('origin')})",
                                           code="store.exists")
                    more = f" and {len(found) - 3} more" if len(found) > 3 else ""
                    raise StorageError(f"{redact(url)} holds tables already ({', '.join(found[:3])}{more}): a ledger "
                                       "needs a database of its own (createdb NAME)", code="store.exists")
                tables.create_all()
                queue.create(tables)
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
                require_ledger(tables)
                tables.lock()  # the view and the log's end read together, no writer between them
                queue.create(tables)  # a ledger created before the queue existed gets it
                backend = cls(tables, authority_keys)
                check_end(backend._index)
                return backend
        except BaseException:
            tables.close()
            raise

    @property
    def origin(self) -> str:
        return self._origin

    @property
    def index(self) -> LedgerIndex:
        """This handle's view, with every batch it appended; after a failed write or a broken connection,
        reloaded first (:meth:`_recover`: StorageError ``store.unavailable`` while the server is out of reach)."""
        self._recover()
        if self._behind:
            self.refresh()
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
        if not (self._stale or self._tables.pg.lost):
            return
        self._reconnect()
        self._stale = True  # until a view is loaded
        with self._tables.transaction():
            self._tables.lock()  # the view read whole, no writer committing meanwhile
            self._index = self._load()
        self._stale = self._behind = False

    def _reconnect(self) -> None:
        """A new connection if this one broke (the view is then reloaded: :meth:`_recover`)."""
        if self._tables.pg.lost:
            url = self._tables.pg.url
            tables = PgTables(PgDb(connect(url), url))
            self._tables.close()
            self._tables, self._stale = tables, True
            self._patience_s = _listen(tables)

    def refresh(self) -> None:
        """Bring the view up to what other writers committed (or recover it: :meth:`_recover`)."""
        if self._stale or self._tables.pg.lost:
            self._recover()
            return
        with self._tables.transaction():
            self._tables.lock()  # the version and the view read together
            self._catch_up()

    def _catch_up(self) -> None:
        """Reload the view if another writer committed since it was read (its meta ``version`` moved); under
        the write lock."""
        if self._tables.meta("version") != self._version:
            self._index = self._load(self._index.registry)
        self._behind = False

    def append_batch(self, records: Sequence[Record]) -> int:
        """Append ``records`` and return the position of the first once the transaction that sequenced them
        committed: this writer's, if the write lock is free (with every batch other writers queued), else the
        lock holder's, after queueing them (module docstring). A batch the log holds already, whole and in order
        (a retry after a lost acknowledgement), is not stored again: its position is returned. A batch holding
        only some records the log holds is refused (``record.duplicate``, as the file store refuses it).

        Raises:
            RuleError: the batch breaks a rule (the first finding; nothing of it written).
            StorageError: the batch was not stored: ``store.timeout`` (it waited longer than the connection's
                ``lock_timeout`` or ``statement_timeout``), ``store.unavailable``, ``store.db``. If the
                connection broke, the batch may still be stored (the message says so): retry the same batch,
                it is stored once.
        """
        own = Queued(secrets.token_bytes(16), list(records),
                     frozenset(bytes(r.record_hash) for r in records if not signature_findings(r, 0)))  # no lock yet
        self._recover()
        self._tables.pg.drain_notices()  # notices of commits before this batch was queued tell it nothing
        settled = self._sequenced(own)
        if settled is not None:
            done = settled[own.batch]
        else:  # another writer sequences: queue the batch for it
            try:
                queue.submit(self._tables, own)
                done = self._awaited(own)
            except BaseException as exc:  # an error, or the caller interrupted: take the batch back
                done = self._rescued(own, exc)
        if done.refused is not None:
            raise done.refused
        assert done.position is not None
        return done.position

    def _awaited(self, own: Queued) -> Outcome:
        """The outcome of the queued batch ``own``: sequenced by this writer once the lock is free, else looked
        up after each notice of another sequencer's commit. Raises StorageError (``store.timeout`` past the
        connection's patience)."""
        patience = self._patience_s
        deadline = None if patience is None else time.monotonic() + patience
        while True:
            settled = self._sequenced(None, own.batch)
            if settled is not None and own.batch in settled:
                return settled[own.batch]
            if settled is None:  # another writer sequences: wait for its commit
                if deadline is not None and time.monotonic() >= deadline:
                    raise StorageError(f"{self._tables.path}: waited {(patience or 0) * 1000:.0f} ms for the "
                                       "ledger's write lock, held by another writer (the connection's lock_timeout "
                                       "or statement_timeout)", code="store.timeout")
                notices = self._tables.pg.wait_notices(queue.CHANNEL, _GLANCE_S if deadline is None else
                                                       max(0.0, min(_GLANCE_S, deadline - time.monotonic())))
                if notices and not queue.named(notices, own.batch):
                    continue  # other batches settled: the lock is free, or taken by a writer that will see this one
            done = queue.outcome(self._tables, own)  # named (a notice is a hint: the log decides), or none heard
            if done is not None:
                self._behind = True
                return done

    def _rescued(self, own: Queued, failure: BaseException) -> Outcome:
        """After ``failure``: take batch ``own`` out of the queue and raise ``failure`` (nothing stored), or, if a
        sequencer took it meanwhile, its outcome. Raises ``failure`` (a StorageError saying "may still be
        stored" if the queue cannot be reached)."""
        if not isinstance(failure, StoneTrailError):  # interrupted mid-command: a fresh connection to withdraw
            self._tables.pg.conn.close()
        try:
            self._reconnect()
            done = None if queue.withdraw(self._tables, own.batch) else queue.outcome(self._tables, own)
        except StorageError as exc:
            if not isinstance(failure, Exception):  # an interrupt stays an interrupt
                raise failure from exc
            raise StorageError(f"{failure} (the batch may still be stored: append it again, it is stored once)",
                               code=getattr(failure, "code", exc.code)) from failure
        if done is None:
            raise failure  # withdrawn (or never queued): never stored
        self._behind = True
        return done

    def _sequenced(self, own: Queued | None, mine: bytes | None = None) -> dict[bytes, Outcome] | None:
        """If the write lock is free: take it and sequence every queued batch, then ``own`` (not queued), in one
        transaction; each batch's outcome. ``mine``: this writer's batch among the queued ones (its outcome goes
        to the caller, as ``own``'s). None if another writer holds the lock. Raises StorageError (nothing of the
        transaction written; the queued batches stay queued)."""
        with self._locked(wait=False) as held:
            if not held:
                return None
            refused: list[tuple[bytes, RuleError]] = []
            batches: list[Queued] = []
            for one in [*queue.take(self._tables), *([own] if own is not None else [])]:
                if isinstance(one, Queued):
                    batches.append(one)
                else:
                    refused.append(one)
            self._index.verified = {h for b in batches for h in b.verified}  # and each record that passes, once
            placed: dict[bytes, tuple[int, bool]] = {}
            while batches:  # a refused batch is dropped, and the others placed again without it
                try:
                    placed = self._placed(batches)
                    break
                except _Refused as exc:
                    self._index.abandon()
                    refused.append((exc.batch, exc.error))
                    batches = [b for b in batches if b.batch != exc.batch]
            if any(fresh for _, fresh in placed.values()):
                self._written()
            queue.settle(self._tables, {b: first for b, (first, _) in placed.items()}, refused,
                         own.batch if own is not None else mine)
        outcomes = {batch: Outcome(position=first) for batch, (first, _) in placed.items()}
        return outcomes | {batch: Outcome(refused=error) for batch, error in refused}

    def _placed(self, batches: Sequence[Queued]) -> dict[bytes, tuple[int, bool]]:
        """Check ``batches`` in order as the next records and write them (in the caller's transaction, one round
        trip for the reads, one for the writes); each batch's first position, and False where the log or a batch
        before it held it already, whole and in order (a retry: stored once). Raises _Refused for the first
        batch that breaks a rule (the caller abandons the round's changes and drops that batch)."""
        index, placed = self._index, {}
        every = [r for b in batches for r in b.records]
        index.prefetch(every)
        held = self._tables.positions_of([bytes(r.record_hash) for r in every])
        at, fresh = index.size, []
        for one in batches:
            if (found := queue.whole_at([held.get(bytes(r.record_hash)) for r in one.records])) is not None:
                placed[one.batch] = (found, False)
                continue
            for i, record in enumerate(one.records):  # a record held already in any other batch: record.duplicate
                if findings := index.apply(at + i, record):
                    try:
                        raise_first(findings)
                    except RuleError as exc:
                        raise _Refused(one.batch, exc) from exc
            placed[one.batch] = (at, True)
            held.update((bytes(r.record_hash), at + i) for i, r in enumerate(one.records))
            fresh += one.records
            at += len(one.records)
        with self._tables.pg.pipeline():  # the writes in one round trip, not one per table
            index.commit([(r, 0, 0) for r in fresh])
        return placed

    def checkpoint_body(self, signer: NoteVerifierKey) -> CheckpointBody:
        """The checkpoint body of the whole log, read and kept (its trees' snapshot) under the lock. The database
        holds the records and their tree, written in one transaction: ``signer`` is not needed to tell them
        apart (a file's index is checked against its log: :func:`ledger.index.anchor.check_tree`)."""
        with self._locked(wait=True):
            body = lines_of(self._index)
            self._written()
        return body

    def signed(self, sign: Callable[[str], str]) -> None:
        """Nothing to keep: the next checkpoint body is read from the database as this one was."""

    @contextmanager
    def _locked(self, *, wait: bool) -> Iterator[bool]:
        """One write transaction under the ledger's lock (``wait``: until it is free; else only if it is free now:
        yields whether it is held), on a view refreshed inside it. The lock is the transaction's: it never
        outlives it. If it raises,
        whatever was applied in memory was not committed (or, the connection broken at COMMIT, may not have
        been): the view is reloaded before it is used again, reconnecting if need be (:meth:`_recover`;
        reloading here would go through the broken connection, fail, and leave the view counting the batch)."""
        self._recover()
        try:
            with self._tables.transaction():
                if not self._tables.lock(wait=wait):
                    yield False
                    return
                with self._tables.meta_held():  # no other writer sets meta until this commits
                    self._catch_up()
                    yield True
        except BaseException as exc:
            self._stale = True
            if not isinstance(exc, StoneTrailError):  # interrupted mid-command: the connection's state is unknown,
                self._tables.pg.conn.close()  # so it goes, with its transaction and lock (the next use reconnects)
            raise

    def _written(self) -> None:
        """Tell the other writers' views that this transaction changed the ledger (meta ``version``)."""
        self._version = (self._version or 0) + 1
        self._tables.set_meta(version=self._version)

    def close(self) -> None:
        """Close the connection."""
        self._tables.close()


class _Refused(Exception):
    """Batch ``batch`` of a sequencing round breaks a rule (``error``)."""

    def __init__(self, batch: bytes, error: RuleError) -> None:
        super().__init__(str(error))
        self.batch, self.error = batch, error


def _listen(tables: PgTables) -> float | None:
    """Listen for sequencers' commit notices on ``tables``' connection (:data:`ledger.pg.queue.CHANNEL`); return
    how long a writer may wait for the write lock there, in seconds: the connection's ``lock_timeout`` or
    ``statement_timeout`` (the shorter set; None: neither is)."""
    tables.pg.execute(f"LISTEN {queue.CHANNEL}")
    settings = tables.pg.execute("SELECT setting::bigint FROM pg_settings WHERE name IN ('lock_timeout', "
                                 "'statement_timeout')").fetchall()
    waits = [int(ms) for ms, in settings if int(ms) > 0]
    return min(waits) / 1000 if waits else None


def drop_ledger(url: str, names: Sequence[str]) -> None:
    """Drop the tables ``names`` of the ledger at ``url`` (those :meth:`PgBackend.create` made: a copy into the
    database that failed leaves it as it was), under the write lock. Raises StorageError."""
    tables = PgTables(PgDb(connect(url), url))
    try:
        with tables.transaction():
            tables.lock()
            tables.drop_tables(names)
    finally:
        tables.close()


def ledger_tables(url: str) -> list[str]:
    """The tables of the database at ``url`` (right after :meth:`PgBackend.create`: the ledger's)."""
    tables = PgTables(PgDb(connect(url), url))
    try:
        return tables.table_names()
    finally:
        tables.close()
