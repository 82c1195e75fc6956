"""``stonetrail init`` and ``stonetrail copy``: create an empty ledger, and copy a ledger between a file and a
PostgreSQL database (issue 12, docs/adr/0023-postgresql-store.md).

Registered on the group by :mod:`stonetrail_cli.main`; one library call each (:meth:`ledger.Ledger.create`,
:func:`ledger.copy_ledger`).
"""

from __future__ import annotations

import shlex
import time
from pathlib import Path

import click

from ledger import Ledger, copy_ledger
from ledger._beside import published_checkpoint
from ledger.pg.db import is_url, redact

from ._common import _EXISTING, _LEDGER, _about, _errors, _print_json
from ._inputs import _load_trust
from ._output import progress


def _shown(location: str) -> str:
    return redact(location) if is_url(location) else location


@click.command("init", short_help="Create an empty ledger: a file, or a PostgreSQL database's tables.")
@click.argument("location", metavar="LEDGER")
@click.option("--origin", required=True, help="The ledger's origin line (names it in every record and checkpoint), "
                                               "e.g. example.com/ledger.")
@click.option("--trust", "trust_file", type=_EXISTING, required=True,
              help="Trust file: its authority keys will check the registry records appended.")
@click.option("--json", "as_json", is_flag=True, help="Print what was created as JSON.")
@_errors
def init_command(location: str, origin: str, trust_file: Path, as_json: bool) -> None:
    """Create an empty ledger at LEDGER for ORIGIN. For a postgresql:// URL, the database's tables are created
    (the database must exist and hold no ledger; writers then append to it at once, each in its own
    transaction). Never overwrites: an existing file or a database holding a ledger is refused (store.exists,
    exit 3). LEDGER is a file path or a postgresql://USER@HOST:PORT/DATABASE URL.

    \b
    Examples:
      stonetrail init new.ledger --origin example.com/ledger --trust out/trust.keys
      stonetrail init postgresql://stonetrail@127.0.0.1:5432/ledger --origin example.com/ledger --trust out/trust.keys
    """
    trust = _load_trust(trust_file)
    with _about(location):
        Ledger.create(location, origin, trust.authority_keys).close()
    if as_json:
        _print_json({"ledger": _shown(location), "origin": origin, "records": 0})
    else:
        click.echo(f"created an empty ledger for {origin} at {_shown(location)}")
    pinned = sorted({key.name for key in trust.operators})
    if trust.swapped_for(origin):  # a new user's review: told to make a new operator key
        click.echo(f"stonetrail: warning: {trust_file} pins a key named {origin} as authority and none as operator: "
                   "are its operator and authority lines swapped? (the operator key signs checkpoints and is named "
                   "after the origin; the authority key signs the registry, and this ledger now trusts it for that)",
                   err=True)
    elif pinned and origin not in pinned:  # checkpoints are signed under the origin: verifiers would refuse them
        click.echo(f"stonetrail: warning: {trust_file} pins no operator key under {origin} (it pins "
                   f"{', '.join(pinned)}): verifiers using it will refuse this ledger's checkpoints; add the line "
                   f"'stonetrail keygen --ledger {shlex.quote(_shown(location))}' prints for its operator key",
                   err=True)


@click.command("copy", short_help="Copy a ledger between a file and a PostgreSQL database.")
@click.argument("source", metavar="SOURCE", type=_LEDGER)
@click.argument("target", metavar="TARGET")
@click.option("--trust", "trust_file", type=_EXISTING, required=True,
              help="Trust file: its authority keys check the registry records as they are copied.")
@click.option("--json", "as_json", is_flag=True, help="Print what was copied as JSON.")
@_errors
def copy_command(source: Path | str, target: str, trust_file: Path, as_json: bool) -> None:
    """Copy every record of SOURCE into a new ledger at TARGET, in order, each checked as a writer checks an
    append: the copy has the same records, root, checkpoints and bundles. Use it to give an auditor a plain
    ledger file of a PostgreSQL ledger (as committed when the copy starts), or to move a file into a database.
    TARGET must not exist (a file) or must hold no ledger (a database: run it on an empty database). A damaged
    SOURCE is refused (exit 3); a record that breaks a rule stops the copy (exit 1; audit SOURCE). SOURCE and
    TARGET are file paths or postgresql://USER@HOST:PORT/DATABASE URLs. --json prints {"source", "target",
    "records", "seconds"}.

    \b
    Examples:
      stonetrail copy out/demo.ledger demo-copy.ledger --trust out/trust.keys
      stonetrail copy out/demo.ledger postgresql://stonetrail@127.0.0.1:5432/demo --trust out/trust.keys
      stonetrail copy postgresql://stonetrail@127.0.0.1:5432/demo audit.ledger --trust out/trust.keys
    """
    trust = _load_trust(trust_file)
    start = time.monotonic()
    with progress("records", "copying") as bar:  # an error names the source or the target (StoneTrailError.file)
        records = copy_ledger(source, target, trust.authority_keys, progress=bar)
    seconds = round(time.monotonic() - start, 3)
    if as_json:
        _print_json({"source": _shown(str(source)), "target": _shown(target), "records": records,
                     "seconds": seconds})
    else:
        click.echo(f"copied {records} records from {_shown(str(source))} to {_shown(target)} in {seconds:.1f} s")
    if not is_url(target) and published_checkpoint(target).exists():
        click.echo(f"stonetrail: note: {published_checkpoint(target)} applies to every ledger of its origin in that "
                   f"folder: when {_shown(str(source))} grows and a newer one is published there, this copy falls "
                   "short of it, and show and items call it invalid; keep backups in another folder", err=True)


# Typed names for stonetrail_cli.main to register (see stonetrail_cli.consistency).
INIT_COMMAND: click.Command = init_command
COPY_COMMAND: click.Command = copy_command
