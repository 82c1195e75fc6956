"""Trade policies (ledger.policy): for every policy code, the tampered case is flagged and the untouched case is
clean; policy files and carat text are read strictly; the audit and the CLI keep policy findings apart."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from ledger import AUTHORITY, Ledger, Output, Trust, check_ledger, checkpoint_file, note_verifier_key, verify_ledger
from ledger.bundle import check_bundle
from ledger.errors import InputError, RuleError
from ledger.events import (
    Enrolled,
    Exported,
    Graded,
    Grown,
    Imported,
    Inscribed,
    Merged,
    Mined,
    Registered,
    Set,
    Split,
    Transferred,
    Unset,
    Verified,
)
from ledger.findings import Finding
from ledger.merkle import MerkleTree
from ledger.policy import CODES, Policy, PolicyError, check_policy, format_carats, parse_carats, parse_countries
from ledger.replay import Replay
from stonetrail_cli.main import main
from world import ORIGIN, World, codes, key

DAY_MS = 86_400_000
#: extra parties: (id, roles, enrolled country)
EXTRA = {"producer-ru": ("producer",), "producer-ao": ("producer",), "node-g": ("node",), "grower-h": ("producer",)}
COUNTRY = {"producer-ru": "RU", "producer-ao": "AO", "node-g": "BE", "grower-h": "IN"}


# --- building small ledgers -------------------------------------------------------------------------------

def ok(w: World, record: object) -> None:
    """Apply a record that must be valid for integrity: policies are checked on clean ledgers."""
    assert w.add(record) == []  # type: ignore[arg-type]


@pytest.fixture
def w() -> World:
    """World's parties (enrolled in BW) plus a Russian and an Angolan producer, a G7 node and a CVD grower."""
    world = World()
    world.enrol_all()
    for party, roles in EXTRA.items():
        world.keys[party] = key(party)
        ok(world, world.make(Enrolled(external_ids=(), party=party, name=party, roles=roles, country=COUNTRY[party],
                                      key=world.keys[party].public_key.raw,
                                      registry_prev=world.state.registry.head), AUTHORITY))
    return world


def mine(w: World, item: str, mass: int, *, producer: str = "producer-a", country: str = "BW",
         kind: str = "stone") -> None:
    ok(w, w.make(Mined(mine=f"mine of {country}", country=country), producer, place=country,
                 outputs=[Output(id=item, type=kind, mass_mct=mass)]))


def ship(w: World, items: Sequence[str], holder: str, source: str, consignee: str, destination: str, *,
         certificate: str | None = None, declared: dict[str, int] | None = None,
         certificate_mct: int | None = None, import_certificate: str | None = None,
         import_declared: dict[str, int] | None = None, valid_days: tuple[int, int] = (-1, 30),
         transit_days: int = 2, integrity: Sequence[str] = ()) -> None:
    """Export ``items`` from ``source`` and import them at ``destination`` (both valid unless overridden)."""
    masses = declared or {i: w.state.items[i].mass_mct for i in items}
    pairs = tuple(sorted(masses.items()))
    cert = certificate or f"{source}-{len(w.records):05d}"
    start = w.time_ms
    ok(w, w.make(Exported(kp_certificate=cert, to_country=destination, consignee=consignee,
                          certificate_mct=certificate_mct or sum(masses.values()),
                          issued_ms=start + valid_days[0] * DAY_MS, expires_ms=start + valid_days[1] * DAY_MS,
                          declared=pairs, kp_authority=None),
                 holder, inputs=items, place=source, signers=[holder]))
    w.time_ms += transit_days * DAY_MS
    record = w.make(Imported(kp_certificate=import_certificate or cert, from_country=source,
                             declared=tuple(sorted((import_declared or masses).items())), customs=None, basis=None),
                    consignee, inputs=items, place=destination, signers=[consignee])
    assert codes(w.add(record)) == list(integrity)


def grade(w: World, stone: str, holder: str, mass: int, report: str, nature: str = "natural") -> None:
    ok(w, w.make(Graded(lab="lab-d", report=report, mass_mct=mass, colour="G", clarity="VS1", nature=nature),
                 holder, inputs=[stone]))


def split(w: World, item: str, holder: str, outputs: dict[str, int], place: str | None = None) -> None:
    loss = w.state.items[item].mass_mct - sum(outputs.values())
    ok(w, w.make(Split(loss_mct=loss), holder, inputs=[item], consumes=[item], place=place,
                 outputs=[Output(id=i, type="stone", mass_mct=m) for i, m in outputs.items()]))


def replay(w: World) -> Replay:
    return Replay(origin=w.origin, records=tuple(w.records), state=w.state, tree=MerkleTree(), framing_ok=True,
                  findings=())


def check(w: World, **policy: object) -> list[Finding]:
    return check_policy(replay(w), Policy(**policy))  # type: ignore[arg-type]


def flagged(found: list[Finding], code: str) -> list[str | None]:
    return [f.item for f in found if f.code == code]


def launder(w: World) -> None:
    """DOMAIN.md scenario 3: RU rough to Dubai, merged with Angolan goods, cut in India, shipped to the EU."""
    mine(w, "RU-LOT", 40_000, producer="producer-ru", country="RU", kind="lot")
    ship(w, ["RU-LOT"], "producer-ru", "RU", "trader-b", "AE")
    mine(w, "AO-LOT", 60_000, producer="producer-ao", country="AO", kind="lot")
    ship(w, ["AO-LOT"], "producer-ao", "AO", "trader-b", "AE")
    ok(w, w.make(Merged(loss_mct=0), "trader-b", inputs=["AO-LOT", "RU-LOT"], consumes=["AO-LOT", "RU-LOT"],
                 place="AE", outputs=[Output(id="PARCEL", type="lot", mass_mct=100_000)]))
    ship(w, ["PARCEL"], "trader-b", "AE", "cutter-c", "IN")
    split(w, "PARCEL", "cutter-c", {"PARCEL-S1": 1_250, "PARCEL-S2": 830})
    ship(w, ["PARCEL-S1", "PARCEL-S2"], "cutter-c", "IN", "trader-e", "BE")


