"""``stonetrail consistency`` and ``stonetrail evidence``: append-only over time (DESIGN.md §1.4).

Registered on the group by :mod:`stonetrail_cli.main`; the shared helpers (error map, trust loading) come from
:mod:`stonetrail_cli._common`. No hashing or rules here: each command calls the
library (:mod:`ledger.consistency`, :mod:`ledger.evidence`, :mod:`ledger.monitor`) and prints the result.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import click

from ledger.checkpoint import read_unverified_checkpoint
from ledger.consistency import (
    PROOF_MISMATCH,
    ConsistencyError,
    ProofFormatError,
    parse_consistency_proof,
    verify_checkpoint_consistency,
)
from ledger.errors import InputError, ProofError, StoneTrailError, VerificationError
from ledger.evidence import MAX_EVIDENCE_SIZE, ChainFork, verify_evidence
from ledger.monitor import fork_evidence, split_view_evidence
from ledger.rollback import Rollback
from ledger.trust import Trust

from ._common import (
    _EXISTING,
    _LEDGER,
    WITNESS_POLICY,
    _about,
    _errors,
    _print_json,
    _verdict_exit,
    _write_new,
    check_new_file,
)
from ._inputs import _load_trust, _read_bytes, _read_checkpoint, _read_text

_OUT = click.Path(dir_okay=False, path_type=Path)


@click.command(short_help="Check that a later checkpoint extends an earlier one.")
@click.argument("old_file", metavar="OLD", type=_EXISTING)
@click.argument("new_file", metavar="NEW", type=_EXISTING)
@click.option("--proof", "proof_file", type=_EXISTING,
              help="The consistency proof from OLD to NEW (written by 'checkpoint --since OLD --proof-out').  "
                   "[required]")
@click.option("--trust", "trust_file", required=True, type=_EXISTING,
              help="Trust file: both checkpoints must be signed by a pinned operator key.")
@WITNESS_POLICY
@click.option("--evidence-out", type=_OUT, help="If not consistent, write split-view evidence here.")
@click.option("--old-ledger", type=_EXISTING, help="OLD's ledger file, to find the record that differs.")
@click.option("--new-ledger", type=_EXISTING, help="NEW's ledger file, to find the record that differs.")
@click.option("--json", "as_json", is_flag=True, help="Print the verdict (and the evidence written) as JSON.")
@_errors
def consistency(old_file: Path, new_file: Path, proof_file: Path | None, trust_file: Path, witness_policy: Path | None,
                evidence_out: Path | None, old_ledger: Path | None, new_ledger: Path | None, as_json: bool) -> None:
    """Check that checkpoint NEW extends checkpoint OLD: the log only grew (RFC 9162 §2.1.4).

    Tree sizes and roots come from the two signed checkpoints, never from the proof file. A new checkpoint
    smaller than the old one, or committing to a smaller registry, is a rollback. The verdict says what was
    compared: "consistent" (NEW extends OLD), "consistent (same tree)" (equal sizes: equal roots), or "nothing
    to compare" (OLD has tree size 0: the empty tree is a prefix of every tree, so only NEW's signature was
    checked). A failure is "NOT CONSISTENT" when the checkpoints contradict each other (a rollback, one tree
    size with two roots, other registries), "NOT SHOWN CONSISTENT" when the proof file does not belong to them
    (made for other sizes or another pair, or damaged; or no proof can join them: --evidence-out with both
    ledgers tells which, and evidence written makes it "NOT CONSISTENT"). --json gives it as "verdict": extends,
    same_tree, nothing_to_compare, not_consistent or not_shown_consistent (with "code", "reason" and
    "evidence": {"file", "proves"} or {"file": null, "reason"}, or null without --evidence-out; and "hint", below).
    With a witness policy (in the trust file, or --witness-policy), NEW must also carry cosignatures meeting its
    quorum (witness.quorum), and the output says when it was witnessed.
    Exit 0 for any of the first three, 1 if not (shown) consistent (or a checkpoint does not verify), 2 for
    malformed input, 3 for I/O errors. A rollback whose proof runs from NEW's size to OLD's adds a hint: the two
    may have been given the other way round ("hint" in --json).

    If not consistent, --evidence-out writes split-view evidence (checked by 'stonetrail evidence verify'):
    for two checkpoints of one size with different roots, from the checkpoints alone; otherwise give the
    ledger file of each checkpoint (--old-ledger, --new-ledger) to find the first record that differs.

    OLD is a checkpoint you kept from before (here, a copy of the demo's, taken before any append); NEW and the
    proof come from 'stonetrail checkpoint --since OLD --proof-out'. An auditor who holds the ledger file needs
    no proof: 'stonetrail verify LEDGER --trust TRUST --checkpoint OLD --checkpoint NEW' checks that both are
    that file's, and so that NEW extends OLD. On the demo nothing was appended, so the
    verdict is "consistent (same tree)"; append records and sign again to see "consistent".

    \b
    Examples:
      cp out/checkpoint.txt old.txt
      stonetrail checkpoint out/demo.ledger --key out/keys/operator.pem --since old.txt --proof-out p.txt -o new.txt
      stonetrail consistency old.txt new.txt --proof p.txt --trust out/trust.keys
      stonetrail consistency old.txt new.txt --proof p.txt --trust out/trust.keys --evidence-out split.ev \\
          --old-ledger out/demo.ledger --new-ledger out/demo.ledger   # each checkpoint's ledger (a mirror's)
    """
    if proof_file is None:  # a new user's review: an auditor holding the ledger has no operator key to make one
        raise click.UsageError("Missing option '--proof': the operator's 'stonetrail checkpoint --since OLD "
                               "--proof-out' writes it; holding the ledger, check both checkpoints against it instead: "
                               "'stonetrail verify LEDGER --trust TRUST --checkpoint OLD --checkpoint NEW'")
    if (old_ledger or new_ledger) and evidence_out is None:
        raise click.UsageError("--old-ledger and --new-ledger are for --evidence-out")
    if evidence_out is not None:
        check_new_file(evidence_out)  # before the check: a verdict is never lost to an output that exists
    trust = _load_trust(trust_file, witness_policy)
    old_note, new_note = _read_checkpoint(old_file, "old checkpoint"), _read_checkpoint(new_file, "new checkpoint")
    proof_text = _read_text(proof_file, "proof")
    try:
        with _about(proof_file, codes=(ProofFormatError.default_code,)):  # the proof's own fault, not a checkpoint's
            result = verify_checkpoint_consistency(old_note, new_note, proof_text, trust)
    except (ConsistencyError, ProofError) as exc:
        written = None if evidence_out is None else \
            _write_split_view(evidence_out, trust, (old_ledger, old_note), (new_ledger, new_note), exc.code)
        proven = exc.code not in PROOF_MISMATCH or (written is not None and written.file is not None)
        verdict = "not_consistent" if proven else "not_shown_consistent"  # a proof that does not fit proves nothing
        hint = _swapped(old_note, new_note, proof_text) if exc.code == "consistency.rollback" else None
        if as_json:
            _print_json({"verdict": verdict, "code": exc.code, "reason": str(exc),
                         "evidence": asdict(written) if written else None, "hint": hint})
        else:
            click.echo(f"{verdict.replace('_', ' ').upper()}: {exc} [{exc.code}]")
            if hint is not None:
                click.echo(f"hint: {hint}")
            if written is not None:
                written.print()
        sys.exit(_verdict_exit(verdict))
    if as_json:
        _print_json(result.to_json())
    else:
        click.echo(result.describe())
        if result.witnessed is not None and result.witnessed.policy is not None:
            click.echo(f"new checkpoint {result.witnessed.describe()}")
    sys.exit(_verdict_exit(result.verdict))


def _swapped(old_note: str, new_note: str, proof_text: str) -> str | None:
    """After a rollback (OLD larger than NEW), a hint if the proof runs from NEW's size to OLD's: OLD and NEW may
    have been given the other way round (a new user's review). Only a hint: the verdict stands for the order given,
    since an operator that rolled back can hand out that very proof (a second review)."""
    try:
        old, new = read_unverified_checkpoint(old_note).tree_size, read_unverified_checkpoint(new_note).tree_size
        proof = parse_consistency_proof(proof_text)
    except StoneTrailError:
        return None
    if old > new and (proof.old_size, proof.new_size) == (new, old):
        return (f"the proof runs from tree size {new} to {old}: if you gave OLD and NEW the other way round, give "
                "the earlier checkpoint first; if NEW really came after OLD, the log was rolled back")
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class _Written:
    """Evidence written to ``file`` and the lines of what it proves; or none (``file`` None) and why not."""

    file: str | None
    proves: tuple[str, ...] = ()
    reason: str | None = None

    def print(self) -> None:
        if self.file is None:
            click.echo(f"no evidence written: {self.reason}")
            return
        click.echo(f"wrote {self.file}" + (":" if self.proves else ""))
        for line in self.proves:
            click.echo(f"  {line}")


def _write_split_view(out: Path, trust: Trust, old: tuple[Path | None, str], new: tuple[Path | None, str],
                      failed: str) -> _Written:
    """Write split-view evidence to ``out`` if it proves something under ``trust`` (``failed``: the code of the
    consistency check that failed)."""
    try:
        data = split_view_evidence(old[0], old[1], new[0], new[1])
        proven = verify_evidence(data, trust)  # write only what proves something under the pinned keys
    except (InputError, VerificationError) as exc:
        if exc.code == "evidence.consistent" and failed == "consistency.rollback":  # no fork: a smaller tree later
            return _Written(file=None, reason="the trees do not fork (the smaller is a prefix of the larger): no "
                                              "split view to write; the rollback is shown by the two signed "
                                              "checkpoints themselves, if NEW was signed after OLD (keep both)")
        return _Written(file=None, reason=f"{exc} [{exc.code}]")
    _write_new((out, data))
    return _Written(file=str(out), proves=tuple(proven.describe()))


@click.group(short_help="Build and check evidence that a ledger forked.")
def evidence() -> None:
    """Evidence that a ledger's operator forked the log: portable files anyone checks offline.

    A split view (two signed checkpoints of one ledger that cannot both be the log) comes from
    'stonetrail consistency --evidence-out'; a chain fork (two records claiming the same predecessor, both in
    a signed checkpoint) from 'stonetrail evidence fork'. Format: docs/format.md §7b.

    The demo's ledger has no fork (every record passes every rule): on it, 'evidence fork' prints "no fork" and
    exits 1, and writes nothing for 'evidence verify' to check. Run them on a ledger where 'stonetrail verify'
    reports chain.fork, or check the split.ev that 'consistency --evidence-out' wrote.

    \b
    Examples:
      stonetrail evidence fork out/demo.ledger --checkpoint out/checkpoint.txt -o fork.ev   # demo: no fork
      stonetrail evidence verify fork.ev --trust out/trust.keys      # fork.ev: written when there is one
    """


@evidence.command("verify", short_help="Check an evidence file offline.")
@click.argument("evidence_file", metavar="FILE", type=_EXISTING)
@click.option("--trust", "trust_file", required=True, type=_EXISTING,
              help="Trust file: the checkpoints must be signed by a pinned operator key.")
@click.option("--json", "as_json", is_flag=True, help="Print what the evidence proves as JSON.")
@_errors
def verify_command(evidence_file: Path, trust_file: Path, as_json: bool) -> None:
    """Check evidence FILE with nothing but the pinned keys; print the misbehaviour it proves.

    Exit 0 if FILE proves misbehaviour (printed; --json: "verdict": misbehaviour_proven, "kind": split_view or
    chain_fork, "origin", "proves": the printed lines), 1 if it proves nothing (an error that says why), 2 if
    it is not an evidence file, 3 for I/O errors. A witness's rollback evidence (kind rollback, from
    'witness serve') gives "verdict": rollback_witnessed, exit 1: the operator signed both trees and the larger
    was cosigned at a time, which a growing log does; that the smaller was presented later is the witness's word,
    and anyone holding it can present it: no misbehaviour is proven.

    FILE is what 'evidence fork' or 'consistency --evidence-out' wrote; the demo gives none (no fork, no split).

    \b
    Examples:
      stonetrail evidence verify fork.ev --trust out/trust.keys
      stonetrail evidence verify split.ev --trust out/trust.keys --json
    """
    trust = _load_trust(trust_file)
    with _about(evidence_file):
        try:
            data = _read_bytes(evidence_file, "evidence file", MAX_EVIDENCE_SIZE)
        except InputError as exc:
            raise InputError(str(exc), code="evidence.malformed") from exc
        proven = verify_evidence(data, trust)
    verdict = "rollback_witnessed" if isinstance(proven, Rollback) else "misbehaviour_proven"
    if as_json:
        kind = "chain_fork" if isinstance(proven, ChainFork) else "rollback" if verdict != "misbehaviour_proven" \
            else "split_view"
        _print_json({"verdict": verdict, "kind": kind, "origin": proven.origin, "proves": proven.describe()})
    else:
        for line in proven.describe():
            click.echo(line)
        click.echo("verdict: rollback witnessed, no misbehaviour proven (both checkpoints signed by the operator, "
                   "the larger cosigned; that the smaller came later is the witness's word)"
                   if isinstance(proven, Rollback) else
                   "verdict: misbehaviour proven (signed checkpoints and inclusion proofs verified)")
    sys.exit(_verdict_exit(verdict))


@evidence.command("fork", short_help="Write evidence of a chain fork in a ledger.")
@click.argument("ledger_file", metavar="LEDGER", type=_LEDGER)
@click.option("--checkpoint", "checkpoint_path", required=True, type=_EXISTING,
              help="A signed checkpoint of LEDGER: the fork must be among the records it covers.")
@click.option("-o", "--out", required=True, type=_OUT, help="Where to write the evidence.")
@click.option("--trust", "trust_file", type=_EXISTING,
              help="Also check the evidence under this trust file before writing it.")
@click.option("--json", "as_json", is_flag=True, help="Print the verdict and the file written as JSON.")
@_errors
def fork_command(ledger_file: Path, checkpoint_path: Path, out: Path, trust_file: Path | None,
                 as_json: bool) -> None:
    """Find the first two records of LEDGER (a ledger file, or a postgresql:// URL) that claim the same
    predecessor and write evidence of it.

    The evidence holds the checkpoint and both records with their inclusion proofs, so it can be checked
    without LEDGER. Exit 0 if evidence was written, 1 if the checkpoint covers no fork, 2 for malformed input,
    3 for I/O errors. --json: "verdict": fork_found (with "file", and "proves" if checked under --trust) or
    no_fork.

    \b
    Example (the demo's ledger has no fork: "no fork", exit 1):
      stonetrail evidence fork out/demo.ledger --checkpoint out/checkpoint.txt -o fork.ev --trust out/trust.keys
    """
    check_new_file(out)  # before the search: a fork found is never lost to an output that exists
    trust = _load_trust(trust_file) if trust_file else None
    note = _read_checkpoint(checkpoint_path)
    with _about(ledger_file):
        data = fork_evidence(ledger_file, note)
    written = None if data is None else \
        _Written(file=str(out), proves=tuple(verify_evidence(data, trust).describe() if trust else ()))
    if data is not None:
        _write_new((out, data))
    verdict = "no_fork" if written is None else "fork_found"
    if as_json:
        _print_json({"verdict": verdict, **(asdict(written) if written else {})})
    elif written is None:
        click.echo("no fork: no two records under the checkpoint claim the same predecessor")
    else:
        written.print()
    sys.exit(_verdict_exit(verdict))


# The names stonetrail_cli.main registers (:data:`stonetrail_cli.main.COMMANDS`, imported when the command runs),
# typed as click commands.
CONSISTENCY_COMMAND: click.Command = consistency
EVIDENCE_GROUP: click.Group = evidence
