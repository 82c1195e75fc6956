"""Ctrl-C: a terminal sends SIGINT to the whole process group, the audit's worker processes included. An
interrupted `stonetrail verify --jobs 2` ends promptly with one line and exit 130 (or, interrupted after its
verdict, with that verdict printed), never hangs, prints no traceback and leaves no worker running
(docs/adr/0030-interrupted-exits-130.md; a new-user review hung 3 runs in 36 and left workers re-parented to
init)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ledger._pool import worker_pool
from ledger.errors import StorageError

_RUN = "from stonetrail_cli import run; run()"


def _leftovers(marker: str) -> list[str]:
    """Command lines of the processes still running that name ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                line = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if marker in line and _RUN in line:
                found.append(line)
    return found


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc for leftover processes")
def test_an_interrupted_verify_ends_at_once_with_one_line_and_leaves_no_worker(demo: Path, tmp_path: Path) -> None:
    ledger = tmp_path / "interrupted.ledger"
    shutil.copy(demo / "demo.ledger", ledger)
    command = [sys.executable, "-c", _RUN, "verify", str(ledger), "--trust", str(demo / "trust.keys"), "--jobs", "2"]
    started = time.monotonic()
    subprocess.run(command, capture_output=True, check=True, timeout=120)
    whole = time.monotonic() - started
    outcomes = set()
    for step in range(12):  # from the imports to the verdict
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                   preexec_fn=_as_from_a_terminal)
        time.sleep(whole * (0.15 + 0.07 * step))
        os.killpg(process.pid, signal.SIGINT)  # as a terminal does: the whole group
        out, err = process.communicate(timeout=60)  # a hang fails here
        if process.returncode == -signal.SIGINT:  # interrupted as it exited, after its verdict: a shell says 130
            assert out.decode().rstrip().endswith("verdict:   valid"), (step, out, err)
        else:
            assert process.returncode in (0, 130), (step, process.returncode, err)
        assert b"Traceback" not in err, (step, err.decode())
        if process.returncode == 130 and err:
            assert err.decode().strip().splitlines()[-1] == "stonetrail: error: interrupted (Ctrl-C) [aborted]", err
        outcomes.add(process.returncode)
        deadline = time.monotonic() + 10
        while _leftovers(str(ledger)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _leftovers(str(ledger)), (step, _leftovers(str(ledger)))
    assert 130 in outcomes  # some interrupts landed while it ran


def _as_from_a_terminal() -> None:
    """SIGINT as a command started from a terminal has it (the default action): a suite started in the background
    (``cmd &``, nohup) passes its children SIGINT ignored, and an ignored SIGINT interrupts nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _die() -> None:
    os._exit(9)


def test_a_worker_that_dies_is_a_storage_error_and_no_worker_is_left() -> None:
    with pytest.raises(StorageError) as died, worker_pool(2) as pool:
        pool.submit(_die).result()
    assert died.value.code == "audit.worker_died" and "--jobs" in str(died.value)
    import multiprocessing
    assert not multiprocessing.active_children()


def test_ctrl_c_that_python_wrapped_while_a_command_loads_is_still_an_interrupt(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """CI caught it: SIGINT inside a dataclass field's ``__set_name__``, while `verify` loaded its modules, came out
    as RuntimeError (from KeyboardInterrupt) and a traceback, exit 1. It is an interrupt: one line, exit 130."""
    import importlib

    from stonetrail_cli import _lazy, by_interrupt
    from stonetrail_cli.main import main

    def interrupted(name: str, package: str | None = None) -> object:
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise RuntimeError("Error calling __set_name__ on 'Field' instance") from exc

    monkeypatch.delitem(main.commands, "verify", raising=False)  # as at the start: not loaded yet
    monkeypatch.setattr(_lazy, "importlib", type(importlib)("fake"))
    monkeypatch.setattr(_lazy.importlib, "import_module", interrupted, raising=False)
    with pytest.raises(SystemExit) as ended:
        main(["verify", "--help"])
    assert ended.value.code == 130
    assert capsys.readouterr().err.strip() == "stonetrail: error: interrupted (Ctrl-C) [aborted]"
    assert by_interrupt(RuntimeError()) is False


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_ctrl_c_while_the_tool_loads_is_reported_as_once_it_has(monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str],
                                                               as_json: bool) -> None:
    """A new user's review: in the first fraction of a second, `verify --json` answered Ctrl-C in text on stderr."""
    import stonetrail_cli

    class Interrupting:
        def find_spec(self, name: str, *_: object) -> None:
            if name == "stonetrail_cli.main":
                raise KeyboardInterrupt

    monkeypatch.delitem(sys.modules, "stonetrail_cli.main")
    monkeypatch.setattr(sys, "meta_path", [Interrupting(), *sys.meta_path])
    monkeypatch.setattr(sys, "argv", ["stonetrail", "verify", "x.ledger", *(["--json"] if as_json else [])])
    with pytest.raises(SystemExit) as ended:
        stonetrail_cli.run()
    out, err = capsys.readouterr()
    assert ended.value.code == 130
    if as_json:
        assert json.loads(out) == {"error": {"code": "aborted", "message": "interrupted (Ctrl-C)", "file": None}}
        assert err == ""
    else:
        assert err == "stonetrail: error: interrupted (Ctrl-C) [aborted]\n" and out == ""


def _terminated_at_moments(command: list[str], fresh: Path, moments: int) -> dict[int, list[set[str]]]:
    """Run ``command`` ``moments`` times, each given SIGTERM (``kill PID``: the process alone) a little later, from
    its imports to its end: for each exit code, what was left in ``fresh`` (emptied before each run). Every run
    ends within a minute, prints no traceback, and one that exits 143 says so in one line."""
    started = time.monotonic()
    subprocess.run(command, capture_output=True, check=True, timeout=120)
    whole = time.monotonic() - started
    left: dict[int, list[set[str]]] = {}
    for step in range(moments):
        shutil.rmtree(fresh, ignore_errors=True)
        fresh.mkdir()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(whole * (0.1 + 0.9 * step / moments))
        process.terminate()
        _, err = process.communicate(timeout=60)  # a hang fails here
        assert b"Traceback" not in err, (step, err.decode())
        if process.returncode == 143:
            assert err.decode().strip().splitlines()[-1] == "stonetrail: error: terminated (SIGTERM) [aborted]", err
        else:  # ended before the tool's handler was set, or after the command: as any process (-15), or done (0)
            assert process.returncode in (0, -signal.SIGTERM), (step, process.returncode, err)
        left.setdefault(process.returncode, []).append({p.name for p in fresh.iterdir()})
    return left


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc for leftover processes")
def test_sigterm_stops_a_verify_as_ctrl_c_does_and_leaves_no_worker(demo: Path, tmp_path: Path) -> None:
    """`kill`, `timeout` and service managers send SIGTERM to the tool alone: it ends as Ctrl-C ends it, exit 143
    (128 + SIGTERM), and its audit's workers go with it."""
    ledger = tmp_path / "terminated.ledger"
    shutil.copy(demo / "demo.ledger", ledger)
    command = [sys.executable, "-c", _RUN, "verify", str(ledger), "--trust", str(demo / "trust.keys"), "--jobs", "2"]
    left = _terminated_at_moments(command, tmp_path / "unused", 8)
    assert 143 in left
    deadline = time.monotonic() + 10
    while _leftovers(str(ledger)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _leftovers(str(ledger))


def test_sigterm_stops_a_copy_and_leaves_no_partial_file(demo: Path, tmp_path: Path) -> None:
    """Found in review: SIGTERM during `copy` left TARGET.XXXX.partial behind; now the copy cleans up as on
    Ctrl-C: either the whole copy with its index, or nothing."""
    target = tmp_path / "copy" / "copied.ledger"
    target.parent.mkdir()
    command = [sys.executable, "-c", _RUN, "copy", str(demo / "demo.ledger"), str(target),
               "--trust", str(demo / "trust.keys")]
    left = _terminated_at_moments(command, target.parent, 10)
    assert 143 in left
    # a SIGTERM as the copy ends, after its rename, leaves the whole copy: never a part of one (.partial)
    whole = {"copied.ledger", "copied.ledger.index"}
    assert all(files in (set(), whole, {"copied.ledger"}) for files in left[143]), left
    assert all(files == {"copied.ledger", "copied.ledger.index"} for files in left.get(0, [])), left


def test_an_interrupt_after_a_json_document_leaves_stdout_one_document(capsys: pytest.CaptureFixture[str]) -> None:
    """Found in review: Ctrl-C right after `--json` output appended a second JSON document (the error) to stdout,
    which a script's parser refuses; the error goes to stderr, one line, and the exit code says interrupted."""
    import click

    from stonetrail_cli._common import _click_error, _print_json
    from stonetrail_cli._output import command_run

    with command_run(["verify", "x.ledger", "--json"]), pytest.raises(SystemExit) as ended:
        _print_json({"verdict": "valid"})
        _click_error(click.Abort())
    out, err = capsys.readouterr()
    assert ended.value.code == 130 and json.loads(out) == {"verdict": "valid"}
    assert err == "stonetrail: error: interrupted (Ctrl-C) [aborted]\n"
