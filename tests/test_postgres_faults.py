"""Faults of a PostgreSQL ledger (issue 12 item 6, docs/adr/0023-postgresql-store.md "Faults"), each against a real
server: a writer process killed (SIGKILL) while it appends; its connection ended by the server
(pg_terminate_backend); the server restarted during a load (fast, and immediate as after a crash); a writer kept
waiting past its statement or lock timeout; a full disk.

Every test ends with :func:`_check`: every append that returned is in the log at the position it returned (by
record hash); positions 0..size-1 with no gap; no record twice; every row whole (its payload decodes to a record
whose hash is the row's); every batch written whole or not at all; the size a fresh handle opens equals the log's;
and ``copy_ledger(url, file)`` then ``check_ledger(file)`` gives no finding and the same root. A writer whose append
did not commit gets a StorageError with a stable code and a one-line message naming the database:
``store.unavailable`` (connection ended, server restarting), ``store.timeout`` (a statement or lock timeout, set
here in the URL through libpq's ``options``), ``store.db`` (a full disk); a killed writer is gone, and what it had
in flight is in the log whole or not at all.

A writer's handle recovers by itself (ledger.pg.writer.PgBackend._recover): after a failed write or a broken
connection it reloads its view, on a new connection if the old one broke, before it answers again, so the writers
here retry the same batch through the same handle. An append that
fails when the connection broke may still have committed (the server got the COMMIT, the answer was lost); the
retry then finds its records and returns their positions without storing them again.

The server restart and the full disk use a private server of this module (``.ci/postgres start DIR``, restarted
with ``.ci/postgres restart DIR``); the others use the session's (``postgres_url``). The full disk is a tablespace
on a 1 MiB tmpfs mounted by the test: the ledger's tables and indexes live there, the server's WAL does not, so
the server refuses the write that does not fit (SQLSTATE 53100) and goes on; freeing space (the tmpfs remounted
larger) lets the same writer go on. Mounting needs root with CAP_SYS_ADMIN: elsewhere that test skips, saying why.
A full disk under the WAL itself is not simulated: the server then stops (PANIC) and recovers on restart, which
is the restart test's fault.
"""

from __future__ import annotations

import random
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from conftest import _start_private_server
from crashkit import acknowledge, acknowledged
from forked import Channel, Child

from ledger import Ledger, Mined, Output, Record, Transferred, check_ledger, copy_ledger
from ledger.errors import StorageError
from ledger.pg.db import LOCK
from world import ORIGIN, TRUST, World

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (pip install -e '.[postgres]')")

pytestmark = pytest.mark.postgres

KEYS = TRUST.authority_keys
_SERVER_SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "postgres"
#: How long a writer retries a batch the server did not take (server restarting, connection ended), in seconds.
RETRY_S = 30.0
#: The statement or lock timeout of the timeout test, in ms.
WAIT_MS = 300


# --- records, writers and the check -------------------------------------------------------------------------

def _new_ledger(url: str) -> list[Record]:
    """Create a ledger at ``url`` holding the enrolments of producer-a and trader-b; return them."""
    world, enrolments = World(), []
    for party, roles in (("producer-a", ("producer",)), ("trader-b", ("trader",))):
        enrolments.append(world.enrol(party, roles))
        assert world.add(enrolments[-1]) == []
    with Ledger.create(url, ORIGIN, KEYS) as ledger:
        assert ledger.append_batch(enrolments) == 0
    return enrolments


def _batches(prefix: str, count: int) -> list[tuple[Record, ...]]:
    """``count`` batches valid after the enrolments in any order among other writers' batches: each mines one to
    four new stones (ids ``<prefix>-<n>``), and every other one also sells its first stone on."""
    world, rng, batches = World(), random.Random(prefix), []
    for n in range(count):
        mined = [world.make(Mined(mine="Jwaneng", country="BW"), "producer-a", place="BW",
                            outputs=[Output(id=f"{prefix}-{n}-{k}", type="stone", mass_mct=1_000)])
                 for k in range(rng.randint(1, 4))]
        sold = [world.make(Transferred(to="trader-b", mode="title"), "producer-a", inputs=[f"{prefix}-{n}-0"],
                           place="BW", prev={f"{prefix}-{n}-0": mined[0].record_hash})] if n % 2 else []
        batches.append((*mined, *sold))
    return batches


