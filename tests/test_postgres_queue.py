"""Group commit in a PostgreSQL ledger (ledger.pg.queue, docs/adr/0023-postgresql-store.md "Sequencing"): batches
queued while another writer holds the write lock are sequenced together, each checked alone in queue order; a
batch that breaks a rule is refused alone; the same batch from two writers is stored once; a writer that gives up
takes its batch back; a batch a dead writer left queued is stored by the next writer."""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable

import pytest

from ledger import Ledger, Mined, Output, Record
from ledger.errors import RuleError, StoneTrailError
from ledger.pg import queue
from ledger.pg.db import LOCK, PgDb, PgTables, connect
from world import ORIGIN, TRUST, World

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (pip install -e '.[postgres]')")

pytestmark = pytest.mark.postgres


def _ledger(url: str) -> World:
    world = World()
    enrolments = []
    for party, roles in (("producer-a", ("producer",)), ("trader-b", ("trader",))):
        enrolments.append(world.enrol(party, roles))
        assert world.add(enrolments[-1]) == []
    with Ledger.create(url, ORIGIN, TRUST.authority_keys) as ledger:
        ledger.append_batch(enrolments)
    return world


def _mined(world: World, item: str) -> Record:
    return world.make(Mined(mine="Jwaneng", country="BW"), "producer-a", place="BW",
                      outputs=[Output(id=item, type="stone", mass_mct=1_000)])


def _queued(url: str) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute("SELECT count(DISTINCT batch) FROM pending").fetchone()[0])


def _while_locked(url: str, batches: list[list[Record]], then: Callable[[], None] = lambda: None) -> list[object]:
    """Append ``batches`` from threads, each through a handle of its own opened first, while another session
    holds the write lock; once all are queued, run ``then`` and free the lock; each append's position or
    error."""
    results: list[object] = [None] * len(batches)
    handles = [Ledger.open(url, TRUST.authority_keys) for _ in batches]

    def append(k: int) -> None:
        try:
            results[k] = position = handles[k].append_batch(batches[k])
        except StoneTrailError as exc:
            results[k] = exc
            return
        # the handle counts its batch, whichever writer sequenced it: its items are there on its next use
        assert handles[k].size > position and handles[k].record(position) == batches[k][0]
        seen[k] = True

    seen = [False] * len(batches)
    threads = [threading.Thread(target=append, args=(k,)) for k in range(len(batches))]
    try:
        with psycopg.connect(url) as holder:
            holder.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK,))
            for t in threads:
                t.start()
            deadline = time.monotonic() + 30
            while _queued(url) < len(batches) and time.monotonic() < deadline:
                time.sleep(0.01)
            assert _queued(url) == len(batches)
            then()
            holder.rollback()
        for t in threads:
            t.join(timeout=60)
        assert seen == [not isinstance(r, Exception) for r in results]
    finally:
        for handle in handles:
            handle.close()
    return results


def test_batches_queued_meanwhile_are_sequenced_together_each_checked_alone(postgres_url: str) -> None:
    world = _ledger(postgres_url)
    good, later = [_mined(world, "S1")], [_mined(world, "S3")]
    twice = _mined(world, "S2")
    results = _while_locked(postgres_url, [good, [twice, twice], list(good), later])
    assert isinstance(results[1], RuleError) and results[1].code in ("record.duplicate", "item.duplicate_id")
    assert results[1].finding is not None and results[1].finding.code == results[1].code  # as the writer's own
    assert results[0] == results[2] and isinstance(results[0], int)  # the same batch from two writers: stored once
    assert sorted([results[0], results[3]]) == [2, 3]
    with Ledger.open(postgres_url, TRUST.authority_keys) as ledger:
        assert ledger.size == 4 and ledger.item("S1").holder == "producer-a"
        with pytest.raises(KeyError):
            ledger.item("S2")
    with psycopg.connect(postgres_url) as conn:  # nothing left behind: the queue empty, each refusal read once
        assert conn.execute("SELECT (SELECT count(*) FROM pending) + (SELECT count(*) FROM refused)").fetchone() == (0,)


