"""Bundles for the report and annex tests: the demo's stories, and a hostile ledger whose free-text fields hold
HTML payloads (a party's name, a mine, a setting's description, an auditor's statement).

Free text (ledger/_text.py) is any printable Unicode in NFC, so markup passes the door; control and
bidirectional characters do not (docs/format.md §4.2)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ledger import AUTHORITY, Ledger, Output, PrivateKey, Trust
from ledger._scenarios import Builder
from ledger.events import Attested, Corrected, Merged, Mined, Retired, Set, Split
from ledger.export import export_bundle
from ledger.keys import note_verifier_key

#: The demo's stories the issue names: the laundered stone (RU + AO), a Karowe stone (the 67-stone cut of the
#: 1,109 ct rough, also the demo's largest stone), the Diavik stone cut in Ramat Gan, one set in a ring.
LAUNDERED, KAROWE, DIAVIK, RINGED = "PARCEL-DXB-01-S1", "P-LESEDI-01", "R-DIAVIK-0001-A", "R-00001-A"
#: The ring both stones of R-00001 are set in, the CVD stone (laboratory-grown), the stone of unknown origin.
RING, CVD, ESTATE = "RING-0001", "CVD-0001", "ESTATE-0001"

#: Each sets window.__xss (and the title) if it ever runs.
SCRIPT = "<script>window.__xss = 1; document.title = 'XSS'</script>"
IMG = '<img src=x onerror="window.__xss = 2">'
SVG = '"><svg onload="window.__xss = 3"></svg>'
PAYLOADS = (SCRIPT, IMG, SVG)
HOSTILE_ITEM = "XSS-STONE-1"
_ORIGIN = "hostile.stonetrail.example/ledger"


def demo_bundle(demo: Path, item: str) -> tuple[bytes, Trust]:
    """``item``'s bundle from the demo folder, under its published checkpoint, and the demo's trust."""
    note = (demo / "checkpoint.txt").read_text(encoding="utf-8")
    trust = Trust.parse((demo / "trust.keys").read_text(encoding="utf-8"))
    return export_bundle(demo / "demo.ledger", item, note), trust


def _key(name: str) -> PrivateKey:
    return PrivateKey.from_seed(hashlib.sha256(f"stonetrail hostile {name}".encode()).digest())


def _pinned(*parties: str) -> tuple[dict[str, PrivateKey], Trust]:
    """Fixed keys for the authority, the operator and ``parties``, and the trust file pinning the first two."""
    keys = {n: _key(n) for n in (AUTHORITY, "operator", *parties)}
    trust = Trust(operators=(note_verifier_key(_ORIGIN, keys["operator"].public_key),),
                  authorities=(note_verifier_key("hostile.stonetrail.example/authority",
                                                 keys[AUTHORITY].public_key),))
    return keys, trust


def hostile_bundle(directory: Path) -> tuple[bytes, Trust]:
    """A valid bundle of :data:`HOSTILE_ITEM` whose free-text fields hold :data:`PAYLOADS`."""
    keys, trust = _pinned("producer-x", "jeweller-y", "auditor-z")
    path = directory / "hostile.ledger"
    with Ledger.create(path, _ORIGIN, trust.authority_keys) as ledger:
        b = Builder(ledger, 7, keys)
        b.enrol("producer-x", f"Mines {SCRIPT}", ("producer",), "BW")
        b.enrol("jeweller-y", f"Jewels {IMG}", ("jeweller",), "BW")
        b.enrol("auditor-z", f"Audit {SVG}", ("auditor",), "BW")
        b.append(Mined(mine=f"Pit {IMG} {SVG}", country="BW"), "producer-x", "BW",
                 outputs=(Output(id=HOSTILE_ITEM, type="stone", mass_mct=1_234),))
        mined = ledger.record(ledger.size - 1).record_hash
        b.sell(HOSTILE_ITEM, "producer-x", "jeweller-y", "BW")
        b.append(Set(description=f"ring {SCRIPT}"), "jeweller-y", "BW", inputs=(HOSTILE_ITEM,),
                 outputs=(Output(id="XSS-RING-1", type="article", mass_mct=1_234),))
        b.append(Attested(subject=mined, statement=f"seen {SCRIPT} {IMG}"), "auditor-z", "BW")
        note = ledger.checkpoint(keys["operator"])
    return export_bundle(path, HOSTILE_ITEM, note), trust


def rejoined_bundle(directory: Path) -> tuple[bytes, Trust]:
    """A valid bundle of stone S1 whose line splits a lot in three, merges two of the parts back and splits the
    result: the part L0-2 has no record of its own on S1's path (an adversarial review's shape)."""
    keys, trust = _pinned("producer-x")
    path = directory / "rejoined.ledger"
    with Ledger.create(path, _ORIGIN, trust.authority_keys) as ledger:
        b = Builder(ledger, 7, keys)
        b.enrol("producer-x", "Mines", ("producer", "manufacturer"), "BW")
        b.append(Mined(mine="Pit", country="BW"), "producer-x", "BW",
                 outputs=(Output(id="L0", type="lot", mass_mct=9000),))
        b.append(Split(loss_mct=0), "producer-x", "BW", inputs=("L0",), consumes=("L0",),
                 outputs=tuple(Output(id=f"L0-{i}", type="lot", mass_mct=3000) for i in (1, 2, 3)))
        b.append(Merged(loss_mct=0), "producer-x", "BW", inputs=("L0-1", "L0-2"), consumes=("L0-1", "L0-2"),
                 outputs=(Output(id="M", type="lot", mass_mct=6000),))
        b.append(Split(loss_mct=1000), "producer-x", "BW", inputs=("M",), consumes=("M",),
                 outputs=(Output(id="S1", type="stone", mass_mct=2500), Output(id="S2", type="stone", mass_mct=2500)))
        note = ledger.checkpoint(keys["operator"])
    return export_bundle(path, "S1", note), trust


def stolen_bundle(directory: Path) -> tuple[bytes, Trust]:
    """A valid bundle of stone STOLEN-1: mined in BW, its origin corrected by its producer ("mined in RU"), then
    reported stolen (an adversarial review: the annex said nothing of either)."""
    keys, trust = _pinned("producer-x")
    path = directory / "stolen.ledger"
    with Ledger.create(path, _ORIGIN, trust.authority_keys) as ledger:
        b = Builder(ledger, 7, keys)
        b.enrol("producer-x", "Mines", ("producer",), "BW")
        b.append(Mined(mine="Pit", country="BW"), "producer-x", "BW",
                 outputs=(Output(id="STOLEN-1", type="stone", mass_mct=1500),))
        mined = ledger.record(ledger.size - 1).record_hash
        b.append(Corrected(subject=mined, statement="mined in RU, not BW"), "producer-x", "BW")
        b.append(Retired(reason="stolen"), "producer-x", "BW", inputs=("STOLEN-1",))
        note = ledger.checkpoint(keys["operator"])
    return export_bundle(path, "STOLEN-1", note), trust
