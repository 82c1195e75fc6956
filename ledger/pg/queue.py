"""The queue of batches waiting for the ledger's sequencer: group commit for many writers (issue 12,
docs/adr/0023-postgresql-store.md "Sequencing").

A writer does not wait for the write lock to append its own batch. It puts the batch in table ``pending`` (one
short transaction of its own) and then either takes the lock, if free, and sequences *every* batch waiting —
its own and the other writers' — in one transaction, or, while another writer holds the lock, waits for that
writer's commit (``NOTIFY``, :data:`CHANNEL`) and looks whether its batch was sequenced. So the serial part (the
checks against the state, the writes) is paid once for all the batches that arrived meanwhile, not once per
batch; each batch is still checked alone, in the order it was queued, and refused alone (table ``refused``)
without touching the others.

A batch is acknowledged only once the transaction that sequenced it committed: its rows have left ``pending``
and its records are in ``log``, or a row in ``refused`` says why not. A writer that gives up (an error, a timeout)
withdraws its rows first; if they are gone, a sequencer took them and the writer reads the outcome instead of
reporting a failure. A writer that dies leaves its rows queued: the next sequencer stores them (unacknowledged,
as when a connection breaks at COMMIT; a retry of the batch finds its records, stored once).

This module holds the SQL; :class:`ledger.pg.writer.PgBackend` runs the loop.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import RuleError, StoneTrailError, StorageError
from ..findings import Finding
from ..record import Record
from .db import PgTables

__all__ = ["CHANNEL", "ROUND", "Outcome", "Queued", "create", "named", "outcome", "settle", "submit", "take",
           "whole_at", "withdraw"]

#: Batches one sequencing round takes from the queue at most: a round re-checks the batches before each one it
#: refuses, so its cost is bounded even when many queued batches break rules.
ROUND = 128

#: The channel a sequencer notifies when it commits (``NOTIFY``): the writers waiting on it look again.
CHANNEL = "stonetrail_sequenced"

_NAMED = 150  # batches named in one notice (each 34 to 54 bytes)
_TABLES = ("CREATE TABLE IF NOT EXISTS pending (seq BIGSERIAL PRIMARY KEY, batch BYTEA NOT NULL, "
           "n INTEGER NOT NULL, total INTEGER NOT NULL, payload BYTEA NOT NULL)",
           "CREATE INDEX IF NOT EXISTS pending_batch ON pending (batch)",
           "CREATE TABLE IF NOT EXISTS refused (batch BYTEA PRIMARY KEY, code TEXT NOT NULL, message TEXT NOT NULL, "
           "finding TEXT)")


@dataclass(frozen=True, slots=True)
class Queued:
    """A batch: its id, its records in order, and the hashes of those whose signatures this process verified
    (none for a batch taken from the queue: the sequencer checks them, trusting no row it did not write)."""

    batch: bytes
    records: list[Record]
    verified: frozenset[bytes]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of a batch: the position of its first record, or the error that refused it."""

    position: int | None = None
    refused: RuleError | None = None


def create(tables: PgTables) -> None:
    """Create the queue's tables if they are missing (in the caller's transaction)."""
    for sql in _TABLES:
        tables.pg.execute(sql)


def submit(tables: PgTables, batch: Queued) -> None:
    """Queue ``batch``: one statement, committed on return (the connection is in autocommit mode), so a
    sequencer sees the batch whole or not at all."""
    tables.pg.execute("INSERT INTO pending (batch, n, total, payload) SELECT ?, n, ?, payload FROM "
                      "unnest(?::integer[], ?::bytea[]) AS rows (n, payload)",
                      (batch.batch, len(batch.records), list(range(len(batch.records))),
                       [r.raw for r in batch.records]))


def take(tables: PgTables) -> list[Queued | tuple[bytes, RuleError]]:
    """The first :data:`ROUND` queued batches, in the order queued, their rows locked until the caller's
    transaction ends (a writer withdrawing them waits, then finds them gone). A batch whose rows are not all
    there, once each, or whose bytes do not decode (rows changed behind the library's back) is given as
    (batch, the error): refuse it."""
    rows = tables.pg.execute("SELECT batch, n, total, payload FROM pending WHERE batch IN (SELECT batch FROM pending "
                             "GROUP BY batch ORDER BY min(seq) LIMIT ?) ORDER BY seq FOR UPDATE", (ROUND,)).fetchall()
    batches: dict[bytes, list[tuple[int, int, bytes]]] = {}
    for batch, n, total, payload in rows:
        batches.setdefault(bytes(batch), []).append((n, total, bytes(payload)))
    taken: list[Queued | tuple[bytes, RuleError]] = []
    for batch, parts in batches.items():
        parts.sort()
        if [(n, total) for n, total, _ in parts] != [(n, len(parts)) for n in range(len(parts))]:
            taken.append((batch, RuleError("a queued batch is not whole: its rows were changed behind the library's "
                                           "back; append it again", code="record.batch_damaged")))
            continue
        try:
            records = [Record.from_bytes(payload) for _, _, payload in parts]
        except StoneTrailError as exc:  # a row changed behind the library's back: that batch is refused, no other
            taken.append((batch, RuleError(f"a queued record does not decode: {exc}", code=exc.code)))
            continue
        taken.append(Queued(batch, records, frozenset()))
    return taken


