"""JSON everywhere it belongs, progress where work is long, and an example in every --help (issue 9, item 8).

Every command takes --json: on good input stdout is one JSON document with the command's result (and its
"verdict", whose exit code is the documented one); on bad input it is ``{"error": {"code", "message",
"file"}}`` with the exit code the text form has. The command tree is walked, so a new command without both
fails here.
"""

from __future__ import annotations

import io
import json
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from small_files import SmallFiles, small_files
from vector_ledgers import VECTORS

from ledger import Trust, check_ledger, keyfile
from ledger.published import publish_log
from stonetrail_cli._output import Progress, asks_for_json
from stonetrail_cli.main import main
from world import key


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def _paths(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], bool]]:
    """Every command of ``group`` and ``group`` itself, as (its words after ``stonetrail``, whether a group)."""
    found = [(path, True)]
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # loads each command (they are imported when used)
        command = group.get_command(ctx, name)
        found += _paths(command, (*path, name)) if isinstance(command, click.Group) else [((*path, name), False)]
    return found


COMMANDS = [path for path, is_group in _paths(main) if not is_group]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> SmallFiles:
    return small_files(tmp_path_factory.mktemp("json"))


def test_every_help_shows_an_example() -> None:
    for path, _ in _paths(main):
        result = run(*path, "--help")
        assert result.exit_code == 0 and "Example" in result.output, path


#: Per command: its arguments on good input (files, a new directory) and the "verdict" and exit code expected
#: (None: the result has no verdict).
_Good = Callable[[SmallFiles, Path], list[str | Path]]
GOOD: dict[tuple[str, ...], tuple[_Good, str | None, int]] = {
    ("demo",): (lambda f, d: [d / "demo"], "valid", 0),
    ("verify",): (lambda f, d: [f.ledger, "--trust", f.trust, "--checkpoint", f.checkpoint], "valid", 0),
    ("show",): (lambda f, d: [f.ledger, "S1", "--trust", f.trust], "valid", 0),
    ("items",): (lambda f, d: [f.ledger, "--trust", f.trust], "valid", 0),
    ("repair",): (lambda f, d: [f.ledger, "--checkpoint", f.checkpoint], "intact", 0),
    ("index",): (lambda f, d: [f.ledger, "--trust", f.trust], None, 0),
    ("checkpoint",): (lambda f, d: [f.ledger, "--key", _operator_key(d), "-o", d / "cp.txt"], None, 0),
    ("keygen",): (lambda f, d: ["--name", "example.com/ledger", "-o", d / "k.pem"], None, 0),
    ("consistency",): (lambda f, d: [f.checkpoint_3, f.checkpoint, "--proof", f.proof_3_4, "--trust", f.trust],
                       "extends", 0),
    ("evidence", "verify"): (lambda f, d: [f.split_view, "--trust", f.trust], "misbehaviour_proven", 0),
    ("evidence", "fork"): (lambda f, d: [f.ledger, "--checkpoint", f.checkpoint, "-o", d / "f.ev"], "no_fork", 1),
    ("proof", "export"): (lambda f, d: [f.ledger, "S1", "--checkpoint", f.checkpoint, "-o", d / "S1.stproof"],
                          None, 0),
    ("proof", "verify"): (lambda f, d: [f.bundle, "--trust", f.trust], "valid", 0),
    ("proof", "show"): (lambda f, d: [f.bundle], None, 0),
    ("proof", "report"): (lambda f, d: [f.bundle, "--trust", f.trust, "-o", d / "S1.html"], "valid", 0),
    ("proof", "annex"): (lambda f, d: [f.bundle, "--trust", f.trust, "--format", "us-cbp"], "valid", 0),
    ("init",): (lambda f, d: [d / "new.ledger", "--origin", "example.com/ledger", "--trust", f.trust], None, 0),
    ("copy",): (lambda f, d: [f.ledger, d / "copy.ledger", "--trust", f.trust], None, 0),
    ("witness", "keygen"): (lambda f, d: ["--name", "witness.example/w1", "-o", d / "w.pem"], None, 0),
    ("witness", "serve"): (lambda f, d: ["--key", _witness_key(d), "--name", "witness.example/w1", "--logs",
                                         _logs(d), "--state", d / "state", "--check"], None, 0),
    ("publish",): (lambda f, d: [f.ledger, d / "site", "--checkpoint", f.checkpoint], None, 0),
    ("proof", "fetch"): (lambda f, d: [_published(f, d), "S1", "--trust", f.trust, "-o", d / "S1.stproof"], None, 0),
}


