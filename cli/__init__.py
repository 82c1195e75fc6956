"""The ``stonetrail`` command-line tool: a thin click layer over :mod:`ledger` (:mod:`stonetrail_cli.main`)."""

import sys


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
    loading reported as it is once loaded (one line, exit 130), not as a traceback."""
    sys.unraisablehook = _unraisable
    try:
        from .main import main
    except BaseException as exc:  # Ctrl-C, raised as it is or wrapped by Python (see by_interrupt)
        if isinstance(exc, SystemExit) or not by_interrupt(exc):
            raise
        args = sys.argv[1:]
        if "--json" in args[:args.index("--") if "--" in args else len(args)]:  # as stonetrail_cli._common._fail
            sys.stdout.write('{\n  "error": {\n    "code": "aborted",\n    "message": "interrupted (Ctrl-C)",\n'
                             '    "file": null\n  }\n}\n')
        else:
            sys.stderr.write("stonetrail: error: interrupted (Ctrl-C) [aborted]\n")
        raise SystemExit(130) from None
    main()