LAUNDERED = ["RU-LOT", "PARCEL", "PARCEL-S1", "PARCEL-S2"]


# --- R1/R2: denied origin ---------------------------------------------------------------------------------

def test_laundering_flags_exactly_the_russian_goods_and_their_descendants(w: World) -> None:
    launder(w)
    found = check(w, deny_origin=frozenset({"RU"}))
    assert codes(found) == ["policy.denied_origin"] * 4
    assert flagged(found, "policy.denied_origin") == LAUNDERED
    assert [f.position for f in found] == [w.state.items[i].history[0] for i in LAUNDERED]
    assert all("attested by producer-ru (mined at mine of RU, RU, record" in f.reason for f in found)
    assert "origin {AO, RU} includes RU" in found[1].reason


def test_laundering_passes_a_policy_that_denies_other_countries(w: World) -> None:
    launder(w)
    assert check(w, deny_origin=frozenset({"CA", "BY"})) == []
    assert check(w) == []  # the default policy checks nothing
    found = check(w, deny_origin=frozenset({"AO"}))
    assert flagged(found, "policy.denied_origin") == ["AO-LOT", "PARCEL", "PARCEL-S1", "PARCEL-S2"]


def test_custody_routed_through_a_denied_country(w: World) -> None:
    mine(w, "S1", 2_000)
    ship(w, ["S1"], "producer-a", "BW", "trader-b", "RU")
    ship(w, ["S1"], "trader-b", "RU", "cutter-c", "BW")
    split(w, "S1", "cutter-c", {"S1-A": 700, "S1-B": 300})
    mine(w, "CLEAN", 1_000)
    found = check(w, deny_origin=frozenset({"RU"}))
    assert flagged(found, "policy.denied_origin") == ["S1", "S1-A", "S1-B"]
    assert all("custody passed through RU (record" in f.reason and "includes" not in f.reason for f in found)


def test_import_threshold_applies_to_natural_goods_imported_at_or_above_it(w: World) -> None:
    mine(w, "RU-BIG", 500, producer="producer-ru", country="RU")
    mine(w, "RU-SMALL", 499, producer="producer-ru", country="RU")
    ship(w, ["RU-BIG", "RU-SMALL"], "producer-ru", "RU", "trader-b", "BE")
    mine(w, "RU-HOME", 3_000, producer="producer-ru", country="RU")  # never imported
    deny = frozenset({"RU"})
    found = check(w, deny_origin=deny, import_threshold_mct=500)
    assert flagged(found, "policy.denied_origin") == ["RU-BIG"]
    assert "imported at a declared 0.500 ct (record" in found[0].reason
    assert flagged(check(w, deny_origin=deny, import_threshold_mct=501), "policy.denied_origin") == []
    assert flagged(check(w, deny_origin=deny), "policy.denied_origin") == ["RU-BIG", "RU-SMALL", "RU-HOME"]


def test_import_threshold_skips_lab_grown_goods(w: World) -> None:
    w.keys["grower-ru"] = key("grower-ru")
    ok(w, w.make(Enrolled(external_ids=(), party="grower-ru", name="g", roles=("producer",), country="RU",
                          key=w.keys["grower-ru"].public_key.raw, registry_prev=w.state.registry.head), AUTHORITY))
    ok(w, w.make(Grown(facility="reactor", country="RU", method="CVD"), "grower-ru", place="RU",
                 outputs=[Output(id="CVD-1", type="stone", mass_mct=900)]))
    ship(w, ["CVD-1"], "grower-ru", "RU", "trader-b", "BE")
    deny = frozenset({"RU"})
    assert check(w, deny_origin=deny, import_threshold_mct=500) == []
    found = check(w, deny_origin=deny)
    assert flagged(found, "policy.denied_origin") == ["CVD-1"] and "grown at reactor" in found[0].reason


def set_in(w: World, stones: Sequence[str], holder: str, article: str) -> None:
    ok(w, w.make(Set(description="ring"), holder, inputs=stones,
                 outputs=[Output(id=article, type="article", mass_mct=sum(w.state.items[s].mass_mct for s in stones))]))


def unset(w: World, article: str, holder: str) -> None:
    stones = [s.id for s in w.state.items.values() if s.article == article and s.state == "locked"]
    ok(w, w.make(Unset(reason="resold loose"), holder, inputs=[article, *stones], consumes=[article]))


def jewel(w: World, ru_mct: int, cvd_mct: int, declared: int) -> None:
    """The reviewer's attack: a Russian stone cut in India is set with a CVD stone into a mixed ring, shipped to
    Belgium declared at ``declared``, unset there and sold loose."""
    mine(w, "RU-ROUGH", ru_mct + 100, producer="producer-ru", country="RU")
    ship(w, ["RU-ROUGH"], "producer-ru", "RU", "cutter-c", "IN")
    split(w, "RU-ROUGH", "cutter-c", {"RU-1": ru_mct})
    ok(w, w.make(Grown(facility="reactor", country="IN", method="CVD"), "grower-h", place="IN",
                 outputs=[Output(id="CVD-1", type="stone", mass_mct=cvd_mct)]))
    ok(w, w.make(Transferred(to="cutter-c", mode="title"), "grower-h", inputs=["CVD-1"]))
    set_in(w, ["CVD-1", "RU-1"], "cutter-c", "RING")
    assert w.state.items["RING"].nature == "mixed"
    ship(w, ["RING"], "cutter-c", "IN", "cutter-c", "BE", import_declared={"RING": declared})
    unset(w, "RING", "cutter-c")
    ok(w, w.make(Transferred(to="trader-e", mode="title"), "cutter-c", inputs=["RU-1"]))


