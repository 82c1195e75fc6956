"""A witness's state: per origin, the checkpoint it last cosigned; check and update in one transaction.

Kept in an SQLite database, ``DIR/witness.db``, in WAL mode with ``synchronous=FULL``: a transaction is on disk
(the WAL fsynced) when COMMIT returns. :meth:`WitnessState.add_checkpoint` reads the origin's row, decides
(:func:`ledger.witness.protocol.decide`) and writes the new row inside one ``BEGIN IMMEDIATE`` transaction — the
database's write lock, taken before the read — and answers only after COMMIT returned. So two requests for one
origin are serialized, whichever thread or process serves them (the race of C2SP tlog-witness, "add-checkpoint":
no request is checked against a state another is about to replace), and no cosignature is ever returned for a
state that a crash could lose: after a restart the witness never cosigns a smaller tree or another root for a
size it cosigned. Signatures are checked before the lock (they need no state).

The database also records the witness's name and cosigner key (``meta``): a state directory serves one witness
key, and opening it with another is refused (``witness.state_key``), since its rows are that key's promises.
Evidence (:mod:`ledger.evidence` bytes) is written to ``DIR/evidence/<kind>-<origin hash 16>-<hash 16>.ev``,
named by the two checkpoints' texts it is of (one contradiction is written once, however often it is sent, with
whatever signature lines), before the answer.
"""

from __future__ import annotations

import hashlib
import os
import queue
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

from .._files import write_file
from ..checkpoint import read_unverified_checkpoint
from ..cosignature import cosigner_key
from ..errors import InputError, StorageError
from ..keys import PrivateKey
from .logs import KnownLogs, origin_hash
from .protocol import Answer, Latest, Signed, Verdict, check_signed, decide, parse_add_checkpoint

__all__ = ["DATABASE_FILE", "EVIDENCE_DIR", "WitnessState"]

DATABASE_FILE: Final = "witness.db"
EVIDENCE_DIR: Final = "evidence"
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS latest (
    origin TEXT PRIMARY KEY, tree_size TEXT NOT NULL, note TEXT NOT NULL, timestamp INTEGER NOT NULL);
