"""An item's scope read from a ledger file that an audit found valid, without an index and without holding the log:
what ``stonetrail show ITEM --trust`` reads when no index covers the file.

The scope (:func:`ledger.scope.provenance_scope`) is the item, the items it was made from, back to their roots, and
the articles it was set into, each with every record of it. A few streaming reads of the file find them
(:func:`scanned_scope`); each read keeps only the records of the items known so far, and the next read looks for the
items these records name as the scope's parents, until no new one appears. Every fact is then checked against the
audit, as :func:`ledger.history.audited_scope` checks an index's: each read recomputes the RFC 9162 root of the
audited records (so the records kept are the audited bytes), and each item of the scope has as many records as the
audit counted, the latest being its head (so they are all of them); the items' states are the audit's.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .compact import CompactRange
from .errors import CorruptStoreError, InputError
from .events import Attested, Corrected
from .hashing import Digest
from .heads import ItemHeads
from .history import ItemScope
from .item import Inventory
from .merkle import leaf_hash
from .record import Record
from .scope import provenance_scope
from .storage import FrameFile

__all__ = ["scanned_scope"]

#: The kinds of the statements, which name a record by its hash (not its items): a statement about a record of the
#: scope is a record of the scope (:meth:`ledger.heads.ItemHeads.items_of`).
_STATEMENTS = tuple(kind.KIND.encode("ascii") for kind in (Attested, Corrected))


def _changed(path: str | Path, why: str) -> CorruptStoreError:
    return CorruptStoreError(f"{path}: {why}, where the audit of the file says otherwise: it changed since",
                             code="store.changed")


def scanned_scope(path: str | Path, item_id: str, audited: Inventory, size: int, root: Digest, *,
                  progress: Callable[[int, int], None] | None = None) -> ItemScope:
    """``item_id``'s scope in the ledger file at ``path``, whose first ``size`` records an audit found valid with
    RFC 9162 root ``root`` and left with the items ``audited`` (``check_ledger(inventory=True)``); the scope's
    records are read from the file (a few reads of it, each in memory that follows the scope, not the log), each
    fact checked against the audit (module docstring). ``progress(records read, size)`` during each read.

    Raises:
        KeyError: no item ``item_id``.
        CorruptStoreError: ``store.changed``: the file's first ``size`` records are not the audited ones, or the
            records found disagree with the audit's count of an item's records (the caller reads the file whole).
    """
    if item_id not in audited.items:
        raise KeyError(item_id)
    names: set[str] = {item_id}
    while True:
        origin, records, heads = _read(path, names, size, root, progress)
        scope = provenance_scope(records, item_id, heads.index)
        wanted = {*scope.items, *(parent for parent, _, _ in scope.missing)}
        if wanted <= names:
            break
        names |= wanted
    for name in scope.items:
        head, got = audited.heads.get(name), heads.index.get(name, [])
        if head is None or len(got) != head.count or not got or got[-1] != head.position \
                or records[got[-1]].record_hash != head.record_hash:
            raise _changed(path, f"the records of {name!r} read are not the ones the audit counted")
    chosen = {p: records[p] for p in scope.positions}
    named = {item_id, *(o.id for r in chosen.values() for o in r.body.outputs)}
    return ItemScope(origin=origin, items={i: audited.items[i] for i in sorted(named) if i in audited.items},
                     records=chosen, scope=scope)


def _read(path: str | Path, names: set[str], size: int, root: Digest, progress: Callable[[int, int], None] | None
          ) -> tuple[str, dict[int, Record], ItemHeads]:
    """One read of the file's first ``size`` records: its origin, the records of the items ``names`` (naming one,
    or a statement about such a record) by position, and their heads; checking that the records' root is
    ``root``."""
    patterns = [name.encode("utf-8") for name in sorted(names)]
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
            if any(p in payload for p in patterns) or any(s in payload for s in _STATEMENTS):
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


def _record(path: str | Path, position: int, payload: bytes) -> Record:
    try:
        return Record.from_bytes(payload)
    except InputError:
        raise _changed(path, f"record {position} does not decode") from None
