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
  producers whose ``mined`` records attest it. A laboratory-grown stone has a **country of growth** instead
  (its ``grown`` record, attested by the grower), never a country of mining; ``XX`` (a stone registered with no
  recorded history) is "unknown (XX)", attested by nobody.
* **Country of origin** (US: where a stone was cut and polished): for each line from a root to the item, the
  place of its first *cut* (a ``split`` that declares a loss: sorting loses none, and re-sorting or re-cutting
  polished goods later moves nothing), as signed by its cutter (:mod:`ledger.cutting`); per US entry line, the
  origins of the goods mined in that line's country; for an article, the lines of each stone set in it; goods
  never cut keep their country of mining (of growth).
* **Verdict**: the words ``proof verify`` prints ("valid, NOT COMPLIANT (3 policy findings)"), the policy's
  rules and each policy finding (code, record, item, reason), in every form of the annex.
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from ._describe import format_ct
from ._words import country_words, csv_cell, nature_words, percents, safe_cell
from .cutting import Line, line_key, lines_of
from .dossier import Dossier, JourneyStep
from .errors import ArgumentError, expect
from .events import Attested, Corrected, Exported, Graded, Imported, Inscribed, Verified
from .findings import Finding

__all__ = ["FORMATS", "PROVEN", "VERDICT_TEXT", "Annex", "Claim", "Share", "build_annex"]

#: The annex formats: EU Due Diligence Statement on Diamond Origin, US CBP entry lines by country of mining.
FORMATS: Final = ("eu-dds", "us-cbp")
TITLES: Final = {"eu-dds": "EU Due Diligence Statement on Diamond Origin: evidence annex",
                 "us-cbp": "US CBP entry: country of mining and country of origin, evidence annex"}
#: What the ledger adds to a party's claim.
PROVEN: Final = "proven consistent by the ledger"
VERSION: Final = 1
#: The verdict's words, as ``proof verify`` prints them.
VERDICT_TEXT: Final = {"valid": "valid", "valid_compliant": "valid, compliant",
                       "valid_not_compliant": "valid, NOT COMPLIANT", "invalid": "INVALID"}
#: What a policy finding rests on (as ``proof verify`` says it).
JUDGED: Final = "judged over the records; origins are attested by the producers named"


def nature_basis(d: Dossier) -> str:
    """Where the item's nature comes from: its roots (mined, grown, or registered with no recorded history)."""
    roots = d.provenance.roots
    by = ", ".join(sorted({r.producer for r in roots})) or "nobody"
    where = ", ".join(sorted({country_words(r.country) for r in roots}))
    records = ", ".join(str(r.position) for r in roots)
    kinds = {r.kind for r in roots}
    if kinds == {"registered"}:
        return f"attested at registration by {by} (record {records}): no mined or grown record"
    if kinds == {"grown"}:
        return f"fixed when it was grown in {where}, attested by {by} (the grower; record {records})"
    return f"fixed when it was mined in {where}, attested by {by} (record {records})"


@dataclass(frozen=True, slots=True, kw_only=True)
class Share:
    """One country of mining (of growth, for a laboratory-grown stone): ``mass_mct`` of the item attributed to
    it, ``percent`` of the item's origin, the producers who attest it and the position, hash and item of each of
    their root records. ``root``: the kind of those roots (``mined``, ``grown``, or ``registered``: no recorded
    history, origin unknown, ``XX``)."""

    country: str
    mass_mct: int
    percent: str
    attested_by: tuple[str, ...]
    records: tuple[tuple[int, str, str], ...]
    root: str = "mined"
    origin: str = ""  # the country of origin of the goods from this country: their first cuts' places (ledger.cutting)

    @property
    def basis(self) -> str:
        who = ", ".join(self.attested_by) or "nobody"
        if self.root == "registered":
            return f"registered by {who} with no recorded history: origin unknown, attested by nobody"
        if self.root == "grown":
            return f"grown there, attested by {who} (the grower), {PROVEN}"
        return f"attested by {who}, {PROVEN}"

    def to_json(self) -> dict[str, object]:
        return {"country": self.country, "mass_mct": self.mass_mct, "carats": format_ct(self.mass_mct)[:-3],
                "percent": self.percent, "attested_by": list(self.attested_by), "root": self.root,
                "country_of_origin": self.origin,
                "records": [{"record": p, "record_hash": h, "item": i} for p, h, i in self.records],
                "basis": self.basis}