def _logs(d: Path) -> Path:
    from world import TRUST
    (d / "logs.txt").write_text(f"log {TRUST.operators[0].text()}\n", encoding="utf-8")
    return d / "logs.txt"


def _published(f: SmallFiles, d: Path) -> str:
    """The file:// URL of the small ledger published (``stonetrail publish``) in ``d``."""
    publish_log(f.ledger, d / "site", f.checkpoint.read_text(encoding="utf-8"))
    return (d / "site").as_uri()


def _witness_key(d: Path) -> Path:
    path = d / "witness.pem"
    keyfile.save_private_key(path, key("witness.example/w1"))
    return path


def _operator_key(d: Path) -> Path:
    path = d / "operator.pem"
    keyfile.save_private_key(path, key("operator"))
    return path


def test_the_table_names_every_command() -> None:
    assert sorted(GOOD) == sorted(COMMANDS) == sorted(BAD), "give every command --json and a line in GOOD and BAD"


@pytest.mark.parametrize("command", sorted(GOOD), ids=" ".join)
def test_json_on_good_input_parses(files: SmallFiles, tmp_path: Path, command: tuple[str, ...]) -> None:
    make, verdict, code = GOOD[command]
    result = run(*command, *make(files, tmp_path), "--json")
    data = json.loads(result.stdout)
    assert result.exit_code == code and "error" not in data, result.output
    if verdict is not None:
        assert data["verdict"] == verdict


#: Per command: arguments whose first file is missing (exit 2, input.missing) or, without a file argument,
#: another error: (arguments, exit code, error code, the file named).
_Bad = Callable[[SmallFiles, Path], tuple[list[str | Path], int, str, Path | None]]
BAD: dict[tuple[str, ...], _Bad] = {
    ("demo",): lambda f, d: ([f.ledger.parent], 3, "store.exists", f.ledger.parent),  # not empty
    ("keygen",): lambda f, d: (["--name", "example.com/ledger", "-o", f.trust], 3, "key.exists", f.trust),
    ("verify",): lambda f, d: ([d / "none.ledger", "--trust", f.trust], 2, "input.missing", d / "none.ledger"),
    ("show",): lambda f, d: ([d / "none.ledger", "S1"], 2, "input.missing", d / "none.ledger"),
    ("items",): lambda f, d: ([d / "none.ledger"], 2, "input.missing", d / "none.ledger"),
    ("repair",): lambda f, d: ([d / "none.ledger"], 2, "input.missing", d / "none.ledger"),
    ("index",): lambda f, d: ([d / "none.ledger", "--trust", f.trust], 2, "input.missing", d / "none.ledger"),
    ("checkpoint",): lambda f, d: ([d / "none.ledger", "--key", _operator_key(d)], 2, "input.missing",
                                   d / "none.ledger"),
    ("consistency",): lambda f, d: ([d / "none.txt", f.checkpoint, "--proof", f.proof_3_4, "--trust", f.trust], 2,
                                    "input.missing", d / "none.txt"),
    ("evidence", "verify"): lambda f, d: ([d / "none.ev", "--trust", f.trust], 2, "input.missing", d / "none.ev"),
    ("evidence", "fork"): lambda f, d: ([d / "none.ledger", "--checkpoint", f.checkpoint, "-o", d / "f.ev"], 2,
                                        "input.missing", d / "none.ledger"),
    ("proof", "export"): lambda f, d: ([d / "none.ledger", "S1"], 2, "input.missing", d / "none.ledger"),
    ("proof", "verify"): lambda f, d: ([d / "none.stproof", "--trust", f.trust], 2, "input.missing",
                                       d / "none.stproof"),
    ("proof", "show"): lambda f, d: ([d / "none.stproof"], 2, "input.missing", d / "none.stproof"),
    ("proof", "report"): lambda f, d: ([d / "none.stproof", "--trust", f.trust], 2, "input.missing",
                                       d / "none.stproof"),
    ("proof", "annex"): lambda f, d: ([d / "none.stproof", "--trust", f.trust, "--format", "eu-dds"], 2,
                                      "input.missing", d / "none.stproof"),
    ("init",): lambda f, d: ([f.ledger, "--origin", "example.com/ledger", "--trust", f.trust], 3, "store.exists",
                             f.ledger),
    ("copy",): lambda f, d: ([f.ledger, f.ledger, "--trust", f.trust], 3, "store.exists", f.ledger),
    ("witness", "keygen"): lambda f, d: (["--name", "witness.example/w1", "-o", f.trust], 3, "key.exists", f.trust),
    ("witness", "serve"): lambda f, d: (["--key", _operator_key(d), "--name", "w", "--logs", d / "none.txt",
                                         "--state", d / "state"], 2, "input.missing", d / "none.txt"),
    ("publish",): lambda f, d: ([d / "none.ledger", d / "site"], 2, "input.missing", d / "none.ledger"),
    ("proof", "fetch"): lambda f, d: ([(d / "none").as_uri(), "S1", "--trust", f.trust, "-o", d / "x"], 3,
                                      "fetch.unavailable", None),
}


