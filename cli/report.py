"""``stonetrail proof report`` and ``stonetrail proof annex``: a verified bundle as a page for people, and as the
evidence annex a customs filing needs.

Registered on the ``proof`` group by :mod:`stonetrail_cli.main`. One library call each after the bundle is
verified (:func:`ledger.bundle.check_bundle`): :func:`ledger.report.report_html` and
:func:`ledger.annex.build_annex`, both over :func:`ledger.dossier.dossier_of`. A bundle that is not valid gets
neither: its findings are printed as by ``proof verify`` and the command exits 1, writing nothing.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import click

from ledger.annex import FORMATS, VERDICT_TEXT, build_annex
from ledger.bundle import BundleReport, check_bundle
from ledger.dossier import Dossier, dossier_of
from ledger.policy import Policy
from ledger.report import report_html

from ._common import (
    _EXISTING,
    MAX_AGE,
    WITNESS_POLICY,
    _about,
    _errors,
    _max_age,
    _plural,
    _print_findings,
    _print_hint,
    _print_json,
    _verdict_exit,
    _write_new,
    check_new_file,
)
from ._inputs import _load_trust
from ._output import JSON_PRINTED
from ._policy import policy_options
from .proof import _read_bundle

__all__ = ["ANNEX_COMMAND", "REPORT_COMMAND"]

_TRUST = click.option("--trust", "trust_file", required=True, type=_EXISTING,
                      help="Trust file: pinned operator and authority keys.")


def _verified(bundle_file: Path, trust_file: Path, witness_policy: Path | None, max_age: str | None,
              policy: Policy | None, *, as_json: bool = False) -> Dossier:
    """The bundle verified and its dossier; an invalid bundle refused (:func:`_refuse`), exit 1."""
    trust = _load_trust(trust_file, witness_policy)
    age = _max_age(max_age, trust)
    data = _read_bundle(bundle_file)
    with _about(bundle_file):
        report = check_bundle(data, trust, policy, max_age=age)
    if not report.ok:
        _refuse(bundle_file, report, as_json)
    return dossier_of(report, data)


def _refuse(bundle_file: Path, report: BundleReport, as_json: bool) -> NoReturn:
    """An invalid bundle: nothing written, exit 1. With --json, stdout is one JSON document, the verdict JSON of
    'proof verify --json' (verdict "invalid", its findings); otherwise the findings go to stderr, so stdout holds
    nothing a CSV reader could take for data."""
    if as_json:
        _print_json(report.to_json())
    click.echo(f"{bundle_file}: INVALID ({_plural(len(report.findings), 'finding')}); nothing written: a report or "
               "an annex is drawn only from a verified bundle", err=True)
    if not as_json:
        with _to_stderr():
            _print_hint(report.findings, "hint:       ", records_judged=False)
            _print_findings(report.findings)
    sys.exit(_verdict_exit("invalid"))


@contextmanager
def _to_stderr() -> Iterator[None]:
    """What is echoed inside goes to stderr."""
    saved = sys.stdout
    sys.stdout = sys.stderr
    try:
        yield
    finally:
        sys.stdout = saved


@click.command("report", short_help="Write a verified bundle's provenance report (one HTML page).")
@click.argument("bundle_file", metavar="FILE", type=_EXISTING)
@_TRUST
@click.option("-o", "--out", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              help="Where to write the page (default: ./ITEM.html; never overwritten; '-': stdout).")
@WITNESS_POLICY
@MAX_AGE
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
    if out is not None and str(out) == "-" and as_json:
        raise click.UsageError("-o - writes the page to stdout, and --json its summary: give one")
    dossier = _verified(bundle_file, trust_file, witness_policy, max_age, policy, as_json=as_json)
    verdict = dossier.report.verdict
    if out is not None and str(out) == "-":
        click.echo(report_html(dossier), nl=False)
        sys.exit(_verdict_exit(verdict))
    out = out or Path.cwd() / f"{dossier.provenance.item}.html"
    check_new_file(out)
    html = report_html(dossier).encode("utf-8")
    _write_new((out, html))
    if as_json:
        _print_json({"file": str(out), "item": dossier.provenance.item, "bytes": len(html), "verdict": verdict})
    else:
        click.echo(f"wrote {out} ({len(html)} bytes): {dossier.provenance.item}, {VERDICT_TEXT[verdict]}")
    sys.exit(_verdict_exit(verdict))


@click.command("annex", short_help="Print a verified bundle's customs evidence annex (EU DDS, US CBP).")
@click.argument("bundle_file", metavar="FILE", type=_EXISTING)
@_TRUST
@click.option("--format", "fmt", required=True, type=click.Choice(FORMATS),
              help="eu-dds: EU Due Diligence Statement on Diamond Origin; us-cbp: US entry lines by country of "
                   "mining (docs/annex-eu-dds.md, docs/annex-us-cbp.md).")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (us-cbp: a row per entry line; eu-dds: per fact).")
@click.option("-o", "--out", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              help="Write the annex to this new file (never overwritten) instead of stdout ('-': stdout).")
@WITNESS_POLICY
@MAX_AGE
@click.option("--json", "as_json", is_flag=True, help="Print the annex as JSON.")
@_errors
@policy_options
def annex(bundle_file: Path, trust_file: Path, fmt: str, as_csv: bool, out: Path | None,
          witness_policy: Path | None, max_age: str | None, as_json: bool, policy: Policy | None) -> None:
    """Verify FILE, then print the evidence a customs filing needs, from the verified provenance only: the
    countries of mining with their shares (carats and per cent) and the producers who attest them, the country
    of origin after cutting, the KP certificates and G7 verifications on the path with their record hashes, the
    lab reports, the rough-to-polished links, who signed each claim, and the checkpoint it is all proven under.
    Each claim is "attested by <party>, proven consistent by the ledger": the ledger proves who said what and
    that the records agree, never that a claim is physically true.

    Every form says the verdict as 'proof verify' does ("valid, NOT COMPLIANT"), the policy's rules and each
    policy finding (code, record, reason); with --csv a stone that is not compliant also gets a warning on
    stderr. A laboratory-grown stone has a country of growth, never a country of mining; an article's country
    of origin is where its set stones were cut.

    An invalid bundle gets no annex (exit 1; with --json the verdict JSON of 'proof verify --json', with --csv
    its findings on stderr only). The exit code is the verdict's, as in 'proof verify'.

    \b
    Examples:
      stonetrail proof annex out/proofs/R-00001-A.stproof --trust out/trust.keys --format eu-dds --deny-origin RU
      stonetrail proof annex out/proofs/R-00001-A.stproof --trust out/trust.keys --format us-cbp --csv
    """
    if as_csv and as_json:
        raise click.UsageError("--csv and --json exclude each other")
    to_file = out is not None and str(out) != "-"
    if to_file and out is not None:
        check_new_file(out)
    dossier = _verified(bundle_file, trust_file, witness_policy, max_age, policy, as_json=as_json and not to_file)
    found = build_annex(dossier, fmt)
    text = (json.dumps(found.to_json(), indent=2) + "\n" if as_json else found.to_csv() if as_csv
            else found.to_text())
    if not found.compliant and (as_csv or to_file):
        where = "policy_findings column" if fmt == "us-cbp" and as_csv else "policy_finding lines"
        click.echo(f"stonetrail: warning: {found.item}: {found.verdict_line}; policy: {'; '.join(found.policy)}; "
                   f"each finding is in the annex's {where}", err=True)
    if to_file and out is not None:
        _write_new((out, text.encode("utf-8")))
        click.echo(f"wrote {out}: {found.item}, {found.verdict_line}", err=True)
    else:
        click.echo(text, nl=False)
        JSON_PRINTED.set(as_json)
    sys.exit(_verdict_exit(found.verdict))


REPORT_COMMAND: click.Command = report
ANNEX_COMMAND: click.Command = annex
