"""Opening a ledger's index: checked against the log, caught up with it, rebuilt when it is not the log's
(DESIGN.md §6, docs/adr/0018-sqlite-index.md).

The log is the truth. :func:`open_index` accepts an index only if it names the log's origin and header, ends
at a frame boundary the log has, and its last leaf hash and root are the ones it recorded with them; otherwise
(missing, another log's, damaged, another schema) it builds a new one from the log. It then catches up with the
records appended since it was last written (a writer that crashed between its fsync and the index's commit).
"""

from __future__ import annotations

import gc
import hashlib
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import CorruptStoreError, InvalidLedgerError, StorageError
from ..events import REGISTRY_KINDS
from ..hashing import Digest
from ..record import Record
from ..storage.framing import StoreProblem, Survey
from .db import IndexDB, index_path
from .indexed import LedgerIndex, LogFile

__all__ = ["BUILDING", "Progress", "build_index", "discard_index", "open_index", "tail", "tail_size"]

#: (records done, records in all) while an index is built or caught up.
Progress = Callable[[int, int], None]
#: The suffix of an index file being built (renamed to the index once whole: :func:`open_index`).
BUILDING = ".building"
_CHUNK = 16384  # records applied between two writes of the index while it is built or caught up


def discard_index(ledger_path: Path, *, building_only: bool = False) -> None:
    """Remove the index of the ledger at ``ledger_path`` (its SQLite file, write-ahead log and shared memory) and
    those of an index being built (``building_only``: only those; the index stays until a new one replaces it)."""
    path = index_path(ledger_path)
    for base in (f"{path}{BUILDING}",) if building_only else (str(path), f"{path}{BUILDING}"):
        for stale in (base, f"{base}-wal", f"{base}-shm"):
            Path(stale).unlink(missing_ok=True)


def _new(log: LogFile, path: Path) -> IndexDB:
    """A new, empty index for ``log`` at ``path``, the file of an index being built (one left by a build that was
    interrupted is removed first; the ledger's index, if any, stays until :func:`_publish` replaces it)."""
    discard_index(log.path, building_only=True)
    db = IndexDB.open(path, create=True)
    with db.transaction():
        db.set_meta(origin=log.origin, header=hashlib.sha256(log.header).digest(),
                    file=log.identity(len(log.header)), size=0, end=len(log.header), counts={})
    return db


def tail(log: LogFile, start: int, first: int) -> tuple[Iterator[tuple[bytes, int, int]], Survey]:
    """The frames of ``log`` from byte ``start`` (where record ``first`` begins) to its end, read in bounded
    memory: an iterator of (payload, offset, length), and the survey whose ``problems`` (a torn tail, damage:
    :class:`~ledger.storage.framing.StoreProblem`) are whole once the iterator is exhausted."""
    survey = Survey(log.read, log.size(), resume=(first, start))
    return ((f.payload, f.offset, f.end - f.offset) for f in survey.frames()), survey


def tail_size(log: LogFile, start: int, first: int) -> tuple[int, list[Any]]:
    """(records after byte ``start``, problems there): how far the file runs past an index (:func:`tail`)."""
    frames, survey = tail(log, start, first)
    return sum(1 for _ in frames), survey.problems


def _catch_up(index: LedgerIndex, progress: Progress | None, *, trusted: bool = False, building: bool = False
              ) -> None:
    """Apply and commit the log's records after the index's last one (``trusted``: as records the writer
    checked, see :meth:`ledger.custody.CustodyState.apply`). Raises CorruptStoreError for damage in that part
    of the log or a record that breaks a rule (the writer's refusal, as a replay would say it); damage first.

    Damage is looked for in a pass over the frames before any record is read, so that none is committed. An
    index being built (``building``: it is discarded if this raises) is spared that pass unless ``progress``
    needs the number of records: damage is then looked for as the frames are read, and in the rest of the log
    after a record that fails, so that it is named first all the same."""
    log = index.files()[1]
    total = None
    if not building or progress is not None:
        more, problems = tail_size(log, index.end, index.size)
        if problems:
            raise _damaged(index, problems[0])
        total = index.size + more
    frames, survey = tail(log, index.end, index.size)
    try:
        _apply_all(index, frames, survey, progress, total, trusted)
    except Exception:
        if total is None and not survey.problems:
            for _ in frames:  # the rest of the log: damage there is named first, as a pass before would
                pass
            if survey.problems:
                raise _damaged(index, survey.problems[0]) from None
        raise