@pytest.mark.parametrize(("ru_mct", "cvd_mct", "declared", "want"), [
    (1_800, 200, 2_000, ["RU-ROUGH", "RU-1", "RING"]),  # the attack: 1.8 ct Russian stone in a 2.000 ct ring
    (300, 300, 600, ["RU-1", "RING"]),  # a small stone counts at the article's declared mass
    (600, 100, 400, ["RU-ROUGH", "RU-1", "RING"]),  # ... and at its own mass when the article is declared low
    # (the 0.700 ct ring itself counts at its recorded mass, not at the 0.400 ct declared)
    (300, 100, 400, []),  # everything below the threshold
])
def test_import_threshold_counts_mixed_articles_and_the_stones_set_in_them(
        w: World, ru_mct: int, cvd_mct: int, declared: int, want: list[str]) -> None:
    jewel(w, ru_mct, cvd_mct, declared)
    found = check(w, deny_origin=frozenset({"RU"}), import_threshold_mct=500)
    assert flagged(found, "policy.denied_origin") == want
    if "RU-1" in want:
        reason = next(f.reason for f in found if f.item == "RU-1")
        assert f"imported set in article RING declared at {format_carats(declared)}" in reason
        assert f"(record {len(w.records) - 3})" in reason  # the import into Belgium
    assert flagged(check(w, deny_origin=frozenset({"BY"}), import_threshold_mct=500), "policy.denied_origin") == []


def ring_route(w: World, via: str) -> None:
    """A Botswanan stone set in a ring in Botswana; the ring goes to Belgium through ``via``; the stone is unset
    and sold loose in Belgium."""
    mine(w, "S1", 1_000)
    ok(w, w.make(Transferred(to="cutter-c", mode="title"), "producer-a", inputs=["S1"]))
    set_in(w, ["S1"], "cutter-c", "RING")
    ship(w, ["RING"], "cutter-c", "BW", "trader-b", via)
    ship(w, ["RING"], "trader-b", via, "cutter-c", "BE")
    unset(w, "RING", "cutter-c")
    ok(w, w.make(Transferred(to="trader-e", mode="title"), "cutter-c", inputs=["S1"]))


def test_a_route_of_an_article_taints_the_stones_set_in_it(w: World) -> None:
    ring_route(w, "RU")
    found = check(w, deny_origin=frozenset({"RU"}))
    assert flagged(found, "policy.denied_origin") == ["S1", "RING"]
    import_into_russia = len(w.records) - 5
    assert f"custody passed through RU (record {import_into_russia})" in found[0].reason


def test_an_article_routed_elsewhere_leaves_its_stones_clean(w: World) -> None:
    ring_route(w, "AE")
    assert check(w, deny_origin=frozenset({"RU"})) == []


# --- R4: unknown origin at import ------------------------------------------------------------------------

def test_import_of_unknown_origin(w: World) -> None:
    ok(w, w.make(Registered(reason="recovered from a brooch", nature="natural"), "trader-b", place="BW",
                 outputs=[Output(id="OLD-1", type="stone", mass_mct=1_070)]))
    assert check(w, require_known_origin=True) == []  # not imported: nothing to refuse yet
    ship(w, ["OLD-1"], "trader-b", "BW", "trader-e", "BE")
    found = check(w, require_known_origin=True)
    assert codes(found) == ["policy.unknown_origin"] and found[0].item == "OLD-1"
    assert found[0].position == len(w.records) - 1


def test_import_of_known_origin_is_clean(w: World) -> None:
    launder(w)
    assert check(w, require_known_origin=True) == []


def test_a_taint_of_unknown_origin_counts(w: World) -> None:
    mine(w, "L1", 5_000, kind="lot")
    ok(w, w.make(Registered(reason="old stock", nature="natural"), "producer-a", place="BW",
                 outputs=[Output(id="L2", type="stone", mass_mct=10)]))
    ok(w, w.make(Merged(loss_mct=0), "producer-a", inputs=["L1", "L2"], consumes=["L1", "L2"], place="BW",
                 outputs=[Output(id="MIX", type="lot", mass_mct=5_010)]))
    ship(w, ["MIX"], "producer-a", "BW", "trader-e", "BE")
    assert flagged(check(w, require_known_origin=True), "policy.unknown_origin") == ["MIX"]


# --- R3: verified ancestry --------------------------------------------------------------------------------

def cut_and_grade(w: World, *, verify: bool) -> None:
    mine(w, "S1", 2_000)
    ship(w, ["S1"], "producer-a", "BW", "cutter-c", "BE")
    if verify:
        ok(w, w.make(Verified(node="node-g", countries=("BW",)), "cutter-c", inputs=["S1"],
                     signers=["cutter-c", "node-g"]))
    split(w, "S1", "cutter-c", {"S1-A": 700, "S1-B": 300})
    grade(w, "S1-A", "cutter-c", 700, "R-1")


def test_graded_stone_without_verified_ancestry(w: World) -> None:
    cut_and_grade(w, verify=False)
    found = check(w, require_verified=True)
    assert codes(found) == ["policy.unverified"] and found[0].item == "S1-A"
    assert found[0].position == len(w.records) - 1  # its first grading


def test_graded_stone_with_a_verified_ancestor_is_clean(w: World) -> None:
    cut_and_grade(w, verify=True)
    assert check(w, require_verified=True) == []