@pytest.mark.parametrize("command", sorted(BAD), ids=" ".join)
def test_json_errors_parse_and_keep_their_exit_code(files: SmallFiles, tmp_path: Path,
                                                    command: tuple[str, ...]) -> None:
    args, exit_code, code, file = BAD[command](files, tmp_path)
    text = run(*command, *args)
    as_json = run(*command, *args, "--json")
    assert as_json.exit_code == text.exit_code == exit_code, (text.output, as_json.output)
    error = json.loads(as_json.stdout)["error"]
    assert (error["code"], error["file"]) == (code, None if file is None else str(file))
    assert error["message"] and f"[{code}]" in text.stderr and text.stdout == ""


def test_a_directory_given_for_a_file_is_named_not_a_file(files: SmallFiles, tmp_path: Path) -> None:
    for args in (["verify", tmp_path, "--trust", files.trust], ["verify", files.ledger, "--trust", tmp_path]):
        result = run(*args, "--json")
        error = json.loads(result.stdout)["error"]
        assert result.exit_code == 2 and (error["code"], error["file"]) == ("input.not_a_file", str(tmp_path))


def test_only_an_error_of_exit_1_carries_a_verdict(files: SmallFiles) -> None:
    """Exit 1 is an invalid verdict, whether a report or an error says it (an error's ``"verdict": "invalid"``:
    tests/test_incremental_audit.py); a usage or input error says no verdict."""
    for args in (["--bogus"], ["--trust", files.ledger]):
        result = run("verify", files.ledger, *args, "--json")
        assert result.exit_code == 2 and "verdict" not in json.loads(result.stdout), result.output


def test_an_output_file_that_exists_is_the_errors_file(files: SmallFiles, tmp_path: Path) -> None:
    """store.exists names the file that exists, whichever command refuses it (it was null for some)."""
    taken = tmp_path / "taken"
    taken.write_text("keep me\n", encoding="utf-8")
    for args in (["proof", "export", files.ledger, "S1", "--checkpoint", files.checkpoint, "-o", taken],
                 ["checkpoint", files.ledger, "--key", _operator_key(tmp_path), "-o", taken]):
        result = run(*args, "--json")
        error = json.loads(result.stdout)["error"]
        assert (error["code"], error["file"]) == ("store.exists", str(taken)), result.output
    assert taken.read_text(encoding="utf-8") == "keep me\n"


