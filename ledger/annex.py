"""Customs evidence annexes drawn from a verified bundle: the EU Due Diligence Statement on Diamond Origin
(``eu-dds``) and the US CBP country-of-mining entry lines (``us-cbp``). Field by field: docs/annex-eu-dds.md,
docs/annex-us-cbp.md.

Pure: a :class:`~ledger.dossier.Dossier` in, an :class:`Annex` out, built from the verified provenance only.
Where a stone was mined, where it was cut and what a lab measured are claims of the parties who signed them:
every such field says ``attested by <party>, proven consistent by the ledger`` (DOMAIN.md: a ledger proves who
said what and that the claims agree, never that the first claim is physically true). Masses are integer
millicarats; a share's per cent is rounded half up to one decimal with integer arithmetic.

* **Country of mining** (EU Reg. 833/2014 Art. 3p; US CBP, one entry line per country of mining): the item's
  origin composition {country: mct}, inherited through splits and summed through merges, each country with the
  producers whose ``mined`` / ``grown`` records attest it.
* **Country of origin** (US: where a stone was cut and polished): the place of the latest ``split`` in the
  item's line back to its roots, as signed by its cutter; an item never split keeps its country of mining.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from ._describe import format_ct
from .dossier import Dossier, JourneyStep
from .errors import ArgumentError, expect
from .events import Exported, Graded, Imported, Inscribed, Verified

__all__ = ["FORMATS", "PROVEN", "Annex", "Claim", "Share", "build_annex", "percent"]

#: The annex formats: EU Due Diligence Statement on Diamond Origin, US CBP entry lines by country of mining.
FORMATS: Final = ("eu-dds", "us-cbp")
TITLES: Final = {"eu-dds": "EU Due Diligence Statement on Diamond Origin: evidence annex",
                 "us-cbp": "US CBP entry: country of mining and country of origin, evidence annex"}
#: What the ledger adds to a party's claim.
PROVEN: Final = "proven consistent by the ledger"
VERSION: Final = 1


def percent(part: int, whole: int) -> str:
    """``part`` of ``whole`` in per cent with one decimal, rounded half up (integers only): 500 of 1250 -> 40.0."""
    tenths = (part * 2000 + whole) // (2 * whole) if whole else 0
    return f"{tenths // 10}.{tenths % 10}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Share:
    """One country of mining: ``mass_mct`` of the item attributed to it, ``percent`` of the item's origin, the
    producers who attest it and the positions and hashes of their root records."""

    country: str
    mass_mct: int
    percent: str
    attested_by: tuple[str, ...]
    records: tuple[tuple[int, str], ...]

    @property
    def basis(self) -> str:
        return f"attested by {', '.join(self.attested_by) or 'nobody'}, {PROVEN}"

    def to_json(self) -> dict[str, object]:
        return {"country": self.country, "mass_mct": self.mass_mct, "carats": format_ct(self.mass_mct)[:-3],
                "percent": self.percent, "attested_by": list(self.attested_by),
                "records": [{"record": p, "record_hash": h} for p, h in self.records], "basis": self.basis}


@dataclass(frozen=True, slots=True, kw_only=True)
class Claim:
    """One signed claim on the item's path: ``field`` (``country_of_origin``, ``kp_certificate``,
    ``g7_verification``, ``lab_report``, ``inscription``, ``link``), its ``value`` in words, the ``item`` it is
    about, the record's position and hash, and who signed it as what (``party (role)``)."""

    field: str
    value: str
    item: str
    record: int
    record_hash: str
    signed_by: tuple[str, ...]

    @property
    def basis(self) -> str:
        return f"attested by {', '.join(s.split(' ')[0] for s in self.signed_by)}, {PROVEN}"

    def to_json(self) -> dict[str, object]:
        return {"field": self.field, "value": self.value, "item": self.item, "record": self.record,
                "record_hash": self.record_hash, "signed_by": list(self.signed_by), "basis": self.basis}


