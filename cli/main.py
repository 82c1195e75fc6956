"""The ``stonetrail`` command: one click group, one library call per command, one error-to-exit-code map.

Exit codes (DESIGN.md §5): 0 valid, 1 invalid (findings printed), 2 usage or malformed input, 3 I/O or storage.
No hashing, encoding or rules live here: every command calls one public function of :mod:`ledger`.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from ledger import (
    AuditReport,
    Finding,
    Trust,
    build_demo,
    check_ledger,
    checkpoint_file,
    format_ct,
    item_history,
    keyfile,
    note_verifier_key,
    replay_ledger,
)
from ledger.errors import InputError, StoneTrailError, StorageError, VerificationError
from ledger.keys import PrivateKey

EXIT_VALID, EXIT_INVALID, EXIT_USAGE, EXIT_IO = 0, 1, 2, 3
_F = TypeVar("_F", bound=Callable[..., Any])


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"stonetrail: error: {message}", err=True)
    sys.exit(code)


def _exit_code(exc: BaseException) -> int:
    """The one map from library errors to exit codes."""
    if isinstance(exc, VerificationError):
        return EXIT_INVALID
    if isinstance(exc, InputError):
        return EXIT_USAGE
    return EXIT_IO


def _errors(fn: _F) -> _F:
    """Turn library and OS errors into one line on stderr and the mapped exit code (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except StoneTrailError as exc:
            _fail(f"{exc} [{exc.code}]", _exit_code(exc))
        except (OSError, UnicodeDecodeError) as exc:
            _fail(str(exc), EXIT_IO if isinstance(exc, OSError) else EXIT_USAGE)

    return wrapper  # type: ignore[return-value]


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} {path} is not UTF-8 text") from exc
    except OSError as exc:
        raise StorageError(f"cannot read {what} {path}: {exc.strerror}") from exc


def _load_trust(path: Path) -> Trust:
    return Trust.parse(_read_text(path, "trust file"))


_EXISTING = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="stonetrail")
def main() -> None:
    """StoneTrail: signed, hash-linked custody records for individual diamonds, verifiable offline.

    \b
    Try it:
      stonetrail demo out
      stonetrail verify out/demo.ledger --trust out/trust.keys
      stonetrail show out/demo.ledger R-00001-A --trust out/trust.keys

    Exit codes: 0 valid, 1 invalid (findings printed), 2 usage error, 3 I/O or storage error.
    """


@main.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--seed", default=1, show_default=True, help="Seed for keys, masses and grades: same seed, same bytes.")
@_errors
def demo(directory: Path, seed: int) -> None:
    """Build a sample ledger in DIRECTORY from real mines and fictitious parties, then verify it.

    Writes DIRECTORY/demo.ledger, DIRECTORY/trust.keys (the keys a verifier pins), DIRECTORY/checkpoint.txt
    (a signed checkpoint of the final tree) and DIRECTORY/keys/*.pem (private keys, mode 0600).
    Refuses a directory that already holds a demo.

    \b
    Example:
      stonetrail demo out --seed 7
    """
    summary = build_demo(directory, seed)
    r = summary.report
    click.echo(f"wrote {summary.ledger_path}, {summary.trust_path}, {summary.checkpoint_path}")
    click.echo(f"origin:    {r.origin}")
    click.echo(f"records:   {r.record_count} (tree size)")
    click.echo(f"items:     {r.items} ({r.stones} stones), {r.parties} enrolled parties")
    click.echo(f"root hash: {r.root_hash.b64()}")
    click.echo(f"verdict:   {'valid' if r.ok else 'INVALID'}")
    click.echo(f"next:      stonetrail show {summary.ledger_path} {summary.polished_example} "
               f"--trust {summary.trust_path}")
    if not r.ok:
        _print_findings(r.findings)
        sys.exit(EXIT_INVALID)


@main.command()
@click.argument("ledger_file", metavar="LEDGER", type=_EXISTING)
@click.option("--trust", "trust_file", required=True, type=_EXISTING,
              help="Trust file: pinned operator and authority keys.")
@click.option("--checkpoint", "checkpoint_file_", type=_EXISTING,
              help="Also check this signed checkpoint against the file.")
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON.")
@_errors
def verify(ledger_file: Path, trust_file: Path, checkpoint_file_: Path | None, as_json: bool) -> None:
    """Replay LEDGER and check every record, trusting only the keys in --trust.

    Checks framing, record format, signatures, enrolment and roles, hash links, custody and mass balance;
    prints every finding with its record position and code. Exit 0 if valid, 1 if not.

    \b
    Example:
      stonetrail verify out/demo.ledger --trust out/trust.keys --checkpoint out/checkpoint.txt
    """
    trust = _load_trust(trust_file)
    note = _read_text(checkpoint_file_, "checkpoint") if checkpoint_file_ else None
    report = check_ledger(ledger_file, trust, checkpoint=note)
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        _print_report(report)
    sys.exit(EXIT_VALID if report.ok else EXIT_INVALID)


