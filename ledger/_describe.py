"""Plain-language lines for records and masses: what ``stonetrail show`` and a bundle's provenance print.

Pure (records in, text out), so that both a replayed ledger (:mod:`ledger.history`) and an offline proof bundle
(:mod:`ledger.provenance`) describe records the same way. Masses are shown in carats with integer arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .events import (
    Attested,
    Corrected,
    Enrolled,
    Exported,
    Graded,
    Grown,
    Imported,
    Inscribed,
    KeyAdded,
    KeyRevoked,
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

__all__ = ["describe", "format_ct"]


def format_ct(mass_mct: int) -> str:
    """Millicarats as carats with three decimals, e.g. 1020 -> ``1.020 ct`` (integer arithmetic, no floats)."""
    return f"{mass_mct // 1000}.{mass_mct % 1000:03d} ct"


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
    Enrolled: _text(lambda e, r: f"enrolled {e.party} ({e.name}; {', '.join(e.roles)}; {e.country})"),
    KeyAdded: _text(lambda e, r: f"a new key for {e.party}"),
    KeyRevoked: _text(lambda e, r: f"a key of {e.party} revoked ({e.reason})"),
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
