"""Golden vectors for the StoneTrail v1 record format (docs/format.md), generated from fixed keys.

Usage::

    python tests/vectors/generate.py [OUTDIR]      # default: this script's folder

or, from code, :func:`build`, which returns {file name: contents} without writing anything. The output depends
only on the seeds and values below: no clock, no randomness (Ed25519 signing is deterministic, RFC 8032 §5.1.6).
``tests/test_vectors.py`` fails if regenerating changes a single byte: a changed byte here is a changed format.

Files:

- ``records.json``: one record of every event kind of ``ledger.events.EVENT_TYPES``, in that order: ``kind``,
  ``desc``, ``ledger_position`` (its position in ledger.bin, or null), ``record_b64`` (record bytes),
  ``body_hex``, ``body_hash_hex``, ``signed_message_hex``, ``record_hash_hex``, ``signers`` ([{party, key_hex}],
  as in the envelope) and ``fields`` (the decoded ``fields`` map, bytes as hex). The kinds the small ledger holds
  are taken from it; the others continue it (they link to its records, and atelier-antwerp signs with its new
  key after the rotation) but are not part of it, and their parties grower-surat, node-antwerp and
  auditor-antwerp are not enrolled: as a ledger they would only need those enrolments.
- ``ledger.bin``: a small ledger that audits clean (the lifecycle of DOMAIN.md scenario 1: enrolments, mined,
  sold, exported, imported, cut, graded, inscribed, set, unset), written by ``ledger.storage.FileStore``.
- ``checkpoint.txt``: the operator's signed checkpoint of the whole of ``ledger.bin``.
- ``trust.keys``: the trust file (operator and authority verifier keys) that verifies both.
- ``witness.policy``: a C2SP tlog-policy: three witnesses (``witness-1.example`` .. ``-3``, cosigner keys of
  type 0x04, keys as below) in a group of which 2 must cosign, the quorum.
- ``cosigned-checkpoint.txt``: ``checkpoint.txt`` with the C2SP tlog-cosignature/v1 cosignatures of witnesses 1
  and 2 at time 1796000000 (2026-11-30 00:53:20 UTC): it meets the policy's quorum under ``trust.keys``.
- ``negative.json``: mutations of the split and graded records (``base``), each with ``desc``, ``record_b64``
  and ``want_code``: the code of the RecordFormatError ``Record.from_bytes`` must raise (docs/format.md §10).
- ``negative-ledger.json``: validly signed records that break a rule of the ledger they are appended to
  (``ledger.bin``), each with ``desc``, ``records_b64`` (appended in this order after ledger.bin's records),
  ``position`` (the leaf index of the faulty one), ``item`` (an item whose proof bundle holds it) and
  ``want_code``: what ``Ledger.append`` refuses it with, what a full audit reports at ``position``, and what a
  bundle of ``item`` reports there (docs/format.md §5, §7a.4, §7d).

Keys: party ``p`` has the Ed25519 seed SHA-256(b"stonetrail vector key " || UTF-8 p). Parties, certificate and
report numbers are fictitious; mines and countries are real.
"""

from __future__ import annotations

import base64
import hashlib
import json
import struct
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ledger import AUTHORITY, Body, Output, PrivateKey, Record, checkpoint_file
from ledger._codec import decode, encode
from ledger.audit import check_ledger
from ledger.checkpoint import add_signatures, format_checkpoint, read_unverified_checkpoint
from ledger.cosignature import cosign, cosigner_key
from ledger.events import (
    EVENT_TYPES,
    REGISTRY_KINDS,
    Attested,
    Corrected,
    Enrolled,
    Event,
    Exported,
    Graded,
    Grown,
    Imported,
    Inscribed,
    KeyAdded,
    KeyRevoked,
    Merged,
    Mined,
    Registered,
    Retired,
    Set,
    Split,
    Transferred,
    Unset,
    Verified,
)
from ledger.hashing import Digest
from ledger.keys import note_verifier_key
from ledger.record import RECORD_TAG
from ledger.storage import FileStore
from ledger.trust import Trust

__all__ = ["AUTHORITY_NAME", "FILES", "ORIGIN", "build", "key", "main"]

