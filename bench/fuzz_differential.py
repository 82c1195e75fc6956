"""The differential fuzzer of tests/test_differential.py, with more cases: a proof bundle must fail (or say it
could not check) wherever a full audit finds a fault in its provenance.

Usage (from the repository root)::

    python bench/fuzz_differential.py                         # 20,000 cases from seed 1
    python bench/fuzz_differential.py --seed 7 --cases 100000
    python bench/fuzz_differential.py --findings report.md    # also shrink each problem to a minimal reproducer
    python bench/fuzz_differential.py --seed 7 --show 42      # ledger 42 of seed 7: its records and every verdict

Prints the counts (cases, ledgers, mutations by type, bundles failed, bundles valid with unchecked entries,
export refusals) and each distinct problem with its count. Exit status 1 if there is a disagreement or a crash.
The harness is tests/differential*.py (the same code the suite runs).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from differential import judge
from differential_run import Stats, case, listing, reproducer, run, shrink


def _show(seed: int, index: int, workdir: Path) -> None:
    seq, ops, _ = case(seed, index)
    print(f"seed {seed}, ledger {index}; mutations: {'; '.join(ops)}")
    print("\n".join(listing(seq)))
    findings, outcomes = judge(workdir / "show.ledger", seq)
    print("audit:", *[f"  {f}" for f in findings], sep="\n")
    for out in outcomes:
        print(f"{out.item}: {out.verdict}; positions {list(out.positions)}")
        for f in out.report.findings if out.report else ():
            print(f"    bundle {f}")
        for f in out.unmatched:
            print(f"    UNMATCHED audit {f}")


def _report(stats: Stats, workdir: Path, shrink_budget: int) -> list[str]:
    lines = ["# Differential fuzzer findings", "", "```", *stats.lines(), "```", ""]
    order = ("crash", "disagreement", "summary", "blind", "omission", "mismatch", "false_alarm", "refused")
    problems = sorted(stats.problems.items(), key=lambda p: (order.index(p[0][0]), -p[1]))
    for number, (problem, count) in enumerate(problems, 1):
        example = stats.examples[problem]
        if problem[0] != "refused" and shrink_budget:
            example = shrink(example, problem, workdir, shrink_budget)
        lines += [f"## {number}. {problem[0]}: {problem[1]} ({count} cases)", "",
                  *reproducer(example, problem, workdir), ""]
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cases", type=int, default=20_000, help="at least this many (ledger, item) cases")
    parser.add_argument("--findings", type=Path, help="write a markdown report with a shrunk reproducer each")
    parser.add_argument("--shrink-budget", type=int, default=400, help="trials per problem when shrinking (0: off)")
    parser.add_argument("--show", type=int, metavar="INDEX", help="show one ledger of the seed and stop")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if args.show is not None:
            _show(args.seed, args.show, workdir)
            return 0
        stats = run(args.seed, workdir, cases=args.cases, progress=True)
        print("\n".join(stats.lines()))
        for (klass, kind), count in sorted(stats.problems.items()):
            example = stats.examples[(klass, kind)]
            print(f"{count:6}  {klass}: {kind}  (e.g. --seed {example.seed} --show {example.index}, "
                  f"item {example.item})")
        if args.findings:
            args.findings.write_text("\n".join(_report(stats, workdir, args.shrink_budget)) + "\n", encoding="utf-8")
            print(f"report: {args.findings}")
    return 1 if stats.disagreements or stats.verdicts["crash"] else 0


if __name__ == "__main__":
    sys.exit(main())
