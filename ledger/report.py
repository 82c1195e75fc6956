"""The provenance report: one self-contained HTML page for people, drawn from a verified bundle.

The page (``templates/report.html.j2``) holds the verdict first (valid, compliant or not, as of which checkpoint
and, with a witness policy, when it was witnessed), the stone's identity, its journey (what, who, where, when,
who signed in which role), a drawing of its ancestry (the split and merge graph back to the mines, with masses),
its origin composition as a chart with who attested each share, and what is proven apart from what is only
attested. No script, no external resource: inline CSS and SVG, system fonts, and a Content-Security-Policy that
allows nothing else, so the page makes no network request; it prints on A4 and US Letter.

Every string from a record is untrusted (party names, mines, reasons, statements, descriptions): the page is
rendered by Jinja2 with autoescaping on for every template, so ``<script>`` or an ``onerror=`` attribute in a
record shows as text (docs/format.md §4.2 already refuses control and bidirectional characters in records).
Jinja2 is imported here only (tests/test_layering.py).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Final

import jinja2

from ._describe import format_ct
from ._words import country_words, nature_words, percents
from .annex import VERDICT_TEXT, nature_basis
from .bundle import check_bundle
from .dossier import Dossier, dossier_of
from .errors import RuleError
from .findings import group_unchecked
from .policy import Policy
from .trust import Trust

__all__ = ["Box", "Line", "render_report", "report_html"]

#: Country colours of the origin chart (by rank of the share; the legend names each country too).
PALETTE: Final = ("#1f6f8b", "#e07a1f", "#5b8c2a", "#8e44ad", "#c0392b", "#7f8c8d", "#16a085", "#d4ac0d")
_W, _H, _GAP_X, _GAP_Y, _PAD = 184, 46, 22, 56, 12


@dataclass(frozen=True, slots=True, kw_only=True)
class Box:
    """A node of the ancestry drawing: top-left ``x``, ``y`` (px), two lines of text, and its CSS class."""

    x: int
    y: int
    title: str
    note: str
    css: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Line:
    """An arrow of the ancestry drawing from (x1, y1) to (x2, y2), with a label at its end."""

    x1: int
    y1: int
    x2: int
    y2: int
    label: str


def render_report(data: bytes, trust: Trust, policy: Policy | None = None, *, origin: str | None = None,
                  max_age: int | None = None, now: int | None = None) -> str:
    """Verify the bundle ``data`` (:func:`ledger.bundle.check_bundle`, same arguments) and return its report page.

    Raises:
        RuleError: the bundle is not valid (``report.invalid``; its first finding): no report is drawn from it.
        and as :func:`ledger.bundle.check_bundle`.
    """
    report = check_bundle(data, trust, policy, origin=origin, max_age=max_age, now=now)
    if not report.ok:
        first = report.findings[0]
        raise RuleError(f"the bundle is not valid, so no report is drawn from it: {first}", code="report.invalid",
                        finding=first)
    return report_html(dossier_of(report, data))


def report_html(dossier: Dossier) -> str:
    """The report page (module docstring) of a verified bundle's dossier, as HTML text."""
    p, r = dossier.provenance, dossier.report
    boxes, lines, width, height = ancestry(dossier)
    return _template().render(
        p=p, r=r, d=dossier, verdict=VERDICT_TEXT[r.verdict], verdict_class=r.verdict,
        latest=_utc(max(s.time_ms for s in p.path)), utc=_utc, ct=format_ct, shares=_shares(dossier),
        boxes=boxes, lines=lines, width=width, height=height, box_w=_W, box_h=_H,
        witnessed=r.witnessed.describe() if r.witnessed is not None else None, warning=p.warning(),
        reports=[g.report for g in p.gradings if g.item == p.item],
        inscriptions=[i.inscription for i in p.inscriptions if i.item == p.item],
        nature=nature_words(p.nature), nature_basis=nature_basis(dossier),
        root_b64=base64.b64encode(p.root_hash).decode("ascii"), unchecked=group_unchecked(r.unchecked),
        mining="growth" if p.nature == "lab_grown" else "mining")


