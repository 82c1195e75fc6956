"""Trade policies: rules a verifier chooses to apply on top of integrity (DOMAIN.md R1-R4, R7, R11, fraud 6).

Integrity (:mod:`ledger.custody`) says whether a ledger is what its signers wrote and obeys the custody rules;
a :class:`Policy` says whether the goods it records may be accepted under a given regime, e.g. "no Russian
origin" (EU Reg. 833/2014 Art. 3p). The two never mix: :func:`check_policy` returns its own findings (codes
``policy.*``, docs/format.md "Policies"), which an audit keeps apart from the integrity findings.

The policy value and its file format live in :mod:`ledger._policy` (re-exported here). Everything here is pure:
it reads a replayed ledger (:class:`~ledger.replay.Replay`), or any replayed set of records such as a proof
bundle's (:func:`check_policy_records`), and returns values.
Origin claims are attested, never proven: a finding names the producers whose ``mined`` records attest them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from ._policy import CODES, Policy, PolicyError, format_carats, parse_carats, parse_countries
from ._text import fold
from .custody import CustodyState
from .events import Exported, Graded, Grown, Imported, Inscribed, Mined, Registered, Set, Unset, Verified
from .findings import Finding
from .item import Item
from .origin import UNKNOWN
from .record import Record


class Replayed(Protocol):
    """What :func:`check_policy` reads of a replayed ledger (:class:`ledger.replay.Replay`): its records by
    position (None where unreadable) and the custody state they left."""

    @property
    def records(self) -> Sequence[Record | None]: ...
    @property
    def state(self) -> CustodyState: ...

__all__ = ["CODES", "Policy", "PolicyError", "Replayed", "check_policy", "check_policy_records",
           "format_carats", "parse_carats", "parse_countries"]

_SHOWN = 3  # records or producers named in one reason before "and N more"


def check_policy(replay: Replayed, policy: Policy) -> list[Finding]:
    """Every policy finding of a replayed ledger, ordered by record position (codes: :data:`CODES`).

    Reads ``replay.records`` once, in order, following only what the replay applied to each item (its
    ``history``), so a forked or unreadable record counts for nothing here either. An item's parents are the
    inputs of the record that created it.
    """
    records = ((position, record) for position, record in enumerate(replay.records) if record is not None)
    return check_policy_records(records, replay.state.items, policy, end=len(replay.records))


def check_policy_records(records: Iterable[tuple[int, Record]], items: Mapping[str, Item], policy: Policy, *,
                         end: int, touched: Mapping[int, list[str]] | None = None) -> list[Finding]:
    """:func:`check_policy` over any replayed set of records: (position, record) pairs in increasing position
    and the replayed ``items`` (:attr:`ledger.custody.CustodyState.items`); ``end`` is the log position after
    the last record. Only the records in some item's ``history`` count, and only for those items: pass a subset
    of the items (e.g. one stone's provenance in a proof bundle) to judge only them. ``touched``: position -> the
    ids of the items applied there, in the order applied, when the items' ``history`` holds only their first
    position (an audit's replay: :meth:`ledger.spilled.SpilledState.touched`); None: taken from their ``history``.
    """
    if not policy.active:
        return []
    walk = _Walk(items, policy, touched)
    for position, record in records:
        if position in walk.touched:
            walk.record(position, record)
    found = walk.found + walk.finish()
    found.sort(key=lambda f: f.position if f.position is not None else end)
    return found


def _touched(items: Mapping[str, Item]) -> dict[int, list[str]]:
    """Position -> the ids of the ``items`` the replay applied that record to (from their ``history``)."""
    touched: dict[int, list[str]] = {}
    for item in items.values():
        for position in item.history:
            touched.setdefault(position, []).append(item.id)
    return touched


@dataclass(frozen=True, slots=True)
class _Grading:
    mass_mct: int
    nature: str
    position: int
    item: str
    report: str


class _Walk:
    """The state of one pass over the records: what each policy rule needs to know at each record."""

    def __init__(self, items: Mapping[str, Item], policy: Policy, touched: Mapping[int, list[str]] | None) -> None:
        self.policy = policy
        self.items: Mapping[str, Item] = items
        self.touched = touched if touched is not None else _touched(items)
        self.found: list[Finding] = []
        self.roots: dict[str, frozenset[int]] = {}  # item -> positions of the mined/grown/registered roots
        self.route: dict[str, dict[str, int]] = {}  # item -> denied country -> first record placed there
        self.contents: dict[str, list[str]] = {}  # article -> the stones set in it (until it is unset)
        self.unverified: dict[str, frozenset[int]] = {}  # item -> roots with no verified record on the line to it
        self.graded: dict[str, int] = {}  # natural stone -> position of its first grading
        self.mass: dict[str, int] = {}  # item -> recorded mass (output mass, lowered by gradings)
        self.last_grade: dict[str, _Grading] = {}
        self.by_report: dict[str, _Grading] = {}  # folded report number -> its latest grading
        self.by_inscription: dict[str, _Grading] = {}  # folded inscription -> its reference grading
        self.inscription: dict[str, str] = {}  # stone -> its folded inscription
        self.exports: dict[str, int] = {}  # folded certificate -> position of its first export
        self.export_of: dict[str, tuple[int, Exported]] = {}  # item -> its latest export
        self.imported_over: dict[str, str] = {}  # item -> how it was first imported at or above the threshold
        self.root_records: dict[int, Record] = {}

    def add(self, code: str, position: int, item: str | None, reason: str) -> None:
        self.found.append(Finding(code=code, position=position, item=item, reason=reason))

    def record(self, position: int, record: Record) -> None:
        body, event = record.body, record.body.event
        touched = self.touched[position]
        created = [i for i in touched if self.items[i].history[0] == position]
        inputs = [i for i in touched if i not in created]
        parents = [i for i, _ in body.inputs if i in self.items and self.items[i].history[0] < position]
        denied_here = body.place if body.place in self.policy.deny_origin else None
        if denied_here is not None:  # a record of an article is also a record of the stones set in it (R2)
            for item in inputs + [s for i in inputs for s in self.contents.get(i, ())]:
                if denied_here not in self.route.get(item, {}):
                    self.route[item] = {**self.route.get(item, {}), denied_here: position}
        if isinstance(event, Exported):
            self._exported(position, record, event, inputs)
        elif isinstance(event, Imported):
            self._imported(position, record, event, inputs)
        elif isinstance(event, Graded):
            for item in inputs:
                self._graded(position, event, item)
        elif isinstance(event, Inscribed):
            for item in inputs:
                self._inscribed(position, event, item)
        elif isinstance(event, Verified):
            for item in inputs:
                self.unverified[item] = frozenset()
        elif isinstance(event, Unset):
            for item in inputs:
                self.contents.pop(item, None)
        for item in created:
            self._created(position, record, item, parents, denied_here)

    # --- lineage ----------------------------------------------------------------------------------------------

    def _created(self, position: int, record: Record, item: str, parents: list[str], denied: str | None) -> None:
        if isinstance(record.body.event, Mined | Grown | Registered):
            self.roots[item] = self.unverified[item] = frozenset({position})
            self.root_records[position] = record
        else:
            roots = [self.roots.get(p, frozenset()) for p in parents]
            self.roots[item] = roots[0] if len(roots) == 1 else frozenset().union(*roots)
            # R3: a line from any parent without a verified record leaves this item unverified (all, not any);
            # a parent outside the items judged (a partial set) is not known to be verified: its record stands in
            unknown = frozenset({position}) if len(parents) < len(record.body.inputs) else frozenset()
            self.unverified[item] = unknown.union(*(self.unverified.get(p, frozenset()) for p in parents))
            if isinstance(record.body.event, Set):
                self.contents[item] = list(parents)
        route: dict[str, int] = {}
        for parent in parents:
            for country, first in self.route.get(parent, {}).items():
                route[country] = min(first, route.get(country, first))
        if denied is not None:
            route.setdefault(denied, position)
        if route:
            self.route[item] = route
        self.mass[item] = next(o.mass_mct for o in record.body.outputs if o.id == item)

    # --- Kimberley Process (R7), unknown origin (R4), threshold gaming (fraud 6) -----------------------------

    def _exported(self, position: int, record: Record, event: Exported, inputs: list[str]) -> None:
        place, certificate = record.body.place, event.kp_certificate
        for item in inputs:
            self.export_of[item] = (position, event)
        if not self.policy.kp_rules:
            return
        if not certificate.startswith(place):
            self.add("policy.kp_prefix", position, None,
                     f"KP certificate {certificate} of an export from {place} does not start with {place}")
        first = self.exports.setdefault(fold(certificate), position)
        if first != position:
            self.add("policy.kp_reused", position, None,
                     f"KP certificate {certificate} was already used by the export at record {first}")
        declared = sum(m for _, m in event.declared)
        recorded = sum(self.mass.get(i, 0) for i in inputs)
        if max(declared, recorded) > event.certificate_mct:
            self.add("policy.kp_over_total", position, None,
                     f"KP certificate {certificate} covers {format_carats(event.certificate_mct)}; the export "
                     f"declares {format_carats(declared)} of goods recorded at {format_carats(recorded)}")

    def _imported(self, position: int, record: Record, event: Imported, inputs: list[str]) -> None:
        if self.policy.kp_rules:
            self._kp_import(position, record, event, inputs)
        declared = dict(event.declared)
        for item in inputs:
            if self.policy.require_known_origin and UNKNOWN in self.items[item].origin:
                self.add("policy.unknown_origin", position, item,
                         f"imported with an unknown ({UNKNOWN}) share in its origin "
                         f"{_countries(self.items[item].origin)}: every mining country must be named")
            mass = declared.get(item)
            if mass is None:
                continue
            tolerance = self.policy.import_weight_tolerance_mct
            known, how = self._known(item)
            if tolerance is not None and known - mass > tolerance:
                self.add("policy.import_underdeclared", position, item,
                         f"declared at {format_carats(mass)}, {format_carats(known - mass)} below the "
                         f"{format_carats(known)} {how} (tolerance {format_carats(tolerance)})")
            if self.policy.import_threshold_mct is not None:
                self._threshold(position, item, mass)

    def _threshold(self, position: int, item: str, declared: int) -> None:
        """R1 at import: the goods count as imported at the larger of the declared mass and the mass the ledger
        records for them (:meth:`_known`), never at the declaration alone (DOMAIN.md fraud 6, threshold gaming);
        the stones set in an article count at the larger of that and their own recorded mass."""
        threshold = self.policy.import_threshold_mct
        assert threshold is not None
        known, how = self._known(item)
        mass = max(declared, known)
        more = f" ({how} at {format_carats(known)})" if known > declared else ""
        if self.items[item].nature in ("natural", "mixed"):
            if declared < threshold <= known and self.policy.deny_origin:
                self.add("policy.declared_below_recorded", position, item,
                         f"declared at {format_carats(declared)}, below the import threshold of "
                         f"{format_carats(threshold)}, but {how} at {format_carats(known)}: the threshold is "
                         "judged on the recorded mass")
            if mass >= threshold:
                self.imported_over.setdefault(item, f"imported at a declared {format_carats(declared)}{more} "
                                                    f"(record {position})")
        for stone in self.contents.get(item, ()):  # R1: the stones set in an article are imported with it
            own = self._known(stone)[0]
            if max(mass, own) >= threshold and self.items[stone].nature == "natural":
                self.imported_over.setdefault(stone, f"imported set in article {item} declared at "
                                                     f"{format_carats(declared)}{more}, its own recorded mass "
                                                     f"{format_carats(own)} (record {position})")

    def _known(self, item: str) -> tuple[int, str]:
        """The mass the ledger records for ``item`` now, in millicarats, and how: its last grading (the weight a
        lab measured; never above the recorded mass: ``mass.exceeds_input``), else its recorded mass (the output
        mass of the record that created it; for a lot or parcel, the whole lot's)."""
        grading = self.last_grade.get(item)
        if grading is not None:
            return grading.mass_mct, f"graded at record {grading.position}"
        return self.mass.get(item, 0), "recorded"

    def _kp_import(self, position: int, record: Record, event: Imported, inputs: list[str]) -> None:
        exports = sorted({self.export_of[i] for i in inputs if i in self.export_of}, key=lambda e: e[0])
        codes: set[str] = set()
        time_ms, declared = record.body.time_ms, sum(m for _, m in event.declared)
        for at, export in exports:
            problems = []
            if export.kp_certificate != event.kp_certificate:
                problems.append(("policy.kp_mismatch", f"imported under KP certificate {event.kp_certificate}, "
                                 f"exported under {export.kp_certificate} (record {at})"))
            if not export.issued_ms <= time_ms <= export.expires_ms:
                problems.append(("policy.kp_dates", f"imported at {time_ms} ms, outside the validity of KP "
                                 f"certificate {export.kp_certificate} ({export.issued_ms} .. {export.expires_ms} "
                                 f"ms, record {at})"))
            if declared > export.certificate_mct >= sum(m for _, m in export.declared):  # else flagged at export
                problems.append(("policy.kp_over_total", f"the import declares {format_carats(declared)} under KP "
                                 f"certificate {export.kp_certificate} of {format_carats(export.certificate_mct)}"))
            for code, reason in problems:
                if code not in codes:
                    codes.add(code)
                    self.add(code, position, None, reason)

    # --- gradings (R3, R11) -----------------------------------------------------------------------------------

    def _graded(self, position: int, event: Graded, item: str) -> None:
        grading = _Grading(event.mass_mct, event.nature, position, item, event.report)
        if self.items[item].nature == "natural":
            self.graded.setdefault(item, position)
        self.mass[item] = min(self.mass.get(item, event.mass_mct), event.mass_mct)
        report = fold(event.report)  # identities compare folded, as integrity's indexes do
        earlier = [self.last_grade.get(item), self.by_report.get(report)]
        if item in self.inscription:
            earlier.append(self.by_inscription.get(self.inscription[item]))
        self._compare(position, item, grading, earlier)
        self.last_grade[item] = self.by_report[report] = grading
        if item in self.inscription:
            self.by_inscription.setdefault(self.inscription[item], grading)

    def _inscribed(self, position: int, event: Inscribed, item: str) -> None:
        inscription = self.inscription[item] = fold(event.inscription)
        own = self.last_grade.get(item)
        if own is None:
            return
        self._compare(position, item, own, [self.by_inscription.get(inscription)])
        self.by_inscription.setdefault(inscription, own)

    def _compare(self, position: int, item: str, grading: _Grading, earlier: list[_Grading | None]) -> None:
        tolerance = self.policy.regrade_tolerance_mct
        if tolerance is None:
            return
        seen: set[int] = set()
        problems = []
        for other in earlier:
            if other is None or other.position == grading.position or other.position in seen:
                continue
            seen.add(other.position)
            diff = abs(grading.mass_mct - other.mass_mct)
            if diff <= tolerance and grading.nature == other.nature:
                continue
            which = "this stone" if other.item == item else f"stone {other.item}"
            problems.append(f"{format_carats(grading.mass_mct)} {grading.nature} (report {grading.report}, record "
                            f"{grading.position}) vs {format_carats(other.mass_mct)} {other.nature} for {which} "
                            f"(report {other.report}, record {other.position}): {format_carats(diff)} apart")
        if problems:
            self.add("policy.regrade_mismatch", position, item,
                     f"gradings of one stone disagree beyond {format_carats(tolerance)}: " + "; ".join(problems))

    # --- after the last record: per-item rules ----------------------------------------------------------------

    def finish(self) -> list[Finding]:
        found = []
        if self.policy.require_verified:
            for stone, position in self.graded.items():
                lines = sorted(self.unverified.get(stone, {position}))  # no creation seen: not known verified
                if lines:
                    roots = [self._attestation(p) if p in self.root_records else f"goods not judged here (record {p})"
                             for p in lines]
                    found.append(Finding(code="policy.unverified", position=position, item=stone, reason=(
                        f"graded, but no verified record on it or on the ancestors that lead to {_some(roots)}")))
        if self.policy.deny_origin:
            for item in self.items.values():
                reason = self._denied(item)
                if reason is not None:
                    found.append(Finding(code="policy.denied_origin", position=item.history[0], item=item.id,
                                         reason=reason))
        return found

    def _denied(self, item: Item) -> str | None:
        deny = self.policy.deny_origin
        origin = sorted(deny & set(item.origin))
        passed = {c: p for c, p in self.route.get(item.id, {}).items() if c not in origin}
        if not origin and not passed:
            return None
        imported = None
        if self.policy.import_threshold_mct is not None:
            if item.id not in self.imported_over:
                return None
            imported = self.imported_over[item.id]
        parts = []
        if origin:
            attested = [self._attestation(p) for p in sorted(self.roots.get(item.id, ()))
                        if self._root_country(p) in deny]
            parts.append(f"origin {_countries(item.origin)} includes {', '.join(origin)}, attested by "
                         f"{_some(attested) or 'no recorded producer'}")
        if passed:
            parts.append("custody passed through " + ", ".join(f"{c} (record {p})" for c, p in sorted(passed.items())))
        if imported:
            parts.append(imported)
        return "; ".join(parts)

    def _root_country(self, position: int) -> str:
        event = self.root_records[position].body.event
        return event.country if isinstance(event, Mined | Grown) else UNKNOWN

    def _attestation(self, position: int) -> str:
        body = self.root_records[position].body
        event = body.event
        if isinstance(event, Mined):
            return f"{body.actor} (mined at {event.mine}, {event.country}, record {position})"
        if isinstance(event, Grown):
            return f"{body.actor} (grown at {event.facility}, {event.country}, record {position})"
        return f"{body.actor} (registered with no history, record {position})"


def _countries(origin: Mapping[str, int]) -> str:
    return "{" + ", ".join(sorted(origin)) + "}"


def _some(names: list[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")