ORIGIN = "vectors.stonetrail.example/ledger"
AUTHORITY_NAME = "vectors.stonetrail.example/authority"
FILES = ("records.json", "ledger.bin", "checkpoint.txt", "trust.keys", "negative.json", "negative-ledger.json",
         "witness.policy", "cosigned-checkpoint.txt")
#: The time of the vector cosignatures (POSIX seconds): 2026-11-30 00:53:20 UTC.
COSIGNED_AT = 1_796_000_000

MIN, HOUR, DAY = 60_000, 3_600_000, 86_400_000
T0 = 1_740_787_200_000  # 2025-03-01T00:00:00Z, ms since the Unix epoch (UTC)
KP_CERTIFICATE = "BW-KP-2025-004711"  # prefixed with the exporter's ISO code (DOMAIN.md R7)


def key(party: str) -> PrivateKey:
    """The fixed key of ``party``: seed = SHA-256(b"stonetrail vector key " || party)."""
    return PrivateKey.from_seed(hashlib.sha256(b"stonetrail vector key " + party.encode("utf-8")).digest())


class _Chain:
    """Signs records and tracks each item's latest record hash and the registry head (the links)."""

    def __init__(self) -> None:
        self.heads: dict[str, Digest] = {}
        self.registry_head: Digest | None = None
        self.records: list[tuple[str, Record]] = []
        self.keys: dict[str, PrivateKey] = {}  # a party's current key, where it is not key(party)

    def add(self, desc: str, event: Event, actor: str, place: str, time_ms: int, *, cosigners: Sequence[str] = (),
            inputs: Sequence[str] = (), consumes: Sequence[str] = (), outputs: Sequence[Output] = ()) -> Record:
        body = Body(origin=ORIGIN, kind=event.KIND, time_ms=time_ms, place=place, actor=actor, event=event,
                    inputs=tuple((i, self.heads[i]) for i in sorted(inputs)), consumes=tuple(sorted(consumes)),
                    outputs=tuple(sorted(outputs, key=lambda o: o.id)))
        record = Record.create(body, [(p, self.keys.get(p) or key(p)) for p in (actor, *cosigners)])
        for item in (*inputs, *(o.id for o in outputs)):
            self.heads[item] = record.record_hash
        if event.KIND in REGISTRY_KINDS:
            self.registry_head = record.record_hash
        self.records.append((desc, record))
        return record

    def enrol(self, party: str, name: str, roles: tuple[str, ...], country: str, time_ms: int) -> Record:
        event = Enrolled(external_ids=(), party=party, name=name, roles=roles, country=country,
                         key=key(party).public_key.raw, registry_prev=self.registry_head)
        return self.add(f"the authority enrols {party} ({', '.join(roles)}, {country})", event, AUTHORITY, "BE",
                        time_ms)


# --- the small ledger (DOMAIN.md scenario 1) --------------------------------------------------------------------

ROUGH, BIG, SMALL, RING = "RGH-BW-JWN-000117", "PL-000117-A", "PL-000117-B", "ART-RING-0042"


