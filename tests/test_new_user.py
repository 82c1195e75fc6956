"""The findings of issue 9's new-user trial (README and docs only), each as the mistake a user made and what the
command now says (the numbers are the trial's). Over the small files of tests/small_files.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from small_files import SmallFiles, small_files

from stonetrail_cli.main import main


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> SmallFiles:
    return small_files(tmp_path_factory.mktemp("newuser"))


# --- 5. the wrong file type: exit 2 whichever command was given it -------------------------------------------------

def _wrong_files(f: SmallFiles, d: Path) -> dict[str, Path]:
    (d / "empty.ledger").write_bytes(b"")
    return {"bundle": f.bundle, "trust file": f.trust, "checkpoint": f.checkpoint, "empty file": d / "empty.ledger",
            "evidence": f.split_view}


@pytest.mark.parametrize("what", ["bundle", "trust file", "checkpoint", "empty file", "evidence"])
def test_a_file_that_is_not_a_ledger_is_malformed_input(files: SmallFiles, tmp_path: Path, what: str) -> None:
    """Trial 5: `verify BUNDLE` and `verify empty.ledger` exited 3 ("I/O or storage error") where `proof verify
    LEDGER` exits 2; a file that is not a ledger at all is malformed input, exit 2, for every ledger command."""
    wrong = _wrong_files(files, tmp_path)[what]
    for args in (["verify", wrong, "--trust", files.trust], ["show", wrong, "S1"], ["items", wrong]):
        result = run(*args)
        assert result.exit_code == 2 and "[store.not_a_ledger]" in result.output, (args, result.output)
    as_json = run("verify", wrong, "--trust", files.trust, "--json")
    assert as_json.exit_code == 2 and json.loads(as_json.output)["error"]["code"] == "store.not_a_ledger"


def test_the_other_commands_refuse_a_ledger_with_exit_2_too(files: SmallFiles) -> None:
    for args, code in ((["proof", "verify", files.ledger, "--trust", files.trust], "bundle.tag"),
                       (["evidence", "verify", files.ledger, "--trust", files.trust], "evidence.malformed")):
        result = run(*args)
        assert result.exit_code == 2 and f"[{code}]" in result.output, result.output


def test_a_ledger_whose_header_is_damaged_is_still_a_storage_error(files: SmallFiles, tmp_path: Path) -> None:
    """The neighbour: a real ledger (it starts with the magic) whose header is cut or damaged stays exit 3."""
    data = files.ledger.read_bytes()
    damaged = tmp_path / "damaged.ledger"
    for bad in (data[:12], data[:14] + bytes([data[14] ^ 1]) + data[15:]):
        damaged.write_bytes(bad)
        result = run("verify", damaged, "--trust", files.trust)
        assert result.exit_code == 3 and "[store.bad_header]" in result.output, result.output
