"""The full custody model: every event kind's rule, each tampered case rejected with its code beside the
untouched case, plus property tests over random custody sequences."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import AUTHORITY, Enrolled, Output, Record
from ledger.events import (
    Attested,
    Corrected,
    Exported,
    Graded,
    Grown,
    Imported,
    Inscribed,
    Merged,
    Mined,
    Registered,
    Retired,
    Set,
    Split,
    Transferred,
    Unset,
    Verified,
)
from ledger.findings import Finding
from world import World, codes, key

T0 = 1_700_000_000_000
EXTRA = {  # party -> (roles, country)
    "kp-bw": (("kp_authority",), "BW"),
    "customs-be": (("customs",), "BE"),
    "node-be": (("node",), "BE"),
    "auditor-x": (("auditor",), "BE"),
    "jeweller-j": (("jeweller", "manufacturer"), "US"),
    "grower-g": (("producer",), "IN"),
    "producer-ru": (("producer",), "RU"),
    "producer-ao": (("producer",), "AO"),
}


class Trade(World):
    """A World with the authorities, a node, an auditor, a jeweller and producers in several countries."""

    def __init__(self) -> None:
        super().__init__()
        self.keys.update({name: key(name) for name in EXTRA})
        self.enrol_all()
        for party, (roles, country) in EXTRA.items():
            event = Enrolled(external_ids=(), party=party, name=party, roles=roles, country=country,
                             key=self.keys[party].public_key.raw, registry_prev=self.state.registry.head)
            assert self.add(self.make(event, AUTHORITY)) == []

    def ok(self, record: Record) -> Record:
        found = self.add(record)
        assert found == [], found
        return record

    def stone(self, item: str = "S1", mass: int = 2_000, holder: str = "trader-b") -> None:
        """A natural stone mined in BW and sold to ``holder``."""
        self.ok(self.mine(item, mass_mct=mass))
        if holder != "producer-a":
            self.ok(self.make(Transferred(to=holder, mode="title"), "producer-a", inputs=[item]))

    def export(self, items: Sequence[str], *, actor: str = "trader-b", cert: str = "BW-001", place: str = "BW",
               consignee: str = "trader-e", kp: str | None = "kp-bw", signers: Sequence[str] | None = None,
               to: str = "BE") -> Record:
        declared = tuple((i, self.state.items[i].mass_mct) for i in sorted(items))
        event = Exported(kp_certificate=cert, to_country=to, consignee=consignee, certificate_mct=10_000,
                         issued_ms=T0, expires_ms=T0 + 10**10, declared=declared, kp_authority=kp)
        return self.make(event, actor, inputs=items, place=place, signers=signers)

    def import_(self, items: Sequence[str], *, actor: str = "trader-e", cert: str = "BW-001", source: str = "BW",
                customs: str | None = "customs-be", place: str = "BE") -> Record:
        declared = tuple((i, self.state.items[i].mass_mct) for i in sorted(items))
        event = Imported(kp_certificate=cert, from_country=source, declared=declared, customs=customs, basis=None)
        return self.make(event, actor, inputs=items, place=place)


@pytest.fixture
def t() -> Trade:
    return Trade()


def only(found: list[Finding], code: str) -> None:
    assert code in codes(found), found


# --- creation ---------------------------------------------------------------------------------------------

def test_grown_stone_is_lab_grown(t: Trade) -> None:
    t.ok(t.make(Grown(facility="Surat CVD", country="IN", method="CVD"), "grower-g", place="IN",
                outputs=[Output(id="G1", type="stone", mass_mct=1_000)]))
    assert t.state.items["G1"].nature == "lab_grown"
    t.ok(t.make(Transferred(to="trader-b", mode="title"), "grower-g", inputs=["G1"]))
    r = t.make(Graded(lab="lab-d", report="R-G1", mass_mct=1_000, colour="E", clarity="VS1", nature="natural"),
               "trader-b", inputs=["G1"])
    only(t.add(r), "nature.mismatch")  # fraud 4: a lab-grown stone passed off as natural


def test_grown_outside_the_producer_country(t: Trade) -> None:
    r = t.make(Grown(facility="Elsewhere", country="CN", method="HPHT"), "grower-g", place="CN",
               outputs=[Output(id="G2", type="stone", mass_mct=1_000)])
    assert codes(t.add(r)) == ["origin.foreign_mine"]


def test_registered_stone_has_unknown_origin(t: Trade) -> None:
    t.ok(t.make(Registered(reason="recovered from an estate ring", nature="natural"), "trader-b",
                outputs=[Output(id="OLD1", type="stone", mass_mct=900)]))
    assert t.state.items["OLD1"].origin == {"XX": 900}


def test_registered_lot_is_refused(t: Trade) -> None:
    r = t.make(Registered(reason="found", nature="natural"), "trader-b",
               outputs=[Output(id="OLD2", type="lot", mass_mct=900)])
    assert codes(t.add(r)) == ["record.shape"]


# --- transfers: title and memo ----------------------------------------------------------------------------

def test_memo_moves_possession_not_title(t: Trade) -> None:
    t.stone()
    t.ok(t.make(Transferred(to="trader-e", mode="memo"), "trader-b", inputs=["S1"]))
    item = t.state.items["S1"]
    assert (item.holder, item.owner) == ("trader-e", "trader-b")
    sale = t.make(Transferred(to="cutter-c", mode="title"), "trader-e", inputs=["S1"])
    assert codes(t.add(sale)) == ["custody.not_owner"]


def test_memo_returned_then_sold(t: Trade) -> None:
    t.stone()
    t.ok(t.make(Transferred(to="trader-e", mode="memo"), "trader-b", inputs=["S1"]))
    t.ok(t.make(Transferred(to="trader-b", mode="memo"), "trader-e", inputs=["S1"]))
    t.ok(t.make(Transferred(to="cutter-c", mode="title"), "trader-b", inputs=["S1"]))


# --- export and import (KP certificates) ------------------------------------------------------------------

def test_export_import_round_trip(t: Trade) -> None:
    t.stone()
    t.ok(t.export(["S1"]))
    assert t.state.items["S1"].state == "in_transit"
    t.ok(t.import_(["S1"]))
    item = t.state.items["S1"]
    assert (item.state, item.holder, item.owner) == ("live", "trader-e", "trader-e")


def test_export_without_the_enrolled_kp_authority(t: Trade) -> None:
    t.stone()
    only(t.add(t.export(["S1"], kp=None)), "sig.missing")


def test_export_naming_the_authority_who_did_not_sign(t: Trade) -> None:
    t.stone()
    only(t.add(t.export(["S1"], signers=["trader-b"])), "sig.missing")


def test_export_cosigned_by_a_non_authority(t: Trade) -> None:
    t.stone()
    only(t.add(t.export(["S1"], kp="node-be")), "role.not_granted")


def test_export_to_an_unenrolled_consignee(t: Trade) -> None:
    t.stone()
    only(t.add(t.export(["S1"], consignee="nobody")), "custody.unknown_consignee")


def test_export_to_its_own_country(t: Trade) -> None:
    t.stone()
    only(t.add(t.export(["S1"], to="BW")), "record.shape")


def test_goods_in_transit_cannot_be_sold(t: Trade) -> None:
    t.stone()
    t.ok(t.export(["S1"]))
    r = t.make(Transferred(to="cutter-c", mode="title"), "trader-b", inputs=["S1"])
    only(t.add(r), "custody.in_transit")


def test_import_by_someone_else_than_the_consignee(t: Trade) -> None:
    t.stone()
    t.ok(t.export(["S1"]))
    only(t.add(t.import_(["S1"], actor="cutter-c")), "custody.not_consignee")


def test_import_under_another_certificate(t: Trade) -> None:
    t.stone()
    t.ok(t.export(["S1"]))
    only(t.add(t.import_(["S1"], cert="BW-999")), "custody.transit_mismatch")


def test_import_into_another_country(t: Trade) -> None:
    t.stone()
    t.ok(t.export(["S1"]))
    only(t.add(t.import_(["S1"], place="AE", customs=None)), "custody.transit_mismatch")


def test_import_without_the_enrolled_customs(t: Trade) -> None:
    t.stone()
    t.ok(t.export(["S1"]))
    only(t.add(t.import_(["S1"], customs=None)), "sig.missing")


def test_import_of_goods_never_exported(t: Trade) -> None:
    t.stone("S2", holder="trader-e")
    only(t.add(t.import_(["S2"])), "custody.not_exported")


def test_declared_masses_must_name_the_shipment(t: Trade) -> None:
    t.stone()
    event = Exported(kp_certificate="BW-002", to_country="BE", consignee="trader-e", certificate_mct=10_000,
                     issued_ms=T0, expires_ms=T0 + 1, declared=(("OTHER", 5),), kp_authority="kp-bw")
    only(t.add(t.make(event, "trader-b", inputs=["S1"], place="BW")), "record.shape")


# --- verification, merge and taint ------------------------------------------------------------------------

def test_node_verification_must_match_the_traced_origin(t: Trade) -> None:
    t.stone()
    good = t.make(Verified(node="node-be", countries=("BW",)), "trader-b", inputs=["S1"])
    t.ok(good)
    bad = t.make(Verified(node="node-be", countries=("CA",)), "trader-b", inputs=["S1"])
    only(t.add(bad), "origin.verification_mismatch")


def test_verification_by_a_non_node(t: Trade) -> None:
    t.stone()
    only(t.add(t.make(Verified(node="lab-d", countries=("BW",)), "trader-b", inputs=["S1"])), "role.not_granted")


def _mined(t: Trade, producer: str, country: str, item: str, mass: int) -> None:
    """A lot mined in ``country`` and shipped to trader-b in Dubai (AE), where goods of any origin meet."""
    t.ok(t.make(Mined(mine="a mine", country=country), producer, place=country,
                outputs=[Output(id=item, type="lot", mass_mct=mass)]))
    kp = "kp-bw" if country == "BW" else None
    t.ok(t.export([item], actor=producer, cert=f"{country}-{item}", place=country, consignee="trader-b", kp=kp,
                  to="AE"))
    t.ok(t.import_([item], actor="trader-b", cert=f"{country}-{item}", source=country, customs=None, place="AE"))


def test_merge_sums_origins_and_splits_carry_the_taint(t: Trade) -> None:
    _mined(t, "producer-ru", "RU", "RU-LOT", 1_000)
    _mined(t, "producer-ao", "AO", "AO-LOT", 9_000)
    t.ok(t.make(Merged(loss_mct=0), "trader-b", inputs=["AO-LOT", "RU-LOT"], consumes=["AO-LOT", "RU-LOT"],
                outputs=[Output(id="MIX", type="lot", mass_mct=10_000)]))
    assert t.state.items["MIX"].origin == {"AO": 9_000, "RU": 1_000}
    t.ok(t.make(Split(loss_mct=0), "trader-b", inputs=["MIX"], consumes=["MIX"],
                outputs=[Output(id="MIX-1", type="stone", mass_mct=10),
                         Output(id="MIX-2", type="lot", mass_mct=9_990)]))
    assert set(t.state.items["MIX-1"].origin) == {"AO", "RU"}  # even a 0.01 ct stone carries both countries


def test_merge_heavier_than_its_inputs(t: Trade) -> None:
    _mined(t, "producer-ru", "RU", "L1", 1_000)
    _mined(t, "producer-ao", "AO", "L2", 1_000)
    r = t.make(Merged(loss_mct=0), "trader-b", inputs=["L1", "L2"], consumes=["L1", "L2"],
               outputs=[Output(id="M", type="lot", mass_mct=2_001)])
    assert codes(t.add(r)) == ["mass.exceeds_input"]


def test_merging_lab_grown_into_natural_goods(t: Trade) -> None:
    _mined(t, "producer-ao", "AO", "L1", 1_000)
    t.ok(t.make(Grown(facility="x", country="IN", method="CVD"), "grower-g", place="IN",
                outputs=[Output(id="G", type="lot", mass_mct=1_000)]))
    t.ok(t.export(["G"], actor="grower-g", cert="IN-G", place="IN", consignee="trader-b", kp=None, to="AE"))
    t.ok(t.import_(["G"], actor="trader-b", cert="IN-G", source="IN", customs=None, place="AE"))
    r = t.make(Merged(loss_mct=0), "trader-b", inputs=["G", "L1"], consumes=["G", "L1"],
               outputs=[Output(id="M", type="lot", mass_mct=2_000)])
    assert codes(t.add(r)) == ["nature.mismatch"]


def test_merge_of_a_single_input(t: Trade) -> None:
    _mined(t, "producer-ao", "AO", "L1", 1_000)
    r = t.make(Merged(loss_mct=0), "trader-b", inputs=["L1"], consumes=["L1"],
               outputs=[Output(id="M", type="lot", mass_mct=1_000)])
    assert codes(t.add(r)) == ["record.shape"]


def test_merge_making_a_stone(t: Trade) -> None:
    _mined(t, "producer-ru", "RU", "L1", 1_000)
    _mined(t, "producer-ao", "AO", "L2", 1_000)
    r = t.make(Merged(loss_mct=0), "trader-b", inputs=["L1", "L2"], consumes=["L1", "L2"],
               outputs=[Output(id="M", type="stone", mass_mct=2_000)])
    assert codes(t.add(r)) == ["record.shape"]


# --- inscription ------------------------------------------------------------------------------------------

def test_one_inscription_per_live_stone(t: Trade) -> None:
    t.stone("S1")
    t.stone("S2")
    t.ok(t.make(Inscribed(lab="lab-d", inscription="GIA-123"), "trader-b", inputs=["S1"]))
    r = t.make(Inscribed(lab="lab-d", inscription="GIA-123"), "trader-b", inputs=["S2"])
    assert codes(t.add(r)) == ["identity.duplicate_inscription"]  # fraud 4: a counterfeit inscription


def test_inscription_by_a_non_lab(t: Trade) -> None:
    t.stone()
    r = t.make(Inscribed(lab="trader-e", inscription="X"), "trader-b", inputs=["S1"])
    assert codes(t.add(r)) == ["role.not_granted"]


# --- jewellery: set and unset -----------------------------------------------------------------------------

def _ring(t: Trade) -> None:
    t.stone("S1", 1_000, holder="jeweller-j")
    t.stone("S2", 300, holder="jeweller-j")
    t.ok(t.make(Set(description="platinum ring"), "jeweller-j", inputs=["S1", "S2"],
                outputs=[Output(id="RING", type="article", mass_mct=1_300)]))


def test_set_stones_are_locked_until_unset(t: Trade) -> None:
    _ring(t)
    sale = t.make(Transferred(to="trader-e", mode="title"), "jeweller-j", inputs=["S1"])
    assert codes(t.add(sale)) == ["custody.locked"]
    t.ok(t.make(Transferred(to="cutter-c", mode="title"), "jeweller-j", inputs=["RING"]))
    assert t.state.items["S1"].owner == "cutter-c"  # the stones follow the article
    t.ok(t.make(Unset(reason="remount"), "cutter-c", inputs=["RING", "S1", "S2"], consumes=["RING"]))
    assert t.state.items["S1"].state == "live" and t.state.items["RING"].state == "consumed"


def test_article_mass_must_be_its_stones(t: Trade) -> None:
    t.stone("S1", 1_000, holder="jeweller-j")
    r = t.make(Set(description="ring"), "jeweller-j", inputs=["S1"],
               outputs=[Output(id="RING", type="article", mass_mct=1_500)])
    assert codes(t.add(r)) == ["mass.article_mismatch"]


def test_unset_must_release_all_its_stones(t: Trade) -> None:
    _ring(t)
    r = t.make(Unset(reason="x"), "jeweller-j", inputs=["RING", "S1"], consumes=["RING"])
    assert codes(t.add(r)) == ["record.shape"]


def test_unset_of_a_free_stone(t: Trade) -> None:
    _ring(t)
    t.stone("S3", 500, holder="jeweller-j")
    r = t.make(Unset(reason="x"), "jeweller-j", inputs=["RING", "S1", "S2", "S3"], consumes=["RING"])
    assert "custody.not_locked" in codes(t.add(r))


def test_set_by_a_trader(t: Trade) -> None:
    t.stone("S1", 1_000)
    r = t.make(Set(description="ring"), "trader-b", inputs=["S1"],
               outputs=[Output(id="RING", type="article", mass_mct=1_000)])
    assert codes(t.add(r)) == ["role.not_granted"]


# --- retirement -------------------------------------------------------------------------------------------

def test_stolen_stone_admits_no_later_sale(t: Trade) -> None:
    t.stone()
    t.ok(t.make(Retired(reason="stolen"), "trader-b", inputs=["S1"]))
    r = t.make(Transferred(to="trader-e", mode="title"), "trader-b", inputs=["S1"])
    assert codes(t.add(r)) == ["custody.retired"]  # fraud 7


def test_a_stolen_ring_takes_its_stones_with_it(t: Trade) -> None:
    _ring(t)
    t.ok(t.make(Retired(reason="stolen"), "jeweller-j", inputs=["RING"]))
    assert t.state.items["S1"].state == "retired"


def test_customs_may_seize_what_it_does_not_hold(t: Trade) -> None:
    t.stone()
    t.ok(t.export(["S1"]))
    t.ok(t.import_(["S1"]))
    t.ok(t.make(Retired(reason="seized"), "customs-be", inputs=["S1"]))


def test_customs_seizes_only_in_its_own_country(t: Trade) -> None:
    t.stone()  # the stone is in BW; Belgian customs has no power there
    assert codes(t.add(t.make(Retired(reason="seized"), "customs-be", inputs=["S1"]))) == ["role.wrong_country"]


def test_goods_cannot_cross_a_border_without_export_and_import(t: Trade) -> None:
    t.stone()  # in BW
    r = t.make(Transferred(to="trader-e", mode="title"), "trader-b", inputs=["S1"], place="BE")
    assert codes(t.add(r)) == ["custody.wrong_place"]


def test_a_retired_stone_keeps_its_report_number(t: Trade) -> None:
    t.stone("S1")
    t.stone("S2")
    t.ok(t.make(Graded(lab="lab-d", report="GIA-9", mass_mct=2_000, colour="G", clarity="VS1", nature="natural"),
                "trader-b", inputs=["S1"]))
    t.ok(t.make(Retired(reason="stolen"), "trader-b", inputs=["S1"]))
    again = t.make(Graded(lab="lab-d", report="GIA-9", mass_mct=2_000, colour="G", clarity="VS1", nature="natural"),
                   "trader-b", inputs=["S2"])
    assert codes(t.add(again)) == ["identity.duplicate_report"]  # fraud 7: a stolen stone's papers reused


def test_an_article_cannot_be_split(t: Trade) -> None:
    _ring(t)
    r = t.make(Split(loss_mct=0), "jeweller-j", inputs=["RING"], consumes=["RING"],
               outputs=[Output(id="BIG", type="stone", mass_mct=1_300)])
    assert "record.shape" in codes(t.add(r))


def test_a_node_cannot_verify_an_unknown_origin(t: Trade) -> None:
    t.ok(t.make(Registered(reason="found", nature="natural"), "trader-b",
                outputs=[Output(id="OLD3", type="stone", mass_mct=900)]))
    r = t.make(Verified(node="node-be", countries=("XX",)), "trader-b", inputs=["OLD3"])
    assert codes(t.add(r)) == ["origin.verification_mismatch"]


def test_only_customs_seizes(t: Trade) -> None:
    t.stone()
    r = t.make(Retired(reason="seized"), "trader-e", inputs=["S1"])
    assert codes(t.add(r)) == ["custody.not_holder"]


# --- statements -------------------------------------------------------------------------------------------

def test_attestation_by_an_auditor(t: Trade) -> None:
    t.stone()
    subject = t.records[-1].record_hash
    t.ok(t.make(Attested(subject=subject, statement="stock held in Antwerp before 2024-03-01"), "auditor-x"))
    r = t.make(Attested(subject=subject, statement="x"), "trader-e")
    assert codes(t.add(r)) == ["role.not_granted"]


def test_attestation_about_an_unknown_record(t: Trade) -> None:
    r = t.make(Attested(subject=bytes(32), statement="x"), "auditor-x")  # type: ignore[arg-type]
    assert codes(t.add(r)) == ["record.unknown_subject"]


def test_correction_only_by_a_signer(t: Trade) -> None:
    t.stone()
    subject = t.records[-1].record_hash  # the sale producer-a -> trader-b
    t.ok(t.make(Corrected(subject=subject, statement="sold on 2 May, not 1 May"), "trader-b"))
    r = t.make(Corrected(subject=subject, statement="x"), "cutter-c")
    assert codes(t.add(r)) == ["correction.not_signer"]
    assert t.state.items["S1"].holder == "trader-b"  # a correction never edits


# --- property tests ---------------------------------------------------------------------------------------

OPS = st.lists(st.tuples(st.sampled_from(["split", "merge", "transfer", "set", "unset", "reuse"]),
                         st.integers(0, 10**6)), min_size=1, max_size=25)


@settings(max_examples=40, deadline=None)
@given(OPS)
def test_random_custody_keeps_mass_taint_and_death(ops: list[tuple[str, int]]) -> None:
    t = Trade()
    _mined(t, "producer-ru", "RU", "A", 50_000)
    _mined(t, "producer-ao", "AO", "B", 50_000)
    t.ok(t.make(Transferred(to="jeweller-j", mode="title"), "trader-b", inputs=["A"]))
    t.ok(t.make(Transferred(to="jeweller-j", mode="title"), "trader-b", inputs=["B"]))
    consumed: list[str] = []
    for n, (op, seed) in enumerate(ops):
        live = sorted(i for i, it in t.state.items.items() if it.state == "live" and it.type != "article")
        articles = sorted(i for i, it in t.state.items.items() if it.state == "live" and it.type == "article")
        record = _random_op(t, op, seed, n, live, articles, consumed)
        if record is None:
            continue
        found = t.add(record)
        if op == "reuse":
            assert "custody.consumed" in codes(found)
            continue
        assert found == [], (op, found)
        consumed += list(record.body.consumes)
    _assert_invariants(t)


def _random_op(t: Trade, op: str, seed: int, n: int, live: list[str], articles: list[str],
               consumed: list[str]) -> Record | None:
    holder = "jeweller-j"
    if op == "reuse" and consumed:
        return t.make(Transferred(to="trader-e", mode="title"), holder, inputs=[consumed[seed % len(consumed)]])
    if op == "transfer" and live:
        item = live[seed % len(live)]
        t.ok(t.make(Transferred(to="trader-e", mode="memo"), holder, inputs=[item]))
        return t.make(Transferred(to=holder, mode="memo"), "trader-e", inputs=[item])
    if op == "split" and live:
        item = t.state.items[live[seed % len(live)]]
        a = item.mass_mct * (seed % 60 + 20) // 100
        b = (item.mass_mct - a) // 2
        if a < 1 or b < 1:
            return None
        outs = [Output(id=f"X{n}a", type="lot", mass_mct=a), Output(id=f"X{n}b", type="stone", mass_mct=b)]
        return t.make(Split(loss_mct=item.mass_mct - a - b), holder, inputs=[item.id], consumes=[item.id], outputs=outs)
    if op == "merge" and len(live) >= 2:
        ids = sorted({live[seed % len(live)], live[(seed // 7 + 1) % len(live)]})
        if len(ids) < 2:
            return None
        total = sum(t.state.items[i].mass_mct for i in ids)
        return t.make(Merged(loss_mct=seed % 3), holder, inputs=ids, consumes=ids,
                      outputs=[Output(id=f"X{n}m", type="lot", mass_mct=total - seed % 3)])
    stones = [i for i in live if t.state.items[i].type == "stone"]
    if op == "set" and stones:
        item = stones[seed % len(stones)]
        return t.make(Set(description="ring"), holder, inputs=[item],
                      outputs=[Output(id=f"X{n}r", type="article", mass_mct=t.state.items[item].mass_mct)])
    if op == "unset" and articles:
        article = articles[seed % len(articles)]
        inside = sorted(i for i, it in t.state.items.items() if it.article == article and it.state == "locked")
        return t.make(Unset(reason="x"), holder, inputs=[article, *inside], consumes=[article])
    return None


def _assert_invariants(t: Trade) -> None:
    """Mass never grows; every item's origin sums to its mass; every output keeps all its parents' countries."""
    held = sum(i.mass_mct for i in t.state.items.values() if i.state in ("live", "locked") and i.type != "article")
    assert held <= 100_000
    for item in t.state.items.values():
        if item.type != "article":
            assert sum(item.origin.values()) == item.mass_mct, item
    for record in t.records:
        parents = [t.state.items[i] for i, _ in record.body.inputs if i in t.state.items]
        for out in record.body.outputs:
            if parents and out.id in t.state.items:
                inherited = set().union(*(set(p.origin) for p in parents))
                assert set(t.state.items[out.id].origin) >= inherited, (out.id, inherited)


def test_a_memo_holder_cannot_ship_cut_or_retire(t: Trade) -> None:
    t.stone()
    t.ok(t.make(Transferred(to="cutter-c", mode="memo"), "trader-b", inputs=["S1"]))
    cut = t.make(Split(loss_mct=0), "cutter-c", inputs=["S1"], consumes=["S1"],
                 outputs=[Output(id="S1-A", type="stone", mass_mct=2_000)])
    assert codes(t.state.check(cut)) == ["custody.not_owner"]
    lost = t.make(Retired(reason="lost"), "cutter-c", inputs=["S1"])
    assert codes(t.state.check(lost)) == ["custody.not_owner"]


def test_a_foreign_kp_authority_cannot_cosign(t: Trade) -> None:
    t.stone()
    event = Exported(kp_certificate="BW-003", to_country="BE", consignee="trader-e", certificate_mct=10_000,
                     issued_ms=T0, expires_ms=T0 + 1, declared=(("S1", 2_000),), kp_authority="kp-be")
    t.keys["kp-be"] = key("kp-be")
    t.ok(t.make(Enrolled(external_ids=(), party="kp-be", name="kp-be", roles=("kp_authority",), country="BE",
                         key=t.keys["kp-be"].public_key.raw, registry_prev=t.state.registry.head), AUTHORITY))
    assert "role.wrong_country" in codes(t.add(t.make(event, "trader-b", inputs=["S1"], place="BW")))


def test_two_outputs_differing_only_in_case(t: Trade) -> None:
    t.stone(holder="cutter-c")
    r = t.make(Split(loss_mct=0), "cutter-c", inputs=["S1"], consumes=["S1"],
               outputs=[Output(id="S1-A", type="stone", mass_mct=1_000),
                        Output(id="s1-a", type="stone", mass_mct=1_000)])
    assert codes(t.add(r)) == ["item.duplicate_id"]


def test_report_numbers_are_one_identity_ignoring_case(t: Trade) -> None:
    t.stone("S1")
    t.stone("S2")
    t.ok(t.make(Graded(lab="lab-d", report="GIA-7", mass_mct=2_000, colour="G", clarity="VS1", nature="natural"),
                "trader-b", inputs=["S1"]))
    again = t.make(Graded(lab="lab-d", report="gia-7", mass_mct=2_000, colour="G", clarity="VS1", nature="natural"),
                   "trader-b", inputs=["S2"])
    assert codes(t.add(again)) == ["identity.duplicate_report"]


def test_destination_customs_may_seize_goods_arriving_in_transit(t: Trade) -> None:
    t.stone()
    t.ok(t.export(["S1"]))  # in transit from BW to BE
    t.ok(t.make(Retired(reason="seized"), "customs-be", inputs=["S1"], place="BE"))