def _clear(error: StorageError, url: str, codes: set[str]) -> None:
    """``error`` is a clear StorageError: one of ``codes``, one line naming the database."""
    assert error.code in codes, error
    assert str(error).startswith(f"{url}: ") and "\n" not in str(error), repr(str(error))


class Writer(threading.Thread):
    """A writer appending ``batches`` through one handle, retrying a batch the server did not take (a StorageError
    of ``codes``) for up to :data:`RETRY_S`; ``acked``: record hash -> position of every append that returned."""

    def __init__(self, url: str, batches: Sequence[Sequence[Record]], codes: set[str]) -> None:
        super().__init__(daemon=True)
        self.url, self.batches, self.codes = url, batches, codes
        self.acked: dict[bytes, int] = {}
        self.errors: list[StorageError] = []
        self.failure: BaseException | None = None
        self.started_appending = threading.Event()

    def run(self) -> None:
        try:
            with Ledger.open(self.url, KEYS) as ledger:
                for batch in self.batches:
                    first = self._append(ledger, batch)
                    self.acked.update((bytes(r.record_hash), first + k) for k, r in enumerate(batch))
                    self.started_appending.set()
                ledger.refresh()
                assert ledger.size >= len(self.acked)
        except BaseException as exc:  # the test fails with it
            self.failure = exc
        finally:
            self.started_appending.set()

    def _append(self, ledger: Ledger, batch: Sequence[Record]) -> int:
        deadline = time.monotonic() + RETRY_S
        while True:
            try:
                return ledger.append_batch(batch)
            except StorageError as exc:
                self.errors.append(exc)
                if exc.code not in self.codes or time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def finish(self) -> None:
        """Wait for the writer (bounded) and fail with its error, if any; every error it saw was a clear one."""
        self.join(timeout=RETRY_S * 2)
        assert not self.is_alive(), "the writer is stuck"
        if self.failure is not None:
            raise self.failure
        for error in self.errors:
            _clear(error, self.url, self.codes)


def _rows(url: str) -> list[tuple[int, bytes, bytes]]:
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as connection:
        rows = connection.execute("SELECT position, hash, payload FROM log ORDER BY position").fetchall()
    return [(p, bytes(h), bytes(payload)) for p, h, payload in rows]


def _check_log(url: str, acked: Mapping[bytes, int], batches: Iterable[Sequence[Record]]) -> dict[bytes, int]:
    """The log at ``url`` holds every acknowledged record where it was acknowledged, positions 0..size-1, no
    record twice, every row whole, every batch whole or absent; its record hash -> position."""
    rows = _rows(url)
    assert [p for p, _, _ in rows] == list(range(len(rows))), "a gap in the positions"
    held = {h: p for p, h, _ in rows}
    assert len(held) == len(rows), "a record stored twice"
    assert all(bytes(Record.from_bytes(payload).record_hash) == h for _, h, payload in rows), "a partial record"
    assert {h: held.get(h) for h in acked} == dict(acked), "an acknowledged record lost or moved"
    for batch in batches:
        where = [held.get(bytes(r.record_hash)) for r in batch]
        assert where == [None] * len(batch) or (
            where[0] is not None and where == list(range(where[0], where[0] + len(batch)))), "a batch cut in two"
    return held


def _check(url: str, acked: Mapping[bytes, int], batches: Iterable[Sequence[Record]], copy: Path) -> int:
    """:func:`_check_log`, then a fresh handle opens the log's size, and a copy to ``copy`` audits with no
    finding and the same root; the log's size."""
    size = len(_check_log(url, acked, batches))
    with Ledger.open(url, KEYS) as ledger:
        assert ledger.size == size
        root = ledger.root_hash()
    assert copy_ledger(url, copy, KEYS) == size
    report = check_ledger(copy, TRUST)
    assert report.ok and report.findings == () and report.root_hash == root
    return size


