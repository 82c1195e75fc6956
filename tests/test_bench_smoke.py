"""bench/bench_index.py runs end to end on a small generated ledger (``--quick``, about 2,000 records): every
figure either measures or says the index is not built yet, the bundles it exports verify, and the proofs of the
index (once built) are the in-memory tree's. Speed is the benchmark's business: nothing here is timed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_index.py"
ROWS = ["decode", "build", "open", "open_process", "single", "batch100", "batch1000", "checkpoint",
        "checkpoint_file", "export", "cli_export", "proof", "show", "show_trust", "cli_show_bare",
        "cli_show_trust_bare"]


def test_bench_index_quick_run(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(BENCH), "--records", "2000", "--quick", "--json",
                           "--workdir", str(tmp_path)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    (run,) = json.loads(done.stdout)["runs"]
    figures = run["figures"]
    assert run["records"] == 2000 and figures["decode"]["records"] == 2000
    assert [row["key"] for row in run["rows"]] == ROWS
    assert not [(name, f["error"]) for name, f in figures.items() if f["status"] == "error"]
    assert all(f["status"] in ("ok", "missing", "timeout", "no checkpoint") for f in figures.values())
    append = figures["append"]
    if append["status"] == "ok":  # every record asked for was appended, each with its two signatures
        assert [append[m]["records"] for m in ("single", "batch100", "batch1000")] == [20, 100, 1000]
        assert all(append[m]["signatures"] == 2 * append[m]["records"] for m in ("single", "batch100", "batch1000"))
    for name in ("export", "cli_export"):
        if figures[name]["status"] == "ok":
            assert figures[name]["ok"] is True, name
    if figures["proofs"]["status"] == "ok":
        assert figures["proofs"]["digest"] == figures["proofs_bound"]["digest"]
        assert figures["proofs"]["root"] == figures["proofs_bound"]["root"]
    assert figures["proofs_bound"]["status"] == "ok"
    assert figures["cli_show_trust"]["status"] == "ok"  # the generated ledger passes: exit 0, a verified history
    assert figures["cli_show_bare"]["status"] == figures["cli_show_trust_bare"]["status"] == "ok"  # without an index
    assert not (tmp_path / "index-run-2000" / "no-index.ledger").exists()


VERIFY_BENCH = BENCH.with_name("bench_verify.py")
VERIFY_ROWS = ["bound_cryptography_one", "bound_cryptography_all", "bound_libsodium_one", "bound_libsodium_all",
               "verify_cryptography_1", "verify_cryptography_2", "verify_libsodium_1", "verify_libsodium_2",
               "jobs_cryptography", "jobs_libsodium", "engines", "rss", "rss_checkpoint", "save_state", "resume",
               "merkle", "rss_crafted"]


def test_bench_verify_quick_run(tmp_path: Path) -> None:
    """bench/bench_verify.py at 1,000 records: the bound verifies every signature with both engines, the Merkle
    figure's root and proofs are pymerkle's (where installed), each verify row either ran with the same clean
    result or says the CLI does not have its options yet, and the 99 % copy is a whole ledger of 990 records."""
    from ledger.storage import scan
    argv = ["--records", "1000", "--cores", "2", "--timeout", "600", "--json", "--workdir", str(tmp_path)]
    done = subprocess.run([sys.executable, str(VERIFY_BENCH), *argv], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    (run,) = json.loads(done.stdout)["runs"]
    figures = run["figures"]
    assert [row["key"] for row in run["rows"]] == VERIFY_ROWS
    bound = figures["bound"]
    assert bound["status"] == "ok" and bound["records"] == 1000 and bound["signatures"] > 1000
    assert all(bound[engine]["cores"] == 2 for engine in ("cryptography", "libsodium"))
    if figures["pymerkle"]["status"] == "ok":
        assert figures["pymerkle"]["root"] == figures["merkle"]["root"]
        assert figures["pymerkle"]["proofs"] == figures["merkle"]["proofs"]
    else:
        assert figures["pymerkle"]["status"] == "missing"
    verified = {name: f for name, f in figures.items() if name.startswith("verify_") or name == "resume"}
    assert "verify_checkpoint" in verified  # the audit with a checkpoint: the same clean result
    assert all(f["status"] in ("ok", "missing") for f in [*verified.values(), figures["save_state"]]), verified
    results = {(f["records"], f["root"], f["verdict"], f["findings_digest"]) for f in verified.values()
               if f["status"] == "ok"}
    assert len(results) <= 1 and all(r[0] == 1000 and r[2] == "valid" for r in results)
    if figures["save_state"]["status"] == "ok":
        assert figures["save_state"]["records"] == 990
    crafted = figures["crafted"]  # a file that fails everywhere: every finding counted, the process bounded
    assert (crafted["status"], crafted["verdict"], crafted["finding_count"]) == ("ok", "invalid", 2000)
    cut = scan(tmp_path / "verify-run-1000" / "cut.ledger")
    assert len(cut.frames) == 990 and not cut.problems
