"""What every ``stonetrail`` command shares: exit codes, the one map from outcomes (verdicts, errors) to exit codes,
errors as one line or as JSON, reading and writing files, and printing findings. No hashing, encoding or rules
here."""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import weakref
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn, Protocol, TypeVar

import click

from ledger import Finding, Trust, keyfile
from ledger._files import check_new, write_files
from ledger.errors import InputError, StoneTrailError, StorageError, VerificationError
from ledger.keys import PrivateKey
from ledger.pg.url import is_url, redact

from . import interrupt
from ._output import JSON_OUTPUT, JSON_PRINTED

EXIT_VALID, EXIT_INVALID, EXIT_USAGE, EXIT_IO = 0, 1, 2, 3
MAX_PRINTED_FINDINGS = 200
_F = TypeVar("_F", bound=Callable[..., Any])


#: The file each error is about, where a command knows it (:func:`_about`): the "file" of a JSON error.
_ERROR_FILES: weakref.WeakKeyDictionary[StoneTrailError, str] = weakref.WeakKeyDictionary()


def _fail(message: str, exit_code: int, *, code: str, file: str | None = None,
          details: dict[str, object] | None = None) -> NoReturn:
    """Report an error and exit with ``exit_code``: one line on stderr (``stonetrail: error: MESSAGE [CODE]``),
    or with --json, on stdout, ``{"error": {"code": CODE, "message": MESSAGE, "file": FILE or null, ...}}``, the
    error's ``details`` (e.g. each witness's answer) added beside them; an error that is a failed verification
    (exit 1) also says ``"verdict": "invalid"``, so that a script reading the verdict never finds none. An error
    after the command printed its JSON document (an interrupt as it exits) is the one line on stderr: stdout
    stays one document."""
    if JSON_OUTPUT.get() and not JSON_PRINTED.get():
        verdict = {"verdict": "invalid"} if exit_code == EXIT_INVALID else {}
        click.echo(json.dumps({**verdict, "error": {"code": code, "message": message, "file": file,
                                                    **(details or {})}}, indent=2))
    else:
        click.echo(f"stonetrail: error: {message} [{code}]", err=True)
    sys.exit(exit_code)


def _print_json(value: object) -> None:
    """A --json command's result: one JSON document on stdout."""
    click.echo(json.dumps(value, indent=2))
    JSON_PRINTED.set(True)


#: The words of the verdict line for each verdict (:attr:`ledger.verdicts.Verdicts.verdict`, the JSON ``verdict``).
VERDICT_TEXT = {"valid": "valid", "valid_compliant": "valid, compliant", "valid_not_compliant": "valid, NOT COMPLIANT",
                "invalid": "INVALID"}


class _Verdict(Protocol):
    """A report with one verdict: :class:`~ledger.AuditReport` or :class:`~ledger.bundle.BundleReport`."""

    @property
    def verdict(self) -> str: ...
    @property
    def findings(self) -> tuple[Finding, ...]: ...
    @property
    def finding_count(self) -> int: ...
    @property
    def policy_findings(self) -> tuple[Finding, ...]: ...


#: The exit code of every verdict a command reaches (the JSON ``verdict`` values; docs/format.md §10).
VERDICT_EXIT = {
    "valid": EXIT_VALID, "valid_compliant": EXIT_VALID, "valid_not_compliant": EXIT_INVALID,  # verify, proof verify
    "invalid": EXIT_INVALID,  # verify, proof verify, show, demo
    "unverified": EXIT_VALID,  # show and items (their "valid" and "invalid" are verify's)
    "extends": EXIT_VALID, "same_tree": EXIT_VALID, "nothing_to_compare": EXIT_VALID,  # consistency
    "not_consistent": EXIT_INVALID, "not_shown_consistent": EXIT_INVALID,
    "misbehaviour_proven": EXIT_VALID,  # evidence verify (evidence that proves nothing is an error, exit 1)
    "rollback_witnessed": EXIT_INVALID,  # evidence verify of a witness's rollback evidence: no misbehaviour proven
    "fork_found": EXIT_VALID, "no_fork": EXIT_INVALID,  # evidence fork
    "repaired": EXIT_VALID, "intact": EXIT_VALID,  # repair (a refusal is an error)
}