@dataclass(frozen=True, slots=True, kw_only=True)
class Annex:
    """An annex (module docstring) in ``format``: the item, the verdict, the countries of mining, the country of
    origin and every claim it rests on, under the checkpoint that proves them."""

    format: str
    item: str
    nature: str
    mass_mct: int
    verdict: str
    policy: tuple[str, ...]
    mining: tuple[Share, ...]
    origin: Claim | None
    origin_country: str
    claims: tuple[Claim, ...]
    checkpoint: Mapping[str, object]

    def to_json(self) -> dict[str, object]:
        """The annex as a JSON-ready dict (docs/annex-*.md); ``lines`` for ``us-cbp`` only."""
        data: dict[str, object] = {
            "format": self.format, "version": VERSION, "title": TITLES[self.format], "item": self.item,
            "nature": self.nature, "mass_mct": self.mass_mct, "verdict": self.verdict, "policy": list(self.policy),
            "countries_of_mining": [s.to_json() for s in self.mining],
            "country_of_origin": {"country": self.origin_country,
                                  **(self.origin.to_json() if self.origin else
                                     {"basis": "never cut: the country of mining"})},
            "kp_certificates": self._of("kp_certificate"), "g7_verifications": self._of("g7_verification"),
            "lab_reports": self._of("lab_report"), "inscriptions": self._of("inscription"),
            "rough_to_polished": self._of("link"), "checkpoint": dict(self.checkpoint),
        }
        if self.format == "us-cbp":
            data["lines"] = self.lines()
        return data

    def _of(self, field: str) -> list[dict[str, object]]:
        return [c.to_json() for c in self.claims if c.field == field]

    def lines(self) -> list[dict[str, object]]:
        """The US entry lines: one per country of mining, each with the item's country of origin."""
        reports = " ".join(c.value.split(" ")[1] for c in self.claims if c.field == "lab_report")
        return [{"line": n, "item": self.item, "country_of_mining": s.country, "mass_mct": s.mass_mct,
                 "carats": format_ct(s.mass_mct)[:-3], "percent": s.percent,
                 "country_of_origin": self.origin_country, "lab_reports": reports,
                 "attested_by": list(s.attested_by), "basis": s.basis}
                for n, s in enumerate(self.mining, 1)]

    def to_csv(self) -> str:
        """CSV (RFC 4180, a header row): ``us-cbp`` one row per entry line; ``eu-dds`` one row per fact."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        if self.format == "us-cbp":
            cols = ["line", "item", "country_of_mining", "carats", "percent", "country_of_origin", "lab_reports",
                    "attested_by", "basis"]
            writer.writerow([*cols, "checkpoint_root"])
            for line in self.lines():
                writer.writerow([_cell(line[c]) for c in cols] + [str(self.checkpoint["root_hash"])])
        else:
            writer.writerow(["field", "value", "item", "record", "record_hash", "basis"])
            for row in self.rows():
                writer.writerow(row)
        return out.getvalue()

    def rows(self) -> list[list[str]]:
        """One row per fact: (field, value, item, record, record hash, basis), as the CSV and the text print."""
        rows = [["verdict", self.verdict, self.item, "", "", "verified offline from the bundle"]]
        for s in self.mining:
            rows.append(["country_of_mining", f"{s.country} {format_ct(s.mass_mct)} ({s.percent}%)", self.item,
                         " ".join(str(p) for p, _ in s.records), " ".join(h for _, h in s.records), s.basis])
        if self.origin:
            rows.append(["country_of_origin", self.origin_country, self.origin.item, str(self.origin.record),
                         self.origin.record_hash, self.origin.basis])
        else:
            rows.append(["country_of_origin", self.origin_country, self.item, "", "", "never cut: country of mining"])
        rows += [[c.field, c.value, c.item, str(c.record), c.record_hash, c.basis] for c in self.claims]
        cp = self.checkpoint
        rows.append(["checkpoint", f"{cp['origin']} tree size {cp['tree_size']} root {cp['root_hash']}", self.item,
                     "", "", str(cp["witnessed"])])
        return rows


def _cell(value: object) -> str:
    return " ".join(value) if isinstance(value, list) else str(value)


def build_annex(dossier: Dossier, fmt: str) -> Annex:
    """The ``fmt`` annex (:data:`FORMATS`) of a verified bundle's dossier.

    Raises:
        ArgumentError: ``fmt`` is not one of :data:`FORMATS`, or ``dossier`` is no Dossier.
    """
    expect(dossier, Dossier, "dossier", "a Dossier (ledger.dossier.dossier_of)")
    if fmt not in FORMATS:
        raise ArgumentError(f"fmt: got {fmt!r}, want one of {', '.join(FORMATS)}")
    p, report = dossier.provenance, dossier.report
    steps = {j.step.position: j for j in dossier.journey}
    total = sum(p.origin.values())
    roots = {c: tuple((r.position, steps[r.position].record_hash) for r in p.roots if r.country == c)
             for c in p.origin}
    attested = p.attested_by()
    mining = tuple(Share(country=c, mass_mct=m, percent=percent(m, total), attested_by=attested.get(c, ()),
                         records=roots[c]) for c, m in p.origin.items())
    origin = _origin(dossier, steps)
    witnessed = report.witnessed.describe() if report.witnessed else "no witness policy"
    return Annex(format=fmt, item=p.item, nature=p.nature, mass_mct=p.mass_mct, verdict=report.verdict,
                 policy=tuple(p.policy.describe()) if p.policy else (), mining=mining, origin=origin,
                 origin_country=origin.value if origin else "/".join(p.origin), claims=_claims(dossier),
                 checkpoint={"origin": p.checkpoint_origin, "tree_size": p.tree_size,
                             "root_hash": p.root_hash.hex(), "witnessed": witnessed})


def _line(dossier: Dossier) -> set[str]:
    """The item and its ancestors (not the articles it was set in)."""
    line, todo = set(), [dossier.provenance.item]
    parents = {e.child: e.parents for e in dossier.edges if e.kind != "set"}
    while todo:
        item = todo.pop()
        if item not in line:
            line.add(item)
            todo.extend(parents.get(item, ()))
    return line


def _origin(dossier: Dossier, steps: Mapping[int, JourneyStep]) -> Claim | None:
    """The latest split in the item's line: where it was cut (None: never split)."""
    line = _line(dossier)
    cuts = [e for e in dossier.edges if e.kind == "split" and e.child in line]
    if not cuts:
        return None
    cut = cuts[-1]
    return Claim(field="country_of_origin", value=cut.place, item=cut.child, record=cut.position,
                 record_hash=steps[cut.position].record_hash, signed_by=_signed(steps[cut.position]))


