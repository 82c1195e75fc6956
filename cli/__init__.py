"""The ``stonetrail`` command-line tool: a thin click layer over :mod:`ledger` (:mod:`stonetrail_cli.main`)."""

import signal
import sys

#: The signals that stopped the tool (:func:`_terminated` notes SIGTERM; Ctrl-C is SIGINT, Python's own).
STOPPED_BY: set[int] = set()


def _terminated(signum: int, frame: object) -> None:
    """SIGTERM (``kill``, ``timeout``, a service manager) stops the tool as Ctrl-C does, so that what a command
    cleans up on an interrupt (a partial copy, a folder ``publish`` made, the audit's workers) is cleaned up:
    without a handler the process would die where it stood."""
    STOPPED_BY.add(signum)
    raise KeyboardInterrupt


def interrupt() -> tuple[str, int]:
    """The words and exit code of an interrupt: ``terminated (SIGTERM)``, 143 (128 + 15) after SIGTERM, else
    ``interrupted (Ctrl-C)``, 130 (128 + SIGINT): what a shell reports for a command a signal ended."""
    if signal.SIGTERM in STOPPED_BY:
        return "terminated (SIGTERM)", 128 + signal.SIGTERM
    return "interrupted (Ctrl-C)", 128 + signal.SIGINT


def _unraisable(hook: object) -> None:
    """Drop an interrupt that Python could not raise (it came inside a callback, e.g. of the import system's
    locks, while the tool loads: run() reports it); pass anything else to Python's own hook."""
    if not issubclass(getattr(hook, "exc_type", type(None)), KeyboardInterrupt):
        sys.__unraisablehook__(hook)  # type: ignore[arg-type]


def by_interrupt(exc: BaseException) -> bool:
    """True if ``exc`` is, or was raised while handling or because of, a KeyboardInterrupt: Python wraps one that
    comes inside some callbacks (a dataclass field's ``__set_name__`` while a command's modules load raises
    RuntimeError from it)."""
    at: BaseException | None = exc
    for _ in range(16):  # a chain that loops ends here
        if at is None or isinstance(at, KeyboardInterrupt):
            return at is not None
        at = at.__cause__ or at.__context__
    return False


def run() -> None:
    """The ``stonetrail`` console script: :data:`stonetrail_cli.main.main`, with Ctrl-C while the tool is still
    loading reported as it is once loaded (one line, exit 130), not as a traceback; SIGTERM handled as Ctrl-C is
    (exit 143) while the command runs, unless the caller set SIGTERM ignored."""
    sys.unraisablehook = _unraisable
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminated)
    try:
        _run()
    finally:  # the command has ended: a SIGTERM now ends the process as it would have without the tool's handler
        try:
            if signal.getsignal(signal.SIGTERM) is _terminated:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
        except KeyboardInterrupt:  # Ctrl-C as it exits: the exit under way goes on (CI caught a traceback here)
            pass


def _run() -> None:
    try:
        from .main import main
    except BaseException as exc:  # Ctrl-C, raised as it is or wrapped by Python (see by_interrupt)
        if isinstance(exc, SystemExit) or not by_interrupt(exc):
            raise
        args, (words, code) = sys.argv[1:], interrupt()
        if "--json" in args[:args.index("--") if "--" in args else len(args)]:  # as stonetrail_cli._common._fail
            sys.stdout.write(f'{{\n  "error": {{\n    "code": "aborted",\n    "message": "{words}",\n'
                             '    "file": null\n  }\n}\n')
        else:
            sys.stderr.write(f"stonetrail: error: {words} [aborted]\n")
        raise SystemExit(code) from None
    main()
