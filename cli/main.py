"""The ``stonetrail`` command: one click group, one library call per command, one error-to-exit-code map.

Exit codes (DESIGN.md §5): 0 valid, 1 invalid (findings printed), 2 usage or malformed input, 3 I/O or storage.
No hashing, encoding or rules live here: every command calls one public function of :mod:`ledger`.
"""

from __future__ import annotations

import logging
import os
import shlex
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from ledger import (
    build_demo,
    checkpoint_file,
    keyfile,
    note_verifier_key,
)
from ledger.checkpoint import read_unverified_checkpoint
from ledger.consistency import format_consistency_proof
from ledger.errors import TrustFileError
from ledger.keys import PrivateKey
from ledger.monitor import consistency_proof_for
from ledger.pg.db import is_url
from ledger.publish import Published, publish_checkpoint
from ledger.storage import scan
from ledger.trust import Trust
from ledger.witness_policy import WitnessPolicy

from . import consistency as _consistency
from . import index as _index
from . import items as _items
from . import published as _published
from . import repair as _repair
from . import report as _report
from . import show as _show
from . import stores as _stores
from . import verify as _verify
from . import witness as _witness
from ._common import (
    _EXISTING,
    _LEDGER,
    EXIT_USAGE,
    _about,
    _click_error,
    _errors,
    _fail,
    _load_trust,
    _plural,
    _print_json,
    _read_checkpoint,
    _read_text,
    _save_key,
    _verdict_exit,
    _write_new,
    check_new_file,
    wants_colour,
)
from ._output import command_run, progress
from .proof import proof
from .verify import _print_report

# psycopg logs a second, raw line ("error ignored terminating <psycopg.Pipeline ...>") when a database error ends a
# pipeline; the command prints that error once, as its one line.
logging.getLogger("psycopg").addHandler(logging.NullHandler())


class _Group(click.Group):
    """The command group, with click's own usage errors reduced to one line (exit 2; JSON with --json), and
    output that may be closed at any time (``| head -1``) without changing the exit code (:func:`command_run`)."""

    def main(self, args: Sequence[str] | None = None, prog_name: str | None = None,
             complete_var: str | None = None, standalone_mode: bool = True, **extra: Any) -> Any:
        argv = list(sys.argv[1:] if args is None else args)
        with command_run(argv):
            return self._main(argv, prog_name, complete_var, **extra)

    def _main(self, argv: list[str], prog_name: str | None, complete_var: str | None, **extra: Any) -> Any:
        if wants_colour(os.environ) is False:  # NO_COLOR, TERM=dumb: no colour even on a terminal
            extra["color"] = False
        try:
            return super().main(argv, prog_name or "stonetrail", complete_var, standalone_mode=False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:  # a group without a command: its help, a usage error
            click.echo(exc.ctx.get_help(), err=True)
            _fail(f"no command given: see the commands above ('{exc.ctx.command_path} COMMAND --help' for one's "
                  "options)", EXIT_USAGE, code="usage")
        except (click.ClickException, click.Abort) as exc:
            _click_error(exc)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="stonetrail")
def main() -> None:
    """StoneTrail: signed, hash-linked custody records for individual diamonds, verifiable offline.

    \b
    Examples (try them in this order):
      stonetrail demo out
      stonetrail verify out/demo.ledger --trust out/trust.keys
      stonetrail show out/demo.ledger R-00001-A --trust out/trust.keys

    Each command's --help gives its options and an example. Masses are shown in carats (stored as integer
    millicarats), times in UTC. Record positions count from 0.
    Exit codes: 0 valid (and compliant, with a policy), 1 invalid or not compliant (findings printed), 2 usage
    error or malformed input (a file of the wrong type too), 3 I/O or storage error; the same when the output is
    cut short (| head -1).
    """


