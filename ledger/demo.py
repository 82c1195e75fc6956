"""The sample ledger behind ``stonetrail demo``: realistic custody from real mines, with fictitious parties.

Everything is derived from one integer seed (party keys, masses, grades, report numbers, times), so the same
seed gives the same bytes. Mines and their countries are real (``ledger/data/mines.csv``, a copy of
shared/data); each mine's share of rough follows its country's 2023 production (``production_2023.csv``).
Parties, KP certificate numbers and report numbers are invented and marked as sample data. The stories are the
six scenarios of DOMAIN.md (:mod:`ledger._scenarios`); the ledger is valid for integrity, and the laundered
goods of scenario 3 are what ``--deny-origin RU`` must flag.
"""

from __future__ import annotations

import csv
import hashlib
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from ._files import write_files
from ._ledger import Ledger
from ._scenarios import (
    Builder,
    Mine,
    scenario_canada,
    scenario_laundering,
    scenario_lesedi,
    scenario_main,
    scenario_recovered,
    scenario_substitution,
)
from .audit import AuditReport, check_ledger
from .bundle import BundleReport, check_bundle
from .errors import StorageError
from .export import export_bundles
from .keyfile import save_private_key
from .keys import PrivateKey, note_verifier_key
from .registry import AUTHORITY
from .trust import Trust

__all__ = ["DemoSummary", "build_demo"]

ORIGIN = "demo.stonetrail.example/ledger"
AUTHORITY_NAME = "demo.stonetrail.example/authority"
#: (party id, name, roles, country) of the fictitious trade parties; producers are added per mine.
TRADE_PARTIES = (
    ("trader-gaborone", "Kalahari Rough Trading", ("trader",), "BW"),
    ("trader-antwerp", "Schelde Diamond Dealers", ("trader",), "BE"),
    ("trader-dubai", "Creek Gem Trading", ("trader",), "AE"),
    ("cutter-surat", "Tapi Cutting Works", ("manufacturer",), "IN"),
    ("cutter-london", "Thames Master Cutters", ("manufacturer",), "GB"),
    ("cutter-ramatgan", "Ayalon Polishing", ("manufacturer",), "IL"),
    ("lab-mumbai", "Bandra Gemmological Laboratory", ("lab",), "IN"),
    ("jeweller-newyork", "Hudson Fine Jewelry", ("jeweller",), "US"),
    ("grower-surat", "Surat Crystal Growers", ("producer",), "IN"),
    ("node-antwerp", "Antwerp G7 Verification Node", ("node",), "BE"),
    ("kp-botswana", "Botswana KP Authority", ("kp_authority",), "BW"),
    ("kp-canada", "Canada KP Authority", ("kp_authority",), "CA"),
    ("kp-belgium", "Belgium KP Authority", ("kp_authority",), "BE"),
    ("customs-belgium", "Belgian Customs", ("customs",), "BE"),
    ("customs-us", "US Customs", ("customs",), "US"),
)
ROUGH_COUNT = 110
ORIGIN = "demo.stonetrail.example/ledger"
AUTHORITY_NAME = "demo.stonetrail.example/authority"


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoSummary:
    """What ``build_demo`` wrote and what verifying it found."""

    directory: Path
    ledger_path: Path
    trust_path: Path
    checkpoint_path: Path
    polished_example: str
    laundered: tuple[str, ...]
    report: AuditReport
    proofs_dir: Path
    proof_count: int
    proof_example: Path
    proof_report: BundleReport