def _ledger(c: _Chain) -> None:
    """Fourteen records that satisfy every custody rule (checked with check_ledger in :func:`build`)."""
    c.enrol("producer-jwaneng", "Jwaneng Sample Mining (Pty) Ltd", ("producer",), "BW", T0)
    c.enrol("kp-botswana", "Botswana Kimberley Process Office (sample)", ("kp_authority",), "BW", T0 + 10 * MIN)
    c.enrol("trader-gaborone", "Kalahari Rough Trading", ("trader",), "BW", T0 + 20 * MIN)
    c.enrol("atelier-antwerp", "Atelier Léopold Diamantaire SA", ("manufacturer", "trader"), "BE", T0 + 30 * MIN)
    c.enrol("lab-antwerp", "Schelde Gemmological Laboratory", ("lab",), "BE", T0 + 40 * MIN)
    t = T0 + 2 * DAY
    c.add("producer-jwaneng records a 2.350 ct rough stone recovered at Jwaneng",
          Mined(mine="Jwaneng", country="BW"), "producer-jwaneng", "BW", t,
          outputs=[Output(id=ROUGH, type="stone", mass_mct=2_350)])
    c.add("producer-jwaneng sells the rough to trader-gaborone (title), both sign",
          Transferred(to="trader-gaborone", mode="title"), "producer-jwaneng", "BW", t + 3 * DAY,
          cosigners=["trader-gaborone"], inputs=[ROUGH])
    issued, expires = t + 9 * DAY, t + 9 * DAY + 60 * DAY
    c.add("trader-gaborone exports the rough to atelier-antwerp in BE under a BW KP certificate; the BW KP "
          "authority co-signs", Exported(kp_certificate=KP_CERTIFICATE, to_country="BE", consignee="atelier-antwerp",
                                         certificate_mct=2_350, issued_ms=issued, expires_ms=expires,
                                         declared=((ROUGH, 2_350),), kp_authority="kp-botswana"),
          "trader-gaborone", "BW", issued + HOUR, cosigners=["kp-botswana"], inputs=[ROUGH])
    c.add("atelier-antwerp imports the rough in BE under the same certificate (no customs party enrolled in BE)",
          Imported(kp_certificate=KP_CERTIFICATE, from_country="BW", declared=((ROUGH, 2_350),), customs=None,
                   basis=None), "atelier-antwerp", "BE", issued + 2 * DAY, inputs=[ROUGH])
    c.add("atelier-antwerp cuts the rough into 1.020 ct and 0.310 ct polished stones, declaring 1.020 ct lost",
          Split(loss_mct=1_020), "atelier-antwerp", "BE", issued + 30 * DAY, inputs=[ROUGH], consumes=[ROUGH],
          outputs=[Output(id=BIG, type="stone", mass_mct=1_020), Output(id=SMALL, type="stone", mass_mct=310)])
    graded = issued + 40 * DAY
    c.add("lab-antwerp grades the 1.02 ct stone F VS1 natural (report 2501170042); holder and lab sign",
          Graded(lab="lab-antwerp", report="2501170042", mass_mct=1_020, colour="F", clarity="VS1", nature="natural"),
          "atelier-antwerp", "BE", graded, cosigners=["lab-antwerp"], inputs=[BIG])
    c.add("lab-antwerp laser-inscribes the report number on the 1.02 ct stone",
          Inscribed(lab="lab-antwerp", inscription="SGL-2501170042"), "atelier-antwerp", "BE", graded + HOUR,
          cosigners=["lab-antwerp"], inputs=[BIG])
    c.add("atelier-antwerp sets both stones in a ring (article mass = 1.020 + 0.310 ct)",
          Set(description="Platinum ring, 1.02 ct centre stone with a 0.31 ct side stone"), "atelier-antwerp", "BE",
          graded + 5 * DAY, inputs=[BIG, SMALL], outputs=[Output(id=RING, type="article", mass_mct=1_330)])
    c.add("atelier-antwerp takes both stones out of the ring again (the ring is consumed, the stones are free)",
          Unset(reason="Customer chose a different mounting"), "atelier-antwerp", "BE", graded + 12 * DAY,
          inputs=[BIG, RING, SMALL], consumes=[RING])


