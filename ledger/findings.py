"""Findings and reports: the ``check_*`` tier of verification (DESIGN.md §5).

A :class:`Finding` names one fault: a stable ``code`` (``area.reason``, listed in docs/format.md), the record
position (0-based leaf index in the log, or None when the fault is not tied to one record), the item concerned
(or None), and a one-line ``reason``. ``verify_*`` functions raise :class:`~ledger.errors.RuleError` carrying the
first finding instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .errors import RuleError

if TYPE_CHECKING:
    from .policy import Policy

__all__ = ["Finding", "Verdicts", "raise_first"]


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


class Verdicts:
    """The two verdicts of a report (a mixin for report dataclasses with these three fields): integrity
    ``findings`` and, apart, the ``policy_findings`` of the optional ``policy`` — a policy finding never makes an
    integrity verdict fail (DESIGN.md §5)."""

    __slots__ = ()
    findings: tuple[Finding, ...]
    policy: Policy | None
    policy_findings: tuple[Finding, ...]

    @property
    def ok(self) -> bool:
        """True when no integrity rule failed (policy findings do not count: see ``policy_ok``)."""
        return not self.findings

    @property
    def policy_ok(self) -> bool:
        """True when the policy (if any) has no finding."""
        return not self.policy_findings

    @property
    def verdict(self) -> str:
        """The one verdict, integrity and policy combined (docs/format.md §10): ``invalid`` if an integrity rule
        failed (whatever the policy says); else ``valid`` without a policy, ``valid_compliant`` or
        ``valid_not_compliant`` with one."""
        if self.findings:
            return "invalid"
        if self.policy is None:
            return "valid"
        return "valid_compliant" if not self.policy_findings else "valid_not_compliant"

    def verdicts_json(self) -> dict[str, object]:
        """The verdicts and every finding, JSON-ready: ``verdict`` (:attr:`verdict`), then each part apart."""
        return {"verdict": self.verdict, "valid": self.ok, "findings": [f.to_json() for f in self.findings],
                "policy": self.policy.describe() if self.policy else None, "policy_valid": self.policy_ok,
                "policy_findings": [f.to_json() for f in self.policy_findings]}


def raise_first(findings: list[Finding] | tuple[Finding, ...]) -> None:
    """Raise RuleError for the first finding, if any (the ``verify_*`` tier)."""
    if findings:
        first = findings[0]
        raise RuleError(str(first), code=first.code, finding=first)
