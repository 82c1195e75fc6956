"""The read side over the index: what :class:`ledger.reader.LogPass` answers after a pass over the whole log,
answered from the index in O(log n) reads per question (DESIGN.md §6, docs/adr/0018-sqlite-index.md).

:func:`indexed_log` opens a ledger's index read-only (no lock, nothing written), checks it against the log as a
writer does, and returns an :class:`IndexedLog` at a checkpoint's tree size, or None when the index cannot
answer (missing, damaged, not the log's, behind the checkpoint, or without the trees of that size): the caller
then reads the log. Every record it gives is read from the log and checked against its indexed leaf hash, or
against the indexed parent of the two records' leaf hashes where it is the first of a pair read (no tile of leaf
hashes read: :meth:`ledger.index.indexed.LedgerIndex.payload`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TypeVar

from ..commitments import CommittedOver
from ..errors import StorageError
from ..hashing import Digest
from ..heads import Head, HeadProof, are_records_of, head_leaf
from ..identity import sort_key
from ..merkle import leaf_hash
from ..record import Record
from ..storage.header import read_header
from ..storage.tiles import MemoryTiles, TiledTree
from .db import IndexDB, index_path
from .indexed import LedgerIndex, LogFile
from .maps import ROW_FAULTS, IndexDamaged
from .opening import tail_size
from .snapshot import HEADS, IDENTITIES, Snapshot
from .state import increasing

__all__ = ["ROW_FAULTS", "IndexedLog", "Records", "index_fault", "indexed_log", "through_index"]

T = TypeVar("T")


class _Tree:
    """A sorted tree (item heads, identities) at the checkpoint's size: stored, or built here from the index's
    tables when the checkpoint is of the index's own size and no snapshot was kept."""

    def __init__(self, stored: Snapshot | None, leaves: Sequence[tuple[bytes, bytes, Digest]] = (),
                 line: str = "") -> None:
        self._stored = stored
        self._leaves = list(leaves)
        self._ranks = {key: rank for rank, (key, _, _) in enumerate(self._leaves)}
        self._line = stored.line if stored else line
        if stored is None:
            tiles = MemoryTiles()
            tiles.put(TiledTree(tiles, 0).append(h for _, _, h in self._leaves))
            self._nodes = TiledTree(tiles, len(self._leaves))

    def __len__(self) -> int:
        return self._stored.count if self._stored else len(self._leaves)

    def root(self) -> Digest:
        return self._stored.root if self._stored else self._nodes.root_at(len(self._leaves))

    def extension(self) -> str:
        return self._line

    def rank(self, key: bytes) -> int | None:
        if self._stored is None:
            return self._ranks.get(key)
        if key not in self._ranks:  # a binary search over the stored leaves, once per key
            found = self._stored.rank(key)
            if found is None:
                return None
            self._ranks[key] = found
        return self._ranks[key]

    def leaf(self, rank: int) -> bytes:
        return self._stored.leaf(rank)[1] if self._stored else self._leaves[rank][1]

    def proof(self, rank: int) -> tuple[Digest, ...]:
        leaf = self.leaf(rank)
        if self._stored:
            return self._stored.proof(rank, leaf_hash(leaf))
        return tuple(self._nodes.inclusion_proof(rank, len(self._leaves)))


