"""Golden vectors (tests/vectors, built by tests/vectors/generate.py from fixed keys).

(a) regenerating them changes no byte; (b) every record parses, re-encodes to the same bytes, has the stated
hashes (recomputed here with hashlib from docs/format.md §3, not with ``ledger.hashing``) and verifies; (c) every
negative vector is refused with its code; (d) ledger.bin audits clean against trust.keys and checkpoint.txt, and
its framing and Merkle root, recomputed here from docs/format.md §8 and RFC 9162, match the checkpoint.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import struct
import zlib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger import Record, Trust, check_ledger
from ledger._codec import decode, encode
from ledger.errors import RecordFormatError
from ledger.events import EVENT_TYPES

VECTORS = Path(__file__).resolve().parent / "vectors"
REGENERATE = "python tests/vectors/generate.py"

# docs/format.md §3, spelled out here so that a change in ledger.hashing cannot hide a change in the vectors.
RECORD_TAG = b"stonetrail/v1/record\n"
TAG_RECORD_BODY = b"stonetrail/v1/record-body\n"
TAG_RECORD_SIG = b"stonetrail/v1/record-signature\n"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("stonetrail_vectors_generate", VECTORS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load(name: str) -> Any:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def _b64(text: str) -> bytes:
    raw = base64.b64decode(text, validate=True)
    assert base64.b64encode(raw).decode("ascii") == text, "base64 must be canonical"
    return raw


RECORDS: list[dict[str, Any]] = _load("records.json")
NEGATIVES: list[dict[str, Any]] = _load("negative.json")


# --- (a) regeneration -------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def built() -> dict[str, bytes | str]:
    result: dict[str, bytes | str] = _generator().build()
    return result


def test_generator_writes_every_file(built: dict[str, bytes | str]) -> None:
    assert sorted(built) == sorted(_generator().FILES)
    assert all((VECTORS / name).is_file() for name in built), f"vector files missing: run {REGENERATE}"


@pytest.mark.parametrize("name", ["records.json", "ledger.bin", "checkpoint.txt", "trust.keys", "negative.json"])
def test_regeneration_changes_no_byte(built: dict[str, bytes | str], name: str) -> None:
    content = built[name]
    want = content.encode("utf-8") if isinstance(content, str) else content
    got = (VECTORS / name).read_bytes()
    if got != want:
        at = next((i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b), min(len(got), len(want)))
        pytest.fail(
            f"tests/vectors/{name} ({len(got)} bytes) differs from what tests/vectors/generate.py builds "
            f"({len(want)} bytes), first at byte {at}. These files pin the v1 formats: a changed byte is a format "
            f"change (or a non-deterministic generator). If the change is intended, update docs/format.md "
            f"(and the version tags, §11, if a signed or hashed byte changed meaning), then run `{REGENERATE}` "
            f"and commit the regenerated files; otherwise find what changed the bytes.")


# --- (b) good records -------------------------------------------------------------------------------------------

def test_one_record_of_every_kind() -> None:
    assert [r["kind"] for r in RECORDS] == list(EVENT_TYPES)


def _fields_json(value: object) -> object:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, dict):
        return {k: _fields_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fields_json(v) for v in value]
    return value


@pytest.mark.parametrize("vector", RECORDS, ids=[r["kind"] for r in RECORDS])
def test_record_vector(vector: dict[str, Any]) -> None:
    raw = _b64(vector["record_b64"])
    body = bytes.fromhex(vector["body_hex"])
    record = Record.from_bytes(raw)
    assert record.raw == raw and record.body_bytes == body and record.body.kind == vector["kind"]
    # re-encoding the decoded record gives the same bytes, at every level
    assert encode(record.body.to_value()) == body
    sigs = [{"party": s.party, "key": s.key, "sig": s.sig} for s in record.signatures]
    assert RECORD_TAG + encode({"body": body, "sigs": sigs}) == raw
    # hashes per docs/format.md §3, with hashlib only
    body_hash = hashlib.sha256(TAG_RECORD_BODY + body).digest()
    message = TAG_RECORD_SIG + body_hash
    assert vector["body_hash_hex"] == body_hash.hex() == record.body_hash.hex()
    assert vector["signed_message_hex"] == message.hex() == record.signed_message().hex()
    assert vector["record_hash_hex"] == hashlib.sha256(b"\x00" + raw).hexdigest() == record.record_hash.hex()
    # every signature verifies, with the library and with cryptography's plain RFC 8032 verify
    assert vector["signers"] == [{"party": s.party, "key_hex": s.key.hex()} for s in record.signatures]
    for sig in record.signatures:
        record.verify_signature(sig)
        Ed25519PublicKey.from_public_bytes(sig.key).verify(sig.sig, message)
    fields = decode(body)
    assert isinstance(fields, dict)
    assert vector["fields"] == _fields_json(fields["fields"])


def test_ledger_records_are_the_frames_at_their_positions() -> None:
    payloads = [payload for _, payload in _frames((VECTORS / "ledger.bin").read_bytes())[1]]
    placed = [r for r in RECORDS if r["ledger_position"] is not None]
    assert placed, "records.json should take the kinds of the small ledger from it"
    for vector in placed:
        assert payloads[vector["ledger_position"]] == _b64(vector["record_b64"]), vector["kind"]


# --- (c) negative vectors ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("vector", NEGATIVES, ids=[f"{v['want_code']}:{v['desc']}" for v in NEGATIVES])
def test_negative_vector_is_refused(vector: dict[str, Any]) -> None:
    raw = _b64(vector["record_b64"])
    with pytest.raises(RecordFormatError) as exc:
        Record.from_bytes(raw)
    assert exc.value.code == vector["want_code"], f"{vector['desc']}: {exc.value}"


def test_negative_catalogue_covers_the_parse_codes() -> None:
    codes = {v["want_code"] for v in NEGATIVES}
    assert codes >= {"record.tag", "record.malformed", "record.version", "record.unsigned", "codec.truncated",
                     "codec.trailing_bytes", "codec.non_canonical", "codec.duplicate_key", "codec.bad_key",
                     "codec.float", "codec.ext", "codec.malformed", "codec.too_deep"}
    good = {_b64(r["record_b64"]) for r in RECORDS}
    assert len({v["record_b64"] for v in NEGATIVES}) == len(NEGATIVES), "every mutation is distinct"
    assert not good & {_b64(v["record_b64"]) for v in NEGATIVES}, "a mutation left a good record unchanged"


# --- (d) the small ledger ---------------------------------------------------------------------------------------

def _frames(data: bytes) -> tuple[str, list[tuple[int, bytes]]]:
    """docs/format.md §8, strictly: (origin, [(offset, payload)]); any damage fails the assertion."""
    magic, version, n = struct.unpack_from(">8sHH", data)
    assert (magic, version) == (b"STNTRAIL", 1)
    (crc,) = struct.unpack_from(">I", data, 12 + n)
    assert crc == zlib.crc32(data[:12 + n])
    frames, pos = [], 16 + n
    while pos < len(data):
        frame_magic, length, payload_crc = struct.unpack_from(">4sII", data, pos)
        payload = data[pos + 12:pos + 12 + length]
        assert frame_magic in (b"STR1", b"STRB") and 1 <= length == len(payload) and zlib.crc32(payload) == payload_crc
        frames.append((pos, payload))
        pos += 12 + length
        last = frame_magic
    assert not frames or last == b"STR1", "a batch (STRB frames) ends with an STR1 frame (format.md §8)"
    return data[12:12 + n].decode("ascii"), frames


def _mth(leaves: list[bytes]) -> bytes:
    """RFC 9162 §2.1.1 Merkle Tree Hash, recursively (the reference definition)."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = 1 << ((len(leaves) - 1).bit_length() - 1)  # largest power of two < n
    return hashlib.sha256(b"\x01" + _mth(leaves[:k]) + _mth(leaves[k:])).digest()


def test_ledger_audits_clean() -> None:
    trust = Trust.parse((VECTORS / "trust.keys").read_text(encoding="utf-8"))
    checkpoint = (VECTORS / "checkpoint.txt").read_text(encoding="utf-8")
    report = check_ledger(VECTORS / "ledger.bin", trust, checkpoint=checkpoint)
    assert report.findings == ()
    assert report.checkpoint is not None and report.checkpoint.tree_size == report.record_count
    assert report.root_hash == report.checkpoint.root_hash


def test_ledger_framing_and_root_match_the_checkpoint() -> None:
    origin, frames = _frames((VECTORS / "ledger.bin").read_bytes())
    lines = (VECTORS / "checkpoint.txt").read_text(encoding="utf-8").split("\n")
    assert lines[0] == origin
    assert lines[1] == str(len(frames))
    root = _mth([hashlib.sha256(b"\x00" + payload).digest() for _, payload in frames])
    assert _b64(lines[2]) == root
    kinds = {Record.from_bytes(payload).body.kind for _, payload in frames}
    assert kinds >= {"enrolled", "mined", "transferred", "exported", "imported", "split", "graded", "inscribed",
                     "set", "unset"}