@cache
def _template() -> jinja2.Template:
    env = jinja2.Environment(loader=jinja2.PackageLoader("ledger", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    return env.get_template("report.html.j2")


def _utc(time_ms: int) -> str:
    return (datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=time_ms)).strftime("%Y-%m-%d %H:%M UTC")


def _shares(d: Dossier) -> list[dict[str, object]]:
    """The origin chart's segments: country, mass, per cent, who attested it, x offset and width (of 1000)."""
    p = d.provenance
    total, by, x, out = sum(p.origin.values()), p.attested_by(), 0, []
    shares = dict(zip(p.origin, percents(list(p.origin.values())), strict=True))  # summing to 100.0, as the annex
    for n, (country, mass) in enumerate(sorted(p.origin.items(), key=lambda kv: (-kv[1], kv[0]))):
        width = mass * 1000 // total if total else 0
        who = ", ".join(by.get(country, ())) or "nobody"
        if country == "XX":
            who = f"nobody: registered by {who} with no recorded history, origin unknown"
        else:
            who += ", proven consistent by the ledger"
        out.append({"country": country_words(country), "code": country, "mass": format_ct(mass),
                    "percent": shares[country], "by": who, "x": x, "w": width,
                    "colour": PALETTE[n % len(PALETTE)]})
        x += width
    return out


def ancestry(d: Dossier) -> tuple[list[Box], list[Line], int, int]:
    """Lay out the split and merge graph: roots on top, one row per generation, the item's own line in each row
    first; each record's outputs (or an article's stones) outside the scope as one summary box beside it."""
    parents: dict[str, tuple[str, ...]] = {e.child: e.parents for e in d.edges}
    depth: dict[str, int] = {}

    def level(item: str) -> int:
        if item not in depth:
            depth[item] = 1 + max((level(q) for q in parents.get(item, ())), default=-1)
        return depth[item]

    rows: dict[int, list[tuple[str, str, str, str]]] = {}
    roots = {r.item: r for r in d.provenance.roots}
    for item in d.masses:
        root = roots.get(item)
        what = f"{root.kind} at {root.site}, {root.country}" if root and root.site else (
            "registered: origin unknown" if root else d.types[item])
        css = "target" if item == d.provenance.item else "root" if root else "item"
        rows.setdefault(level(item), []).append((item, item, f"{format_ct(d.masses[item])} · {what}", css))
    for e in d.edges:
        if e.others:
            mass = sum(m for _, m in e.others)
            what = "stone" if e.kind == "set" else "output"
            title = f"+ {len(e.others)} other {what}{'s' if len(e.others) > 1 else ''}"
            at = level(e.child) - (e.kind == "set")  # an article's other stones beside ours, a split's outputs
            rows[at].append((f"others@{e.position}", title, (f"{format_ct(mass)} · " if mass else "")
                              + _some([i for i, _ in e.others]), "others"))
    place: dict[str, tuple[int, int]] = {}
    boxes = []
    for y, row in sorted(rows.items()):
        for x, (key, title, note, css) in enumerate(row):
            bx, by = _PAD + x * (_W + _GAP_X), _PAD + y * (_H + _GAP_Y)
            place[key] = (bx, by)
            boxes.append(Box(x=bx, y=by, title=title, note=note, css=css))
    lines = []
    for e in d.edges:
        (cx, cy) = place[e.child]
        for n, parent in enumerate(e.parents):
            (px, py) = place[parent]
            lines.append(Line(x1=px + _W // 2, y1=py + _H, x2=cx + _W // 2, y2=cy,
                              label="" if n else f"{e.kind} in {e.place}, record {e.position}"))
        if e.others:
            (ox, oy) = place[f"others@{e.position}"]
            (px, py), (qx, qy) = ((ox, oy), (cx, cy)) if e.kind == "set" else (place[e.parents[0]], (ox, oy))
            lines.append(Line(x1=px + _W // 2, y1=py + _H, x2=qx + _W // 2, y2=qy, label=""))
    width = 2 * _PAD + max(len(r) for r in rows.values()) * (_W + _GAP_X) - _GAP_X
    height = 2 * _PAD + len(rows) * (_H + _GAP_Y) - _GAP_Y
    return boxes, lines, width, height


def _some(ids: list[str], most: int = 3) -> str:
    return ", ".join(ids[:most]) + (f" and {len(ids) - most} more" if len(ids) > most else "")
