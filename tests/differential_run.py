"""Running the differential fuzzer (tests/differential.py): many seeded ledgers, the counts, the smallest example
of each distinct problem, shrunk to a minimal reproducer and written out as a report.

Used by tests/test_differential.py (the suite's run) and bench/fuzz_differential.py (longer runs, the report).
Every ledger comes from ``random.Random(f"{seed}:{index}")``, so :func:`case` rebuilds any one of them alone.
"""

from __future__ import annotations

import itertools
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from differential import (
    REGISTRY_SIZE,
    Outcome,
    created_items,
    forge,
    judge,
    kinds,
    mutate,
    signatures_verified_once,
)

from ledger import Record
from ledger._describe import describe

STEPS = (8, 36)  # random actions per ledger (some find nothing to do)


def case(seed: int, index: int) -> tuple[list[Record], list[str], int]:
    """Ledger ``index`` of a run with ``seed``: its records, the mutations, and the generator's misses."""
    rng = random.Random(f"{seed}:{index}")
    world = forge(rng, rng.randrange(*STEPS))
    seq, ops = mutate(rng, world)
    return seq, ops, world.misses


@dataclass(slots=True)
class Example:
    """The smallest ledger seen with one problem: ``seq`` (mutated by ``ops``), the item whose bundle shows it."""

    seed: int
    index: int
    ops: list[str]
    seq: list[Record]
    item: str
    keep: list[int] | None = None  # after shrinking: the positions of the original ``seq`` kept


@dataclass(slots=True)
class Stats:
    """Counts of a run. ``verdicts``: per case (valid, failed, disagreement, mismatch, false_alarm, refused,
    crash); ``problems``: (class, kind) -> cases."""

    seed: int
    ledgers: int = 0
    cases: int = 0
    seconds: float = 0.0
    misses: int = 0
    control_findings: int = 0
    valid_with_unchecked: int = 0
    mutations: Counter[str] = field(default_factory=Counter)
    verdicts: Counter[str] = field(default_factory=Counter)
    refusals: Counter[str] = field(default_factory=Counter)
    unchecked: Counter[str] = field(default_factory=Counter)  # codes listed as unchecked by valid bundles
    problems: Counter[tuple[str, str]] = field(default_factory=Counter)
    examples: dict[tuple[str, str], Example] = field(default_factory=dict)

    @property
    def disagreements(self) -> int:
        return self.verdicts["disagreement"]

    def add(self, seed: int, index: int, seq: list[Record], ops: list[str], outcomes: list[Outcome]) -> None:
        self.ledgers += 1
        self.mutations.update(" ".join(op.split()[:2 if op.startswith(("insert", "registry")) else 1]) for op in ops)
        for out in outcomes:
            self.cases += 1
            self.verdicts[out.verdict] += 1
            if out.refusal:
                self.refusals[out.refusal] += 1
            if out.report is not None and out.report.ok and out.report.unchecked:
                self.valid_with_unchecked += 1
                self.unchecked.update({f.code for f in out.report.unchecked})
            for problem in kinds(seq, out):
                self.problems[problem] += 1
                known = self.examples.get(problem)
                if known is None or len(seq) < len(known.seq):
                    self.examples[problem] = Example(seed, index, ops, seq, out.item)

    def lines(self) -> list[str]:
        """The counts, as printed by the test and the bench."""
        v = self.verdicts
        return [
            f"seed {self.seed}: {self.cases} cases (ledger, item) in {self.ledgers} ledgers, {self.seconds:.1f} s",
            f"disagreements {v['disagreement']}; bundles failed {v['failed'] + v['mismatch'] + v['false_alarm']} "
            f"(with the audit's codes {v['failed']}, other codes {v['mismatch']}, false alarms {v['false_alarm']}); "
            f"valid {v['valid'] + v['disagreement']} (with unchecked entries {self.valid_with_unchecked}: "
            f"{dict(self.unchecked.most_common())})",
            f"export refusals {v['refused']} {dict(self.refusals.most_common())}; crashes {v['crash']}",
            f"omitted statements in valid bundles {sum(n for (c, _), n in self.problems.items() if c == 'omission')}; "
            f"control ledgers with audit findings {self.control_findings}; generator misses {self.misses}",
            f"mutations {dict(self.mutations.most_common())}",
        ]


