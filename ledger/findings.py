"""Findings and reports: the ``check_*`` tier of verification (DESIGN.md §5).

A :class:`Finding` names one fault: a stable ``code`` (``area.reason``, listed in docs/format.md), the record
position (0-based leaf index in the log, or None when the fault is not tied to one record), the item concerned
(or None), and a one-line ``reason``. ``verify_*`` functions raise :class:`~ledger.errors.RuleError` carrying the
first finding instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .errors import RuleError

__all__ = ["Finding", "group_unchecked", "raise_first"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One named fault. ``position``: 0-based record index in the log; ``item``: item or party id."""

    code: str
    position: int | None
    item: str | None
    reason: str

    def __str__(self) -> str:
        where = "ledger" if self.position is None else f"record {self.position}"
        about = f" [{self.item}]" if self.item else ""
        return f"{where}{about}: {self.code}: {self.reason}"

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict with the four fields."""
        return {"code": self.code, "position": self.position, "item": self.item, "reason": self.reason}


def raise_first(findings: list[Finding] | tuple[Finding, ...]) -> None:
    """Raise RuleError for the first finding, if any (the ``verify_*`` tier); its message names the codes of the
    same record's other findings (a new user's review: re-running an enrolment said only ``chain.time_backwards``,
    not ``registry.duplicate_party``)."""
    if findings:
        first = findings[0]
        also = sorted({f.code for f in findings[1:] if f.position == first.position} - {first.code})
        raise RuleError(str(first) + (f" (this record also: {', '.join(also)})" if also else ""), code=first.code,
                        finding=first)


def group_unchecked(unchecked: Sequence[Finding]) -> list[str]:
    """The checks a bundle could not make (``BundleReport.unchecked``), one line per code, as ``proof verify``
    and the report print them: where, and what they would need (a few lines with counts, not one per good)."""
    by_code: dict[str, list[Finding]] = {}
    for f in unchecked:
        by_code.setdefault(f.code, []).append(f)
    lines = []
    for code, found in by_code.items():
        positions = sorted({str(f.position) for f in found if f.position is not None}, key=int)
        where = f"record{'s' if len(positions) > 1 else ''} {_some(positions)}"
        if code == "bundle.outside_items":
            items = _some(sorted({f.item for f in found if f.item}))
            lines.append(f"{code}: {where} also name {items}: the rules about those goods there")
        else:
            lines.append(f"{code} at {where}: {found[0].reason.removeprefix('not checked: ')}")
    return lines


def _some(names: list[str], most: int = 6) -> str:
    """Up to ``most`` names, then how many more."""
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")