def _apply_all(index: LedgerIndex, frames: Iterator[tuple[bytes, int, int]], survey: Survey,
               progress: Progress | None, total: int | None, trusted: bool) -> None:
    """Apply and commit the records of ``frames`` (see :func:`_catch_up`), :data:`_CHUNK` at a time."""
    done, batch = index.size, _Batch()
    for payload, offset, length in frames:
        record = Record.from_bytes(payload)
        position = done + len(batch.frames)
        if findings := index.apply(position, record, trusted=trusted):
            index.abandon()
            hint = " (a registry record: is the trust file this ledger's? Its authority keys must be the ones that " \
                   "signed the registry)" if record.body.kind in REGISTRY_KINDS else ""
            raise InvalidLedgerError(f"ledger holds an invalid record: {findings[0]}{hint}; run an audit",
                                     code=findings[0].code)
        batch.add(position, record, offset, length)
        if len(batch.frames) == _CHUNK:
            index.commit_frames(batch.leaves, batch.frames, batch.registry)
            done, batch = done + len(batch.frames), _Batch()
            if progress is not None:
                progress(done, total or done)
    if survey.problems:  # the file changed since it was surveyed, or a build that reads it once met damage
        raise _damaged(index, survey.problems[0])
    index.commit_frames(batch.leaves, batch.frames, batch.registry)
    if progress is not None:
        progress(index.size, index.size)


class _Batch:
    """The records applied since the last commit, as :meth:`LedgerIndex.commit_frames` takes them: their leaf
    hashes and frames, and the registry records among them (the rest are not kept: a batch is thousands)."""

    def __init__(self) -> None:
        self.leaves: list[Digest] = []
        self.frames: list[tuple[int, int]] = []
        self.registry: list[tuple[int, Record]] = []

    def add(self, position: int, record: Record, offset: int, length: int) -> None:
        self.leaves.append(record.record_hash)  # = leaf_hash(record.raw), computed once
        self.frames.append((offset, length))
        if record.body.kind in REGISTRY_KINDS:
            self.registry.append((position, record))


def _damaged(index: LedgerIndex, problem: StoreProblem) -> CorruptStoreError:
    index.abandon()
    todo = "" if problem.code == "store.torn_tail" else \
        "; an index is built from a whole log only: run 'stonetrail verify' to see every damaged part"
    return CorruptStoreError(f"{index.files()[1].path}: record {problem.index}: "
                             f"{problem.reason.removeprefix(f'record {problem.index}: ')}{todo}", code=problem.code)


