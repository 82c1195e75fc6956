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
from ledger.export import SelfCheckError, StaleCheckpointError, export_bundle, export_bundle_as_of
from ledger.findings import Finding, group_unchecked
from ledger.pg.db import is_url
from ledger.policy import Policy
from ledger.provenance import MassPoint, Provenance, Snapshot
from ledger.publish import published_checkpoint
from ledger.trust import Trust

from ._common import (
    _EXISTING,
    _LEDGER,
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
    _write_new,
    check_new_file,
    refuse_stdout,
)
from ._inputs import _load_trust, _read_bytes, _read_checkpoint
from ._lazy import LazyGroup
from ._output import progress
from ._policy import _print_policy, policy_options
from .show import print_now, print_path

__all__ = ["proof"]

SUFFIX = ".stproof"


@click.group(cls=LazyGroup, lazy={"annex": ".report:ANNEX_COMMAND", "fetch": ".published:FETCH_COMMAND",
                                  "report": ".report:REPORT_COMMAND"},
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


@proof.command("export", short_help="Write the proof bundle of one item.")
@click.argument("ledger_file", metavar="LEDGER", type=_LEDGER)
@click.argument("item")
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path),
              help=f"Where to write the bundle (default: ./ITEM{SUFFIX}; never overwritten).")
@click.option("--checkpoint", "checkpoint_path", type=_EXISTING,
              help="The signed checkpoint to prove against (default: checkpoint.txt next to LEDGER, the newest one "
                   "'stonetrail checkpoint' published); refused if LEDGER has later records of the item.")
@click.option("--as-of", "as_of_path", type=_EXISTING,
              help="Prove against this older checkpoint even if LEDGER has later records of the item (a bundle "
                   "current only as of that checkpoint; the records it leaves out are printed).")
@click.option("--trust", "trust_file", type=_EXISTING,
              help="Also refuse a checkpoint that no operator key pinned in this trust file signed.")
@click.option("--json", "as_json", is_flag=True, help="Print the file written and what it holds as JSON.")
@_errors
def export(ledger_file: Path | str, item: str, out: Path | None, checkpoint_path: Path | None, as_of_path: Path | None,
           trust_file: Path | None, as_json: bool) -> None:
    """Write ITEM's proof bundle from LEDGER: its records and its ancestors' back to the mine, the registry, and
    the signed checkpoint they are proven against (which must be of LEDGER: same origin and root, and registry
    and item-heads lines that are the file's; sign one with 'stonetrail checkpoint').

    The checkpoint must cover LEDGER's latest record of ITEM and of everything in its provenance, so that the
    bundle shows the stone as it is now (sold, stolen, set): a stale one is refused (exit 1, checkpoint.stale)
    with the command that signs a fresh one. --as-of exports under an older checkpoint on purpose; the bundle
    is then current only as of that checkpoint's tree size, which 'proof verify' prints. --json prints {"file",
    "item", "records", "bytes", "tree_size", "later": the positions of the later records an --as-of bundle
    leaves out}.

    LEDGER is a ledger file or a postgresql:// URL (docs/format.md §8.4; a database has no checkpoint.txt
    beside it: name one with --checkpoint).

    \b
    Examples:
      stonetrail proof export out/demo.ledger PARCEL-DXB-01-S1 -o parcel.stproof
      stonetrail proof export out/demo.ledger P-LESEDI-01 -o lesedi-then.stproof --as-of out/checkpoint.txt
    """
    if checkpoint_path is not None and as_of_path is not None:
        raise click.UsageError("--checkpoint and --as-of exclude each other (--as-of also names the checkpoint)")
    refuse_stdout(out, "a bundle is a binary file, never printed")
    out = out or Path.cwd() / f"{item}{SUFFIX}"
    check_new_file(out)  # fail before the export's work; a bundle is never overwritten
    given = as_of_path or checkpoint_path
    if given is None and is_url(ledger_file):
        raise click.UsageError("a database ledger has no checkpoint.txt beside it: name the checkpoint with "
                               "--checkpoint")
    note = _read_checkpoint(given) if given is not None else _published_checkpoint(ledger_file)
    trust = _load_trust(trust_file) if trust_file else None
    try:
        if as_of_path is None:
            data = _export_current(ledger_file, item, note, trust, given)
        else:
            with progress("records") as bar:
                exported = export_bundle_as_of(ledger_file, item, note, trust=trust, progress=bar)
            data = exported.bundle
    except SelfCheckError as exc:  # nothing is written; say which command audits what the bundle was built from
        raise SelfCheckError(item, exc.findings, f"run 'stonetrail verify {ledger_file} --trust TRUST' (the bundle "
                                                 "was built from the ledger's records, not from its index)") from None
    _write_new((out, data))
    summary = summarize_bundle(data)
    size = summary.checkpoint.tree_size if summary.checkpoint else "?"
    if as_json:
        _print_json({"file": str(out), "item": item, "records": len(summary.lines), "bytes": len(data),
                     "tree_size": size, "later": list(exported.later) if as_of_path is not None else []})
        return
    click.echo(f"wrote {out} ({_plural(len(summary.lines), 'record')}, {len(data)} bytes; proven against the "
               f"checkpoint of tree size {size})")
    if as_of_path is not None and exported.later:
        click.echo(f"warning: as of tree size {exported.tree_size} only: {ledger_file} has "
                   f"{_plural(len(exported.later), 'later record')} of {item}'s provenance "
                   f"({_positions(exported.later)}) that this bundle leaves out; its verifier sees only the "
                   "checkpoint", err=True)


def _positions(positions: tuple[int, ...]) -> str:
    """"record 7" or "records 7, 9, 12": leaf indices as printed (the first few)."""
    return f"record{'s' if len(positions) > 1 else ''} {_some([str(p) for p in positions])}"


def _published_checkpoint(ledger_file: Path | str) -> str:
    """The text of the checkpoint published beside ``ledger_file`` (its ``checkpoint.txt``)."""
    path = published_checkpoint(ledger_file)
    if not path.exists():
        raise InputError(f"no checkpoint next to {ledger_file} ({path}): sign one with 'stonetrail checkpoint "
                         f"{ledger_file} --key OPERATOR.pem', or pass --checkpoint", code="checkpoint.missing")
    return _read_checkpoint(path)


def _export_current(ledger_file: Path | str, item: str, note: str, trust: Trust | None, given: Path | None) -> bytes:
    """:func:`export_bundle` under ``note``; a stale checkpoint's refusal says how to sign a fresh one."""
    try:
        with progress("records") as bar:
            return export_bundle(ledger_file, item, note, trust=trust, progress=bar)
    except StaleCheckpointError as exc:
        done, published = exc.done, published_checkpoint(ledger_file)
        where = given or published
        sign = f"'stonetrail checkpoint {ledger_file} --key OPERATOR.pem --trust TRUST" + (
            " -o NEW.txt'" if is_url(ledger_file) else f"' (it replaces {published})")
        raise StaleCheckpointError(item, done, (
            f"{where} (tree size {done.tree_size}) is not the latest checkpoint for {item}: {ledger_file} has "
            f"{_plural(len(done.later), 'later record')} of its provenance ({_positions(done.later)}); sign a fresh "
            f"one with {sign} and export again, or export as of this one on purpose with '--as-of {where}'"
        ) if done.bundle else (
            f"{where} (tree size {done.tree_size}) predates {item}: {ledger_file} creates it at record "
            f"{done.later[0]}; sign a fresh checkpoint with {sign} and export again")) from None


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


def _some(names: list[str], most: int = 6) -> str:
    """Up to ``most`` names, then how many more."""
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


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