def test_a_copy_error_names_the_side_at_fault(files: SmallFiles, tmp_path: Path) -> None:
    """copy reads one ledger and writes another: its JSON error's file is the one that failed (the source was
    named for every error, a target that cannot be written included)."""
    target = tmp_path / "no-such-dir" / "c.ledger"
    cases: list[tuple[list[str | Path], int, Path]] = [
        ([files.ledger, target, "--trust", files.trust], 3, target),  # the target cannot be written
        ([files.bad_ledger, tmp_path / "c.ledger", "--trust", files.trust], 3, files.bad_ledger),  # damaged source
        ([files.ledger, tmp_path / "d.ledger", "--trust", VECTORS / "trust.keys"], 1, files.ledger)]  # its rules
    for args, exit_code, file in cases:
        result = run("copy", *args, "--json")
        error = json.loads(result.stdout)["error"]
        assert (result.exit_code, error["file"]) == (exit_code, str(file)), result.output
    assert not target.parent.exists() and not list(tmp_path.glob("*.ledger*"))


def test_a_wrong_trust_file_is_a_json_error_naming_it(files: SmallFiles, tmp_path: Path) -> None:
    (tmp_path / "t.keys").write_text("operator nonsense\n", encoding="utf-8")
    commands: list[list[str | Path]] = [["verify", files.ledger], ["proof", "verify", files.bundle],
                                        ["show", files.ledger, "S1"]]
    for command in commands:
        result = run(*command, "--trust", tmp_path / "t.keys", "--json")
        error = json.loads(result.stdout)["error"]
        assert result.exit_code == 2 and error["file"] == str(tmp_path / "t.keys"), result.output
        assert error["code"].startswith(("trust.", "key.", "note."))


def test_a_command_line_click_refuses_is_a_json_error_too(files: SmallFiles) -> None:
    for args in (["verify", files.ledger, "--json"], ["verify", files.ledger, "--trust", files.trust, "--bogus",
                                                     "--json"], ["bogus", "--json"]):
        result = run(*args)
        assert result.exit_code == 2 and json.loads(result.stdout)["error"]["code"] == "usage", result.output
    assert asks_for_json(["proof", "show", "--", "--json"]) is False  # after "--" it is a file name


def test_a_valid_json_report_and_an_invalid_one(files: SmallFiles) -> None:
    bad = run("show", files.bad_ledger, "S1", "--trust", files.trust, "--json")
    data = json.loads(bad.stdout)
    assert bad.exit_code == 1 and data["verdict"] == "invalid" and data["findings_elsewhere"] + len(data["findings"])
    good = json.loads(run("show", files.ledger, "S1", "--json").stdout)
    assert good["verdict"] == "unverified" and [row["kind"] for row in good["history"]] == ["mined", "transferred"]
    assert good["origin"] == {"BW": 900} and good["history"][-1]["holder"] == "trader-b"


def test_verify_names_the_one_checkpoint_given_when_it_does_not_match(files: SmallFiles) -> None:
    """The text report said nothing of a single --checkpoint that did not match (a new user's review: with the
    wrong trust file, its note.unverified was lost among a thousand findings); it has a line of its own."""
    other = run("verify", files.ledger, "--trust", files.trust, "--checkpoint", files.other_checkpoint)
    assert other.exit_code == 1 and f"checkpoint: {files.other_checkpoint}: tree size 4, does not match (" \
        in other.stdout, other.output
    same = run("verify", files.ledger, "--trust", files.trust, "--checkpoint", files.checkpoint)
    assert same.exit_code == 0 and "checkpoint: signed by the operator, tree size 4, matches the whole log" \
        in same.stdout, same.output


def test_the_wrong_file_or_form_is_named(files: SmallFiles, tmp_path: Path) -> None:
    """A new user's review: a trust file given as a checkpoint, a checkpoint with Windows line endings and a
    policy key typed as its flag were each refused with a message that did not say so."""
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes(files.checkpoint.read_bytes().replace(b"\n", b"\r\n"))
    policy = tmp_path / "p.txt"
    policy.write_text("deny-origin = RU\n")
    for args, said in ((["--checkpoint", files.trust], "it is a trust file, not a checkpoint"),
                       (["--checkpoint", files.proof_3_4], "it is a consistency proof, not a checkpoint"),
                       (["--checkpoint", crlf], "Windows line endings"),
                       (["--policy", policy], "did you mean deny_origin?")):
        told = run("verify", files.ledger, "--trust", files.trust, *args)
        assert told.exit_code == 2 and said in told.stderr, told.output


