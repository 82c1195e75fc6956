"""Where a :class:`~ledger.Ledger` keeps its records: the two stores behind the one writer facade (issue 12,
docs/adr/0023-postgresql-store.md).

A :class:`Backend` appends a checked batch durably and answers from its index (state, tree, records); the
facade above it never knows which one it has. :class:`FileBackend` is the embedded default: the append-only log
file (:class:`~ledger.storage.FileStore`, one writer under a file lock) with its SQLite index beside it, written
log first, index after (:mod:`ledger.index`). :class:`ledger.pg.writer.PgBackend` keeps both in one PostgreSQL
database, for many writers.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol

from ._beside import published_at, short_of
from .errors import InputError, StorageError, VerificationError
from .findings import raise_first
from .hashing import Digest
from .index.anchor import Checked, check_tree, keep_anchor
from .index.indexed import LedgerIndex, LogFile
from .index.maps import IndexDamaged
from .index.opening import Progress, discard_index, open_index
from .index.reading import ROW_FAULTS
from .keys import NoteVerifierKey
from .record import Record
from .registry import format_registry_extension
from .storage import FileStore

__all__ = ["Backend", "CheckpointBody", "FileBackend"]

#: What a checkpoint signs, read in one consistent view: (tree size, root hash, registry line, heads line,
#: identities line) (docs/format.md §7).
CheckpointBody = tuple[int, Digest, str, str, str]


class Backend(Protocol):
    """A ledger's store and index, as the writer facade uses them."""

    @property
    def origin(self) -> str: ...

    @property
    def index(self) -> LedgerIndex:
        """The replayed state, tree and records as of this handle's latest view."""
        ...

    def refresh(self) -> None:
        """Bring :attr:`index` up to what other writers committed (a no-op for a single-writer store)."""

    def append_batch(self, records: Sequence[Record]) -> int:
        """Check ``records`` as the next ones and append them durably, all or nothing; return the position of
        the first. Raises RuleError (the first finding; nothing written), StorageError."""
        ...

    def checkpoint_body(self, signer: NoteVerifierKey) -> CheckpointBody:
        """What a checkpoint of the whole log signs now (the trees kept as a snapshot for its bundles), to be
        signed by ``signer`` (:meth:`signed` then keeps the note)."""
        ...

    def signed(self, sign: Callable[[str], str]) -> None:
        """Right after a checkpoint of :meth:`checkpoint_body` was signed: keep where the next one starts, signed
        by ``sign`` (text -> signed note, by the same signer)."""

    def close(self) -> None: ...


def lines_of(index: LedgerIndex, checked: Checked | None = None) -> CheckpointBody:
    """The :data:`CheckpointBody` of ``index``, its trees kept as a snapshot (``checked``: its root and trees as
    :func:`~ledger.index.anchor.check_tree` checked them, not read again; else read). Raises IndexDamaged."""
    registry = format_registry_extension(index.state.registry.size, index.state.registry.head)
    heads, identities = index.extensions(keep=True, trees=checked.trees if checked else None)
    return (index.size, checked.root if checked else index.tree.root_at(index.size), registry, heads,
            identities)


def _not_rolled_back(store: FileStore, records: int) -> None:
    """Refuse to write to a ledger file of ``records`` records, fewer than the checkpoint published beside it
    covers (:func:`ledger._beside.published_of`): records its operator signed are missing, and an append would
    fork the published log. Raises VerificationError ``checkpoint.beyond_log``."""
    if (short := short_of(store.path, store.origin, records)) is not None:
        raise VerificationError(f"{short}, and an append would fork the published log; recover the missing records "
                                "(a backup, a mirror), or move that checkpoint aside if it is not this ledger's",
                                code="checkpoint.beyond_log")


def refuse_fork_beside(path: str | Path, origin: str) -> None:
    """Refuse to create a ledger of ``origin`` at ``path`` beside a checkpoint published for that origin
    (:func:`ledger._beside.published_of`) of any records: a new log of that origin there would fork the published
    one (its first append would not extend it). Raises VerificationError ``checkpoint.beyond_log`` before any
    file is made; NoteFormatError ``checkpoint.unreadable`` if a ``checkpoint.txt`` there is not one (it could not
    tell)."""
    at = published_at(path, origin, strict=True)
    if at is not None and at[1].tree_size > 0:
        raise VerificationError(f"{at[0]} beside {path} is a checkpoint of {origin!r:.80} "
                                f"signed at {at[1].tree_size} records: a new, empty ledger of that origin there "
                                "would fork the published log; create it in another folder or under another origin "
                                "(or copy the published ledger: stonetrail copy)", code="checkpoint.beyond_log")


