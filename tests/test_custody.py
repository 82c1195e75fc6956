"""Every custody, chain, signature and registry rule: the tampered case is rejected with its named code,
the untouched case is accepted."""

from __future__ import annotations

import pytest

from ledger import AUTHORITY, Graded, Output, Record, Retired, Split, Transferred
from ledger._codec import decode, encode
from ledger.events import Mined
from ledger.hashing import Digest
from ledger.origin import split_origin
from world import World, codes, envelope, key

P1 = Output(id="S1-P1", type="stone", mass_mct=700)
P2 = Output(id="S1-P2", type="stone", mass_mct=300)


def graded(report: str = "R-1", mass: int = 700, nature: str = "natural", lab: str = "lab-d") -> Graded:
    return Graded(lab=lab, report=report, mass_mct=mass, colour="G", clarity="VS1", nature=nature)


@pytest.fixture
def w() -> World:
    """Enrolled parties; stone S1 (2 ct) mined by producer-a and sold to cutter-c (via trader-b)."""
    world = World()
    world.enrol_all()
    assert world.add(world.mine()) == []
    assert world.add(world.make(Transferred(to="trader-b", mode="title"), "producer-a", inputs=["S1"])) == []
    assert world.add(world.make(Transferred(to="cutter-c", mode="title"), "trader-b", inputs=["S1"])) == []
    return world


def split_s1(w: World, loss: int = 1_000, outputs: tuple[Output, ...] = (P1, P2)) -> Record:
    return w.make(Split(loss_mct=loss), "cutter-c", inputs=["S1"], consumes=["S1"], outputs=outputs)


def test_a_sale_to_a_party_nobody_enrolled_says_so(w: World) -> None:
    """A new user's review: Transferred(to="nobody") said only "transferred needs a signature by nobody"."""
    def missing(to: str) -> str:
        found = w.add(w.make(Transferred(to=to, mode="title"), "cutter-c", inputs=["S1"], signers=["cutter-c"]))
        return next(f.reason for f in found if f.code == "sig.missing" and f.item == to)

    assert "no party 'nobody' is enrolled" in missing("nobody")
    assert "enrolled" not in missing("trader-e")  # an enrolled buyer's missing signature: as it was


def test_mining_several_stones_in_one_record_says_how_to_record_them(w: World) -> None:
    outputs = [Output(id=f"M{i}", type="stone", mass_mct=1_000) for i in range(3)]
    found = w.add(w.make(Mined(mine="Jwaneng", country="BW"), "producer-a", place="BW", outputs=outputs))
    assert codes(found) == ["record.shape"] and "record a lot, then split it" in found[0].reason


def test_the_untouched_lifecycle_passes(w: World) -> None:
    assert w.add(split_s1(w)) == []
    assert w.add(w.make(graded(), "cutter-c", inputs=["S1-P1"])) == []
    assert w.add(w.make(Transferred(to="trader-e", mode="title"), "cutter-c", inputs=["S1-P1"])) == []
    p1 = w.state.items["S1-P1"]
    assert (p1.holder, p1.mass_mct, p1.origin, p1.nature) == ("trader-e", 700, {"BW": 700}, "natural")
    assert not w.state.items["S1"].live


# --- signatures -------------------------------------------------------------------------------------------

def test_receiver_signature_missing(w: World) -> None:
    r = w.make(Transferred(to="trader-e", mode="title"), "cutter-c", inputs=["S1"], signers=["cutter-c"])
    assert codes(w.add(r)) == ["sig.missing"]


def test_holder_signature_missing(w: World) -> None:
    r = w.make(Transferred(to="trader-e", mode="title"), "cutter-c", inputs=["S1"], signers=["trader-e"])
    assert codes(w.add(r)) == ["sig.missing"]


def test_signature_over_other_body_is_invalid(w: World) -> None:
    good = w.make(Transferred(to="trader-e", mode="title"), "cutter-c", inputs=["S1"])
    other = w.make(Transferred(to="trader-b", mode="title"), "cutter-c", inputs=["S1"])
    env = decode(good.raw[len(b"stonetrail/v1/record\n"):])
    forged = Record.from_bytes(envelope(other.body_bytes, env["sigs"]))  # type: ignore[index,arg-type]
    found = codes(w.add(forged))
    assert "sig.invalid" in found


