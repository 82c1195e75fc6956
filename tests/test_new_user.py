"""The findings of issue 9's new-user trial (README and docs only), each as the mistake a user made and what the
command now says (the numbers are the trial's). Over the small files of tests/small_files.py."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result
from small_files import SmallFiles, small_files

from ledger import Trust, note_verifier_key, sign_checkpoint
from ledger.checkpoint import read_unverified_checkpoint
from ledger.monitor import split_view_evidence
from ledger.provenance import MassPoint
from stonetrail_cli import _reading
from stonetrail_cli.demo import _program
from stonetrail_cli.main import main
from stonetrail_cli.proof import _mass_lines
from world import ORIGIN, key


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


# --- 7, 8. consistency: a proof of another pair, and a split view ---------------------------------------------------

def _other_proof(f: SmallFiles, d: Path) -> Path:
    """A proof file for tree sizes 3 -> 4 that is not the proof between f's checkpoints (one hash changed, as a
    proof of another pair of checkpoints of these sizes would be)."""
    lines = f.proof_3_4.read_text().splitlines()
    lines[3] = ("B" if lines[3][0] == "A" else "A") + lines[3][1:]
    (d / "other-p.txt").write_text("\n".join(lines) + "\n")
    return d / "other-p.txt"


def test_a_proof_of_another_pair_says_so_not_that_the_checkpoints_differ(files: SmallFiles, tmp_path: Path) -> None:
    """Trial 7: a proof file of another pair printed "NOT CONSISTENT: new root mismatch: got <hex>", while the
    two checkpoints are consistent (--evidence-out then said so). The proof does not belong to them: it is said,
    and the verdict is "not shown consistent", with the roots in base64."""
    t = ["--trust", files.trust]
    result = run("consistency", files.checkpoint_3, files.checkpoint, "--proof", _other_proof(files, tmp_path), *t)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("NOT SHOWN CONSISTENT: the proof file does not belong to these checkpoints")
    assert "[proof.root_mismatch]" in result.output and "NOT CONSISTENT" not in result.output
    assert _b64_root(files.checkpoint) in result.output and "got " not in result.output  # base64, not hex
    sizes = run("consistency", files.checkpoint_3, files.checkpoint, "--proof", files.proof_4_4, *t, "--json")
    data = json.loads(sizes.output)
    assert sizes.exit_code == 1 and data["verdict"] == "not_shown_consistent", sizes.output
    assert data["code"] == "consistency.size_mismatch" and "does not belong to these checkpoints" in data["reason"]
    right = run("consistency", files.checkpoint_3, files.checkpoint, "--proof", files.proof_3_4, *t)
    assert right.exit_code == 0 and right.output.startswith("consistent:"), right.output


def _b64_root(checkpoint: Path) -> str:
    return checkpoint.read_text().splitlines()[2]


def test_a_split_view_is_reported_as_two_roots_before_any_line(files: SmallFiles) -> None:
    """Trial 8: two checkpoints of one tree size with different roots were reported by the first line that
    differed (consistency.heads_mismatch, here registry_mismatch); the two roots are the finding."""
    result = run("consistency", files.checkpoint, files.other_checkpoint, "--proof", files.proof_4_4,
                 "--trust", files.trust)
    assert result.exit_code == 1 and result.output.startswith("NOT CONSISTENT: split view"), result.output
    assert "[consistency.split_view]" in result.output
    assert _b64_root(files.checkpoint) in result.output and _b64_root(files.other_checkpoint) in result.output
    same = run("consistency", files.checkpoint, files.checkpoint, "--proof", files.proof_4_4, "--trust", files.trust)
    assert same.exit_code == 0 and same.output.startswith("consistent (same tree)"), same.output


# --- 14. messages: no Python literal, roots in base64 ---------------------------------------------------------------

def test_evidence_verify_of_another_file_names_it_plainly(files: SmallFiles) -> None:
    """Trial 14: `evidence verify trust.keys` showed "want bytes starting with b'stonetrail/v1/evidence\\n'"."""
    for wrong, what in ((files.trust, ""), (files.ledger, "it is a ledger file"), (files.bundle, "proof bundle")):
        result = run("evidence", "verify", wrong, "--trust", files.trust)
        assert result.exit_code == 2 and "[evidence.malformed]" in result.output, result.output
        assert "b'" not in result.output and "\\n" not in result.output and what in result.output
        assert "does not start with the line stonetrail/v1/evidence" in result.output


def test_evidence_lines_show_hashes_in_base64(files: SmallFiles, tmp_path: Path) -> None:
    """Trial 14: consistency and evidence printed hashes in hex where every other command prints base64."""
    evidence = tmp_path / "leaf.ev"  # the two ledgers differ at leaf 1: the evidence names both leaf hashes
    other = files.ledger.with_name("other.ledger")
    evidence.write_bytes(split_view_evidence(files.ledger, files.checkpoint_3.read_text(), other,
                                             files.other_checkpoint.read_text()))
    result = run("evidence", "verify", evidence, "--trust", files.trust)
    assert result.exit_code == 0 and "leaf 1 is " in result.output, result.output
    assert not re.search("[0-9a-f]{64}", result.output) and _b64_root(files.checkpoint_3) in result.output


# --- issue 9 item 9: the same hint for a wrong trust file; a checkpoint of another ledger says so -------------------

def test_proof_verify_with_the_wrong_trust_file_gives_verify_s_hint(files: SmallFiles, tmp_path: Path) -> None:
    """`verify` printed "hint: … is this the right trust file?" for a wrong trust file; `proof verify` printed 77
    findings and no hint."""
    trust = Trust.parse(files.trust.read_text())
    wrong = Trust(operators=trust.operators, authorities=(note_verifier_key("authority", key("impostor").public_key),))
    (tmp_path / "wrong.keys").write_text(wrong.format())
    hint = "is this the right trust file?"
    for args, label in ((["verify", files.ledger], "hint:      "), (["proof", "verify", files.bundle], "hint:       ")):
        result = run(*args, "--trust", tmp_path / "wrong.keys")
        assert result.exit_code == 1 and f"\n{label}the first enrolment is not signed by the pinned authority key: " \
            f"{hint}\n" in result.output, result.output
        right = run(*args, "--trust", files.trust)
        assert right.exit_code == 0 and hint not in right.output


def test_a_checkpoint_of_another_ledger_says_so(files: SmallFiles, tmp_path: Path) -> None:
    """`verify --checkpoint` with another ledger's checkpoint: of another origin, signed by the pinned operator key,
    it is named "a checkpoint of another ledger"; of the same origin (another file's tree), the findings are
    about the checkpoint only, and the hint says that every record passes and the checkpoint is not this file's."""
    elsewhere = replace(read_unverified_checkpoint(files.checkpoint.read_text()), origin="example.com/other")
    (tmp_path / "elsewhere.txt").write_text(sign_checkpoint(elsewhere, ORIGIN, key("operator")))
    result = run("verify", files.ledger, "--trust", files.trust, "--checkpoint", tmp_path / "elsewhere.txt")
    # signed by this ledger's operator key, pinned under this ledger's name only: not accepted (ADR 0037)
    assert result.exit_code == 1 and "note.unverified: checkpoint: a checkpoint of another ledger " \
        f"(example.com/other, not {ORIGIN})" in result.output, result.output
    same_origin = run("verify", files.ledger, "--trust", files.trust, "--checkpoint", files.other_checkpoint)
    assert same_origin.exit_code == 1 and "checkpoint.root_mismatch" in same_origin.output
    assert "\nhint:      every record passes; only the checkpoint does not match this ledger file" in same_origin.output
    damaged = run("verify", files.bad_ledger, "--trust", files.trust, "--checkpoint", files.other_checkpoint)
    assert damaged.exit_code == 1 and "every record passes" not in damaged.output  # the neighbour: records fail


# --- issue 9 item 9: the demo's "next:" lines run as printed ----------------------------------------------------------

def test_the_demo_s_next_lines_run_as_printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The README installs into .venv, so `stonetrail` is not on PATH; the demo printed "next: stonetrail show …",
    which then fails (command not found). It now prints the program as it was run, and paths quoted for a shell."""
    program = tmp_path / "venv" / "bin" / "stonetrail"
    program.parent.mkdir(parents=True)
    program.write_text("#!/bin/sh\n")
    program.chmod(0o755)
    monkeypatch.setattr(sys, "argv", [str(program), "demo"])
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    result = run("demo", tmp_path / "my out")
    assert result.exit_code == 0, result.output
    lines = result.output.split("\nnext:", 1)[1].splitlines()
    assert len(lines) == 2
    for line in lines:
        words = shlex.split(line)
        assert words[0] == str(program) and words[1] in ("show", "proof"), line
        again = run(*words[1:])
        assert again.exit_code == 0, (line, again.output)
    monkeypatch.setenv("PATH", str(program.parent))  # on PATH (an activated venv): the plain name
    assert _program() == "stonetrail"
    monkeypatch.setattr(sys, "argv", ["/usr/bin/python3", "-m", "pytest"])  # not the console script
    assert _program() == "stonetrail"


# --- issue 9 item 9: no machine-specific paths in the docs ----------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("doc", ["README.md", "bench/README.md", "docs/embedding.md", "docs/format.md"])
def test_the_docs_name_no_machine_specific_path(doc: str) -> None:
    """bench/README.md ran the benchmarks with /work/venv/bin/python, a path of the machine it was written on."""
    text = (ROOT / doc).read_text(encoding="utf-8")
    assert not re.findall(r"(?<![\w.])/(?:work|home|Users|root|opt|srv)/\S*", text)


# --- 10. every --help example runs, in order, on the demo -----------------------------------------------------------

def _commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], click.Command]]:
    """``group`` and every command under it, depth first in name order."""
    found: list[tuple[tuple[str, ...], click.Command]] = [(path, group)]
    ctx = click.Context(group)
    for name in group.list_commands(ctx):  # loads each command (they are imported when used)
        command = group.get_command(ctx, name)
        assert command is not None, name
        found += _commands(command, (*path, name)) if isinstance(command, click.Group) else [((*path, name), command)]
    return found


def _examples(command: click.Command) -> list[str]:
    """The lines of the paragraph under "Example(s):" in a command's help, continuation lines joined."""
    text = (command.help or "").split("Example", 1)[1].split(":\n", 1)[1]
    lines = text.split("\n\n", 1)[0].replace("\\\n", " ").splitlines()
    return [" ".join(line.split()) for line in lines if line.strip()]


#: Examples that cannot run on the demo, as their help says: it has no fork, so no evidence file.
NEEDS_EVIDENCE = {"evidence verify fork.ev --trust out/trust.keys",
                  "evidence verify split.ev --trust out/trust.keys --json"}
#: Examples that need what the user writes for witnesses (a logs file, a witness policy naming running witnesses):
#: not in the demo, so a clear "missing file" (and a serve that would run until stopped never starts).
NEEDS_WITNESSES = ("--logs logs.txt", "--witness-policy witnesses.txt")


def test_every_help_example_runs_in_order_on_the_demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Trial 10: `consistency --help` used old.txt/new.txt that nothing made; `evidence verify fork.ev` followed an
    `evidence fork` that finds no fork in the demo; `proof --help` and `proof export --help` wrote the same file.
    Now every example, run in the order of the command tree (the group's first), does what its help says: no
    usage error, missing file or file that exists (exit 2 or 3), but for the evidence examples the demo cannot
    feed, which their help names."""
    monkeypatch.chdir(tmp_path)
    done: set[str] = set()
    for path, command in _commands(main):
        for line in _examples(command):
            words = shlex.split(line, comments=True)
            if line in done:
                continue  # the same command twice (main's "demo out" and demo's)
            done.add(line)
            if words[0] == "cp":
                shutil.copyfile(words[1], words[2])
                continue
            assert words[0] == "stonetrail", (path, line)
            result = run(*words[1:])
            if " ".join(words[1:]) in NEEDS_EVIDENCE or any(need in line for need in NEEDS_WITNESSES):
                assert result.exit_code == 2 and "input.missing" in result.output, (line, result.output)
            elif "postgresql://" in line:  # no server at the example's address here: one clear line, exit 3
                assert result.exit_code == 3 and "[store.unavailable]" in result.output, (line, result.output)
            else:
                assert result.exit_code in (0, 1) and "Traceback" not in result.output, (line, result.output)
    assert "stonetrail evidence fork out/demo.ledger --checkpoint out/checkpoint.txt -o fork.ev" in " ".join(done)


# --- 12. proof verify's mass line: each item's own history -----------------------------------------------------------

def test_the_mass_history_is_grouped_by_item_never_chained_across_items(files: SmallFiles) -> None:
    """Trial 12: the mass line joined unrelated items with arrows (LOT-RU 40 ct -> LOT-AO 60 ct -> PARCEL …, as if
    one stone had changed weight). Each item now has its own line, arrows only between its own masses."""
    history = (MassPoint(position=1, time_ms=0, item="LOT-RU", kind="mined", mass_mct=40_000),
               MassPoint(position=2, time_ms=0, item="LOT-AO", kind="mined", mass_mct=60_000),
               MassPoint(position=3, time_ms=0, item="PARCEL", kind="merged", mass_mct=100_000),
               MassPoint(position=4, time_ms=0, item="S1", kind="split", mass_mct=1_260),
               MassPoint(position=5, time_ms=0, item="S1", kind="graded", mass_mct=1_250))
    assert _mass_lines(history) == ["LOT-RU: 40.000 ct (mined, record 1)", "LOT-AO: 60.000 ct (mined, record 2)",
                                    "PARCEL: 100.000 ct (merged, record 3)",
                                    "S1: 1.260 ct (split, record 4) -> 1.250 ct (graded, record 5)"]
    result = run("proof", "verify", files.bundle, "--trust", files.trust)
    assert result.exit_code == 0 and "\nmass:       S1: 0.900 ct (mined, record 2)\n" in result.output, result.output


# --- 15. a group without a command; a lower-case id in proof export --------------------------------------------------

@pytest.mark.parametrize("group", [[], ["proof"], ["evidence"]])
def test_a_group_without_a_command_is_a_usage_error_with_its_help(group: list[str]) -> None:
    """Trial 15: `stonetrail`, `stonetrail proof` and `stonetrail evidence` printed their help and exited 0, so a
    script whose command word went missing saw success. The help now goes to stderr with exit 2, as click's own
    default for a missing command; `--help` asked for is still exit 0 on stdout."""
    result = CliRunner().invoke(main, group)
    assert result.exit_code == 2 and result.stdout == "", result.output
    assert "Commands:" in result.stderr and result.stderr.rstrip().endswith("[usage]")
    asked = run(*group, "--help")
    assert asked.exit_code == 0 and "Commands:" in asked.stdout


def test_proof_export_suggests_the_id_that_reads_alike(files: SmallFiles, tmp_path: Path) -> None:
    """Trial 15: `show` suggested the right id for a lower-case one, `proof export` did not."""
    for typed in ("s1", "sl"):  # case, and 1 read as l
        result = run("proof", "export", files.ledger, typed, "--checkpoint", files.checkpoint, "-o", tmp_path / "x")
        assert result.exit_code == 2 and "did you mean 'S1'?" in result.output and "[item.unknown]" in result.output
    unknown = run("proof", "export", files.ledger, "S2", "--checkpoint", files.checkpoint, "-o", tmp_path / "x")
    assert unknown.exit_code == 2 and "did you mean" not in unknown.output
    for how in ([], ["--trust", files.trust]):  # `show` the same way, through the index and through a replay
        shown = run("show", files.ledger, "sl", *how)
        assert shown.exit_code == 2 and "did you mean 'S1'?" in shown.output, shown.output


def test_an_invalid_bundle_is_never_called_compliant(tmp_path: Path) -> None:
    """Second new-user trial: a tampered bundle under a policy printed "result: compliant" above its INVALID
    verdict."""
    from click.testing import CliRunner

    from ledger import build_demo
    from stonetrail_cli.main import main

    build_demo(tmp_path / "out")
    bundle = tmp_path / "out" / "proofs" / "R-00001-A.stproof"
    data = bytearray(bundle.read_bytes())
    data[len(data) // 2] ^= 1
    bundle.write_bytes(bytes(data))
    result = CliRunner().invoke(main, ["proof", "verify", str(bundle), "--trust", str(tmp_path / "out" / "trust.keys"),
                                       "--deny-origin", "RU"])
    assert result.exit_code == 1 and re.search(r"verdict:\s+INVALID", result.output)
    assert "result:  compliant" not in result.output


def test_a_large_ledger_read_without_an_index_says_how_to_make_it_instant(
        files: SmallFiles, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A new-user review: `show` took 25 s once the index was gone, saying nothing. A reader that must read the
    whole log of a large file (here any size) says so on stderr, with the command that builds the index."""
    monkeypatch.setattr(_reading, "_SLOW_WITHOUT_INDEX", 0)
    ledger = tmp_path / "copy.ledger"
    shutil.copy(files.ledger, ledger)
    for args in (["show", ledger, "S1"], ["items", ledger, "--json"]):
        told = run(*args)
        assert told.exit_code == 0 and f"run 'stonetrail index {ledger} --trust FILE'" in told.stderr, told.output
    told = run("show", ledger, "S1", "--trust", files.trust)  # audited, then read from the file: not in memory
    assert told.exit_code == 0 and "stonetrail index" not in told.stderr, told.output
    assert run("index", ledger, "--trust", files.trust).exit_code == 0
    for args in (["show", ledger, "S1"], ["items", ledger, "--json"], ["show", ledger, "S1", "--trust", files.trust]):
        assert "stonetrail index" not in run(*args).stderr  # an index answers: nothing to say
    other = tmp_path / "other.ledger"  # a copy with the index copied beside it: that index is another file's
    shutil.copy(ledger, other)
    shutil.copy(f"{ledger}.index", f"{other}.index")
    told = run("show", other, "S1")
    assert told.exit_code == 0 and "has an index, other.ledger.index, that does not cover it" in told.stderr


def test_a_command_loads_its_own_modules_only() -> None:
    """Starting ``stonetrail verify`` imports the audit's command, not the witness server's, the HTML report's
    (jinja2) or the demo's (each command is imported when it runs); ``--help`` of the group still lists all."""
    probe = ("import atexit, sys\n"
             "atexit.register(lambda: print(' '.join(sorted(sys.modules)), file=sys.stderr))\n"
             "from stonetrail_cli.main import main\n"
             "main(sys.argv[1:])\n")
    loaded = subprocess.run([sys.executable, "-c", probe, "verify", "--help"], capture_output=True, text=True,
                            check=False)
    assert loaded.returncode == 0, loaded.stderr
    modules = set(loaded.stderr.split())
    assert "stonetrail_cli.verify" in modules
    assert not modules & {"stonetrail_cli.witness", "stonetrail_cli.report", "stonetrail_cli.demo", "jinja2",
                          "ledger.witness.server", "ledger.demo"}, sorted(modules)
    listed = subprocess.run([sys.executable, "-c", probe, "--help"], capture_output=True, text=True, check=False)
    assert listed.returncode == 0 and all(f"  {name} " in listed.stdout for name in ("demo", "verify", "witness"))
    offline = subprocess.run([sys.executable, "-c", probe, "proof", "verify", "--help"], capture_output=True,
                             text=True, check=False)  # a buyer's check: the bundle and the trust file, no ledger
    modules = set(offline.stderr.split())
    assert offline.returncode == 0 and "stonetrail_cli.proof" in modules
    assert not {m for m in modules if m.startswith(("ledger.audit", "ledger.export", "ledger.index", "ledger.storage",
                                                      "cryptography", "stonetrail_cli.proof_export"))}, sorted(modules)


@pytest.mark.parametrize(("argv", "hint"), [
    (["verfy", "x"], "Did you mean 'verify'?"), (["chekpoint"], "Did you mean 'checkpoint'?"),
    (["proof", "anex"], "Did you mean 'annex'?"), (["proof", "reprt"], "'export', 'report'"),
])
def test_a_mistyped_command_gets_a_suggestion(argv: list[str], hint: str) -> None:
    """Commands are imported when used (ADR 0029); a name that is none of them still gets click's suggestion,
    taken from all of them, in its one-line usage error."""
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 2 and hint in result.output and len(result.output.strip().splitlines()) == 1, \
        result.output


@pytest.mark.parametrize("argv", [["keygen", "--name", "example.com/a"], ["witness", "keygen", "--name", "w.example"]])
def test_a_private_key_is_never_written_to_stdout(argv: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                   ) -> None:
    """``-o -`` means stdout for reports; for a private key it is a usage error, and no file named ``-`` is made."""
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, [*argv, "-o", "-"])
    assert result.exit_code == 2 and "never to stdout" in result.output, result.output
    assert not (tmp_path / "-").exists() and "PRIVATE KEY" not in result.output


@pytest.mark.parametrize("command", ["export", "fetch"])
def test_a_bundle_is_never_written_to_a_file_named_dash(command: str, demo: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """``-o -`` wrote a file named ``-`` (a new-user review); a bundle is binary, so it is a usage error."""
    monkeypatch.chdir(tmp_path)
    where = ["export", str(demo / "demo.ledger")] if command == "export" else \
        ["fetch", str(tmp_path), "--trust", str(demo / "trust.keys")]
    result = CliRunner().invoke(main, ["proof", *where, "R-00001-A", "-o", "-"])
    assert result.exit_code == 2 and "never printed" in result.output, result.output
    assert not (tmp_path / "-").exists()


@pytest.mark.parametrize("existed", [False, True])
def test_an_interrupted_demo_leaves_nothing_behind(existed: bool, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C during `stonetrail demo dI` left a ledger and keys but no trust file, and the next run refused the
    directory as not empty (a new-user review). What the demo wrote is removed: the directory too, if it made
    it; an empty one given to it stays, empty. The interrupt is simulated: real ones are in test_interrupt."""
    import ledger.demo

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(ledger.demo, "scenario_lesedi", interrupted)
    out = tmp_path / "dI"
    if existed:
        out.mkdir()
    with pytest.raises(KeyboardInterrupt):
        ledger.demo.build_demo(out)
    assert (out.exists() and not any(out.iterdir())) if existed else not out.exists()


def test_a_binary_file_where_text_belongs_is_named(demo: Path) -> None:
    """A bundle given as --checkpoint, a ledger as --trust: "is not UTF-8 text" alone did not say what the file
    was (a new-user review)."""
    ledger, bundle = str(demo / "demo.ledger"), str(next((demo / "proofs").glob("*.stproof")))
    for argv, kind in ((["--trust", str(demo / "trust.keys"), "--checkpoint", bundle], "a proof bundle"),
                       (["--trust", ledger], "a ledger file")):
        result = CliRunner().invoke(main, ["verify", ledger, *argv])
        assert result.exit_code == 2 and f"is not UTF-8 text: it is {kind}" in result.output, result.output


def test_index_on_a_damaged_ledger_says_why_and_what_to_run(demo: Path, tmp_path: Path) -> None:
    """A new-user review: `index` on a ledger with a damaged record named only its code and suggested `repair`,
    which moves a torn tail aside and refuses anything else. It now gives the reason and sends to `verify`."""
    ledger = tmp_path / "hole.ledger"
    data = bytearray((demo / "demo.ledger").read_bytes())
    data[len(data) // 2] ^= 1
    ledger.write_bytes(bytes(data))
    told = run("index", ledger, "--trust", demo / "trust.keys")
    assert told.exit_code == 3 and "payload CRC32 does not match" in told.output, told.output
    assert "run 'stonetrail verify'" in told.output and "repair" not in told.output
    assert told.output.count("[store.checksum_mismatch]") == 1


def test_show_and_items_under_another_ledgers_trust_file_ask_whether_it_is_the_right_one(demo: Path) -> None:
    """A new-user review: verify asks "is this the right trust file?" when the first enrolment is not signed by
    the pinned authority key; show and items only said INVALID with a thousand findings."""
    other = Path(__file__).resolve().parent / "vectors" / "trust.keys"
    for args in (["show", demo / "demo.ledger", "R-00001-A"], ["items", demo / "demo.ledger"]):
        told = run(*args, "--trust", other)
        assert told.exit_code == 1 and "is this the right trust file?" in told.output, told.output
    assert "hint:" not in run("items", demo / "demo.ledger", "--trust", demo / "trust.keys").output


def test_checkpoint_warns_when_it_replaces_a_witnessed_checkpoint_with_an_unwitnessed_one(tmp_path: Path) -> None:
    """A new user's review: `checkpoint` replaced a witnessed checkpoint.txt with one without cosignatures, and
    said nothing until `publish` refused it."""
    from ledger import keyfile
    from ledger.checkpoint import format_checkpoint
    from ledger.cosignature import cosign
    from ledger.keys import PrivateKey
    from ledger.note import add_signatures

    files = small_files(tmp_path)
    old = files.checkpoint_3.read_text()
    witnessed = add_signatures(old, [cosign(format_checkpoint(read_unverified_checkpoint(old)), "w.example",
                                            PrivateKey.generate(), 1_700_000_000)])
    (tmp_path / "checkpoint.txt").write_text(witnessed)  # published beside good.ledger, of 3 of its 4 records
    keyfile.save_private_key(tmp_path / "operator.pem", key("operator"))
    done = run("checkpoint", files.ledger, "--key", tmp_path / "operator.pem", "--trust", files.trust)
    assert done.exit_code == 0, done.output
    assert "checkpoint.txt had witness cosignatures and this checkpoint has none" in done.output
    assert (tmp_path / "checkpoint-3.txt").read_text() == witnessed  # kept, as ever