@main.command(short_help="Build and verify a sample ledger.")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", default=1, show_default=True, help="Seed for keys, masses and grades: same seed, same bytes.")
@click.option("--json", "as_json", is_flag=True, help="Print what was written and the audit of it as JSON.")
@_errors
def demo(directory: Path, seed: int, as_json: bool) -> None:
    """Build a sample ledger in DIRECTORY from real mines and fictitious parties, then verify it.

    DIRECTORY must be new or empty. Writes DIRECTORY/demo.ledger, DIRECTORY/trust.keys (the keys a verifier
    pins), DIRECTORY/checkpoint.txt (a signed checkpoint of the final tree), DIRECTORY/keys/*.pem (the sample
    parties' private keys, mode 0600) and DIRECTORY/proofs/*.stproof (a proof bundle per polished stone, one of
    them verified offline).

    \b
    Examples:
      stonetrail demo out
      stonetrail demo out-7 --seed 7     # other keys, masses and grades
    """
    with _about(directory):
        summary = build_demo(directory, seed)
    r = summary.report
    verdict = "valid" if r.ok and summary.proof_report.ok else "invalid"
    if as_json:
        _print_json({"verdict": verdict, "ledger": str(summary.ledger_path), "trust": str(summary.trust_path),
                     "checkpoint": str(summary.checkpoint_path), "proofs": str(summary.proofs_dir),
                     "proof_count": summary.proof_count, "proof_example": str(summary.proof_example),
                     "audit": r.to_json(), "proof_example_verdict": summary.proof_report.verdict})
        sys.exit(_verdict_exit(verdict))
    click.echo(f"wrote {summary.ledger_path}, {summary.trust_path}, {summary.checkpoint_path}")
    _print_report(r)
    click.echo(f"items:     {r.items} ({r.stones} stones, {r.items - r.stones} lots), {r.parties} enrolled parties")
    b = summary.proof_report
    click.echo(f"proofs:    {summary.proof_count} bundles in {summary.proofs_dir}; {summary.proof_example.name} "
               f"verified offline: {'valid' if b.ok else 'INVALID'} ({_plural(b.record_count, 'record')}, "
               f"{b.size_bytes} bytes)")
    trust = ("--trust", summary.trust_path)
    click.echo(f"next:      {_again('show', summary.ledger_path, summary.polished_example, *trust)}")
    click.echo(f"           {_again('proof', 'verify', summary.proof_example, *trust)}")
    sys.exit(_verdict_exit(verdict))


def _again(*args: str | Path) -> str:
    """A command line that runs this program again with ``args``, as a shell reads it: the program as invoked
    (:func:`_program`), then each argument quoted where it needs to be."""
    return " ".join([_program(), *(shlex.quote(str(a)) for a in args)])


def _program() -> str:
    """How the user can run this program: ``stonetrail`` when that is what they typed or what it finds on PATH,
    else the path they ran it by (``.venv/bin/stonetrail`` after the README's install, the venv not activated).
    Not run as the console script (a test runner, an application calling :func:`main`): ``stonetrail``."""
    invoked = sys.argv[0] if sys.argv else ""
    if Path(invoked).name != "stonetrail" or os.sep not in invoked:
        return "stonetrail"
    on_path = shutil.which("stonetrail")
    try:
        if on_path is not None and os.path.samefile(on_path, invoked):
            return "stonetrail"
    except OSError:
        pass
    return shlex.quote(invoked)


@main.command(short_help="Sign a checkpoint of a ledger and publish it beside the ledger.")
@click.argument("ledger_file", metavar="LEDGER", type=_LEDGER)
@click.option("--key", "key_file", required=True, type=_EXISTING,
              help="The operator's private key (PEM; made with 'stonetrail keygen --ledger LEDGER').")
@click.option("--name", help="Signer name in the note (default: the ledger's origin, the name the operator key is "
                             "pinned under).")
@click.option("--trust", "trust_file", type=_EXISTING,
              help="Refuse to sign unless --key is the operator key this trust file pins under the signer name.")
@click.option("-o", "--out", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              help="Write the note to this new file (never overwritten), or '-' for stdout, instead of publishing "
                   "it as checkpoint.txt beside LEDGER.")
@click.option("--since", "since_file", type=_EXISTING,
              help="An earlier checkpoint of LEDGER: also write the consistency proof from it (with --proof-out).")
