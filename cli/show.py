"""``stonetrail show``: an item's history back to the mine, and the one rendering of an item's custody path.

Registered on the group by :mod:`stonetrail_cli.main`. The history is :func:`ledger.history.trace_item`'s, built
by the code that builds a proof bundle's provenance; :func:`print_now` and :func:`print_path` print both, here
and in ``proof verify`` (:mod:`stonetrail_cli.proof`), so the two commands tell one history in one form.
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import click

from ledger import Finding, Trust
from ledger._text import did_you_mean
from ledger.errors import CorruptStoreError, InputError, VerificationError
from ledger.history import History, ItemScope, audited_scope, indexed_scope, item_scope, summary, trace
from ledger.history_scan import Misplaced, scanned_scope
from ledger.index.reading import IndexedLog, indexed_log, through_index
from ledger.pg.db import is_url
from ledger.pg.store import as_file, pg_view
from ledger.pg.url import redact
from ledger.replay import Replay

from ._common import (
    _EXISTING,
    _LEDGER,
    LedgerFirst,
    _about,
    _errors,
    _plural,
    _print_findings,
    _print_hint,
    _print_json,
    _verdict_exit,
)
from ._inputs import _load_trust
from ._output import Progress, progress
from ._path import print_now, print_path
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


@click.command(cls=LedgerFirst, short_help="Print an item's history back to the mine.")
@click.argument("ledger_file", metavar="LEDGER", type=_LEDGER)
@click.argument("item")
@click.option("--trust", "trust_file", type=_EXISTING, help="Trust file; without it the history is shown unverified.")
@click.option("--json", "as_json", is_flag=True, help="Print the history and its verdict as JSON.")
@_errors
def show(ledger_file: Path | str, item: str, trust_file: Path | None, as_json: bool) -> None:
    """Print ITEM's history back to the mine: each record with time, event, place, and the item's holder, owner,
    location, mass and state after it, as 'proof verify' prints a bundle's path (statements change none of them).

    Without --trust the history is unverified: read through the ledger's index (the item's own records and the
    file's last ones only: damage elsewhere is not seen), else from the file, after a pass over it as an audit
    (every core, memory that follows the items) that rebuilds the items without checking any rule.

    With --trust the whole ledger is audited first, as 'verify' does (on every core, in memory that follows the
    items): the history is called valid only if the ledger has no finding at all (a forged or damaged record
    elsewhere could hide part of it). It is then read through the index, or from the file, each record checked
    against the audit, with the findings on this history. A file with a part that cannot be read is replayed
    (memory then follows the records: ~1 KB each), to show where. The file is checked against the checkpoint
    published beside it (checkpoint.txt) too, if a key the trust file pins as the operator's signed it: a file
    rewritten after its operator signed it is not valid, however valid each record is.

    A damaged file, or one holding fewer records than the checkpoint published beside it (checkpoint.txt), makes
    the verdict invalid (exit 1): records of the item may be missing, and an item only such a part creates is
    unreadable (item.unreadable), not unknown.

    --json gives the rows (masses in mct, times in ms since the Unix epoch, UTC), "now", "verdict" (valid,
    unverified or invalid), the findings on this history with "findings_elsewhere" (a count), and "damage" with
    "damaged_parts". The first 10,000 findings and damaged parts are kept; 'verify --max-findings 0' lists all.

    LEDGER is a ledger file or a postgresql:// URL (docs/format.md §8.4).

    \b
    Examples:
      stonetrail show out/demo.ledger R-00001-A --trust out/trust.keys
      stonetrail show out/demo.ledger R-00001-A --trust out/trust.keys --json
    """
    if trust_file is None:  # a database ledger answers from its tables, a file from its index if it covers it
        view = pg_view(str(ledger_file)) if is_url(ledger_file) else indexed_log(ledger_file)
        with _about(ledger_file, codes=("item.unknown",)):
            told = through_index(view, lambda log: (*_told(log, item, ledger_file), log.tree.size, log.origin))
        if told:  # no replay for an unverified history (a damaged index: the log is read below)
            found, history, records, origin = told
            broken = Broken(lost=rolled_back(ledger_file, origin, records))
            _warn(ledger_file, item, broken)
            _print(found, history, "invalid" if broken else "unverified", [], 0, broken, as_json)
            sys.exit(_verdict_exit("invalid" if broken else "unverified"))
        note_no_index(ledger_file)
    trust = _load_trust(trust_file) if trust_file else None
    if isinstance(ledger_file, Path):
        _show_audited(ledger_file, item, trust, as_json)  # exits, unless a part of the file cannot be read
    with as_file(ledger_file) as local:  # a part that cannot be read, a disagreement, or a database: the replay
        replay, verdict = replay_file(local, trust)
        broken = broken_parts(ledger_file, replay)
        if item not in replay.state.items:
            with _about(ledger_file):
                raise _not_found(replay, ledger_file, item, broken)
        with _about(ledger_file):  # the scope's records are read again from the file replayed
            found = item_scope(replay, item)
    history = trace(found, item)
    # unverified (no trust): no rule was checked, so no finding is reported (without keys every record has some)
    checked, counted = ((), 0) if trust is None else (replay.findings, replay.finding_count)
    here = [f for f in checked if f.position in {step.position for step in history.path}]
    _warn(ledger_file, item, broken)
    verdict = "invalid" if broken else verdict
    _print(found, history, verdict, here, counted - len(here), broken, as_json)
    if not as_json:
        _print_hint(checked, "hint: ", records_judged=True)  # a wrong trust file, a rewritten file
    sys.exit(_verdict_exit(verdict))


def _show_audited(ledger_file: Path, item: str, trust: Trust | None, as_json: bool) -> None:
    """Audit the whole ledger in a streaming pass (under ``trust``; None: unverified, no key trusted) and, if every
    part of the file can be read, print ``item``'s history and exit: read through the ledger's index if the ledger
    is valid and an index covers the file, else from the file (:func:`ledger.history_scan.scanned_scope`), each
    fact checked against that audit (:func:`ledger.history.audited_scope`), with the audit's findings on this
    history. Returns (the caller replays the ledger) if a part of the file cannot be read (the replay names it),
    or the index or the file disagrees with the audit."""
    covered = trust is not None and _covered(ledger_file)
    report = audited(ledger_file, trust)
    if report is None or report.inventory is None or report.root_hash is None:
        return
    inventory, size, root = report.inventory, report.record_count, report.root_hash
    verdict = "unverified" if trust is None else "invalid" if report.findings else "valid"

    def found(scope: Callable[[], ItemScope]) -> tuple[ItemScope, History]:
        return _found(ledger_file, item, report.origin, size, inventory.items, scope)
    shown: tuple[ItemScope, History] | CorruptStoreError | None
    with _about(ledger_file, codes=("item.unknown", "item.unreadable")):
        if covered and verdict == "valid":
            shown = through_index(indexed_log(ledger_file, at=size),
                                  lambda log: found(lambda: audited_scope(log, item, inventory, size, root)))
            set_aside = ("its index disagrees with the audit: set aside (run 'stonetrail index "
                         f"{shlex.quote(str(ledger_file))} --trust FILE' to build it anew)")
        else:
            shown = _scanned(lambda bar: found(lambda: scanned_scope(ledger_file, item, inventory, size, root,
                                                                     progress=bar)))
            set_aside = "it changed since it was audited" if not isinstance(shown, Misplaced) else \
                "a record of this history is out of place (a fault an audit names)"
    if not isinstance(shown, tuple):
        click.echo(f"stonetrail: warning: {ledger_file}: {set_aside}; replaying the whole ledger", err=True)
        return
    scope, history = shown
    checked = report.findings if verdict == "invalid" else ()  # unverified: without keys every record has some
    here = [f for f in checked if f.position in {step.position for step in history.path}]
    broken = Broken(lost=rolled_back(ledger_file, report.origin, size))
    _warn(ledger_file, item, broken)
    verdict = "invalid" if broken else verdict
    _print(scope, history, verdict, here, report.finding_count - len(here) if checked else 0, broken, as_json)
    if not as_json:
        _print_hint(checked, "hint: ", records_judged=True)  # a wrong trust file, a rewritten file
    sys.exit(_verdict_exit(verdict))


def _scanned(read: Callable[[Progress], tuple[ItemScope, History]]) -> tuple[ItemScope, History] | CorruptStoreError:
    """``read(bar)`` with a progress bar, or why the file is to be replayed: it changed since it was audited, or
    (:class:`~ledger.history_scan.Misplaced`) it holds a record only a replay places."""
    try:
        with progress("records", "reading") as bar:
            return read(bar)
    except CorruptStoreError as exc:
        if exc.code != "store.changed":
            raise
        return exc


def _warn(ledger_file: Path | str, item: str, broken: Broken) -> None:
    """Say on stderr that records of ``item`` may be missing from its history, if the file has ``broken`` parts
    (damage, or records its published checkpoint covers and it lacks)."""
    if broken:
        what, todo = damaged(ledger_file, broken)
        click.echo(f"stonetrail: warning: {what}; records of {item} may be missing from this history{todo}",
                   err=True)


def _told(log: IndexedLog, item: str, ledger_file: Path | str) -> tuple[ItemScope, History]:
    """``item``'s scope and history read through the ledger's index. Raises as :func:`_found`."""
    return _found(ledger_file, item, log.origin, log.tree.size, log.commitments.heads.index,
                  lambda: indexed_scope(log, item))


def _found(ledger_file: Path | str, item: str, origin: str, size: int, names: Iterable[str],
           scope: Callable[[], ItemScope]) -> tuple[ItemScope, History]:
    """``item``'s ``scope()`` and history, in a ledger of ``size`` records of ``origin`` whose items are ``names``.
    Raises InputError ``item.unknown``, or VerificationError ``item.unreadable`` if the file lost records its
    published checkpoint covers."""
    try:
        found = scope()
    except KeyError:
        if lost := rolled_back(ledger_file, origin, size):
            what, todo = damaged(ledger_file, Broken(lost=lost))
            raise VerificationError(f"no record in the file creates {item!r}, which may be among the records it "
                                    f"lost: {what}{todo}", code="item.unreadable") from None
        raise InputError(f"no item {item!r} in {_named(ledger_file)}{did_you_mean(item, names)}",
                         code="item.unknown") from None
    return found, trace(found, item)


def _named(ledger_file: Path | str) -> str:
    """The ledger as a message names it: a database's URL without its password."""
    return redact(ledger_file) if isinstance(ledger_file, str) and is_url(ledger_file) else str(ledger_file)