def _print_report(r: AuditReport) -> None:
    click.echo(f"origin:    {r.origin}")
    click.echo(f"records:   {r.record_count}")
    click.echo(f"root hash: {r.root_hash.b64()}")
    if r.ok:
        click.echo("verdict:   valid")
    else:
        click.echo(f"verdict:   INVALID ({len(r.findings)} findings)")
        _print_findings(r.findings)


def _print_findings(findings: tuple[Finding, ...]) -> None:
    for f in findings[:200]:
        click.echo(f"  {f}")
    if len(findings) > 200:
        click.echo(f"  ... and {len(findings) - 200} more (use --json for all)")


@main.command()
@click.argument("ledger_file", metavar="LEDGER", type=_EXISTING)
@click.argument("item")
@click.option("--trust", "trust_file", type=_EXISTING, help="Trust file; without it the history is shown unverified.")
@_errors
def show(ledger_file: Path, item: str, trust_file: Path | None) -> None:
    """Print ITEM's history back to the mine: time, event, place, holder, mass, signers.

    \b
    Example:
      stonetrail show out/demo.ledger R-00001-A --trust out/trust.keys
    """
    trust = _load_trust(trust_file) if trust_file else None
    replay = replay_ledger(ledger_file, trust)
    if item not in replay.state.items:
        raise InputError(f"no item {item!r} in {ledger_file}", code="item.unknown")
    rows = item_history(replay, item)
    header = f"{'time (UTC)':<17} {'event':<11} {'place':<5} {'item':<16} {'holder':<20} {'mass':>13}  signers"
    click.echo(header)
    for row in rows:
        click.echo(f"{_utc(row.time_ms):<17} {row.kind:<11} {row.place:<5} {row.item:<16} {row.holder:<20} "
                   f"{format_ct(row.mass_mct):>13}  {', '.join(row.signers)}")
        click.echo(f"{'':<17} {row.detail}")
    positions = {row.position for row in rows}
    faults = [f for f in replay.findings if f.position in positions]
    if trust is None:
        click.echo("unverified: pass --trust to check signatures, enrolment and custody rules")
    elif faults:
        click.echo(f"INVALID: {len(faults)} findings on this history")
        _print_findings(tuple(faults))
        sys.exit(EXIT_INVALID)
    else:
        click.echo(f"verified: {len(rows)} records, every rule checked against the pinned keys")


def _utc(time_ms: int) -> str:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=time_ms)
    return moment.strftime("%Y-%m-%d %H:%M")


@main.command()
@click.argument("ledger_file", metavar="LEDGER", type=_EXISTING)
@click.option("--key", "key_file", required=True, type=_EXISTING, help="The operator's private key (PEM).")
@click.option("--name", help="Signer name in the note (default: the ledger's origin, as C2SP recommends).")
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the note here (default: stdout).")
@_errors
def checkpoint(ledger_file: Path, key_file: Path, name: str | None, out: Path | None) -> None:
    """Sign a C2SP checkpoint (origin, tree size, root hash) of LEDGER as it is now.

    \b
    Example:
      stonetrail checkpoint out/demo.ledger --key out/keys/operator.pem -o out/checkpoint.txt
    """
    note = checkpoint_file(ledger_file, keyfile.load_private_key(key_file), name)
    if out is None:
        click.echo(note, nl=False)
    else:
        out.write_text(note, encoding="utf-8")
        click.echo(f"wrote {out}")


@main.command()
@click.option("--name", required=True, help="Key name, e.g. the ledger origin 'example.com/ledger'.")
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the private key (PEM, mode 0600; never overwritten).")
@_errors
def keygen(name: str, out: Path) -> None:
    """Generate an Ed25519 key pair; print the public half as a note verifier key.

    The printed line (name+keyid+key) is what a verifier pins in a trust file, after a role word
    (operator or authority).

    \b
    Example:
      stonetrail keygen --name example.com/ledger -o operator.pem
    """
    key = PrivateKey.generate()
    vkey = note_verifier_key(name, key.public_key)
    keyfile.save_private_key(out, key)
    click.echo(f"wrote {out} (private; keep it secret)")
    click.echo(vkey.text())


__all__ = ["main"]