@click.option("--proof-out", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the consistency proof from --since to the new checkpoint.")
@click.option("--witness-policy", "policy_file", type=_EXISTING,
              help="A witness policy (C2SP tlog-policy; docs/format.md §7e): lines 'witness NAME KEY URL', 'group "
                   "NAME K MEMBER...', 'quorum NAME'. Have its witnesses cosign the checkpoint first, and publish "
                   "nothing unless its quorum is met. Default: the --trust file's witness lines, if any.")
@click.option("--witness-timeout", default=10.0, show_default=True, type=click.FloatRange(0.1, 600),
              help="Seconds each witness has to answer.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the note, where it was written and the files kept as JSON.")
@_errors
def checkpoint(ledger_file: Path | str, key_file: Path, name: str | None, trust_file: Path | None,
               out: Path | None, since_file: Path | None, proof_out: Path | None, policy_file: Path | None,
               witness_timeout: float, as_json: bool) -> None:
    """Sign a C2SP checkpoint of LEDGER as it is now: origin, tree size and root hash, plus three lines that
    commit to the registry, to every item's latest record and to every claim on an item id, report number or
    inscription (docs/format.md §7); publish it as checkpoint.txt
    beside LEDGER (the checkpoint 'proof export' uses), keeping the one it replaces as checkpoint-<tree size>.txt.
    A published checkpoint is replaced only by one of a ledger that extends it.

    The operator vouches for the log's bytes, not for its records' validity: a ledger with a record that breaks
    a rule is signed all the same (a framing that is damaged is refused). Audit it first ('stonetrail verify')
    when that matters; the bundles of a stone with such a record then fail 'proof verify'.

    The note is signed under the ledger's origin (or --name). Verifiers accept it only if their trust file pins
    this key under that name as 'operator'. With --trust, that is checked before signing, and a refusal names
    the line that was expected; without it, only a key the ledger's registry gives to a party or the authority
    is refused (a trader's key is never the operator's): any other key signs, even one no verifier pins, so the
    line verifiers must pin is printed (pass --trust to be refused instead).
    With --since OLD and --proof-out, also write the RFC 9162 consistency proof from OLD to the new checkpoint
    (checked by 'stonetrail consistency'); nothing is written if LEDGER does not extend OLD. --json prints
    {"tree_size", "note", "file" (null with -o -), "kept", "unchanged", "consistency_proof", "pin"} ("pin": the
    trust-file line verifiers need, when --trust was not given).

    With --witness-policy (or witness lines in the --trust file: the policy its verifiers will apply), the
    signed checkpoint is first sent to every witness of that policy with a URL
    (C2SP tlog-witness), in parallel, with a consistency proof from the size it last cosigned; each answer is
    printed (cosigned at T, HTTP status and body, timeout, unreachable) and the valid cosignatures are added to
    the note. If they do not meet the policy's quorum nothing is written and the exit code is 1
    (witness.quorum). --json adds "witnesses": [{"witness", "url", "outcome", "status", "body", "time", ...}].

    LEDGER is a ledger file or a postgresql:// URL (docs/format.md §8.4; a database has no folder to publish in:
    give -o).

    \b
    Examples:
      stonetrail checkpoint out/demo.ledger --key out/keys/operator.pem --trust out/trust.keys
      stonetrail checkpoint out/demo.ledger --key out/keys/operator.pem -o cp.txt
      stonetrail checkpoint out/demo.ledger --key out/keys/operator.pem --since cp.txt --proof-out cp.proof -o cp2.txt
      stonetrail checkpoint out/demo.ledger --key out/keys/operator.pem --witness-policy witnesses.txt
    """
    if (since_file is None) != (proof_out is None):
        raise click.UsageError("--since and --proof-out go together")
    if is_url(ledger_file) and out is None:
        raise click.UsageError("a database ledger has no folder to publish checkpoint.txt in: use -o FILE or -o -")
    file_out = None if out == Path("-") else out
    for target in (file_out, proof_out):
        if target is not None:
            check_new_file(target)  # never overwritten (old checkpoints are evidence)
    if file_out is not None and proof_out is not None and file_out.resolve() == proof_out.resolve():
        raise click.UsageError("-o and --proof-out name the same file")
    key = keyfile.load_private_key(key_file)
    trust = _load_trust(trust_file) if trust_file is not None else None
    since = _read_checkpoint(since_file, "--since checkpoint") if since_file is not None else None
    with progress("records") as bar:
        note = checkpoint_file(ledger_file, key, name, trust=trust, progress=bar)
    policy = _witness_policy(policy_file, trust)
    gathered = None if policy is None else _witness.gather_for(ledger_file, note, policy, witness_timeout)
    note = note if gathered is None else gathered.note
    proof = None if since is None else consistency_proof_for(ledger_file, since, note, trust=trust)
    extra = [] if proof is None or proof_out is None else [(proof_out, format_consistency_proof(proof))]
    to_stdout = out is not None and file_out is None
    done = publish_checkpoint(ledger_file, note, also=[(p, t.encode()) for p, t in extra]) if out is None else None
    if out is not None:
        _write_new(*([] if file_out is None else [(file_out, note)]), *extra)  # all or nothing
    signer = None if trust is not None else \
        note_verifier_key(name or read_unverified_checkpoint(note).origin, key.public_key)
    if as_json:
        _print_json({"tree_size": read_unverified_checkpoint(note).tree_size, "note": note,
                     "file": str(done.path) if done else str(file_out) if file_out else None,
                     "kept": str(done.kept) if done and done.kept else None, "unchanged": bool(done and done.unchanged),
                     "consistency_proof": str(proof_out) if extra else None,
                     "pin": f"operator {signer.text()}" if signer else None,
                     **({"witnesses": [a.to_json() for a in gathered.answers]} if gathered else {})})
        return
    if done is not None:
        _print_published(done)
    else:
        click.echo(note if to_stdout else f"wrote {file_out}", nl=not to_stdout)
    if proof is not None and proof_out is not None:
        click.echo(f"wrote {proof_out} (consistency proof {proof.old_size} -> {proof.new_size})", err=to_stdout)
    if signer is not None:
        click.echo(f"not checked against a trust file: verifiers accept it only if theirs pins 'operator "
                   f"{signer.text()}'", err=True)


def _witness_policy(policy_file: Path | None, trust: Trust | None) -> WitnessPolicy | None:
    """The witness policy a new checkpoint must meet: --witness-policy, else the trust file's witness lines (the
    ones its verifiers will apply); None when neither names one, or it requires no cosignature."""
    if policy_file is not None and trust is not None and trust.witnesses is not None:
        raise TrustFileError("the trust file has witness lines already: give the witness policy once",
                             code="trust.policy_twice")
    if policy_file is not None:
        with _about(policy_file, f"witness policy {policy_file}"):
            policy: WitnessPolicy | None = WitnessPolicy.parse(_read_text(policy_file, "witness policy"))
    else:
        policy = trust.witnesses if trust is not None else None
    return policy if policy is not None and policy.required else None


def _print_published(done: Published) -> None:
    if done.unchanged:
        click.echo(f"{done.path} is already this checkpoint (tree size {done.tree_size}); nothing written")
        return
    kept = f"; the previous one is kept as {done.kept}" if done.kept else ""
    click.echo(f"wrote {done.path} (tree size {done.tree_size}){kept}")


@main.command(short_help="Generate an Ed25519 key pair.")
@click.option("--name", help="Key name: for an operator key, the origin of the ledger it signs checkpoints for.")
@click.option("--ledger", "ledger_file", type=_EXISTING,
              help="Name the key after this ledger's origin (what its checkpoints are signed as).")
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the private key (PEM, mode 0600; never overwritten).")
@click.option("--json", "as_json", is_flag=True, help="Print the key file and the verifier key as JSON.")
@_errors
def keygen(name: str | None, ledger_file: Path | None, out: Path, as_json: bool) -> None:
    """Generate an Ed25519 key pair; print the public half as a note verifier key (name+key ID+key).

    A verifier pins the printed key in a trust file, after a role word: `operator` for the key that signs
    checkpoints, `authority` for the key that enrolls parties. The name is part of the pinned key: checkpoints
    are signed under the ledger's origin, so an operator key must be named after it (--ledger names it so).

    \b
    Examples:
      stonetrail keygen --ledger out/demo.ledger -o operator.pem
      stonetrail keygen --name example.com/authority -o authority.pem
    """
    if (name is None) == (ledger_file is None):
        raise click.UsageError("give --name or --ledger (an operator key is named after its ledger's origin)")
    key = PrivateKey.generate()
    vkey = note_verifier_key(scan(ledger_file).origin if ledger_file is not None else str(name), key.public_key)
    _save_key(out, key, vkey.text(), as_json, "pin the public key in a trust file as 'operator <key>' or "
              "'authority <key>':")


__all__ = ["main"]

main.add_command(_consistency.CONSISTENCY_COMMAND)
main.add_command(_consistency.EVIDENCE_GROUP)
main.add_command(proof)
proof.add_command(_report.REPORT_COMMAND)
proof.add_command(_report.ANNEX_COMMAND)
main.add_command(_items.ITEMS_COMMAND)
main.add_command(_show.SHOW_COMMAND)
main.add_command(_repair.REPAIR_COMMAND)
main.add_command(_index.INDEX_COMMAND)
main.add_command(_verify.VERIFY_COMMAND)
main.add_command(_stores.INIT_COMMAND)
main.add_command(_stores.COPY_COMMAND)
main.add_command(_witness.WITNESS_GROUP)
main.add_command(_published.PUBLISH_COMMAND)
proof.add_command(_published.FETCH_COMMAND)
