"""The text rules of a record's fields (docs/format.md §4.2): identifiers and free text, refused with their own
codes when a record is built and when it is read, in a ledger and in a bundle; and ``fold``, the one key under
which identifiers collide (item ids, report numbers, inscriptions)."""

from __future__ import annotations

import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import AUTHORITY, Graded, Inscribed, Mined, Output, Record, Transferred, Trust
from ledger._codec import decode, encode
from ledger._schema import read_text
from ledger._text import FREE_TEXT_RANGES, UNICODE_VERSION, fold
from ledger.audit import check_ledger
from ledger.bundle import BundleEntry, build_bundle, check_bundle, read_bundle
from ledger.errors import RecordFormatError
from ledger.export import export_bundle
from ledger.hashing import TAG_RECORD_BODY, TAG_RECORD_SIG, Digest, tagged_hash
from ledger.keys import note_verifier_key
from ledger.merkle import MerkleTree, leaf_hash
from ledger.reader import checkpoint_file
from ledger.record import RECORD_TAG
from ledger.storage import FileStore
from world import ORIGIN, World, codes, envelope, key

#: Default_Ignorable_Code_Point in Unicode 14.0.0 (DerivedCoreProperties.txt), inclusive ranges.
DEFAULT_IGNORABLE = ((0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
                     (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
                     (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
                     (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF))


def _free_text_char(point: int) -> bool:
    """The rule of docs/format.md §4.2, read from the local Unicode database."""
    category = unicodedata.category(chr(point))
    return (category[0] != "C" and category not in ("Zl", "Zp")
            and not any(first <= point <= last for first, last in DEFAULT_IGNORABLE))


def _ranges(points: Any) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for p in points:
        if out and out[-1][1] == p - 1:
            out[-1] = (out[-1][0], p)
        else:
            out.append((p, p))
    return out


# --- the table ----------------------------------------------------------------------------------------------------

@pytest.mark.skipif(unicodedata.unidata_version != UNICODE_VERSION, reason=f"needs Unicode {UNICODE_VERSION}")
def test_the_free_text_table_is_the_rule_under_unicode_14() -> None:
    assert list(FREE_TEXT_RANGES) == _ranges(p for p in range(0x110000) if _free_text_char(p))


def test_every_character_of_the_table_is_assigned_here_too() -> None:
    # A later Unicode database never unassigns a code point: the table means the same on any Python.
    for first, last in FREE_TEXT_RANGES:
        assert all(unicodedata.category(chr(p)) != "Cn" for p in range(first, last + 1))


# --- free text: refused when built and when read ------------------------------------------------------------------

REFUSED_TEXT = {
    "NUL (C0)": "Jwa\x00neng", "newline (C0: a field is one line)": "Jwa\nneng", "tab (C0)": "Jwa\tneng",
    "DEL": "Jwa\x7fneng", "NEL (C1)": "Jwa\x85neng", "CSI (C1)": "Jwa\x9bneng",
    "LRE U+202A": "Jwa\u202aneng", "RLO U+202E": "Jwa\u202eneng", "LRI U+2066": "Jwa\u2066neng",
    "PDI U+2069": "Jwa\u2069neng", "LRM U+200E": "Jwa\u200eneng", "RLM U+200F": "Jwa\u200fneng",
    "ALM U+061C": "Jwa\u061cneng", "zero width space": "Jwa\u200bneng", "ZWNJ": "Jwa\u200cneng",
    "ZWJ": "Jwa\u200dneng", "word joiner": "Jwa\u2060neng", "invisible plus U+2064": "Jwa\u2064neng",
    "BOM / ZWNBSP": "\ufeffJwaneng", "soft hyphen": "Jwa\u00adneng", "variation selector 16": "Jwaneng\ufe0f",
    "variation selector 17": "Jwaneng\U000e0100", "tag LATIN SMALL A": "Jwaneng\U000e0061",
    "cancel tag": "Jwaneng\U000e007f", "language tag": "Jwaneng\U000e0001", "private use": "Jwa\ue000neng",
    "supplementary private use": "Jwa\U000f0000neng", "unassigned U+0378": "Jwa\u0378neng",
    "noncharacter U+FFFF": "Jwa\uffffneng", "lone surrogate": "Jwa\ud800neng",
    "line separator": "Jwa\u2028neng", "paragraph separator": "Jwa\u2029neng", "Hangul filler": "Jwa\u3164neng",
    "combining grapheme joiner": "Jwa\u034fneng", "Mongolian FVS1": "Jwa\u180bneng",
    "interlinear annotation U+FFF9": "Jwa\ufff9neng",
    "assigned only after Unicode 14 (U+1FAF7, 15.0)": "Jwaneng \U0001faf7",
    "not NFC: e + combining acute": "Le\u0301opold", "not NFC: Angstrom sign": "\u212b mine",
    "not NFC: Hangul jamo": "\u1100\u1161",
}
ACCEPTED_TEXT = ["Jwaneng", "Atelier Léopold Diamantaire SA", "Société Minière de Bakwanga", "Катока", "ジュエリー",
                 "الماس", "Zürich\u00a0Mine", "💎 parcel", "\uff21 fullwidth is NFC", "Å (NFC)", "가"]


@pytest.mark.parametrize("text", REFUSED_TEXT.values(), ids=REFUSED_TEXT.keys())
def test_text_that_hides_or_reorders_is_refused_when_built(text: str) -> None:
    with pytest.raises(RecordFormatError) as info:  # so Ledger.record_event never gets such an event
        Mined(mine=text, country="BW")
    assert info.value.code == "record.text"
    with pytest.raises(RecordFormatError) as info:
        Transferred(to="trader-b", mode=text)  # an enum is free text first
    assert info.value.code == "record.text"


def _forged(record: Record, change: Any, signer: str) -> bytes:
    """``record`` with its decoded body changed by ``change`` and signed again by ``signer``: what an insider with a
    key can write into a ledger file without the library (the signature verifies)."""
    env = decode(record.raw[len(RECORD_TAG):])
    assert isinstance(env, dict) and isinstance(env["body"], bytes)
    body = decode(env["body"])
    change(body)
    body_bytes = encode(body)
    sig = key(signer).sign(TAG_RECORD_SIG + tagged_hash(TAG_RECORD_BODY, body_bytes))
    return envelope(body_bytes, [{"party": signer, "key": key(signer).public_key.raw, "sig": sig}])


def _mined(w: World, mine: str = "Jwaneng") -> Record:
    return w.make(Mined(mine=mine, country="BW"), "producer-a", place="BW",
                  outputs=[Output(id="S9", type="stone", mass_mct=1_000)])


#: UTF-8 cannot carry a lone surrogate: such bytes are ``codec.malformed`` (tests/test_codec.py).
REFUSED_WHEN_READ = {why: text for why, text in REFUSED_TEXT.items() if why != "lone surrogate"}


@pytest.mark.parametrize("text", REFUSED_WHEN_READ.values(), ids=REFUSED_WHEN_READ.keys())
def test_text_that_hides_or_reorders_is_refused_when_read(text: str) -> None:
    w = World()
    raw = _forged(_mined(w), lambda b: b["fields"].update(mine=text), "producer-a")
    with pytest.raises(RecordFormatError) as info:
        Record.from_bytes(raw)
    assert info.value.code == "record.text"
    assert "Jwa" not in str(info.value)  # the reason names the code point; it never echoes the text


@pytest.mark.parametrize("text", ACCEPTED_TEXT)
def test_printable_nfc_text_is_accepted(text: str) -> None:
    assert unicodedata.is_normalized("NFC", text)
    record = _mined(World(), text)
    assert Record.from_bytes(record.raw).body.event == Mined(mine=text, country="BW")


@settings(max_examples=400, deadline=None)
@given(st.text(min_size=1, max_size=12))
def test_free_text_is_exactly_printable_unicode_14_in_nfc(text: str) -> None:
    try:
        read_text(text, "f")
    except RecordFormatError as exc:
        accepted, code = False, exc.code
    else:
        accepted, code = True, "record.text"
    rule = all(_free_text_char(ord(c)) for c in text) and unicodedata.is_normalized("NFC", text)
    if unicodedata.unidata_version == UNICODE_VERSION:
        assert accepted == rule
    assert code == "record.text"


# --- identifiers ------------------------------------------------------------------------------------------------

REFUSED_IDS = {"space": "S 1", "Cyrillic A (looks Latin)": "\u0410-1", "fullwidth S": "\uff33-1",
               "zero width space": "S\u200b1", "RLO": "S\u202e1", "e + combining acute": "Se\u03011",
               "starts with a dash": "-S1", "65 characters": "S" * 65, "empty": "", "slash": "S/1",
               "NFC e-acute (not ASCII)": "S\u00e91"}


@pytest.mark.parametrize("item", REFUSED_IDS.values(), ids=REFUSED_IDS.keys())
def test_identifiers_are_ascii_only(item: str) -> None:
    with pytest.raises(RecordFormatError) as info:
        Output(id=item, type="stone", mass_mct=1)
    assert info.value.code == "record.identifier"
    with pytest.raises(RecordFormatError) as info:
        Graded(lab="lab-d", report=item, mass_mct=1, colour="G", clarity="VS1", nature="natural")
    assert info.value.code == "record.identifier"
    raw = _forged(_mined(World()), lambda b: b["outputs"][0].update(id=item), "producer-a")
    with pytest.raises(RecordFormatError) as info:
        Record.from_bytes(raw)
    assert info.value.code == "record.identifier"


def test_an_identifier_that_is_not_text_stays_malformed() -> None:
    raw = _forged(_mined(World()), lambda b: b["outputs"][0].update(id=7), "producer-a")
    with pytest.raises(RecordFormatError) as info:
        Record.from_bytes(raw)
    assert info.value.code == "record.malformed"


# --- fold: ids a reader would confuse are one id ----------------------------------------------------------------

def test_fold_reads_case_and_look_alike_digits_as_one() -> None:
    assert len({fold(x) for x in ("R-0001-A", "r-0001-a", "R-OOO1-A", "R-000l-A", "R-000I-a", "R-000i-A")}) == 1
    assert fold("R-0001-A") != fold("R-0001-B") and fold("RPT-12") != fold("RPT-13")
    assert fold("\uff32-1") == fold("r-1")  # NFKC: a fullwidth R, for a caller comparing other text


@pytest.fixture
def w() -> World:
    world = World()
    world.enrol_all()
    assert world.add(world.mine("R-0001-A")) == []
    assert world.add(world.mine("R-0002-A")) == []
    return world


@pytest.mark.parametrize("twin", ["R-OOO1-A", "R-000l-A", "R-000I-A", "r-0001-a"])
def test_an_item_id_read_alike_is_a_duplicate(w: World, twin: str) -> None:
    assert codes(w.add(w.mine(twin))) == ["item.duplicate_id"]


def test_an_item_id_read_differently_is_not(w: World) -> None:
    assert w.add(w.mine("R-0003-A")) == []


def _graded(report: str) -> Graded:
    return Graded(lab="lab-d", report=report, mass_mct=1_000, colour="G", clarity="VS1", nature="natural")


def test_a_report_number_read_alike_is_a_duplicate(w: World) -> None:
    assert w.add(w.make(_graded("RPT-1010"), "producer-a", inputs=["R-0001-A"])) == []
    twin = w.make(_graded("RPT-lOlO"), "producer-a", inputs=["R-0002-A"])
    found = w.add(twin)
    assert codes(found) == ["identity.duplicate_report"]
    # a new user's review: it named the folded key 'rpt-lolo', neither what was typed nor the number held
    assert "report number 'RPT-lOlO' reads as one that stone R-0001-A already holds" in found[0].reason


def test_an_inscription_read_alike_is_a_duplicate(w: World) -> None:
    first = w.make(Inscribed(lab="lab-d", inscription="GIA-2141"), "producer-a", inputs=["R-0001-A"])
    assert w.add(first) == []
    twin = w.make(Inscribed(lab="lab-d", inscription="GIA-2l4I"), "producer-a", inputs=["R-0002-A"])
    assert codes(w.add(twin)) == ["identity.duplicate_inscription"]


# --- a forged record in a ledger and in a bundle ------------------------------------------------------------------

OPERATOR = key("operator")
TRUST = Trust(operators=(note_verifier_key(ORIGIN, OPERATOR.public_key),),
              authorities=(note_verifier_key("authority", key(AUTHORITY).public_key),))


def test_a_forged_text_is_a_finding_in_the_audit_and_in_the_bundle(tmp_path: Path) -> None:
    w = World()
    w.enrol_all()
    good = w.mine("S1")
    assert w.add(good) == []
    forged = _forged(w.make(Transferred(to="trader-b", mode="title"), "producer-a", inputs=["S1"]),
                     lambda b: b["fields"].update(mode="title\u200b"), "producer-a")
    path = tmp_path / "forged.ledger"
    leaves = [r.raw for r in w.records] + [forged]
    with FileStore.create(path, ORIGIN) as store:
        store.append_batch(leaves)
    at = len(leaves) - 1
    assert [(f.code, f.position) for f in check_ledger(path, TRUST).findings] == [("record.text", at)]

    note = checkpoint_file(path, OPERATOR, ORIGIN)
    honest = export_bundle(path, "S1", note)
    # an unreadable record belongs to no item: the export leaves it out
    assert "record.text" not in {f.code for f in check_bundle(honest, TRUST).findings}
    tree = MerkleTree(leaf_hash(leaf) for leaf in leaves)
    parsed = read_bundle(honest)
    entries = [*parsed.entries, BundleEntry(index=at, leaf=forged, proof=tuple(tree.inclusion_proof(at)))]
    smuggled = build_bundle("S1", note, [(e.index, e.leaf, [Digest(h) for h in e.proof]) for e in entries],
                            [(h.item, h.index, [Digest(p) for p in h.proof]) for h in parsed.heads])
    assert ("record.text", at) in {(f.code, f.position) for f in check_bundle(smuggled, TRUST).findings}
