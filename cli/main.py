"""The ``stonetrail`` command: one click group, one library call per command, one error-to-exit-code map.

Exit codes (DESIGN.md §5): 0 valid, 1 invalid (findings printed), 2 usage or malformed input, 3 I/O or storage;
130 interrupted (docs/adr/0030-interrupted-exits-130.md), 143 terminated (SIGTERM; docs/adr/0036).
No hashing, encoding or rules live here: every command calls one public function of :mod:`ledger`. Each command
is in its own module, imported when it runs (:class:`stonetrail_cli._lazy.LazyGroup`), so that starting the
program loads only what that command needs.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from . import by_interrupt
from ._common import EXIT_USAGE, _click_error, _fail, wants_colour
from ._lazy import LazyGroup
from ._output import command_run

__all__ = ["COMMANDS", "main"]

# psycopg logs a second, raw line ("error ignored terminating <psycopg.Pipeline ...>") when a database error ends a
# pipeline; the command prints that error once, as its one line.
logging.getLogger("psycopg").addHandler(logging.NullHandler())

#: Command name -> "module:attribute" (in this package) of the click command it runs.
COMMANDS = {
    "checkpoint": ".checkpoint:CHECKPOINT_COMMAND",
    "consistency": ".consistency:CONSISTENCY_COMMAND",
    "copy": ".stores:COPY_COMMAND",
    "demo": ".demo:DEMO_COMMAND",
    "evidence": ".consistency:EVIDENCE_GROUP",
    "index": ".index:INDEX_COMMAND",
    "init": ".stores:INIT_COMMAND",
    "items": ".items:ITEMS_COMMAND",
    "keygen": ".keygen:KEYGEN_COMMAND",
    "proof": ".proof:proof",
    "publish": ".published:PUBLISH_COMMAND",
    "repair": ".repair:REPAIR_COMMAND",
    "show": ".show:SHOW_COMMAND",
    "verify": ".verify:VERIFY_COMMAND",
    "witness": ".witness:WITNESS_GROUP",
}


class _Group(LazyGroup):
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
        except Exception as exc:  # Ctrl-C that Python wrapped while a command's modules loaded: still an interrupt
            if by_interrupt(exc):
                _click_error(click.Abort())
            raise


@click.group(cls=_Group, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
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
    error or malformed input (a file of the wrong type too), 3 I/O or storage error, 130 interrupted (Ctrl-C), 143
    terminated (SIGTERM); the same when the output is cut short (| head -1).
    """
