"""The sample ledger behind ``stonetrail demo``: realistic custody from real mines, with fictitious parties.

Everything is derived from one integer seed (party keys, masses, grades, report numbers, times), so the same
seed gives the same bytes. Mines and their countries are real (``ledger/data/mines.csv``, a copy of
shared/data); each mine's share of rough follows its country's 2023 production (``production_2023.csv``).
Parties, KP-style numbers and report numbers are invented and marked as sample data.

Scenarios (DOMAIN.md): (1) a mine's run-of-mine lot is sorted into rough stones, each sold locally, sold on to
an Antwerp dealer, bought by a Surat manufacturer, cut into two polished stones and graded by a laboratory;
(6) the 1,109 ct Karowe rough is cut in London into 67 polished stones.
"""

from __future__ import annotations

import csv
import hashlib
import random
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ._ledger import Ledger
from .audit import AuditReport, check_ledger
from .errors import StorageError
from .events import Enrolled, Event, Graded, Mined, Split, Transferred
from .keyfile import save_private_key
from .keys import PrivateKey, note_verifier_key
from .record import Body, Output, Record
from .registry import AUTHORITY
from .trust import Trust

__all__ = ["DemoSummary", "build_demo"]

ORIGIN = "demo.stonetrail.example/ledger"
AUTHORITY_NAME = "demo.stonetrail.example/authority"
START_MS = 1_740_787_200_000  # 2025-03-01T00:00:00Z
ROUGH_COUNT = 110
SAMPLE = " (sample data)"

#: (party id, name, roles, country) of the fictitious trade parties; producers are added per mine.
TRADE_PARTIES = (
    ("trader-gaborone", "Kalahari Rough Trading", ("trader",), "BW"),
    ("trader-antwerp", "Schelde Diamond Dealers", ("trader",), "BE"),
    ("cutter-surat", "Tapi Cutting Works", ("manufacturer",), "IN"),
    ("cutter-london", "Thames Master Cutters", ("manufacturer",), "GB"),
    ("lab-mumbai", "Bandra Gemmological Laboratory", ("lab",), "IN"),
)
LAB = "lab-mumbai"
COLOURS = ("D", "E", "F", "G", "H", "I", "J")
CLARITIES = ("IF", "VVS1", "VVS2", "VS1", "VS2", "SI1", "SI2")


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoSummary:
    """What ``build_demo`` wrote and what verifying it found."""

    directory: Path
    ledger_path: Path
    trust_path: Path
    checkpoint_path: Path
    polished_example: str
    report: AuditReport


@dataclass(frozen=True, slots=True)
class _Mine:
    name: str
    country: str
    producer: str


def _read_csv(name: str) -> list[dict[str, str]]:
    with resources.files("ledger.data").joinpath(name).open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _production() -> dict[str, int]:
    """2023 rough production by ISO country, thousand carats."""
    return {row["iso"]: int(row["thousand_carats"]) for row in _read_csv("production_2023.csv") if row["iso"]}


def _load_mines() -> list[_Mine]:
    """Operating non-Russian mines of countries with production figures (Russian goods: a later scenario)."""
    production = _production()
    return [_Mine(m["mine"], m["iso"], "producer-" + m["mine"].lower().replace(" ", "-"))
            for m in _read_csv("mines.csv")
            if m["status"].startswith(("operating", "closing")) and m["iso"] != "RU" and production.get(m["iso"])]


