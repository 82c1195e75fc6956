"""An item's scope read from a ledger file after an audit of it, without an index and without holding the log: what
``stonetrail show ITEM`` reads when no index serves it and every part of the file can be read (docs/adr/0033,
0034): the audit found the file valid, or found findings, or trusted no key.

The scope (:func:`ledger.scope.provenance_scope`) is the item, the items it was made from, back to their roots, and
the articles it was set into, each with every record of it. The first read of the file (:func:`scanned_scope`)
notes, of every record, only which items it names and which it creates from which (:class:`_Lineage`: memory
that follows the items), and keeps the item's own records; the lineage then names the items of the scope, and a
second read keeps their records (a record naming one of them, or a statement about such a record). Should the
scope of what was kept name an item not looked for yet, the file is read again with it. Every fact is then
checked against the audit, as :func:`ledger.history.audited_scope` checks an index's: each read recomputes the
RFC 9162 root of the audited records (so the records kept are the audited bytes), and each item of the scope has
as many records as the audit counted, the latest being its head (so they are all of them); the items' states are
the audit's.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

from ._codec import unpack_local
from .compact import CompactRange
from .errors import CorruptStoreError, InputError
from .events import Attested, Corrected, Set
from .hashing import Digest
from .heads import ItemHeads
from .history import ItemScope
from .item import Inventory
from .merkle import leaf_hash
from .reader import Progress
from .record import RECORD_TAG, Record
from .scope import provenance_scope
from .storage import FrameFile

__all__ = ["Misplaced", "scanned_scope"]

#: The kinds of the statements, which name a record by its hash, not its items: a statement about a record of the
#: scope is a record of the scope (:meth:`ledger.heads.ItemHeads.items_of`).
_STATEMENTS = frozenset({Attested.KIND, Corrected.KIND})


class Misplaced(CorruptStoreError):
    """The records of a scope item read are not as many as the audit counted, though the file is the audited one
    (its root): in a log with findings, a statement before its subject, which only a replay places. Code
    ``store.changed``, as the caller reads the file whole for either."""


def _changed(path: str | Path, why: str) -> CorruptStoreError:
    return CorruptStoreError(f"{path}: {why}, where the audit of the file says otherwise: it changed since",
                             code="store.changed")


def scanned_scope(path: str | Path, item_id: str, audited: Inventory, size: int, root: Digest, *,
                  progress: Progress | None = None) -> ItemScope:
    """``item_id``'s scope in the ledger file at ``path``, whose first ``size`` records an audit read with
    RFC 9162 root ``root`` and left with the items ``audited`` (``check_ledger(inventory=True)``); the scope's
    records are read from the file (two reads of it as a rule, in memory that follows the items, not the
    records), each fact checked against the audit (module docstring). ``progress(records read, size)`` during
    each read.

    Raises:
        KeyError: no item ``item_id``.
        CorruptStoreError: ``store.changed``: the file's first ``size`` records are not the audited ones, or the
            records found disagree with the audit's count of an item's records (:class:`Misplaced`; the caller
            reads the file whole): in a log with findings, a statement read before its subject
            (``record.unknown_subject``), which the audit counts once the subject comes and a read that keeps only
            the scope's records cannot place.
    """
    if item_id not in audited.items:
        raise KeyError(item_id)
    lineage = _Lineage()
    names = {item_id}
    origin, records, heads = _read(path, names, size, root, progress, lineage)
    names |= lineage.scope(item_id)
    while True:
        if len(names) > 1:
            origin, records, heads = _read(path, names, size, root, progress, None)
        scope = provenance_scope(records, item_id, heads.index)
        wanted = {*scope.items, *(parent for parent, _, _ in scope.missing)}
        if wanted <= names:
            break
        names |= wanted
    for name in scope.items:
        head, got = audited.heads.get(name), heads.index.get(name, [])
        if head is None or len(got) != head.count or not got or got[-1] != head.position \
                or records[got[-1]].record_hash != head.record_hash:
            raise Misplaced(f"{path}: the records of {name!r} read are not the ones the audit counted (in a log with "
                            "a finding: a statement before its subject, which only a replay places)",
                            code="store.changed")
    chosen = {p: records[p] for p in scope.positions}
    named = {item_id, *(o.id for r in chosen.values() for o in r.body.outputs)}
    return ItemScope(origin=origin, items={i: audited.items[i] for i in sorted(named) if i in audited.items},
                     records=chosen, scope=scope)


class _Lineage:
    """What each record creates from what, and which articles stones were set into, from a read of every record
    (item ids only: memory that follows the items): what :func:`provenance_scope` will follow, known before the
    records it follows are read."""

    def __init__(self) -> None:
        self.parents: dict[str, tuple[str, ...]] = {}  # item -> the items its creating record names as inputs
        self.articles: dict[str, list[str]] = {}  # stone -> the articles a ``set`` put it in

    def note(self, kind: str, inputs: list[str], outputs: list[str]) -> None:
        for output in outputs:
            self.parents.setdefault(output, tuple(inputs))
        if kind == Set.KIND and outputs:
            for stone in inputs:
                self.articles.setdefault(stone, []).append(outputs[0])

    def scope(self, target: str) -> set[str]:
        """The items :func:`provenance_scope` reaches from ``target`` (its rule: the parents of an item reached
        as a parent, the articles of every item reached)."""
        reached: dict[str, bool] = {}
        queue: deque[tuple[str, bool]] = deque([(target, True)])
        while queue:
            name, parents = queue.popleft()
            if name in reached and (reached[name] or not parents):
                continue
            reached[name] = parents
            if parents:
                queue.extend((parent, True) for parent in self.parents.get(name, ()))
            queue.extend((article, False) for article in self.articles.get(name, ()))
        return set(reached)


def _read(path: str | Path, names: set[str], size: int, root: Digest, progress: Progress | None,
          lineage: _Lineage | None) -> tuple[str, dict[int, Record], ItemHeads]:
    """One read of the file's first ``size`` records: its origin, the records of the items ``names`` (naming one,
    or a statement about such a record) by position, and their heads; noting every record in ``lineage`` if
    given; checking that the records' root is ``root``."""
    records: dict[int, Record] = {}
    heads = ItemHeads()
    tree = CompactRange()
    with FrameFile(path) as file:
        origin = file.origin
        for frame in file.frames():
            if frame.index >= size:
                break
            if frame.index != tree.end:
                raise _changed(path, f"record {tree.end} cannot be read")
            payload = frame.payload
            tree.append(leaf_hash(payload))
            kind, inputs, outputs = _names(path, frame.index, payload)
            if lineage is not None:
                lineage.note(kind, inputs, outputs)
            if kind in _STATEMENTS or not names.isdisjoint(inputs) or not names.isdisjoint(outputs):
                record = _record(path, frame.index, payload)
                if names & heads.items_of(record):
                    heads.add(frame.index, record)
                    records[frame.index] = record
            if progress is not None and frame.index % 4096 == 4095:
                progress(frame.index + 1, size)
    if tree.end != size or tree.root() != root:
        raise _changed(path, f"its first {size} records do not have the audited root")
    if progress is not None:
        progress(size, size)
    return origin, records, heads


def _names(path: str | Path, position: int, payload: bytes) -> tuple[str, list[str], list[str]]:
    """A record's kind and the ids of its inputs and outputs, read from its msgpack without the strict decoding of
    :meth:`Record.from_bytes` (the audit decoded it strictly; the read's root shows these are its bytes): a
    record is decoded only if the read needs it."""
    try:
        envelope: Any = unpack_local(payload[len(RECORD_TAG):])
        body: Any = unpack_local(envelope["body"])
        kind, inputs, outputs = body["kind"], [item for item, _ in body["inputs"]], [o["id"] for o in body["outputs"]]
    except (InputError, KeyError, TypeError, ValueError):
        raise _changed(path, f"record {position} does not read") from None
    if type(kind) is not str or not all(type(name) is str for name in (*inputs, *outputs)):
        raise _changed(path, f"record {position} does not read")
    return kind, inputs, outputs


def _record(path: str | Path, position: int, payload: bytes) -> Record:
    try:
        return Record.from_bytes(payload)
    except InputError:
        raise _changed(path, f"record {position} does not decode") from None
