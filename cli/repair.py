"""``stonetrail repair``: move a ledger's torn tail aside (an append that never completed), never deleting a byte.

Registered on the group by :mod:`stonetrail_cli.main`; one library call (:func:`ledger.repair`) and the
rendering of its result. Its refusals are the library's errors, mapped to exit codes in one place
(:mod:`stonetrail_cli._common`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from ledger import Repaired, repair

from ._common import _EXISTING, _LEDGER_FILE, _about, _errors, _plural, _print_json, _verdict_exit
from ._inputs import _read_checkpoint


@click.command("repair", short_help="Move a ledger's torn tail aside (an append that never completed).")
@click.argument("ledger_file", metavar="LEDGER", type=_LEDGER_FILE)
@click.option("--checkpoint", "checkpoint_path", type=_EXISTING,
              help="A checkpoint issued for LEDGER: refuse to cut the file below its tree size (the checkpoint.txt "
                   "published beside LEDGER bounds the cut too, if it is larger).")
@click.option("--damaged-tail", is_flag=True,
              help="Also move aside a damaged tail: bytes after the last record, to end of file, that are not an "
                   "interrupted append (appended by another program, or a last record damaged), into "
                   "LEDGER.damaged-OFFSET.")
@click.option("--json", "as_json", is_flag=True, help="Print what was done as JSON.")
@_errors
def repair_command(ledger_file: Path, checkpoint_path: Path | None, damaged_tail: bool, as_json: bool) -> None:
    """Move the torn tail of LEDGER (the bytes of an append that never completed: a frame or a batch cut short by a
    crash) into the new file LEDGER.torn-OFFSET (LEDGER.torn-OFFSET-HASH if an earlier crash's tail has that name),
    then cut LEDGER to its last complete record. No byte is deleted: the side file holds exactly what was cut. Takes
    the writer lock (refused while a writer holds it).

    Only a torn tail is repaired: damage anywhere else is refused (exit 3), naming the record and byte offset, and
    the file is left as it is (run 'stonetrail verify'). With --damaged-tail, a damaged tail is moved aside too, into
    LEDGER.damaged-OFFSET: one damaged span from the end of the last valid frame to end of file that does not look
    like an interrupted append (bytes another program appended to the file, or a last record whose bytes were
    damaged); without it, such a tail is refused with a message that says so, unless it is too short to hold a
    record (12 bytes or fewer, e.g. a stray newline).

    A cut that would leave fewer records than the tree size of the checkpoint published beside LEDGER
    (checkpoint.txt), or of the one given with --checkpoint, is refused as a rollback (repair.rollback, exit 1):
    records a verifier may hold a proof of would be lost; so is any repair while checkpoint.txt is not a checkpoint
    and none is given (checkpoint.unreadable, exit 2). A file with nothing to repair is left as it is (verdict
    "intact", exit 0). --json prints {"verdict": "repaired" or "intact", "file", "records", "size_bytes",
    "side_file", "moved_bytes", "damaged_tail"}.

    \b
    Examples:
      stonetrail repair out/demo.ledger
      stonetrail repair out/demo.ledger --checkpoint out/checkpoint.txt --json
      stonetrail repair out/demo.ledger --damaged-tail
    """
    note = _read_checkpoint(checkpoint_path) if checkpoint_path else None
    with _about(ledger_file):
        done = repair(ledger_file, checkpoint=note, damaged_tail=damaged_tail)
    verdict = str(done.to_json()["verdict"])
    if as_json:
        _print_json(done.to_json())
    else:
        click.echo(_summary(done))
    sys.exit(_verdict_exit(verdict))


def _summary(done: Repaired) -> str:
    records = _plural(done.records, "record")
    if done.side_file is None:
        return f"{done.ledger}: nothing to repair ({records}, {done.size_bytes} bytes, no damage); left as it is"
    tail = "damaged" if done.damaged else "torn"
    return (f"{done.ledger}: moved the {tail} tail ({done.moved_bytes} bytes from offset {done.size_bytes}) to "
            f"{done.side_file}; the ledger now ends at its last complete record ({records}, {done.size_bytes} "
            "bytes): verify it, and append again")


# The name stonetrail_cli.main registers (see stonetrail_cli.consistency).
REPAIR_COMMAND: click.Command = repair_command
