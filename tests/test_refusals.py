"""Bad data is refused at the door (issue 9, item 7): each refusal with its named code, beside the accepted neighbour.

Times that cannot be right (before 2000: ``record.time_range``; more than a day after the writer's clock:
``record.time_future``, a writer's rule only; earlier than an input's, or a statement's subject's, last record:
``chain.time_backwards``; earlier than the grant of the signer's key: ``sig.before_enrolment``), grades off the
laboratory scales (``record.grading_scale``), and the README's library snippet on a damaged ledger. The
writer, a full audit and a proof bundle give one code for the rule-level refusals: tests/test_verdicts_agree.py
runs them as vectors (tests/vectors/negative*.json). Wrong argument types: tests/test_argument_types.py.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ledger import (
    AUTHORITY,
    Body,
    Corrected,
    Enrolled,
    Exported,
    Graded,
    Ledger,
    Mined,
    Output,
    Record,
    Transferred,
    build_demo,
)
from ledger._grades import CLARITY_GRADES
from ledger._ledger import MAX_AHEAD_MS
from ledger._schema import MIN_TIME_MS
from ledger.errors import InputError, RecordFormatError, RuleError
from stonetrail_cli.main import main
from world import ORIGIN, PARTIES, World, codes, key, key_record

T = 1_740_787_200_000  # 2025-03-01T00:00:00Z, ms since the Unix epoch (UTC)
HOUR, DAY = 3_600_000, 86_400_000
NOW = T + 30 * DAY  # the writer's clock in these tests
AUTH = key(AUTHORITY)
SIGNERS = {party: key(party) for party in ("producer-a", "trader-b", "trader-e", "outsider")}
README = Path(__file__).resolve().parent.parent / "README.md"


def _ledger(path: Path, now: int = NOW) -> Ledger:
    """A ledger whose clock reads ``now``: the parties of tests/world.py enrolled, stone S1 mined (at T + 1 h)."""
    ledger = Ledger.create(path, ORIGIN, [AUTH.public_key.raw], now_ms=lambda: now)
    for i, (party, roles) in enumerate(PARTIES.items()):
        event = Enrolled(party=party, name=f"{party} (test)", roles=tuple(sorted(roles)), country="BW",
                         external_ids=(), key=key(party).public_key.raw, registry_prev=ledger.registry_head)
        ledger.record_event(event, actor=AUTHORITY, place="BW", time_ms=T + i, signers={AUTHORITY: AUTH})
    ledger.record_event(Mined(mine="Jwaneng", country="BW"), actor="producer-a", place="BW", time_ms=T + HOUR,
                        signers={"producer-a": key("producer-a")},
                        outputs=[Output(id="S1", type="stone", mass_mct=2_000)])
    return ledger


def _sale(ledger: Ledger, time_ms: int, seller: str = "producer-a", buyer: str = "trader-b") -> Record:
    """A signed sale of S1 from ``seller`` to ``buyer``, linked to S1's latest record in ``ledger`` (not appended)."""
    body = Body(origin=ORIGIN, kind="transferred", time_ms=time_ms, place="BW", actor=seller,
                event=Transferred(to=buyer, mode="title"), inputs=ledger.inputs("S1"))
    return Record.create(body, [(seller, SIGNERS[seller]), (buyer, SIGNERS[buyer])])


# --- times before 2000 (a record-shape rule everywhere) ---------------------------------------------------------

def _mined_body(time_ms: int) -> Body:
    return Body(origin=ORIGIN, kind="mined", time_ms=time_ms, place="BW", actor="producer-a",
                event=Mined(mine="Jwaneng", country="BW"), outputs=(Output(id="S9", type="stone", mass_mct=1),))


def test_a_time_before_2000_is_refused_and_2000_itself_is_accepted() -> None:
    with pytest.raises(RecordFormatError) as refused:
        _mined_body(MIN_TIME_MS - 1)
    assert refused.value.code == "record.time_range" and "time_ms" in str(refused.value)
    assert _mined_body(MIN_TIME_MS).time_ms == 946_684_800_000  # 2000-01-01T00:00:00Z


