"""The differential fuzzer in the suite (issue 8, the invariant behind attacks 1-3): over at least 5,000
(ledger, item) cases — random valid ledgers mutated as an insider operator could, see tests/differential.py —
no proof bundle says "valid" where the full audit finds a fault in its provenance that the bundle neither
reports (same code, same record) nor lists as unchecked.

One seeded run is shared by the tests below; its counts are printed (``pytest -s`` or ``-rA``) and recorded as
a property. ``python bench/fuzz_differential.py`` runs more cases and shrinks each problem to a reproducer.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from differential_run import Stats, run

SEED = 8
CASES = 5_000


@pytest.fixture(scope="module")
def stats(tmp_path_factory: pytest.TempPathFactory) -> Stats:
    result = run(SEED, Path(tmp_path_factory.mktemp("differential")), cases=CASES)
    print("\n" + "\n".join(result.lines()))
    return result


def problems(stats: Stats, *classes: str) -> str:
    """The problems of ``classes``, one a line, each with where its smallest example is."""
    return "\n".join(f"{count} x {klass}: {kind} (bench/fuzz_differential.py --seed {stats.seed} --show "
                     f"{stats.examples[(klass, kind)].index}, item {stats.examples[(klass, kind)].item})"
                     for (klass, kind), count in sorted(stats.problems.items()) if klass in classes)


def test_the_run_is_large_and_every_verdict_is_typed(stats: Stats,
                                                     record_property: Callable[[str, object], None]) -> None:
    record_property("differential", " | ".join(stats.lines()))
    assert stats.cases >= CASES
    assert stats.control_findings == 0  # the unmutated ledgers are valid, and so is every bundle of them
    assert stats.verdicts["crash"] == 0, problems(stats, "crash")  # refusals are typed errors only
    assert stats.verdicts["valid"] > CASES // 4 and stats.verdicts["failed"] > CASES // 10  # both sides exercised


def test_a_valid_bundle_leaves_out_no_statement_and_no_faulty_record(stats: Stats) -> None:
    """Issue 3: every statement (made after its subject) about a record of a valid bundle is in it, set stones
    included; and no record of its items that the audit faults is left out of a valid bundle."""
    assert not problems(stats, "omission", "blind"), problems(stats, "omission", "blind")


def test_no_bundle_says_valid_where_the_audit_finds_a_fault(stats: Stats) -> None:
    """The invariant: a bundle with no finding has every audit finding of its provenance matched or listed as
    unchecked, and its summary (holder, owner, mass, origin, state, …) is the audit's replay of the item."""
    assert stats.disagreements == 0, problems(stats, "disagreement")
    assert not problems(stats, "summary"), problems(stats, "summary")