def test_signature_bit_flip_is_invalid(w: World) -> None:
    r = w.make(Transferred(to="trader-e", mode="title"), "cutter-c", inputs=["S1"])
    env = decode(r.raw[len(b"stonetrail/v1/record\n"):])
    sigs = env["sigs"]  # type: ignore[index]
    sig = bytearray(sigs[0]["sig"])  # type: ignore[index]
    sig[40] ^= 1  # inside S: still < L, so it reaches RFC 8032 verification
    sigs[0]["sig"] = bytes(sig)  # type: ignore[index]
    assert "sig.invalid" in codes(w.add(Record.from_bytes(envelope(r.body_bytes, sigs))))  # type: ignore[arg-type]


def test_unenrolled_receiver(w: World) -> None:
    r = w.make(Transferred(to="outsider", mode="title"), "cutter-c", inputs=["S1"])
    assert codes(w.add(r)) == ["sig.unknown_party"]


def test_key_not_enrolled_for_party(w: World) -> None:
    r = w.make(Transferred(to="trader-e", mode="title"), "cutter-c", inputs=["S1"], keys={"cutter-c": key("stolen")})
    assert codes(w.add(r)) == ["sig.unknown_key"]


def test_unexpected_extra_signer(w: World) -> None:
    r = w.make(Transferred(to="trader-e", mode="title"), "cutter-c", inputs=["S1"],
               signers=["cutter-c", "trader-e", "lab-d"])
    assert codes(w.add(r)) == ["sig.unexpected"]


# --- roles ------------------------------------------------------------------------------------------------

def test_trader_cannot_mine() -> None:
    w = World()
    w.enrol_all()
    r = w.make(Mined(mine="Jwaneng", country="BW"), "trader-b", place="BW",
               outputs=[Output(id="X", type="stone", mass_mct=5)])
    assert codes(w.add(r)) == ["role.not_granted"]


def test_grading_by_a_party_without_the_lab_role(w: World) -> None:
    assert w.add(split_s1(w)) == []
    r = w.make(graded(lab="trader-e"), "cutter-c", inputs=["S1-P1"])
    assert codes(w.add(r)) == ["role.not_granted"]


def test_trader_cannot_split(w: World) -> None:
    r = w.make(Transferred(to="lab-d", mode="title"), "cutter-c", inputs=["S1"])
    assert w.add(r) == []  # any enrolled party may receive
    r = w.make(Split(loss_mct=0), "lab-d", inputs=["S1"], consumes=["S1"], outputs=[P1])
    assert codes(w.add(r)) == ["role.not_granted"]


# --- custody ----------------------------------------------------------------------------------------------

def test_only_the_holder_transfers(w: World) -> None:
    r = w.make(Transferred(to="trader-e", mode="title"), "trader-b", inputs=["S1"])  # trader-b sold it already
    assert codes(w.add(r)) == ["custody.not_holder"]


def test_consumed_parent_is_never_used_again(w: World) -> None:
    assert w.add(split_s1(w)) == []
    again = w.make(Transferred(to="trader-e", mode="title"), "cutter-c", inputs=["S1"])
    assert codes(w.add(again)) == ["custody.consumed"]


def test_a_finding_reads_the_same_in_every_run(w: World) -> None:
    """A retirement takes a live or in-transit item: the reason names both in sorted order, not in a set's order
    (which changes from run to run with the string hashes: an audit's output and its saved state would too)."""
    assert w.add(split_s1(w)) == []
    (found,) = w.add(w.make(Retired(reason="lost"), "cutter-c", inputs=["S1"]))
    assert found.code == "custody.consumed" and found.reason.endswith("retired needs in_transit or live")


def test_a_parent_split_twice(w: World) -> None:
    assert w.add(split_s1(w)) == []
    twice = split_s1(w, outputs=(Output(id="S1-P3", type="stone", mass_mct=900),))
    assert "custody.consumed" in codes(w.add(twice))


def test_unknown_input_item(w: World) -> None:
    r = w.make(Transferred(to="trader-e", mode="title"), "cutter-c", inputs=["NOPE"], prev={"NOPE": Digest(bytes(32))})
    assert codes(w.add(r)) == ["custody.unknown_item"]


def test_self_transfer(w: World) -> None:
    r = w.make(Transferred(to="cutter-c", mode="title"), "cutter-c", inputs=["S1"], signers=["cutter-c"])
    assert codes(w.add(r)) == ["custody.self_transfer"]


def test_stone_sold_twice_is_a_fork(w: World) -> None:
    head = w.state.items["S1"].head
    assert w.add(w.make(Transferred(to="trader-e", mode="title"), "cutter-c", inputs=["S1"])) == []
    second = w.make(Transferred(to="trader-b", mode="title"), "cutter-c", inputs=["S1"], prev={"S1": head})
    assert "chain.fork" in codes(w.add(second))
    assert w.state.items["S1"].holder == "trader-e"  # a forking record never moves the head


