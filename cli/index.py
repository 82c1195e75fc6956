"""``stonetrail index``: build a ledger's index anew from its log (docs/format.md §8.2).

Registered on the group by :mod:`stonetrail_cli.main`; one library call (:func:`ledger.index.rebuild_index`).
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from ledger.index import index_path, rebuild_index

from ._common import _EXISTING, _LEDGER_FILE, _about, _errors, _print_json
from ._inputs import _load_trust
from ._output import progress


@click.command("index", short_help="Build a ledger's index anew from the ledger.")
@click.argument("ledger_file", metavar="LEDGER", type=_LEDGER_FILE)
@click.option("--trust", "trust_file", type=_EXISTING, required=True,
              help="Trust file: its authority keys check the registry records as they are indexed.")
@click.option("--check", "checked", is_flag=True,
              help="Check every record again as it is indexed, signatures included (as slow as an audit).")
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
@_errors
def index_command(ledger_file: Path, trust_file: Path, checked: bool, as_json: bool) -> None:
    """Build LEDGER.index anew from LEDGER: the cache beside a ledger that lets opening it, 'show',
    'checkpoint' and 'proof export' skip a pass over the whole file. It is never needed for a correct answer
    (without it every command reads the ledger itself) and never trusted: a writer checks it against the
    ledger and rebuilds it when it is missing, damaged or another ledger's. Run this after copying a ledger
    without its index, or to have one before the first write. Takes the writer lock (refused while a writer
    holds it); a damaged ledger is refused (run 'stonetrail repair' or 'stonetrail verify'). The ledger's
    records are taken as its writer checked them when it appended them (registry records are checked again);
    --check checks each again and refuses a ledger holding one the writer would refuse. --json prints
    {"file", "index", "records", "seconds"}.

    \b
    Examples:
      stonetrail index out/demo.ledger --trust out/trust.keys
      stonetrail index out/demo.ledger --trust out/trust.keys --check
    """
    trust = _load_trust(trust_file)
    start, done = time.monotonic(), [0]

    def seen(records: int, total: int) -> None:
        done[0] = records
        bar(records, total)

    with _about(ledger_file), progress("records", "indexing") as bar:
        rebuild_index(ledger_file, trust.authority_keys, progress=seen, checked=checked)
    seconds = round(time.monotonic() - start, 3)
    if as_json:
        _print_json({"file": str(ledger_file), "index": str(index_path(ledger_file)), "records": done[0],
                     "seconds": seconds})
    else:
        click.echo(f"{index_path(ledger_file)}: built from {done[0]:,} records of {ledger_file} in {seconds:.1f} s")


# The name stonetrail_cli.main registers (see stonetrail_cli.consistency).
INDEX_COMMAND: click.Command = index_command
