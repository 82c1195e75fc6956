"""An item's history back to its roots: the rows ``stonetrail show`` prints.

Walks the replayed ledger from an item back through the records that created it (splits) to the ``mined``
record of its ancestors, and returns one :class:`HistoryRow` per record, oldest first. Pure: works on a
:class:`~ledger.audit.Replay`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ._describe import describe, format_ct
from .audit import Replay
from .events import Graded, Grown, Mined, Transferred
from .provenance import provenance_scope
from .record import Record

__all__ = ["HistoryRow", "describe", "format_ct", "item_history", "origin_summary"]


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


def _lineage(replay: Replay, item_id: str) -> Mapping[int, str]:
    """Record position -> the lineage item it is shown under: the same scope a proof bundle holds
    (:func:`ledger.provenance.provenance_scope`), so ``show`` and ``proof verify`` tell one history.

    Raises:
        KeyError: no item ``item_id``.
    """
    if item_id not in replay.state.items:
        raise KeyError(item_id)
    records = {p: r for p, r in enumerate(replay.records) if r is not None}
    return provenance_scope(records, item_id).positions


def origin_summary(replay: Replay, item_id: str) -> str:
    """The item's nature and origin composition in carats, with who attested each mined or grown root, e.g.
    ``natural; origin AO 0.748 ct, RU 0.502 ct (attested by producer-catoca, producer-udachny)``.

    Raises:
        KeyError: no item ``item_id``.
    """
    item = replay.state.items[item_id]
    parts = ", ".join(f"{c} {format_ct(m)}" for c, m in sorted(item.origin.items()))
    roots = sorted({r.body.actor for p in _lineage(replay, item_id)
                    if (r := replay.records[p]) is not None and isinstance(r.body.event, Mined | Grown)})
    unknown = " (unknown: no recorded history)" if "XX" in item.origin else ""
    attested = f" (attested by {', '.join(roots)})" if roots else ""
    return f"{item.nature}; origin {parts}{unknown}{attested}"


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