def open_index(log: LogFile, authority_keys: Iterable[bytes], *, progress: Progress | None = None,
               checked: bool = False) -> LedgerIndex:
    """The index of ``log``, checked and caught up; built anew from the log if it is missing, of another log,
    damaged or of another schema (``progress`` is then called as records are applied).

    Records after an index's last one are checked as the writer checks a new one, signatures included: a log
    the writer would refuse is refused. A build from scratch takes the log's custody records as the writer
    checked them when it appended them (registry records are checked in full): it reaches the same state as a
    checked replay at a fraction of the cost, and an audit names any record that breaks a rule
    (docs/adr/0020-trusted-rebuild.md). ``checked`` checks every record of a build too.

    Raises:
        CorruptStoreError: the log has damage after the indexed records; InvalidLedgerError (a
            CorruptStoreError): a record that breaks a rule.
        StorageError: the index file cannot be written.
    """
    keys, path = frozenset(authority_keys), index_path(log.path)
    index, db = None, None
    try:
        db = IndexDB.open(path, create=False)
        index = LedgerIndex(db, log, keys)
        index.check()
    except (StorageError, FileNotFoundError, sqlite3.Error) as exc:
        if isinstance(exc, StorageError) and not exc.code.startswith("index."):  # e.g. the log's store.io
            if db is not None:
                db.close()
            raise
        if db is not None:  # closed now: a connection closed later by the collector would remove the -wal and
            db.close()  # -shm files of the new index built at the same path
        index = None
    if index is None:
        return build_index(log, keys, progress=progress, checked=checked)
    try:
        _catch_up(index, progress)
        index.saw()
    except BaseException:
        index.close()
        raise
    return index


def build_index(log: LogFile, authority_keys: Iterable[bytes], *, progress: Progress | None = None,
                checked: bool = False) -> LedgerIndex:
    """A new index of ``log``, whatever index it has (see :func:`open_index` for ``progress`` and ``checked``),
    built in a file beside the index's path without waiting for the disk (SQLite's synchronous=OFF: a crash or an
    interruption leaves only that file, which the next build removes), then made durable and renamed to the
    index's path: an index there is always a whole one, and the old one serves until the new one replaces it.
    Raises as :func:`open_index`."""
    keys, path, trusted = frozenset(authority_keys), index_path(log.path), not checked
    building = path.with_name(f"{path.name}{BUILDING}")
    anchor = _old_anchor(path)
    try:
        index = LedgerIndex(_new(log, building), log, keys)
        index.fresh()
        if anchor is not None:
            with index.db.transaction():
                index.db.set_meta(anchor=anchor)
    except (OSError, sqlite3.Error) as exc:
        log.close()
        raise StorageError(f"cannot write the index {building}: {exc}", code="index.io") from exc
    try:
        index.db.db.execute("PRAGMA synchronous=OFF")
        index.db.db.execute("PRAGMA journal_mode=OFF")
        with _no_collector():
            _catch_up(index, progress, trusted=trusted, building=True)
        index.db.db.execute("PRAGMA synchronous=FULL")
        index.db.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        index.db.close()
        _publish(building, path)
        return LedgerIndex(IndexDB.open(path, create=False), log, keys)
    except BaseException as exc:
        index.close()
        discard_index(log.path, building_only=True)
        if isinstance(exc, OSError | sqlite3.Error):
            raise StorageError(f"cannot write the index {path}: {exc}", code="index.io") from exc
        raise


def _old_anchor(path: Path) -> str | None:
    """The anchor kept in the index at ``path`` that a new one replaces, if it can be read (a signed note about the
    log, not about the index: :mod:`ledger.index.anchor` checks it against the log and its signer before it is
    used, so a new index keeps it, and the first signing after a rebuild reads the records since, not all)."""
    try:
        db = IndexDB.open(path, create=False, read_only=True)
    except (StorageError, sqlite3.Error, OSError):
        return None
    try:
        note = db.meta("anchor")
    except (StorageError, sqlite3.Error, OSError):
        return None
    finally:
        db.close()
    return note if isinstance(note, str) else None


@contextmanager
def _no_collector() -> Iterator[None]:
    """Python's cyclic garbage collector paused, for a build: it makes no reference cycles (its peak memory is
    the same without the collector), and each pass of the collector walks the thousands of objects the tables'
    caches hold (~10% of a build's time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _publish(building: Path, path: Path) -> None:
    """Flush ``building`` to the disk and rename it to ``path`` (the old index, with its -wal and -shm, gone)."""
    fd = os.open(building, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    for stale in (Path(f"{path}-wal"), Path(f"{path}-shm")):
        stale.unlink(missing_ok=True)
    os.replace(building, path)
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