class _Positions(Mapping[str, Sequence[int]]):
    """Item id -> positions of its records below the tree size (:attr:`ledger.heads.ItemHeads.index`), each
    item's checked against its leaf in the item-head tree (``tree``): its count and its latest record's hash (read
    from ``records``, with the item's other records: whoever asks for an item's positions reads them next), and
    each record naming the item or being a statement (about one of its records). Raises IndexDamaged where they
    differ, and for an item the tree has but the table does not (a damaged page can hide a row from a lookup).

    The tree is the one a signed checkpoint commits to where the index keeps it at this size (a writer's index, at
    a checkpoint it signed: :func:`_trees`); else it is made from the index's own head rows (an index built by
    ``stonetrail index``), and the check then finds rows that disagree with each other or with the records they
    name, not rows rewritten together: nothing read through an index alone is verified (a reader without trust
    says so; ``show --trust`` checks every fact against an audit, :func:`ledger.history.audited_scope`)."""

    def __init__(self, rows: Mapping[str, list[int]], size: int, tree: _Tree, records: Records) -> None:
        self._rows, self._size, self._tree, self._records = rows, size, tree, records
        self._checked: dict[str, list[int]] = {}

    def __getitem__(self, item: str) -> Sequence[int]:
        if item in self._checked:
            return self._checked[item]
        rank = self._tree.rank(item.encode())
        rows = self._rows.get(item, [])
        if not increasing(rows):
            raise IndexDamaged(f"the index's positions of {item!r} are not increasing record positions")
        below = [p for p in rows if p < self._size]
        if not below and rank is None:
            raise KeyError(item)
        self._records.prefetch(below)  # whoever asks reads them next (a database: in one query)
        if rank is None or not below or self._tree.leaf(rank) != head_leaf(
                item, Head(below[-1], self._records[below[-1]].record_hash, len(below))) or not are_records_of(
                item, [self._records[p] for p in below]):
            raise IndexDamaged(f"the index's records of {item!r} are not those its signed head names")
        self._checked[item] = below
        return below

    def __iter__(self) -> Iterator[str]:
        return (item for item, positions in self._rows.items() if positions[0] < self._size)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class _Committed(CommittedOver[_Tree]):
    """A checkpoint line's tree (:class:`ledger.commitments.Committed`) over a :class:`_Tree`."""

    def leaves(self) -> Iterator[bytes]:
        """Every leaf input of the tree, in tree order (what a published log serves, docs/format.md §8.5)."""
        return (self._tree.leaf(rank) for rank in range(len(self._tree)))


class _Heads(_Committed):
    def __init__(self, index: LedgerIndex, tree: _Tree, size: int, records: Records) -> None:
        super().__init__(tree)
        self.index = _Positions(index.heads.index, size, tree, records)  # type: ignore[arg-type]
        self._heads = index.heads

    def proof(self, item: str) -> HeadProof:
        rank = self._tree.rank(item.encode())
        if rank is None:
            raise IndexDamaged(f"the index's item-head tree has no {item!r}")
        return HeadProof(rank, self._tree.proof(rank))

    def items_of(self, record: Record) -> frozenset[str]:
        return self._heads.items_of(record)


class _Identities(_Committed):

    def proofs(self, identities: Iterable[tuple[str, str]]) -> list[tuple[int, bytes, tuple[Digest, ...]]]:
        """As :meth:`ledger.identity.IdentityIndex.proofs`."""
        wanted: set[int] = set()
        for kind, key in identities:
            rank = self._tree.rank(sort_key(kind, key))
            if rank is None:
                raise IndexDamaged(f"the index's identity tree has no {kind} {key!r}")
            wanted.update(r for r in (rank - 1, rank, rank + 1) if 0 <= r < len(self._tree))
        return [(r, self._tree.leaf(r), self._tree.proof(r)) for r in sorted(wanted)]


class _Commitments:
    def __init__(self, heads: _Heads, identities: _Identities) -> None:
        self.heads, self.identities = heads, identities