def test_link_to_an_unknown_record(w: World) -> None:
    r = w.make(Transferred(to="trader-e", mode="title"), "cutter-c", inputs=["S1"], prev={"S1": Digest(b"\x07" * 32)})
    assert codes(w.add(r)) == ["chain.link_mismatch"]


def test_time_goes_backwards(w: World) -> None:
    r = w.make(Transferred(to="trader-e", mode="title"), "cutter-c", inputs=["S1"],
               time_ms=w.state.items["S1"].head_time_ms - 1)  # 1 ms before its last record, after every enrolment
    assert codes(w.add(r)) == ["chain.time_backwards"]


def test_output_id_reused(w: World) -> None:
    assert codes(w.add(w.mine("S1"))) == ["item.duplicate_id"]


def test_record_from_another_ledger(w: World) -> None:
    r = w.make(Transferred(to="trader-e", mode="title"), "cutter-c", inputs=["S1"], origin="other.example/ledger")
    assert codes(w.add(r)) == ["record.wrong_origin"]


def test_split_that_does_not_consume_its_input(w: World) -> None:
    r = w.make(Split(loss_mct=1_000), "cutter-c", inputs=["S1"], outputs=[P1, P2])
    assert codes(w.add(r)) == ["record.shape"]


def test_mined_with_an_input(w: World) -> None:
    r = w.make(Mined(mine="Jwaneng", country="BW"), "producer-a", inputs=["S1"], place="BW",
               outputs=[Output(id="X", type="stone", mass_mct=5)])
    assert "record.shape" in codes(w.add(r))


def test_mined_article_is_refused() -> None:
    w = World()
    w.enrol_all()
    assert codes(w.add(w.mine("A1", kind="article"))) == ["record.shape"]


def test_mined_place_must_be_the_mine_country() -> None:
    w = World()
    w.enrol_all()
    r = w.make(Mined(mine="Jwaneng", country="BW"), "producer-a", place="AE",
               outputs=[Output(id="S1", type="stone", mass_mct=5)])
    assert codes(w.add(r)) == ["record.shape"]


def test_a_forking_split_creates_nothing(w: World) -> None:
    head = w.state.items["S1"].head
    assert w.add(w.make(Transferred(to="trader-e", mode="title"), "cutter-c", inputs=["S1"])) == []
    fork = w.make(Split(loss_mct=1_000), "cutter-c", inputs=["S1"], consumes=["S1"], outputs=[P1, P2],
                  prev={"S1": head})
    assert "chain.fork" in codes(w.add(fork))
    assert "S1-P1" not in w.state.items and w.state.items["S1"].live


# --- mass, nature, identity -------------------------------------------------------------------------------

def test_split_outputs_exceed_input(w: World) -> None:
    assert codes(w.add(split_s1(w, loss=1_001))) == ["mass.exceeds_input"]


def test_split_exactly_at_balance_passes(w: World) -> None:
    assert w.add(split_s1(w, loss=1_000)) == []


def test_weight_inflated_at_grading(w: World) -> None:
    assert w.add(split_s1(w)) == []
    assert codes(w.add(w.make(graded(mass=701), "cutter-c", inputs=["S1-P1"]))) == ["mass.exceeds_input"]


def test_lab_grown_grading_of_a_mined_stone(w: World) -> None:
    assert w.add(split_s1(w)) == []
    assert codes(w.add(w.make(graded(nature="lab_grown"), "cutter-c", inputs=["S1-P1"]))) == ["nature.mismatch"]


def test_one_report_number_for_two_live_stones(w: World) -> None:
    assert w.add(split_s1(w)) == []
    assert w.add(w.make(graded("R-9"), "cutter-c", inputs=["S1-P1"])) == []
    again = w.make(graded("R-9", mass=300), "cutter-c", inputs=["S1-P2"])
    assert codes(w.add(again)) == ["identity.duplicate_report"]


def test_report_of_a_consumed_stone_passes_to_one_live_stone_only(w: World) -> None:
    assert w.add(split_s1(w)) == []
    assert w.add(w.make(graded("R-7"), "cutter-c", inputs=["S1-P1"])) == []
    cut = w.make(Split(loss_mct=100), "cutter-c", inputs=["S1-P1"], consumes=["S1-P1"],
                 outputs=[Output(id="S1-P1-X", type="stone", mass_mct=600)])
    assert w.add(cut) == []  # S1-P1 is consumed: its report number is free again
    assert w.add(w.make(graded("R-7", mass=600), "cutter-c", inputs=["S1-P1-X"])) == []
    third = w.make(graded("R-7", mass=300), "cutter-c", inputs=["S1-P2"])
    assert codes(w.add(third)) == ["identity.duplicate_report"]