def _extra(c: _Chain, ledger: Sequence[Record]) -> None:
    """Records of the kinds the small ledger lacks, continuing it (see the module docstring)."""
    t = T0 + 120 * DAY
    graded = next(r for r in ledger if r.body.kind == "graded")
    imported = next(r for r in ledger if r.body.kind == "imported")
    new_key = key("atelier-antwerp/2")
    c.add("the authority grants atelier-antwerp a second key (rotation, step 1)",
          KeyAdded(party="atelier-antwerp", key=new_key.public_key.raw, registry_prev=c.registry_head),
          AUTHORITY, "BE", t)
    c.add("the authority revokes atelier-antwerp's first key (rotation, step 2); it signs with the second from now on",
          KeyRevoked(party="atelier-antwerp", key=key("atelier-antwerp").public_key.raw,
                     reason="Signing device retired", registry_prev=c.registry_head), AUTHORITY, "BE", t + MIN)
    c.keys["atelier-antwerp"] = new_key
    c.add("grower-surat records a 1.510 ct CVD-grown stone from its Surat facility",
          Grown(facility="Surat CVD Works, Unit 2", country="IN", method="CVD"), "grower-surat", "IN", t + HOUR,
          outputs=[Output(id="LGD-IN-SRT-000311", type="stone", mass_mct=1_510)])
    c.add("atelier-antwerp registers a 0.540 ct stone recovered from an estate brooch (no earlier history)",
          Registered(reason="Recovered from an estate brooch, no earlier record", nature="natural"),
          "atelier-antwerp", "BE", t + 2 * HOUR, outputs=[Output(id="REC-BE-000009", type="stone", mass_mct=540)])
    c.add("the Antwerp verification node attests that the 0.31 ct stone comes from BW (its only origin)",
          Verified(node="node-antwerp", countries=("BW",)), "atelier-antwerp", "BE", t + 3 * HOUR,
          cosigners=["node-antwerp"], inputs=[SMALL])
    c.add("atelier-antwerp merges the 0.310 ct stone and the recovered stone into a parcel",
          Merged(loss_mct=0), "atelier-antwerp", "BE", t + 4 * HOUR, inputs=["REC-BE-000009", SMALL],
          consumes=["REC-BE-000009", SMALL], outputs=[Output(id="LOT-BE-MIX-000001", type="lot", mass_mct=850)])
    c.add("atelier-antwerp reports the 1.02 ct stone stolen", Retired(reason="stolen"), "atelier-antwerp", "BE",
          t + DAY, inputs=[BIG])
    c.add("an auditor attests a statement about the import record",
          Attested(subject=imported.record_hash, statement="Rough inspected on arrival; mass matches the KP "
                   "certificate"), "auditor-antwerp", "BE", t + 2 * DAY)
    c.add("lab-antwerp, a signer of the grading record, corrects it",
          Corrected(subject=graded.record_hash, statement="Clarity grade is VS2, not VS1, after re-examination"),
          "lab-antwerp", "BE", t + 3 * DAY)


# --- rendering --------------------------------------------------------------------------------------------------