# --- a private server ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def own_server() -> Iterator[tuple[Path, str]]:
    """A server of this module's own (it restarts it): its folder and the URL of the role ``stonetrail``."""
    directory = tempfile.mkdtemp(prefix="stonetrail-pg-faults-")  # under /tmp: open to the server's user
    url = _start_private_server(directory)
    try:
        yield Path(directory), url
    finally:
        subprocess.run([str(_SERVER_SCRIPT), "stop", directory], check=False, timeout=120)


def _superuser(url: str) -> str:
    """The URL of the private server's superuser (trust authentication, loopback only)."""
    parts = urlsplit(url)
    return parts._replace(netloc=f"postgres@{parts.hostname}:{parts.port}", path="/postgres").geturl()


def _database(url: str, name: str) -> str:
    """A fresh database ``name`` owned by the role of ``url`` on its server (dropped first if there); its URL."""
    with psycopg.connect(_superuser(url), autocommit=True, connect_timeout=10) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name} OWNER {urlsplit(url).username}")
    return urlsplit(url)._replace(path=f"/{name}").geturl()


# --- the faults ---------------------------------------------------------------------------------------------

def _acknowledging(url: str, batches: Sequence[Sequence[Record]]) -> Callable[[Channel], None]:
    """A forked writer's body: open the ledger (``O``), append each batch and acknowledge its records
    (``A <position> <hash>``), ``D`` when done."""

    def body(channel: Channel) -> None:
        with Ledger.open(url, KEYS) as ledger:
            channel.say("O")
            for batch in batches:
                acknowledge(channel, ledger.append_batch(batch), batch)
        channel.say("D")

    return body


def test_a_writer_killed_while_it_appends_loses_no_acknowledged_record(postgres_url: str, tmp_path: Path) -> None:
    _new_ledger(postgres_url)
    rng, acked, planned = random.Random("pg kill"), {}, []
    for trial in range(5):  # each: one writer killed at a random moment while another one appends
        victim, survivor = _batches(f"K{trial}", 400), _batches(f"S{trial}", 10)
        planned += [*victim, *survivor]
        children = [Child(_acknowledging(postgres_url, b)) for b in (victim, survivor)]
        assert children[0].wait_for("O") == "O", children[0].errors()
        time.sleep(rng.uniform(0.0, 0.25))
        children[0].kill()
        assert [c.join() for c in children] == [-9, 0], [c.errors() for c in children]
        assert "D" not in children[0].lines, "the writer ended before it was killed"
        for child in children:
            acked.update({bytes(h): p for p, h in acknowledged(child.lines).items()})
        _check_log(postgres_url, acked, planned)
    with Ledger.open(postgres_url, KEYS) as ledger:  # the killed writers hold no lock; a new one goes on
        last = _batches("after", 1)[0]
        acked.update((bytes(r.record_hash), ledger.append_batch(last) + k) for k, r in enumerate(last))
    _check(postgres_url, acked, [*planned, last], tmp_path / "copy.ledger")


