"""An item's history back to its roots: the rows ``stonetrail show`` prints.

Walks the replayed ledger from an item back through the records that created it (splits) to the ``mined``
record of its ancestors, and returns one :class:`HistoryRow` per record, oldest first. Pure: works on a
:class:`~ledger.audit.Replay`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .audit import Replay
from .events import (
    Attested,
    Corrected,
    Exported,
    Graded,
    Grown,
    Imported,
    Inscribed,
    Merged,
    Mined,
    Registered,
    Retired,
    Set,
    Split,
    Transferred,
    Unset,
    Verified,
)
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


def describe(record: Record, focus: str | None = None) -> str:
    """A one-line plain-language description of a record's event (units in carats).

    ``focus``: the item the reader follows; a split into many outputs then names only that one.
    """
    body = record.body
    describe_kind = _DESCRIBE.get(type(body.event))
    return describe_kind(record, focus) if describe_kind else body.kind


def _ids(ids: list[str]) -> str:
    return ", ".join(ids[:4]) + (f" and {len(ids) - 4} more" if len(ids) > 4 else "")


def _split(record: Record, focus: str | None) -> str:
    body, event = record.body, record.body.event
    assert isinstance(event, Split)
    shown = list(body.outputs) if len(body.outputs) <= 4 else (
        [o for o in body.outputs if o.id == focus] or list(body.outputs[:3]))
    outs = ", ".join(f"{o.id} {format_ct(o.mass_mct)}" for o in shown)
    more = f" and {len(body.outputs) - len(shown)} more" if len(shown) < len(body.outputs) else ""
    return f"split {body.inputs[0][0]} into {outs}{more}; declared loss {format_ct(event.loss_mct)}"


def _text(render: Callable[[Any, Record], str]) -> Callable[[Record, str | None], str]:
    return lambda record, _focus: render(record.body.event, record)


_DESCRIBE: dict[type[Any], Callable[[Record, str | None], str]] = {
    Mined: _text(lambda e, r: f"mined at {e.mine} ({e.country}); origin attested by {r.body.actor}"),
    Grown: _text(lambda e, r: f"laboratory-grown ({e.method}) at {e.facility} ({e.country})"),
    Registered: _text(lambda e, r: f"registered with no recorded history ({e.reason}): origin unknown"),
    Transferred: _text(lambda e, r: f"{r.body.actor} -> {e.to}" + (" (on memo)" if e.mode == "memo" else "")),
    Exported: _text(lambda e, r: f"exported to {e.to_country} for {e.consignee} under KP certificate "
                                 f"{e.kp_certificate}"
                                 + (f", co-signed by {e.kp_authority}" if e.kp_authority else "")),
    Imported: _text(lambda e, r: f"imported from {e.from_country} under KP certificate {e.kp_certificate}"
                                 + (f", cleared by {e.customs}" if e.customs else "")
                                 + (f", exemption: {e.basis}" if e.basis else "")),
    Verified: _text(lambda e, r: f"origin {', '.join(e.countries)} verified by {e.node}"),
    Split: _split,
    Merged: _text(lambda e, r: f"merged {_ids([i for i, _ in r.body.inputs])} into parcel {r.body.outputs[0].id}"
                               if r.body.outputs else "merged"),
    Graded: _text(lambda e, r: f"report {e.report} by {e.lab}: {format_ct(e.mass_mct)} {e.colour} {e.clarity} "
                               f"{e.nature}"),
    Inscribed: _text(lambda e, r: f"inscribed {e.inscription!r} by {e.lab}"),
    Set: _text(lambda e, r: f"set into {r.body.outputs[0].id if r.body.outputs else 'an article'} ({e.description})"),
    Unset: _text(lambda e, r: f"taken out of its setting ({e.reason})"),
    Retired: _text(lambda e, r: f"retired: {e.reason}"),
    Attested: _text(lambda e, r: f"attested by {r.body.actor}: {e.statement}"),
    Corrected: _text(lambda e, r: f"correction by {r.body.actor}: {e.statement}"),
}