@dataclass(frozen=True, slots=True, kw_only=True)
class Claim:
    """One signed claim on the item's path: ``field`` (``country_of_origin``, ``kp_certificate``,
    ``g7_verification``, ``lab_report``, ``inscription``, ``link``), its ``value`` in words, the ``item`` it is
    about, the record's position and hash, and who signed it as what (``party (role)``). ``attesters``: the
    signers whose word the claim is, where not every signer's (a G7 verification is the node's word, not the
    holder's)."""

    field: str
    value: str
    item: str
    record: int
    record_hash: str
    signed_by: tuple[str, ...]
    attesters: tuple[str, ...] = ()

    @property
    def basis(self) -> str:
        who = self.attesters or tuple(s.split(" ")[0] for s in self.signed_by)
        return f"attested by {', '.join(who)}, {PROVEN}"

    def to_json(self) -> dict[str, object]:
        return {"field": self.field, "value": self.value, "item": self.item, "record": self.record,
                "record_hash": self.record_hash, "signed_by": list(self.signed_by), "basis": self.basis}


@dataclass(frozen=True, slots=True, kw_only=True)
class Annex:
    """An annex (module docstring) in ``format``: the item, the verdict with the policy and its findings, the
    countries of mining (of growth, for a laboratory-grown stone), the country of origin (``origins``: the cut
    of each stone, an article's set stones each) and every claim it rests on, under the checkpoint that proves
    them (``root_hash`` in base64, as the checkpoint prints it)."""

    format: str
    item: str
    type: str
    nature: str
    mass_mct: int
    nature_basis: str
    verdict: str
    policy: tuple[str, ...]
    policy_findings: tuple[Finding, ...]
    mining: tuple[Share, ...]
    origins: tuple[Claim, ...]
    origin_country: str
    claims: tuple[Claim, ...]
    checkpoint: Mapping[str, object]
    warning: str | None = None  # why the item is out of the trade (stolen, seized, consumed), if it is

    @property
    def grown(self) -> bool:
        return self.nature == "lab_grown"

    @property
    def mining_field(self) -> str:
        """``country_of_growth`` for a laboratory-grown stone, else ``country_of_mining``."""
        return "country_of_growth" if self.grown else "country_of_mining"

    @property
    def title(self) -> str:
        """The annex's title (a laboratory-grown stone's US annex names its country of growth)."""
        title: str = TITLES[self.format]
        return title.replace("country of mining", "country of growth") if self.grown else title

    @property
    def verdict_line(self) -> str:
        """The verdict as ``proof verify``'s last line says it: "valid, NOT COMPLIANT (3 policy findings)"."""
        n = len(self.policy_findings)
        more = f" ({n} policy finding{'s' if n != 1 else ''})" if self.verdict == "valid_not_compliant" else ""
        return VERDICT_TEXT[self.verdict] + more

    @property
    def compliant(self) -> bool:
        return self.verdict != "valid_not_compliant"

    def heading(self) -> str:
        """The item in one line: "PARCEL-DXB-01-S1 (stone, natural, 1.250 ct)"."""
        return f"{self.item} ({self.type}, {nature_words(self.nature)}, {format_ct(self.mass_mct)})"

    def to_json(self) -> dict[str, object]:
        """The annex as a JSON-ready dict (docs/annex-*.md); ``lines`` for ``us-cbp`` only."""
        never = f"never cut: the country of {'growth' if self.grown else 'mining'}"
        origin: dict[str, object] = ({**self.origins[0].to_json(), "cuts": [c.to_json() for c in self.origins]}
                                     if self.origins else {"basis": never, "cuts": []})
        data: dict[str, object] = {
            "format": self.format, "version": VERSION, "title": self.title, "item": self.item,
            "type": self.type, "nature": self.nature, "nature_basis": self.nature_basis, "mass_mct": self.mass_mct,
            "verdict": self.verdict,
            "verdict_text": self.verdict_line, "compliant": self.compliant, "warning": self.warning,
            "policy": list(self.policy),
            "policy_findings": [{"code": f.code, "record": f.position, "item": f.item, "reason": f.reason}
                                for f in self.policy_findings],
            ("countries_of_growth" if self.grown else "countries_of_mining"): [s.to_json() for s in self.mining],
            "country_of_origin": {**origin, "country": self.origin_country},
            "kp_certificates": self._of("kp_certificate"), "g7_verifications": self._of("g7_verification"),
            "lab_reports": self._of("lab_report"), "inscriptions": self._of("inscription"),
            "rough_to_polished": self._of("link"),
            "statements": self._of("statement") + self._of("correction"), "checkpoint": dict(self.checkpoint),
        }
        if self.format == "us-cbp":
            data["lines"] = self.lines()
        return data

    def _of(self, field: str) -> list[dict[str, object]]:
        return [c.to_json() for c in self.claims if c.field == field]

    def lines(self) -> list[dict[str, object]]:
        """The US entry lines: one per country of mining (of growth), each with the item's country of origin."""
        reports = " ".join(c.value.split(" ")[1] for c in self.claims if c.field == "lab_report")
        return [{"line": n, "item": self.item, "nature": nature_words(self.nature), self.mining_field: s.country,
                 "mass_mct": s.mass_mct,
                 "carats": format_ct(s.mass_mct)[:-3], "percent": s.percent,
                 "country_of_origin": s.origin or self.origin_country, "lab_reports": reports,
                 "attested_by": list(s.attested_by), "basis": s.basis}
                for n, s in enumerate(self.mining, 1)]

    def _findingscsv_cell(self) -> str:
        return "; ".join(f"record {f.position} [{f.item}] {f.code}: {f.reason}" if f.item else
                         f"record {f.position} {f.code}: {f.reason}" for f in self.policy_findings)

    def to_csv(self) -> str:
        """CSV (RFC 4180, a header row): ``us-cbp`` one row per entry line, each with the verdict, the policy and
        its findings; ``eu-dds`` one row per fact, the verdict, policy and findings first."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\r\n")
        if self.format == "us-cbp":
            cols = ["line", "item", "nature", self.mining_field, "carats", "percent", "country_of_origin",
                    "lab_reports", "attested_by", "basis"]
            writer.writerow([*cols, "checkpoint_root", "verdict", "policy", "policy_findings"])
            for line in self.lines():
                writer.writerow([csv_cell(line[c]) for c in cols] + [safe_cell(str(self.checkpoint["root_hash"])),
                                                                  self.verdict_line, safe_cell("; ".join(self.policy)),
                                                                  safe_cell(self._findingscsv_cell())])
        else:
            writer.writerow(["field", "value", "item", "record", "record_hash", "basis"])
            for row in self.rows():
                writer.writerow([safe_cell(cell) for cell in row])
        return out.getvalue()

    def rows(self) -> list[list[str]]:
        """One row per fact: (field, value, item, record, record hash, basis), as the CSV and the text print. Where
        a fact rests on several records (a country mined at two mines), ``item`` and ``record`` list each, in the
        same order, space-separated."""
        rows = [["verdict", self.verdict_line, self.item, "", "", "verified offline from the bundle"]]
        if self.warning:
            rows.append(["warning", self.warning, self.item, "", "", "the item's state at the checkpoint, proven"])
        rows += [["policy", rule, self.item, "", "", JUDGED] for rule in self.policy]
        rows += [["policy_finding", f"{f.code}: {f.reason}", f.item or "",
                  "" if f.position is None else str(f.position), "", JUDGED] for f in self.policy_findings]
        rows.append(["nature", nature_words(self.nature), self.item, "", "", self.nature_basis])
        for s in self.mining:
            rows.append([self.mining_field, f"{country_words(s.country)} {format_ct(s.mass_mct)} ({s.percent}%)",
                         " ".join(i for _, _, i in s.records), " ".join(str(p) for p, _, _ in s.records),
                         " ".join(h for _, h, _ in s.records), s.basis])
        for o in self.origins:
            rows.append(["country_of_origin", o.value, o.item, str(o.record), o.record_hash, o.basis])
        if not self.origins:
            rows.append(["country_of_origin", "/".join(country_words(c) for c in self.origin_country.split("/")),
                         self.item, "", "",
                         f"never cut: country of {'growth' if self.grown else 'mining'}"])
        rows += [[c.field, c.value, c.item, str(c.record), c.record_hash, c.basis] for c in self.claims]
        cp = self.checkpoint
        rows.append(["checkpoint", f"{cp['origin']} tree size {cp['tree_size']} root {cp['root_hash']}", self.item,
                     "", "", str(cp["witnessed"])])
        return rows

    def to_text(self) -> str:
        """The annex for people: its title and the item, the entry lines (``us-cbp``), then each fact on a line
        (field, value, [item, record]) with its basis and record hash below."""
        out = [self.title, f"item: {self.heading()}", ""]
        if self.format == "us-cbp":
            what = "growth" if self.grown else "mining"
            out.append(f"entry lines (one per country of {what}):")
            for ln, s in zip(self.lines(), self.mining, strict=True):
                out.append(f"  line {ln['line']}: {self.item}, country of {what} {country_words(s.country)}, "
                           f"{format_ct(s.mass_mct)} ({s.percent}%), country of origin "
                           f"{' and '.join(country_words(c) for c in str(ln['country_of_origin']).split(' '))}"
                           + (f", lab reports {ln['lab_reports']}" if ln["lab_reports"] else ""))
                out.append(f"          {s.basis}")
            out += ["", "evidence:"]
        rows = self.rows()
        width = max(len(r[0]) for r in rows)
        for field, value, item, record, digest, basis in rows:
            where = ""
            if record:
                items, records = item.split(" "), record.split(" ")
                where = " [" + "; ".join(f"{i}, record {r}" for i, r in zip(items, records, strict=False)) + "]"
            out.append(f"{field:<{width}}  {value}{where}")
            out.append(f"{'':<{width}}  {basis}" + (f"; hash {digest}" if digest else ""))
        return "\n".join(out) + "\n"


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
    attested = p.attested_by()
    lines = _lines(dossier)
    mining = []
    shares = dict(zip(p.origin, percents(list(p.origin.values())), strict=True))
    for c, m in p.origin.items():
        roots = [r for r in p.roots if r.country == c]
        kinds = {r.kind for r in roots}
        root = "registered" if kinds == {"registered"} else "grown" if "grown" in kinds else "mined"
        mining.append(Share(country=c, mass_mct=m, percent=shares[c], attested_by=attested.get(c, ()),
                            records=tuple((r.position, steps[r.position].record_hash, r.item) for r in roots),
                            root=root, origin=" ".join(sorted({line.origin for line in lines if line.mining == c}))))
    origins = _origins(lines, steps)
    places = sorted({o.value for o in origins})
    witnessed = report.witnessed.describe() if report.witnessed else "no witness policy"
    return Annex(format=fmt, item=p.item, type=p.type, nature=p.nature, mass_mct=p.mass_mct,
                 nature_basis=nature_basis(dossier),
                 verdict=report.verdict, policy=tuple(p.policy.describe()) if p.policy else (),
                 policy_findings=tuple(report.policy_findings), mining=tuple(mining), origins=origins,
                 origin_country="/".join(sorted({line.origin for line in lines}) or places or p.origin),
                 claims=_claims(dossier), warning=p.warning(),
                 checkpoint={"origin": p.checkpoint_origin, "tree_size": p.tree_size,
                             "root_hash": base64.b64encode(p.root_hash).decode("ascii"), "witnessed": witnessed})


def _line(dossier: Dossier, item: str) -> set[str]:
    """``item`` and its ancestors: for an article, the stones set in it and theirs."""
    line, todo = set(), [item]
    parents: dict[str, list[str]] = {}
    for e in dossier.edges:
        parents.setdefault(e.child, []).extend(e.parents)
    while todo:
        one = todo.pop()
        if one not in line:
            line.add(one)
            todo.extend(parents.get(one, ()))
    return line


def _lines(dossier: Dossier) -> tuple[Line, ...]:
    """The lines of the item (:func:`ledger.cutting.lines_of`: each root's country and the first cut after it);
    for an article, those of each stone set in it."""
    item = dossier.provenance.item
    sets = [e for e in dossier.edges if e.kind == "set" and e.child == item]
    stones = [s for e in sets for s in e.parents] if sets else [item]
    edges = [(e.position, e.kind, e.place, e.parents, e.child, e.loss_mct) for e in dossier.edges]
    roots = {r.item: r.country for r in dossier.provenance.roots}
    found = {line for stone in stones for line in lines_of(stone, edges, roots)}
    return tuple(sorted(found, key=line_key))


def _origins(lines: tuple[Line, ...], steps: Mapping[int, JourneyStep]) -> tuple[Claim, ...]:
    """Where the item was cut: the first cut (a split declaring a loss) of each of its lines, each once, oldest
    first (:mod:`ledger.cutting`). Empty: never cut."""
    cuts = {line.cut.position: line.cut for line in lines if line.cut is not None}
    return tuple(Claim(field="country_of_origin", value=cut.place, item=cut.child, record=cut.position,
                       record_hash=steps[cut.position].record_hash, signed_by=_signed(steps[cut.position]))
                 for _, cut in sorted(cuts.items()))


def _signed(j: JourneyStep) -> tuple[str, ...]:
    return tuple(f"{s.party} ({s.role})" for s in j.signers)


def _claims(dossier: Dossier) -> tuple[Claim, ...]:
    claims = []
    line = _line(dossier, dossier.provenance.item)
    steps = {j.step.position: j for j in dossier.journey}
    for j in dossier.journey:
        record = dossier.records[j.step.position]
        value = _value(record.body.event, record.body.place)
        if value is not None:
            node = tuple(s.party for s in j.signers if s.role == "node") if value[0] == "g7_verification" else ()
            claims.append(Claim(field=value[0], value=value[1], item=j.step.item, record=j.step.position,
                                record_hash=j.record_hash, signed_by=_signed(j), attesters=node))
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
        return "g7_verification", (f"G7 origin verification record by {event.node} in {place}: origin "
                                   f"{', '.join(country_words(c) for c in event.countries)} (attested)")
    if isinstance(event, Graded):
        return "lab_report", (f"report {event.report} by {event.lab}: {format_ct(event.mass_mct)} {event.colour} "
                              f"{event.clarity} {event.nature}")
    if isinstance(event, Inscribed):
        return "inscription", f"inscription {event.inscription} by {event.lab}"
    if isinstance(event, Attested):  # an auditor's word on a record of the path: beside the claims it is about
        return "statement", f"statement about record {event.subject.hex()[:16]}…: {event.statement}"
    if isinstance(event, Corrected):
        return "correction", f"correction of record {event.subject.hex()[:16]}… by its signer: {event.statement}"
    return None