def _read_csv(name: str) -> list[dict[str, str]]:
    with resources.files("ledger.data").joinpath(name).open(encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _production() -> dict[str, int]:
    """2023 rough production by ISO country, thousand carats."""
    return {row["iso"]: int(row["thousand_carats"]) for row in _read_csv("production_2023.csv") if row["iso"]}


def _load_mines() -> list[Mine]:
    """Operating mines of countries with production figures."""
    production = _production()
    return [Mine(m["mine"], m["iso"], "producer-" + m["mine"].lower().replace(" ", "-"))
            for m in _read_csv("mines.csv")
            if m["status"].startswith(("operating", "closing")) and production.get(m["iso"])]


def _allocate(mines: list[Mine], total: int) -> dict[str, int]:
    """Roughs per mine: 4 each, the rest in proportion to the country's 2023 production split among its mines."""
    production = _production()
    per_country = {m.country: sum(1 for n in mines if n.country == m.country) for m in mines}
    weight = {m.name: production[m.country] // per_country[m.country] for m in mines}
    rest = total - 4 * len(mines)
    share = {m.name: 4 + rest * weight[m.name] // sum(weight.values()) for m in mines}
    share[mines[0].name] += total - sum(share.values())
    return share


def _key(seed: int, name: str) -> PrivateKey:
    return PrivateKey.from_seed(hashlib.sha256(f"stonetrail demo {seed} {name}".encode()).digest())


def build_demo(directory: str | Path, seed: int = 1) -> DemoSummary:
    """Write the sample ledger, keys, trust file and checkpoint into ``directory``, then audit the ledger; write
    a proof bundle for every polished stone of the main story and verify the first offline.

    Writes ``demo.ledger``, ``trust.keys``, ``checkpoint.txt``, ``keys/<party>.pem`` (mode 0600) and
    ``proofs/<stone>.stproof``.

    Raises:
        StorageError: ``directory`` exists and is not empty (nothing is overwritten), or cannot be written. On
            any error, or an interrupt, what it wrote is removed (and ``directory`` if it made it).
    """
    out = Path(directory)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise StorageError(f"{out} is not an empty directory; the demo writes only into a new or empty one",
                           code="store.exists")
    existed = out.exists()
    try:
        return _build(out, seed)
    except BaseException:  # an error or an interrupt: what was written is removed, so that it can run again
        if existed:
            for child in list(out.iterdir()):
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
        else:
            shutil.rmtree(out, ignore_errors=True)
        raise


def _build(out: Path, seed: int) -> DemoSummary:
    """:func:`build_demo` into the new or empty directory ``out``."""
    ledger_path = out / "demo.ledger"
    mines = _load_mines()
    by_name = {m.name: m for m in mines}
    main = [m for m in mines if m.country != "RU"]  # Russian goods appear only in the laundering story
    parties = [(m.producer, f"{m.name} Sample Mining", ("producer",), m.country) for m in main]
    parties += [(by_name["Udachny"].producer, "Udachny Sample Mining", ("producer",), "RU"), *TRADE_PARTIES]
    names = [AUTHORITY, "operator", *(p[0] for p in parties)]
    keys = {name: _key(seed, name) for name in names}
    (out / "keys").mkdir(parents=True, exist_ok=True)
    for name, key in keys.items():
        save_private_key(out / "keys" / f"{name}.pem", key)
    trust = Trust(operators=(note_verifier_key(ORIGIN, keys["operator"].public_key),),
                  authorities=(note_verifier_key(AUTHORITY_NAME, keys[AUTHORITY].public_key),))
    with Ledger.create(ledger_path, ORIGIN, trust.authority_keys) as ledger:
        b = Builder(ledger, seed, keys)
        for party in parties:
            b.enrol(*party)
        polished = scenario_main(b, main, _allocate(main, ROUGH_COUNT))
        scenario_canada(b, by_name["Diavik"])
        laundered = scenario_laundering(b, by_name["Udachny"], by_name["Catoca"])
        scenario_substitution(b, by_name["Karowe"])
        scenario_recovered(b)
        scenario_lesedi(b)
        checkpoint = ledger.checkpoint(keys["operator"])
    write_files([(out / "trust.keys", trust.format().encode()), (out / "checkpoint.txt", checkpoint.encode())])
    report = check_ledger(ledger_path, trust, checkpoint=checkpoint)
    proofs = out / "proofs"
    proofs.mkdir()
    bundles = export_bundles(ledger_path, polished, checkpoint)
    write_files([(proofs / f"{item}.stproof", data) for item, data in bundles.items()])
    return DemoSummary(directory=out, ledger_path=ledger_path, trust_path=out / "trust.keys",
                       checkpoint_path=out / "checkpoint.txt", polished_example=polished[0],
                       laundered=tuple(laundered), report=report, proofs_dir=proofs, proof_count=len(bundles),
                       proof_example=proofs / f"{polished[0]}.stproof",
                       proof_report=check_bundle(bundles[polished[0]], trust))