def _covered(ledger_file: Path) -> bool:
    """True if the ledger file has an index that covers it (:func:`ledger.index.reading.indexed_log`)."""
    view = indexed_log(ledger_file)
    if view is not None:
        view.close()
    return view is not None


def _print(found: ItemScope, history: History, verdict: str, here: list[Finding], elsewhere: int,
           broken: Broken, as_json: bool) -> None:
    item = found.items[history.item]
    if as_json:
        _print_json({"item": history.item, "mass_mct": history.now.mass_mct,
                     "origin": dict(sorted(item.origin.items())), "summary": summary(found, history.item),
                     "verdict": verdict,
                     "now": dataclasses.asdict(history.now),
                     "history": [dataclasses.asdict(step) for step in history.path],
                     "findings": [f.to_json() for f in here], "findings_elsewhere": elsewhere,
                     "damage": [f.to_json() for f in broken.findings], "damaged_parts": broken.count})
    else:
        _print_history(found, history, verdict, here, elsewhere, broken)


def _not_found(replay: Replay, ledger_file: Path | str, item: str, broken: Broken) -> InputError | \
        VerificationError:
    """The error for an item no readable record creates: unreadable (the file is damaged: it may be there) or
    unknown (with the id it may have meant)."""
    if broken:
        what, todo = damaged(ledger_file, broken)
        return VerificationError(f"no readable record creates {item!r}, which may be in the part that cannot be "
                                 f"read: {what}{todo}", code="item.unreadable")
    return InputError(f"no item {item!r} in {_named(ledger_file)}{did_you_mean(item, replay.state.items)}",
                      code="item.unknown")


def _print_history(found: ItemScope, history: History, verdict: str, here: list[Finding], elsewhere: int,
                   broken: Broken) -> None:
    item = found.items[history.item]
    print_now(history.item, item.type, item.nature, history.now, item.article)
    click.echo(f"summary:    {summary(found, history.item)}")
    click.echo("path:")
    print_path(history.path)
    if broken:
        click.echo(f"INVALID: {incomplete(broken)}, so this history may be incomplete {RUN_VERIFY}")
    elif verdict == "unverified":
        click.echo("unverified: pass --trust to check signatures, enrolment and custody rules")
    elif verdict == "valid":
        click.echo(f"valid: {_plural(len(history.path), 'record')} in this history; the whole ledger passes every "
                   "rule under the pinned keys")
    else:
        click.echo(f"INVALID: {_plural(len(here), 'finding')} on this history, {elsewhere:,} elsewhere in the "
                   f"ledger {RUN_VERIFY}")
    if verdict == "invalid":
        _print_findings(here)


# The name stonetrail_cli.main registers (see stonetrail_cli.consistency).
SHOW_COMMAND: click.Command = show