def _allocate(mines: list[_Mine], total: int) -> dict[str, int]:
    """Roughs per mine: 4 each, the rest in proportion to the country's 2023 production split among its mines."""
    production = _production()
    per_country = {m.country: sum(1 for n in mines if n.country == m.country) for m in mines}
    weight = {m.name: production[m.country] // per_country[m.country] for m in mines}
    rest = total - 4 * len(mines)
    share = {m.name: 4 + rest * weight[m.name] // sum(weight.values()) for m in mines}
    share[mines[0].name] += total - sum(share.values())
    return share


class _Builder:
    """Signs and appends demo records; keys are derived from the seed and each party's id."""

    def __init__(self, ledger: Ledger, seed: int, keys: dict[str, PrivateKey]) -> None:
        self.ledger, self.keys = ledger, keys
        self.rng = random.Random(seed)
        self.time_ms = START_MS

    def tick(self) -> int:
        """Advance the one demo clock by 10 to 120 minutes (records are appended in time order)."""
        self.time_ms += self.rng.randrange(10, 121) * 60_000
        return self.time_ms

    def pause(self, days: int) -> None:
        """Let ``days`` pass between stages of the trade."""
        self.time_ms += days * 86_400_000

    def append(self, event: Event, actor: str, place: str, *, signers: tuple[str, ...] = (),
               inputs: tuple[str, ...] = (), consumes: tuple[str, ...] = (), outputs: tuple[Output, ...] = ()
               ) -> None:
        body = Body(origin=self.ledger.origin, kind=event.KIND, time_ms=self.tick(), place=place,
                    actor=actor, event=event, inputs=self.ledger.inputs(*inputs), consumes=consumes,
                    outputs=outputs)
        self.ledger.append(Record.create(body, [(p, self.keys[p]) for p in (actor, *signers)]))

    def enrol(self, party: str, name: str, roles: tuple[str, ...], country: str) -> None:
        event = Enrolled(party=party, name=name + SAMPLE, roles=tuple(sorted(roles)), country=country,
                         key=self.keys[party].public_key.raw, registry_prev=self.ledger.registry_head)
        self.append(event, AUTHORITY, "BE")


def _key(seed: int, name: str) -> PrivateKey:
    return PrivateKey.from_seed(hashlib.sha256(f"stonetrail demo {seed} {name}".encode()).digest())


def build_demo(directory: str | Path, seed: int = 1) -> DemoSummary:
    """Write the sample ledger, keys, trust file and checkpoint into ``directory``, then audit the ledger.

    Writes ``demo.ledger``, ``trust.keys``, ``checkpoint.txt`` and ``keys/<party>.pem`` (mode 0600).

    Raises:
        StorageError: ``directory`` exists and is not empty (nothing is overwritten), or cannot be written.
    """
    out = Path(directory)
    ledger_path = out / "demo.ledger"
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise StorageError(f"{out} is not an empty directory; the demo writes only into a new or empty one",
                           code="store.exists")
    mines = _load_mines()
    parties = [(m.producer, f"{m.name} Sample Mining", ("producer",), m.country) for m in mines]
    parties += list(TRADE_PARTIES)
    names = [AUTHORITY, "operator", *(p[0] for p in parties)]
    keys = {name: _key(seed, name) for name in names}
    (out / "keys").mkdir(parents=True, exist_ok=True)
    for name, key in keys.items():
        save_private_key(out / "keys" / f"{name}.pem", key)
    trust = Trust(operators=(note_verifier_key(ORIGIN, keys["operator"].public_key),),
                  authorities=(note_verifier_key(AUTHORITY_NAME, keys[AUTHORITY].public_key),))
    with Ledger.create(ledger_path, ORIGIN, trust.authority_keys) as ledger:
        b = _Builder(ledger, seed, keys)
        for party in parties:
            b.enrol(*party)
        example = _scenario_one(b, mines)
        _scenario_six(b)
        checkpoint = ledger.checkpoint(keys["operator"])
    (out / "trust.keys").write_text(trust.format(), encoding="utf-8")
    (out / "checkpoint.txt").write_text(checkpoint, encoding="utf-8")
    report = check_ledger(ledger_path, trust, checkpoint=checkpoint)
    return DemoSummary(directory=out, ledger_path=ledger_path, trust_path=out / "trust.keys",
                       checkpoint_path=out / "checkpoint.txt", polished_example=example, report=report)


def _scenario_one(b: _Builder, mines: list[_Mine]) -> str:
    """Scenario 1 for every mine, stage by stage so that the clock stays plausible: lots are mined and sorted
    into rough stones; Botswana's rough is sold in Gaborone; all rough is sold to an Antwerp dealer, then to a
    Surat manufacturer, cut into two polished stones each, and graded in Mumbai. Returns one polished stone."""
    roughs: list[tuple[str, int, _Mine]] = []
    for mine, count in _allocate(mines, ROUGH_COUNT).items():
        m = next(x for x in mines if x.name == mine)
        masses = [b.rng.randrange(1_000, 6_000) for _ in range(count)]
        lot, rest = f"LOT-{m.country}-{mine.upper().replace(' ', '')}", 5 * sum(masses)
        b.append(Mined(mine=mine, country=m.country), m.producer, m.country,
                 outputs=(Output(id=lot, type="lot", mass_mct=sum(masses) + rest),))
        ids = [f"R-{len(roughs) + i + 1:05d}" for i in range(count)]
        outs: tuple[Output, ...] = (Output(id=lot + "-REST", type="lot", mass_mct=rest),)  # "LOT-" < "R-"
        outs += tuple(Output(id=r, type="stone", mass_mct=w) for r, w in zip(ids, masses, strict=True))
        b.append(Split(loss_mct=0), m.producer, m.country, inputs=(lot,), consumes=(lot,), outputs=outs)
        roughs += [(r, w, m) for r, w in zip(ids, masses, strict=True)]
    holder = {r: m.producer for r, _, m in roughs}
    for days, to, place in ((3, "trader-gaborone", "BW"), (10, "trader-antwerp", "BE"), (7, "cutter-surat", "BE")):
        b.pause(days)
        for rough, _, m in roughs:
            if to != "trader-gaborone" or m.country == "BW":
                b.append(Transferred(to=to, mode="title"), holder[rough], place, signers=(to,), inputs=(rough,))
                holder[rough] = to
    b.pause(30)
    pieces = [piece for rough, mass, _ in roughs for piece in _cut(b, rough, mass)]
    b.pause(14)
    for piece in pieces:
        _grade(b, piece)
    return pieces[0].id


def _cut(b: _Builder, rough: str, mass: int) -> tuple[Output, Output]:
    """Cut one rough into two polished stones: about 30-42% and 8-15% of its mass; the rest is lost."""
    big = mass * b.rng.randrange(30, 43) // 100
    small = mass * b.rng.randrange(8, 16) // 100
    pieces = (Output(id=rough + "-A", type="stone", mass_mct=big), Output(id=rough + "-B", type="stone",
                                                                          mass_mct=small))
    b.append(Split(loss_mct=mass - big - small), "cutter-surat", "IN", inputs=(rough,), consumes=(rough,),
             outputs=pieces)
    return pieces


def _grade(b: _Builder, piece: Output) -> None:
    """The lab weighs to 0.01 ct (so 0.815 ct is reported as 0.81 ct) and grades colour and clarity."""
    event = Graded(lab=LAB, report=f"SAMPLE-{b.rng.randrange(10**9, 10**10)}",
                   mass_mct=piece.mass_mct - piece.mass_mct % 10, colour=b.rng.choice(COLOURS),
                   clarity=b.rng.choice(CLARITIES), nature="natural")
    b.append(event, "cutter-surat", "IN", signers=(LAB,), inputs=(piece.id,))


def _scenario_six(b: _Builder) -> None:
    """The 1,109 ct Karowe rough (Lesedi La Rona, 2015) cut into 67 polished stones (DOMAIN.md scenario 6)."""
    rough, mass = "R-KAROWE-1109", 1_109_000
    b.append(Mined(mine="Karowe", country="BW"), "producer-karowe", "BW",
             outputs=(Output(id=rough, type="stone", mass_mct=mass),))
    b.append(Transferred(to="cutter-london", mode="title"), "producer-karowe", "BW", signers=("cutter-london",),
             inputs=(rough,))
    masses = [302_370] + [b.rng.randrange(500, 9_000) for _ in range(66)]
    outs = tuple(Output(id=f"P-LESEDI-{i + 1:02d}", type="stone", mass_mct=w) for i, w in enumerate(masses))
    b.append(Split(loss_mct=mass - sum(masses)), "cutter-london", "GB", inputs=(rough,), consumes=(rough,),
             outputs=outs)
