"""Damaged input is never a quiet answer (issue 9, item 6): ``show`` on a damaged ledger warns and exits 1, an
item past the damage is unreadable (not unknown); ``stonetrail repair`` moves a torn tail aside, never deleting a
byte, and refuses damage in the middle or a cut below an issued checkpoint."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ledger import build_demo
from ledger.store import scan
from stonetrail_cli.main import main


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "out"
    build_demo(out)
    return out


def run(*args: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def _copy(demo: Path, tmp_path: Path) -> Path:
    """A copy of the demo's ledger, trust file and checkpoint in ``tmp_path``; returns the ledger's path."""
    for name in ("demo.ledger", "trust.keys", "checkpoint.txt"):
        shutil.copy(demo / name, tmp_path / name)
    return tmp_path / "demo.ledger"


def cut_short(ledger: Path, n: int = 7) -> bytes:
    """Cut the last ``n`` bytes off the file (an append that never completed); returns them."""
    data = ledger.read_bytes()
    ledger.write_bytes(data[:-n])
    return data[-n:]


def flip_early(ledger: Path, index: int = 5) -> int:
    """Flip a payload byte of frame ``index`` (its CRC no longer matches); returns the frame's offset."""
    frame = scan(ledger).frames[index]
    data = bytearray(ledger.read_bytes())
    data[frame.offset + 12 + len(frame.payload) // 2] ^= 0x01
    ledger.write_bytes(bytes(data))
    return frame.offset


# --- show --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("trusted", [False, True], ids=["unverified", "with --trust"])
def test_show_on_a_ledger_cut_short_warns_and_exits_1(demo: Path, tmp_path: Path, trusted: bool) -> None:
    ledger = _copy(demo, tmp_path)
    trust = ["--trust", tmp_path / "trust.keys"] if trusted else []
    intact = run("show", ledger, "R-00001-A", *trust)
    assert intact.exit_code == 0 and "warning" not in intact.stderr  # the neighbour: an intact file
    cut_short(ledger)
    result = run("show", ledger, "R-00001-A", *trust)
    assert result.exit_code == 1, result.output
    assert "warning" in result.stderr and "store.torn_tail" in result.stderr and "record 703" in result.stderr
    assert f"stonetrail repair {ledger}" in result.stderr
    assert "set into RING-0001" in result.stdout and "INVALID" in result.stdout  # the readable history, called so
    shown = run("show", ledger, "R-00001-A", *trust, "--json")
    assert shown.exit_code == 1
    report = json.loads(shown.stdout)
    assert report["verdict"] == "invalid" and [f["code"] for f in report["damage"]] == ["store.torn_tail"]


def test_an_item_past_the_damage_is_unreadable_not_unknown(demo: Path, tmp_path: Path) -> None:
    """The demo's last record creates the 67 Lesedi stones: cut short, the file no longer shows them, and
    ``show`` says why (item.unreadable, exit 1) instead of "no item" (item.unknown, exit 2)."""
    ledger = _copy(demo, tmp_path)
    unknown = run("show", ledger, "NO-SUCH-STONE")
    assert unknown.exit_code == 2 and "[item.unknown]" in unknown.output  # the neighbour: an intact file
    cut_short(ledger)
    result = run("show", ledger, "P-LESEDI-01", "--trust", tmp_path / "trust.keys")
    assert result.exit_code == 1 and "[item.unreadable]" in result.stderr, result.output
    assert "record 703" in result.stderr and "stonetrail repair" in result.stderr
    as_json = json.loads(run("show", ledger, "P-LESEDI-01", "--json").stdout)
    assert as_json["error"]["code"] == "item.unreadable"


def test_show_on_a_ledger_damaged_in_the_middle_names_the_damage(demo: Path, tmp_path: Path) -> None:
    ledger = _copy(demo, tmp_path)
    flip_early(ledger)
    result = run("show", ledger, "R-00001-A", "--trust", tmp_path / "trust.keys")
    assert result.exit_code == 1
    assert "store.checksum_mismatch" in result.stderr and "record 5" in result.stderr
    assert "stonetrail verify" in result.stderr and "None" not in result.output
