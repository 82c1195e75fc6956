"""``stonetrail items``: every item of a ledger, one line each (type, state, holder, mass, records).

Registered on the group by :mod:`stonetrail_cli.main`; the lines come from the ledger's index (no --trust), from
a streaming audit (--trust: ``check_ledger(inventory=True)``), or from the replay that ``show`` makes too when the
audit finds something (:func:`ledger.inventory.item_lines`: it names the parts of the file that cannot be read).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import click

from ledger import format_ct
from ledger.findings import Finding
from ledger.inventory import ItemLine, indexed_item_lines, item_lines
from ledger.pg.db import is_url
from ledger.pg.store import as_file

from ._common import (
    _EXISTING,
    _LEDGER,
    _errors,
    _plural,
    _print_hint,
    _print_json,
    _verdict_exit,
)
from ._inputs import _load_trust
from ._reading import (
    RUN_VERIFY,
    Broken,
    audited,
    broken_parts,
    damaged,
    incomplete,
    note_no_index,
    replay_file,
    rolled_back,
)


@click.command(short_help="List every item of a ledger.")
@click.argument("ledger_file", metavar="LEDGER", type=_LEDGER)
@click.option("--trust", "trust_file", type=_EXISTING, help="Trust file; without it the list is unverified.")
@click.option("--json", "as_json", is_flag=True, help="Print the items and the verdict as JSON.")
@_errors
def items(ledger_file: Path | str, trust_file: Path | None, as_json: bool) -> None:
    """List every item of LEDGER: id, type, state, holder (and owner, if another party holds it on memo),
    mass and number of its own records, sorted by id.

    Without --trust the list is unverified: read from the ledger's index when it has one (stonetrail index),
    without reading the records (damage in the file is then not seen: 'verify' sees it), else from a pass over
    the file as an audit (every core, memory that follows the items) that checks no rule.

    With --trust the whole ledger is audited, as 'verify' does (on every core, in memory that follows the items),
    and the list is the audit's: "valid" only if it has no finding at all, else "invalid"
    (exit 1; 'verify' lists the findings). A file with a part that cannot be read is replayed instead (memory
    then follows the records, ~1 KB each), which names those parts. The file is checked against the checkpoint
    published beside it (checkpoint.txt) too, if a key the trust file pins as the operator's signed it.

    A damaged file, or one holding fewer records than the checkpoint published beside it (checkpoint.txt), makes
    the verdict invalid (exit 1): items may be missing from the list, or shown as they were before the part that
    cannot be read.

    --json gives "verdict" (valid, unverified or invalid), "findings" (a list of {code, position, item,
    reason}: the first 10,000 in log order; null when unverified), "finding_count" (all of them), "damage" (the
    findings of what cannot be read, the first 10,000), "damaged_parts" (all of them) and "items": [{item, type,
    nature, state, holder, owner, mass_mct, records, latest}] (masses in mct; latest: the position of the item's
    last record).

    LEDGER is a ledger file or a postgresql:// URL (docs/format.md §8.4).

    \b
    Examples:
      stonetrail items out/demo.ledger --trust out/trust.keys
      stonetrail items out/demo.ledger --json
    """
    trust = _load_trust(trust_file) if trust_file else None
    indexed = indexed_item_lines(ledger_file) if trust is None and not is_url(ledger_file) else None
    verdict, count = "unverified", 0
    findings: tuple[Finding, ...] | None = None  # unverified: no finding is reported (without keys all fail)
    if indexed is not None:
        lines, records, origin = indexed
        broken = Broken(lost=rolled_back(ledger_file, origin, records))
    else:
        if trust is None:
            note_no_index(ledger_file)
        with as_file(ledger_file) as local:  # a database ledger is read from a copy of its records
            report = audited(local, trust)
            if report is not None and report.inventory is not None:  # as the audit leaves the items
                lines, broken = report.inventory.lines(), Broken(lost=rolled_back(ledger_file, report.origin,
                                                                                  report.record_count))
                if trust is not None:
                    findings, count = report.findings, report.finding_count
                    verdict = "invalid" if findings else "valid"
            else:  # a part of the file cannot be read: the replay names it
                replay, verdict = replay_file(local, trust)
                lines, broken = item_lines(replay), broken_parts(ledger_file, replay)
                if trust is not None:
                    findings, count = replay.findings, replay.finding_count
    if broken:
        what, todo = damaged(ledger_file, broken)
        click.echo(f"stonetrail: warning: {what}; items may be missing from this list, or shown as they were "
                   f"before the part that cannot be read{todo}", err=True)
        verdict = "invalid"
    if as_json:
        _print_json({"verdict": verdict,
                     "findings": None if findings is None else [f.to_json() for f in findings],
                     "finding_count": None if findings is None else count,
                     "damage": [f.to_json() for f in broken.findings], "damaged_parts": broken.count,
                     "items": [dataclasses.asdict(line) for line in lines]})
    else:
        _print_items(lines)
        click.echo(_summary(lines, verdict, count, broken))
        _print_hint(findings or (), "hint: ", records_judged=True)  # a wrong trust file, a rewritten file
    sys.exit(_verdict_exit(verdict))


def _print_items(lines: list[ItemLine]) -> None:
    width = max([len("item"), *(len(line.item) for line in lines)])
    holder = max([len("holder"), *(len(line.holder) for line in lines)])
    click.echo(f"{'item':<{width}}  {'type':<7} {'state':<11} {'holder':<{holder}}  {'mass':>12}  records")
    for line in lines:
        memo = f" (owner {line.owner})" if line.owner != line.holder else ""
        click.echo(f"{line.item:<{width}}  {line.type:<7} {line.state:<11} {line.holder:<{holder}}  "
                   f"{format_ct(line.mass_mct):>12}  {line.records:>7}{memo}")


def _summary(lines: list[ItemLine], verdict: str, findings: int, broken: Broken) -> str:
    count = _plural(len(lines), "item")
    if broken:
        return f"{count}; INVALID: {incomplete(broken)}, so this list may be incomplete {RUN_VERIFY}"
    if verdict == "unverified":
        return f"{count}; unverified: pass --trust to check signatures, enrolment and custody rules"
    if verdict == "valid":
        return f"{count}; valid: the whole ledger passes every rule under the pinned keys"
    return f"{count}; INVALID: {_plural(findings, 'finding')} in the ledger {RUN_VERIFY}"


# The name stonetrail_cli.main registers (see stonetrail_cli.consistency).
ITEMS_COMMAND: click.Command = items