def merged_and_graded(w: World, verify: Sequence[str]) -> None:
    """A Botswanan and an Angolan lot merged in Belgium, cut, and a stone graded; ``verify``: the lots verified."""
    mine(w, "BW-LOT", 3_000, kind="lot")
    ship(w, ["BW-LOT"], "producer-a", "BW", "cutter-c", "BE")
    mine(w, "AO-LOT", 2_000, producer="producer-ao", country="AO", kind="lot")
    ship(w, ["AO-LOT"], "producer-ao", "AO", "cutter-c", "BE")
    for lot in ("AO-LOT", "BW-LOT"):
        if lot in verify:
            ok(w, w.make(Verified(node="node-g", countries=(lot[:2],)), "cutter-c", inputs=[lot],
                         signers=["cutter-c", "node-g"]))
    ok(w, w.make(Merged(loss_mct=0), "cutter-c", inputs=["AO-LOT", "BW-LOT"], consumes=["AO-LOT", "BW-LOT"],
                 outputs=[Output(id="MIX", type="lot", mass_mct=5_000)]))
    if "MIX" in verify:
        ok(w, w.make(Verified(node="node-g", countries=("AO", "BW")), "cutter-c", inputs=["MIX"],
                     signers=["cutter-c", "node-g"]))
    split(w, "MIX", "cutter-c", {"MIX-1": 1_000})
    grade(w, "MIX-1", "cutter-c", 1_000, "R-7")


@pytest.mark.parametrize(("verify", "unverified"), [
    (["BW-LOT"], "producer-ao (mined at mine of AO"),  # one verified parent no longer covers the merge
    (["AO-LOT"], "producer-a (mined at mine of BW"),
    ([], "producer-a (mined at mine of BW"),
])
def test_a_merge_with_unverified_goods_is_unverified(w: World, verify: list[str], unverified: str) -> None:
    merged_and_graded(w, verify)
    found = check(w, require_verified=True)
    assert codes(found) == ["policy.unverified"] and found[0].item == "MIX-1"
    assert unverified in found[0].reason and found[0].position == len(w.records) - 1


@pytest.mark.parametrize("verify", [["AO-LOT", "BW-LOT"], ["MIX"]])
def test_a_merge_of_verified_goods_is_verified(w: World, verify: list[str]) -> None:
    merged_and_graded(w, verify)
    assert check(w, require_verified=True) == []


def test_lab_grown_stones_need_no_origin_verification(w: World) -> None:
    ok(w, w.make(Grown(facility="reactor", country="IN", method="CVD"), "grower-h", place="IN",
                 outputs=[Output(id="CVD-1", type="stone", mass_mct=900)]))
    grade(w, "CVD-1", "grower-h", 900, "R-9", nature="lab_grown")
    assert check(w, require_verified=True) == []


# --- R7: Kimberley Process certificates -------------------------------------------------------------------

def test_untouched_shipments_pass_the_kp_rules(w: World) -> None:
    launder(w)
    assert check(w, kp_rules=True) == []


def test_kp_certificate_without_the_exporters_prefix(w: World) -> None:
    mine(w, "S1", 2_000)
    ship(w, ["S1"], "producer-a", "BW", "trader-b", "BE", certificate="ZA-000123")
    found = check(w, kp_rules=True)
    assert codes(found) == ["policy.kp_prefix"] and found[0].position == len(w.records) - 2
    assert "does not start with BW" in found[0].reason


@pytest.mark.parametrize("valid_days", [(-10, 1), (3, 30)])  # expired before import; issued after it
def test_import_outside_the_certificates_validity(w: World, valid_days: tuple[int, int]) -> None:
    mine(w, "S1", 2_000)
    ship(w, ["S1"], "producer-a", "BW", "trader-b", "BE", valid_days=valid_days, transit_days=2)
    found = check(w, kp_rules=True)
    assert codes(found) == ["policy.kp_dates"] and found[0].position == len(w.records) - 1


def test_import_on_the_last_valid_day_is_clean(w: World) -> None:
    mine(w, "S1", 2_000)
    ship(w, ["S1"], "producer-a", "BW", "trader-b", "BE", valid_days=(0, 3), transit_days=2)
    assert check(w, kp_rules=True) == []


@pytest.mark.parametrize("second", ["BW-000001", "bw-000001", "BW-OOOOO1", "BW-00000l"])  # read alike
def test_kp_certificate_used_by_two_exports(w: World, second: str) -> None:
    mine(w, "S1", 2_000)
    mine(w, "S2", 1_000)
    ship(w, ["S1"], "producer-a", "BW", "trader-b", "BE", certificate="BW-000001")
    ship(w, ["S2"], "producer-a", "BW", "trader-b", "BE", certificate=second)
    found = check(w, kp_rules=True)
    want = ["policy.kp_reused"] if second.startswith("BW") else ["policy.kp_prefix", "policy.kp_reused"]
    assert codes(found) == want and found[-1].position == len(w.records) - 2


@pytest.mark.parametrize("how", ["declared", "recorded", "imported"])
def test_goods_over_the_certificates_total(w: World, how: str) -> None:
    mine(w, "S1", 2_000)
    mine(w, "S2", 1_000)
    if how == "declared":  # declared 3.000 ct on a 2.999 ct certificate
        ship(w, ["S1", "S2"], "producer-a", "BW", "trader-b", "BE", certificate_mct=2_999)
    elif how == "recorded":  # declared low to fit a 2.5 ct certificate; the ledger knows 3 ct went
        ship(w, ["S1", "S2"], "producer-a", "BW", "trader-b", "BE", certificate_mct=2_500,
             declared={"S1": 1_500, "S2": 1_000})
    else:  # the import declares more than the certificate covers
        ship(w, ["S1", "S2"], "producer-a", "BW", "trader-b", "BE", import_declared={"S1": 2_000, "S2": 1_001})
    found = check(w, kp_rules=True)
    assert codes(found) == ["policy.kp_over_total"]
    assert found[0].position == len(w.records) - (1 if how == "imported" else 2)


def test_import_under_another_certificate(w: World) -> None:
    mine(w, "S1", 2_000)
    ship(w, ["S1"], "producer-a", "BW", "trader-b", "BE", certificate="BW-000001",
         import_certificate="BW-000002", integrity=["custody.transit_mismatch"])
    found = check(w, kp_rules=True)
    assert codes(found) == ["policy.kp_mismatch"] and found[0].position == len(w.records) - 1


