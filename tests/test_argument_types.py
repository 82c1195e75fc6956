"""Wrong argument types on the public API raise a typed error that names the argument (issue 9, item 7).

Every public entry point is called with one argument of the wrong type, the others right: it raises a
StoneTrailError whose message names that argument, never an AttributeError or TypeError from deep inside. API
arguments give ``ArgumentError`` (``input.type``); the fields of a record (event fields, ``Body``, ``Output``) give
the record schema's code (``record.malformed``, docs/format.md §4), and ``Policy`` its own (``policy.malformed``).
Beside each: the same call with right types works (the accepted neighbour).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ledger import (
    AUTHORITY,
    Body,
    Enrolled,
    Exported,
    Graded,
    Ledger,
    Mined,
    Output,
    Policy,
    Transferred,
    Trust,
    check_bundle,
    check_ledger,
    export_bundle,
    verify_bundle,
    verify_ledger,
)
from ledger.errors import ArgumentError, StoneTrailError
from world import ORIGIN, key

VECTORS = Path(__file__).resolve().parent / "vectors"
TRUST_TEXT = (VECTORS / "trust.keys").read_text(encoding="utf-8")
TRUST = Trust.parse(TRUST_TEXT)
NOTE = (VECTORS / "checkpoint.txt").read_text(encoding="utf-8")
LEDGER = VECTORS / "ledger.bin"
ITEM = "PL-000117-A"
T = 1_740_787_200_000
AUTH = key(AUTHORITY)
PRODUCER = key("producer-a")
KEYS = [AUTH.public_key.raw]


@pytest.fixture
def writer(tmp_path: Path) -> Ledger:
    """A ledger holding producer-a's enrolment and stone S1."""
    ledger = Ledger.create(tmp_path / "w.ledger", ORIGIN, KEYS)
    ledger.record_event(Enrolled(party="producer-a", name="A", roles=("producer",), country="BW", external_ids=(),
                                 key=PRODUCER.public_key.raw, registry_prev=None),
                        actor=AUTHORITY, place="BW", time_ms=T, signers={AUTHORITY: AUTH})
    _mine(ledger, "S1")
    return ledger


def _mine(ledger: Ledger, item: str, **override: Any) -> object:
    arguments: dict[str, Any] = {"event": Mined(mine="Jwaneng", country="BW"), "actor": "producer-a", "place": "BW",
                                 "time_ms": T + 1, "signers": {"producer-a": PRODUCER},
                                 "outputs": [Output(id=item, type="stone", mass_mct=1_000)]}
    arguments.update(override)
    event = arguments.pop("event")
    return ledger.record_event(event, **arguments)


def _fresh(tmp_path: Path) -> Path:
    return tmp_path / "new.ledger"


def _bundle() -> bytes:
    return export_bundle(LEDGER, ITEM, NOTE)


