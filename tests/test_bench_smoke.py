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
        "checkpoint_file", "export", "cli_export", "proof", "show"]


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
