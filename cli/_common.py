"""What every ``stonetrail`` command shares: exit codes, the error-to-exit-code map, reading and writing files,
and printing findings. No hashing, encoding or rules here."""

from __future__ import annotations

import functools
import os
import stat
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn, Protocol, TextIO, TypeVar, cast

import click

from ledger import Finding, Trust
from ledger._files import write_files
from ledger.checkpoint import read_unverified_checkpoint
from ledger.errors import InputError, StoneTrailError, StorageError, TrustFileError, VerificationError

EXIT_VALID, EXIT_INVALID, EXIT_USAGE, EXIT_IO = 0, 1, 2, 3
#: Largest text input read (trust, checkpoint, policy, consistency-proof files); far above any real one.
MAX_TEXT_FILE = 16 * 1024 * 1024
MAX_PRINTED_FINDINGS = 200
_F = TypeVar("_F", bound=Callable[..., Any])


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"stonetrail: error: {message}", err=True)
    sys.exit(code)


#: The words of the verdict line for each verdict (:attr:`ledger.findings.Verdicts.verdict`, the JSON ``verdict``).
VERDICT_TEXT = {"valid": "valid", "valid_compliant": "valid, compliant", "valid_not_compliant": "valid, NOT COMPLIANT",
                "invalid": "INVALID"}


class _Verdict(Protocol):
    """A report with one verdict: :class:`~ledger.AuditReport` or :class:`~ledger.bundle.BundleReport`."""

    @property
    def verdict(self) -> str: ...
    @property
    def findings(self) -> tuple[Finding, ...]: ...
    @property
    def policy_findings(self) -> tuple[Finding, ...]: ...


def _verdict_exit(verdict: str) -> int:
    """The exit code of a verdict: 0 valid (and compliant, with a policy), 1 invalid or not compliant."""
    return EXIT_VALID if verdict in ("valid", "valid_compliant") else EXIT_INVALID


def _print_verdict(r: _Verdict, label: str, valid_detail: str = "") -> NoReturn:
    """Print the one verdict line, last, and exit with its code. ``label`` is "verdict:" padded to the command's
    column; ``valid_detail`` is said after a valid verdict."""
    detail = {"invalid": _plural(len(r.findings), "finding"),
              "valid_not_compliant": _plural(len(r.policy_findings), "policy finding")}.get(r.verdict, valid_detail)
    click.echo(f"{label}{VERDICT_TEXT[r.verdict]}" + (f" ({detail})" if detail else ""))
    sys.exit(_verdict_exit(r.verdict))


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
        except OSError as exc:  # a closed stdout never gets here (_ReaderGone): this is a file the command names
            where = f": {exc.filename}" if exc.filename else ""
            _fail(f"{exc.strerror or exc}{where} [io]", EXIT_IO)
        except (MemoryError, RecursionError) as exc:
            _fail(f"input too large to process ({type(exc).__name__}) [limit]", EXIT_IO)

    return wrapper  # type: ignore[return-value]


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


@contextmanager
def _outputs_may_close() -> Iterator[None]:
    """Run a command with stdout and stderr as :class:`_ReaderGone` (the streams are restored after)."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = cast(TextIO, _ReaderGone(sys.stdout)), cast(TextIO, _ReaderGone(sys.stderr))
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved


def _read_bytes(path: Path, what: str, limit: int = MAX_TEXT_FILE) -> bytes:
    """The bytes of the regular file ``path``, reading at most one byte over ``limit`` (a huge file is refused,
    not loaded).

    Raises InputError ``input.not_a_file``, ``input.too_large``; StorageError on an OS error."""
    try:
        if not stat.S_ISREG(path.stat().st_mode):  # a named pipe would block, a device never end
            raise InputError(f"{what} {path} is not a regular file", code="input.not_a_file")
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise StorageError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise InputError(f"{what} {path} is over {limit} bytes", code="input.too_large")
    return data


def _read_text(path: Path, what: str) -> str:
    """UTF-8 text of at most :data:`MAX_TEXT_FILE` bytes (a leading byte-order mark, as some editors write, is
    dropped)."""
    try:
        return _read_bytes(path, what).decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} {path} is not UTF-8 text") from exc


@contextmanager
def _about(what: str) -> Iterator[None]:
    """Prefix the message of a StoneTrailError raised inside with ``what`` (which file it is about)."""
    try:
        yield
    except StoneTrailError as exc:
        exc.about(what)
        raise


def _read_checkpoint(path: Path, what: str = "checkpoint") -> str:
    """A signed checkpoint's text, checked for form here so that an error names the file."""
    text = _read_text(path, what)
    with _about(f"{what} {path}"):
        read_unverified_checkpoint(text)
    return text


def _load_trust(path: Path) -> Trust:
    try:
        return Trust.parse(_read_text(path, "trust file"))
    except TrustFileError as exc:
        raise TrustFileError(f"trust file {path}: {exc}", code=exc.code) from exc


def _write_new(*files: tuple[Path, str | bytes]) -> None:
    """Write new files (path, text as UTF-8 or bytes), all or none, each created exclusively, never through a
    symbolic link, and linked into place only once complete (:func:`ledger._files.write_files`): nothing a user
    keeps, a ledger least of all, is ever overwritten. Raises StorageError ``store.exists``, ``store.io``."""
    write_files([(path, data.encode() if isinstance(data, str) else data) for path, data in files])


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