"""


class WitnessState:
    """The state directory ``directory`` of the witness ``name`` with cosigner ``key`` for the logs ``logs``.

    Thread-safe: each call takes a connection of its own from a pool. ``clock``: POSIX seconds (tests).

    Raises (on construction):
        StorageError: ``witness.state`` (the directory or database cannot be opened or created; a database
            file that is empty or not a witness's: a state is never made anew over a file that exists, which
            would forget every size cosigned), ``witness.state_key`` (the directory is another witness key's).
    """

    def __init__(self, directory: str | os.PathLike[str], *, name: str, key: PrivateKey, logs: KnownLogs,
                 clock: Callable[[], float] = time.time) -> None:
        self.directory, self.name, self.key, self.logs, self.clock = Path(directory), name, key, logs, clock
        if any(k.public_key == key.public_key for keys in logs.keys.values() for k in keys):
            raise InputError("the witness key is a key of a log it witnesses (an operator's key?): a witness "
                             "must be independent of the logs; make one with 'stonetrail witness keygen'",
                             code="witness.key_is_log")
        self.vkey = cosigner_key(name, key.public_key).text()
        self._pool: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        try:
            (self.directory / EVIDENCE_DIR).mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the witness state directory {self.directory}: {exc.strerror}",
                               code="witness.state") from exc
        database = self.directory / DATABASE_FILE
        existed = database.exists()
        if existed and not any(_size(path) for path in (database, Path(f"{database}-wal"))):
            raise self._not_a_state("is empty")
        with self._transaction() as db:
            tables = {name for name, in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if existed and not {"meta", "latest"} <= tables:
                raise self._not_a_state("holds no witness state")
            for statement in _SCHEMA.strip().split(";"):
                if statement.strip():
                    db.execute(statement)
            db.execute("INSERT OR IGNORE INTO meta VALUES ('cosigner', ?)", (self.vkey,))
            held = db.execute("SELECT value FROM meta WHERE key = 'cosigner'").fetchone()[0]
        if held != self.vkey:
            raise StorageError(f"{self.directory} is the state of witness key {held}, not {self.vkey}: a state "
                               "directory serves one witness key and name; start it as that one (the same key "
                               "file and --name), or give this one a new --state directory", code="witness.state_key")

    # --- the two operations ------------------------------------------------------------------------------------

    def add_checkpoint(self, body: bytes) -> Answer:
        """Answer one add-checkpoint request body (C2SP tlog-witness): the whole decision table of
        :mod:`ledger.witness.protocol`, the state updated and evidence written before it returns.

        Raises:
            StorageError: ``witness.state`` (the database failed: nothing was cosigned), ``store.io`` (the
                evidence could not be written; the state is already updated).
        """
        try:
            signed = check_signed(parse_add_checkpoint(body), self.logs)
        except InputError as exc:
            return Answer.text(400, str(exc))
        if isinstance(signed, Answer):
            return signed
        verdict = self._decide(signed)
        if verdict.evidence is not None:
            self._keep(signed.checkpoint.origin, *verdict.evidence)
        return verdict.answer

    def latest(self, origin: str) -> Latest | None:
        """What was last cosigned for ``origin`` (None: nothing). Raises StorageError ``witness.state``."""
        with self._connection() as db:
            row = db.execute("SELECT note, timestamp FROM latest WHERE origin = ?", (origin,)).fetchone()
        return None if row is None else _latest(row)

    def all_latest(self) -> dict[str, Latest]:
        """origin -> what was last cosigned for it, for every origin cosigned."""
        with self._connection() as db:
            rows = db.execute("SELECT origin, note, timestamp FROM latest").fetchall()
        return {origin: _latest((note, timestamp)) for origin, note, timestamp in rows}

    def evidence_files(self) -> list[Path]:
        """The evidence files kept so far, sorted by name."""
        return sorted((self.directory / EVIDENCE_DIR).glob("*.ev"))

    def close(self) -> None:
        """Close the pooled connections."""
        while True:
            try:
                self._pool.get_nowait().close()
            except queue.Empty:
                return

    # --- inside ------------------------------------------------------------------------------------------------

    def _decide(self, signed: Signed) -> Verdict:
        origin = signed.checkpoint.origin
        with self._transaction() as db:  # BEGIN IMMEDIATE: the read below and the write are one step
            row = db.execute("SELECT note, timestamp FROM latest WHERE origin = ?", (origin,)).fetchone()
            verdict = decide(signed, None if row is None else _latest(row), name=self.name, key=self.key,
                             now=int(self.clock()))
            new = verdict.latest
            if new is not None:
                db.execute("INSERT OR REPLACE INTO latest VALUES (?, ?, ?, ?)",
                           (origin, str(new.checkpoint.tree_size), new.note, new.timestamp))
        return verdict  # committed (and fsynced) by now

    def _keep(self, origin: str, kind: str, data: bytes, of: bytes) -> None:
        name = f"{kind}-{origin_hash(origin)[:16]}-{hashlib.sha256(of).hexdigest()[:16]}.ev"
        target = self.directory / EVIDENCE_DIR / name
        try:
            write_file(target, data)
        except StorageError as exc:
            if exc.code != "store.exists":
                raise
        # store.exists: evidence of the same two checkpoints, kept already (named by their texts)

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        try:
            db = self._pool.get_nowait()
        except queue.Empty:
            db = self._connect()
        try:
            yield db
        except sqlite3.Error as exc:
            db.close()
            raise StorageError(f"witness state {self.directory / DATABASE_FILE}: {exc}", code="witness.state") from exc
        self._pool.put(db)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connection() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def _not_a_state(self, what: str) -> StorageError:
        return StorageError(f"witness state {self.directory / DATABASE_FILE} {what}: a witness's state is never made "
                            "anew over a file that exists (it would forget every size it cosigned); restore it, or "
                            "remove it to start a witness that has cosigned nothing", code="witness.state")

    def _connect(self) -> sqlite3.Connection:
        try:
            db = sqlite3.connect(self.directory / DATABASE_FILE, isolation_level=None, check_same_thread=False,
                                 timeout=30.0)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open the witness state {self.directory / DATABASE_FILE}: {exc}",
                               code="witness.state") from exc
        return db


def _latest(row: tuple[str, int]) -> Latest:
    note, timestamp = row
    return Latest(checkpoint=read_unverified_checkpoint(note), note=note, timestamp=timestamp)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
