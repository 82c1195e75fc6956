"""``stonetrail demo``: build a sample ledger and verify it (one library call, :func:`ledger.build_demo`).

Registered on the group by :mod:`stonetrail_cli.main`.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path

import click

from ledger import build_demo

from ._common import _about, _errors, _plural, _print_json, _verdict_exit
from .verify import _print_report


@click.command("demo", short_help="Build and verify a sample ledger.")
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
    click.echo(f"wrote {summary.ledger_path} (and its index, {summary.ledger_path}.index), {summary.trust_path}, "
               f"{summary.checkpoint_path}")
    _print_report(r, [summary.checkpoint_path])
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


# The name stonetrail_cli.main registers (see stonetrail_cli.consistency).
DEMO_COMMAND: click.Command = demo
