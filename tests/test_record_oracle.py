"""Strict record reading against the reference it replaced: the same records, errors, codes and messages.

Two references, kept verbatim from before the readers got fast paths and ``Record.from_bytes`` stopped building
its parts through ``__init__`` (which re-ran every check the readers had just made):

* ``_ref_read_text`` & co. are the ``ledger._schema`` readers without their fast paths (the text rules as
  issue 8 left them: identifiers and free text, ``ledger._text``), compared with the readers on any value;
* ``_reference_from_bytes`` is the old ``Record.from_bytes`` / ``Body.from_value`` / ``Event.from_fields`` /
  ``_read_output`` / ``_read_signature``, which construct through the public (validating) constructors. It is
  compared with ``Record.from_bytes`` on the vector records with random damage to their decoded fields.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import types
from collections.abc import Mapping, Set
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import Body, Output, Record, Signature
from ledger import _schema as s
from ledger._codec import Value, decode, encode
from ledger._text import ID_RE, text_fault
from ledger.errors import DecodeError, RecordFormatError, expect
from ledger.events import EVENT_TYPES, Event
from ledger.hashing import Digest
from ledger.record import FORMAT_VERSION, ITEM_TYPES, MAX_RECORD_SIZE, RECORD_TAG, signed_parts

# --- reference readers (ledger._schema without the fast paths) -----------------------------------------------------


def _ref_exact_keys(value: Mapping[str, Value], field: str, required: Set[str],
                    optional: Set[str] = frozenset()) -> None:
    keys = set(value)
    missing = required - keys
    extra = keys - required - optional
    if missing:
        raise s.fail(field, f"missing {sorted(missing)}")
    if extra:
        raise s.fail(field, f"unknown keys {sorted(extra)}")


def _ref_read_str(value: Value, field: str, max_len: int) -> str:
    if not isinstance(value, str):
        raise s.fail(field, f"expected text, got {s._kind(value)}")
    if not value or len(value) > max_len:
        raise s.fail(field, f"text must be 1..{max_len} characters")
    return value


def _ref_read_text(value: Value, field: str, max_len: int = 256) -> str:
    text = _ref_read_str(value, field, max_len)
    if (fault := text_fault(text)) is not None:  # the rule itself: tests/test_text.py
        raise RecordFormatError(f"{field}: {fault}", code="record.text")
    return text


def _ref_read_id(value: Value, field: str) -> str:
    if not isinstance(value, str):
        raise s.fail(field, f"expected text, got {s._kind(value)}")
    if not ID_RE.fullmatch(value):
        raise RecordFormatError(f"{field}: {ascii(value)[:80]} is not an identifier ({ID_RE.pattern})",
                                code="record.identifier")
    return value


def _ref_read_country(value: Value, field: str) -> str:
    if not isinstance(value, str):
        raise s.fail(field, f"expected text, got {s._kind(value)}")
    if not s.COUNTRY_RE.fullmatch(value):
        raise s.fail(field, f"{ascii(value)[:40]} does not match {s.COUNTRY_RE.pattern}")
    return value


def _ref_read_int(value: Value, field: str, minimum: int = 0, maximum: int = 2**63 - 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise s.fail(field, f"expected an integer, got {s._kind(value)}")
    if not minimum <= value <= maximum:
        raise s.fail(field, f"{value} outside {minimum}..{maximum}")
    return value


def _ref_read_time(value: Value, field: str) -> int:
    """The int reader of the reference, then the rule issue 9 added (no time before 2000: ``s.read_time``)."""
    return s.read_time(_ref_read_int(value, field, 0, s.MAX_TIME_MS), field)


def _outcome(call: Any, *args: Any) -> tuple[object, ...]:
    try:
        result = call(*args)
    except Exception as exc:  # the type matters too: RecordFormatError, InputError, TypeError, ...
        return "error", type(exc).__name__, getattr(exc, "code", None), str(exc)
    return "ok", type(result).__name__, repr(result)


class _Text(str):
    __slots__ = ()


class _Int(int):
    __slots__ = ()


_TEXT = st.text(st.sampled_from(
    "aZ09._:-/ é\u00a0\u0130\U0001f48e\x00\x1f\x7f\x80\x9f\u061c\u200e\u200f\u202a\u202e\u2066\u2069\ud800\udfff"
    "\u0301\u200b\u00ad\ufe0f\ue000\u0378\U000e0041"),
    max_size=8) | st.sampled_from(["BW", "bw", "B", "BWA", "A" * 64, "A" * 65, "a" + "." * 63, ".a", "x" * 257,
                                   "x" * 256, "A-1:b_c.d", "Jwaneng mine"])
_VALUES: st.SearchStrategy[Any] = (
    _TEXT | _TEXT.map(_Text) | st.integers(-(2**64), 2**64) | st.integers(-3, 3).map(_Int) | st.booleans()
    | st.none() | st.binary(max_size=3) | st.just([]) | st.just({}) | st.just(1.5))


@settings(max_examples=1500, deadline=None)
@given(_VALUES, st.sampled_from([1, 2, 16, 64, 256]))
def test_text_readers_agree_with_the_reference(value: Any, max_len: int) -> None:
    assert _outcome(s.read_text, value, "f", max_len) == _outcome(_ref_read_text, value, "f", max_len)
    assert _outcome(s.read_text, value, "f") == _outcome(_ref_read_text, value, "f")
    assert _outcome(s.read_id, value, "f") == _outcome(_ref_read_id, value, "f")
    assert _outcome(s.read_country, value, "f") == _outcome(_ref_read_country, value, "f")
    if isinstance(value, str) and _outcome(s.read_text, value, "f")[0] != "error":
        assert s.read_text(value, "f") is value  # the very object, subclass and all


@settings(max_examples=500, deadline=None)
@given(_VALUES, st.integers(-3, 3), st.integers(-3, 2**63))
def test_int_reader_agrees_with_the_reference(value: Any, minimum: int, maximum: int) -> None:
    assert _outcome(s.read_int, value, "f", minimum, maximum) == _outcome(_ref_read_int, value, "f", minimum, maximum)
    assert _outcome(s.read_int, value, "f") == _outcome(_ref_read_int, value, "f")


_KEYS = st.frozensets(st.sampled_from("abcd"), max_size=4)


@settings(max_examples=300, deadline=None)
@given(_KEYS, _KEYS, _KEYS)
def test_exact_keys_agrees_with_the_reference(present: frozenset[str], required: frozenset[str],
                                              optional: frozenset[str]) -> None:
    value = dict.fromkeys(sorted(present), 0)
    for req in (required, set(required)):
        assert _outcome(s.exact_keys, value, "f", req, optional) == _outcome(_ref_exact_keys, value, "f", req, optional)
        assert _outcome(s.exact_keys, value, "f", req) == _outcome(_ref_exact_keys, value, "f", req)


# --- reference record reader (ledger.record before it skipped __init__, verbatim but for the names) ---------------

def _ref_from_bytes(raw: bytes) -> Record:
    if len(raw) > MAX_RECORD_SIZE:
        raise RecordFormatError(f"record is {len(raw)} bytes, cap {MAX_RECORD_SIZE}", code="record.too_large")
    if not raw.startswith(RECORD_TAG):
        raise RecordFormatError("missing the record tag", code="record.tag")
    try:
        env = s.read_map(decode(raw[len(RECORD_TAG):]), "record")
        _ref_exact_keys(env, "record", {"body", "sigs"})
        body_bytes = env["body"]
        if not isinstance(body_bytes, bytes):
            raise s.fail("body", "expected bin")
        body = _ref_body_from_value(decode(body_bytes))
    except DecodeError as exc:
        raise RecordFormatError(str(exc), code=exc.code) from exc
    sigs = tuple(_ref_read_signature(v) for v in s.read_list(env["sigs"], "sigs", 16))
    if not sigs:
        raise RecordFormatError("a record needs at least one signature", code="record.unsigned")
    _ref_sorted_unique([sg.party for sg in sigs], "sigs")
    return Record(raw=bytes(raw), body=body, body_bytes=body_bytes, signatures=sigs)


def _ref_body_from_value(value: Value) -> Body:
    b = s.read_map(value, "body")
    version = b.get("v")
    if version != FORMAT_VERSION or isinstance(version, bool):
        raise RecordFormatError(f"unsupported record format version {version!r:.80}", code="record.version")
    _ref_exact_keys(b, "body", {"v", "origin", "kind", "time_ms", "place", "actor", "inputs", "consumes",
                                "outputs", "fields"})
    kind = _ref_read_text(b["kind"], "kind")
    return Body(
        origin=_ref_read_text(b["origin"], "origin"), kind=kind,
        time_ms=_ref_read_time(b["time_ms"], "time_ms"),
        place=_ref_read_country(b["place"], "place"), actor=_ref_read_id(b["actor"], "actor"),
        event=_ref_event_from_fields(kind, s.read_map(b["fields"], "fields")),
        inputs=tuple(_ref_read_input(v) for v in s.read_list(b["inputs"], "inputs", 1000)),
        consumes=tuple(_ref_read_id(v, "consumes") for v in s.read_list(b["consumes"], "consumes", 1000)),
        outputs=tuple(_ref_read_output(v) for v in s.read_list(b["outputs"], "outputs", 1000)),
    )


def _ref_event_from_fields(kind: str, fields: Mapping[str, Value]) -> Event:
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        raise s.fail("kind", f"unknown event kind {kind!r}")
    specs = dataclasses.fields(cls)
    _ref_exact_keys(fields, cls.KIND, {f.name for f in specs})
    event: Event = cls(**{f.name: f.metadata["read"](fields[f.name], f"{cls.KIND}.{f.name}") for f in specs})
    return event


def _ref_sorted_unique(ids: list[str], field_name: str) -> None:
    if ids != sorted(ids) or len(set(ids)) != len(ids):
        raise s.fail(field_name, "must be sorted and unique")


def _ref_read_input(value: Value) -> tuple[str, Any]:
    pair = s.read_list(value, "inputs", 2)
    if len(pair) != 2:
        raise s.fail("inputs", "each input is [item id, previous record hash]")
    return _ref_read_id(pair[0], "inputs.id"), s.read_digest(pair[1], "inputs.prev")


def _ref_read_output(value: Value) -> Output:
    o = s.read_map(value, "outputs")
    _ref_exact_keys(o, "outputs", {"id", "type", "mass_mct"})
    return Output(id=_ref_read_id(o["id"], "outputs.id"), type=_ref_read_text(o["type"], "outputs.type"),
                  mass_mct=_ref_read_int(o["mass_mct"], "outputs.mass_mct"))


def _ref_read_signature(value: Value) -> Signature:
    m = s.read_map(value, "sigs")
    _ref_exact_keys(m, "sigs", {"party", "key", "sig"})
    return Signature(party=_ref_read_id(m["party"], "sigs.party"), key=s.read_bytes(m["key"], "sigs.key", 32),
                     sig=s.read_bytes(m["sig"], "sigs.sig", 64))


# --- the comparison ---------------------------------------------------------------------------------------------

_VECTORS = json.loads((Path(__file__).parent / "vectors" / "records.json").read_text())
_SEEDS = [base64.b64decode(v["record_b64"]) for v in _VECTORS]


def _record_outcome(read: Any, raw: bytes) -> tuple[object, ...]:
    try:
        record = read(raw)
    except Exception as exc:
        return "error", type(exc).__name__, getattr(exc, "code", None), str(exc)
    parts = [record.body, record.body.event, *record.body.outputs, *record.signatures]
    # repr and hash read every field (an unset slot raises); the types are those __init__ would have stored
    return ("ok", record.raw, record.body_bytes, repr(parts), [hash(p) for p in parts],
            [{f.name: type(getattr(p, f.name)) for f in dataclasses.fields(p)} for p in parts])


def _assert_same(raw: bytes) -> None:
    new, ref = _record_outcome(Record.from_bytes, raw), _record_outcome(_ref_from_bytes, raw)
    assert new == ref
    if new[0] == "ok":  # equal as values too, to an instance built through __init__
        assert Record.from_bytes(raw).body == _ref_from_bytes(raw).body


@pytest.mark.parametrize("raw", _SEEDS, ids=[v["kind"] for v in _VECTORS])
def test_vector_records_read_the_same(raw: bytes) -> None:
    assert _record_outcome(Record.from_bytes, raw)[0] == "ok"
    _assert_same(raw)


def _slots(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a decoded map/list tree: paths of keys and indexes."""
    found = [path]
    if isinstance(value, dict):
        for k, v in value.items():
            found += _slots(v, (*path, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found += _slots(v, (*path, i))
    return found


def _get(tree: Any, path: tuple[Any, ...]) -> Any:
    for step in path:
        tree = tree[step]
    return tree


_REPLACEMENTS = st.sampled_from([
    None, True, False, 0, 1, 2, -1, 10**9, 10**9 + 1, 2**63, 2**64 - 1, 253_402_300_799_999, 253_402_300_799_999 + 1,
    "", "x", "BW", "bw", "XX", "B", "a\x00b", "Jwa\u202eneng", "é", "A" * 64, "A" * 65, "x" * 257, "-a",
    "stone", "lot", "article", "ring", "title", "memo", "natural", "lab_grown", "CVD", "producer", "zz-last",
    "A", "0", b"", bytes(32), bytes(31), bytes(64), [], [1], ["A"], ["A", "A"], ["B", "A"], {}, {"x": 1},
    {"A": 1}, {"A": 0}, [["A", bytes(32)]], [{"id": "A", "type": "stone", "mass_mct": 1}],
])


@st.composite
def _damaged(draw: st.DrawFn) -> bytes:
    raw = draw(st.sampled_from(_SEEDS))
    env: Any = decode(raw[len(RECORD_TAG):])
    tree = {"body": decode(env["body"]), "sigs": env["sigs"]}
    if draw(st.booleans()):  # two top-level fields at once, to see which fault is named first
        for name in draw(st.lists(st.sampled_from(sorted(tree["body"])), min_size=2, max_size=2, unique=True)):
            tree["body"][name] = copy.deepcopy(draw(_REPLACEMENTS))
    for _ in range(draw(st.integers(1, 3))):
        if not tree:
            break
        path = draw(st.sampled_from(_slots(tree)[1:]))
        parent, last = _get(tree, path[:-1]), path[-1]
        op = draw(st.integers(0, 5))
        if op <= 2:
            parent[last] = copy.deepcopy(draw(_REPLACEMENTS))
        elif op == 3:  # drop it
            del parent[last]
        elif op == 4:  # a copy of another value of the same record
            parent[last] = copy.deepcopy(_get(tree, draw(st.sampled_from(_slots(tree)[1:]))))
        elif isinstance(parent, dict):
            parent["unknown"] = 1
        else:
            parent.insert(0, copy.deepcopy(parent[last]))
    env = dict(tree)
    if isinstance(env.get("body"), dict | list):
        env["body"] = encode(env["body"])
    return RECORD_TAG + encode(env)


@settings(max_examples=1500, deadline=None)
@given(_damaged())
def test_damaged_records_read_the_same(raw: bytes) -> None:
    _assert_same(raw)


@settings(max_examples=1000, deadline=None)
@given(st.one_of(_damaged(), st.sampled_from(_SEEDS)), st.sampled_from([None, 0, 1, -1]))
def test_signed_parts_accepts_every_record_from_bytes_accepts_with_its_message(raw: bytes, cut: int | None) -> None:
    """A parallel audit's worker reads only the envelope (ADR 0027): whatever ``Record.from_bytes`` accepts, the
    envelope reader accepts, with the same signed message and signatures (so the verdicts the main process takes
    from the worker are those of the record it decodes); a record it refuses, from_bytes refuses too."""
    if cut is not None:  # bytes cut or padded at the end: truncated or trailing bytes
        raw = raw[:cut] if cut else raw + b"\x00"
    try:
        record = Record.from_bytes(raw)
    except RecordFormatError:
        record = None
    try:
        parts = signed_parts(raw)
    except RecordFormatError:
        assert record is None
        return
    if record is not None:
        assert parts == (record.signed_message(), record.signatures)


# --- direct construction: __post_init__ against the one it replaced ------------------------------------------------

def _ref_body_post_init(b: Any) -> None:
    expect(b.event, Event, "event", "an event of ledger.events")  # issue 9: a typed error, not AttributeError
    _ref_read_text(b.origin, "origin")
    _ref_read_time(b.time_ms, "time_ms")
    _ref_read_country(b.place, "place")
    _ref_read_id(b.actor, "actor")
    if b.kind != b.event.KIND:
        raise s.fail("kind", f"{b.kind!r} does not match event {b.event.KIND!r}")
    ids = [item for item, _ in b.inputs]
    _ref_sorted_unique(ids, "inputs")
    for item, prev in b.inputs:
        _ref_read_id(item, "inputs.id")
        Digest(prev)
    _ref_sorted_unique(list(b.consumes), "consumes")
    if not set(b.consumes) <= set(ids):
        raise s.fail("consumes", "every consumed item must be an input")
    _ref_sorted_unique([o.id for o in b.outputs], "outputs")


def _ref_output_post_init(o: Any) -> None:
    _ref_read_id(o.id, "outputs.id")
    if not isinstance(o.type, str) or o.type not in ITEM_TYPES:  # issue 9: unhashable types too
        raise s.fail("outputs.type", f"must be one of {sorted(ITEM_TYPES)}")
    _ref_read_int(o.mass_mct, "outputs.mass_mct", 1, 10**9)


def _ref_event_post_init(e: Any) -> None:
    for f in dataclasses.fields(EVENT_TYPES[e.KIND]):
        reader = f.metadata["read"]
        value = getattr(e, f.name)
        pairs = isinstance(value, tuple | list) and all(isinstance(p, tuple) and len(p) == 2 for p in value)
        wire = (dict(value) if pairs else value) if f.name == "declared" else (
            list(value) if isinstance(value, tuple) else value)  # issue 9: no ValueError from dict()
        reader(wire, f"{e.KIND}.{f.name}")


def _construct(cls: Any, fields: dict[str, Any]) -> tuple[object, ...]:
    return _outcome(lambda: repr(cls(**fields)))


def _reference(cls: Any, check: Any, fields: dict[str, Any]) -> tuple[object, ...]:
    def build() -> str:
        check(types.SimpleNamespace(KIND=getattr(cls, "KIND", None), **fields))
        return repr(cls(**fields))
    return _outcome(build)


_D = Digest(bytes(32))
_PY_VALUES = _REPLACEMENTS | st.sampled_from([  # the second half: mostly for inputs, consumes, outputs, declared
    (), ("A",), ("B", "A"), ("A", "A"), (["A"],), ("A", ["B"]), ((["A"], _D),), (("A", _D),), (("B", _D), ("A", _D)),
    (("A", _D), ("A", _D)), (("A", bytes(31)),), (("a\x00", _D),), ((_D, "A"),), ((1, _D),), (("A", "x"),),
    (("A", _D), ("b\u202e", _D)), (("", _D),), _D, bytearray(32), _Text("BW"),
    (Output(id="A", type="stone", mass_mct=1),), (Output(id="B", type="lot", mass_mct=2), Output(id="A", type="lot",
                                                                                              mass_mct=2)),
    [("natural", 1)], (("A", 1), ("B", 2)), (("B", 1), ("A", 2)), (("A", 0),), {"A": 1}, 1.5, _Int(3),
])


@settings(max_examples=1500, deadline=None)
@given(st.sampled_from(_SEEDS), st.integers(0, 3), st.data())
def test_direct_construction_refuses_the_same(raw: bytes, which: int, data: st.DataObject) -> None:
    record = Record.from_bytes(raw)
    part: Any = [record.body, record.body.event, *record.body.outputs, *record.signatures][
        min(which, 2 + len(record.body.outputs))]
    cls = type(part)
    fields = {f.name: getattr(part, f.name) for f in dataclasses.fields(part)}
    for name in data.draw(st.lists(st.sampled_from(sorted(fields)), max_size=2, unique=True)):
        fields[name] = data.draw(_PY_VALUES)
    check = {Body: _ref_body_post_init, Output: _ref_output_post_init,
             Signature: lambda sg: (_ref_read_id(sg.party, "sigs.party"), s.read_bytes(sg.key, "sigs.key", 32),
                                    s.read_bytes(sg.sig, "sigs.sig", 64))}.get(cls, _ref_event_post_init)
    assert _construct(cls, fields) == _reference(cls, check, fields)
