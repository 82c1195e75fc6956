"""One verdict, said once and meant: the verdict line, the JSON ``verdict`` and the exit code agree, and the exit
code stays the verdict's whatever happens to the output (issue 9, items 1 and 2).

``stonetrail verify … | head -1`` used to exit 0 in 21 of 24 tries on an invalid or non-compliant input: the
closed pipe was caught and reported as success. Here each of ``verify`` and ``proof verify``, of an invalid and of
a non-compliant input, runs 200 times (100 as text, 100 with ``--json``) with its stdout a pipe whose reader
closes at once, and must exit 1 every time, with nothing on stderr (on the old code every one of these tests
fails: most runs exit 0).

How, measured on the two-core CI machine: a ``stonetrail`` process spends ~0.2 s importing before it reads a
byte, so 800 fresh processes would take ~3-4 min. tests/closed_pipe.py imports the command once and forks one
child per run instead: each child is still a whole process writing to a real pipe, running the console script's
``sys.exit(main())`` and exiting through the interpreter's own shutdown (where an unflushed, closed stdout used to
print "Exception ignored"); a run of the small inputs below costs ~25 ms of CPU, so the 800 runs take ~20 s
(25-40 s when other work shares the machine), inside the ~60 s budget, and stay in the default suite. One run of
each case through the installed console script itself, as a user types it (``| head -1`` in a shell), checks
that nothing differs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from small_files import small_files

from stonetrail_cli.main import main

RUNS = 100  # per case and form (text, --json): 200 per case
DRIVER = Path(__file__).with_name("closed_pipe.py")
STONETRAIL = Path(sys.executable).with_name("stonetrail")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    """The cases (name: arguments), over a ledger of four records and the bundle of its one stone."""
    f = small_files(tmp_path_factory.mktemp("exit"))
    t = ["--trust", str(f.trust)]
    return {
        "verify invalid": ["verify", str(f.bad_ledger), *t],
        "verify not compliant": ["verify", str(f.ledger), *t, "--deny-origin", "BW"],
        "proof verify invalid": ["proof", "verify", str(f.bad_bundle), *t],
        "proof verify not compliant": ["proof", "verify", str(f.bundle), *t, "--deny-origin", "BW"],
        "verify valid": ["verify", str(f.ledger), *t],
        "proof verify valid": ["proof", "verify", str(f.bundle), *t],
    }


FAILING = ["verify invalid", "verify not compliant", "proof verify invalid", "proof verify not compliant"]
VALID = ["verify valid", "proof verify valid"]
FORMS = {"text": [], "json": ["--json"]}


def _closed_pipe(args: list[str], runs: int, log: Path) -> list[int]:
    """The exit statuses of ``runs`` runs of ``stonetrail ARGS`` under tests/closed_pipe.py (stderr to ``log``)."""
    out = subprocess.run([sys.executable, str(DRIVER), str(runs), str(log), "--", *args], capture_output=True,
                         text=True, check=True)
    return list(json.loads(out.stdout))


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("case", FAILING)
def test_a_closed_stdout_never_turns_a_failure_into_0(inputs: dict[str, list[str]], case: str, form: str,
                                                      tmp_path: Path) -> None:
    statuses = _closed_pipe([*inputs[case], *FORMS[form]], RUNS, tmp_path / "stderr")
    assert statuses == [1] * RUNS, {status: statuses.count(status) for status in set(statuses)}
    assert (tmp_path / "stderr").read_text() == ""  # no traceback, no "Exception ignored"


@pytest.mark.parametrize("form", FORMS)
@pytest.mark.parametrize("case", VALID)
def test_a_closed_stdout_after_a_valid_verdict_is_exit_0_and_quiet(inputs: dict[str, list[str]], case: str,
                                                                   form: str, tmp_path: Path) -> None:
    assert _closed_pipe([*inputs[case], *FORMS[form]], 10, tmp_path / "stderr") == [0] * 10
    assert (tmp_path / "stderr").read_text() == ""


@pytest.mark.parametrize("case", [*FAILING, "verify valid"])
def test_the_console_script_piped_into_head(inputs: dict[str, list[str]], case: str) -> None:
    """As a user types it: ``stonetrail … | head -1`` in a shell, the status of stonetrail itself."""
    line = " ".join(f"'{a}'" for a in [str(STONETRAIL), *inputs[case]])
    out = subprocess.run(["bash", "-c", f"{line} | head -1 >/dev/null; echo ${{PIPESTATUS[0]}}"],
                         capture_output=True, text=True, check=True)
    assert (out.stdout.strip(), out.stderr) == ("0" if case == "verify valid" else "1", "")


# --- one verdict line (item 2) ---------------------------------------------------------------------------------------

#: (case, extra flags): the verdict line's words, the JSON verdict, the exit code.
VERDICTS = [
    ("verify valid", [], "valid", "valid", 0),
    ("verify valid", ["--deny-origin", "RU"], "valid, compliant", "valid_compliant", 0),
    ("proof verify valid", [], "valid", "valid", 0),
    ("proof verify valid", ["--deny-origin", "RU"], "valid, compliant", "valid_compliant", 0),
    ("verify not compliant", [], "valid, NOT COMPLIANT (1 policy finding)", "valid_not_compliant", 1),
    ("proof verify not compliant", [], "valid, NOT COMPLIANT (1 policy finding)", "valid_not_compliant", 1),
    ("verify invalid", [], "INVALID (1 finding)", "invalid", 1),
    ("verify invalid", ["--deny-origin", "BW"], "INVALID (1 finding)", "invalid", 1),
    ("proof verify invalid", ["--deny-origin", "BW"], "INVALID (1 finding)", "invalid", 1),
]


@pytest.mark.parametrize(("case", "flags", "line", "value", "code"), VERDICTS)
def test_one_verdict_line_combines_integrity_and_policy(inputs: dict[str, list[str]], case: str, flags: list[str],
                                                        line: str, value: str, code: int) -> None:
    """The last line is the one verdict, the only line that says "verdict"; --json says the same in "verdict";
    the exit code is that verdict's."""
    text = CliRunner().invoke(main, [*inputs[case], *flags])
    as_json = CliRunner().invoke(main, [*inputs[case], *flags, "--json"])
    verdicts = [row for row in text.output.splitlines() if row.lstrip().startswith("verdict")]
    assert verdicts == [text.output.splitlines()[-1]] and verdicts[0].split(":", 1)[1].strip() == line
    assert json.loads(as_json.output)["verdict"] == value
    assert text.exit_code == as_json.exit_code == code


def test_a_policy_is_never_listed_as_proven(inputs: dict[str, list[str]]) -> None:
    """`proof verify --deny-origin BW` used to list the policy under "proven (under the pinned keys)" and print
    "verdict: valid" before "NOT COMPLIANT": the policy is judged apart, and the verdict says both."""
    args = inputs["proof verify not compliant"]
    out = CliRunner().invoke(main, args).output
    proven = out[out.index("proven (under the pinned keys):"):out.index("integrity:")]
    assert "policy" not in proven and "BW" not in proven
    assert out.index("integrity:  valid") < out.index("policy (") < out.index("NOT COMPLIANT")
    report = json.loads(CliRunner().invoke(main, [*args, "--json"]).output)
    assert not [rule for rule in report["provenance"]["rules_checked"] if "policy" in rule]
    assert report["policy"] == ["no origin in or route through BW (every item)"] and not report["policy_valid"]