def _verdict_exit(verdict: str) -> int:
    """The exit code of ``verdict`` (:data:`VERDICT_EXIT`): 0 valid (and compliant, with a policy), 1 invalid or
    not compliant."""
    return VERDICT_EXIT[verdict]


def _print_verdict(r: _Verdict, label: str) -> NoReturn:
    """Print the one verdict line, last, and exit with its code. ``label`` is "verdict:" padded to the command's
    column."""
    detail = {"invalid": _plural(r.finding_count, "finding"),
              "valid_not_compliant": _plural(len(r.policy_findings), "policy finding")}.get(r.verdict)
    words = click.style(VERDICT_TEXT[r.verdict], fg=VERDICT_COLOUR[r.verdict], bold=True)
    click.echo(f"{label}{words}" + (f" ({detail})" if detail else ""))
    sys.exit(_verdict_exit(r.verdict))


#: The verdict line's colour on a terminal (never in a pipe, nor with NO_COLOR or TERM=dumb: :func:`wants_colour`).
VERDICT_COLOUR = {"valid": "green", "valid_compliant": "green", "valid_not_compliant": "red", "invalid": "red"}


def wants_colour(environ: Mapping[str, str]) -> bool | None:
    """False when the environment refuses colour: ``NO_COLOR`` set (to any value, https://no-color.org) or
    ``TERM=dumb``; otherwise None (click decides: colour on a terminal only)."""
    if "NO_COLOR" in environ or environ.get("TERM") == "dumb":
        return False
    return None


def _exit_code(exc: BaseException) -> int:
    """The one map from library errors to exit codes."""
    if isinstance(exc, VerificationError):
        return EXIT_INVALID
    if isinstance(exc, InputError):
        return EXIT_USAGE
    return EXIT_IO


def _click_error(exc: click.ClickException | click.Abort) -> NoReturn:
    """Report an error of click's own (the command line could not be parsed) with its exit code: ``usage``
    (exit 2), ``input.missing`` / ``input.not_a_file`` (exit 2: a file argument that names no readable file /
    a directory), ``aborted`` (exit 130: interrupted; 143: terminated, :func:`stonetrail_cli.interrupt`)."""
    if isinstance(exc, click.Abort):
        words, exit_code = interrupt()
        _fail(words, exit_code, code="aborted")
    if isinstance(exc, click.UsageError):
        command = exc.ctx.command_path if exc.ctx else "stonetrail"
        file, code = (exc.file, exc.code) if isinstance(exc, _FileError) else (None, "usage")
        message = " ".join(exc.format_message().split())  # one line: click lists a Choice's values one a line
        _fail(f"{message} (see '{command} --help')", EXIT_USAGE, code=code, file=file)
    _fail(exc.format_message(), exc.exit_code, code="usage")


def _naming(message: str, file: str | None) -> str:
    """``message`` about ``file``, opening with the file's name unless it names it already (a new-user review: "an
    empty file, not a StoneTrail ledger file" did not say which of the files given)."""
    if file is None or file in message or os.path.basename(file) in message:
        return message
    return f"{file}: {message}"


