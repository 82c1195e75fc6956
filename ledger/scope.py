"""An item's scope: the records its provenance needs (docs/format.md §7a.2), read from the records alone.

Both sides of a proof bundle compute it with this module — the exporter (:mod:`ledger.export`) to choose the
records to put in, the verifier (:mod:`ledger.bundle`) to check that a bundle holds exactly those — so the two
cannot disagree about what "complete" means. Pure: records in, values out.

The scope of an item (docs/format.md §7a.2, "Scope") is, walking back from the item:

* the item itself;
* for every item in the scope, the parents named as ``inputs`` by the record that created it (a split, merge or
  set), back to the ``mined``, ``grown`` and ``registered`` roots, which have no parents;
* every article that an item of the scope was set in: while set, a stone moves with its article. The
  article's parents (its other stones) are not part of the scope unless reached otherwise (the item is the
  article itself, or one of its stones' ancestors).

The scope's records are *all* the records of every scope item below the checkpoint (one naming it before the
record that creates it too: that is a fault the replay must see): an item's records are the records that name
it as an input or an output, and the statements (``attested``, ``corrected``) about one of them
(:class:`ledger.heads.ItemHeads`). The scope is read
from the records alone, before any rule is checked, so that the exporter and the verifier compute it alike and
the replay creates only the scope's items.

Hash links make the custody records of the scope complete: each record names the previous record of every item
it touches, and a creating record names its parents' latest records. The rest is the checkpoint's item heads
(:mod:`ledger.heads`): a Merkle inclusion proof cannot show that no other record of an item exists below the
checkpoint's tree size, so the bundle also proves, for *every* scope item, that the checkpoint names its last
record of the item as the latest and its number of records as the item's: no later record and no statement
(a lab's correction of a stone set in a ring included) was left out. A provenance is thus current at the
checkpoint's tree size, and no later.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from .events import Set
from .heads import ItemHeads
from .identity import claims_of
from .record import Record

__all__ = ["Scope", "item_index", "provenance_scope", "scope_claims"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Scope:
    """The records one item's provenance needs. ``items``: item id -> whether its parents are in the scope
    (False: reached only as an article a scope item was set in), in walk order (the item first, then its parents
    and articles); every record of each counts, to its latest. ``positions``: position -> the scope item that
    record is shown under (the one nearest the item). ``missing``: (parent id, child id, position of the
    child's creating record) for parents that no given record creates."""

    target: str
    items: Mapping[str, bool]
    positions: Mapping[int, str]
    missing: tuple[tuple[str, str, int], ...]


def item_index(records: Mapping[int, Record]) -> Mapping[str, Sequence[int]]:
    """Item id -> positions of its records (naming it as an input or output, or a statement about one of them;
    :class:`ledger.heads.ItemHeads`), in increasing order."""
    return ItemHeads.of(sorted(records.items())).index


def provenance_scope(records: Mapping[int, Record], target: str,
                     index: Mapping[str, Sequence[int]] | None = None) -> Scope:
    """The scope (module docstring) of ``target`` among ``records`` (by position), read from the records alone:
    an item's records are those naming it; the first that names it as an output creates it. Pass the
    :func:`item_index` of ``records`` to share it between calls. A ``target`` no record creates has an empty
    scope."""
    index = item_index(records) if index is None else index
    items: dict[str, bool] = {}
    missing: dict[tuple[str, str, int], None] = {}  # ordered, and O(1) to test (a bundle may name many)
    queue: deque[str] = deque()
    creations: dict[str, int | None] = {}

    def created_at(name: str) -> int | None:
        if name not in creations:
            creations[name] = _created_at(records, index, name)
        return creations[name]

    def widen(name: str, *, parents: bool = True) -> None:
        if name not in items or (parents and not items[name]):
            items[name] = parents
            queue.append(name)

    if created_at(target) is not None:
        widen(target)
    while queue:
        name = queue.popleft()
        created = created_at(name)
        assert created is not None
        for parent, _ in records[created].body.inputs if items[name] else ():
            if created_at(parent) is not None:
                widen(parent)
            else:
                missing[(parent, name, created)] = None
        for article in _articles(name, _own(index, name), records):
            if created_at(article) is not None:
                widen(article, parents=False)
    positions: dict[int, str] = {}
    for name in items:
        for position in _own(index, name):
            positions.setdefault(position, name)
    return Scope(target=target, items=MappingProxyType(items), positions=MappingProxyType(positions),
                 missing=tuple(missing))


def scope_claims(records: Mapping[int, Record], scope: Scope
                 ) -> tuple[list[tuple[str, str, str, int]], list[tuple[int, tuple[str, ...]]]]:
    """The identity claims (:func:`ledger.identity.claims_of`) the scope's records make for scope items, as
    (kind, folded key, item, position) in log order — what a bundle proves (docs/format.md §7d) — and, per record
    that also makes outputs outside the scope (a split's siblings), (position, their ids): claims a bundle does
    not prove (it reports them as not checked, to stay small: a lot cut into a hundred stones)."""
    claims, outside = [], []
    for position in sorted(scope.positions):
        made = claims_of(records[position])
        claims += [(kind, key, item, position) for kind, key, item in made if item in scope.items]
        if others := tuple(item for kind, _, item in made if kind == "item" and item not in scope.items):
            outside.append((position, others))
    return claims, outside


def _created_at(records: Mapping[int, Record], index: Mapping[str, Sequence[int]], name: str) -> int | None:
    """Position of the first record that names ``name`` as an output (None: no record creates it)."""
    return next((p for p in index.get(name, ()) if any(o.id == name for o in records[p].body.outputs)), None)


def _own(index: Mapping[str, Sequence[int]], name: str) -> Sequence[int]:
    """The item's records: every record naming it (one before its creation too: a record naming an item that
    does not exist yet is a fault the replay must see, and the item's head counts it)."""
    return index.get(name, ())


def _articles(name: str, own: Sequence[int], records: Mapping[int, Record]) -> list[str]:
    """Every article item ``name`` was set in (by a ``set`` among ``own``)."""
    found = []
    for position in own:
        body = records[position].body
        if isinstance(body.event, Set) and name in dict(body.inputs) and body.outputs:
            found.append(body.outputs[0].id)
    return found