def test_a_key_or_trust_file_of_another_kind_is_named(files: SmallFiles, tmp_path: Path) -> None:
    """A second new user's review: a ledger given as --key said only "not an unencrypted PEM private key" (its
    JSON error naming no file), a checkpoint given as --trust "expected '<operator|authority> ...'"."""
    for key_file, kind in ((files.ledger, "a ledger file"), (files.trust, "a trust file"),
                           (files.checkpoint, "a checkpoint")):
        told = run("checkpoint", files.ledger, "--key", key_file, "-o", tmp_path / "cp.txt", "--json")
        error = json.loads(told.stdout)["error"]
        assert told.exit_code == 2 and (error["code"], error["file"]) == ("key.pem", str(key_file)), told.output
        assert f"it is {kind}, not a private key" in error["message"]
    trusted = run("verify", files.ledger, "--trust", files.checkpoint)
    assert trusted.exit_code == 2 and "it is a checkpoint, not a trust file" in trusted.stderr, trusted.output


def test_init_warns_of_an_origin_the_trust_file_pins_no_operator_key_under(files: SmallFiles, tmp_path: Path) -> None:
    from world import ORIGIN
    foreign = run("init", tmp_path / "a.ledger", "--origin", "example.com/stones", "--trust", files.trust)
    assert foreign.exit_code == 0 and "pins no operator key under example.com/stones" in foreign.stderr
    own = run("init", tmp_path / "b.ledger", "--origin", ORIGIN, "--trust", files.trust)
    assert own.exit_code == 0 and own.stderr == "", own.output