def _terminate_others(url: str) -> int:
    """End every other connection to the database of ``url`` (pg_terminate_backend); how many there were."""
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as connection:
        return int(connection.execute(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchone()[0])


def _appending(url: str, prefix: str) -> list[Writer]:
    """Two writers appending 60 batches each to ``url``, both started and appending, each retrying a batch the
    server did not take (``store.unavailable``)."""
    writers = [Writer(url, _batches(f"{prefix}{w}", 60), {"store.unavailable"}) for w in range(2)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.started_appending.wait(timeout=RETRY_S)
    return writers


def test_writers_whose_connection_is_ended_get_store_unavailable_and_go_on(postgres_url: str,
                                                                           tmp_path: Path) -> None:
    _new_ledger(postgres_url)
    writers = _appending(postgres_url, "D")
    rng, ended = random.Random("pg terminate"), 0
    while any(w.is_alive() for w in writers) and ended < 12:
        ended += _terminate_others(postgres_url)
        time.sleep(rng.uniform(0.01, 0.1))
    for writer in writers:
        writer.finish()
    assert ended and any(w.errors for w in writers), "no connection was ended during the load"
    acked = {h: p for w in writers for h, p in w.acked.items()}
    assert _check(postgres_url, acked, [b for w in writers for b in w.batches], tmp_path / "copy.ledger") == \
        2 + sum(len(b) for w in writers for b in w.batches)


def _waiting_for_a_lock(url: str) -> int:
    """The process id of the one backend of the database of ``url`` waiting for a lock (polled, bounded)."""
    with psycopg.connect(url, autocommit=True, connect_timeout=10) as connection:
        for _ in range(1_000):
            rows = connection.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND "
                                      "wait_event_type = 'Lock'").fetchall()
            if rows:
                assert len(rows) == 1, rows
                return int(rows[0][0])
            time.sleep(0.01)
    raise AssertionError("no writer waited for the lock")


def test_a_writer_whose_connection_is_ended_inside_its_write_counts_nothing_of_it_and_stores_it_once(
        postgres_url: str, tmp_path: Path) -> None:
    """The writer took the write lock, checked and applied the batch in memory and sent its rows; they wait for
    the log table, which another transaction holds, when the server ends the writer's connection."""
    _new_ledger(postgres_url)
    batch, failed = _batches("C", 1)[0], list[StorageError]()

    def append() -> None:
        try:
            ledger.append_batch(batch)
        except StorageError as exc:
            failed.append(exc)

    with Ledger.open(postgres_url, KEYS) as ledger, psycopg.connect(postgres_url, connect_timeout=10) as other:
        other.execute("LOCK TABLE log IN SHARE MODE")
        writer = threading.Thread(target=append)
        writer.start()
        with psycopg.connect(postgres_url, autocommit=True, connect_timeout=10) as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s)", (_waiting_for_a_lock(postgres_url),)
                                 ).fetchone()[0]
        writer.join(timeout=RETRY_S)
        assert len(failed) == 1, "the append did not fail"
        _clear(failed[0], postgres_url, {"store.unavailable"})
        other.rollback()
        assert ledger.size == 2  # the handle reconnected and counts nothing of the batch
        with pytest.raises(KeyError):
            ledger.item("C-0-0")
        assert len(_rows(postgres_url)) == 2
        assert ledger.append_batch(batch) == 2  # retried through the same handle: stored once
        acked = {bytes(r.record_hash): 2 + k for k, r in enumerate(batch)}
    _check(postgres_url, acked, [batch], tmp_path / "copy.ledger")


@pytest.mark.parametrize("mode", [(), ("--immediate",)], ids=["fast", "immediate"])
def test_writers_see_store_unavailable_while_the_server_restarts_and_go_on(
        own_server: tuple[Path, str], mode: tuple[str, ...], tmp_path: Path) -> None:
    directory, server_url = own_server
    url = _database(server_url, f"restart_{'immediate' if mode else 'fast'}")
    _new_ledger(url)
    writers = _appending(url, "R")
    subprocess.run([str(_SERVER_SCRIPT), "restart", str(directory), *mode], check=True, timeout=120)
    for writer in writers:
        writer.finish()
    assert any(w.errors for w in writers), "no writer saw the restart"
    acked = {h: p for w in writers for h, p in w.acked.items()}
    assert _check(url, acked, [b for w in writers for b in w.batches], tmp_path / "copy.ledger") == \
        2 + sum(len(b) for w in writers for b in w.batches)


