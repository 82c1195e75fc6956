"""The crash soak of issue 10 item 4: many more SIGKILL trials than tests/test_crash.py runs (1,000 by default).

Usage (from the repository root)::

    python bench/crash_soak.py                        # 1,000 trials of seed 1
    python bench/crash_soak.py --seed 7 --trials 5000
    python bench/crash_soak.py --seed 10 --only 17    # one trial alone, as a failure names it

Each trial forks a writer that appends to a fresh copy of a small ledger and is SIGKILLed at a seeded moment;
then every acknowledged append must be in the file, a torn tail must be repaired into its side file, the ledger
must reopen, append again and audit valid (tests/crashkit.py, the code the suite runs). Prints the counts
(torn tails, kills mid-batch, ...) and the time a trial. Exit status 1 at the first failing trial, named with
its seed and index; its files are kept in the work directory.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from crashkit import Outcome, Summary, prepare, run_trials
from sigcache import signatures_verified_once


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--trials", type=int, default=1_000)
    parser.add_argument("--only", type=int, help="run this trial alone")
    parser.add_argument("--workdir", type=Path, help="default: a new temporary directory")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="stonetrail-crash-"))
    indices = range(args.only, args.only + 1) if args.only is not None else range(args.trials)
    print(f"seed {args.seed}, trials {indices.start}..{indices.stop - 1}, in {workdir}", flush=True)
    outcomes: list[Outcome] = []
    with signatures_verified_once():
        prepared = prepare(workdir / f"seed-{args.seed}")
        start = time.perf_counter()
        try:
            for outcome in run_trials(prepared, args.seed, indices, workdir / f"seed-{args.seed}"):
                outcomes.append(outcome)
                if len(outcomes) % 100 == 0:
                    print(f"  {len(outcomes)} trials, {time.perf_counter() - start:.1f} s", flush=True)
        except AssertionError as exc:
            print(f"FAILED after {len(outcomes)} trials: {exc}", file=sys.stderr)
            return 1
    seconds = time.perf_counter() - start
    print(Summary.of(outcomes))
    print(f"{seconds:.1f} s, {1000 * seconds / max(len(outcomes), 1):.0f} ms a trial "
          f"(template {prepared.template_size} records, workload {len(prepared.planned())} in "
          f"{len(prepared.steps)} appends)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
