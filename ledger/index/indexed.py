"""A ledger's index, open beside its log (DESIGN.md §6, docs/adr/0018-sqlite-index.md): the replayed state of the
records it holds, their tree over C2SP tiles, the checkpoint's two sorted trees, and the check that it is the
log's own (:meth:`LedgerIndex.check`). Opening, catching up and building one: :mod:`ledger.index.opening`.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
from collections.abc import Callable, Sequence
from typing import Any

from ..custody import CustodyState
from ..events import REGISTRY_KINDS
from ..hashing import Digest
from ..heads import HEADS_EXTENSION, Head, ItemHeads, head_leaf
from ..identity import IDENTITIES_EXTENSION, IdentityLeaf, sort_key
from ..merkle import leaf_hash
from ..record import Record
from ..storage.frames import read_frame
from ..storage.framing import FRAME_MAGIC
from ..storage.tiles import TiledTree
from .db import IndexDB, Tables
from .logfile import LogFile
from .maps import IndexDamaged, StoredMap, Written
from .snapshot import HEADS, IDENTITIES, Snapshot, latest_snapshot, merged, tree_line, write_snapshot
from .state import TABLES, UNCOUNTED, attach, flush, forget, increasing, track

__all__ = ["CHECKED", "LedgerIndex", "LogFile", "Trees"]

#: Records at the end of the index checked against the log on every open (each a read of one frame).
CHECKED = 64
_SPAN = 1 << 20  # bytes of the log read at once for those records (beyond it, one read per record)
_LIMIT = 1 << 62  # no index holds this many records or bytes: a meta value past it is damage
_TABLES = list(TABLES)
#: The (sort key, leaf input, leaf hash) of the item-head tree and of the identity tree, each in tree order.
Trees = tuple[list[tuple[bytes, bytes, Digest]], list[tuple[bytes, bytes, Digest]]]
#: The tables whose rows are a checkpoint tree's leaves, by tree (their changes are tracked: :func:`track`).
_TREES = {"head_positions": HEADS, "head_latest": HEADS, "id_claims": IDENTITIES}


class LedgerIndex:
    """The replayed state of a ledger's first :attr:`size` records, kept in its index file.

    ``state`` (custody, registry, identities) and ``heads`` answer as a replay of those records would; ``tree``
    is their RFC 9162 tree over C2SP tiles. Changes go to memory until :meth:`commit` writes them in one
    transaction with the new records' frames and tiles, or :meth:`abandon` drops them.
    """

    def __init__(self, db: Tables, log: LogFile | None, authority_keys: frozenset[bytes] | None, *,
                 known: Sequence[tuple[int, Record]] = ()) -> None:
        self.db, self.log, self.authority_keys = db, log, authority_keys
        self.origin: str = log.origin if log is not None else db.meta("origin")
        self.size: int = db.meta("size")
        self.end: int = db.meta("end")
        self._counts: dict[str, int] = db.meta("counts")
        if type(self.size) is not int or type(self.end) is not int or not 0 <= self.size < _LIMIT \
                or not 0 <= self.end < _LIMIT \
                or (isinstance(db, IndexDB) and self.size > self.end) \
                or type(self._counts) is not dict or not all(type(k) is str and type(v) is int and 0 <= v < _LIMIT
                                                             for k, v in self._counts.items()):
            raise IndexDamaged(f"{db.path}: its size, end or row counts are missing or not numbers")
        for table in TABLES:  # a map of count 0 answers every lookup "absent" unread: its table must be empty
            if table not in UNCOUNTED and not self._counts.get(table) \
                    and db.db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is not None:
                raise IndexDamaged(f"{db.path}: index table {table} holds rows, its recorded count none")
        self.state = CustodyState(self.origin, authority_keys or ())
        self.heads = ItemHeads()
        self._maps: list[StoredMap[Any, Any]] = attach(self.state, self.heads, db.db, self._counts)
        self.state.size = self.size
        self.tree = TiledTree(db, self.size)
        # the latest snapshot: its trees' leaves, plus the keys changed since, are today's. A reader (no authority
        # keys) writes nothing, so tracks nothing, and looks for it only if it needs today's trees (:meth:`leaves`)
        self._snapshot: tuple[int | None] | None = None if authority_keys is None else (latest_snapshot(db.db),)
        track(self._maps, _TREES if self._snapshot is not None and self._snapshot[0] is not None else None)
        held = dict(known)  # registry records an earlier view of these tables read and checked (``known``)
        positions, recorded = db.registry_positions(), db.meta("registry")
        if positions and positions[-1] >= self.size:
            raise IndexDamaged(f"index table registry names record {positions[-1]}, past the {self.size} indexed")
        if recorded is None and (not self.size or not isinstance(db, IndexDB)):
            recorded = len(positions) if self.size else 0  # empty, or a database store written before the count
        if len(positions) != recorded:  # a row hidden by a damaged page, or deleted
            raise IndexDamaged(f"index table registry holds {len(positions)} rows, not the {recorded} it recorded")
        read = dict(zip(unread := [p for p in positions if p not in held], self.records_at(unread), strict=True))
        self._registry = [(p, held.get(p) or read[p]) for p in positions]
        for position, record in self._registry:  # the registry is small and held in memory: replay it (a reader,
            # with no authority keys, takes what the writer checked)
            if record.body.kind not in REGISTRY_KINDS:
                raise IndexDamaged(f"index table registry names record {position}, a {record.body.kind} record")
            if authority_keys is not None and position not in held and (
                    findings := self.state.registry.check(record, position)):
                raise IndexDamaged(f"registry record {position} no longer passes: {findings[0]}")
            self.state.registry.commit(record, position)

    def fresh(self) -> None:
        """Note that this index's tables are empty (a new index, being built): from now on every key written to
        them is kept in a :class:`~ledger.index.maps.Written` filter, and a lookup of a key never written costs no
        read. Raises ValueError if it holds records."""
        if self.size:
            raise ValueError(f"the index holds {self.size} records: its tables are not empty")
        written = Written()
        for rows in self._maps:
            rows.written = written

    @property
    def _base(self) -> int | None:
        """The log size of the latest snapshot (:func:`~ledger.index.snapshot.latest_snapshot`), or None."""
        if self._snapshot is None:
            self._snapshot = (latest_snapshot(self.db.db),)
        return self._snapshot[0]

    @property
    def registry(self) -> list[tuple[int, Record]]:
        """The indexed registry records (position, record), in log order."""
        return self._registry

    def payload(self, position: int) -> bytes:
        """The payload of record ``position`` (< :attr:`size`), read from the log at its indexed place and checked
        against its leaf hash (a reader: against the parent of its pair, :meth:`_framed`). Raises IndexDamaged if
        the log's frame there is not the indexed record."""
        db, log = self.files()
        return self._framed(position, log.read, pairs=db.keeps_frames)

    def _framed(self, position: int, read: Callable[[int, int], bytes], *, pairs: bool = False) -> bytes:
        """:meth:`payload`, with the frame's bytes got from ``read(offset, length)``. With ``pairs`` (a reader, whose
        frames rows are kept), while the record's leaf hash is not known yet: checked against the parent of the pair
        it is in, with the other record of the pair read from the log (in the same read) and hashed
        (:meth:`TiledTree.pair_holds`), so that neither this check nor a proof of either reads a tile of leaf hashes;
        if that does not tell, against its leaf hash."""
        db, log = self.files()
        offset, length = db.frame(position)
        other = None
        if pairs and position ^ 1 < self.size and self.tree.known_leaf(position) is None:
            with contextlib.suppress(IndexDamaged):  # no frame for it: the leaf hash decides
                other = db.frame(position ^ 1)
                start, end = min(offset, other[0]), max(offset + length, other[0] + other[1])
                if end - start == length + other[1]:  # the two frames side by side: one read
                    read = _within(read(start, end - start), start)
        payload = read_frame(read(offset, length))
        if payload is None:
            raise IndexDamaged(f"record {position} is not at offset {offset} of {log.path}")
        hashed = leaf_hash(payload)
        if other is not None and (pair := read_frame(read(*other))) is not None \
                and self.tree.pair_holds(position, hashed, leaf_hash(pair)):
            return payload
        if hashed != self.tree.leaf_hash(position):
            raise IndexDamaged(f"record {position} is not at offset {offset} of {log.path}")
        return payload

    def files(self) -> tuple[IndexDB, LogFile]:
        """The index file and the log of an index beside a ledger file (not a database store's)."""
        if not isinstance(self.db, IndexDB) or self.log is None:
            raise TypeError("not the index of a ledger file")
        return self.db, self.log

    def record(self, position: int) -> Record:
        """Record ``position``, decoded (see :meth:`payload`)."""
        return Record.from_bytes(self.payload(position))

    def payloads(self, positions: Sequence[int]) -> dict[int, bytes]:
        """Position -> payload (see :meth:`payload`) of each of ``positions`` (a database store reads them in one
        query)."""
        return {p: self.payload(p) for p in positions}

    def records_at(self, positions: Sequence[int]) -> list[Record]:
        """Records ``positions``, decoded, in that order (see :meth:`payloads`)."""
        found = self.payloads(positions)
        return [Record.from_bytes(found[p]) for p in positions]

    def apply(self, position: int, record: Record, *, trusted: bool = False) -> list[Any]:
        """Apply ``record`` as record ``position`` (= the records applied so far) to the state and heads; return
        its findings (see :meth:`ledger.custody.CustodyState.apply`, also for ``trusted``)."""
        findings = self.state.apply(record, trusted=trusted)
        self.heads.add(position, record)
        return findings

    def commit(self, records: Sequence[tuple[Record, int, int]]) -> None:
        """Write the applied ``records`` — (record, frame offset, frame length), in log order, already durable in
        the log — with the state changed by applying them, in one transaction."""
        if not records:
            return
        first = self.size
        self._commit([r.record_hash for r, _, _ in records],  # its leaf hash
                     [(first + i, r) for i, (r, _, _) in enumerate(records) if r.body.kind in REGISTRY_KINDS],
                     records[-1][1] + records[-1][2], lambda: self._add_records(first, records))

    def commit_frames(self, leaves: Sequence[Digest], frames: Sequence[tuple[int, int]],
                      registry: Sequence[tuple[int, Record]]) -> None:
        """:meth:`commit` of applied records of the log file given by their leaf hashes, their frames' (offset,
        length) and the registry records among them (position, record): a caller applying many records keeps
        no more of each."""
        if frames:
            first = self.size
            self._commit(leaves, registry, frames[-1][0] + frames[-1][1],
                         lambda: self.files()[0].add_frames(first, frames))

    def _commit(self, leaves: Sequence[Digest], registry: Sequence[tuple[int, Record]], end: int,
                add_records: Callable[[], None]) -> None:
        first = self.size
        tiles = self.tree.append(leaves)
        size = first + len(leaves)
        seen = {} if self.log is None else {"file": self.log.identity(end)}  # the log file as it is now
        with self.db.transaction():  # on failure the caller drops this handle: the log is ahead, reopen catches up
            counts = flush(self._maps)
            self.db.put_tiles(tiles)
            add_records()
            self.db.add_registry(p for p, _ in registry)
            self.db.set_meta(size=size, end=end, counts=counts, last=bytes(self.tree.leaf_hash(size - 1)),
                             root=bytes(self.tree.root_at(size)), registry=len(self._registry) + len(registry),
                             **seen)
        self.size, self.end, self._counts = size, end, counts
        self._registry += registry

    def _add_records(self, first: int, records: Sequence[tuple[Record, int, int]]) -> None:
        """Keep where records ``first`` on are (their frames' places in the log), in :meth:`commit`'s
        transaction."""
        self.files()[0].add_frames(first, [(o, n) for _, o, n in records])

    def abandon(self) -> None:
        """Drop every change since the last :meth:`commit` (a batch that failed its rules or its write)."""
        forget(self._maps, self._counts)
        self.state.size = self.size
        self.tree = TiledTree(self.db, self.size)
        self.state.registry = type(self.state.registry)(self.authority_keys or ())
        for position, record in self._registry:
            self.state.registry.commit(record, position)

    def leaves(self) -> Trees:
        """The (sort key, leaf input, leaf hash) of the item-head tree and of the identity tree (docs/format.md
        §7c, §7d) of the indexed records, in tree order: the leaves :class:`~ledger.heads.ItemHeads` and
        :class:`~ledger.identity.IdentityIndex` build from a replay. From the latest snapshot with the rows
        changed since merged in if there is one (O(changes) reads), else from one walk of the tables. Every row's
        checksum is checked, and each tree's leaf count against its tables' row counts. Raises IndexDamaged."""
        if self._base is None:
            heads, claims = self._walked()
        else:
            changed: dict[int, dict[bytes, bytes | None]] = {HEADS: {}, IDENTITIES: {}}
            walked = 0
            for key, _ in self.table("changed").rows():
                changed[key[0]][key[1:]] = None
                walked += 1
            if walked != len(self.table("changed")) or set(changed) != {HEADS, IDENTITIES}:
                raise IndexDamaged("index table changed: a walk does not meet the rows the index holds")
            heads = merged(Snapshot(self.db.db, self._base, HEADS).pairs(),
                           {key: self._head_leaf(key) for key in changed[HEADS]})
            claims = merged(Snapshot(self.db.db, self._base, IDENTITIES).pairs(),
                            {key: self._claim_leaf(key) for key in changed[IDENTITIES]})
        for table, leaves in (("head_positions", heads), ("head_latest", heads), ("id_claims", claims)):
            if len(leaves) != len(self.table(table)):  # rows a damaged page hides from a walk
                raise IndexDamaged(f"index table {table}: its tree has {len(leaves)} leaves, the index holds "
                                   f"{len(self.table(table))} rows")
        return heads, claims

    def table(self, name: str) -> StoredMap[Any, Any]:
        """The map over the state table ``name`` (:data:`ledger.index.state.TABLES`)."""
        return self._maps[_TABLES.index(name)]

    def _walked(self) -> Trees:
        """:meth:`leaves` from one walk of the tables (never a lookup per key, which a damaged interior page
        could send astray)."""
        heads = []
        for pair in itertools.zip_longest(self.table("head_positions").rows(), self.table("head_latest").rows()):
            if pair[0] is None or pair[1] is None or pair[0][0] != pair[1][0]:
                raise IndexDamaged("index tables head_positions and head_latest do not name the same items")
            (item, at), (_, head) = pair
            _check_positions(item, at)
            leaf = head_leaf(item, Head(at[-1], head, len(at)))
            heads.append((item.encode(), leaf, leaf_hash(leaf)))
        claims = []
        for (kind, key), c in self.table("id_claims").rows():
            leaf = IdentityLeaf(kind, key, tuple(c)).to_bytes()
            claims.append((sort_key(kind, key), leaf, leaf_hash(leaf)))
        return heads, claims

    def _head_leaf(self, key: bytes) -> bytes | None:
        """The item-head leaf input of the item whose sort key is ``key`` (None: no such item)."""
        positions, latest = self.table("head_positions"), self.table("head_latest")
        item = positions.key_of(key)
        at, head = positions.get(item), latest.get(item)
        if at is None or head is None:
            if at is not None or head is not None:
                raise IndexDamaged(f"index tables head_positions and head_latest disagree on item {item!r}")
            return None
        _check_positions(item, at)
        return head_leaf(item, Head(at[-1], head, len(at)))

    def _claim_leaf(self, key: bytes) -> bytes | None:
        """The identity leaf input of the identity whose sort key is ``key`` (None: no claim on it)."""
        claims = self.table("id_claims")
        kind, name = claims.key_of(key)
        found = claims.get((kind, name))
        return None if found is None else IdentityLeaf(kind, name, tuple(found)).to_bytes()

    @staticmethod
    def lines(heads: Sequence[tuple[bytes, bytes, Digest]], claims: Sequence[tuple[bytes, bytes, Digest]]
              ) -> tuple[str, str]:
        """The ``stonetrail-heads`` and ``stonetrail-identities`` lines of these :meth:`leaves`."""
        return tree_line(HEADS_EXTENSION, heads), tree_line(IDENTITIES_EXTENSION, claims)

    def extensions(self, *, keep: bool = False, trees: Trees | None = None) -> tuple[str, str]:
        """The checkpoint's heads and identities lines of the indexed records (``trees``, else :meth:`leaves`).
        With ``keep`` (a writer about to sign), both trees are stored as a :mod:`~ledger.index.snapshot` at this
        size, for the bundles under the checkpoint. Raises IndexDamaged."""
        heads, claims = self.leaves() if trees is None else trees
        lines = self.lines(heads, claims)
        if keep:
            changed = self.table("changed")  # empty from now on: the snapshot is the trees' new base
            with self.db.transaction():
                write_snapshot(self.db.db, self.size, HEADS, lines[0], heads)
                write_snapshot(self.db.db, self.size, IDENTITIES, lines[1], claims)
                changed.clear()
                self._counts = {**self._counts, "changed": 0}
                self.db.set_meta(counts=self._counts)
            self._snapshot = (self.size,)
            track(self._maps, _TREES)
        return lines

    def check(self) -> None:
        """Check that this index is of its log: the file as the index last saw it (:meth:`LogFile.identity`, kept at
        every commit: a copy of the index beside a copy of the log or another ledger, or a file written over the
        log or cut short, is never taken on trust, whatever the files hold), or that file grown since (appended
        to: by a writer that stopped before its index commit, or behind its back; the records after the index's
        end are caught up and checked as new ones) or cut back to the index's end by a repair since (its side
        file is there), origin,
        header, the last indexed record where it says, with the leaf hash and root it recorded, and the
        :data:`CHECKED` records before it each where the index says, with its leaf hash (an index of a ledger
        that forked from this one differs there; their frames are read in one piece when they span at most
        :data:`_SPAN` bytes). Raises IndexDamaged."""
        db, log = self.files()
        if db.meta("origin") != log.origin or db.meta("header") != hashlib.sha256(log.header).digest():
            raise IndexDamaged(f"{db.path} is the index of another ledger")
        if not log.seen_as(db.meta("file"), self.end):
            raise IndexDamaged(f"{db.path} was written for another file than {log.path}, or the file changed since "
                               "(a copy, another ledger, one written over it, or cut short)")
        if self.end > log.size():
            raise IndexDamaged(f"{db.path} indexes {self.end} bytes; {log.path} has {log.size()}")
        if self.size:
            last = self.size - 1
            if db.meta("last") != self.tree.leaf_hash(last) or db.meta("root") != self.tree.root_at(self.size):
                raise IndexDamaged(f"{db.path}: its tiles are not the ones it recorded")
            offset, length = db.frame(last)
            if offset + length != self.end:
                raise IndexDamaged(f"{db.path}: its last frame does not end where it recorded")
            if log.read(offset, len(FRAME_MAGIC)) != FRAME_MAGIC:  # a batch the log never ended: a torn tail
                raise IndexDamaged(f"{db.path}: its last record is inside a batch {log.path} never ended")
            first = max(0, self.size - CHECKED)
            start = db.frame(first)[0]
            read = _within(log.read(start, self.end - start), start) if 0 <= self.end - start <= _SPAN else log.read
            for position in range(first, self.size):
                self._framed(position, read)

    def saw(self) -> None:
        """Record the log file as it is now (:meth:`check`), if a commit did not: a writer that caught up with
        no record (a log cut back by a repair), so that an old side file excuses nothing later."""
        if self.log is not None and self.db.meta("file") != self.log.identity(self.end):
            with self.db.transaction():
                self.db.set_meta(file=self.log.identity(self.end))

    def close(self) -> None:
        """Close the index file and the log's read descriptor."""
        self.db.close()
        if self.log is not None:
            self.log.close()


def _within(span: bytes, start: int) -> Callable[[int, int], bytes]:
    """A read of the log's bytes ``span``, from offset ``start`` on: empty before it, short past its end."""
    return lambda offset, n: span[offset - start:offset - start + n] if offset >= start else b""


def _check_positions(item: str, at: object) -> None:
    """Raise IndexDamaged unless ``at``, the head_positions row of ``item``, is :func:`increasing`, at least one."""
    if not at or not increasing(at):
        raise IndexDamaged(f"index table head_positions holds no increasing positions of item {item!r}")