def test_regrade_under_a_new_number_frees_the_old_one(w: World) -> None:
    assert w.add(split_s1(w)) == []
    assert w.add(w.make(graded("OLD"), "cutter-c", inputs=["S1-P1"])) == []
    assert w.add(w.make(graded("NEW"), "cutter-c", inputs=["S1-P1"])) == []
    assert w.add(w.make(graded("OLD", mass=300), "cutter-c", inputs=["S1-P2"])) == []


def test_grading_a_lot_is_refused() -> None:
    w = World()
    w.enrol_all()
    assert w.add(w.mine("L1", kind="lot")) == []
    assert "record.shape" in codes(w.add(w.make(graded(mass=10), "producer-a", inputs=["L1"])))


# --- registry ---------------------------------------------------------------------------------------------

def test_enrolment_not_signed_by_the_authority() -> None:
    w = World()
    assert codes(w.add(w.enrol("producer-a", ["producer"], signer=key("fake authority")))) == ["registry.not_authority"]
    assert w.add(w.enrol("producer-a", ["producer"])) == []


def test_enrolment_acted_by_a_party() -> None:
    w = World()
    w.enrol_all()
    r = w.make(w.enrol("outsider", ["lab"]).body.event, "trader-b")
    assert "registry.not_authority" in codes(w.add(r))


def test_registry_chain_gap() -> None:
    w = World()
    assert w.add(w.enrol("producer-a", ["producer"])) == []
    assert codes(w.add(w.enrol("trader-b", ["trader"], prev=None))) == ["registry.link_mismatch"]


def test_enrolment_with_outputs_is_refused() -> None:
    w = World()
    event = w.enrol("producer-a", ["producer"]).body.event
    r = w.make(event, AUTHORITY, outputs=[Output(id="FREE", type="stone", mass_mct=1)])
    assert codes(w.add(r)) == ["record.shape"]


def test_party_enrolled_twice() -> None:
    w = World()
    assert w.add(w.enrol("producer-a", ["producer"])) == []
    assert codes(w.add(w.enrol("producer-a", ["lab"]))) == ["registry.duplicate_party"]


def test_reserved_authority_id() -> None:
    w = World()
    assert codes(w.add(w.enrol(AUTHORITY, ["lab"], key_raw=key("x").public_key.raw))) == ["registry.reserved_id"]


@pytest.mark.parametrize("raw", [bytes(32), bytes([1]) + bytes(31), bytes.fromhex("ec" + "ff" * 30 + "7f")])
def test_unsafe_key_is_refused_at_enrolment(raw: bytes) -> None:
    w = World()
    found = codes(w.add(w.enrol("producer-a", ["producer"], key_raw=raw)))
    assert len(found) == 1 and found[0].startswith("key.")


def test_unenrolled_producer_cannot_mine() -> None:
    w = World()
    assert codes(w.add(w.mine())) == ["sig.unknown_party"]


# --- origin composition -----------------------------------------------------------------------------------

def test_split_origin_keeps_every_country_and_sums_to_each_mass() -> None:
    parts = split_origin({"AO": 600, "RU": 400}, [700, 299, 1])
    assert [sum(p.values()) for p in parts] == [700, 299, 1]
    assert all(set(p) == {"AO", "RU"} for p in parts)


def test_record_bytes_are_canonical_and_stable(w: World) -> None:
    r = split_s1(w)
    assert Record.from_bytes(r.raw).raw == r.raw
    assert encode(decode(r.raw[len(b"stonetrail/v1/record\n"):])) == r.raw[len(b"stonetrail/v1/record\n"):]


def test_producer_attests_only_mines_of_its_country() -> None:
    w = World()
    w.enrol_all()  # producer-a is enrolled in BW
    r = w.make(Mined(mine="Diavik", country="CA"), "producer-a", place="CA",
               outputs=[Output(id="C1", type="stone", mass_mct=5)])
    assert codes(w.add(r)) == ["origin.foreign_mine"]


def test_item_ids_differing_only_in_case_collide(w: World) -> None:
    assert codes(w.add(w.mine("s1"))) == ["item.duplicate_id"]
