"""``stonetrail verify``: the auditor's replay of a whole ledger (docs/audit.md), and the summary lines the demo
prints too (:func:`_print_report`).

Registered on the group by :mod:`stonetrail_cli.main`; one library call (:func:`ledger.check_ledger`).
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import click

from ledger import AuditReport, check_ledger
from ledger._beside import published_at, short_of
from ledger.audit import CHUNK_RECORDS, LEVELS
from ledger.engines import DEFAULT_ENGINE, ENGINES
from ledger.kept_findings import MAX_FINDINGS
from ledger.pg.db import is_url
from ledger.pg.store import as_file
from ledger.policy import Policy
from ledger.storage.framing import TORN

from ._common import (
    _EXISTING,
    _LEDGER,
    MAX_PRINTED_FINDINGS,
    WITNESS_POLICY,
    _about,
    _errors,
    _plural,
    _print_findings,
    _print_hint,
    _print_json,
    _print_verdict,
    _verdict_exit,
)
from ._inputs import _load_trust, _read_checkpoint
from ._output import progress
from ._policy import _print_policy, policy_options
from ._reading import genuine_published
from .cluster import on_cluster


@click.command("verify", short_help="Check every record of a ledger.")
@click.argument("ledger_file", metavar="LEDGER", type=_LEDGER)
@click.option("--trust", "trust_file", required=True, type=_EXISTING,
              help="Trust file: pinned operator and authority keys.")
@click.option("--checkpoint", "checkpoint_paths", type=_EXISTING, multiple=True,
              help="Also check this signed checkpoint against the file (repeatable: each at its tree size); with a "
                   "witness policy, it must carry cosignatures meeting its quorum.")
@WITNESS_POLICY
@click.option("--level", type=click.Choice(LEVELS), default=None,
              help="How much to check, each level including the ones before: structure (framing, record format), "
                   "hashes (+ the Merkle root, against every --checkpoint), signatures (+ every signature under "
                   "the key it names), custody (+ enrolment, roles, links, custody, mass: every rule; the "
                   "default), policy (+ the trade policy; the default with a policy).")
@click.option("--jobs", type=click.IntRange(min=1), default=None,
              help="Worker processes that decode, hash and check signatures (default: the machine's cores; 1: "
                   "everything in this process). The report is the same for any number.")
@click.option("--engine", type=click.Choice(ENGINES), default=DEFAULT_ENGINE, show_default=True,
              help="The library that runs the Ed25519 equation, after the same checks of R, S and the key.")
@click.option("--chunk-records", type=click.IntRange(min=1), default=CHUNK_RECORDS, show_default=True,
              help="Records per chunk of work handed to a worker (the first three chunks smaller, so that the "
                   "rules start early).")
@click.option("--cluster", metavar="tcp://HOST:PORT",
              help="Check the chunks on the workers of this Dask scheduler (pip install 'stonetrail[dask]'); "
                   "each worker opens LEDGER by its absolute path here, so it must be a path every worker shares. "
                   "--jobs: chunks in flight (default: the cluster's worker threads).")
@click.option("--max-findings", type=click.IntRange(min=0), default=MAX_FINDINGS, show_default=True,
              help="Findings to keep, the first ones in log order (and as many damaged spans of the file); the rest "
                   "are counted by code, so that a file crafted to fail on every record cannot exhaust memory. The "
                   "verdict and exit code are the same whatever the limit; a policy's findings are not limited. "
                   "0: keep every one.")
@click.option("--json", "as_json", is_flag=True,
              help="Print one JSON object: records, root, seconds, level, verdict, findings (empty when valid; "
                   "finding_count and findings_omitted count them all), and the rest of the report.")
@click.option("--save-state", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Save the audit's state at the end of LEDGER to this new file, so that a later audit of the "
                   "same ledger can go on from there (--resume).")
@click.option("--resume", "resume", type=_EXISTING, default=None,
              help="Go on from a state saved by --save-state: only the records after it are read; the report is "
                   "a full audit's. Same ledger, trust and --level; every --checkpoint at or above its size; if "
                   "the state counted findings without keeping them, a --max-findings no larger than its own.")
@_errors
@policy_options
def verify(ledger_file: Path | str, trust_file: Path, checkpoint_paths: tuple[Path, ...], witness_policy: Path | None,
           level: str | None,
           jobs: int | None, engine: str, chunk_records: int, cluster: str | None, max_findings: int, as_json: bool,
           policy: Policy | None, save_state: Path | None, resume: Path | None) -> None:
    """Replay LEDGER and check every record, trusting only the keys in --trust; optionally apply a trade policy.

    Checks framing, record format, signatures, enrolment and roles, hash links, custody and mass balance;
    prints every finding with its record position and code. With a policy (--policy or the policy flags), also
    checks the goods against it and prints its findings apart, under "policy": origin claims are attested by
    the producers named, not proven. The last line is the one verdict: "valid", or with a policy "valid,
    compliant" or "valid, NOT COMPLIANT"; "INVALID" if any integrity rule failed (--json: "verdict"). Exit 0
    if valid (and compliant), 1 if not; 2 for a usage error or an input of the wrong kind (not a ledger, not
    a trust file), 3 if a file cannot be read or written (or its header is damaged), 130 if interrupted
    (143: SIGTERM).

    The file is read in one streaming pass that holds no record (see docs/audit.md for its memory); worker processes
    (--jobs) check signatures while this one applies the rules in log order. A progress bar (records/s, time
    left) shows on a terminal.

    LEDGER is a ledger file or a postgresql:// URL (docs/format.md §8.4).

    \b
    Examples:
      stonetrail verify out/demo.ledger --trust out/trust.keys --checkpoint out/checkpoint.txt
      stonetrail verify out/demo.ledger --trust out/trust.keys --level signatures --jobs 2 --json
      stonetrail verify out/demo.ledger --trust out/trust.keys --json --max-findings 0
      stonetrail verify out/demo.ledger --trust out/trust.keys --save-state audit-1.state
      stonetrail verify out/demo.ledger --trust out/trust.keys --resume audit-1.state --save-state audit-2.state
      stonetrail verify out/demo.ledger --trust out/trust.keys --deny-origin RU
      stonetrail verify out/demo.ledger --trust out/trust.keys --deny-origin RU,BY --import-threshold-ct 0.5
    """
    if cluster is not None and is_url(ledger_file):
        raise click.UsageError("--cluster reads a ledger file the workers share: copy the database ledger to one "
                               "first (stonetrail copy)")
    if witness_policy is not None and not checkpoint_paths:
        raise click.UsageError("--witness-policy checks the cosignatures of a checkpoint: give the checkpoint to "
                               "check with --checkpoint")
    trust = _load_trust(trust_file, witness_policy)
    notes = [_read_checkpoint(p) for p in checkpoint_paths]
    # not judged, compared in the same pass for a warning (an adversarial review: a file rewritten since its
    # published checkpoint verified valid, while show called it invalid)
    observe = [] if notes or resume or save_state else genuine_published(ledger_file, trust)
    start = time.monotonic()
    with _about(ledger_file), as_file(ledger_file) as ledger_path, on_cluster(cluster, ledger_path, jobs) as \
            workers, progress("records", "auditing") as bar, _about(resume, codes=_RESUME_CODES), \
            _about(save_state, codes=("store.exists",)):
        report = check_ledger(workers.path, trust, checkpoints=notes, observe=observe, policy=policy, progress=bar,
                              level=level,
                              jobs=workers.jobs, executor=workers.executor, engine=engine,
                              chunk_records=chunk_records,
                              save_state=save_state, resume=resume, max_findings=max_findings or None)
    states = {"resumed_from": str(resume) if resume else None, "resumed_at": report.resumed_at if resume else None,
              "saved_state": str(save_state) if save_state and not report.state_unsaved else None,
              "state_not_saved": report.state_unsaved}
    beside = _published_beside(ledger_file, report) if not checkpoint_paths else None
    # show and items call such a file invalid (a new user's review): said in text and JSON alike
    warnings = [w for w in [_beside_warning(ledger_file, report, beside)] if w is not None]
    if as_json:
        root = report.root_hash.b64() if report.root_hash else None
        _print_json({"records": report.record_count, "root": root, "seconds": round(time.monotonic() - start, 3),
                     "level": report.level, "max_findings": max_findings or None, **states, **report.to_json(),
                     "warnings": warnings})
        sys.exit(_verdict_exit(report.verdict))
    _print_report(report, checkpoint_paths, beside, swapped=trust.swapped_for(report.origin))
    _print_lost(ledger_file, report)
    for warning in warnings:
        click.echo(f"warning:   {warning}")
    if resume is not None:
        before = f"records 0..{report.resumed_at - 1}" if report.resumed_at else "no record"
        click.echo(f"state:     resumed from {resume}: {before} audited before, "
                   f"{report.record_count - report.resumed_at} read now")
    if save_state is not None:
        click.echo(f"state:     {report.state_unsaved}" if report.state_unsaved else
                   f"state:     saved to {save_state}")
    _print_policy(report)
    _print_verdict(report, "verdict:   " if report.level in FULL_LEVELS else f"verdict (level {report.level} only): ")


#: The errors about the state file --resume names (its JSON error's "file").
_RESUME_CODES = ("audit.state_damaged", "audit.state_mismatch", "audit.checkpoint_before_state")
#: The levels that check every rule (docs/audit.md); below them a verdict says which level it is.
FULL_LEVELS = ("custody", "policy")
LEVEL_CHECKS = {"structure": "framing, format and the Merkle root checked (as at hashes); not signatures or rules",
                "hashes": "framing, format and the Merkle root checked; not signatures or rules",
                "signatures": "framing, format, root and signatures checked; not who may sign, links or custody"}


def _beside_warning(ledger_file: Path | str, r: AuditReport, beside: Path | None) -> str | None:
    """Why a valid file contradicts the checkpoint published beside it, which was not given and so not judged:
    fewer records than it covers, or, for one the trust file's operator signed (observed in the same pass), other
    records at its tree size (root, registry, heads or identities lines); None if neither shows."""
    if beside is None or not r.ok:
        return None
    check = f"this verdict is the file's alone: pass --checkpoint {shlex.quote(str(beside))} to check it against " \
            "what was published"
    if short := short_of(ledger_file, r.origin, r.record_count):
        return f"{short}; {check}"
    for seen in r.observed:
        if seen.checkpoint is not None and seen.findings:
            codes = ", ".join(sorted({f.code for f in seen.findings}))
            return (f"{ledger_file} does not match the checkpoint its operator published beside it ({beside}, tree "
                    f"size {seen.checkpoint.tree_size}: {codes}): the file was rewritten after that checkpoint was "
                    f"signed, or the operator signed another log; {check}")
    return None


def _published_beside(ledger_file: Path | str, r: AuditReport) -> Path | None:
    """The checkpoint published beside the ledger file (``checkpoint.txt``, of its origin), if any: not used unless
    given with --checkpoint (an audit assumes nothing), but named, so that the user can pass it."""
    at = None if is_url(ledger_file) else published_at(ledger_file, r.origin)
    return at[0] if at is not None else None


def _print_report(r: AuditReport, paths: Sequence[Path], beside: Path | None = None, *, swapped: bool = False
                  ) -> None:
    click.echo(f"origin:    {r.origin}")
    if r.root_hash is None:
        spans = sum(f.code.startswith("store.") and f.code != TORN for f in r.findings) + \
            sum(count for code, count in r.omitted if code.startswith("store.") and code != TORN)
        each = "one record each" if spans > 1 else "one record"
        more = f", and {_plural(spans, 'damaged span')} of the file counted as {each} ({r.record_count:,} " \
            "positions; how many records a span held is unknown)" if spans else ""
        click.echo(f"records:   {r.record_count - spans:,} read{more}")
        click.echo("root hash: unknown (the file is damaged: what its damaged bytes held is unknown)")
    else:
        click.echo(f"records:   {r.record_count:,}")
        click.echo(f"tree size: {r.record_count:,}")
        click.echo(f"root hash: {r.root_hash.b64()}")
    if len(r.checkpoints) > 1 or (r.checkpoints and not r.checkpoints[0].matches):  # each one given, in order
        for path, check in zip(paths, r.checkpoints, strict=True):
            cp, codes = check.checkpoint, ", ".join(dict.fromkeys(f.code for f in check.findings))
            said = ("not accepted under the pinned keys" if cp is None else
                    f"tree size {cp.tree_size}, " + ("does not match" if codes else
                                                     f"matches {_scope(cp.tree_size, r)}"))
            click.echo(f"checkpoint: {path}: {said}" + (f" ({codes})" if codes else "") +
                       (f"; {check.witnessed}" if check.witnessed and check.matches else ""))
    elif r.checkpoint is not None:
        cp = r.checkpoint
        click.echo(f"checkpoint: signed by the operator, tree size {cp.tree_size}, matches "
                   f"{_scope(cp.tree_size, r)}")
        if r.checkpoints[0].witnessed:
            click.echo(f"witnesses: {r.checkpoints[0].witnessed}")
    if r.ok and (r.checkpoint is None or r.checkpoint.tree_size < r.record_count):
        there = f" ({beside} is published beside it: pass it with --checkpoint)" if beside else ""
        click.echo(f"checkpoint: none given{there}" if r.checkpoint is None else
                   f"checkpoint: it covers only the first {r.checkpoint.tree_size} records")
        click.echo("           a file cut at a record boundary or with independent records removed cannot be told "
                   "from the original (pass the latest --checkpoint)")
    if r.level not in FULL_LEVELS:
        click.echo(f"level:     {r.level}: {LEVEL_CHECKS[r.level]}; NOT a full audit (--level custody)")
    if r.ok:
        click.echo("integrity: valid (every record passes every rule under the pinned keys)" if r.level in FULL_LEVELS
                   else f"integrity: valid at level {r.level} only (the rules of the levels above were not checked)")
        return
    click.echo(f"integrity: INVALID ({_plural(r.finding_count, 'finding')})")
    # below: the records were not all judged
    _print_hint(r.findings, "hint:      ", records_judged=r.level in FULL_LEVELS, swapped=swapped)
    if not r.omitted:
        _print_findings(r.findings)
        return
    _print_findings(r.findings[:MAX_PRINTED_FINDINGS])
    listed = len(r.findings) - MAX_PRINTED_FINDINGS
    counts = ", ".join(f"{code} {count:,}" for code, count in r.omitted)
    how = "an audit from the start with --max-findings 0" if r.resumed_at else "--max-findings 0"
    click.echo(f"  ... and {f'{listed:,} more in verify --json, and ' if listed > 0 else ''}"
               f"{sum(c for _, c in r.omitted):,} counted but not kept ({counts}): {how} keeps every one")


def _print_lost(ledger_file: Path | str, r: AuditReport) -> None:
    """After the findings of a torn ledger: the records of the checkpoint published beside it that the torn tail
    took, if any (then a repair refuses to cut it, ``repair.rollback``, docs/format.md §8.1). After those of a
    ledger whose one damaged span is its last position and no interrupted append (bytes appended by another
    program): that ``repair --damaged-tail`` moves it aside."""
    if is_url(ledger_file):
        return
    torn = any(f.code == "store.torn_tail" for f in r.findings)
    if torn and (short := short_of(ledger_file, r.origin, r.record_count)) is not None:
        click.echo(f"hint:      {short}; repair refuses to cut the torn tail below that checkpoint "
                   "(repair.rollback): recover the records from a backup or a mirror")
    damage = [f for f in r.findings if f.code.startswith("store.")]
    if not r.omitted and len(damage) == 1 and damage[0].code not in _NOT_A_DAMAGED_TAIL \
            and damage[0].position == r.record_count - 1:
        click.echo(f"hint:      the damage runs from the last record to end of file; if it holds no record you need, "
                   f"'stonetrail repair --damaged-tail {shlex.quote(str(ledger_file))}' moves it aside (nothing is "
                   "deleted)")


#: The damage codes that ``repair --damaged-tail`` does not move: a torn tail (plain ``repair`` does) and damage
#: too dense to search (it may hold records).
_NOT_A_DAMAGED_TAIL = ("store.torn_tail", "store.resync_limit")


def _scope(tree_size: int, r: AuditReport) -> str:
    if r.root_hash is None:  # checked only when the damage is a torn tail after it
        return f"the first {tree_size} records, the whole frames before the damage"
    return "the whole log" if tree_size == r.record_count else f"the first {tree_size} records"


# The name stonetrail_cli.main registers (see stonetrail_cli.consistency).
VERIFY_COMMAND: click.Command = verify
