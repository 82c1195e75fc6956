"""docs/embedding.md must run: its Python blocks are executed in order, in one namespace, in a fresh directory, and
its command lines after them."""

from __future__ import annotations

import os
import re
import shlex
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ledger.storage import BATCH_MAGIC, FRAME_MAGIC, scan
from stonetrail_cli.main import main

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "embedding.md"
LIVE = re.compile(r"\blive\b")


def _run_the_guide(directory: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 5
    monkeypatch.chdir(directory)
    namespace: dict[str, object] = {}
    for number, block in enumerate(blocks, start=1):
        exec(compile(block, f"{GUIDE}#block{number}", "exec"), namespace)


def _command_lines() -> list[list[str]]:
    """The guide's last shell block (section 7), each line as arguments after ``stonetrail``."""
    blocks = re.findall(r"```sh\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)
    lines = [shlex.split(line, comments=True) for line in blocks[-1].splitlines() if line.strip()]
    assert lines and all(words[0] == "stonetrail" for words in lines)
    return [words[1:] for words in lines]


def _stonetrail(args: list[str]) -> Result:
    return CliRunner().invoke(main, args)


def test_the_embedding_guide_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _run_the_guide(tmp_path, monkeypatch)
    written = set(os.listdir(tmp_path))  # the guide wrote its files here, not beside the repository
    assert {"stones.ledger", "trust.keys", "checkpoint.txt", "operator.pem"} <= written


def test_the_stolen_stone_is_never_exported_live(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 9: after the guide's walk-through (the stone is recorded stolen), its own command lines export a bundle
    that says stolen; a checkpoint.txt still from before the theft (written by hand, as a user may) is refused with
    the command that signs a fresh one, and that command makes the export say stolen too. No path says live."""
    _run_the_guide(tmp_path, monkeypatch)
    checkpoint, export, verify = _command_lines()
    before_theft = sorted(tmp_path.glob("checkpoint-*.txt"))
    assert len(before_theft) == 1
    shutil.copyfile(before_theft[0], tmp_path / "checkpoint.txt")  # the published checkpoint misses the theft

    stale = _stonetrail(export)
    assert stale.exit_code == 1 and "[checkpoint.stale]" in stale.output, stale.output
    assert "stonetrail checkpoint stones.ledger --key OPERATOR.pem --trust TRUST" in stale.output
    assert not Path(export[export.index("-o") + 1]).exists()
    explicit = _stonetrail([*export, "--checkpoint", str(before_theft[0])])
    assert explicit.exit_code == 1 and "[checkpoint.stale]" in explicit.output

    for args in (checkpoint, export):  # the guide's lines: publish a fresh checkpoint, export under it
        result = _stonetrail(args)
        assert result.exit_code == 0, (args, result.output)
    older = _stonetrail([*export[:export.index("-o")], "-o", "older.stproof", "--checkpoint", str(before_theft[0])])
    assert older.exit_code == 1 and "leave out --checkpoint to export under" in older.output, older.output
    shown = _stonetrail(verify)
    assert shown.exit_code == 0, shown.output
    assert "stolen" in shown.output and "retired" in shown.output and not LIVE.search(shown.output), shown.output
    assert (tmp_path / "checkpoint.txt").read_text() != before_theft[0].read_text()


def test_an_older_view_is_exported_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--as-of exports under the checkpoint before the theft, and says which later record it leaves out."""
    _run_the_guide(tmp_path, monkeypatch)
    old = sorted(tmp_path.glob("checkpoint-*.txt"))[0]
    result = _stonetrail(["proof", "export", "stones.ledger", "R-1-A", "-o", "then.stproof", "--as-of", str(old)])
    assert result.exit_code == 0, result.output
    assert "warning: as of tree size 10 only" in result.output and "record 10" in result.output
    both = _stonetrail(["proof", "export", "stones.ledger", "R-1-A", "-o", "x.stproof", "--as-of", str(old),
                        "--checkpoint", "checkpoint.txt"])
    assert both.exit_code == 2 and not Path("x.stproof").exists()
    sibling = _stonetrail(["proof", "export", "stones.ledger", "R-1-B", "-o", "b.stproof", "--checkpoint", str(old)])
    assert sibling.exit_code == 0, sibling.output  # the theft is no record of R-1-B: the old checkpoint covers it


def _files(directory: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(directory.iterdir()) if p.is_file()}


def test_running_the_guide_again_in_its_directory_stops_before_changing_anything(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """New-user trial 9: run again in the same folder, the guide overwrote trust.keys with new keys, then failed on
    `operator.pem exists`, leaving a trust file that no longer matched the ledger. Its first write now refuses."""
    _run_the_guide(tmp_path, monkeypatch)
    before = _files(tmp_path)
    with pytest.raises(FileExistsError) as again:
        _run_the_guide(tmp_path, monkeypatch)
    assert again.value.filename == "trust.keys"
    assert _files(tmp_path) == before


def test_the_guide_writes_a_batch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 9 item 9: the batch append API is in the guide, and the four enrolments it writes as one batch end
    in one frame that closes the batch (docs/format.md §8: STRB frames, then STR1)."""
    assert "ledger.append_batch(" in GUIDE.read_text(encoding="utf-8")
    _run_the_guide(tmp_path, monkeypatch)
    data = (tmp_path / "stones.ledger").read_bytes()
    magics = [data[frame.offset:frame.offset + 4] for frame in scan(tmp_path / "stones.ledger").frames]
    assert magics[:4] == [BATCH_MAGIC] * 3 + [FRAME_MAGIC] and BATCH_MAGIC not in magics[4:]
