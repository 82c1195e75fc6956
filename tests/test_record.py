"""Record format: strict parsing of the envelope and body, and round trips of random valid records."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import Body, Digest, Graded, Mined, Output, Record, Split, Transferred
from ledger._codec import decode, encode
from ledger._grades import CLARITY_GRADES
from ledger._schema import MAX_TIME_MS, MIN_TIME_MS
from ledger.errors import InputError, RecordFormatError
from ledger.record import RECORD_TAG
from world import ORIGIN, envelope, key

SIGNER = key("producer-a")


def _record() -> Record:
    body = Body(origin=ORIGIN, kind="mined", time_ms=1_700_000_000_000, place="BW", actor="producer-a",
                event=Mined(mine="Jwaneng", country="BW"), outputs=(Output(id="S1", type="stone", mass_mct=2000),))
    return Record.create(body, [("producer-a", SIGNER)])


def _parts(record: Record) -> tuple[dict[str, Any], list[Any]]:
    env = decode(record.raw[len(RECORD_TAG):])
    assert isinstance(env, dict)
    body = decode(env["body"])  # type: ignore[arg-type]
    assert isinstance(body, dict)
    return body, env["sigs"]  # type: ignore[return-value]


def _rebuild(body: dict[str, Any], sigs: list[Any]) -> bytes:
    return envelope(encode(body), sigs)


def test_round_trip_keeps_bytes_and_hashes() -> None:
    r = _record()
    again = Record.from_bytes(r.raw)
    assert (again.raw, again.record_hash, again.body_hash) == (r.raw, r.record_hash, r.body_hash)
    assert again.body == r.body


BODY_MUTATIONS = [
    ("version 2", lambda b: b.update(v=2), "record.version"),
    ("version true", lambda b: b.update(v=True), "record.version"),
    ("v2 with new keys", lambda b: b.update(v=2, new_field=1), "record.version"),
    ("extra key", lambda b: b.update(extra=1), "record.malformed"),
    ("missing key", lambda b: b.pop("place"), "record.malformed"),
    ("bool time", lambda b: b.update(time_ms=True), "record.malformed"),
    ("negative time", lambda b: b.update(time_ms=-1), "record.malformed"),
    ("time in seconds, not ms (2023 read as 1970)", lambda b: b.update(time_ms=1_700_000_000), "record.time_range"),
    ("time 1 ms before 2000-01-01", lambda b: b.update(time_ms=MIN_TIME_MS - 1), "record.time_range"),
    ("lower-case country", lambda b: b.update(place="bw"), "record.malformed"),
    ("unknown kind", lambda b: b.update(kind="teleported"), "record.malformed"),
    ("zero mass", lambda b: b["outputs"][0].update(mass_mct=0), "record.malformed"),
    ("bad item type", lambda b: b["outputs"][0].update(type="gem"), "record.malformed"),
    ("id with space", lambda b: b["outputs"][0].update(id="S 1"), "record.identifier"),
    ("control char", lambda b: b["fields"].update(mine="Jwa\nneng"), "record.text"),
    ("text mass", lambda b: b["outputs"][0].update(mass_mct="2000"), "record.malformed"),
    ("extra field", lambda b: b["fields"].update(nature="natural"), "record.malformed"),
    ("consumes a non-input", lambda b: b.update(consumes=["S9"]), "record.malformed"),
    ("unsorted outputs", lambda b: b.update(outputs=[{"id": "Z", "type": "stone", "mass_mct": 1},
                                                     {"id": "A", "type": "stone", "mass_mct": 1}]), "record.malformed"),
    ("short prev hash", lambda b: b.update(inputs=[["S0", b"\x00" * 31]]), "record.malformed"),
]


@pytest.mark.parametrize(("desc", "mutate", "code"), BODY_MUTATIONS, ids=[m[0] for m in BODY_MUTATIONS])
def test_body_schema_violations(desc: str, mutate: Any, code: str) -> None:
    body, sigs = _parts(_record())
    mutate(body)
    with pytest.raises(RecordFormatError) as info:
        Record.from_bytes(_rebuild(body, sigs))
    assert info.value.code == code, desc


def test_envelope_violations() -> None:
    r = _record()
    body, sigs = _parts(r)
    cases = {
        "record.tag": r.raw[1:],
        "record.unsigned": _rebuild(body, []),
        "codec.non_canonical": RECORD_TAG + r.raw[len(RECORD_TAG):].replace(b"\xa4body", b"\xd9\x04body"),
        "codec.trailing_bytes": r.raw + b"\x00",
    }
    dup = dict(sigs[0])
    cases["record.malformed"] = _rebuild(body, [sigs[0], dup])  # one party twice
    for code, raw in cases.items():
        with pytest.raises(RecordFormatError) as info:
            Record.from_bytes(raw)
        assert info.value.code == code


ids = st.from_regex(r"[A-Z][A-Z0-9-]{0,10}", fullmatch=True)
events = st.one_of(
    st.builds(Mined, mine=st.sampled_from(["Jwaneng", "Diavik", "Catoca"]), country=st.sampled_from(["BW", "CA"])),
    st.builds(Transferred, to=ids, mode=st.sampled_from(["title", "memo"])),
    st.builds(Split, loss_mct=st.integers(0, 10**9)),
    st.builds(Graded, lab=ids, report=ids, mass_mct=st.integers(1, 10**9), colour=st.sampled_from(
        ["D", "G", "Z", "Fancy Intense Yellow", "Fancy Light Brownish Yellow", "Faint Pink"]),
              clarity=st.sampled_from(CLARITY_GRADES), nature=st.sampled_from(["natural", "lab_grown"])),
)


@settings(max_examples=60, deadline=None)
@given(event=events, time_ms=st.integers(MIN_TIME_MS, MAX_TIME_MS), inputs=st.sets(ids, max_size=3),
       outputs=st.dictionaries(ids, st.integers(1, 10**9), max_size=3), actor=ids)
def test_random_records_round_trip(event: Any, time_ms: int, inputs: set[str], outputs: dict[str, int],
                                   actor: str) -> None:
    body = Body(origin=ORIGIN, kind=event.KIND, time_ms=time_ms, place="BE", actor=actor, event=event,
                inputs=tuple((i, Digest(bytes(32))) for i in sorted(inputs)),
                outputs=tuple(Output(id=i, type="stone", mass_mct=m) for i, m in sorted(outputs.items())))
    r = Record.create(body, [(actor, SIGNER)])
    again = Record.from_bytes(r.raw)
    assert again.body == body and again.raw == r.raw
    again.verify_signature(again.signatures[0])


def test_lone_surrogates_are_refused_before_encoding() -> None:
    with pytest.raises(RecordFormatError):
        Mined(mine="Jwa\udc80neng", country="BW")
    with pytest.raises(InputError) as info:
        encode({"mine": "Jwa\udc80neng"})
    assert info.value.code == "codec.unencodable"


@pytest.mark.parametrize("text", ["Jwa\u202eneng", "Jwa\u009bneng", "Jwa\u2066neng", "Jwa\x7fneng"])
def test_display_tricks_in_text_are_refused(text: str) -> None:
    with pytest.raises(RecordFormatError):
        Mined(mine=text, country="BW")


def test_times_after_year_9999_are_refused() -> None:
    body, sigs = _parts(_record())
    body["time_ms"] = MAX_TIME_MS + 1
    with pytest.raises(RecordFormatError):
        Record.from_bytes(_rebuild(body, sigs))
