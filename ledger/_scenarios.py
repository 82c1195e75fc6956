"""The trade stories of the sample ledger (DOMAIN.md "Sample scenarios worth shipping"), one function each.

Every record goes through :class:`ledger.Ledger`, so the ledger is valid for integrity by construction; the
fraud scenarios (3 and 4) are ones that only a *policy* exposes, which is the point of showing them. All values
come from the builder's seeded random generator: the same seed gives the same bytes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ._ledger import Ledger
from .events import (
    Enrolled,
    Event,
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
    Verified,
)
from .keys import PrivateKey
from .record import Body, Output, Record
from .registry import AUTHORITY
from .rules import RULES

__all__ = ["Builder", "Mine", "scenario_canada", "scenario_laundering", "scenario_lesedi", "scenario_main",
           "scenario_recovered", "scenario_substitution"]

START_MS = 1_740_787_200_000  # 2025-03-01T00:00:00Z
DAY_MS = 86_400_000
SAMPLE = " (sample data)"
COLOURS = ("D", "E", "F", "G", "H", "I", "J")
CLARITIES = ("IF", "VVS1", "VVS2", "VS1", "VS2", "SI1", "SI2")
LAB = "lab-mumbai"


@dataclass(frozen=True, slots=True)
class Mine:
    """A real mine (ledger/data/mines.csv) and the fictitious producer enrolled for it."""

    name: str
    country: str
    producer: str


class Builder:
    """Signs and appends demo records on one clock; co-signers are taken from the transition table."""

    def __init__(self, ledger: Ledger, seed: int, keys: dict[str, PrivateKey]) -> None:
        self.ledger, self.keys = ledger, keys
        self.rng = random.Random(seed)
        self.time_ms = START_MS
        self.certificates = 0

    def pause(self, days: int) -> None:
        """Let ``days`` pass between stages of the trade."""
        self.time_ms += days * DAY_MS

    def append(self, event: Event, actor: str, place: str, *, inputs: tuple[str, ...] = (),
               consumes: tuple[str, ...] = (), outputs: tuple[Output, ...] = ()) -> None:
        """Sign ``event`` as ``actor`` (plus its co-signer, if any) and append it 10 to 120 minutes later."""
        self.time_ms += self.rng.randrange(10, 121) * 60_000
        body = Body(origin=self.ledger.origin, kind=event.KIND, time_ms=self.time_ms, place=place, actor=actor,
                    event=event, inputs=self.ledger.inputs(*inputs), consumes=tuple(sorted(consumes)),
                    outputs=tuple(sorted(outputs, key=lambda o: o.id)))
        rule = RULES.get(event.KIND)
        cosigner = rule.cosigner_of(event) if rule else None
        signers = [actor] + ([cosigner] if cosigner else [])
        self.ledger.append(Record.create(body, [(p, self.keys[p]) for p in signers]))

    def enrol(self, party: str, name: str, roles: tuple[str, ...], country: str) -> None:
        event = Enrolled(party=party, name=name + SAMPLE, roles=tuple(sorted(roles)), country=country,
                         external_ids=(f"SAMPLE-REGISTRY:{country}-{party.upper()}",),
                         key=self.keys[party].public_key.raw, registry_prev=self.ledger.registry_head)
        self.append(event, AUTHORITY, "BE")

    def ship(self, items: list[str], holder: str, source: str, consignee: str, destination: str) -> None:
        """Export ``items`` under a fresh sample KP certificate and import them at the destination."""
        self.certificates += 1
        certificate = f"{source}-SAMPLE-{self.certificates:05d}"
        declared = tuple(sorted((i, self.ledger.item(i).mass_mct) for i in items))
        kp = _one(self.ledger.state.registry.parties_with(RULES["exported"].cosigner_role, source))
        customs = _one(self.ledger.state.registry.parties_with(RULES["imported"].cosigner_role, destination))
        self.append(Exported(kp_certificate=certificate, to_country=destination, consignee=consignee,
                             certificate_mct=sum(m for _, m in declared), issued_ms=self.time_ms,
                             expires_ms=self.time_ms + 90 * DAY_MS, declared=declared, kp_authority=kp),
                    holder, source, inputs=tuple(items))
        self.pause(2)
        self.append(Imported(kp_certificate=certificate, from_country=source, declared=declared, customs=customs,
                             basis=None), consignee, destination, inputs=tuple(items))

    def sell(self, item: str, seller: str, buyer: str, place: str) -> None:
        self.append(Transferred(to=buyer, mode="title"), seller, place, inputs=(item,))

    def cut(self, rough: str, mass: int, cutter: str, place: str,
            pieces_mct: tuple[int, int] | None = None) -> tuple[Output, Output]:
        """Cut one rough into two polished stones: about 30-42% and 8-15% of its mass (or ``pieces_mct``)."""
        big, small = pieces_mct or (mass * self.rng.randrange(30, 43) // 100, mass * self.rng.randrange(8, 16) // 100)
        pieces = (Output(id=rough + "-A", type="stone", mass_mct=big),
                  Output(id=rough + "-B", type="stone", mass_mct=small))
        self.append(Split(loss_mct=mass - big - small), cutter, place, inputs=(rough,), consumes=(rough,),
                    outputs=pieces)
        return pieces

    def grade(self, stone: str, holder: str, *, mass_mct: int | None = None) -> str:
        """The lab weighs (to 0.01 ct unless ``mass_mct`` is given: 0.815 ct is reported as 0.81 ct) and grades
        colour and clarity. Returns the report number."""
        mass = self.ledger.item(stone).mass_mct
        weighed = mass - mass % 10 if mass_mct is None else mass_mct
        report = f"SAMPLE-{self.rng.randrange(10**9, 10**10)}"
        self.append(Graded(lab=LAB, report=report, mass_mct=weighed, colour=self.rng.choice(COLOURS),
                           clarity=self.rng.choice(CLARITIES), nature=self.ledger.item(stone).nature),
                    holder, self.ledger.item(stone).country, inputs=(stone,))
        return report


def _one(parties: list[str]) -> str | None:
    return parties[0] if parties else None


def _mine_lot(b: Builder, m: Mine, lot: str, mass: int) -> None:
    b.append(Mined(mine=m.name, country=m.country), m.producer, m.country,
             outputs=(Output(id=lot, type="lot", mass_mct=mass),))


def scenario_main(b: Builder, mines: list[Mine], allocation: dict[str, int]) -> list[str]:
    """Scenario 1 for every mine, stage by stage: lots are mined and sorted into rough stones; Botswana's rough
    is sold in Gaborone; all rough is exported to Antwerp (KP certificate per shipment), verified by the G7 node,
    sold to a Surat manufacturer, exported to India, cut into two polished stones each and graded in Mumbai; two
    of them go to New York and are set in a ring. Returns the polished stones."""
    roughs: list[tuple[str, int, Mine]] = []
    for m in mines:
        masses = [b.rng.randrange(1_000, 6_000) for _ in range(allocation[m.name])]
        lot, rest = f"LOT-{m.country}-{m.name.upper().replace(' ', '')}", 5 * sum(masses)
        _mine_lot(b, m, lot, sum(masses) + rest)
        ids = [f"R-{len(roughs) + i + 1:05d}" for i in range(len(masses))]
        outs = (Output(id=lot + "-REST", type="lot", mass_mct=rest),
                *(Output(id=r, type="stone", mass_mct=w) for r, w in zip(ids, masses, strict=True)))
        b.append(Split(loss_mct=0), m.producer, m.country, inputs=(lot,), consumes=(lot,), outputs=outs)
        roughs += [(r, w, m) for r, w in zip(ids, masses, strict=True)]
    b.pause(3)
    holder = {r: m.producer for r, _, m in roughs}
    for rough, _, m in roughs:
        if m.country == "BW":
            b.sell(rough, m.producer, "trader-gaborone", "BW")
            holder[rough] = "trader-gaborone"
    b.pause(10)
    for seller in sorted(set(holder.values())):
        batch = [r for r, _, _ in roughs if holder[r] == seller]
        b.ship(batch, seller, next(m.country for r, _, m in roughs if r == batch[0]), "trader-antwerp", "BE")
    for rough, _, m in roughs:
        b.append(Verified(node="node-antwerp", countries=(m.country,)), "trader-antwerp", "BE", inputs=(rough,))
    b.pause(7)
    for rough, _, _ in roughs:
        b.sell(rough, "trader-antwerp", "cutter-surat", "BE")
    b.ship([r for r, _, _ in roughs], "cutter-surat", "BE", "cutter-surat", "IN")
    b.pause(30)
    pieces = [p.id for rough, mass, _ in roughs for p in b.cut(rough, mass, "cutter-surat", "IN")]
    b.pause(14)
    for piece in pieces:
        b.grade(piece, "cutter-surat")
    b.pause(20)
    ring = pieces[:2]
    b.ship(ring, "cutter-surat", "IN", "jeweller-newyork", "US")
    b.append(Set(description="platinum two-stone ring"), "jeweller-newyork", "US", inputs=tuple(ring),
             outputs=(Output(id="RING-0001", type="article",
                             mass_mct=sum(b.ledger.item(s).mass_mct for s in ring)),))
    return pieces


def scenario_canada(b: Builder, diavik: Mine) -> None:
    """Scenario 2: Canadian rough (Diavik) to Antwerp, cut in Ramat Gan, imported into the US with its
    country of mining."""
    b.pause(5)
    _mine_lot(b, diavik, "R-DIAVIK-0001", 3_400)
    b.ship(["R-DIAVIK-0001"], diavik.producer, "CA", "trader-antwerp", "BE")
    b.sell("R-DIAVIK-0001", "trader-antwerp", "cutter-ramatgan", "BE")
    b.ship(["R-DIAVIK-0001"], "cutter-ramatgan", "BE", "cutter-ramatgan", "IL")
    pieces = b.cut("R-DIAVIK-0001", 3_400, "cutter-ramatgan", "IL")
    b.grade(pieces[0].id, "cutter-ramatgan")
    b.ship([pieces[0].id], "cutter-ramatgan", "IL", "jeweller-newyork", "US")


def scenario_laundering(b: Builder, udachny: Mine, catoca: Mine) -> list[str]:
    """Scenario 3: Udachny (RU) rough goes to Dubai, is mixed there with Angolan goods into one parcel, cut in
    India and offered for import into the EU. Every record is valid; the no-RU policy must flag the Russian lot,
    the parcel and every stone cut from it (taint through the parcel). Returns the laundered item ids."""
    b.pause(5)
    _mine_lot(b, udachny, "LOT-RU-UDACHNY", 40_000)
    b.ship(["LOT-RU-UDACHNY"], udachny.producer, "RU", "trader-dubai", "AE")
    _mine_lot(b, catoca, "LOT-AO-CATOCA-X", 60_000)
    b.ship(["LOT-AO-CATOCA-X"], catoca.producer, "AO", "trader-dubai", "AE")
    b.append(Merged(loss_mct=0), "trader-dubai", "AE", inputs=("LOT-AO-CATOCA-X", "LOT-RU-UDACHNY"),
             consumes=("LOT-AO-CATOCA-X", "LOT-RU-UDACHNY"),
             outputs=(Output(id="PARCEL-DXB-01", type="lot", mass_mct=100_000),))
    b.ship(["PARCEL-DXB-01"], "trader-dubai", "AE", "cutter-surat", "IN")
    stones = (Output(id="PARCEL-DXB-01-S1", type="stone", mass_mct=1_250),
              Output(id="PARCEL-DXB-01-S2", type="stone", mass_mct=830))
    b.append(Split(loss_mct=100_000 - 2_080), "cutter-surat", "IN", inputs=("PARCEL-DXB-01",),
             consumes=("PARCEL-DXB-01",), outputs=stones)
    for stone in stones:
        b.grade(stone.id, "cutter-surat")
    b.ship([s.id for s in stones], "cutter-surat", "IN", "trader-antwerp", "BE")
    return ["LOT-RU-UDACHNY", "PARCEL-DXB-01", *(s.id for s in stones)]


def scenario_substitution(b: Builder, karowe: Mine) -> None:
    """Scenario 4: a natural stone is graded 1.512 ct and inscribed with its report number; later a CVD stone
    bearing a copy of that inscription is passed off as it and re-graded at 1.504 ct. The ledger only sees a
    re-grade that disagrees by 8 mct: integrity holds, a re-grade tolerance policy exposes it."""
    b.pause(5)
    _mine_lot(b, karowe, "R-KAROWE-0002", 4_100)
    b.sell("R-KAROWE-0002", karowe.producer, "trader-gaborone", "BW")
    b.ship(["R-KAROWE-0002"], "trader-gaborone", "BW", "cutter-surat", "IN")
    natural = b.cut("R-KAROWE-0002", 4_100, "cutter-surat", "IN", pieces_mct=(1_515, 400))[0].id
    report = b.grade(natural, "cutter-surat", mass_mct=1_512)
    b.append(Inscribed(lab=LAB, inscription=report), "cutter-surat", "IN", inputs=(natural,))
    b.append(Grown(facility="Surat CVD reactor hall", country="IN", method="CVD"), "grower-surat", "IN",
             outputs=(Output(id="CVD-0001", type="stone", mass_mct=1_509),))
    b.pause(60)
    b.grade(natural, "cutter-surat", mass_mct=1_504)  # the lab was handed the CVD stone


def scenario_recovered(b: Builder) -> None:
    """Scenario 5: a stone recovered from old jewellery, with no history, is registered with an unknown origin
    and shipped to India: an import that the known-origin policy (R4) flags."""
    b.pause(3)
    b.append(Registered(reason="recovered from an estate brooch", nature="natural"), "trader-antwerp", "BE",
             outputs=(Output(id="ESTATE-0001", type="stone", mass_mct=1_070),))
    b.ship(["ESTATE-0001"], "trader-antwerp", "BE", "cutter-surat", "IN")


def scenario_lesedi(b: Builder) -> None:
    """Scenario 6: the 1,109 ct Karowe rough (Lesedi La Rona, 2015) cut in London into 67 polished stones."""
    rough, mass = "R-KAROWE-1109", 1_109_000
    b.append(Mined(mine="Karowe", country="BW"), "producer-karowe", "BW",
             outputs=(Output(id=rough, type="stone", mass_mct=mass),))
    b.ship([rough], "producer-karowe", "BW", "cutter-london", "GB")
    masses = [302_370] + [b.rng.randrange(500, 9_000) for _ in range(66)]
    outs = tuple(Output(id=f"P-LESEDI-{i + 1:02d}", type="stone", mass_mct=w) for i, w in enumerate(masses))
    b.append(Split(loss_mct=mass - sum(masses)), "cutter-london", "GB", inputs=(rough,), consumes=(rough,),
             outputs=outs)
