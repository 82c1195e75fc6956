"""The replayed state of one item (:class:`Item`): what the custody replay (:mod:`ledger.custody`) keeps per
item and the per-kind rules (:mod:`ledger._kinds`) read and change; and the line ``stonetrail items`` lists of it
(:class:`ItemLine`), from a replay (:mod:`ledger.inventory`) or an audit (``check_ledger(inventory=True)``:
:class:`Inventory`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from .hashing import Digest
from .heads import Head

__all__ = ["Inventory", "Item", "ItemLine", "by_id"]

_DEAD = frozenset({"consumed", "retired"})


@dataclass(slots=True, kw_only=True)
class Item:
    """The replayed state of one item.

    ``state``: one of :data:`ledger.rules.STATES`. ``holder`` has possession, ``owner`` has title (they differ
    while on memo). ``origin``: {ISO country: millicarats}. ``article``: the article a locked stone is set in.
    ``transit``: while in transit, the export's (kp certificate, consignee, destination, source country).
    ``graded_mct``: mass at the last grading. ``contents``: for an article, the stones its ``set`` named.
    ``history``: positions of the item's records (an audit's replay keeps the first only, its creation, and the
    others in its temporary database: :class:`ledger.spilled.SpilledState`); ``hashes``: their record hashes (there,
    none). ``country``: where the item is (ISO code): set where it is created or imported; every later record
    about it must take place there until it is exported and imported elsewhere.
    """

    id: str
    type: str
    mass_mct: int
    holder: str
    owner: str
    nature: str
    origin: dict[str, int]
    head: Digest
    head_time_ms: int
    country: str = ""
    state: str = "live"
    article: str | None = None
    transit: tuple[str, str, str, str] | None = None
    report: str | None = None
    inscription: str | None = None
    graded_mct: int | None = None
    contents: tuple[str, ...] = ()
    history: list[int] = field(default_factory=list)
    hashes: set[Digest] = field(default_factory=set)

    @property
    def live(self) -> bool:
        """Not consumed and not retired (it may be in transit or locked in an article)."""
        return self.state not in _DEAD


def by_id(item_id: str) -> bytes:
    """The sort key of item ids in a listing, the index and the heads line: their UTF-8 bytes."""
    return item_id.encode("utf-8")


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemLine:
    """One item. ``type``: stone, lot, parcel or article; ``state``: its custody state (docs/format.md §5.2);
    ``holder`` has possession, ``owner`` has title; ``mass_mct``: its recorded mass in millicarats; ``records``:
    its number of records and ``latest`` the 0-based leaf index of the last one."""

    item: str
    type: str
    nature: str
    state: str
    holder: str
    owner: str
    mass_mct: int
    records: int
    latest: int

    @classmethod
    def of(cls, item: Item, head: Head) -> ItemLine:
        """The line of ``item`` whose records have ``head`` (:meth:`ledger.heads.ItemHeads.head`)."""
        return cls(item=item.id, type=item.type, nature=item.nature, state=item.state, holder=item.holder,
                   owner=item.owner, mass_mct=item.mass_mct, records=head.count, latest=head.position)


@dataclass(frozen=True, slots=True)
class Inventory:
    """Every item at the end of an audited log (``check_ledger(inventory=True)``): its custody state (``items``;
    ``history`` holds its creation only) and the head of its records as the heads line counts them (``heads``:
    latest position and record hash, number of records, docs/format.md §7c; also of an id records name that no
    record creates)."""

    items: Mapping[str, Item]
    heads: Mapping[str, Head]

    def lines(self) -> list[ItemLine]:
        """One :class:`ItemLine` per item, sorted by id (:func:`by_id`)."""
        return [ItemLine.of(self.items[i], self.heads[i]) for i in sorted(self.items, key=by_id)]
