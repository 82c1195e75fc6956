"""The policy flags shared by ``verify`` and ``proof verify`` (--policy FILE, --deny-origin, --kp-rules, ...), and
the printing of a policy verdict."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

import click

from ledger import Finding
from ledger._file_kinds import text_kind
from ledger.errors import InputError
from ledger.policy import Policy, PolicyError, parse_carats, parse_countries

from ._common import _EXISTING, _F, _plural, _print_findings
from ._inputs import _read_text

_T = TypeVar("_T")


def policy_options(fn: _F) -> _F:
    """Add the policy flags (--policy FILE, --deny-origin, --kp-rules, ...) to a command; the command receives
    them as one ``policy`` argument: a :class:`~ledger.policy.Policy`, or None when no rule is switched on.

    Put it below ``@_errors``, so that a malformed flag is reported as a one-line usage error (exit 2)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, policy_file: Path | None, deny_origin: tuple[str, ...],
                import_threshold_ct: str | None, kp_rules: bool, require_known_origin: bool, require_verified: bool,
                regrade_tolerance_ct: str | None, import_tolerance_ct: str | None, **kwargs: Any) -> Any:
        policy = (_load_policy(policy_file) if policy_file else Policy()).extend(
            deny_origin=frozenset().union(*(_flag(parse_countries, text.upper(), "--deny-origin")  # ru: RU
                                            for text in deny_origin)),
            import_threshold_mct=_carats(import_threshold_ct, "--import-threshold-ct"),
            kp_rules=kp_rules, require_known_origin=require_known_origin, require_verified=require_verified,
            regrade_tolerance_mct=_carats(regrade_tolerance_ct, "--regrade-tolerance-ct"),
            import_weight_tolerance_mct=_carats(import_tolerance_ct, "--import-tolerance-ct"))
        asked = policy_file or deny_origin or import_threshold_ct or kp_rules or require_known_origin or \
            require_verified or regrade_tolerance_ct or import_tolerance_ct
        if asked and not policy.active:
            raise InputError("these policy settings switch no rule on (--import-threshold-ct only narrows "
                             "--deny-origin; a policy file needs at least one rule)", code="policy.inactive")
        return fn(*args, policy=policy if policy.active else None, **kwargs)

    for option in reversed(_POLICY_OPTIONS):
        wrapper = option(wrapper)
    return wrapper  # type: ignore[return-value]


_POLICY_OPTIONS = (
    click.option("--policy", "policy_file", type=_EXISTING,
                 help="Policy file: key = value lines, the flags' names and units (deny_origin = RU, "
                      "import_threshold_ct = 0.5; docs/format.md 'Policies'); the flags below add to it."),
    click.option("--deny-origin", "deny_origin", multiple=True, metavar="CC[,CC]",
                 help="Refuse goods mined in or routed through this country (ISO code; repeatable)."),
    click.option("--import-threshold-ct", metavar="CT",
                 help="Apply --deny-origin only to natural goods imported at this mass or more (e.g. 0.5), "
                      "counted at the larger of the declared and the recorded mass."),
    click.option("--kp-rules", is_flag=True,
                 help="Check Kimberley Process certificates (prefix, dates, reuse, total)."),
    click.option("--require-known-origin", is_flag=True, help="Refuse imports with an unknown (XX) origin share."),
    click.option("--require-verified", is_flag=True,
                 help="Every graded natural stone must descend from a verified record."),
    click.option("--regrade-tolerance-ct", metavar="CT",
                 help="Most two gradings of one stone may differ (e.g. 0.005)."),
    click.option("--import-tolerance-ct", metavar="CT",
                 help="Most a mass declared at import may fall below the last graded mass (e.g. 0.005)."),
)


def _load_policy(path: Path) -> Policy:
    text = _read_text(path, "policy file")
    try:
        return Policy.parse(text)
    except PolicyError as exc:
        kind = text_kind(text)
        said = f"it is {kind}, not a policy file (lines 'key = value': docs/format.md §9.2)" if kind else str(exc)
        raise PolicyError(f"policy file {path}: {said}", code=exc.code) from exc


def _flag(parse: Callable[[str], _T], text: str, option: str) -> _T:
    try:
        return parse(text)
    except PolicyError as exc:
        raise PolicyError(f"{option}: {exc}", code=exc.code) from exc


def _carats(text: str | None, option: str) -> int | None:
    return None if text is None else _flag(parse_carats, text, option)


class _PolicyVerdict(Protocol):
    """A report with a policy verdict: :class:`~ledger.AuditReport` or :class:`~ledger.bundle.BundleReport`."""

    @property
    def policy(self) -> Policy | None: ...
    @property
    def policy_ok(self) -> bool: ...
    @property
    def policy_findings(self) -> tuple[Finding, ...]: ...
    @property
    def ok(self) -> bool: ...


def _print_policy(r: _PolicyVerdict) -> None:
    """The policy's rules and its result, apart from integrity: judged over the records, not proven by them (the
    one verdict line, after it, combines the two)."""
    if r.policy is None:
        return
    click.echo("policy (judged over the records; origins are attested by the producers named):")
    for line in r.policy.describe():
        click.echo(f"  rule:    {line}")
    if r.policy_ok:  # over records that failed integrity, "compliant" would vouch for what is not proven
        click.echo("  result:  compliant" if r.ok else "  result:  no policy finding, but the records are INVALID: "
                   "nothing is compliant on their word")
        return
    click.echo(f"  result:  NOT COMPLIANT ({_plural(len(r.policy_findings), 'finding')})")
    _print_findings(r.policy_findings)