def test_a_batch_a_dead_writer_left_queued_is_stored_by_the_next_writer(postgres_url: str) -> None:
    """A writer that died after queueing its batch got no acknowledgement; the batch is stored once, in queue
    order, by whoever sequences next (a retry of it then finds it: stored once)."""
    world = _ledger(postgres_url)
    orphan = [_mined(world, "S1")]
    tables = PgTables(PgDb(connect(postgres_url), postgres_url))
    queue.submit(tables, queue.Queued(secrets.token_bytes(16), orphan, frozenset()))
    tables.close()  # the writer is gone
    with Ledger.open(postgres_url, TRUST.authority_keys) as ledger:
        assert ledger.append(_mined(world, "S2")) == 3  # after the queued batch
        assert ledger.append_batch(orphan) == 2  # its retry: stored once, where it is
        assert ledger.size == 4
    assert _queued(postgres_url) == 0


def test_a_queued_batch_whose_row_was_changed_is_refused_alone(postgres_url: str) -> None:
    world = _ledger(postgres_url)

    def tamper() -> None:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute("UPDATE pending SET payload = '\\x00'::bytea WHERE seq = (SELECT min(seq) FROM pending)")

    results = _while_locked(postgres_url, [[_mined(world, "S1")]], tamper)
    assert isinstance(results[0], RuleError) and "does not decode" in str(results[0])

    def cut() -> None:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute("DELETE FROM pending WHERE n = 1")

    results = _while_locked(postgres_url, [[_mined(world, "S3"), _mined(world, "S4")]], cut)
    assert isinstance(results[0], RuleError) and results[0].code == "record.batch_damaged"  # never stored in part
    results = _while_locked(postgres_url, [[_mined(world, "S2")]])
    assert results == [2]


def test_a_queued_record_with_a_forged_signature_is_refused_whoever_queued_it(postgres_url: str) -> None:
    """The sequencer checks the signatures of every queued batch itself: a row in ``pending`` is not trusted
    (whoever wrote it), so a record whose signature was altered is never stored, and the batches around it are."""
    world = _ledger(postgres_url)
    honest = _mined(world, "S1")
    forged = Record.from_bytes(honest.raw.replace(honest.signatures[0].sig, bytes(64)))  # the signature zeroed
    assert forged.body == honest.body and forged.record_hash != honest.record_hash
    tables = PgTables(PgDb(connect(postgres_url), postgres_url))
    batch = secrets.token_bytes(16)
    queue.submit(tables, queue.Queued(batch, [forged], frozenset({bytes(forged.record_hash)})))
    tables.close()
    with Ledger.open(postgres_url, TRUST.authority_keys) as ledger:
        assert ledger.append(_mined(world, "S2")) == 2  # the forged batch before it was refused, not stored
        assert ledger.size == 3
        with pytest.raises(KeyError):
            ledger.item("S1")
    with psycopg.connect(postgres_url) as conn:
        code, = conn.execute("SELECT code FROM refused WHERE batch = %s", (batch,)).fetchone()
    assert code.startswith("sig.")


def test_a_forged_notice_or_refusal_row_never_makes_a_writer_report_a_false_outcome(postgres_url: str) -> None:
    """A notice is a hint and the log decides: a session that names a queued batch in a forged notice, or writes
    a ``refused`` row for it, does not make its writer report another position or a refusal of a stored batch."""
    world = _ledger(postgres_url)

    def forge() -> None:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            batch, = conn.execute("SELECT batch FROM pending LIMIT 1").fetchone()
            conn.execute("INSERT INTO refused (batch, code, message) VALUES (%s, 'sig.invalid', 'forged')", (batch,))
            conn.execute("SELECT pg_notify(%s, %s)", (queue.CHANNEL, f"{bytes(batch).hex()}:0"))

    assert _while_locked(postgres_url, [[_mined(world, "S1")]], forge) == [2]