def test_a_witness_that_cannot_listen_is_an_io_error(tmp_path: Path) -> None:
    """A port in use was a usage error (exit 2); it is the machine's, not the command line's: exit 3."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        told = run("witness", "serve", "--key", _witness_key(tmp_path), "--name", "witness.example/w1", "--logs",
                   _logs(tmp_path), "--state", tmp_path / "state", "--listen", f"127.0.0.1:{port}", "--json")
    assert told.exit_code == 3 and json.loads(told.stdout)["error"]["code"] == "witness.listen", told.output


def test_items_lists_kind_state_holder_and_records(files: SmallFiles) -> None:
    listed = json.loads(run("items", files.ledger, "--json").stdout)
    assert listed["verdict"] == "unverified" and listed["findings"] is None  # nothing was checked
    assert listed["items"] == [
        {"item": "S1", "type": "stone", "nature": "natural", "state": "live", "holder": "trader-b",
         "owner": "trader-b", "mass_mct": 900, "records": 2, "latest": 3}]
    shown = json.loads(run("show", files.ledger, "S1", "--json").stdout)
    assert shown["history"][-1]["holder"] == listed["items"][0]["holder"]  # one answer to "who holds it"
    text = run("items", files.ledger, "--trust", files.trust)
    assert text.exit_code == 0 and "S1    stone   live" in text.output
    assert "1 item; valid: the whole ledger passes" in text.output  # the word of show and verify
    bad = run("items", files.bad_ledger, "--trust", files.trust)
    assert bad.exit_code == 1 and "INVALID: 1 part of the file cannot be read" in bad.stdout  # a damaged record
    assert "store.checksum_mismatch" in bad.stderr


def test_consistency_json_names_the_evidence_it_wrote(files: SmallFiles, tmp_path: Path) -> None:
    """--json and --evidence-out together (they used to be refused): the verdict, and the evidence written."""
    result = run("consistency", files.checkpoint, files.other_checkpoint, "--proof", files.proof_4_4,
                 "--trust", files.trust, "--json", "--evidence-out", tmp_path / "e.ev")
    data = json.loads(result.stdout)
    assert result.exit_code == 1 and data["verdict"] == "not_consistent", result.output
    assert data["evidence"]["file"] == str(tmp_path / "e.ev") and (tmp_path / "e.ev").is_file()
    assert data["evidence"]["proves"][0].startswith("split view:")


# --- progress ----------------------------------------------------------------------------------------------------

def test_the_library_reports_progress(files: SmallFiles) -> None:
    calls: list[tuple[int, int]] = []
    report = check_ledger(files.ledger, Trust.parse(files.trust.read_text()), progress=lambda *a: calls.append(a))
    assert report.ok and [done for done, _ in calls] == [1, 2, 3, 4] and calls[-1] == (4, 4)
    assert all(done <= total for done, total in calls)  # the total is estimated from the bytes left


def test_signing_and_exporting_report_progress_too(files: SmallFiles) -> None:
    from ledger import checkpoint_file, export_bundle
    from world import key

    calls: list[tuple[int, int]] = []
    export_bundle(files.ledger, "S1", files.checkpoint.read_text(), progress=lambda *a: calls.append(a))
    assert calls and calls[-1] == (4, 4)
    calls.clear()
    assert checkpoint_file(files.ledger, key("operator"), progress=lambda *a: calls.append(a))
    assert calls and calls[-1] == (4, 4)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_shows_after_a_second_on_a_terminal_only() -> None:
    now, terminal, pipe = [0.0], _Terminal(), io.StringIO()
    bar = Progress("records", terminal, clock=lambda: now[0])
    bar(100, 1000)
    assert terminal.getvalue() == ""  # under a second: nothing
    now[0] = 2.0
    bar(500, 1000)
    shown = terminal.getvalue()
    assert "500/1,000 records" in shown and "250 records/s" in shown and "0:00:02 left" in shown
    bar.close()
    assert terminal.getvalue().endswith("\r\x1b[K")  # the line cleared
    now[0] = 4.0
    bar(100, 1000)  # the work began again: its rate, not the rate since the first start
    assert terminal.getvalue().endswith("100/1,000 records, 0 records/s, time left unknown\x1b[K")
    now[0] = 5.0
    bar(300, 1000)
    assert terminal.getvalue().endswith("300/1,000 records, 300 records/s, 0:00:02 left\x1b[K")
    estimate, times = _Terminal(), iter([0.0, 2.0, 2.5, 3.0])
    guessing = Progress("records", estimate, clock=lambda: next(times))
    guessing(100, 1100)
    guessing(500, 1050)  # the total moved: an estimate, said so
    assert estimate.getvalue().endswith("500/~1,050 records, 200 records/s, 0:00:02 left\x1b[K")
    guessing(1000, 1000)  # the end: exact
    assert estimate.getvalue().endswith("1,000/1,000 records, 333 records/s, 0:00:00 left\x1b[K")
    labelled, times = _Terminal(), iter([0.0, 2.0])
    Progress("records", labelled, clock=lambda: next(times), doing="auditing")(500, 1000)
    assert labelled.getvalue().startswith("\rauditing [")  # which pass of a command that reads the ledger twice
    piped = Progress("records", pipe, clock=lambda: now[0] + 10)
    piped(500, 1000)
    piped.close()
    assert pipe.getvalue() == ""


def test_a_piped_command_prints_no_progress(files: SmallFiles) -> None:
    result = run("verify", files.ledger, "--trust", files.trust)
    assert result.exit_code == 0 and result.stderr == ""


@pytest.mark.parametrize(("how", "said"), [(signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "Ctrl-C")])
def test_a_witness_stopped_says_so_and_exits_0(tmp_path: Path, how: int, said: str) -> None:
    """A new user's review: `witness serve` ended on Ctrl-C or SIGTERM without a word."""
    command = [sys.executable, "-c", "from stonetrail_cli import run; run()", "witness", "serve",
               "--key", str(_witness_key(tmp_path)), "--name", "witness.example/w1", "--logs", str(_logs(tmp_path)),
               "--state", str(tmp_path / "state"), "--listen", "127.0.0.1:0", "--json"]
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert server.stdout is not None and json.loads(server.stdout.readline())["url"].startswith("http://127.")
        server.send_signal(how)
        _, err = server.communicate(timeout=30)
    finally:
        server.kill()
    assert server.returncode == 0 and f"witness stopped ({said}); its state is kept in" in err, err
