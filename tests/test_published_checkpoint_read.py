"""``show --trust`` and ``items --trust`` check the ledger file against the checkpoint published beside it
(``checkpoint.txt``) when a pinned operator key signed it: a file rewritten after its operator signed it, with as
many records and every record valid (two independent records swapped: no key needed), is not called valid (a
breaker's review: it was "verified", exit 0). Through the streaming audit and through the replay alike; a
checkpoint no pinned key signed is passed over, with a note."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ledger import checkpoint_file
from ledger.storage import FileStore, scan
from stonetrail_cli.main import main
from world import key

STONE = "R-KAROWE-0002-A"


def _folder(demo: Path, tmp_path: Path, *, swapped: bool) -> Path:
    """The demo's ledger (without its index), trust file and published checkpoint; ``swapped``: records 694 and
    695, independent, swapped (every record still valid, the checkpoint's root no longer the file's)."""
    for name in ("trust.keys", "checkpoint.txt"):
        shutil.copy(demo / name, tmp_path / name)
    read = scan(demo / "demo.ledger")
    payloads = [f.payload for f in read.frames]
    if swapped:
        payloads[694], payloads[695] = payloads[695], payloads[694]
    with FileStore.create(tmp_path / "demo.ledger", read.origin) as store:
        for payload in payloads:
            store.append(payload)
    return tmp_path / "demo.ledger"


def _run(*args: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def _through(monkeypatch: pytest.MonkeyPatch, replay: bool, run: Callable[[], Result]) -> Result:
    """``run()`` through the streaming audit, or (``replay``) through the replay it falls back on."""
    with monkeypatch.context() as patched:
        if replay:
            patched.setattr("stonetrail_cli.show._show_audited", lambda *_: None)
            patched.setattr("stonetrail_cli.items.audited", lambda *_: None)
        return run()


@pytest.mark.parametrize("replay", [False, True], ids=["audit", "replay"])
def test_a_file_rewritten_after_its_published_checkpoint_is_invalid(demo: Path, tmp_path: Path, replay: bool,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    ledger, trust = _folder(demo, tmp_path, swapped=True), tmp_path / "trust.keys"
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(ledger, alone / "demo.ledger")
    shutil.copy(trust, alone / "trust.keys")
    no_checkpoint = _through(monkeypatch, replay, lambda: _run("show", alone / "demo.ledger", STONE, "--trust",
                                                                alone / "trust.keys", "--json"))
    assert no_checkpoint.exit_code == 0 and json.loads(no_checkpoint.stdout)["verdict"] == "valid"  # its records
    shown = _through(monkeypatch, replay, lambda: _run("show", ledger, STONE, "--trust", trust, "--json"))
    assert shown.exit_code == 1, shown.output
    data = json.loads(shown.stdout)
    assert data["verdict"] == "invalid" and data["findings_elsewhere"] >= 1
    text = _through(monkeypatch, replay, lambda: _run("show", ledger, STONE, "--trust", trust))
    assert text.exit_code == 1 and "INVALID" in text.stdout and "checkpoint does not match" in text.stdout
    listed = _through(monkeypatch, replay, lambda: _run("items", ledger, "--trust", trust, "--json"))
    assert listed.exit_code == 1 and json.loads(listed.stdout)["verdict"] == "invalid"
    assert "checkpoint.root_mismatch" in {f["code"] for f in json.loads(listed.stdout)["findings"]}


@pytest.mark.parametrize("replay", [False, True], ids=["audit", "replay"])
def test_the_untouched_file_is_valid_and_a_checkpoint_no_pinned_key_signed_is_passed_over(
        demo: Path, tmp_path: Path, replay: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger, trust = _folder(demo, tmp_path, swapped=False), tmp_path / "trust.keys"
    for command in (["show", ledger, STONE], ["items", ledger]):
        got = _through(monkeypatch, replay, lambda c=command: _run(*c, "--trust", trust, "--json"))
        assert got.exit_code == 0 and json.loads(got.stdout)["verdict"] == "valid", got.output
        assert got.stderr == ""
    (tmp_path / "checkpoint.txt").write_text(checkpoint_file(ledger, key("stranger")))
    got = _through(monkeypatch, replay, lambda: _run("show", ledger, STONE, "--trust", trust, "--json"))
    assert got.exit_code == 0 and json.loads(got.stdout)["verdict"] == "valid", got.output
    assert "is not signed by an operator key the trust file pins" in got.stderr


def test_a_checkpoint_with_a_byte_order_mark_or_a_ledger_linked_from_elsewhere_is_checked_too(
        demo: Path, tmp_path: Path) -> None:
    """A breaker's review: a genuine checkpoint.txt that an editor saved with a UTF-8 byte-order mark was passed
    over in silence, and so was the one beside a ledger shown through a symbolic link from another folder."""
    ledger, trust = _folder(demo, tmp_path, swapped=True), tmp_path / "trust.keys"
    published = tmp_path / "checkpoint.txt"
    published.write_bytes(b"\xef\xbb\xbf" + published.read_bytes())
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "demo.ledger").symlink_to(ledger)
    for path in (ledger, elsewhere / "demo.ledger"):
        for command in (["show", path, STONE], ["items", path]):
            got = _run(*command, "--trust", trust, "--json")
            assert got.exit_code == 1 and json.loads(got.stdout)["verdict"] == "invalid", (command, got.output)


def test_a_fifo_given_as_the_ledger_is_refused_not_waited_on(tmp_path: Path, demo: Path) -> None:
    fifo = tmp_path / "ledger.fifo"
    os.mkfifo(fifo)
    for command in (["show", fifo, STONE], ["items", fifo]):
        got = _run(*command, "--trust", demo / "trust.keys")
        assert got.exit_code == 2 and "not_a_file" in got.output, got.output


def test_a_file_cut_short_of_its_published_checkpoint_is_named_so_in_the_hint(demo: Path, tmp_path: Path) -> None:
    """Not "is it this ledger's checkpoint?" (a breaker's review): the file lost records the checkpoint covers."""
    for name in ("trust.keys", "checkpoint.txt"):
        shutil.copy(demo / name, tmp_path / name)
    read = scan(demo / "demo.ledger")
    with FileStore.create(tmp_path / "demo.ledger", read.origin) as store:
        store.append_batch([f.payload for f in read.frames[:700]])
    got = _run("items", tmp_path / "demo.ledger", "--trust", tmp_path / "trust.keys")
    assert got.exit_code == 1 and "the file holds fewer records than the checkpoint covers" in got.stdout
    assert "is it this ledger's checkpoint" not in got.stdout


def test_the_checkpoint_beside_a_link_to_the_ledger_counts_too(demo: Path, tmp_path: Path) -> None:
    """A breaker's review: with the checkpoint beside a symbolic link to a ledger cut short elsewhere, show and
    items said valid (the checkpoint was looked for beside the link's target only)."""
    (tmp_path / "share").mkdir()
    (tmp_path / "audit").mkdir()
    read = scan(demo / "demo.ledger")
    with FileStore.create(tmp_path / "share" / "demo.ledger", read.origin) as store:
        store.append_batch([f.payload for f in read.frames[:702]])
    shutil.copy(demo / "checkpoint.txt", tmp_path / "audit" / "checkpoint.txt")
    (tmp_path / "audit" / "demo.ledger").symlink_to(tmp_path / "share" / "demo.ledger")
    for command in (["show", tmp_path / "audit" / "demo.ledger", STONE], ["items", tmp_path / "audit" / "demo.ledger"]):
        got = _run(*command, "--trust", demo / "trust.keys", "--json")
        assert got.exit_code == 1 and json.loads(got.stdout)["verdict"] == "invalid", (command, got.output)
    told = _run("verify", tmp_path / "audit" / "demo.ledger", "--trust", demo / "trust.keys", "--json")
    assert "fewer than the 704" in json.loads(told.stdout)["warnings"][0]