def test_kp_findings_need_the_kp_rules(w: World) -> None:
    mine(w, "S1", 2_000)
    ship(w, ["S1"], "producer-a", "BW", "trader-b", "BE", certificate="ZA-1", certificate_mct=1_000,
         valid_days=(5, 6))
    assert check(w, deny_origin=frozenset({"RU"})) == []
    assert codes(check(w, kp_rules=True)) == ["policy.kp_prefix", "policy.kp_over_total", "policy.kp_dates"]


# --- R11: re-grades; fraud 6: threshold gaming ------------------------------------------------------------

def graded_stone(w: World) -> None:
    mine(w, "S1", 2_000)
    ship(w, ["S1"], "producer-a", "BW", "cutter-c", "IN")
    split(w, "S1", "cutter-c", {"S1-A": 1_515, "S1-B": 300})
    grade(w, "S1-A", "cutter-c", 1_512, "R-1")


def test_regrade_beyond_tolerance(w: World) -> None:
    graded_stone(w)
    grade(w, "S1-A", "cutter-c", 1_504, "R-2")  # DOMAIN.md fraud 4: 1.512 vs 1.504 ct
    found = check(w, regrade_tolerance_mct=5)
    assert codes(found) == ["policy.regrade_mismatch"] and found[0].item == "S1-A"
    assert found[0].position == len(w.records) - 1 and "0.008 ct apart" in found[0].reason
    assert check(w, regrade_tolerance_mct=8) == []


def test_regrade_within_tolerance_is_clean(w: World) -> None:
    graded_stone(w)
    grade(w, "S1-A", "cutter-c", 1_510, "R-2")
    assert check(w, regrade_tolerance_mct=5) == []
    assert check(w, deny_origin=frozenset({"RU"})) == []


@pytest.mark.parametrize("copied", ["R-1", "r-1"])
def test_a_substitute_carrying_the_inscription_is_compared_with_the_original(w: World, copied: str) -> None:
    graded_stone(w)
    ok(w, w.make(Inscribed(lab="lab-d", inscription="R-1"), "cutter-c", inputs=["S1-A"], place="IN"))
    ok(w, w.make(Grown(facility="reactor", country="IN", method="CVD"), "grower-h", place="IN",
                 outputs=[Output(id="CVD-1", type="stone", mass_mct=1_520)]))
    ok(w, w.make(Inscribed(lab="lab-d", inscription="R-1-COPY"), "grower-h", inputs=["CVD-1"], place="IN"))
    split(w, "S1-A", "cutter-c", {"S1-A2": 1_400})  # recut: the old stone is consumed, its marks are free
    ok(w, w.make(Inscribed(lab="lab-d", inscription=copied), "grower-h", inputs=["CVD-1"], place="IN"))
    grade(w, "CVD-1", "grower-h", 1_509, "R-3", nature="lab_grown")
    found = check(w, regrade_tolerance_mct=5)
    assert codes(found) == ["policy.regrade_mismatch"] and found[0].item == "CVD-1"
    assert "natural for stone S1-A" in found[0].reason and "1.509 ct lab_grown" in found[0].reason


def test_a_second_stone_under_the_same_report_number(w: World) -> None:
    graded_stone(w)
    grade(w, "S1-B", "cutter-c", 290, "R-4")
    split(w, "S1-A", "cutter-c", {"S1-A2": 1_400})  # recut: S1-A is consumed and its report number free
    grade(w, "S1-B", "cutter-c", 290, "R-1")  # S1-B now claims the report of S1-A (1.512 ct)
    found = check(w, regrade_tolerance_mct=5)
    assert codes(found) == ["policy.regrade_mismatch"] and "stone S1-A" in found[0].reason


@pytest.mark.parametrize(("report", "flagged_as"), [
    ("SAMPLE-123", ["CVD-1"]), ("sample-123", ["CVD-1"]), ("Sample-123", ["CVD-1"]), ("SAMPLE-124", []),
])
def test_a_report_number_is_compared_ignoring_case(w: World, report: str, flagged_as: list[str]) -> None:
    graded_stone(w)
    grade(w, "S1-A", "cutter-c", 1_512, "SAMPLE-123")
    split(w, "S1-A", "cutter-c", {"S1-A2": 1_400})  # recut: S1-A is consumed and its report number free
    ok(w, w.make(Grown(facility="reactor", country="IN", method="CVD"), "grower-h", place="IN",
                 outputs=[Output(id="CVD-1", type="stone", mass_mct=1_520)]))
    grade(w, "CVD-1", "grower-h", 1_509, report, nature="lab_grown")
    found = check(w, regrade_tolerance_mct=5)
    assert flagged(found, "policy.regrade_mismatch") == flagged_as
    assert all("natural for stone S1-A (report SAMPLE-123" in f.reason for f in found)


def test_import_declared_below_the_graded_mass(w: World) -> None:
    mine(w, "S1", 600)
    ok(w, w.make(Transferred(to="trader-b", mode="title"), "producer-a", inputs=["S1"], place="BW"))
    grade(w, "S1", "trader-b", 500, "R-1")
    ship(w, ["S1"], "trader-b", "BW", "trader-e", "BE", declared={"S1": 490})  # 0.49 ct declared, 0.50 graded
    found = check(w, import_weight_tolerance_mct=5)
    assert codes(found) == ["policy.import_underdeclared"] and found[0].item == "S1"
    assert found[0].position == len(w.records) - 1 and "graded at record" in found[0].reason
    assert check(w, import_weight_tolerance_mct=10) == []


def test_ungraded_goods_are_compared_with_their_recorded_mass(w: World) -> None:
    mine(w, "S1", 520)
    ship(w, ["S1"], "producer-a", "BW", "trader-e", "BE", declared={"S1": 490})
    found = check(w, import_weight_tolerance_mct=0)
    assert codes(found) == ["policy.import_underdeclared"] and "recorded" in found[0].reason