class _FileTree:
    """The index's tree, sized as the file (indexed records and the file's unindexed tail)."""

    def __init__(self, tree: TiledTree, size: int) -> None:
        self._tree, self._size = tree, size

    @property
    def size(self) -> int:
        return self._size

    def root_at(self, size: int) -> Digest:
        return self._tree.root_at(size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[Digest]:
        return self._tree.inclusion_proof(index, size)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[Digest]:
        return self._tree.consistency_proof(old_size, new_size)


class Records(Mapping[int, Record]):
    """A log's records by position, as payload bytes (:meth:`payload`) and decoded when first asked for.
    ``read(position)``: a record's payload, checked by the caller's read side; ``known``: (position, record)
    pairs already read that way (an index's registry), kept so that their bytes are not read again;
    ``read_many(positions)``: position -> payload of several at once (a database's one query; see
    :meth:`prefetch`)."""

    def __init__(self, read: Callable[[int], bytes], known: Iterable[tuple[int, Record]] = (),
                 read_many: Callable[[Sequence[int]], Mapping[int, bytes]] | None = None) -> None:
        self._read, self._known, self._many = read, dict(known), read_many
        self._cache = dict(self._known)

    def forget(self) -> None:
        """Drop the records decoded so far but the ``known`` ones (a caller that walks every item: memory stays
        bounded)."""
        self._cache = dict(self._known)

    def prefetch(self, positions: Iterable[int]) -> None:
        """Read and decode those of ``positions`` not read yet at once, where the read side can
        (``read_many``); otherwise nothing (each is read when asked for)."""
        if self._many is not None and (todo := sorted({p for p in positions if p not in self._cache})):
            for position, payload in self._many(todo).items():
                self._cache[position] = Record.from_bytes(payload)

    def payload(self, position: int) -> bytes:
        """The bytes of record ``position``: those of its record if it was decoded before (a record keeps the
        exact bytes it was read from), else read."""
        found = self._cache.get(position)
        return found.raw if found is not None else self._read(position)

    def __getitem__(self, position: int) -> Record:
        if position not in self._cache:
            self._cache[position] = Record.from_bytes(self._read(position))
        return self._cache[position]

    def __iter__(self) -> Iterator[int]:
        return iter(self._cache)

    def __len__(self) -> int:
        return len(self._cache)


class IndexedLog:
    """The index's answers at tree size ``at``, as a :class:`ledger.reader.ReadSide` (see
    :class:`ledger.reader.LogPass` for each attribute), plus the log's records (:attr:`records`)."""

    framing_ok = True  # the indexed part was framed whole when indexed; the tail was surveyed on open

    def __init__(self, index: LedgerIndex, at: int, file_size: int) -> None:
        self.index, self.at, self.origin = index, at, index.origin
        self.path = index.log.path if index.log is not None else index.db.path  # a file, or a database's URL
        self.tree = _FileTree(index.tree, file_size)
        self.records = Records(index.payload, index.registry, index.payloads)  # each checked against its leaf hash
        heads, ids = _trees(index, at)
        self.commitments = _Commitments(_Heads(index, heads, at, self.records), _Identities(ids))

    def registry_below(self, tree_size: int) -> list[tuple[int, Record]]:
        """The registry records (position, record) below ``tree_size``."""
        return [(p, record) for p, record in self.index.registry if p < tree_size]

    def later(self, items: Iterable[str]) -> tuple[int, ...]:
        """Positions of the records at or after :attr:`at` of ``items`` (indexed ones, then the file's tail)."""
        rows = self.index.heads.index
        found = {p for item in items if item in rows for p in rows[item] if p >= self.at}
        return tuple(sorted(found))

    def close(self) -> None:
        """Close the index and the log."""
        self.index.close()

    def __enter__(self) -> IndexedLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _trees(index: LedgerIndex, at: int) -> tuple[_Tree, _Tree]:
    try:
        return _Tree(Snapshot(index.db.db, at, HEADS)), _Tree(Snapshot(index.db.db, at, IDENTITIES))
    except KeyError:
        if at != index.size:
            raise
    heads, claims = index.leaves()
    lines = index.lines(heads, claims)
    return _Tree(None, heads, lines[0]), _Tree(None, claims, lines[1])


def through_index(log: IndexedLog | None, work: Callable[[IndexedLog], T]) -> T | None:
    """``work(log)``, the index closed after; None when there is no index that can answer (``log`` None) or it
    turned out damaged on the way (:func:`index_fault`, or a row value of the wrong shape: :data:`ROW_FAULTS`):
    the caller then reads the log."""
    if log is None:
        return None
    try:
        with log:
            return work(log)
    except StorageError as exc:
        if not index_fault(exc):
            raise
        return None
    except ROW_FAULTS:
        return None


def index_fault(exc: StorageError) -> bool:
    """True for a fault of the index (``index.*``: damaged, a tile missing or malformed), after which a reader
    reads the log instead."""
    return exc.code.startswith("index.")


def indexed_log(ledger_path: str | Path, at: int | None = None) -> IndexedLog | None:
    """The index of the ledger at ``ledger_path`` at tree size ``at`` (None: the whole file, which the index must
    then cover), read-only and checked against the log, or None if it cannot answer (see the module docstring).
    Never writes, never locks."""
    path = Path(ledger_path)
    try:
        db = IndexDB.open(index_path(path), create=False, read_only=True)
    except (FileNotFoundError, IndexDamaged):
        return None
    log = None
    try:
        with open(path, "rb") as head:
            origin, _ = read_header(head.read(512))
        log = LogFile.open(path, origin)
        index = LedgerIndex(db, log, None)
    except (IndexDamaged, StorageError, OSError, sqlite3.Error, *ROW_FAULTS):
        db.close()
        if log is not None:
            log.close()
        return None
    try:
        if index.size == 0:
            raise IndexDamaged("an empty index answers nothing")
        index.check()
        more, problems = tail_size(index.files()[1], index.end, index.size)
        if problems or (at is None and more) or (at or 0) > index.size:
            raise IndexDamaged("the index is behind the file or the checkpoint, or the file's tail is damaged")
        return IndexedLog(index, index.size if at is None else at, index.size + more)
    except (IndexDamaged, StorageError, sqlite3.Error, *ROW_FAULTS):
        index.close()
        return None