def settle(tables: PgTables, done: Mapping[bytes, int], refused: Sequence[tuple[bytes, RuleError]],
           own: bytes | None = None) -> None:
    """Take the ``done`` batches (id -> first position) and the ``refused`` ones out of the queue, record why
    each refused one was, and notify the waiting writers when the caller's transaction commits, naming each
    batch settled with its first position (or ``-``: refused), for the writers that wait (:func:`named`) and for
    anyone watching. ``own``: the sequencer's own
    batch, whose outcome goes to its caller (no refusal row, not named)."""
    refused = [(batch, exc) for batch, exc in refused if batch != own]
    if refused:
        tables.pg.executemany(
            "INSERT INTO refused (batch, code, message, finding) VALUES (?, ?, ?, ?) ON CONFLICT (batch) DO NOTHING",
            [(batch, exc.code, str(exc), _finding_json(exc)) for batch, exc in refused])
    named = [f"{batch.hex()}:{first}" for batch, first in done.items() if batch != own]
    named += [f"{batch.hex()}:-" for batch, _ in refused]
    if named or own is not None:
        tables.pg.execute("DELETE FROM pending WHERE batch = ANY(?)",
                          ([*done, *(b for b, _ in refused), *([own] if own is not None else [])],))
    for start in range(0, len(named), _NAMED):  # a notice's payload holds under 8,000 bytes
        tables.pg.execute("SELECT pg_notify(?, ?)", (CHANNEL, " ".join(named[start:start + _NAMED])))


def named(notices: Sequence[str], batch: bytes) -> bool:
    """True if one of the sequencers' ``notices`` (:func:`settle`) names ``batch``. A notice is only a wake-up:
    what became of the batch is read from the log (:func:`outcome`)."""
    key = batch.hex() + ":"
    return any(key in notice for notice in notices)


def whole_at(positions: Sequence[int | None]) -> int | None:
    """The first of ``positions`` if they run on one by one from it (a batch held whole and in order), else
    None."""
    first = positions[0] if positions else None
    return first if first is not None and list(positions) == list(range(first, first + len(positions))) else None


def outcome(tables: PgTables, queued: Queued) -> Outcome | None:
    """The outcome of the batch ``queued`` once a sequencer committed it, else None (still queued), in one
    round trip. The log decides: a batch whose records it holds, whole and in order, is stored there, whatever
    a ``refused`` row says; a refusal counts only for a batch neither queued nor stored (and is read once).
    Raises StorageError ``store.db`` for a batch neither queued, stored whole nor refused (rows changed
    behind the library's back)."""
    batch, hashes = queued.batch, [bytes(r.record_hash) for r in queued.records]
    with tables.pg.pipeline():
        waiting = tables.pg.execute("SELECT count(*) FROM pending WHERE batch = ?", (batch,))
        stored = tables.pg.execute("SELECT hash, position FROM log WHERE hash = ANY(?)", (hashes,))
        left, at = waiting.fetchone()[0], {bytes(h): p for h, p in stored.fetchall()}
    if (first := whole_at([at.get(h) for h in hashes])) is not None:
        return Outcome(position=first)
    if left:
        return None
    why = tables.pg.execute("DELETE FROM refused WHERE batch = ? RETURNING code, message, finding",
                            (batch,)).fetchone()
    if why is None:
        raise StorageError(f"{tables.path}: a queued batch is neither in the log, whole and in order, nor refused: "
                           "its rows were changed behind the library's back; append it again", code="store.db")
    code, message, finding = why
    return Outcome(refused=RuleError(message, code=code, finding=Finding(**json.loads(finding)) if finding else None))


def withdraw(tables: PgTables, batch: bytes) -> bool:
    """Take batch ``batch`` out of the queue if no sequencer took it yet (waiting while one holds its rows);
    True if it was still queued (then it is never stored)."""
    with tables.transaction():
        return bool(tables.pg.execute("DELETE FROM pending WHERE batch = ?", (batch,)).rowcount)


def _finding_json(exc: RuleError) -> str | None:
    """The finding ``exc`` carries, as JSON text (None: it carries none)."""
    return json.dumps(exc.finding.to_json()) if isinstance(exc.finding, Finding) else None
