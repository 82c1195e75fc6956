"""An item's history back to its roots: what ``stonetrail show`` prints.

It is the path a proof bundle's provenance holds (docs/format.md §7a.5), built by the same code: the item's scope
among the ledger's readable records (:func:`ledger.scope.provenance_scope`), replayed alone as a bundle
verifier replays it (:func:`ledger.provenance.replay_scope`), one :class:`~ledger.provenance.Step` per record,
oldest first (:func:`ledger.provenance.path_steps`). So ``show`` and ``proof verify`` agree record by record on
each step's holder, owner, state, mass and country, and on the item's own; a statement (``attested``,
``corrected``) is no custody event and changes none of them. Works on a :class:`~ledger.replay.Replay` or on the
persistent index (:func:`indexed_scope`), each fact read there checked against an audit of the log when the
history is to be called verified (:func:`audited_scope`).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from ._describe import describe, format_ct
from .custody import CustodyState
from .errors import StoneTrailError, StorageError
from .events import Grown, Mined
from .hashing import Digest
from .heads import Head, ItemHeads, are_records_of
from .item import Inventory, Item
from .merkle import verify_inclusion
from .provenance import Snapshot, Step, path_steps, replay_scope, snapshot
from .record import Record
from .scope import Scope, provenance_scope

if TYPE_CHECKING:  # what it reads from, not what it needs loaded: proof verify and show start without them
    from .index.reading import IndexedLog
    from .replay import Replay

__all__ = ["History", "HistoryRow", "ItemScope", "audited_scope", "describe", "format_ct", "indexed_scope",
           "item_history", "item_scope", "origin_summary", "summary", "trace", "trace_item"]

#: A row of ``show``: a step of the item's custody path, as a proof bundle's provenance has it.
HistoryRow = Step


@dataclass(frozen=True, slots=True, kw_only=True)
class History:
    """An item's history: ``path``, every record of its scope oldest first (the lineage item each is shown under,
    and that item's state right after it), and ``now``, the item's state after the last of them."""

    item: str
    now: Snapshot
    path: tuple[Step, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemScope:
    """What an item's history is told from: the ledger's ``origin``, its replayed ``items`` (the full replay's or
    the index's), and the item's ``scope`` with its ``records`` by position."""

    origin: str
    items: Mapping[str, Item]
    records: dict[int, Record]
    scope: Scope


def item_scope(replay: Replay, item_id: str) -> ItemScope:
    """``item_id``'s scope among ``replay``'s readable records. Raises KeyError: no item ``item_id``."""
    records, scope = _scope(replay, item_id)
    return ItemScope(origin=replay.origin, items=replay.state.items, records=records, scope=scope)


def indexed_scope(log: IndexedLog, item_id: str) -> ItemScope:
    """``item_id``'s scope read through the persistent index (O(records of the scope) reads, no replay).
    Raises KeyError: no item ``item_id``; StorageError ``index.damaged``: the item's row is missing while its record
    positions are there (a damaged page hides rows from a lookup: the caller reads the log)."""
    stored = log.index.state.items
    if item_id not in stored:
        if item_id in log.commitments.heads.index:
            raise StorageError(f"index: item {item_id!r} has record positions but no row", code="index.damaged")
        raise KeyError(item_id)
    scope = provenance_scope(log.records, item_id, log.commitments.heads.index)
    records = {p: log.records[p] for p in scope.positions}
    named = {item_id, *(o.id for r in records.values() for o in r.body.outputs)}
    items = {i: stored[i] for i in sorted(named) if i in stored}  # all the history needs: the index may be closed
    return ItemScope(origin=log.origin, items=items, records=records, scope=scope)


def audited_scope(log: IndexedLog, item_id: str, audited: Inventory, size: int, root: Digest) -> ItemScope:
    """``item_id``'s scope read through the persistent index of a log that an audit found valid at tree ``size``
    with ``root`` and left with the items ``audited`` (``check_ledger(inventory=True)``), each fact the index gives
    checked against that audit before it is used, so that the history is the one a replay of the audited log
    tells: every record read is proven to be leaf p of the audited tree (RFC 9162 §2.1.3.2), each item's record
    positions are as many as the audit counted, the latest its head, and each a record of the item
    (:func:`ledger.heads.are_records_of`: so they are all of them), and the items' states are the audit's.
    ``log``: the index at tree ``size`` (``indexed_log(path, at=size)``). O(records of the scope) reads.
    Raises KeyError: no item ``item_id``; StorageError ``index.damaged``: the index disagrees with the audit (the
    caller replays the log)."""
    if item_id not in audited.items:
        raise KeyError(item_id)
    records = _Proven(log.records, log.tree, size, root)
    index = _Counted(log.commitments.heads.index, records, audited.heads)
    scope = provenance_scope(records, item_id, index)
    chosen = {p: records[p] for p in scope.positions}
    named = {item_id, *(o.id for r in chosen.values() for o in r.body.outputs)}
    return ItemScope(origin=log.origin, items={i: audited.items[i] for i in sorted(named) if i in audited.items},
                     records=chosen, scope=scope)


def _disagrees(what: str) -> StorageError:
    return StorageError(f"index: {what}, where the audit of the log says otherwise", code="index.damaged")


class _Proofs(Protocol):
    def inclusion_proof(self, index: int, size: int | None = None) -> list[Digest]: ...


class _Proven(Mapping[int, Record]):
    """Records read through an index, each proven to be its position's leaf of the audited tree before it is used."""

    def __init__(self, records: Mapping[int, Record], tree: _Proofs, size: int, root: Digest) -> None:
        self._records, self._tree, self._size, self._root = records, tree, size, root
        self._proven: dict[int, Record] = {}

    def __getitem__(self, position: int) -> Record:
        if position not in self._proven:
            if not 0 <= position < self._size:
                raise _disagrees(f"record {position} is named, beyond the {self._size} records audited")
            try:
                record = self._records[position]
                verify_inclusion(record.record_hash, position, self._size,
                                 self._tree.inclusion_proof(position, self._size), self._root)
            except StoneTrailError as exc:
                if exc.code.startswith("index."):
                    raise
                raise _disagrees(f"record {position} is not the one audited ({exc.code})") from exc
            self._proven[position] = record
        return self._proven[position]

    def __iter__(self) -> Iterator[int]:
        return iter(self._proven)

    def __len__(self) -> int:
        return len(self._proven)


class _Counted(Mapping[str, Sequence[int]]):
    """An index's item -> record positions, each item's checked on first use against the audit's head of its
    records: as many, increasing, the latest the head's, and each a record of the item. As the audit counted every
    record of the item, they are then all of them."""

    def __init__(self, positions: Mapping[str, Sequence[int]], records: _Proven, heads: Mapping[str, Head]) -> None:
        self._positions, self._records, self._heads = positions, records, heads
        self._checked: dict[str, tuple[int, ...]] = {}

    def __getitem__(self, item: str) -> Sequence[int]:
        if item not in self._checked:
            head, got = self._heads.get(item), tuple(self._positions.get(item, ()))
            if head is None:
                if got:
                    raise _disagrees(f"{item!r} has records")
                raise KeyError(item)
            if len(got) != head.count or not got or got[-1] != head.position \
                    or any(a >= b for a, b in itertools.pairwise(got)) \
                    or self._records[got[-1]].record_hash != head.record_hash \
                    or not are_records_of(item, [self._records[p] for p in got]):
                raise _disagrees(f"the records of {item!r} are not those the audit counted")
            self._checked[item] = got
        return self._checked[item]

    def __iter__(self) -> Iterator[str]:
        return iter(self._checked)

    def __len__(self) -> int:
        return len(self._checked)


def trace_item(replay: Replay, item_id: str) -> History:
    """The history of ``item_id`` (module docstring) in a full replay. Raises KeyError: no readable record
    creates ``item_id`` (see :attr:`Replay.damage` for whether some could not be read)."""
    return trace(item_scope(replay, item_id), item_id)


def trace(found: ItemScope, item_id: str) -> History:
    """The history of ``item_id`` from its scope (module docstring)."""
    records, scope = found.records, found.scope
    state = CustodyState(found.origin, (), partial=True, track=scope.items, refused=_refused(found.items, records))
    snapshots: dict[int, dict[str, Snapshot]] = {}
    for _ in replay_scope(state, records, ItemHeads.of(sorted(records.items())), snapshots):
        pass  # the full replay judged every record: this one only tells the path
    return History(item=item_id, now=snapshot(state, [item_id])[item_id],
                   path=path_steps(records, scope, snapshots))


def item_history(replay: Replay, item_id: str) -> list[Step]:
    """The rows of :func:`trace_item`'s path. Raises KeyError as it does."""
    return list(trace_item(replay, item_id).path)


def _scope(replay: Replay, item_id: str) -> tuple[dict[int, Record], Scope]:
    """The records of ``item_id``'s scope by position, and the scope. Raises KeyError: no item ``item_id``."""
    if item_id not in replay.state.items:
        raise KeyError(item_id)
    readable = _Readable(replay.records)  # only the scope's are read (from the file, for a replay of one)
    scope = provenance_scope(readable, item_id, replay.item_heads().index)
    return {p: readable[p] for p in scope.positions}, scope


class _Readable(Mapping[int, Record]):
    """The readable records of a replay by position, each looked up in its ``records`` when asked (never all)."""

    def __init__(self, records: Sequence[Record | None]) -> None:
        self._records = records

    def __getitem__(self, position: int) -> Record:
        record = self._records[position] if 0 <= position < len(self._records) else None
        if record is None:
            raise KeyError(position)
        return record

    def __iter__(self) -> Iterator[int]:
        return (p for p, r in enumerate(self._records) if r is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _refused(items: Mapping[str, Item], records: Mapping[int, Record]) -> set[tuple[int, str]]:
    """(position, id) of the outputs of ``records`` that the full replay did not create there (another item held
    the id first, docs/format.md §7d): the scope's replay must not create them either, as a bundle's does not."""
    return {(p, out.id) for p, record in records.items() for out in record.body.outputs
            if (item := items.get(out.id)) is None or not item.history or item.history[0] != p}


def origin_summary(replay: Replay, item_id: str) -> str:
    """The item's nature and origin composition in carats, with who attested each mined or grown root, e.g.
    ``natural; origin AO 0.748 ct, RU 0.502 ct (attested by producer-catoca, producer-udachny)``.

    Raises:
        KeyError: no item ``item_id``.
    """
    return summary(item_scope(replay, item_id), item_id)


def summary(found: ItemScope, item_id: str) -> str:
    """:func:`origin_summary` of ``item_id`` from its scope."""
    item = found.items[item_id]
    parts = ", ".join(f"{c} {format_ct(m)}" for c, m in sorted(item.origin.items()))
    roots = sorted({r.body.actor for r in found.records.values() if isinstance(r.body.event, Mined | Grown)})
    unknown = " (unknown: no recorded history)" if "XX" in item.origin else ""
    attested = f" (attested by {', '.join(roots)})" if roots else ""
    return f"{item.nature}; origin {parts}{unknown}{attested}"