def test_honest_declarations_are_clean(w: World) -> None:
    launder(w)
    graded_stone(w)
    assert check(w, import_weight_tolerance_mct=0, regrade_tolerance_mct=0) == []


def small_stone(w: World, recorded: int, declared: int, *, graded: int | None = None) -> None:
    """A Russian stone recorded at ``recorded`` mct (graded at ``graded``), shipped to Belgium declared at
    ``declared``: the reviewer's threshold bypass when ``declared`` is below the threshold and the rest is not."""
    mine(w, "RU-1", recorded, producer="producer-ru", country="RU")
    if graded is not None:
        grade(w, "RU-1", "producer-ru", graded, "R-RU-1")
    ship(w, ["RU-1"], "producer-ru", "RU", "trader-b", "BE", declared={"RU-1": declared})


EU = {"deny_origin": frozenset({"RU"}), "import_threshold_mct": 500}  # the README's example


@pytest.mark.parametrize(("recorded", "graded", "how"), [
    (5_000, None, "recorded at 5.000 ct"), (5_000, 600, "graded at record"), (5_000, 500, "graded at record")])
def test_the_threshold_reads_the_recorded_mass_not_only_the_declaration(
        w: World, recorded: int, graded: int | None, how: str) -> None:
    small_stone(w, recorded, 100, graded=graded)
    found = check(w, **EU)
    assert [(f.code, f.item) for f in found] == [("policy.denied_origin", "RU-1"),
                                                 ("policy.declared_below_recorded", "RU-1")]
    import_position = len(w.records) - 1
    assert found[1].position == import_position and how in found[1].reason
    assert "declared at 0.100 ct, below the import threshold of 0.500 ct" in found[1].reason
    assert f"imported at a declared 0.100 ct ({how}" in found[0].reason
    # the under-declaration is shown whatever the origin, but only with the rule the threshold narrows
    found = check(w, deny_origin=frozenset({"BY"}), import_threshold_mct=500)
    assert codes(found) == ["policy.declared_below_recorded"]
    assert check(w, import_threshold_mct=500, import_weight_tolerance_mct=10_000) == []


@pytest.mark.parametrize(("recorded", "declared", "graded"), [(100, 100, None), (5_000, 100, 400), (499, 100, None)])
def test_goods_that_really_weigh_less_than_the_threshold_are_compliant(
        w: World, recorded: int, declared: int, graded: int | None) -> None:
    small_stone(w, recorded, declared, graded=graded)
    assert check(w, **EU) == []


def test_a_declaration_above_the_recorded_mass_counts(w: World) -> None:
    small_stone(w, 400, 600)
    found = check(w, **EU)
    assert codes(found) == ["policy.denied_origin"] and "imported at a declared 0.600 ct (record" in found[0].reason


def test_every_code_is_documented() -> None:
    text = (Path(__file__).resolve().parents[1] / "docs" / "format.md").read_text(encoding="utf-8")
    for code in CODES:
        assert f"`{code}`" in text, code


# --- policy values, policy files, carats ------------------------------------------------------------------

def test_policy_validates_its_values() -> None:
    assert Policy(deny_origin={"RU"}).deny_origin == frozenset({"RU"})  # type: ignore[arg-type]
    for bad in ({"deny_origin": frozenset({"ru"})}, {"deny_origin": "RU"}, {"deny_origin": frozenset({"RUS"})},
                {"regrade_tolerance_mct": -1}, {"import_weight_tolerance_mct": True},
                {"import_threshold_mct": 10**9 + 1}, {"kp_rules": 1}):
        with pytest.raises(PolicyError):
            Policy(**bad)
    assert not Policy().active and not Policy(import_threshold_mct=500).active
    assert Policy(regrade_tolerance_mct=0).active


POLICY_FILE = """\
# EU import policy
deny_origin = RU, BY
import_threshold_mct = 500

kp_rules = true
require_known_origin=false
regrade_tolerance_mct = 5
"""


def test_policy_file_is_read() -> None:
    policy = Policy.parse(POLICY_FILE)
    assert policy == Policy(deny_origin=frozenset({"RU", "BY"}), import_threshold_mct=500, kp_rules=True,
                            regrade_tolerance_mct=5)
    assert Policy.parse(policy.format()) == policy
    assert Policy.parse("") == Policy()


def test_a_comment_after_a_value_is_a_comment_and_a_near_key_is_suggested() -> None:
    """A new user's review: 'deny_origin = RU  # russia' was refused as the code 'RU  # RUSSIA', and
    'deny_origins' got no did-you-mean."""
    assert Policy.parse("deny_origin = RU, BY  # sanctions\nkp_rules = true\t# on\n") == \
        Policy(deny_origin=frozenset({"RU", "BY"}), kp_rules=True)
    with pytest.raises(PolicyError, match="did you mean deny_origin\\?"):
        Policy.parse("deny_origins = RU")
    with pytest.raises(PolicyError, match="expected true or false, got 'yes#no'"):
        Policy.parse("kp_rules = yes#no")  # a '#' inside a value is no comment


def test_a_policy_file_reads_country_codes_as_the_flag_does() -> None:
    """--deny-origin ru is RU; the file refused it (a new-user review: "the file uses the flags' names")."""
    assert Policy.parse("deny_origin = ru, by\n").deny_origin == {"RU", "BY"}