@pytest.mark.parametrize("setting", ["statement_timeout", "lock_timeout"])
@pytest.mark.parametrize("held", ["write lock", "log table"])
def test_a_writer_kept_waiting_past_its_timeout_gets_store_timeout_and_writes_nothing(
        postgres_url: str, setting: str, held: str, tmp_path: Path) -> None:
    """The timeout is the connection's own, set in the URL (libpq's ``options``); another transaction holds the
    ledger's write lock (the writer waits before it reads anything), or the log table (the writer waits after it
    took the write lock and checked the batch, when it inserts the records)."""
    _new_ledger(postgres_url)
    batch = _batches("T", 1)[0]
    timed = f"{postgres_url}?options=-c%20{setting}%3D{WAIT_MS}"
    with Ledger.open(timed, KEYS) as ledger, psycopg.connect(postgres_url, connect_timeout=10) as other:
        other.execute("SELECT pg_advisory_xact_lock(%s)" if held == "write lock" else
                      "LOCK TABLE log IN SHARE MODE", (LOCK,) if held == "write lock" else ())
        with pytest.raises(StorageError) as waited:
            ledger.append_batch(batch)
        _clear(waited.value, timed, {"store.timeout"})
        assert other.execute("SELECT count(*) FROM pending").fetchone() == (0,)  # taken back: never stored later
        assert ledger.size == 2  # the handle counts nothing of the batch
        with pytest.raises(KeyError):
            ledger.item("T-0-0")
        assert len(_rows(postgres_url)) == 2
        other.rollback()
        assert ledger.append_batch(batch) == 2  # the same handle goes on once the other transaction ended
        acked = {bytes(r.record_hash): 2 + k for k, r in enumerate(batch)}
    _check(postgres_url, acked, [batch], tmp_path / "copy.ledger")


def _mount_tmpfs(where: str, size: str, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", "-t", "tmpfs", "-o", ",".join((f"size={size}", *options)), "tmpfs", where],
                          capture_output=True, text=True, check=False, timeout=30)


def test_a_full_disk_refuses_the_write_that_does_not_fit_and_the_writer_goes_on_once_space_is_freed(
        own_server: tuple[Path, str], tmp_path: Path) -> None:
    directory, server_url = own_server
    owner = directory.joinpath("data").owner()
    mount = tempfile.mkdtemp(prefix="stonetrail-pg-full-")
    mounted = _mount_tmpfs(mount, "1m", "mode=0700", f"uid={owner}")
    if mounted.returncode != 0:
        Path(mount).rmdir()
        pytest.skip(f"a full disk cannot be simulated here: mounting a tmpfs failed ({mounted.stderr.strip()}); "
                    "it needs root with CAP_SYS_ADMIN")
    try:
        url = _database(server_url, "full_disk")
        with psycopg.connect(_superuser(server_url), autocommit=True, connect_timeout=10) as admin:
            admin.execute(f"CREATE TABLESPACE tiny OWNER {urlsplit(server_url).username} LOCATION '{mount}'")
            admin.execute("ALTER DATABASE full_disk SET default_tablespace = tiny")
        _new_ledger(url)
        batches, acked, refused = _batches("F", 2_000), {}, None
        with Ledger.open(url, KEYS) as ledger:
            for batch in batches:
                try:
                    first = ledger.append_batch(batch)
                except StorageError as exc:
                    refused = exc
                    break
                acked.update((bytes(r.record_hash), first + k) for k, r in enumerate(batch))
            assert refused is not None, "the tablespace never filled"
            _clear(refused, url, {"store.db"})
            assert "No space left on device" in str(refused)
            size = _check(url, acked, batches, tmp_path / "full.ledger")  # what was acknowledged is whole
            assert ledger.size == size
            subprocess.run(["mount", "-o", "remount,size=8m", mount], check=True, timeout=30)  # space freed
            assert ledger.append_batch(batch) == size  # the refused batch, through the same handle
            acked.update((bytes(r.record_hash), size + k) for k, r in enumerate(batch))
        _check(url, acked, batches, tmp_path / "freed.ledger")
    finally:
        with psycopg.connect(_superuser(server_url), autocommit=True, connect_timeout=10) as admin:
            admin.execute("DROP DATABASE IF EXISTS full_disk WITH (FORCE)")
            admin.execute("DROP TABLESPACE IF EXISTS tiny")
        subprocess.run(["umount", mount], check=True, timeout=30)
        Path(mount).rmdir()
