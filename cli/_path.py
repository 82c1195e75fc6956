"""How an item's custody path is printed, by ``show`` and by ``proof verify`` alike: the item line and the journey
table (one row per record, what the record says below it)."""

from __future__ import annotations

from collections.abc import Sequence

import click

from ledger import format_ct
from ledger.provenance import Snapshot, Step

from ._common import _utc

__all__ = ["JOURNEY_COLUMNS", "print_now", "print_path"]


def print_now(item: str, kind: str, nature: str, now: Snapshot, article: str | None) -> None:
    """The item line: what it is and its state now (holder, owner, where it is, mass, state)."""
    where = f", set in {article}" if article else ""
    click.echo(f"item:       {item} ({kind}, {nature}){where}: {now.describe()}")


#: The journey table's columns (``show`` and ``proof verify``; the HTML report's journey holds the same steps).
JOURNEY_COLUMNS = ("record", "when (UTC)", "event", "where", "item", "holder", "mass", "state", "signed by")
_RIGHT = {0, 6}  # numbers
_STATE_COLOUR = {"in transit": "yellow", "locked": "blue", "consumed": "magenta", "retired": "red"}


def _state_word(state: str) -> str:
    """A state after a record, as the table shows it: "live" is "in trade" (the word "live" is kept for the item
    line's state now, so a stolen stone's output never says it, even of its past)."""
    return "in trade" if state == "live" else state.replace("_", " ")


def print_path(steps: Sequence[Step]) -> None:
    """A custody path as an aligned table (:data:`JOURNEY_COLUMNS`), one row per record: its position, when and
    where it took place, what happened to which item, and the item's holder, mass and state right after it, and
    who signed; below each row, what the record says. Colour only on a terminal (click strips it elsewhere)."""
    rows = [(str(s.position), _utc(s.time_ms), s.kind, s.place, s.item, _holder(s), format_ct(s.mass_mct),
             _state_word(s.state), ", ".join(s.signers)) for s in steps]
    widths = [max([len(head), *(len(row[n]) for row in rows)]) for n, head in enumerate(JOURNEY_COLUMNS)]
    widths[-1] = 0  # the last column is not padded: no trailing blanks
    heads = [h.rjust(w) if n in _RIGHT else h.ljust(w) for n, (h, w) in enumerate(zip(JOURNEY_COLUMNS, widths,
                                                                                      strict=True))]
    click.echo("  " + "  ".join(click.style(h, bold=True) for h in heads))
    indent = " " * (2 + widths[0] + 2 + widths[1] + 2)
    for step, row in zip(steps, rows, strict=True):
        cells = [c.rjust(w) if n in _RIGHT else c.ljust(w) for n, (c, w) in enumerate(zip(row, widths, strict=True))]
        cells[2] = click.style(cells[2], fg="cyan", bold=True)
        cells[7] = click.style(cells[7], fg=_STATE_COLOUR.get(row[7]))
        click.echo("  " + "  ".join(cells))
        click.echo(indent + click.style(step.detail, dim=True))


def _holder(step: Step) -> str:
    """The holder, and the owner when another party owns it (goods on memo)."""
    return step.holder if step.owner == step.holder else f"{step.holder} (owner {step.owner})"
