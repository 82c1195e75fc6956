"""A ledger's items, one line each: what ``stonetrail items`` lists.

From a replayed ledger (:class:`~ledger.replay.Replay`), or from the index beside a ledger file
(:func:`indexed_item_lines`: no replay, the index's copy of the same state). Holder, owner, state and mass are
the custody state after the item's latest applied record (:mod:`ledger.custody`), the ones ``show`` and a proof bundle
report; the record count is the one the checkpoint's heads line commits to (docs/format.md §7c: the readable
records naming the item, and the statements about them).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .index.maps import IndexDamaged
from .index.reading import IndexedLog, indexed_log, through_index
from .item import ItemLine, by_id
from .replay import Replay

__all__ = ["ItemLine", "indexed_item_lines", "item_lines"]


def item_lines(replay: Replay) -> list[ItemLine]:
    """Every item the replay created, sorted by id (UTF-8 bytes)."""
    heads = replay.item_heads()
    return [ItemLine.of(replay.state.items[i], heads.head(i)) for i in sorted(replay.state.items, key=by_id)]


def indexed_item_lines(path: str | Path) -> tuple[list[ItemLine], int, str] | None:
    """:func:`item_lines` of the ledger file at ``path`` read from its index (one walk of its items and positions
    tables, each row's checksum checked), with the number of records the file holds and its origin; or None when
    it has no index covering the file, or a damaged one (the caller replays the log). The index holds the state a
    replay under the writer's authority keys reaches (docs/adr/0020-trusted-rebuild.md): these are unverified
    lines, as :func:`item_lines` of a replay without trust."""
    return through_index(indexed_log(path), lambda log: (_lines_of(log), log.tree.size, log.origin))


def _lines_of(log: IndexedLog) -> list[ItemLine]:
    positions: Iterator[tuple[str, Any]] = iter(log.index.table("head_positions").rows())
    lines, at = [], next(positions, None)
    for item_id, item in log.index.table("items").rows():  # both in key order: the ids' UTF-8 bytes
        while at is not None and at[0].encode("utf-8") < item_id.encode("utf-8"):  # an id named, never created
            at = next(positions, None)
        if at is None or at[0] != item_id or not at[1]:
            raise IndexDamaged(f"index: item {item_id!r} has no record positions")
        lines.append(ItemLine(item=item_id, type=item.type, nature=item.nature, state=item.state,
                              holder=item.holder, owner=item.owner, mass_mct=item.mass_mct, records=len(at[1]),
                              latest=at[1][-1]))
    if len(lines) != len(log.index.table("items")):  # rows a damaged page hides from a walk
        raise IndexDamaged(f"index table items: a walk meets {len(lines)} rows, the index holds "
                           f"{len(log.index.table('items'))}")
    return lines
