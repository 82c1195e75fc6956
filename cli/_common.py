"""What every ``stonetrail`` command shares: exit codes, the error-to-exit-code map, reading and writing files,
and printing findings. No hashing, encoding or rules here."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from ledger import Finding, Trust
from ledger.errors import InputError, StoneTrailError, StorageError, TrustFileError, VerificationError

EXIT_VALID, EXIT_INVALID, EXIT_USAGE, EXIT_IO = 0, 1, 2, 3
MAX_PRINTED_FINDINGS = 200
_F = TypeVar("_F", bound=Callable[..., Any])


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"stonetrail: error: {message}", err=True)
    sys.exit(code)


def _exit_code(exc: BaseException) -> int:
    """The one map from library errors to exit codes."""
    if isinstance(exc, VerificationError):
        return EXIT_INVALID
    if isinstance(exc, InputError):
        return EXIT_USAGE
    return EXIT_IO


def _errors(fn: _F) -> _F:
    """Turn library and OS errors into one line on stderr and the mapped exit code (no traceback)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except StoneTrailError as exc:
            _fail(f"{exc} [{exc.code}]", _exit_code(exc))
        except BrokenPipeError:  # the reader went away (e.g. `| head`): stop quietly
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - absorbs the final flush at exit
            sys.exit(EXIT_VALID)
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            _fail(f"{exc.strerror or exc}{where} [io]", EXIT_IO)
        except (MemoryError, RecursionError) as exc:
            _fail(f"input too large to process ({type(exc).__name__}) [limit]", EXIT_IO)

    return wrapper  # type: ignore[return-value]


def _read_text(path: Path, what: str) -> str:
    """UTF-8 text (a leading byte-order mark, as some editors write, is dropped)."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} {path} is not UTF-8 text") from exc
    except OSError as exc:
        raise StorageError(f"cannot read {what} {path}: {exc.strerror}") from exc


def _load_trust(path: Path) -> Trust:
    try:
        return Trust.parse(_read_text(path, "trust file"))
    except TrustFileError as exc:
        raise TrustFileError(f"trust file {path}: {exc}", code=exc.code) from exc


def _write_new(path: Path, text: str) -> None:
    """Write a new text file; refuse to replace one (nothing a user keeps is ever overwritten)."""
    try:
        with path.open("x", encoding="utf-8") as fh:
            fh.write(text)
    except FileExistsError as exc:
        raise StorageError(f"{path} exists; not overwritten", code="store.exists") from exc


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


_EXISTING: click.Path = click.Path(exists=True, dir_okay=False, path_type=Path)


def _print_findings(findings: Sequence[Finding]) -> None:
    for f in findings[:MAX_PRINTED_FINDINGS]:
        click.echo(f"  {f}")
    if len(findings) > MAX_PRINTED_FINDINGS:
        click.echo(f"  ... and {len(findings) - MAX_PRINTED_FINDINGS} more (use verify --json for all)")


def _utc(time_ms: int) -> str:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=time_ms)
    return moment.strftime("%Y-%m-%d %H:%M")
