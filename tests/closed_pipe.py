"""Run a ``stonetrail`` command many times with its stdout a pipe whose reader closes at once; print the exit
statuses as JSON. A driver for tests/test_exit_codes.py (not a test module itself).

    python tests/closed_pipe.py RUNS STDERR_LOG -- verify bad.ledger --trust trust.keys

The driver imports the command once, then forks one child per run. Each child is a whole ``stonetrail`` process
but for the imports: fd 1 is the pipe, fd 2 is STDERR_LOG (appended), and it runs the console script's own line,
``sys.exit(main())``, whose SystemExit climbs out of this module so that the interpreter shuts down as it does
after the console script (the final flush of stdout included). The reader closes at once in one of two ways, in
turn: before the child starts (every write of the child fails with EPIPE, as with ``| true``), or after the first
byte arrives (as with ``| head -c1``: the child's later writes fail, or the child finished first).

The imported modules are frozen out of the garbage collector (``gc.freeze``, as fork servers do): it halves
the cost of each child's shutdown (~30 ms to ~15 ms) and changes nothing a command does.
"""

from __future__ import annotations

import gc
import json
import os
import sys

from stonetrail_cli.main import main

gc.freeze()  # what the import built stays shared with the children, not copied page by page as each one exits


def _child(read_end: int | None, write_end: int, log: int, args: list[str]) -> None:
    """The forked run: never returns (its SystemExit ends the child's interpreter)."""
    if read_end is not None:  # the child must not be a reader of its own pipe
        os.close(read_end)
    os.dup2(write_end, 1)
    os.dup2(log, 2)
    os.close(write_end)
    sys.argv = ["stonetrail", *args]
    sys.exit(main())


def _run(args: list[str], log: int, close_first: bool) -> int:
    """One run: the child's exit status (negative: killed by that signal)."""
    pipe_read, write_end = os.pipe()
    read_end = None if close_first else pipe_read
    if read_end is None:
        os.close(pipe_read)
    pid = os.fork()
    if pid == 0:
        _child(read_end, write_end, log, args)
    os.close(write_end)
    if read_end is not None:
        os.read(read_end, 1)
        os.close(read_end)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def _drive(runs: int, log_path: str, args: list[str]) -> list[int]:
    log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    sys.stdout.flush()  # nothing buffered may be inherited by a child
    return [_run(args, log, close_first=i % 2 == 0) for i in range(runs)]


if __name__ == "__main__":
    if len(sys.argv) < 4 or sys.argv[3] != "--":
        sys.exit(__doc__)
    print(json.dumps(_drive(int(sys.argv[1]), sys.argv[2], sys.argv[4:])))
