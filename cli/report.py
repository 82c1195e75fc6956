"""``stonetrail proof report`` and ``stonetrail proof annex``: a verified bundle as a page for people, and as the
evidence annex a customs filing needs.

Registered on the ``proof`` group by :mod:`stonetrail_cli.main`. One library call each after the bundle is
verified (:func:`ledger.bundle.check_bundle`): :func:`ledger.report.report_html` and
:func:`ledger.annex.build_annex`, both over :func:`ledger.dossier.dossier_of`. A bundle that is not valid gets
neither: its findings are printed as by ``proof verify`` and the command exits 1, writing nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ledger._files import check_new
from ledger.annex import FORMATS, build_annex
from ledger.bundle import BundleReport, check_bundle
from ledger.dossier import Dossier, dossier_of
from ledger.policy import Policy
from ledger.report import report_html

from ._common import (
    _EXISTING,
    WITNESS_POLICY,
    _about,
    _duration,
    _errors,
    _load_trust,
    _plural,
    _print_findings,
    _print_hint,
    _print_json,
    _verdict_exit,
    _write_new,
)
from ._policy import policy_options
from .proof import _read_bundle

__all__ = ["ANNEX_COMMAND", "REPORT_COMMAND"]

_MAX_AGE = click.option("--max-age", metavar="DURATION",
                        help="Refuse a checkpoint last witnessed longer ago than this (90s, 30m, 12h, 7d).")
_TRUST = click.option("--trust", "trust_file", required=True, type=_EXISTING,
                      help="Trust file: pinned operator and authority keys.")


def _verified(bundle_file: Path, trust_file: Path, witness_policy: Path | None, max_age: str | None,
              policy: Policy | None) -> Dossier:
    """The bundle verified and its dossier; an invalid bundle's findings printed, then exit 1."""
    trust = _load_trust(trust_file, witness_policy)
    age = _duration(max_age, "--max-age")
    data = _read_bundle(bundle_file)
    with _about(bundle_file):
        report = check_bundle(data, trust, policy, max_age=age)
    if not report.ok:
        _refuse(bundle_file, report)
    return dossier_of(report, data)


def _refuse(bundle_file: Path, report: BundleReport) -> None:
    click.echo(f"{bundle_file}: INVALID ({_plural(len(report.findings), 'finding')}); nothing written: a report or "
               "an annex is drawn only from a verified bundle", err=True)
    _print_hint(report.findings, "hint:       ", records_judged=False)
    _print_findings(report.findings)
    sys.exit(_verdict_exit("invalid"))


@click.command("report", short_help="Write a verified bundle's provenance report (one HTML page).")
@click.argument("bundle_file", metavar="FILE", type=_EXISTING)
@_TRUST
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the page (default: ./ITEM.html; never overwritten).")
@WITNESS_POLICY
@_MAX_AGE
@click.option("--json", "as_json", is_flag=True, help='Print {"file", "item", "bytes", "verdict"} as JSON.')
@_errors
@policy_options
def report(bundle_file: Path, trust_file: Path, out: Path | None, witness_policy: Path | None, max_age: str | None,
           as_json: bool, policy: Policy | None) -> None:
    """Verify FILE as 'proof verify' does, then write its provenance report: one self-contained HTML page (inline
    CSS and SVG, system fonts, no script and no network request) with the verdict first, the stone's identity,
    its journey, a drawing of its ancestry back to the mines, its origin composition with who attested each
    share, and what is proven apart from what is only attested. It prints on A4 and US Letter: a browser's
    "print to PDF" gives the paper annex. Every text from a record is shown as text.

    An invalid bundle gets no report (exit 1, its findings printed). With a policy the page says whether the
    stone complies; the exit code is the verdict's, as in 'proof verify' (1: not compliant, the page written).

    \b
    Examples:
      stonetrail proof report out/proofs/R-00001-A.stproof --trust out/trust.keys -o R-00001-A.html
      stonetrail proof report out/proofs/R-00002-A.stproof --trust out/trust.keys --deny-origin RU -o R-00002-A.html
    """
    dossier = _verified(bundle_file, trust_file, witness_policy, max_age, policy)
    out = out or Path.cwd() / f"{dossier.provenance.item}.html"
    check_new(out)
    html = report_html(dossier).encode("utf-8")
    _write_new((out, html))
    verdict = dossier.report.verdict
    if as_json:
        _print_json({"file": str(out), "item": dossier.provenance.item, "bytes": len(html), "verdict": verdict})
    else:
        click.echo(f"wrote {out} ({len(html)} bytes): {dossier.provenance.item}, {verdict.replace('_', ' ')}")
    sys.exit(_verdict_exit(verdict))


@click.command("annex", short_help="Print a verified bundle's customs evidence annex (EU DDS, US CBP).")
@click.argument("bundle_file", metavar="FILE", type=_EXISTING)
@_TRUST
@click.option("--format", "fmt", required=True, type=click.Choice(FORMATS),
              help="eu-dds: EU Due Diligence Statement on Diamond Origin; us-cbp: US entry lines by country of "
                   "mining (docs/annex-eu-dds.md, docs/annex-us-cbp.md).")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (us-cbp: a row per entry line; eu-dds: per fact).")
@WITNESS_POLICY
@_MAX_AGE
@click.option("--json", "as_json", is_flag=True, help="Print the annex as JSON.")
@_errors
@policy_options
def annex(bundle_file: Path, trust_file: Path, fmt: str, as_csv: bool, witness_policy: Path | None,
          max_age: str | None, as_json: bool, policy: Policy | None) -> None:
    """Verify FILE, then print the evidence a customs filing needs, from the verified provenance only: the
    countries of mining with their shares (carats and per cent) and the producers who attest them, the country
    of origin after cutting, the KP certificates and G7 verifications on the path with their record hashes, the
    lab reports, the rough-to-polished links, who signed each claim, and the checkpoint it is all proven under.
    Each claim is "attested by <party>, proven consistent by the ledger": the ledger proves who said what and
    that the records agree, never that a claim is physically true.

    An invalid bundle gets no annex (exit 1). The exit code is the verdict's, as in 'proof verify'.

    \b
    Examples:
      stonetrail proof annex out/proofs/R-00001-A.stproof --trust out/trust.keys --format eu-dds --deny-origin RU
      stonetrail proof annex out/proofs/R-00001-A.stproof --trust out/trust.keys --format us-cbp --csv
    """
    if as_csv and as_json:
        raise click.UsageError("--csv and --json exclude each other")
    dossier = _verified(bundle_file, trust_file, witness_policy, max_age, policy)
    found = build_annex(dossier, fmt)
    if as_json:
        _print_json(found.to_json())
    elif as_csv:
        click.echo(found.to_csv(), nl=False)
    else:
        _print_rows(found.rows())
    sys.exit(_verdict_exit(found.verdict))


def _print_rows(rows: list[list[str]]) -> None:
    """The annex for a terminal: each fact on a line (field, value, item, record), its basis and hash below."""
    width = max(len(r[0]) for r in rows)
    for field, value, item, record, digest, basis in rows:
        where = f" [{item}, record {record}]" if record else ""
        click.echo(f"{field:<{width}}  {value}{where}")
        click.echo(f"{'':<{width}}  {basis}" + (f"; hash {digest}" if digest else ""))


REPORT_COMMAND: click.Command = report
ANNEX_COMMAND: click.Command = annex
