"""The two verdicts of a report, integrity and policy, and the one verdict that combines them (DESIGN.md §5,
docs/format.md §10 "Verdict"): the mixin of :class:`ledger.audit.AuditReport` and :class:`ledger.bundle.BundleReport`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .findings import Finding

if TYPE_CHECKING:
    from .policy import Policy

__all__ = ["Verdicts"]


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
    def finding_count(self) -> int:
        """The integrity findings: :attr:`findings` (an audit's report also counts those it did not keep)."""
        return len(self.findings)

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
                "policy": self.policy.describe() if self.policy else None,
                "policy_valid": self.policy_ok if self.policy else None,  # null: no policy checked
                "policy_findings": [f.to_json() for f in self.policy_findings]}
