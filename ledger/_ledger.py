"""The Ledger facade: open or create a ledger file, append records that pass every rule, checkpoint it.

A writer's view of one ledger. Opening replays the whole file through the custody rules (so the writer knows
every item's holder and latest record) and builds the Merkle tree; :meth:`Ledger.append` refuses a record that
would get any finding, so a ledger written only through this class is valid by construction. Auditors who want
every fault of an existing file use :func:`ledger.audit.check_ledger` instead.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType

from ._text import did_you_mean
from .backends import Backend, FileBackend, refuse_fork_beside
from .checkpoint import Checkpoint, sign_checkpoint
from .custody import CustodyState
from .errors import (
    ArgumentError,
    InputError,
    RecordFormatError,
    UnknownItemError,
    expect,
    expect_each,
    expect_path,
)
from .events import Event
from .hashing import Digest
from .index.opening import Progress
from .item import Item
from .keys import PrivateKey, note_verifier_key
from .note import sign_note
from .pg.db import is_url
from .pg.writer import PgBackend
from .record import Body, Output, Record
from .rules import RULES
from .storage import FileStore
from .storage.tiles import TiledTree

__all__ = ["MAX_AHEAD_MS", "Ledger", "system_now_ms"]

#: How far after the writer's clock a record may be dated, in ms: one day (clocks that disagree, a time zone
#: misread). Later is ``record.time_future`` (docs/format.md §4.2): a writer's rule, never a verifier's.
MAX_AHEAD_MS = 86_400_000


def system_now_ms() -> int:
    """The system clock in ms since the Unix epoch, UTC: the default clock of a :class:`Ledger`."""
    return time.time_ns() // 1_000_000


class Ledger:
    """An open ledger file, held for writing (one writer at a time; readers are never blocked).

    Use :meth:`create` or :meth:`open`, ideally as a context manager. ``authority_keys`` are the trusted
    accreditation-authority public keys (raw 32 bytes): registry records are checked against them. ``now_ms``:
    the writer's clock (ms since the Unix epoch, UTC; default the system clock): an append refuses a record
    dated more than :data:`MAX_AHEAD_MS` after it. Opening replays the file without it (what a ledger already
    holds is an audit's business, judged on any day alike).
    """

    def __init__(self, backend: Backend, *, now_ms: Callable[[], int] = system_now_ms) -> None:
        self._backend = backend
        self._now_ms = now_ms

    @classmethod
    def create(cls, path: str | Path, origin: str, authority_keys: Iterable[bytes], *,
               now_ms: Callable[[], int] = system_now_ms) -> Ledger:
        """Create a new, empty ledger file for ``origin`` (e.g. ``example.com/ledger``).

        Raises:
            StorageError: the file exists (``store.exists``) or cannot be written. ArgumentError: ``input.type``.
            VerificationError: ``checkpoint.beyond_log``: a checkpoint of ``origin`` is published beside it
            (:func:`ledger.backends.refuse_fork_beside`); NoteFormatError ``checkpoint.unreadable``: a
            ``checkpoint.txt`` beside it is not a checkpoint.
        """
        keys = frozenset(_writer_arguments(path, authority_keys, now_ms))
        expect(origin, str, "origin", "text")
        if is_url(path):
            return cls(PgBackend.create(str(path), origin, keys), now_ms=now_ms)
        if not Path(path).exists():  # else store.exists, below
            refuse_fork_beside(path, origin)
        return cls(FileBackend(FileStore.create(path, origin), keys), now_ms=now_ms)

    @classmethod
    def open(cls, path: str | Path, authority_keys: Iterable[bytes], *,
             now_ms: Callable[[], int] = system_now_ms, progress: Progress | None = None) -> Ledger:
        """Open an existing ledger for appending: its persistent index (``<path>.index``, :mod:`ledger.index`) is
        checked against the log and caught up with it, or built anew from the log when it is missing or not the
        log's (``progress(records done, records in all)`` is then called as it is built).

        Opening is not an audit: records the index already holds are not checked again, and an index built
        from scratch takes the log's custody records as the writer checked them when it appended them
        (docs/adr/0020-trusted-rebuild.md); records appended since the index was last written are checked as a
        new one is. A log someone altered behind the writer's back can open: :func:`ledger.audit.check_ledger`
        (``stonetrail verify``) checks every record.

        Raises:
            LockedError: another writer holds it. CorruptStoreError: torn tail or damaged frame, or an invalid
            record among those checked (audit it). StorageError: I/O failure. ArgumentError: ``input.type``.
        """
        keys = frozenset(_writer_arguments(path, authority_keys, now_ms))
        if is_url(path):
            return cls(PgBackend.open(str(path), keys), now_ms=now_ms)
        return cls(FileBackend(FileStore.open(path, writable=True, survey=False), keys, progress), now_ms=now_ms)

    @property
    def origin(self) -> str:
        """The ledger's origin line (names it in every record and checkpoint)."""
        return self._backend.origin

    @property
    def size(self) -> int:
        """Number of records (= Merkle tree size)."""
        return self._backend.index.size

    @property
    def state(self) -> CustodyState:
        """The replayed state of the ledger's records (kept in its index)."""
        return self._backend.index.state

    @property
    def tree(self) -> TiledTree:
        """The RFC 9162 tree of the ledger's records, over the index's C2SP tiles."""
        return self._backend.index.tree

    def root_hash(self) -> Digest:
        """RFC 9162 root hash of the whole log."""
        return self.tree.root_at(self.size)

    def record(self, position: int) -> Record:
        """The record at 0-based ``position``. Raises IndexError out of range."""
        expect(position, int, "position", "an int")
        if not 0 <= position < self.size:
            raise IndexError(f"record index {position} out of range 0..{self.size - 1}")
        return self._backend.index.record(position)

    def item(self, item_id: str) -> Item:
        """Replayed state of ``item_id``. Raises UnknownItemError (``item.unknown``, an InputError and a KeyError)
        if no record created it, suggesting an id read alike."""
        expect(item_id, str, "item_id", "an item id (text)")
        found = self.state.items.get(item_id)
        if found is None:
            raise UnknownItemError(f"no item {item_id!r} in this ledger{did_you_mean(item_id, self.state.items)}")
        return found

    def inputs(self, *item_ids: str) -> tuple[tuple[str, Digest], ...]:
        """(item id, latest record hash) for each item, sorted by id: the ``inputs`` of a next record.

        Raises:
            InputError: ``item.unknown`` (no record of this ledger created that id).
        """
        expect_each(item_ids, str, "item_ids", "an item id (text)")
        if unknown := sorted(i for i in set(item_ids) if i not in self.state.items):
            raise InputError(f"no item {unknown[0]!r} in this ledger", code="item.unknown")
        return tuple(sorted((i, self.state.items[i].head) for i in item_ids))

    def refresh(self) -> None:
        """Bring this handle's view (:attr:`size`, :attr:`state`, :meth:`inputs`) up to what other writers have
        committed since: a database store takes many writers (:meth:`record_event` does this first); a ledger
        file has one, this handle. Raises StorageError."""
        self._backend.refresh()

    @property
    def registry_head(self) -> Digest | None:
        """Record hash of the latest registry record (the ``registry_prev`` of the next one)."""
        return self.state.registry.head

    def append(self, record: Record) -> int:
        """Check ``record`` against every rule and append it durably (fsync before returning).

        Returns:
            The record's 0-based position (leaf index).
        Raises:
            RuleError: the record would get a finding (carries the first one; nothing is written).
            StorageError: ``store.fsync_failed``: the write or fsync failed (the handle is then poisoned);
                ``store.poisoned``: an earlier one did; ``store.closed``.
            InputError: ``record.time_future`` (dated more than :data:`MAX_AHEAD_MS` after the writer's clock);
                ``input.type``.
        """
        expect(record, Record, "record", "a Record")
        return self.append_batch([record])

    def append_batch(self, records: Sequence[Record]) -> int:
        """Check and append several records with one write and one fsync; all or nothing.

        Returns the position of the first. Raises as :meth:`append`; on a rule failure nothing is written. The
        in-memory state (custody, registry, tree, heads) never counts a record that is not durably written: if the
        write fails, the state is rebuilt from the records written before, and the handle is poisoned
        (``store.poisoned`` for every later append or checkpoint: close it and reopen the file).
        """
        records = expect_each(records, Record, "records", "a Record")
        if not records:
            raise RecordFormatError("empty batch", code="record.empty_batch")
        self._check_times(records)
        return self._backend.append_batch(records)

    def record_event(self, event: Event, *, actor: str, place: str, time_ms: int,
                     signers: Mapping[str, PrivateKey], inputs: Sequence[str] = (),
                     outputs: Sequence[Output] = ()) -> Record:
        """Build, sign and append the record of ``event``: the convenient way to write a ledger.

        ``actor``: the party performing the event (the holder, for custody kinds; ``authority`` for registry
        kinds). ``place``: ISO 3166-1 alpha-2 country where it happened. ``time_ms``: ms since the Unix epoch,
        UTC. ``signers``: party id -> private key, for the actor and any co-signer the kind needs (docs/format.md
        §5.2). ``inputs``: ids of existing items acted on (their latest record hashes are filled in).
        ``outputs``: new items. What is consumed follows from the kind (split, merge: every input; unset: the
        article). Returns the appended record.

        Raises:
            RuleError: the record would break a rule (nothing is written). InputError: ``item.unknown`` (an
            unknown input id), ``record.time_future`` (:meth:`append`), ``input.type`` (an argument of the
            wrong type). RecordFormatError: malformed values. StorageError: the write failed.
        """
        ids, outputs = _event_arguments(event, signers, inputs, outputs)
        rule = RULES.get(event.KIND)
        self.refresh()
        links = self.inputs(*ids)
        consumes: tuple[str, ...] = ()
        if rule is not None and rule.consumes == "all":
            consumes = tuple(ids)
        elif rule is not None and rule.consumes == "article":
            consumes = tuple(i for i in ids if self.item(i).type == "article")
        body = Body(origin=self.origin, kind=event.KIND, time_ms=time_ms, place=place, actor=actor, event=event,
                    inputs=links, consumes=consumes, outputs=tuple(sorted(outputs, key=lambda o: o.id)))
        record = Record.create(body, sorted(signers.items()))
        self.append(record)
        return record

    def checkpoint(self, key: PrivateKey, name: str | None = None) -> str:
        """A C2SP signed checkpoint of the current tree, signed by the operator ``key`` under ``name``
        (default: the origin, as C2SP tlog-checkpoint recommends). Returns the signed note text.

        The body carries three extension lines (docs/format.md §7): ``stonetrail-registry <size> <base64 head>``,
        the registry's length and head, so that the checkpoint commits to the complete registry;
        ``stonetrail-heads <item count> <base64 root>``, so that it commits to every item's latest record
        (:mod:`ledger.heads`); and ``stonetrail-identities <count> <base64 root>``, so that it commits to who
        claimed each item id, report number and inscription (:mod:`ledger.identity`).

        Raises:
            StorageError: ``store.poisoned`` (an append through this handle failed: what the file holds is
                unknown until it is reopened), ``store.closed``.
        """
        expect(key, PrivateKey, "key", "a PrivateKey")
        expect(name, (str, type(None)), "name", "text or None")
        signer = name or self.origin
        size, root, *lines = self._backend.checkpoint_body(note_verifier_key(signer, key.public_key))
        note = sign_checkpoint(Checkpoint(origin=self.origin, tree_size=size, root_hash=root, extensions=tuple(lines)),
                               signer, key)
        self._backend.signed(lambda text: sign_note(text, [(signer, key)]))
        return note

    def close(self) -> None:
        """Close the store (and its index); release the writer lock."""
        self._backend.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _check_times(self, records: Sequence[Record]) -> None:
        """``record.time_future``: a record dated more than :data:`MAX_AHEAD_MS` after the writer's clock."""
        now = self._now_ms()
        for record in records:
            if record.body.time_ms > now + MAX_AHEAD_MS:
                raise InputError(f"record dated {record.body.time_ms} ms, more than a day after this writer's clock "
                                 f"({now} ms): times are ms since the Unix epoch, UTC", code="record.time_future")


def _writer_arguments(path: object, authority_keys: object, now_ms: object) -> tuple[bytes, ...]:
    """The arguments of :meth:`Ledger.create` and :meth:`Ledger.open`, checked before any file is touched;
    returns the authority keys. Raises ArgumentError (``input.type``) naming the argument."""
    expect_path(path, "path")
    if not callable(now_ms):
        raise ArgumentError(f"now_ms: got {type(now_ms).__name__}, want a function returning ms since the epoch")
    return expect_each(authority_keys, bytes, "authority_keys", "a raw 32-byte public key (bytes)")


def _event_arguments(event: object, signers: object, inputs: object, outputs: object
                     ) -> tuple[list[str], tuple[Output, ...]]:
    """The arguments of :meth:`Ledger.record_event` that its record does not check by name: (sorted input ids,
    outputs). Raises ArgumentError (``input.type``) naming the argument."""
    expect(event, Event, "event", "an event of ledger.events")
    expect(signers, Mapping, "signers", "a mapping of party id to PrivateKey")
    assert isinstance(signers, Mapping)
    expect_each(signers.keys(), str, "signers", "a party id (text)")
    expect_each(signers.values(), PrivateKey, "signers", "a PrivateKey")
    return (sorted(expect_each(inputs, str, "inputs", "an item id (text)")),
            expect_each(outputs, Output, "outputs", "an Output"))