def run(seed: int, workdir: Path, *, cases: int = 0, ledgers: int = 0, progress: bool = False) -> Stats:
    """Ledgers from ``seed``, every created item's bundle judged against the audit, until there are at least
    ``cases`` cases and ``ledgers`` ledgers."""
    stats = Stats(seed)
    start = time.perf_counter()
    with signatures_verified_once():
        for index in itertools.count():
            if stats.cases >= cases and stats.ledgers >= ledgers:
                break
            seq, ops, misses = case(seed, index)
            findings, outcomes = judge(workdir / "case.ledger", seq)
            stats.misses += misses
            if ops == ["none"] and findings:
                stats.control_findings += 1
            stats.add(seed, index, seq, ops, outcomes)
            if progress and (index + 1) % 100 == 0:
                print(f"  {index + 1} ledgers, {stats.cases} cases, {stats.disagreements} disagreements", flush=True)
    stats.seconds = time.perf_counter() - start
    return stats


# --- minimal reproducers ---------------------------------------------------------------------------------------

def shrink(example: Example, problem: tuple[str, str], workdir: Path, budget: int = 400) -> Example:
    """Drop custody records of ``example`` (chunks, then one by one) while its item still shows ``problem``."""
    keep = list(range(len(example.seq)))

    def still(trial: list[int]) -> bool:
        seq = [example.seq[p] for p in trial]
        if example.item not in created_items(seq):
            return False
        _, (out,) = judge(workdir / "shrink.ledger", seq, [example.item])
        return problem in kinds(seq, out)

    with signatures_verified_once():
        chunk = max(1, (len(keep) - REGISTRY_SIZE) // 2)
        while chunk >= 1 and budget > 0:
            i = REGISTRY_SIZE
            while i < len(keep) and budget > 0:
                budget -= 1
                trial = keep[:i] + keep[i + chunk:]
                if still(trial):
                    keep = trial
                else:
                    i += chunk
            chunk //= 2
    return Example(example.seed, example.index, example.ops, [example.seq[p] for p in keep], example.item, keep)


def listing(seq: list[Record]) -> list[str]:
    """One line per record: position, kind, actor, inputs (item@position of the record it links to), outputs."""
    where: dict[bytes, int] = {}
    lines = []
    for p, r in enumerate(seq):
        b = r.body
        ins = ", ".join(f"{i}@{where.get(bytes(h), '?')}" for i, h in b.inputs)
        outs = ", ".join(f"{o.id} {o.type} {o.mass_mct}" for o in b.outputs)
        lines.append(f"{p:3} {b.kind:<11} {b.actor:<11} in [{ins}] out [{outs}]: {describe(r)}")
        where.setdefault(bytes(r.record_hash), p)
    return lines


def reproducer(example: Example, problem: tuple[str, str], workdir: Path) -> list[str]:
    """A report section for one problem: the shrunk ledger, the audit's and the bundle's view, and a test."""
    seq = example.seq
    _, (out,) = judge(workdir / "repro.ledger", seq, [example.item])
    report = out.report
    lines = [f"- from seed {example.seed}, ledger {example.index}, mutations: {'; '.join(example.ops)}",
             f"- item `{example.item}`; bundle positions {list(out.positions)}", "", "```", *listing(seq), "```", "",
             "audit findings in the provenance:", *[f"    {f}" for f in out.relevant],
             "bundle: " + ("crash " + str(out.crash) if out.crash else f"refused {out.refusal}" if out.refusal
                           else "valid" if report and report.ok else "failed"),
             *[f"    {f}" for f in (report.findings if report else ())],
             *[f"    unchecked {f}" for f in (report.unchecked if report else ())]]
    keep = example.keep if example.keep is not None else list(range(len(seq)))
    lines += ["", "reproduce (pytest, from tests/):", "```python",
              "from differential import judge, kinds",
              "from differential_run import case",
              "",
              "def test_repro(tmp_path):",
              f"    seq, _, _ = case({example.seed}, {example.index})",
              f"    seq = [seq[p] for p in {keep}]",
              f"    _, (out,) = judge(tmp_path / 'l.ledger', seq, [{example.item!r}])",
              f"    assert {problem!r} not in kinds(seq, out)",
              "```"]
    return lines
