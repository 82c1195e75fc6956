"""An item's history back to its roots: the rows ``stonetrail show`` prints.

Walks the replayed ledger from an item back through the records that created it (splits) to the ``mined``
record of its ancestors, and returns one :class:`HistoryRow` per record, oldest first. Pure: works on a
:class:`~ledger.audit.Replay`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .audit import Replay
from .events import Graded, Mined, Split, Transferred
from .record import Record

__all__ = ["HistoryRow", "format_ct", "item_history"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HistoryRow:
    """One record in an item's lineage. ``item``: the lineage item it concerns; ``holder`` and ``mass_mct``:
    that item's holder and mass after the record; ``time_ms``: ms since the Unix epoch, UTC."""

    position: int
    time_ms: int
    kind: str
    place: str
    item: str
    holder: str
    mass_mct: int
    signers: tuple[str, ...]
    detail: str


def format_ct(mass_mct: int) -> str:
    """Millicarats as carats with three decimals, e.g. 1020 -> ``1.020 ct`` (integer arithmetic, no floats)."""
    return f"{mass_mct // 1000}.{mass_mct % 1000:03d} ct"


def item_history(replay: Replay, item_id: str) -> list[HistoryRow]:
    """Rows for ``item_id`` and its ancestors, oldest first.

    Raises:
        KeyError: no item ``item_id`` in the ledger.
    """
    lineage = _lineage(replay, item_id)
    rows = []
    mass: dict[str, int] = {}
    for position in sorted(lineage):
        record = replay.records[position]
        if record is None:
            continue
        item = lineage[position]
        mass[item] = _mass_after(record, item, mass)
        rows.append(HistoryRow(position=position, time_ms=record.body.time_ms, kind=record.body.kind,
                               place=record.body.place, item=item, holder=_holder_after(record),
                               mass_mct=mass[item], signers=tuple(s.party for s in record.signatures),
                               detail=describe(record, focus=item)))
    return rows


def _lineage(replay: Replay, item_id: str) -> dict[int, str]:
    """Record position -> the lineage item it concerns: the item's records, then (up to the record that created
    each item) its parents' records, back to the roots. Iterative, each item visited once."""
    lineage: dict[int, str] = {}
    todo: list[tuple[str, int | None]] = [(item_id, None)]
    seen: set[str] = set()
    while todo:
        current, before = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        item = replay.state.items[current]
        for position in item.history:
            if before is None or position <= before:
                lineage.setdefault(position, current)
        first = replay.records[item.history[0]] if item.history else None
        if first is not None:
            todo += [(parent, item.history[0]) for parent, _ in first.body.inputs if parent in replay.state.items]
    return lineage


def _mass_after(record: Record, item: str, mass: dict[str, int]) -> int:
    event = record.body.event
    for out in record.body.outputs:
        if out.id == item:
            return out.mass_mct
    if isinstance(event, Graded):
        return min(event.mass_mct, mass.get(item, event.mass_mct))
    return mass.get(item, 0)


def _holder_after(record: Record) -> str:
    event = record.body.event
    return event.to if isinstance(event, Transferred) else record.body.actor


def describe(record: Record, focus: str | None = None) -> str:
    """A one-line plain-language description of a record's event (units in carats).

    ``focus``: the item the reader follows; a split into many outputs then names only that one.
    """
    event, body = record.body.event, record.body
    if isinstance(event, Mined):
        return f"mined at {event.mine} ({event.country}); origin attested by {body.actor}"
    if isinstance(event, Transferred):
        return f"{body.actor} -> {event.to}"
    if isinstance(event, Split):
        shown = [o for o in body.outputs if o.id == focus] or list(body.outputs[:3])
        if len(body.outputs) <= 4:
            shown = list(body.outputs)
        outs = ", ".join(f"{o.id} {format_ct(o.mass_mct)}" for o in shown)
        more = f" and {len(body.outputs) - len(shown)} more" if len(shown) < len(body.outputs) else ""
        return f"split {body.inputs[0][0]} into {outs}{more}; declared loss {format_ct(event.loss_mct)}"
    if isinstance(event, Graded):
        return (f"report {event.report} by {event.lab}: {format_ct(event.mass_mct)} {event.colour} "
                f"{event.clarity} {event.nature}")
    return body.kind
