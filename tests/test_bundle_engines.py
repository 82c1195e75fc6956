"""A proof bundle's verdict does not depend on the signature engine (docs/adr/0021-libsodium-engine.md): check_bundle
and verify_bundle check every Ed25519 signature through ``engine=`` (None: the current one, libsodium by default),
and every engine gives the same report — findings, codes, positions, provenance — on the vectors' bundles, on
the bundles of the rule-breaking vectors and on bundles with a forged signature."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_verdicts_agree import OPERATOR, RULES, VECTORS, _insider

import ledger.keys
from ledger import Record, Trust, checkpoint_file
from ledger.bundle import build_bundle, check_bundle, read_bundle, verify_bundle
from ledger.engines import DEFAULT_ENGINE, ENGINES, signature_engine
from ledger.errors import ArgumentError, InputError, StoneTrailError
from ledger.export import export_bundle

TRUST = Trust.parse((VECTORS / "trust.keys").read_text(encoding="utf-8"))
ITEMS = ("PL-000117-A", "PL-000117-B", "ART-RING-0042", "RGH-BW-JWN-000117")


def _report(data: bytes, engine: str | None) -> str:
    return json.dumps(check_bundle(data, TRUST, engine=engine).to_json(), sort_keys=True)


def _same_under_every_engine(data: bytes) -> dict[str, Any]:
    """check_bundle's report, after asserting each engine (and the default) gives it."""
    reports = {name: _report(data, name) for name in (*ENGINES, None)}
    assert len(set(reports.values())) == 1, reports
    found: dict[str, Any] = json.loads(reports[None])
    return found


@pytest.fixture(scope="module")
def vector_bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    path = tmp_path_factory.mktemp("vectors") / "ledger.bin"
    shutil.copy(VECTORS / "ledger.bin", path)
    note = checkpoint_file(path, OPERATOR)
    return {item: export_bundle(path, item, note) for item in ITEMS}


def test_the_vectors_bundles_verify_alike_under_every_engine(vector_bundles: dict[str, bytes]) -> None:
    for item, data in vector_bundles.items():
        report = _same_under_every_engine(data)
        assert report["valid"] and report["item"] == item
        provenances = {json.dumps(verify_bundle(data, TRUST, engine=name).to_json(), sort_keys=True)
                       for name in ENGINES}
        assert len(provenances) == 1


@pytest.mark.parametrize("vector", RULES, ids=[f"{v['want_code']}:{v['desc']}" for v in RULES])
def test_a_rule_breaking_bundle_gets_the_same_findings_under_every_engine(vector: dict[str, Any], tmp_path: Path
                                                                         ) -> None:
    path = _insider(tmp_path, [base64.b64decode(b) for b in vector["records_b64"]])
    report = _same_under_every_engine(export_bundle(path, vector["item"], checkpoint_file(path, OPERATOR)))
    assert vector["want_code"] in {f["code"] for f in report["findings"] if f["position"] == vector["position"]}


def _forged(data: bytes, flip: Callable[[bytes], bytes]) -> bytes:
    """``data`` with the first signature of its first record changed by ``flip`` (the leaf's inclusion proof is
    then wrong too: both are findings)."""
    bundle = read_bundle(data)
    first = bundle.entries[0]
    raw = Record.from_bytes(first.leaf).raw
    sig = Record.from_bytes(first.leaf).signatures[0].sig
    leaf = raw.replace(sig, flip(sig))
    return build_bundle(bundle.item, bundle.checkpoint,
                        [(first.index, leaf, first.proof), *((e.index, e.leaf, e.proof) for e in bundle.entries[1:])],
                        [(h.item, h.index, h.proof) for h in bundle.heads],
                        [(e.index, e.leaf, e.proof) for e in bundle.identities])


@pytest.mark.parametrize(("flip", "code"), [
    (lambda sig: sig[:40] + bytes([sig[40] ^ 1]) + sig[41:], "sig.invalid"),  # S changed, still reduced
    (lambda sig: bytes([sig[0] ^ 4]) + sig[1:], None),  # R changed: r_non_canonical, r_invalid_point or invalid
])
def test_a_forged_signature_gets_the_same_code_under_every_engine(vector_bundles: dict[str, bytes],
                                                                   flip: Callable[[bytes], bytes], code: str | None
                                                                   ) -> None:
    data = _forged(vector_bundles[ITEMS[0]], flip)
    report = _same_under_every_engine(data)
    codes = {f["code"] for f in report["findings"]}
    assert not report["valid"] and any(c.startswith("sig.") for c in codes) and (code is None or code in codes)
    raised = set()
    for name in ENGINES:
        with pytest.raises(StoneTrailError) as refused:
            verify_bundle(data, TRUST, engine=name)
        raised.add((type(refused.value), refused.value.code))
    assert len(raised) == 1, raised


def test_the_engine_named_is_the_one_that_checks(vector_bundles: dict[str, bytes],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    equation = ledger.keys.libsodium_equation

    def spy(*args: bytes) -> bool:
        calls.append("libsodium")
        return equation(*args)

    monkeypatch.setattr(ledger.keys, "libsodium_equation", spy)
    data = vector_bundles[ITEMS[0]]
    assert check_bundle(data, TRUST, engine="cryptography").ok and not calls
    assert check_bundle(data, TRUST).ok and calls and DEFAULT_ENGINE == "libsodium"
    calls.clear()
    with signature_engine("cryptography"):  # engine=None keeps the caller's choice
        verify_bundle(data, TRUST)
    assert not calls
    verify_bundle(data, TRUST, engine="libsodium")
    assert calls


def test_an_unknown_engine_is_refused_before_the_bundle_is_read() -> None:
    for call in (check_bundle, verify_bundle):
        with pytest.raises(InputError) as refused:
            call(b"not a bundle", TRUST, engine="openssl")
        assert refused.value.code == "input.engine"
        with pytest.raises(ArgumentError) as mistyped:
            call(b"not a bundle", TRUST, engine=1)  # type: ignore[arg-type]
        assert mistyped.value.code == "input.type"