def test_a_policy_file_takes_carats_under_the_flags_names() -> None:
    """Issue 9 item 9: the file's masses were millicarats (import_threshold_mct = 500) where the flags take carats
    (--import-threshold-ct 0.5). Each carat flag's name is a file key in carats; the millicarat field names are
    still read, and one rule given both ways is refused."""
    verify = main.get_command(click.Context(main), "verify")
    assert verify is not None
    carat_flags = sorted(p.name for p in verify.params if p.name and p.name.endswith("_ct"))
    assert carat_flags == ["import_threshold_ct", "import_tolerance_ct", "regrade_tolerance_ct"]
    for flag in carat_flags:
        from_file = Policy.parse(f"deny_origin = RU\n{flag} = 0.5\n")
        from_flag = Policy(deny_origin=frozenset({"RU"})).extend(**{_FIELD_OF_FLAG[flag]: parse_carats("0.5")})
        assert from_file == from_flag and getattr(from_file, _FIELD_OF_FLAG[flag]) == 500
        with pytest.raises(PolicyError) as twice:
            Policy.parse(f"{flag} = 0.5\n{_FIELD_OF_FLAG[flag]} = 500\n")
        assert "line 2" in str(twice.value) and "set twice" in str(twice.value)
    assert Policy.parse("deny_origin = RU\nimport_threshold_mct = 500") == \
        Policy.parse("deny_origin = RU\nimport_threshold_ct = 0.5")
    text = Policy(deny_origin=frozenset({"RU"}), import_threshold_mct=500, regrade_tolerance_mct=5).format()
    assert "import_threshold_ct = 0.5\n" in text and "regrade_tolerance_ct = 0.005\n" in text and "mct =" not in text
    for bad in ("import_threshold_ct = 500 mct", "import_threshold_ct = .5", "import_threshold_ct = 0.5000"):
        with pytest.raises(PolicyError) as info:
            Policy.parse(bad)
        assert str(info.value).startswith("line 1: import_threshold_ct: ")


_FIELD_OF_FLAG = {"import_threshold_ct": "import_threshold_mct", "regrade_tolerance_ct": "regrade_tolerance_mct",
                  "import_tolerance_ct": "import_weight_tolerance_mct"}


@pytest.mark.parametrize("text", [
    "deny_origin RU",  # no '='
    "deny = RU",  # unknown key
    "Deny_Origin = RU",
    "deny_origin = RU\ndeny_origin = BY",  # twice
    "deny_origin = R",
    "deny_origin = RU,",
    "deny_origin = RU,RU",
    "deny_origin =",
    "kp_rules = yes",
    "kp_rules = True",
    "regrade_tolerance_mct = 0.5",
    "regrade_tolerance_mct = -1",
    "regrade_tolerance_mct = 05",
    "regrade_tolerance_mct = 1_0",
    "regrade_tolerance_mct = \u0665",  # an Arabic-Indic digit
    "regrade_tolerance_mct = 5 mct",  # a unit after the number (a comment needs its "#")
    "import_threshold_mct = 10000000000",
])
def test_malformed_policy_files_are_refused(text: str) -> None:
    with pytest.raises(PolicyError) as info:
        Policy.parse(text)
    assert info.value.code == "policy.malformed" and isinstance(info.value, InputError)
    assert "line" in str(info.value) or "must be" in str(info.value)


@pytest.mark.parametrize(("text", "mct"), [
    ("0.5", 500), ("1", 1_000), ("1.512", 1_512), ("0.05", 50), ("0.005", 5), ("0", 0), ("1109", 1_109_000),
    ("1000000", 10**9),
])
def test_parse_carats(text: str, mct: int) -> None:
    assert parse_carats(text) == mct


@pytest.mark.parametrize("text", ["1e3", "0.5000", "-1", "\u00bd", " 1", "1 ", "1_0", "", ".5", "5.", "00.5",
                                  "+1", "0x10", "1,5", "\u0661", "1000000.001", "inf", "nan"])
def test_parse_carats_refuses(text: str) -> None:
    with pytest.raises(PolicyError):
        parse_carats(text)


def test_countries_and_carats_text() -> None:
    assert parse_countries("RU") == {"RU"} and parse_countries("RU,BY") == parse_countries("RU, BY") == {"RU", "BY"}
    for bad in ("", "ru", "RU,", "RUS", "RU;BY", "RU,RU"):
        with pytest.raises(PolicyError):
            parse_countries(bad)
    assert format_carats(500) == "0.500 ct" and format_carats(1_109_000) == "1109.000 ct"


def test_extend_adds_rules() -> None:
    base = Policy(deny_origin=frozenset({"RU"}), regrade_tolerance_mct=5)
    more = base.extend(deny_origin=["BY"], kp_rules=True, regrade_tolerance_mct=3)
    assert more == Policy(deny_origin=frozenset({"RU", "BY"}), kp_rules=True, regrade_tolerance_mct=3)
    assert base.extend() == base


# --- the audit and the command keep policy findings apart -------------------------------------------------

def write(w: World, tmp_path: Path) -> tuple[Path, Path]:
    """The world's records as a ledger file, and a trust file pinning its authority."""
    path = tmp_path / "policy.ledger"
    with Ledger.create(path, ORIGIN, {w.keys[AUTHORITY].public_key.raw}) as ledger:
        ledger.append_batch(w.records)
    trust = Trust(operators=(note_verifier_key(ORIGIN, key("operator").public_key),),
                  authorities=(note_verifier_key("authority", w.keys[AUTHORITY].public_key),))
    (tmp_path / "trust.keys").write_text(trust.format(), encoding="utf-8")
    return path, tmp_path / "trust.keys"


def test_audit_reports_policy_findings_apart(w: World, tmp_path: Path) -> None:
    launder(w)
    path, trust_path = write(w, tmp_path)
    trust = Trust.parse(trust_path.read_text())
    report = check_ledger(path, trust, policy=Policy(deny_origin=frozenset({"RU"})))
    assert report.ok and not report.policy_ok and report.findings == ()
    assert flagged(list(report.policy_findings), "policy.denied_origin") == LAUNDERED
    data = report.to_json()
    assert data["valid"] is True and data["policy_valid"] is False
    assert [f["item"] for f in data["policy_findings"]] == LAUNDERED  # type: ignore[attr-defined]
    plain = check_ledger(path, trust)
    assert plain.policy is None and plain.policy_ok and plain.to_json()["policy_findings"] == []
    verify_ledger(path, trust)
    with pytest.raises(RuleError) as info:
        verify_ledger(path, trust, policy=Policy(deny_origin=frozenset({"RU"})))
    assert info.value.code == "policy.denied_origin"


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def laundered(w: World, tmp_path: Path) -> tuple[Path, Path]:
    launder(w)
    return write(w, tmp_path)