def _signed(j: JourneyStep) -> tuple[str, ...]:
    return tuple(f"{s.party} ({s.role})" for s in j.signers)


def _claims(dossier: Dossier) -> tuple[Claim, ...]:
    claims = []
    line = _line(dossier)
    steps = {j.step.position: j for j in dossier.journey}
    for j in dossier.journey:
        record = dossier.records[j.step.position]
        value = _value(record.body.event, record.body.place)
        if value is not None:
            claims.append(Claim(field=value[0], value=value[1], item=j.step.item, record=j.step.position,
                                record_hash=j.record_hash, signed_by=_signed(j)))
    for e in dossier.edges:
        if e.child in line or e.kind == "set":
            words = (f"{e.kind} {', '.join(e.parents)} -> {e.child} "
                     f"{format_ct(dossier.masses.get(e.child, 0))} in {e.place}"
                     + (f", declared loss {format_ct(e.loss_mct)}" if e.loss_mct else ""))
            j = steps[e.position]
            claims.append(Claim(field="link", value=words, item=e.child, record=e.position,
                                record_hash=j.record_hash, signed_by=_signed(j)))
    return tuple(claims)


def _value(event: object, place: str) -> tuple[str, str] | None:
    if isinstance(event, Exported):
        return "kp_certificate", f"{event.kp_certificate} exported {place} -> {event.to_country}"
    if isinstance(event, Imported):
        return "kp_certificate", f"{event.kp_certificate} imported {event.from_country} -> {place}"
    if isinstance(event, Verified):
        return "g7_verification", f"origin {', '.join(event.countries)} verified by node {event.node} in {place}"
    if isinstance(event, Graded):
        return "lab_report", (f"report {event.report} by {event.lab}: {format_ct(event.mass_mct)} {event.colour} "
                              f"{event.clarity} {event.nature}")
    if isinstance(event, Inscribed):
        return "inscription", f"inscription {event.inscription} by {event.lab}"
    return None