class FileBackend:
    """A ledger file held for writing (its lock), with its index beside it."""

    def __init__(self, store: FileStore, authority_keys: frozenset[bytes], progress: Progress | None = None,
                 *, published: bool = True) -> None:
        """``published``: refuse a file holding fewer records than the checkpoint published beside it covers
        (``checkpoint.beyond_log``); False for a copy being written, whose records are all still to come."""
        self._store, self._authority_keys = store, authority_keys
        self._prefix: bytes | None = None  # SHA-256 of the log up to the index's end, from the last check_tree
        self._body: CheckpointBody | None = None  # the last checkpoint body
        index = None
        try:
            index = open_index(LogFile.open(store.path, store.origin), authority_keys, progress=progress)
            if published:
                _not_rolled_back(store, index.size)
        except BaseException:
            if index is not None:
                index.close()  # else its -wal and -shm files stay until the collector closes it
            store.close()
            raise
        self._index = index
        store.resume(index.size, index.end, index.payload)

    @property
    def origin(self) -> str:
        return self._store.origin

    @property
    def index(self) -> LedgerIndex:
        return self._index

    def refresh(self) -> None:
        """Nothing to do: this handle is the file's one writer."""

    def append_batch(self, records: Sequence[Record], *, rebuilt: bool = False) -> int:
        """Check each record as it is applied, write the batch with one fsync, then the index (log first). The
        index never counts a record that is not durably written: if the write fails, the handle is poisoned
        (``store.poisoned`` for every later append or checkpoint: reopen the file). An index row found damaged,
        or of the wrong shape, while the batch is checked: nothing is written, the index is rebuilt from the log
        and the batch checked again (``rebuilt``: it was)."""
        self._store.check_intact()
        first, index = self._index.size, self._index
        try:
            for i, record in enumerate(records):
                if findings := index.apply(first + i, record):  # checked once, as it is applied
                    raise_first(findings)
            self._store.append_batch([r.raw for r in records])
        except (IndexDamaged, *ROW_FAULTS):  # nothing written: rebuild the index from the log, check the batch again
            if rebuilt:
                raise
            self._reopen_index(rebuild=True)
            return self.append_batch(records, rebuilt=True)
        except BaseException:
            index.abandon()  # the index never counts a record that is not durably written
            raise
        try:
            index.commit([(r, *self._store.span(first + i)) for i, r in enumerate(records)])
        except StorageError as exc:  # durable in the log: the append succeeded; the index is built anew from it
            if not exc.code.startswith("index."):
                raise
            self._reopen_index(rebuild=True)
        return first

    def checkpoint_body(self, signer: NoteVerifierKey) -> CheckpointBody:
        """The body, from the index once its tree is checked against the log (:func:`ledger.index.anchor
        .check_tree`); from an index rebuilt from the log if a row fails its checksum or the tree is not the
        log's."""
        self._store.check_intact()
        try:  # even an index this handle built: its file can be written while the handle is open (a review)
            checked = check_tree(self._index, signer)
            self._prefix, body = checked.prefix, lines_of(self._index, checked)
        except (StorageError, InputError, *ROW_FAULTS) as exc:  # index.*, or a row value of the wrong shape (one
            if isinstance(exc, StorageError) and not exc.code.startswith("index."):  # that does not encode, or
                raise  # breaks where it is used): never sign from it; rebuild it from the log
            self._prefix = None  # the anchor is then made from the rebuilt index, the log hashed again
            self._reopen_index(rebuild=True)
            body = lines_of(self._index)
        self._body = body
        return body

    def signed(self, sign: Callable[[str], str]) -> None:
        with contextlib.suppress(StorageError, sqlite3.Error):  # no anchor: the next signing reads more, that is all
            if self._body is not None:
                keep_anchor(self._index, sign, self._body[1], self._body[3], self._prefix)

    def _reopen_index(self, *, rebuild: bool = False) -> None:
        """A new index handle, caught up from the log (``rebuild``: built anew from it). If that fails too, the
        handle is poisoned (``store.poisoned``): reopen the ledger."""
        self._index.close()
        if rebuild:
            discard_index(self._store.path)
        try:
            self._index = open_index(LogFile.open(self._store.path, self.origin), self._authority_keys)
        except BaseException:
            self._store.poison()
            raise

    def close(self) -> None:
        """Close the index; release the writer lock and the file."""
        self._index.close()
        self._store.close()
