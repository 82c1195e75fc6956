"""A bundle is current only as of its checkpoint: export refuses a checkpoint the file has later records of the
item's provenance beyond (checkpoint.stale), unless asked for the older view (as_of); later records of other
goods do not make it stale (issue 9, docs/format.md §7a.3 "Currency")."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger import (
    Attested,
    Output,
    Retired,
    Split,
    Transferred,
    checkpoint_file,
    export_bundle,
    export_bundle_as_of,
    export_bundles,
    verify_bundle,
)
from ledger.errors import VerificationError
from ledger.export import StaleCheckpointError
from ledger.record import Record
from ledger.storage import FileStore
from world import OPERATOR, ORIGIN, TRUST, World


def _world() -> World:
    """An auditor enrolled; rough R mined and split into R-A and R-B."""
    w = World()
    w.enrol_all()
    w.enrol_party("auditor-x", ["auditor"], "BE")
    assert w.add(w.mine("R", 3_000)) == []
    assert w.add(w.make(Split(loss_mct=1_000), "producer-a", place="BW", inputs=["R"], consumes=["R"],
                        outputs=[Output(id="R-A", type="stone", mass_mct=1_200),
                                 Output(id="R-B", type="stone", mass_mct=800)])) == []
    return w


def _later(w: World, case: str) -> Record:
    if case == "the item is reported stolen":
        return w.make(Retired(reason="stolen"), "producer-a", inputs=["R-A"], place="BW")
    if case == "a statement about its rough":
        mining = next(r for r in w.records if r.body.kind == "mined")
        return w.make(Attested(subject=mining.record_hash, statement="held before 2024-03-01"), "auditor-x")
    return w.make(Transferred(to="trader-b", mode="title"), "producer-a", inputs=["R-B"], place="BW")


@pytest.fixture
def before(tmp_path: Path) -> tuple[World, Path, str]:
    """The world's records in a file, and the operator's checkpoint of them."""
    w = _world()
    with FileStore.create(tmp_path / "l.ledger", ORIGIN) as store:
        store.append_batch([r.raw for r in w.records])
    return w, tmp_path / "l.ledger", checkpoint_file(tmp_path / "l.ledger", OPERATOR)


@pytest.mark.parametrize("case", ["the item is reported stolen", "a statement about its rough"])
def test_a_later_record_of_the_provenance_makes_the_checkpoint_stale(before: tuple[World, Path, str],
                                                                      case: str) -> None:
    w, path, note = before
    old = export_bundle(path, "R-A", note)  # current: nothing after the checkpoint yet
    later = _later(w, case)
    assert w.add(later) == []
    with FileStore.open(path, writable=True) as store:
        position = store.append(later.raw)
    with pytest.raises(StaleCheckpointError) as err:
        export_bundle(path, "R-A", note, trust=TRUST)
    assert err.value.code == "checkpoint.stale" and isinstance(err.value, VerificationError)
    assert err.value.done.later == (position,) and f"record {position}" in str(err.value)
    with pytest.raises(StaleCheckpointError):
        export_bundles(path, ["R-B", "R-A"], note)
    asked = export_bundle_as_of(path, "R-A", note, trust=TRUST)
    assert asked.bundle == old == export_bundle(path, "R-A", note, as_of=True) and asked.later == (position,)
    fresh = export_bundle(path, "R-A", checkpoint_file(path, OPERATOR), trust=TRUST)
    expected = "retired" if case == "the item is reported stolen" else "live"
    assert verify_bundle(fresh, TRUST).state == expected


def test_later_records_of_other_goods_do_not(before: tuple[World, Path, str]) -> None:
    w, path, note = before
    sale = _later(w, "a sibling is sold")
    assert w.add(sale) == []
    with FileStore.open(path, writable=True) as store:
        store.append(sale.raw)
    assert export_bundle_as_of(path, "R-A", note).later == ()  # R-B is no record of R-A's provenance
    assert verify_bundle(export_bundle(path, "R-A", note), TRUST).state == "live"
    with pytest.raises(StaleCheckpointError):
        export_bundle(path, "R-B", note)
