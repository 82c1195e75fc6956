"""A ledger's items, one line each: what ``stonetrail items`` lists.

Pure: works on a replayed ledger (:class:`~ledger.audit.Replay`). Holder, owner, state and mass are the custody
state after the item's latest applied record (:mod:`ledger.custody`), the ones ``show`` and a proof bundle
report; the record count is the one the checkpoint's heads line commits to (docs/format.md §7c: the readable
records naming the item, and the statements about them).
"""

from __future__ import annotations

from dataclasses import dataclass

from .audit import Replay
from .heads import ItemHeads

__all__ = ["ItemLine", "item_lines"]


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


def item_lines(replay: Replay) -> list[ItemLine]:
    """Every item the replay created, sorted by id (UTF-8 bytes)."""
    heads = ItemHeads.of(enumerate(replay.records))
    lines = []
    for item_id in sorted(replay.state.items, key=lambda i: i.encode("utf-8")):
        item, head = replay.state.items[item_id], heads.head(item_id)
        lines.append(ItemLine(item=item_id, type=item.type, nature=item.nature, state=item.state,
                              holder=item.holder, owner=item.owner, mass_mct=item.mass_mct, records=head.count,
                              latest=head.position))
    return lines
