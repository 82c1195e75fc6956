"""Where a ``stonetrail`` command's output goes: stdout and stderr that may be closed under it (``| head -1``)
without changing its exit code, whether it speaks JSON (``--json``: its errors too), and the progress bar of
long work on a terminal. No exit codes here (:mod:`stonetrail_cli._common` maps them); nothing about ledgers."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TextIO, cast

#: True while a command given ``--json`` runs: what it prints on stdout, an error included, is one JSON document.
JSON_OUTPUT: ContextVar[bool] = ContextVar("stonetrail_json_output", default=False)
#: True once such a command has printed its document: an error after it (an interrupt) goes to stderr, one line.
JSON_PRINTED: ContextVar[bool] = ContextVar("stonetrail_json_printed", default=False)


class _ReaderGone:
    """``sys.stdout`` or ``sys.stderr`` while a command runs: the stream itself until its reader goes away
    (``| head -1``, ``| grep -m1``: a write fails with EPIPE), then the same stream with its file descriptor
    pointed at ``os.devnull``, so the command runs on to its verdict and exits with that verdict's code — a closed
    pipe never turns "invalid" into exit 0 — and neither a traceback nor Python's "Exception ignored" at the
    final flush appears. Every other attribute is the stream's."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, text: str) -> int:
        try:
            return self.stream.write(text)
        except BrokenPipeError:
            self._drain()
            return len(text)

    def flush(self) -> None:
        try:
            self.stream.flush()
        except BrokenPipeError:
            self._drain()

    def _drain(self) -> None:
        """Point the stream's descriptor at os.devnull: what is buffered, and all that follows, goes nowhere."""
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self.stream.fileno())
        finally:
            os.close(devnull)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def asks_for_json(argv: Sequence[str]) -> bool:
    """True if ``--json`` is among the options of ``argv`` (before a ``--``), parsed or not: a command line
    that click refuses still gets its error as JSON."""
    options = argv[:argv.index("--")] if "--" in argv else argv
    return "--json" in options


@contextmanager
def command_run(argv: Sequence[str]) -> Iterator[None]:
    """One run of a command with the arguments ``argv``: stdout and stderr as :class:`_ReaderGone`, and
    :data:`JSON_OUTPUT` set if they ask for JSON (both restored after)."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = cast(TextIO, _ReaderGone(sys.stdout)), cast(TextIO, _ReaderGone(sys.stderr))
    token, printed = JSON_OUTPUT.set(asks_for_json(argv)), JSON_PRINTED.set(False)
    try:
        yield
    finally:
        JSON_PRINTED.reset(printed)
        JSON_OUTPUT.reset(token)
        sys.stdout, sys.stderr = saved


#: Work shorter than this shows no progress bar (seconds).
SHOW_AFTER_S = 1.0
_REDRAW_S = 0.1
_BAR = 24


class Progress:
    """A progress callback ``(done, total)`` for the library (e.g. records replayed of ``total``) that draws one
    line on ``stream`` — what is being done (``doing``, e.g. "auditing": a command that reads a ledger twice shows
    which pass is under way), a bar, the count (of a total marked ``~`` once it moved: an estimate, e.g. from the
    bytes read), the rate per second and the time left — once the work has taken
    :data:`SHOW_AFTER_S`, redrawn at most every 0.1 s, and only if ``stream`` is a terminal: piped or redirected,
    it prints nothing. :meth:`close` clears the line. ``clock``: seconds, monotonic (a parameter for tests)."""

    def __init__(self, unit: str, stream: TextIO | None = None, clock: Any = time.monotonic, doing: str = "") -> None:
        self.unit, self.stream, self.clock = unit, stream or sys.stderr, clock
        self.label = f"{doing} " if doing else ""
        self.shown = self.stream.isatty()
        self.first = self.start = clock()  # the work's start, and the current pass's (the rate's)
        self.drawn, self.done, self.total, self.estimated = 0.0, 0, 0, False

    def __call__(self, done: int, total: int) -> None:
        if not self.shown:
            return
        now = self.clock()
        if done < self.done:  # the work began again (an audit of a damaged file, redone in one process): the rate
            self.start = now  # and the time left are the new pass's
        self.done = done
        self.estimated |= bool(self.total) and total != self.total  # a total that moves is an estimate
        self.total = total
        if now - self.first < SHOW_AFTER_S or (now - self.drawn < _REDRAW_S and done < total):
            return
        self.drawn = now
        rate = done / (now - self.start) if now > self.start else 0.0
        left = f"{_duration((total - done) / rate)} left" if rate > 0 else "time left unknown"
        filled = _BAR * done // total if total else _BAR
        about = "~" if self.estimated and done < total else ""
        self.stream.write(f"\r{self.label}[{'#' * filled}{'.' * (_BAR - filled)}] {done:,}/{about}{total:,} "
                          f"{self.unit}, {rate:,.0f} {self.unit}/s, {left}\033[K")
        self.stream.flush()

    def close(self) -> None:
        """Clear the bar's line, if one was drawn."""
        if self.drawn:
            self.stream.write("\r\033[K")
            self.stream.flush()


def _duration(seconds: float) -> str:
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


@contextmanager
def progress(unit: str, doing: str = "") -> Iterator[Progress]:
    """A :class:`Progress` on stderr for the work inside (``doing``: its label), its line cleared after."""
    bar = Progress(unit, doing=doing)
    try:
        yield bar
    finally:
        bar.close()
