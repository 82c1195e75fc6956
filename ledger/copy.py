"""``copy_ledger``: a ledger's records copied to another store, file or database (issue 12: an auditor gets a plain
ledger file from a PostgreSQL ledger; a file moves into a database), every record checked again by the writer of
the copy, so the copy holds the same records in the same order, with the same roots and checkpoints."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from ._ledger import Ledger
from .errors import CorruptStoreError, expect_path
from .pg.db import PgDb, PgTables, connect, is_url
from .record import Record
from .storage import FrameFile

__all__ = ["copy_ledger"]

#: Records appended to the copy in one batch (one transaction, or one write and fsync).
BATCH = 1000


def _file_payloads(path: Path) -> tuple[str, int, Iterator[bytes]]:
    """(origin, records, payloads) of a ledger file, read without its lock. Raises CorruptStoreError for a
    damaged file (repair or audit it first), StorageError."""
    with FrameFile(path) as file:
        records = sum(1 for _ in file.frames())
        if file.survey.problems:
            problem = file.survey.problems[0]
            raise CorruptStoreError(f"{path}: record {problem.index}: {problem.code}; a damaged ledger is not "
                                    "copied (run `stonetrail repair` or `stonetrail verify`)", code=problem.code)
        origin = file.survey.origin
    file = FrameFile(path)

    def payloads() -> Iterator[bytes]:
        with file:
            for frame in file.frames():
                yield frame.payload

    return origin, records, payloads()


def _database_payloads(url: str) -> tuple[str, int, Iterator[bytes]]:
    """(origin, records, payloads) of a PostgreSQL ledger, as committed when it is opened (one repeatable-read
    transaction for the whole read)."""
    tables = PgTables(PgDb(connect(url), url))
    tables.pg.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    origin, size = tables.meta("origin"), tables.meta("size") or 0

    def payloads() -> Iterator[bytes]:
        try:
            start = 0
            while start < size:
                rows = tables.pg.execute("SELECT payload FROM log WHERE position >= ? AND position < ? ORDER BY "
                                         "position", (start, min(size, start + BATCH))).fetchall()
                yield from (bytes(r[0]) for r in rows)
                start += BATCH
        finally:
            tables.close()

    return origin, size, payloads()


def copy_ledger(source: str | Path, target: str | Path, authority_keys: Iterable[bytes], *,
                progress: Callable[[int, int], None] | None = None) -> int:
    """Copy every record of the ledger at ``source`` (a file, or a ``postgresql://`` URL) into a new ledger at
    ``target`` (likewise), checked as its writer checks any append; return the number of records copied.
    ``progress(records done, records in all)`` after each batch.

    Raises:
        StorageError: ``store.exists`` (``target`` holds a ledger), I/O or database errors; CorruptStoreError
        (``source`` is damaged). RuleError: a record of ``source`` breaks a rule (the copy then holds the records
        before it: audit ``source``).
    """
    expect_path(source, "source")
    expect_path(target, "target")
    keys = list(authority_keys)
    origin, total, payloads = (_database_payloads(str(source)) if is_url(source) else
                               _file_payloads(Path(source)))
    done = 0
    with Ledger.create(target, origin, keys) as copy:
        batch: list[Record] = []
        for payload in payloads:
            batch.append(Record.from_bytes(payload))
            if len(batch) == BATCH:
                copy.append_batch(batch)
                done, batch = done + len(batch), []
                if progress is not None:
                    progress(done, total)
        if batch:
            copy.append_batch(batch)
            done += len(batch)
    if progress is not None:
        progress(done, total)
    return done
