"""The writer, a full audit and a proof bundle give the same verdict for every negative vector (issue 8).

Parse-level vectors (negative.json): ``Ledger.append`` cannot even be handed the bytes (``Record.from_bytes``
raises the code), an audit of ledger.bin with the bytes appended reports the code at their position, and a bundle
that carries them as a leaf (with a valid inclusion proof under the operator's checkpoint) reports it too.
Rule-level vectors (negative-ledger.json): validly signed records appended to ledger.bin; ``Ledger.append``
refuses the faulty one with the code, the audit reports it at its position, and so does the bundle of the item
whose provenance holds it.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from ledger import Ledger, Record, Trust, check_ledger, checkpoint_file
from ledger.bundle import build_bundle, check_bundle, read_bundle
from ledger.errors import RecordFormatError, RuleError
from ledger.export import export_bundle
from ledger.merkle import MerkleTree, leaf_hash
from ledger.storage import FileStore, scan

VECTORS = Path(__file__).resolve().parent / "vectors"
TRUST = Trust.parse((VECTORS / "trust.keys").read_text(encoding="utf-8"))
PARSE = json.loads((VECTORS / "negative.json").read_text(encoding="utf-8"))
RULES = json.loads((VECTORS / "negative-ledger.json").read_text(encoding="utf-8"))
BIG = "PL-000117-A"  # the graded stone of ledger.bin


def _operator_key() -> Any:
    spec = importlib.util.spec_from_file_location("stonetrail_vectors_generate", VECTORS / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.key("operator")


OPERATOR = _operator_key()


def _insider(tmp_path: Path, payloads: list[bytes]) -> Path:
    """ledger.bin with ``payloads`` appended as the operator can: any bytes, no rule checked."""
    path = tmp_path / "insider.bin"
    shutil.copy(VECTORS / "ledger.bin", path)
    with FileStore.open(path, writable=True) as store:
        for payload in payloads:
            store.append(payload)
    return path


def _codes_at(findings: Any, position: int) -> set[str]:
    return {f.code for f in findings if f.position == position}


@pytest.mark.parametrize("vector", PARSE, ids=[f"{v['want_code']}:{v['desc']}" for v in PARSE])
def test_a_malformed_record_gets_one_code_from_writer_audit_and_bundle(vector: dict[str, Any], tmp_path: Path
                                                                       ) -> None:
    raw, want = base64.b64decode(vector["record_b64"]), vector["want_code"]
    with pytest.raises(RecordFormatError) as refused:  # the writer's only door: a Record is built from bytes
        Record.from_bytes(raw)
    assert refused.value.code == want
    path = _insider(tmp_path, [raw])
    position = scan(path).frames.__len__() - 1
    assert want in _codes_at(check_ledger(path, TRUST).findings, position)
    note = checkpoint_file(path, OPERATOR)
    bundle = read_bundle(export_bundle(path, BIG, note))
    tree = MerkleTree(leaf_hash(frame.payload) for frame in scan(path).frames)
    smuggled = build_bundle(bundle.item, note, [*((e.index, e.leaf, e.proof) for e in bundle.entries),
                                                (position, raw, tree.inclusion_proof(position))],
                            [(h.item, h.index, h.proof) for h in bundle.heads],
                            [(e.index, e.leaf, e.proof) for e in bundle.identities])
    assert want in _codes_at(check_bundle(smuggled, TRUST).findings, position)


@pytest.mark.parametrize("vector", RULES, ids=[f"{v['want_code']}:{v['desc']}" for v in RULES])
def test_a_rule_breaking_record_gets_one_code_from_writer_audit_and_bundle(vector: dict[str, Any], tmp_path: Path
                                                                          ) -> None:
    records = [Record.from_bytes(base64.b64decode(b)) for b in vector["records_b64"]]
    want, position = vector["want_code"], vector["position"]
    writer = tmp_path / "writer.bin"
    shutil.copy(VECTORS / "ledger.bin", writer)
    with Ledger.open(writer, TRUST.authority_keys) as led:
        start = led.size
        for record in records[:position - start]:
            led.append(record)
        with pytest.raises(RuleError) as refused:
            led.append(records[position - start])
        assert refused.value.code == want
    path = _insider(tmp_path, [r.raw for r in records])
    assert want in _codes_at(check_ledger(path, TRUST).findings, position)
    report = check_bundle(export_bundle(path, vector["item"], checkpoint_file(path, OPERATOR)), TRUST)
    assert want in _codes_at(report.findings, position), report.findings


def test_the_catalogues_cover_the_issue_8_rules() -> None:
    assert {v["want_code"] for v in RULES} >= {"record.duplicate", "custody.unknown_item",
                                               "identity.duplicate_report", "item.duplicate_id"}
    assert {v["want_code"] for v in PARSE} >= {"record.text", "record.identifier"}