def _json(value: object) -> object:
    """A decoded canonical value as JSON: bytes as lowercase hex, everything else as is."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json(v) for v in value]
    return value


def render_record(desc: str, record: Record, position: int | None) -> dict[str, object]:
    """One entry of records.json."""
    fields = decode(record.body_bytes)
    assert isinstance(fields, dict)
    return {
        "kind": record.body.kind, "desc": desc, "ledger_position": position,
        "record_b64": base64.b64encode(record.raw).decode("ascii"), "body_hex": record.body_bytes.hex(),
        "body_hash_hex": record.body_hash.hex(), "signed_message_hex": record.signed_message().hex(),
        "record_hash_hex": record.record_hash.hex(),
        "signers": [{"party": s.party, "key_hex": s.key.hex()} for s in record.signatures],
        "fields": _json(fields["fields"]),
    }


def _dump(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


# --- negative vectors -------------------------------------------------------------------------------------------

Change = Callable[[dict[str, Any]], object]


def _parts(record: Record) -> tuple[bytes, list[dict[str, Any]]]:
    """(body bytes, decoded sigs list) of a good record."""
    envelope: Any = decode(record.raw[len(RECORD_TAG):])
    return record.body_bytes, list(envelope["sigs"])


def _wrap(body: object, sigs: object, **extra: object) -> bytes:
    return RECORD_TAG + encode({"body": body, "sigs": sigs, **extra})


def _rebody(record: Record, change: Change) -> bytes:
    """The record with its body decoded, changed and canonically re-encoded (signatures left as they were)."""
    body: Any = decode(record.body_bytes)
    change(body)
    return _wrap(encode(body), _parts(record)[1])


def _splice(record: Record, old: bytes, new: bytes) -> bytes:
    """The record with one byte sequence of its body replaced (to build non-canonical or invalid encodings)."""
    body, sigs = _parts(record)
    assert body.count(old) == 1, old
    return _wrap(body.replace(old, new), sigs)


def _set(key_: str, value: object) -> Change:
    return lambda b: b.__setitem__(key_, value)


def _set_field(key_: str, value: object) -> Change:
    return lambda b: b["fields"].__setitem__(key_, value)


def _negatives(split: Record, graded: Record) -> list[dict[str, object]]:
    """Mutations of two good records (a split: inputs, consumes, outputs; a graded: two signatures)."""
    body, sigs = _parts(split)
    g_body, g_sigs = _parts(graded)
    assert 256 <= len(body) < 65536, "the bin32 mutation below assumes a bin16 body"
    tail = split.raw[len(RECORD_TAG):]
    head = b"\xa4body" + encode(body)  # "body": bin(body), canonical
    sig_part = b"\xa4sigs" + encode(sigs)
    time_ms = struct.pack(">Q", split.body.time_ms)
    out: list[tuple[str, str, str, bytes]] = [
        ("split", "record.tag", "tag of another format version (stonetrail/v2/record)",
         b"stonetrail/v2/record\n" + tail),
        ("split", "record.tag", "no tag: the canonical envelope alone", tail),
        ("split", "record.tag", "tag without its final newline", RECORD_TAG[:-1] + tail),
        ("split", "codec.truncated", "the tag and nothing else", RECORD_TAG),
        ("split", "codec.truncated", "last byte cut off", split.raw[:-1]),
        ("split", "codec.trailing_bytes", "one byte (nil) after the envelope", split.raw + b"\xc0"),
        ("split", "codec.non_canonical", "envelope keys out of order (sigs before body)",
         RECORD_TAG + b"\x82" + sig_part + head),
        ("split", "codec.non_canonical", "body length in a bin32 header where bin16 fits",
         RECORD_TAG + b"\x82\xa4body\xc6" + struct.pack(">I", len(body)) + body + sig_part),
        ("split", "codec.non_canonical", "body: v = 1 as uint8 (cc01) instead of fixint 01",
         _splice(split, b"\xa1v\x01", b"\xa1v\xcc\x01")),
        ("split", "codec.non_canonical", "body: loss_mct 1020 as uint32 (ce) instead of uint16 (cd)",
         _splice(split, b"\xa8loss_mct\xcd\x03\xfc", b"\xa8loss_mct\xce\x00\x00\x03\xfc")),
        ("split", "codec.non_canonical", "body: the key place as str8 (d905) instead of fixstr (a5)",
         _splice(split, b"\xa5place\xa2", b"\xd9\x05place\xa2")),
        ("split", "codec.duplicate_key", "envelope holds the key body twice",
         RECORD_TAG + b"\x83" + head + head + sig_part),
        ("split", "codec.bad_key", "envelope has an integer key", RECORD_TAG + b"\x83" + head + sig_part + b"\x01\x01"),
        ("split", "codec.float", "body: v = 1.0 as float64",
         _splice(split, b"\xa1v\x01", b"\xa1v\xcb" + struct.pack(">d", 1.0))),
        ("split", "codec.ext", "body: time_ms as a msgpack timestamp (ext -1)",
         _splice(split, b"\xa7time_ms\xcf" + time_ms,
                 b"\xa7time_ms\xd6\xff" + struct.pack(">I", split.body.time_ms // 1000))),
        ("split", "codec.malformed", "body: place is not valid UTF-8",
         _splice(split, b"\xa5place\xa2BE", b"\xa5place\xa2\xc3\x28")),
        ("split", "codec.too_deep", "sigs wrapped in 16 one-element arrays (nesting 19 > 16)",
         RECORD_TAG + b"\x82" + head + b"\xa4sigs" + b"\x91" * 16 + encode(sigs)),
        ("split", "record.version", "body v = 2", _rebody(split, _set("v", 2))),
        ("split", "record.version", "body v = true (a bool is not 1)", _rebody(split, _set("v", True))),
        ("split", "record.version", "body v = 2 with a key v1 does not know (version is checked first)",
         _rebody(split, lambda b: b.update(v=2, witness="node-antwerp"))),
        ("split", "record.malformed", "envelope has a third key", _wrap(body, sigs, note="unsigned remark")),
        ("split", "record.malformed", "body is a map, not bin", _wrap(decode(body), sigs)),
        ("split", "record.malformed", "body misses the key place", _rebody(split, lambda b: b.pop("place"))),
        ("split", "record.malformed", "body has an unknown key", _rebody(split, _set("memo", "x"))),
        ("split", "record.malformed", "unknown event kind", _rebody(split, _set("kind", "polished"))),
        ("split", "record.malformed", "fields has a key split does not have", _rebody(split, _set_field("lab", "x"))),
        ("split", "record.malformed", "loss_mct negative", _rebody(split, _set_field("loss_mct", -1))),
        ("split", "record.malformed", "loss_mct is a bool", _rebody(split, _set_field("loss_mct", False))),
        ("split", "record.identifier", "actor id contains a space",
         _rebody(split, _set("actor", "atelier antwerp"))),
        ("split", "record.identifier", "an output id with a Cyrillic a (U+0430) that looks like a Latin a",
         _rebody(split, lambda b: b["outputs"][0].__setitem__("id", "PL-000117-\u0430"))),
        ("split", "record.malformed", "place is lowercase", _rebody(split, _set("place", "be"))),
        ("split", "record.malformed", "time_ms after 9999-12-31T23:59:59.999Z",
         _rebody(split, _set("time_ms", 253_402_300_800_000))),
        ("split", "record.time_range", "time_ms in seconds, not milliseconds (a 2025 time read as January 1970)",
         _rebody(split, _set("time_ms", split.body.time_ms // 1000))),
        ("split", "record.malformed", "outputs not sorted by id",
         _rebody(split, lambda b: b["outputs"].reverse())),
        ("split", "record.malformed", "an output of mass 0",
         _rebody(split, lambda b: b["outputs"][0].__setitem__("mass_mct", 0))),
        ("split", "record.malformed", "an output of unknown type",
         _rebody(split, lambda b: b["outputs"][0].__setitem__("type", "gem"))),
        ("split", "record.malformed", "consumes an item that is not an input", _rebody(split, _set("consumes", [BIG]))),
        ("split", "record.malformed", "an input link of 31 bytes",
         _rebody(split, lambda b: b["inputs"][0].__setitem__(1, b["inputs"][0][1][:31]))),
        ("split", "record.unsigned", "no signature", _wrap(body, [])),
        ("split", "record.malformed", "signature of 63 bytes",
         _wrap(body, [{**sigs[0], "sig": sigs[0]["sig"][:63]}])),
        ("split", "record.malformed", "17 signatures (at most 16)",
         _wrap(body, [{**sigs[0], "party": f"party-{i:02d}"} for i in range(17)])),
        ("graded", "record.malformed", "signatures not sorted by party", _wrap(g_body, g_sigs[::-1])),
        ("graded", "record.malformed", "the same party signs twice", _wrap(g_body, [g_sigs[0], g_sigs[0]])),
        ("graded", "record.text", "clarity holds a bidirectional control (U+202E)",
         _rebody(graded, _set_field("clarity", "VS\u202e1"))),
        ("graded", "record.text", "colour holds a zero-width space (U+200B)",
         _rebody(graded, _set_field("colour", "F\u200b"))),
        ("graded", "record.text", "colour not in NFC (E followed by a combining acute accent)",
         _rebody(graded, _set_field("colour", "E\u0301"))),
        ("graded", "record.malformed", "colour longer than 32 characters",
         _rebody(graded, _set_field("colour", "F" * 33))),
        ("graded", "record.grading_scale", "colour in lower case (the D-to-Z scale is written in capitals)",
         _rebody(graded, _set_field("colour", "f"))),
        ("graded", "record.grading_scale", "a fancy colour of an intensity no lab writes (Fancy Bright Yellow)",
         _rebody(graded, _set_field("colour", "Fancy Bright Yellow"))),
        ("graded", "record.grading_scale", "clarity VS3, not on the FL..I3 scale",
         _rebody(graded, _set_field("clarity", "VS3"))),
    ]
    return [{"base": base, "desc": desc, "want_code": code, "record_b64": base64.b64encode(raw).decode("ascii")}
            for base, code, desc, raw in out]


# --- negative ledger vectors ------------------------------------------------------------------------------------

def _after_ledger() -> _Chain:
    """A chain that has signed the small ledger (whose records are ledger.bin's), ready to continue it."""
    chain = _Chain()
    _ledger(chain)
    return chain


def _negative_appends(size: int) -> list[dict[str, object]]:
    """Rule-breaking continuations of ledger.bin (``size`` records): one per rule a bundle must judge as the full
    audit and the writer do (issue 8: duplicated statements, order, identities)."""
    t = T0 + 200 * DAY
    out: list[tuple[str, str, str, list[Record], int]] = []

    c = _after_ledger()
    graded = next(r for _, r in c.records if r.body.kind == "graded")
    fix = c.add("", Corrected(subject=graded.record_hash, statement="Colour grade is G, not F"), "lab-antwerp",
                "BE", t)
    out.append(("the lab's correction of the grading, appended twice byte for byte", "record.duplicate", BIG,
                [fix, fix], 1))

    c = _after_ledger()
    imported = next(r for _, r in c.records if r.body.kind == "imported")
    auditor = c.enrol("auditor-antwerp", "Scheldt Audit BV", ("auditor",), "BE", t)
    note = c.add("", Attested(subject=imported.record_hash, statement="Rough inspected on arrival"),
                 "auditor-antwerp", "BE", t + MIN)
    out.append(("an auditor's statement about the import, appended twice byte for byte", "record.duplicate", BIG,
                [auditor, note, note], 2))

    c = _after_ledger()
    found = c.add("", Registered(reason="Recovered from an estate brooch", nature="natural"), "atelier-antwerp",
                  "BE", t, outputs=[Output(id="REC-BE-000010", type="stone", mass_mct=600)])
    parcel = c.add("", Merged(loss_mct=0), "atelier-antwerp", "BE", t + MIN, inputs=[SMALL, "REC-BE-000010"],
                   consumes=[SMALL, "REC-BE-000010"],
                   outputs=[Output(id="LOT-BE-MIX-000002", type="lot", mass_mct=910)])
    out.append(("a parcel merged from a stone before that stone is recorded (the merge written first)",
                "custody.unknown_item", "LOT-BE-MIX-000002", [parcel, found], 0))

    c = _after_ledger()
    twin = c.add("", Graded(lab="lab-antwerp", report="2501170042", mass_mct=310, colour="G", clarity="SI1",
                            nature="natural"), "atelier-antwerp", "BE", t, cosigners=["lab-antwerp"], inputs=[SMALL])
    out.append(("the 0.31 ct stone graded with the report number of the 1.02 ct stone, which is not consumed",
                "identity.duplicate_report", SMALL, [twin], 0))

    c = _after_ledger()
    alike = c.add("", Registered(reason="Recovered from a ring", nature="natural"), "atelier-antwerp", "BE", t,
                  outputs=[Output(id="PL-OOO117-a", type="stone", mass_mct=1_020)])
    out.append(("a stone registered under an id read alike with the 1.02 ct stone's (case, O for 0)",
                "item.duplicate_id", "PL-OOO117-a", [alike], 0))

    c = _after_ledger()
    auditor = c.enrol("auditor-antwerp", "Scheldt Audit BV", ("auditor",), "BE", t)
    backdated = c.add("", Attested(subject=imported.record_hash, statement="Rough inspected on arrival"),
                      "auditor-antwerp", "BE", t - HOUR)
    out.append(("an auditor's statement dated an hour before the auditor's key was granted (a backdated record)",
                "sig.before_enrolment", BIG, [auditor, backdated], 1))

    c = _after_ledger()
    early = c.add("", Corrected(subject=graded.record_hash, statement="Colour grade is G, not F"), "lab-antwerp",
                  "BE", graded.body.time_ms - DAY)
    out.append(("the lab's correction of the grading, dated a day before the grading", "chain.time_backwards", BIG,
                [early], 0))

    c = _after_ledger()
    small = c.add("", Graded(lab="lab-antwerp", report="2501170043", mass_mct=310, colour="H", clarity="SI1",
                             nature="natural"), "atelier-antwerp", "BE", t, cosigners=["lab-antwerp"], inputs=[SMALL])
    sale = c.add("", Transferred(to="trader-gaborone", mode="title"), "atelier-antwerp", "BE", t - DAY,
                 cosigners=["trader-gaborone"], inputs=[BIG, SMALL])
    out.append(("both stones sold in one record dated before the 0.31 ct stone's grading (its second input)",
                "chain.time_backwards", SMALL, [small, sale], 1))
    return [{"desc": desc, "want_code": code, "item": item, "position": size + at,
             "records_b64": [base64.b64encode(r.raw).decode("ascii") for r in records]}
            for desc, code, item, records, at in out]


# --- build ------------------------------------------------------------------------------------------------------

def _write_ledger(records: Sequence[Record], trust: Trust) -> tuple[bytes, str]:
    """(ledger.bin as FileStore writes it, the operator's checkpoint of it); fails unless check_ledger, given
    the trust file and the checkpoint, finds nothing."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ledger.bin"
        store = FileStore.create(path, ORIGIN)
        try:
            store.append_batch([r.raw for r in records])
        finally:
            store.close()
        checkpoint = checkpoint_file(path, key("operator"))
        report = check_ledger(path, trust, checkpoint=checkpoint)
        if not report.ok or report.record_count != len(records) or report.checkpoint is None:
            lines = "\n".join(f"  {f.code} @{f.position} {f.item}: {f.reason}" for f in report.findings)
            raise RuntimeError(f"the vector ledger does not audit clean:\n{lines}")
        return path.read_bytes(), checkpoint


def build() -> dict[str, bytes | str]:
    """Every vector file, {file name: contents} (str files are UTF-8 text). Writes nothing but a temporary file.

    Raises:
        RuntimeError: the small ledger does not audit clean, or a kind has no record.
    """
    chain = _Chain()
    _ledger(chain)
    ledger_records = list(chain.records)
    chain.records = []
    _extra(chain, [r for _, r in ledger_records])
    by_kind: dict[str, tuple[str, Record, int | None]] = {}
    for position, (desc, record) in enumerate(ledger_records):
        by_kind.setdefault(record.body.kind, (desc, record, position))
    for desc, record in chain.records:
        by_kind.setdefault(record.body.kind, (desc, record, None))
    if missing := set(EVENT_TYPES) - set(by_kind):
        raise RuntimeError(f"no vector for kinds {sorted(missing)}")
    records = [render_record(*by_kind[kind]) for kind in EVENT_TYPES]

    raws = [r for _, r in ledger_records]
    trust = Trust(operators=(note_verifier_key(ORIGIN, key("operator").public_key),),
                  authorities=(note_verifier_key(AUTHORITY_NAME, key(AUTHORITY).public_key),))
    ledger_bin, checkpoint = _write_ledger(raws, trust)
    negatives = _negatives(by_kind["split"][1], by_kind["graded"][1])
    policy, cosigned = _witnessed(checkpoint)
    return {
        "records.json": _dump(records),
        "ledger.bin": ledger_bin,
        "checkpoint.txt": checkpoint,
        "trust.keys": trust.format(),
        "negative.json": _dump(negatives),
        "negative-ledger.json": _dump(_negative_appends(len(raws))),
        "witness.policy": policy,
        "cosigned-checkpoint.txt": cosigned,
    }


def _witnessed(checkpoint: str) -> tuple[str, str]:
    """The witness policy file and the checkpoint cosigned by two of its three witnesses."""
    names = [f"witness-{i}.example" for i in (1, 2, 3)]
    keys = [cosigner_key(name, key(name).public_key) for name in names]
    policy = ("# C2SP tlog-policy: 2 of these 3 witnesses must cosign a checkpoint.\n"
              + "".join(f"witness w{i} {k.text()} http://127.0.0.1:0/w{i}\n" for i, k in enumerate(keys, 1))
              + "group two-of-three 2 w1 w2 w3\nquorum two-of-three\n")
    text = format_checkpoint(read_unverified_checkpoint(checkpoint))
    lines = [cosign(text, name, key(name), COSIGNED_AT) for name in names[:2]]
    return policy, add_signatures(checkpoint, lines)


def main(argv: Sequence[str]) -> int:
    """Write the vectors into argv[0] (default: this script's folder)."""
    out = Path(argv[0]) if argv else Path(__file__).resolve().parent
    out.mkdir(parents=True, exist_ok=True)
    for name, content in build().items():
        (out / name).write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