def _errors(fn: _F) -> _F:
    """Turn library and OS errors into an error report (:func:`_fail`) with the mapped exit code (no
    traceback): the library's code, ``io`` for an OS error, ``limit`` for input too large to process."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except StoneTrailError as exc:
            file = exc.file or _ERROR_FILES.get(exc)
            _fail(_naming(str(exc), file), _exit_code(exc), code=exc.code, file=file,
                  details=getattr(exc, "details", None))
        except OSError as exc:  # a closed stdout never gets here (_output._ReaderGone): a file the command names
            file = os.fsdecode(exc.filename) if exc.filename is not None else None
            _fail(f"{exc.strerror or exc}" + (f": {file}" if file else ""), EXIT_IO, code="io", file=file)
        except (MemoryError, RecursionError) as exc:
            _fail(f"input too large to process ({type(exc).__name__})", EXIT_IO, code="limit")

    return wrapper  # type: ignore[return-value]


@contextmanager
def _about(path: Path | str | None, what: str | None = None, *, codes: Collection[str] | None = None
           ) -> Iterator[None]:
    """Name ``path`` as the file a StoneTrailError raised inside is about (the innermost naming wins), and with
    ``what``, prefix its message with it. ``codes``: only errors with one of these codes are about it (one ending
    in a dot: every code it begins). A None ``path`` names nothing; a database ledger's URL is named without its
    password."""
    try:
        yield
    except StoneTrailError as exc:
        if path is None or (codes is not None and exc.code not in codes
                            and not any(c.endswith(".") and exc.code.startswith(c) for c in codes)):
            raise
        _ERROR_FILES.setdefault(exc, redact(str(path)) if is_url(path) else str(path))
        if what is not None:
            exc.about(what)
        raise


_DURATION = re.compile(r"([1-9][0-9]{0,8})([smhd])")


def _max_age(text: str | None, trust: Trust) -> int | None:
    """--max-age in seconds (None: not given), refused as a usage error without a witness policy requiring
    cosignatures (a checkpoint alone carries no time)."""
    if text is not None and (trust.witnesses is None or not trust.witnesses.required):
        raise click.UsageError("--max-age needs a witness policy that requires cosignatures (witness, group and "
                               "quorum lines in the trust file, or --witness-policy): a checkpoint alone carries no "
                               "time")
    return _duration(text, "--max-age")


def _duration(text: str | None, flag: str) -> int | None:
    """Seconds of a duration such as 90s, 30m, 12h or 7d (None: not given); InputError ``input.duration``."""
    if text is None:
        return None
    found = _DURATION.fullmatch(text.strip())
    if found is None:
        zero = " (of at least one second)" if re.fullmatch(r"0+[smhd]", text.strip()) else ""
        raise InputError(f"{flag}: {text!r:.40} is not a duration such as 90s, 30m, 12h or 7d{zero}",
                         code="input.duration")
    return int(found[1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[found[2]]


def _write_new(*files: tuple[Path, str | bytes]) -> None:
    """Write new files (path, text as UTF-8 or bytes), all or none, each created exclusively, never through a
    symbolic link, and linked into place only once complete (:func:`ledger._files.write_files`): nothing a user
    keeps, a ledger least of all, is ever overwritten. Raises StorageError ``store.exists`` (naming, as the
    error's file, the one that exists), ``store.io``."""
    try:
        write_files([(path, data.encode() if isinstance(data, str) else data) for path, data in files])
    except StorageError as exc:
        clash = next((path for path, _ in files if os.path.lexists(path)), None)
        if exc.code == "store.exists" and clash is not None:
            _ERROR_FILES.setdefault(exc, str(clash))
        raise


def check_new_file(path: Path) -> None:
    """:func:`ledger._files.check_new` (refuse an output file that exists, before any work), the error naming
    ``path`` as its file."""
    with _about(path, codes=("store.exists", "store.io")):
        check_new(path)


def _plural(n: int, word: str) -> str:
    """``n`` (thousands grouped, as every count the tool prints) and ``word``, plural unless ``n`` is 1."""
    return f"{n:,} {word}" + ("" if n == 1 else "s")


class _FileError(click.BadParameter):
    """A file argument or option that names no file the command can read: ``file`` is what was given, ``code``
    ``input.not_a_file`` for a directory, else ``input.missing``."""

    def __init__(self, message: str, file: str, ctx: click.Context | None, param: click.Parameter | None) -> None:
        super().__init__(message, ctx=ctx, param=param)
        self.file = file
        self.code = "input.not_a_file" if os.path.isdir(file) else "input.missing"


class _ExistingFile(click.Path):
    """An existing, readable file that is not a directory, as a Path; a refusal names the file (:class:`_FileError`)."""

    def __init__(self) -> None:
        super().__init__(exists=True, dir_okay=False, path_type=Path)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        try:
            return super().convert(value, param, ctx)
        except click.BadParameter as exc:
            raise _FileError(exc.message, os.fsdecode(value), ctx, param) from None


_EXISTING: click.Path = _ExistingFile()

#: --max-age, for every command that verifies a bundle or a published checkpoint (read with :func:`_max_age`).
MAX_AGE = click.option(
    "--max-age", metavar="DURATION",
    help="Refuse a checkpoint last witnessed longer ago than this (90s, 30m, 12h, 7d): the time at which witnesses "
         "meeting the quorum had cosigned it. Needs a witness policy.")

#: --witness-policy, for every command that checks a checkpoint under a trust file.
WITNESS_POLICY = click.option(
    "--witness-policy", "witness_policy", type=_EXISTING,
    help="C2SP tlog-policy file naming witnesses and a quorum (or put its witness, group and quorum lines in the "
         "trust file): the checkpoint must carry cosignatures meeting the quorum.")


class _LedgerLocation(_ExistingFile):
    """A ledger: an existing file (a Path), or a ``postgresql://`` URL (kept as text, docs/format.md §8.4)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        return str(value) if is_url(value) else super().convert(value, param, ctx)


_LEDGER: click.Path = _LedgerLocation()


class LedgerFirst(click.Command):
    """A command taking LEDGER, then an item: given them the other way round (the first word names no file, the
    second an existing one), the usage error says so rather than that the item is no file (a new user's review)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        words = self._arguments(args)
        if len(words) >= 2 and not is_url(words[0]) and not os.path.lexists(words[0]) and os.path.isfile(words[1]):
            raise click.UsageError(f"no file {words[0]!r}, while {words[1]!r} is one: did you mean "
                                   f"'{ctx.command_path} {words[1]} {words[0]}'? (LEDGER comes first)", ctx)
        return super().parse_args(ctx, args)

    def _arguments(self, args: list[str]) -> list[str]:
        """The words of ``args`` that are arguments, not options or their values (up to a ``--``)."""
        valued = {name for p in self.params if isinstance(p, click.Option) and not p.is_flag for name in p.opts}
        words: list[str] = []
        skip = False
        for i, word in enumerate(args):
            if word == "--":
                return words + args[i + 1:]
            if skip:
                skip = False
            elif word.startswith("-") and word != "-":
                skip = word in valued  # its value is the next word (not --opt=value)
            else:
                words.append(word)
        return words


class _LedgerFile(_ExistingFile):
    """A ledger file (a command about the file itself: its index, its torn tail); a ``postgresql://`` URL is
    refused, saying ``why``."""

    def __init__(self, why: str = "a database ledger keeps its index in its own tables and commits whole "
                                  "transactions (nothing to build or repair)") -> None:
        super().__init__()
        self.why = why

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if is_url(value):
            self.fail(f"this command works on a ledger file: {self.why}", param, ctx)
        return super().convert(value, param, ctx)


_LEDGER_FILE: click.Path = _LedgerFile()
#: The ledger ``publish`` reads (a new user's review: a database ledger was refused with index's reason).
_PUBLISHED_LEDGER: click.Path = _LedgerFile("copy the database ledger to a file first ('stonetrail copy URL "
                                            "FILE --trust TRUST'), then publish the file")


def _print_findings(findings: Sequence[Finding]) -> None:
    """Up to :data:`MAX_PRINTED_FINDINGS` findings, then how many more."""
    for f in findings[:MAX_PRINTED_FINDINGS]:
        click.echo(f"  {f}")
    if len(findings) > MAX_PRINTED_FINDINGS:
        click.echo(f"  ... and {len(findings) - MAX_PRINTED_FINDINGS:,} more (use verify --json for all)")


def _print_hint(findings: Sequence[Finding], label: str, *, records_judged: bool, swapped: bool = False) -> None:
    """After an INVALID integrity line, one hint at the likeliest mistake, the same in verify and proof verify: a
    wrong trust file (record 0, the ledger's first enrolment, is not signed by the pinned authority key); with
    ``records_judged`` (verify: every record is judged apart from the checkpoint), a checkpoint that is not of this
    ledger file while every record passes; a genuine checkpoint that only misses the witness policy. ``label`` is
    "hint:" padded to the command's column. ``swapped``: the trust file's operator and authority lines look swapped
    (:meth:`ledger.trust.Trust.swapped_for`), which comes first."""
    if swapped and findings:
        click.echo(f"{label}the trust file pins a key named after this ledger's origin as authority, and none as "
                   "operator: are its operator and authority lines swapped? (the operator key signs checkpoints and "
                   "is named after the origin; the authority key signs the registry)")
    elif any(f.code == "registry.not_authority" and f.position == 0 for f in findings):
        click.echo(f"{label}the first enrolment is not signed by the pinned authority key: is this the right trust "
                   "file?")
    elif findings and all(f.code in ("witness.stale", "witness.quorum", "witness.no_time") for f in findings):
        ask = ("gather cosignatures for it (stonetrail checkpoint --witness-policy), or check a newer, witnessed "
               "checkpoint" if records_judged else "ask for a bundle under a newer, witnessed checkpoint")
        click.echo(f"{label}nothing was found forged: the checkpoint, signed by the operator, is not witnessed as "
                   f"the witness policy requires (too few witnesses, or too long ago); {ask}")
    elif records_judged and [f.code for f in findings] == ["ledger.empty"]:
        click.echo(f"{label}a new ledger holds no record, and an empty one proves nothing: record its first events "
                   "(the authority's enrolments: docs/embedding.md), then verify it again")
    elif records_judged and findings and all(f.position is None and f.code == "note.unverified" for f in findings):
        if any(_OTHER_LEDGER in f.reason for f in findings):  # open_checkpoint's words for another origin line
            click.echo(f"{label}every record passes; the checkpoint is another ledger's (its origin line names "
                       "another log): give this ledger's checkpoint")
        else:
            click.echo(f"{label}every record passes; the checkpoint is not signed by the operator key your trust "
                       "file pins: was it signed with another key, or is this the wrong trust file?")
    elif records_judged and findings and all(f.code == "checkpoint.beyond_log" for f in findings):
        click.echo(f"{label}every record passes, but the file holds fewer records than the checkpoint covers: it was "
                   "cut short or restored from an older copy; recover the missing records (a backup, a mirror)")
    elif records_judged and findings and all(f.position is None and f.code.startswith(_CHECKPOINT_AREAS)
                                             for f in findings):
        click.echo(f"{label}every record passes; only the checkpoint does not match this ledger file: is it this "
                   "ledger's checkpoint? (another ledger's, or of a log this file is not: keep both)")


#: How :func:`ledger.checkpoint.open_checkpoint` says that an unverified checkpoint names another origin.
_OTHER_LEDGER = "a checkpoint of another ledger"

#: The areas of the codes of a checkpoint that does not match a ledger (docs/format.md §10: ``note.*``,
#: ``checkpoint.*``, a checkpoint signature's ``sig.*``), reported for the whole ledger (no position).
_CHECKPOINT_AREAS = ("checkpoint.", "note.", "sig.")


def _utc(time_ms: int) -> str:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=time_ms)
    return moment.strftime("%Y-%m-%d %H:%M")


def refuse_stdout(out: Path | None, why: str) -> None:
    """A usage error for ``-o -`` where the output is a file only (elsewhere ``-`` means stdout): ``why``."""
    if out is not None and str(out) == "-":
        raise click.UsageError(f"-o -: {why}; give a file name")


def _save_key(out: Path, key: PrivateKey, verifier_key: str, as_json: bool, use: str) -> None:
    """Write ``key`` to ``out`` (a new private-key file, 0600), then print its verifier key and ``use`` (what to
    do with it), or with --json ``{"file", "verifier_key"}``. ``-`` is refused (a usage error): elsewhere it means
    stdout, and a private key is never printed."""
    refuse_stdout(out, "a private key is written to a new file (mode 0600), never to stdout")
    with _about(out):
        keyfile.save_private_key(out, key)
    if as_json:
        _print_json({"file": str(out), "verifier_key": verifier_key})
        return
    click.echo(f"wrote {out} (private key: keep it secret)")
    click.echo(use)
    click.echo(verifier_key)
