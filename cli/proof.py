"""``stonetrail proof``: export one item's proof bundle from a ledger, verify a bundle offline, show one.

A thin layer like :mod:`stonetrail_cli.main` (sharing its error handling, trust loading and policy flags):
one library call per command — :func:`ledger.export.export_bundle`, :func:`ledger.bundle.check_bundle`,
:func:`ledger.bundle.summarize_bundle` / :func:`ledger.bundle_to_json_text` — and the rendering of its result.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ledger import bundle_to_json_text, format_ct
from ledger.bundle import (
    MAX_BUNDLE_SIZE,
    BundleFormatError,
    BundleReport,
    check_bundle,
    summarize_bundle,
)
from ledger.errors import InputError
from ledger.findings import Finding, group_unchecked
from ledger.policy import Policy
from ledger.provenance import MassPoint, Provenance, Snapshot

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
    _print_verdict,
    _utc,
    _verdict_exit,
)
from ._inputs import _load_trust, _read_bytes
from ._lazy import LazyGroup
from ._path import print_now, print_path
from ._policy import _print_policy, policy_options

__all__ = ["proof"]

@click.group(cls=LazyGroup, lazy={"annex": ".report:ANNEX_COMMAND", "export": ".proof_export:EXPORT_COMMAND",
                                  "fetch": ".published:FETCH_COMMAND", "report": ".report:REPORT_COMMAND"},
             short_help="Export, verify and show offline proof bundles.")
def proof() -> None:
    """Proof bundles: one item's provenance, verifiable offline with nothing but the bundle and a trust file.

    A bundle holds the operator's signed checkpoint, every record of the item and of its ancestors back to the
    mine (with RFC 9162 inclusion proofs), the whole registry up to the checkpoint, and the proof that the
    item's last record in it is its latest under the checkpoint (so no later sale or theft report is left out).

    \b
    Examples:
      stonetrail proof export out/demo.ledger R-00001-A          # writes ./R-00001-A.stproof
      stonetrail proof verify R-00001-A.stproof --trust out/trust.keys --deny-origin RU
    """


@proof.command("verify", short_help="Verify a bundle offline and print the provenance.")
@click.argument("bundle_file", metavar="FILE", type=_EXISTING)
@click.option("--trust", "trust_file", required=True, type=_EXISTING,
              help="Trust file: pinned operator and authority keys.")
@click.option("--origin", help="Require the bundle to be of this ledger (its checkpoint's origin line).")
@WITNESS_POLICY
@MAX_AGE
@click.option("--json", "as_json", is_flag=True, help="Print the full report and provenance as JSON.")
@_errors
@policy_options
def verify(bundle_file: Path, trust_file: Path, origin: str | None, witness_policy: Path | None, max_age: str | None,
           as_json: bool, policy: Policy | None) -> None:
    """Verify FILE with nothing but --trust: checkpoint signature, inclusion proofs, registry, signatures,
    custody rules, completeness back to the mine, and that no later record of the item was left out (the
    checkpoint's item heads); then print the provenance, current at the checkpoint's tree size: origin with the
    producers who attested it, custody path, mass history, gradings, and which claims are attested rather than
    proven.
    With a witness policy (witness, group and quorum lines in the trust file, or --witness-policy), the checkpoint
    must carry cosignatures of enough witnesses (C2SP tlog-cosignature), and the report says when it was
    witnessed ("witnessed 2026-12-01 14:03 UTC by 2 of 3 witnesses"); --max-age refuses an older one.
    Optionally apply a trade policy (the same flags as 'stonetrail verify'): it is judged over the proven
    records and reported apart, never listed as proven. The last line is the one verdict, as in 'stonetrail
    verify': "valid", "valid, compliant", "valid, NOT COMPLIANT" or "INVALID" (--json: "verdict"). Exit 0 if
    valid (and compliant), 1 if not.

    \b
    Examples:
      stonetrail proof verify out/proofs/R-00001-A.stproof --trust out/trust.keys
      stonetrail proof verify out/proofs/R-00001-A.stproof --trust out/trust.keys --deny-origin RU --json
      stonetrail proof verify out/proofs/R-00001-A.stproof --trust out/trust.keys --witness-policy witnesses.txt \\
          --max-age 1d
    """
    trust = _load_trust(trust_file, witness_policy)
    age = _max_age(max_age, trust)
    data = _read_bundle(bundle_file)
    with _about(bundle_file):
        report = check_bundle(data, trust, policy, origin=origin, max_age=age)
    if as_json:
        _print_json(report.to_json())
        sys.exit(_verdict_exit(report.verdict))
    _print_bundle_report(bundle_file, report)
    _print_policy(report)
    _print_verdict(report, "verdict:    ")


@proof.command("show", short_help="List a bundle's records (unverified).")
@click.argument("bundle_file", metavar="FILE", type=_EXISTING)
@click.option("--json", "as_json", is_flag=True,
              help="Print the bundle as JSON: checkpoint note, per record leaf_index, leaf and inclusion_proof, "
                   "and the item-head proofs (heads).")
@_errors
def show(bundle_file: Path, as_json: bool) -> None:
    """List FILE's item, checkpoint and records without verifying anything (use 'proof verify' for that).

    The JSON form is the bundle itself for other tools: the signed note text, and per record its leaf index,
    its bytes (base64: the RFC 9162 leaf input) and its inclusion proof (base64 hashes), and per item-head proof
    its item, index and inclusion proof in the checkpoint's item-head tree; docs/format.md §7a, §7c. It is the
    bundle's canonical JSON text (one line, ASCII; §7a.6), which ledger.bundle_from_json_text reads back.

    \b
    Example:
      stonetrail proof show out/proofs/R-00001-A.stproof
      stonetrail proof show out/proofs/R-00001-A.stproof --json
    """
    data = _read_bundle(bundle_file)
    with _about(bundle_file):
        if as_json:
            click.echo(bundle_to_json_text(data).decode("ascii"), nl=False)
            return
        summary = summarize_bundle(data)
    cp = summary.checkpoint
    click.echo(f"item:       {summary.item} ({_plural(len(summary.lines), 'record')}, {summary.size_bytes} bytes)")
    click.echo(f"checkpoint: {_shown(cp.origin)}, tree size {cp.tree_size}, root {cp.root_hash.b64()}" if cp
               else "checkpoint: unreadable")
    for line in summary.lines:
        when = _utc(line.time_ms) if line.time_ms is not None else "?"
        click.echo(f"  {line.index:>8}  {when:<16}  {line.kind or 'unreadable':<11} {line.place:<2}  {line.detail}")
    click.echo("unverified: run 'stonetrail proof verify FILE --trust TRUST' to check it")


def _shown(text: str) -> str:
    """Unverified text as printed: quoted and escaped if it holds anything but printable characters (a control or
    bidirectional character could rewrite what the terminal shows)."""
    return text if text.isprintable() else ascii(text)


def _read_bundle(path: Path) -> bytes:
    """The bundle file's bytes; a file over the cap is refused before it is loaded (``bundle.too_large``)."""
    with _about(path):
        try:
            return _read_bytes(path, "bundle", MAX_BUNDLE_SIZE)
        except InputError as exc:
            too_large = exc.code == "input.too_large"
            raise (BundleFormatError(str(exc), code="bundle.too_large") if too_large else exc) from exc


def _print_bundle_report(path: Path, r: BundleReport) -> None:
    click.echo(f"bundle:     {path} ({_plural(r.record_count, 'record')}, {r.size_bytes} bytes)")
    p = r.provenance
    if r.checkpoint is not None:
        cp = r.checkpoint
        click.echo(f"checkpoint: {_shown(cp.origin)}, tree size {cp.tree_size}, root {cp.root_hash.b64()}; signed by a "
                   "pinned operator key")
    if r.witnessed is not None:
        click.echo(f"witnesses:  {r.witnessed.describe()}")
    if p is None or not r.ok:
        click.echo(f"integrity:  INVALID ({_plural(len(r.findings), 'finding')})")
        _print_hint(r.findings, "hint:       ", records_judged=False)
        _print_findings(r.findings)
        return
    _print_provenance(p)
    _print_unchecked(r.unchecked)
    limits = "; some checks need goods outside this provenance: see 'not checked'" if r.unchecked else ""
    click.echo(f"integrity:  valid ({_plural(len(p.rules_checked), 'rule')} checked, none failed{limits})")
    click.echo(f"current:    as of the checkpoint (tree size {p.tree_size}); records added after it are not covered: "
               "for the stone's state today, ask for a bundle under the operator's latest checkpoint")


def _print_unchecked(unchecked: tuple[Finding, ...]) -> None:
    """The checks the bundle could not make, one line per code: where, and what they would need."""
    if not unchecked:
        return
    click.echo("not checked by this bundle (they need goods outside this provenance; a full audit checks them):")
    for line in group_unchecked(unchecked):
        click.echo(f"  {line}")


def _mass_lines(history: tuple[MassPoint, ...]) -> list[str]:
    """The mass history as printed: one line per item, in the order the items appear, each with its own masses
    in record order (its creation, then a grading that lowered it); an arrow never joins two items."""
    by_item: dict[str, list[MassPoint]] = {}
    for m in history:
        by_item.setdefault(m.item, []).append(m)
    return [f"{item}: " + " -> ".join(f"{format_ct(m.mass_mct)} ({m.kind}, record {m.position})" for m in points)
            for item, points in by_item.items()]


def _print_provenance(p: Provenance) -> None:
    print_now(p.item, p.type, p.nature, Snapshot(p.holder, p.owner, p.mass_mct, p.state, p.country), p.article)
    attested = p.attested_by()
    parts = [f"{c} {format_ct(m)} (attested by {', '.join(attested.get(c, ())) or 'nobody'})"
             for c, m in p.origin.items()]
    click.echo(f"origin:     {'; '.join(parts)}")
    if (warning := p.warning()) is not None:
        click.echo(f"WARNING:    {warning}")
    click.echo(f"path (complete at the checkpoint's tree size {p.tree_size}: record {p.as_of} is the latest, proven by "
               "the checkpoint's item heads):")
    print_path(p.path)
    for n, line in enumerate(_mass_lines(p.mass_history)):
        click.echo(f"{'mass:' if n == 0 else '':<12}{line}")
    for g in p.gradings:
        click.echo(f"grading:    {g.item}: report {g.report} by {g.lab}, {format_ct(g.mass_mct)} {g.colour} "
                   f"{g.clarity} {g.nature} (record {g.position})")
    for i in p.inscriptions:
        click.echo(f"inscribed:  {i.item}: {i.inscription!r} by {i.lab} (record {i.position})")
    click.echo("attested, not proven (a party's word, signed; the ledger proves who said it, not that it is true):")
    for claim in p.attested:
        click.echo(f"  {claim}")
    click.echo("proven (under the pinned keys):")
    for rule in p.rules_checked:
        click.echo(f"  {rule}")