# (case id, argument named, expected code, call): each call gets the writer fixture and tmp_path
Call = Callable[[Ledger, Path], object]
CASES: list[tuple[str, str, str, Call]] = [
    ("Ledger.create path", "path", "input.type", lambda w, p: Ledger.create(123, ORIGIN, KEYS)),  # type: ignore[arg-type]
    ("Ledger.create origin", "origin", "input.type", lambda w, p: Ledger.create(_fresh(p), 5, KEYS)),  # type: ignore[arg-type]
    ("Ledger.create one key, not a collection", "authority_keys", "input.type",
     lambda w, p: Ledger.create(_fresh(p), ORIGIN, AUTH.public_key.raw)),  # type: ignore[arg-type]
    ("Ledger.create a key as hex", "authority_keys[0]", "input.type",
     lambda w, p: Ledger.create(_fresh(p), ORIGIN, [AUTH.public_key.raw.hex()])),  # type: ignore[list-item]
    ("Ledger.create clock", "now_ms", "input.type",
     lambda w, p: Ledger.create(_fresh(p), ORIGIN, KEYS, now_ms=5)),  # type: ignore[arg-type]
    ("Ledger.open path", "path", "input.type", lambda w, p: Ledger.open(None, KEYS)),  # type: ignore[arg-type]
    ("Ledger.append", "record", "input.type", lambda w, p: w.append(b"stonetrail/v1/record\n")),  # type: ignore[arg-type]
    ("Ledger.append_batch one record", "records", "input.type",
     lambda w, p: w.append_batch(w.record(1))),  # type: ignore[arg-type]
    ("Ledger.append_batch an element", "records[1]", "input.type",
     lambda w, p: w.append_batch([w.record(1), "x"])),  # type: ignore[list-item]
    ("record_event event", "event", "input.type", lambda w, p: _mine(w, "S2", event="mined")),
    ("record_event actor", "actor", "record.malformed", lambda w, p: _mine(w, "S2", actor=5)),
    ("record_event place", "place", "record.malformed", lambda w, p: _mine(w, "S2", place=None)),
    ("record_event time as text", "time_ms", "record.malformed", lambda w, p: _mine(w, "S2", time_ms="2025")),
    ("record_event time as float", "time_ms", "record.malformed", lambda w, p: _mine(w, "S2", time_ms=1.74e12)),
    ("record_event signers as pairs", "signers", "input.type",
     lambda w, p: _mine(w, "S2", signers=[("producer-a", PRODUCER)])),
    ("record_event a signer's key as PEM text", "signers[0]", "input.type",
     lambda w, p: _mine(w, "S2", signers={"producer-a": "-----BEGIN PRIVATE KEY-----"})),
    ("record_event inputs as one id", "inputs", "input.type", lambda w, p: _mine(w, "S2", inputs="S1")),
    ("record_event an output as a dict", "outputs[0]", "input.type",
     lambda w, p: _mine(w, "S2", outputs=[{"id": "S2", "type": "stone", "mass_mct": 1}])),
    ("Ledger.checkpoint key", "key", "input.type", lambda w, p: w.checkpoint("operator.pem")),  # type: ignore[arg-type]
    ("Ledger.checkpoint name", "name", "input.type", lambda w, p: w.checkpoint(AUTH, name=5)),  # type: ignore[arg-type]
    ("Ledger.item", "item_id", "input.type", lambda w, p: w.item(5)),  # type: ignore[arg-type]
    ("Ledger.inputs", "item_ids[0]", "input.type", lambda w, p: w.inputs(5)),  # type: ignore[arg-type]
    ("Ledger.record", "position", "input.type", lambda w, p: w.record("0")),  # type: ignore[arg-type]
    ("check_ledger path", "path", "input.type", lambda w, p: check_ledger(5, TRUST)),  # type: ignore[arg-type]
    ("check_ledger trust as text", "trust", "input.type",
     lambda w, p: check_ledger(LEDGER, TRUST_TEXT)),  # type: ignore[arg-type]
    ("check_ledger checkpoint as bytes", "checkpoint", "input.type",
     lambda w, p: check_ledger(LEDGER, TRUST, checkpoint=NOTE.encode())),  # type: ignore[arg-type]
    ("check_ledger policy as a dict", "policy", "input.type",
     lambda w, p: check_ledger(LEDGER, TRUST, policy={"deny_origin": {"RU"}})),  # type: ignore[arg-type]
    ("verify_ledger trust", "trust", "input.type", lambda w, p: verify_ledger(LEDGER, None)),  # type: ignore[arg-type]
    ("check_bundle data as text", "data", "input.type", lambda w, p: check_bundle("bundle", TRUST)),  # type: ignore[arg-type]
    ("check_bundle trust", "trust", "input.type", lambda w, p: check_bundle(_bundle(), TRUST_TEXT)),  # type: ignore[arg-type]
    ("check_bundle policy", "policy", "input.type",
     lambda w, p: check_bundle(_bundle(), TRUST, "RU")),  # type: ignore[arg-type]
    ("check_bundle origin", "origin", "input.type",
     lambda w, p: check_bundle(_bundle(), TRUST, origin=5)),  # type: ignore[arg-type]
    ("verify_bundle data", "data", "input.type", lambda w, p: verify_bundle(None, TRUST)),  # type: ignore[arg-type]
    ("export_bundle path", "ledger_path", "input.type", lambda w, p: export_bundle(5, ITEM, NOTE)),  # type: ignore[arg-type]
    ("export_bundle item", "items", "input.type", lambda w, p: export_bundle(LEDGER, 5, NOTE)),  # type: ignore[arg-type]
    ("export_bundle checkpoint as bytes", "checkpoint", "input.type",
     lambda w, p: export_bundle(LEDGER, ITEM, NOTE.encode())),  # type: ignore[arg-type]
    ("export_bundle trust", "trust", "input.type",
     lambda w, p: export_bundle(LEDGER, ITEM, NOTE, trust=TRUST_TEXT)),  # type: ignore[arg-type]
    ("Policy deny_origin as one text", "deny_origin", "policy.malformed",
     lambda w, p: Policy(deny_origin="RU")),  # type: ignore[arg-type]
    ("Policy switch as text", "kp_rules", "policy.malformed", lambda w, p: Policy(kp_rules="yes")),  # type: ignore[arg-type]
    ("Policy carats as a float", "import_threshold_mct", "policy.malformed",
     lambda w, p: Policy(import_threshold_mct=0.5)),  # type: ignore[arg-type]
    ("Trust.parse bytes", "text", "input.type", lambda w, p: Trust.parse(TRUST_TEXT.encode())),  # type: ignore[arg-type]
    ("Mined mine", "mine", "record.malformed", lambda w, p: Mined(mine=5, country="BW")),  # type: ignore[arg-type]
    ("Graded mass as text", "mass_mct", "record.malformed",
     lambda w, p: Graded(lab="lab-d", report="R-1", mass_mct="1000", colour="G", clarity="VS1",  # type: ignore[arg-type]
                         nature="natural")),
    ("Exported declared as text", "declared", "record.malformed",
     lambda w, p: Exported(kp_certificate="BW-1", to_country="BE", consignee="c", certificate_mct=1, issued_ms=T,
                           expires_ms=T, declared="S1=1", kp_authority=None)),  # type: ignore[arg-type]
    ("Enrolled roles as one text", "roles", "record.malformed",
     lambda w, p: Enrolled(party="p", name="P", roles="trader", country="BW", external_ids=(),  # type: ignore[arg-type]
                           key=bytes(32), registry_prev=None)),
    ("Transferred to", "to", "record.malformed", lambda w, p: Transferred(to=None, mode="title")),  # type: ignore[arg-type]
    ("Output type as a list", "type", "record.malformed",
     lambda w, p: Output(id="S2", type=["stone"], mass_mct=1)),  # type: ignore[arg-type]
    ("Body event", "event", "input.type",
     lambda w, p: Body(origin=ORIGIN, kind="mined", time_ms=T, place="BW", actor="a", event=None)),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("argument", "code", "call"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_wrong_argument_type_is_a_typed_error_that_names_it(argument: str, code: str, call: Call, writer: Ledger,
                                                               tmp_path: Path) -> None:
    size = writer.size
    with pytest.raises(StoneTrailError) as refused:
        call(writer, tmp_path)
    assert argument in str(refused.value), str(refused.value)
    assert refused.value.code == code, str(refused.value)
    assert isinstance(refused.value, ArgumentError) == (code == "input.type")
    assert writer.size == size and not _fresh(tmp_path).exists()  # nothing was written or created


def test_the_same_calls_with_right_types_work(writer: Ledger, tmp_path: Path) -> None:
    _mine(writer, "S2")
    assert writer.inputs("S1", "S2")[0][0] == "S1" and writer.item("S2").holder == "producer-a"
    assert writer.record(0).body.kind == "enrolled" and writer.checkpoint(AUTH, name=ORIGIN)
    Ledger.create(_fresh(tmp_path), ORIGIN, frozenset(KEYS), now_ms=lambda: T).close()
    copy = tmp_path / "copy.bin"
    shutil.copy(LEDGER, copy)
    assert check_ledger(copy, TRUST, checkpoint=NOTE, policy=Policy(deny_origin=frozenset({"RU"}))).ok
    bundle = export_bundle(copy, ITEM, NOTE, trust=TRUST)
    assert check_bundle(bundle, TRUST, Policy(deny_origin=frozenset({"RU"})), origin=None).ok
    assert verify_bundle(bundle, TRUST).item == ITEM