def test_cli_deny_origin(laundered: tuple[Path, Path]) -> None:
    path, trust = laundered
    result = run("verify", path, "--trust", trust)
    assert result.exit_code == 0, result.output
    assert "policy:" not in result.output
    result = run("verify", path, "--trust", trust, "--deny-origin", "RU")
    assert result.exit_code == 1, result.output
    out = result.output
    assert "integrity: valid" in out  # integrity holds
    assert out.index("policy (") < out.index("result:  NOT COMPLIANT (4 findings)") < out.index("policy.denied")
    assert out.splitlines()[-1] == "verdict:   valid, NOT COMPLIANT (4 policy findings)"  # one verdict, last
    assert all(f"[{item}]: policy.denied_origin" in out for item in LAUNDERED)
    assert run("verify", path, "--trust", trust, "--deny-origin", "CA,BY", "--deny-origin", "ZA").exit_code == 0
    assert run("verify", path, "--trust", trust, "--deny-origin", "BY,RU").exit_code == 1


def test_cli_policy_file_and_flags(laundered: tuple[Path, Path], tmp_path: Path) -> None:
    path, trust = laundered
    policy = tmp_path / "eu.policy"
    policy.write_text("deny_origin = RU\nimport_threshold_mct = 1000\nkp_rules = true\n", encoding="utf-8")
    result = run("verify", path, "--trust", trust, "--policy", policy, "--json")
    assert result.exit_code == 1, result.output
    data = json.loads(result.output)
    assert data["valid"] is True and data["policy_valid"] is False
    assert [f["item"] for f in data["policy_findings"]] == ["RU-LOT", "PARCEL", "PARCEL-S1"]  # 0.830 ct < 1 ct
    result = run("verify", path, "--trust", trust, "--policy", policy, "--import-threshold-ct", "0.8", "--json")
    assert [f["item"] for f in json.loads(result.output)["policy_findings"]] == LAUNDERED
    policy.write_text("deny_origin = CA\nkp_rules = true\n", encoding="utf-8")
    result = run("verify", path, "--trust", trust, "--policy", policy)
    assert result.exit_code == 0 and result.output.endswith("verdict:   valid, compliant\n"), result.output


@pytest.mark.parametrize("args", [
    ("--deny-origin", "r"), ("--deny-origin", "RUS"), ("--import-threshold-ct", "1e3"),
    ("--regrade-tolerance-ct", "0.0005"), ("--import-tolerance-ct", "-1"),
])
def test_cli_refuses_bad_policy_values(laundered: tuple[Path, Path], args: tuple[str, str]) -> None:
    path, trust = laundered
    result = run("verify", path, "--trust", trust, *args)
    assert result.exit_code == 2 and "policy.malformed" in result.output and "Traceback" not in result.output


def test_cli_reads_a_country_code_in_lower_case_as_the_code(laundered: tuple[Path, Path]) -> None:
    path, trust = laundered
    lower, upper = (run("verify", path, "--trust", trust, "--deny-origin", code, "--json")
                    for code in ("ru,ca", "RU,CA"))
    assert lower.exit_code == upper.exit_code
    assert json.loads(lower.output)["policy_findings"] == json.loads(upper.output)["policy_findings"] != []


def test_cli_refuses_a_malformed_policy_file(laundered: tuple[Path, Path], tmp_path: Path) -> None:
    path, trust = laundered
    (tmp_path / "bad.policy").write_text("deny_origin = RU\nkp_rules = yes\n", encoding="utf-8")
    result = run("verify", path, "--trust", trust, "--policy", tmp_path / "bad.policy")
    assert result.exit_code == 2 and "bad.policy: line 2" in result.output


@pytest.mark.parametrize(("recorded", "want_exit", "want"), [
    (5_000, 1, ["policy.denied_origin", "policy.declared_below_recorded"]), (100, 0, [])])
def test_cli_verify_and_the_bundle_judge_the_threshold_on_the_recorded_mass(
        w: World, tmp_path: Path, recorded: int, want_exit: int, want: list[str]) -> None:
    """The reviewer's attack through `verify` and through the stone's proof bundle (export, then `proof verify`
    and check_bundle): 5 ct declared at 0.1 ct is not compliant; a stone that really weighs 0.1 ct is."""
    small_stone(w, recorded, 100)
    path, trust = write(w, tmp_path)
    flags = ["--deny-origin", "RU", "--import-threshold-ct", "0.5"]
    result = run("verify", path, "--trust", trust, *flags, "--json")
    assert result.exit_code == want_exit, result.output
    assert [f["code"] for f in json.loads(result.output)["policy_findings"]] == want
    (tmp_path / "cp.txt").write_text(checkpoint_file(path, key("operator")), encoding="utf-8")
    bundle = tmp_path / "RU-1.stproof"
    assert run("proof", "export", path, "RU-1", "--checkpoint", tmp_path / "cp.txt", "-o", bundle).exit_code == 0
    proof = run("proof", "verify", bundle, "--trust", trust, *flags)
    assert proof.exit_code == want_exit and all(code in proof.output for code in want), proof.output
    report = check_bundle(bundle.read_bytes(), Trust.parse(trust.read_text()), Policy(**EU))  # type: ignore[arg-type]
    assert report.ok and [f.code for f in report.policy_findings] == want


def test_cli_help_shows_a_policy_example() -> None:
    result = run("verify", "--help")
    assert "stonetrail verify out/demo.ledger --trust out/trust.keys --deny-origin RU" in result.output