@pytest.mark.parametrize("field", ["issued_ms", "expires_ms"])
def test_a_certificate_time_before_2000_is_refused(field: str) -> None:
    def export(**times: int) -> Exported:
        fields: dict[str, Any] = {"kp_certificate": "BW-1", "to_country": "BE", "consignee": "trader-e",
                                  "certificate_mct": 1, "issued_ms": T, "expires_ms": T, "declared": (("S1", 1),),
                                  "kp_authority": None}
        return Exported(**{**fields, **times})
    with pytest.raises(RecordFormatError) as refused:
        export(**{field: MIN_TIME_MS - 1})
    assert refused.value.code == "record.time_range" and field in str(refused.value)
    assert getattr(export(**{field: MIN_TIME_MS}), field) == MIN_TIME_MS


def test_the_writer_refuses_a_time_in_seconds(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path / "a.ledger")
    size = ledger.size
    with pytest.raises(RecordFormatError) as refused:
        ledger.record_event(Transferred(to="trader-b", mode="title"), actor="producer-a", place="BW",
                            time_ms=NOW // 1000, signers=SIGNERS, inputs=["S1"])
    assert refused.value.code == "record.time_range" and ledger.size == size
    ledger.record_event(Transferred(to="trader-b", mode="title"), actor="producer-a", place="BW", time_ms=NOW,
                        signers={p: SIGNERS[p] for p in ("producer-a", "trader-b")}, inputs=["S1"])
    assert ledger.size == size + 1


# --- more than a day after the writer's clock (the writer only) -------------------------------------------------

def test_the_writer_refuses_a_record_dated_more_than_a_day_after_its_clock(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path / "a.ledger")
    size = ledger.size
    with pytest.raises(InputError) as refused:
        ledger.append(_sale(ledger, NOW + MAX_AHEAD_MS + 1))
    assert refused.value.code == "record.time_future" and ledger.size == size
    assert ledger.append(_sale(ledger, NOW + MAX_AHEAD_MS)) == size  # exactly a day ahead: accepted


def test_a_batch_with_one_record_from_the_future_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "a.ledger"
    ledger = _ledger(path)
    size, length = ledger.size, path.stat().st_size
    first = _sale(ledger, NOW)
    ledger.state.apply(first)  # only to link the second sale to the first; the ledger is reopened below
    second = _sale(ledger, NOW + 2 * DAY, seller="trader-b", buyer="trader-e")
    ledger.close()
    with Ledger.open(path, [AUTH.public_key.raw], now_ms=lambda: NOW) as again:
        with pytest.raises(InputError) as refused:
            again.append_batch([first, second])
        assert refused.value.code == "record.time_future"
        assert again.size == size and path.stat().st_size == length
        assert again.append_batch([first]) == size


def test_a_reader_never_judges_a_ledger_by_its_own_clock(tmp_path: Path) -> None:
    """Written by a writer whose clock reads 2026; opened by one whose clock reads 2025: its records are a year
    "in the future" to that reader, and it still opens (an audit is reproducible on any day) and appends what is
    not in its own future."""
    path = tmp_path / "a.ledger"
    with _ledger(path, now=T + 400 * DAY) as ledger:
        ledger.append(_sale(ledger, T + 380 * DAY))
        size = ledger.size
    with Ledger.open(path, [AUTH.public_key.raw], now_ms=lambda: T) as reader:
        assert reader.size == size and reader.item("S1").holder == "trader-b"
        reader.record_event(Mined(mine="Orapa", country="BW"), actor="producer-a", place="BW", time_ms=T + DAY,
                            signers={"producer-a": key("producer-a")},
                            outputs=[Output(id="S2", type="stone", mass_mct=1_000)])


def test_the_default_clock_is_the_system_clock(tmp_path: Path) -> None:
    with Ledger.create(tmp_path / "a.ledger", ORIGIN, [AUTH.public_key.raw]) as ledger:
        event = Enrolled(party="trader-b", name="B", roles=("trader",), country="BW", external_ids=(),
                         key=key("trader-b").public_key.raw, registry_prev=None)
        with pytest.raises(InputError) as refused:  # 9999-12-31: the system clock is not that late
            ledger.record_event(event, actor=AUTHORITY, place="BW", time_ms=253_402_300_799_999,
                                signers={AUTHORITY: AUTH})
        assert refused.value.code == "record.time_future"


# --- earlier than an input's last record, or than a statement's subject -----------------------------------------

def test_time_backwards_is_checked_for_every_input_not_only_the_first() -> None:
    w = World()
    w.enrol_all()
    assert w.add(w.mine("S1")) == [] and w.add(w.mine("S2")) == []
    latest = w.state.items["S2"].head_time_ms  # S2 was mined after S1

    def sale(time_ms: int) -> Record:
        return w.make(Transferred(to="trader-b", mode="title"), "producer-a", inputs=["S1", "S2"], time_ms=time_ms)

    assert [(f.code, f.item) for f in w.state.check(sale(latest - 1))] == [("chain.time_backwards", "S2")]
    assert w.state.check(sale(latest)) == []  # equal times are allowed


def test_a_statement_dated_before_the_record_it_is_about() -> None:
    w = World()
    w.enrol_all()
    mined = w.mine()
    assert w.add(mined) == []

    def correction(time_ms: int) -> Record:
        return w.make(Corrected(subject=mined.record_hash, statement="The mine is Orapa"), "producer-a",
                      time_ms=time_ms)

    assert codes(w.state.check(correction(mined.body.time_ms - 1))) == ["chain.time_backwards"]
    assert w.state.check(correction(mined.body.time_ms)) == []


# --- earlier than the grant of the signer's key (a new custody rule) ---------------------------------------------

def test_a_record_dated_before_its_signers_enrolment_is_refused() -> None:
    w = World()
    w.enrol_all()
    enrolment = w.enrol("outsider", ["producer"])
    assert w.add(enrolment) == []
    enrolled = enrolment.body.time_ms

    def mined(time_ms: int) -> Record:
        return w.make(Mined(mine="Orapa", country="BW"), "outsider", place="BW", time_ms=time_ms,
                      outputs=[Output(id="S9", type="stone", mass_mct=1_000)])

    found = w.state.check(mined(enrolled - 1))
    assert [(f.code, f.item) for f in found] == [("sig.before_enrolment", "outsider")]
    assert w.state.check(mined(enrolled)) == []  # dated at the enrolment itself: accepted


def test_a_record_signed_with_a_rotated_in_key_before_it_was_granted() -> None:
    w = World()
    w.enrol_all()
    assert w.add(w.mine()) == []
    new = key("producer-a/2")
    added = key_record(w, "key_added", "producer-a", new.public_key.raw)
    assert w.add(added) == []
    backdated = added.body.time_ms - 1  # after S1's record, before the new key's grant
    sale = Transferred(to="trader-b", mode="title")
    refused = w.make(sale, "producer-a", inputs=["S1"], time_ms=backdated, keys={"producer-a": new})
    assert [(f.code, f.item) for f in w.state.check(refused)] == [("sig.before_enrolment", "producer-a")]
    assert w.state.check(w.make(sale, "producer-a", inputs=["S1"], time_ms=backdated)) == []  # the old key


def test_the_writer_refuses_a_backdated_record(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path / "a.ledger")
    enrolled = NOW - DAY
    event = Enrolled(party="outsider", name="Outsider (test)", roles=("trader",), country="BW", external_ids=(),
                     key=key("outsider").public_key.raw, registry_prev=ledger.registry_head)
    ledger.record_event(event, actor=AUTHORITY, place="BW", time_ms=enrolled, signers={AUTHORITY: AUTH})
    size = ledger.size
    with pytest.raises(RuleError) as refused:  # a sale to the newcomer, dated a minute before its enrolment
        ledger.append(_sale(ledger, enrolled - 60_000, buyer="outsider"))
    assert refused.value.code == "sig.before_enrolment" and ledger.size == size
    assert ledger.append(_sale(ledger, enrolled, buyer="outsider")) == size


# --- grades on the laboratory scales ----------------------------------------------------------------------------

def _graded(colour: str = "G", clarity: str = "VS1") -> Graded:
    return Graded(lab="lab-d", report="R-1", mass_mct=1_000, colour=colour, clarity=clarity, nature="natural")


@pytest.mark.parametrize("colour", ["D", "G", "K", "Z", "Fancy Intense Yellow", "Fancy Vivid Purplish Pink",
                                    "Fancy Light Brownish Yellow", "Very Light Pink", "Faint Blue", "Fancy Dark Gray",
                                    "Fancy Deep Orangy Red", "Light Yellow", "Fancy Intense Yellowish Orange"])
def test_a_colour_on_the_scale_is_accepted(colour: str) -> None:
    assert _graded(colour=colour).colour == colour


@pytest.mark.parametrize("colour", ["C", "A", "g", "K+", "DE", "Fancy", "Yellow", "Fancy yellow", "fancy Yellow",
                                    "Fancy Bright Yellow", "Fancy Yellowish Yellow", "Fancy  Yellow", "Intense Yellow",
                                    "Fancy Intense Yellow Pink", "Fancy Reddish Pink", " G"])
def test_a_colour_off_the_scale_is_refused(colour: str) -> None:
    with pytest.raises(RecordFormatError) as refused:
        _graded(colour=colour)
    assert refused.value.code == "record.grading_scale" and "graded.colour" in str(refused.value)


@pytest.mark.parametrize("clarity", CLARITY_GRADES)
def test_a_clarity_on_the_scale_is_accepted(clarity: str) -> None:
    assert _graded(clarity=clarity).clarity == clarity


@pytest.mark.parametrize("clarity", ["VS3", "vs1", "SI3", "I4", "VVS", "Flawless", "IF ", "P1"])
def test_a_clarity_off_the_scale_is_refused(clarity: str) -> None:
    with pytest.raises(RecordFormatError) as refused:
        _graded(clarity=clarity)
    assert refused.value.code == "record.grading_scale" and "graded.clarity" in str(refused.value)


def test_text_rules_come_before_the_scale() -> None:
    """A hidden character or an over-long grade keeps its own code (the parse vectors rely on it)."""
    for colour, code in (("G\u200b", "record.text"), ("F" * 33, "record.malformed"), ("E\u0301", "record.text")):
        with pytest.raises(RecordFormatError) as refused:
            _graded(colour=colour)
        assert refused.value.code == code, colour


# --- the README's library snippet on a damaged ledger -------------------------------------------------------------

def _readme_snippet() -> str:
    section = README.read_text(encoding="utf-8").split("## Using the library", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


def _run_snippet(directory: Path) -> str:
    out = io.StringIO()
    cwd = Path.cwd()
    os.chdir(directory)
    try:
        with contextlib.redirect_stdout(out):
            exec(compile(_readme_snippet(), "README.md", "exec"), {})  # the README's own code
    finally:
        os.chdir(cwd)
    return out.getvalue()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "out"
    build_demo(out)
    return out


def _copy_demo(demo: Path, tmp_path: Path) -> Path:
    """``tmp_path/out`` with the demo's ledger and trust file (what the README's snippet reads)."""
    out = tmp_path / "out"
    out.mkdir()
    for name in ("demo.ledger", "trust.keys"):
        shutil.copy(demo / name, out / name)
    return out


@pytest.mark.parametrize("cut", [0, 7], ids=["intact", "cut mid-frame"])
def test_the_readme_snippet_runs_on_a_damaged_ledger(demo: Path, tmp_path: Path, cut: int) -> None:
    ledger = _copy_demo(demo, tmp_path) / "demo.ledger"
    data = ledger.read_bytes()
    ledger.write_bytes(data[:len(data) - cut])
    printed = _run_snippet(tmp_path)
    assert "None" not in printed
    assert ("store.torn_tail" in printed) == bool(cut)
    assert ("root hash" in printed) == (not cut)


@pytest.mark.parametrize("damage", ["cut mid-frame", "a byte flipped mid-file"])
def test_the_cli_never_prints_none_for_a_damaged_ledger(demo: Path, tmp_path: Path, damage: str) -> None:
    """``verify`` and ``show`` of items before, at and past the damage print a value (or say it is unknown or
    unreadable) wherever one is expected: never ``None``, never a traceback."""
    out = _copy_demo(demo, tmp_path)
    ledger = out / "demo.ledger"
    data = bytearray(ledger.read_bytes())
    if damage == "cut mid-frame":
        del data[-7:]
    else:
        data[len(data) // 2] ^= 0xFF
    ledger.write_bytes(bytes(data))
    trust = str(out / "trust.keys")
    runs = [["verify", str(ledger), "--trust", trust]]
    runs += [["show", str(ledger), item, "--trust", trust] for item in ("R-00001-A", "P-LESEDI-01")]
    runs += [["show", str(ledger), "PARCEL-DXB-01-S1"]]
    for args in runs:
        result = CliRunner().invoke(main, args)
        assert result.exception is None or isinstance(result.exception, SystemExit), (args, result.exception)
        assert "None" not in result.output, (args, result.output)

