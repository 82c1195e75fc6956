"""``copy_ledger``: a ledger's records copied to another store, file or database (issue 12: an auditor gets a plain
ledger file from a PostgreSQL ledger; a file moves into a database), every record checked again by the writer of
the copy, so the copy holds the same records in the same order, with the same roots and checkpoints."""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from ._beside import published_at
from ._files import link_new
from ._ledger import Ledger
from .backends import FileBackend
from .errors import (
    CorruptStoreError,
    NoteFormatError,
    StoneTrailError,
    StorageError,
    VerificationError,
    expect_path,
)
from .index import discard_index
from .index.db import index_path
from .pg.db import is_url, redact
from .pg.store import payloads
from .pg.writer import drop_ledger, ledger_tables
from .reader import check_checkpoint_of
from .record import Record
from .storage import FileStore, FrameFile

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


def copy_ledger(source: str | Path, target: str | Path, authority_keys: Iterable[bytes], *,
                progress: Callable[[int, int], None] | None = None) -> int:
    """Copy every record of the ledger at ``source`` (a file, or a ``postgresql://`` URL) into a new ledger at
    ``target`` (likewise), checked as its writer checks any append; return the number of records copied.
    ``progress(records done, records in all)`` after each batch. A database source is read as committed when the
    copy starts, every row checked against its leaf hash (:func:`ledger.pg.store.payloads`). A file target is
    written under a temporary name and linked to its name once whole, never over a file (its index too): a copy
    that fails leaves no file that looks like a shorter ledger; nor does one that the checkpoint published for the
    target (:func:`ledger._beside.published_at`) does not lead to, which would fork that log. A database target
    must hold no table; if the copy fails, the tables it made are dropped again (if that fails too, the error
    says what the database holds).

    Raises:
        StorageError: ``store.exists`` (``target``, or its index, exists; a database ``target`` holds a ledger),
        I/O or database errors; CorruptStoreError (``source`` is damaged); IndexDamaged (a database row missing or
        not its leaf). RuleError: a record of ``source`` breaks a rule (audit ``source``). VerificationError
        ``checkpoint.*``: the checkpoint published for ``target`` is not of this copy's log; NoteFormatError
        ``checkpoint.unreadable``: the one there is not a checkpoint.
    """
    expect_path(source, "source")
    expect_path(target, "target")
    keys = list(authority_keys)
    if not is_url(target) and Path(target).exists():  # refused before the source is opened
        exists = StorageError(f"{target} exists; it is never overwritten: copy to a new name", code="store.exists")
        _about(exists, target)
        raise exists
    try:
        origin, total, payloads_of = payloads(str(source)) if is_url(source) else _file_payloads(Path(source))
    except StoneTrailError as exc:
        _about(exc, source)
        raise
    rows = _records(payloads_of, source)
    try:
        if is_url(target):
            return _copy(origin, total, rows, str(target), keys, progress, partial=str(target))
        final = Path(target)
        building = final.with_name(f"{final.name}.{secrets.token_hex(4)}.partial")  # a name nobody else uses
        try:
            done = _copy(origin, total, rows, building, keys, progress, partial=None)
            _extends_published(building, final, origin)
            if os.path.lexists(index_path(final)):  # never over another file, an index of a ledger gone included
                raise StorageError(f"{index_path(final)} exists; it is never overwritten: move it away, or copy to "
                                   "a new name", code="store.exists")
            link_new(building, final)  # never over a file that appeared meanwhile (store.exists)
            with contextlib.suppress(OSError):  # else the index is built anew where it is next needed (a cache)
                os.rename(index_path(building), index_path(final))
            return done
        finally:
            building.unlink(missing_ok=True)
            discard_index(building)  # with its -wal and -shm
    except StoneTrailError as exc:  # a record that breaks a rule is the source's; the rest, the target's
        _about(exc, source if isinstance(exc, VerificationError) else target)
        raise


def _about(exc: StoneTrailError, location: str | Path) -> None:
    """Name ``location`` (a URL without its password) as the file ``exc`` is about
    (:attr:`~ledger.errors.StoneTrailError.file`), unless it names one already."""
    if exc.file is None:
        exc.file = redact(str(location)) if is_url(location) else str(location)


def _records(payloads_of: Iterator[bytes], source: str | Path) -> Iterator[Record]:
    """The records of ``payloads_of``, decoded; an error reading or decoding them names ``source``."""
    try:
        for payload in payloads_of:
            yield Record.from_bytes(payload)
    except StoneTrailError as exc:
        _about(exc, source)
        raise


def _copy(origin: str, total: int, rows: Iterator[Record], target: str | Path, keys: list[bytes],
          progress: Callable[[int, int], None] | None, partial: str | None) -> int:
    """Append ``rows`` to a new ledger at ``target`` in batches; return how many. ``partial``: a database target,
    whose tables are dropped again if the copy fails or is interrupted (the database as it was before)."""
    done, made = 0, []
    try:
        with _new_ledger(target, origin, keys) as copy:
            made = ledger_tables(partial) if partial is not None else []
            batch: list[Record] = []
            for record in rows:
                batch.append(record)
                if len(batch) == BATCH:
                    copy.append_batch(batch)
                    done, batch = done + len(batch), []
                    if progress is not None:
                        progress(done, total)
            if batch:
                copy.append_batch(batch)
                done += len(batch)
    except StoneTrailError as exc:
        if partial is not None and made:
            try:
                drop_ledger(partial, made)
                exc.about(f"the copy stopped after {done} of {total} records; {redact(partial)} is empty again")
            except StoneTrailError:
                exc.about(f"the copy stopped after {done} of {total} records, which {redact(partial)} now holds: "
                          "drop and recreate that database before copying again")
        raise
    except BaseException:  # an interrupt (Ctrl-C, SIGTERM in the CLI): all or nothing, as for a file (a review:
        if partial is not None and made:  # the part copied verified valid, and a second copy was refused)
            with contextlib.suppress(StoneTrailError):
                drop_ledger(partial, made)
        raise
    if progress is not None:
        progress(done, total)
    return done


def _new_ledger(target: str | Path, origin: str, keys: list[bytes]) -> Ledger:
    """A new ledger at ``target`` for the copy. A file is not checked against the checkpoint published beside it
    (in the source's folder, the source's own): it holds none of its records yet, and takes its name only once it
    holds them all and leads to that checkpoint (:func:`_extends_published`)."""
    if is_url(target):
        return Ledger.create(str(target), origin, keys)
    return Ledger(FileBackend(FileStore.create(target, origin), frozenset(keys), published=False))


def _extends_published(building: Path, final: Path, origin: str) -> None:
    """Refuse a copy that the checkpoint published beside ``final`` (of ``origin``) does not lead to: fewer records
    than its tree size, or another root at that size (``checkpoint.beyond_log``, ``checkpoint.root_mismatch``,
    VerificationError): a ledger there would fork the published log, as :func:`ledger.backends.refuse_fork_beside`
    says of a new one. Its signature is not checked: it only refuses."""
    at = published_at(final, origin, strict=True)  # one that is not a checkpoint could not tell: refused
    if at is None:
        return
    place, published = at
    try:
        check_checkpoint_of(building, published)
    except (VerificationError, NoteFormatError) as exc:
        raise VerificationError(f"{place} beside {final} is a checkpoint of {origin!r:.80} at "
                                f"{published.tree_size} records that this copy does not lead to ({exc}): it would "
                                "fork the published log there; copy it to another folder", code=exc.code) from exc
