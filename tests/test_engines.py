"""ledger.engines: the libsodium and the cryptography engine give the same verdict and the same code on every
input — the 914 CCTV vectors, forged signatures, random bytes and every kind of test ledger
(docs/adr/0021-libsodium-engine.md). ``PYTHONPATH=tests pytest -p engine_crosscheck`` checks it on every signature
the whole suite verifies."""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from differential import TRUST as FUZZ_TRUST
from differential import write_ledger
from differential_run import case
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.bindings import (
    crypto_core_ed25519_add,
    crypto_core_ed25519_scalar_reduce,
    crypto_core_ed25519_sub,
    crypto_scalarmult_ed25519_base_noclamp,
    crypto_scalarmult_ed25519_noclamp,
)
from vector_ledgers import TRUST, VECTORS, insider

import ledger.keys
from ledger import Record, Trust, build_demo, check_ledger
from ledger.engines import _COFACTOR_PROBE, LIBSODIUM_COFACTORED, libsodium_equation
from ledger.errors import InputError, KeyFormatError, SignatureError
from ledger.keys import (
    _SMALL_ORDER,
    DEFAULT_ENGINE,
    ENGINES,
    PrivateKey,
    PublicKey,
    current_engine,
    signature_engine,
)
from ledger.storage import scan

CCTV = Path(__file__).resolve().parents[1].parent / "shared" / "vectors" / "cctv-ed25519" / "ed25519vectors.json"
L = 2**252 + 27742317777372353535851937790883648493
P = 2**255 - 19
KEY = PrivateKey.from_seed(bytes(range(32)))
MESSAGE = b"stonetrail engines"
GOOD = KEY.sign(MESSAGE)


def outcome(key: bytes, signature: bytes, message: bytes) -> str:
    """``ok``, or the code of the refusal (key or signature) under the current engine."""
    try:
        PublicKey.from_bytes(key).verify(signature, message)
    except (KeyFormatError, SignatureError) as exc:
        return exc.code
    return "ok"


def each_engine(run: Callable[[], Any]) -> dict[str, Any]:
    """``run()`` under every engine, by engine name."""
    results = {}
    for name in ENGINES:
        with signature_engine(name):
            results[name] = run()
    return results


def same(run: Callable[[], Any]) -> Any:
    """``run()``'s result, after asserting that every engine gives it."""
    results = each_engine(run)
    assert len({repr(r) for r in results.values()}) == 1, results
    return results[ENGINES[0]]


# --- the API -------------------------------------------------------------------------------------------------


def test_engine_names_and_default() -> None:
    assert ENGINES == ("libsodium", "cryptography")
    assert DEFAULT_ENGINE == "libsodium" == current_engine()


def test_signature_engine_nests_and_restores_even_on_error() -> None:
    with signature_engine("cryptography") as name:
        assert name == current_engine() == "cryptography"
        with signature_engine("libsodium"):
            assert current_engine() == "libsodium"
        assert current_engine() == "cryptography"
        with pytest.raises(SignatureError), signature_engine("libsodium"):
            KEY.public_key.verify(GOOD, b"another message")
        assert current_engine() == "cryptography"
    assert current_engine() == DEFAULT_ENGINE


@pytest.mark.parametrize("name", ["openssl", "", "LIBSODIUM", "libsodium ", None, 1, b"libsodium"])
def test_an_unknown_engine_is_a_typed_input_error(name: Any) -> None:
    with pytest.raises(InputError) as err, signature_engine(name):
        pytest.fail("the block must not run")
    assert err.value.code == "input.engine"
    assert current_engine() == DEFAULT_ENGINE


def test_a_new_thread_starts_on_the_default_engine() -> None:
    seen: list[str] = []
    with signature_engine("cryptography"):
        thread = threading.Thread(target=lambda: seen.append(current_engine()))
        thread.start()
        thread.join()
    assert seen == [DEFAULT_ENGINE]


def test_the_chosen_engine_is_the_one_that_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """With libsodium's equation replaced by one that refuses everything, only the libsodium engine refuses."""
    monkeypatch.setattr(ledger.keys, "libsodium_equation", lambda key, sig, msg: False)
    assert each_engine(lambda: outcome(KEY.public_key.raw, GOOD, MESSAGE)) == {
        "libsodium": "sig.invalid", "cryptography": "ok"}


# --- CCTV, forged signatures, random bytes ----------------------------------------------------------------------


def _cctv() -> list[dict[str, Any]]:
    if not CCTV.exists():
        pytest.skip(f"shared vectors not found at {CCTV}")
    vectors: list[dict[str, Any]] = json.loads(CCTV.read_text())
    return vectors


def _cctv_outcomes() -> list[str]:
    return [outcome(bytes.fromhex(v["key"]), bytes.fromhex(v["sig"]), v["msg"].encode()) for v in _cctv()]


def test_cctv_both_engines_give_every_vector_the_same_verdict_and_code() -> None:
    outcomes = same(_cctv_outcomes)
    assert len(outcomes) == 914
    assert Counter(outcomes) == {"key.non_canonical": 226, "key.small_order": 300, "key.invalid_point": 360,
                                 "sig.r_non_canonical": 12, "sig.r_small_order": 8, "sig.r_invalid_point": 7,
                                 "ok": 1}


def _forgeries() -> Iterator[tuple[str, bytes, bytes]]:
    """(what, signature, message) under KEY: every single-bit flip of a good signature, its message changed, S + L,
    R replaced by each small-order point, by a non-canonical encoding, and by R plus each small-order point."""
    for bit in range(512):
        flipped = bytearray(GOOD)
        flipped[bit // 8] ^= 1 << (bit % 8)
        yield f"bit {bit}", bytes(flipped), MESSAGE
    yield "other message", GOOD, MESSAGE + b"!"
    r, s = GOOD[:32], int.from_bytes(GOOD[32:], "little")
    yield "S + L", r + (s + L).to_bytes(32, "little"), MESSAGE
    for point in sorted(_SMALL_ORDER):
        yield f"R = {point.hex()[:8]}", point + GOOD[32:], MESSAGE
        yield f"R + {point.hex()[:8]}", crypto_core_ed25519_add(r, point) + GOOD[32:], MESSAGE
    for y in (P, P + 1, P + 3):  # y >= p: non-canonical
        yield f"R: y = p + {y - P}", y.to_bytes(32, "little") + GOOD[32:], MESSAGE


def test_forged_signatures_get_the_same_code_from_both_engines() -> None:
    key = KEY.public_key.raw
    codes = same(lambda: {what: outcome(key, sig, msg) for what, sig, msg in _forgeries()})
    assert set(codes.values()) == {"ok", "sig.invalid", "sig.s_not_reduced", "sig.r_non_canonical",
                                   "sig.r_small_order", "sig.r_invalid_point"}
    assert codes["R + 01000000"] == "ok"  # plus the identity: R unchanged


def test_the_identity_key_forgery_never_reaches_an_engine() -> None:
    assert same(lambda: outcome(bytes([1]) + bytes(31), bytes([1]) + bytes(63), b"any")) == "key.small_order"


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=64, max_size=64), st.binary(max_size=64))
def test_random_signatures_get_the_same_code_from_both_engines(signature: bytes, message: bytes) -> None:
    same(lambda: outcome(KEY.public_key.raw, signature, message))


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=32, max_size=32), st.integers(0, L - 1))
def test_random_r_with_a_reduced_s_gets_the_same_code_from_both_engines(r: bytes, s: int) -> None:
    """Past the S < L check, so that R's checks and the equation itself are reached."""
    same(lambda: outcome(KEY.public_key.raw, r + s.to_bytes(32, "little"), MESSAGE))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 511), min_size=1, max_size=4), st.binary(max_size=40))
def test_flipped_bits_of_a_good_signature_get_the_same_code_from_both_engines(bits: list[int], message: bytes
                                                                              ) -> None:
    signature = bytearray(KEY.sign(message))
    for bit in bits:
        signature[bit // 8] ^= 1 << (bit % 8)
    same(lambda: outcome(KEY.public_key.raw, bytes(signature), message))


# --- a cofactored libsodium (its development branch) --------------------------------------------------------


def cofactored(key: bytes, signature: bytes, message: bytes) -> bool:
    """The cofactored equation: R - ([S]B - [k]A) has small order (libsodium's development branch, open.c), from
    libsodium's group operations; for signatures past the pre-checks, with S != 0."""
    k = crypto_core_ed25519_scalar_reduce(hashlib.sha512(signature[:32] + key + message).digest())
    expected = crypto_core_ed25519_sub(crypto_scalarmult_ed25519_base_noclamp(signature[32:]),
                                       crypto_scalarmult_ed25519_noclamp(k, key))
    return crypto_core_ed25519_sub(signature[:32], expected) in _SMALL_ORDER


def test_the_probe_tells_a_cofactored_libsodium_from_a_cofactorless_one() -> None:
    """CCTV 336 satisfies the cofactored equation, not the cofactorless one: cryptography refuses it, and the
    linked libsodium gives it the answer it gives all 7 mixed-order-R vectors (which all satisfy the cofactored
    equation), so LIBSODIUM_COFACTORED says which equation it checks."""
    assert cofactored(*_COFACTOR_PROBE)
    with signature_engine("cryptography"):
        assert outcome(*_COFACTOR_PROBE) == "sig.r_invalid_point"
    mixed = [(bytes.fromhex(v["key"]), bytes.fromhex(v["sig"]), v["msg"].encode()) for v in _cctv()
             if set(v["flags"] or ()) == {"low_order_component_R", "low_order_residue"}]
    assert len(mixed) == 7 and all(cofactored(*m) for m in mixed)
    assert {libsodium_equation(*m) for m in mixed} == {LIBSODIUM_COFACTORED}


@pytest.mark.parametrize("guarded", [True, False])
def test_a_cofactored_libsodium_needs_and_gets_the_full_r_check_in_front(monkeypatch: pytest.MonkeyPatch,
                                                                         guarded: bool) -> None:
    """ADR 0019: with a cofactored equation, only R's full point check in front keeps every CCTV outcome."""
    with signature_engine("cryptography"):
        want = _cctv_outcomes()
    monkeypatch.setattr(ledger.keys, "libsodium_equation", cofactored)
    monkeypatch.setattr(ledger.keys, "LIBSODIUM_COFACTORED", guarded)
    with signature_engine("libsodium"):
        got = _cctv_outcomes()
    wrong = Counter((w, g) for w, g in zip(want, got, strict=True) if w != g)
    assert wrong == ({} if guarded else {("sig.r_invalid_point", "ok"): 7})


# --- ledgers: a replay under each engine gives the same findings ---------------------------------------------


def audit(path: Path, trust: Trust) -> Any:
    """The verdict and findings of a full audit under each engine, after asserting they are the same and that the
    audit verified its signatures in this process with the engine chosen here."""
    calls: Counter[str] = Counter()

    def counted(key: bytes, signature: bytes, message: bytes) -> bool:
        calls[current_engine()] += 1
        return real(key, signature, message)

    real = libsodium_equation
    with mock.patch.object(ledger.keys, "libsodium_equation", counted):
        result = same(lambda: (lambda r: (r.verdict, r.findings))(check_ledger(path, trust)))
    assert calls["libsodium"] > 0 and calls["cryptography"] == 0, calls
    return result


def test_the_golden_ledger_audits_the_same() -> None:
    verdict, findings = audit(VECTORS / "ledger.bin", TRUST)
    assert verdict == "valid" and not findings


def test_the_demo_ledger_audits_the_same(tmp_path: Path) -> None:
    build_demo(tmp_path)
    trust = Trust.parse((tmp_path / "trust.keys").read_text(encoding="utf-8"))
    assert audit(tmp_path / "demo.ledger", trust)[0] == "valid"


def test_the_rule_breaking_vector_ledgers_audit_the_same(tmp_path: Path) -> None:
    vectors = json.loads((VECTORS / "negative-ledger.json").read_text(encoding="utf-8"))
    for n, vector in enumerate(vectors):
        path = insider(tmp_path, f"rules-{n}.bin", [base64.b64decode(b) for b in vector["records_b64"]])
        assert vector["want_code"] in {f.code for f in audit(path, TRUST)[1]}


def _with_signature(record: Record, signature: bytes) -> bytes:
    """``record``'s bytes with its first signature replaced (the envelope as docs/format.md §4.1 lays it out)."""
    assert record.raw.count(record.signatures[0].sig) == 1
    return record.raw.replace(record.signatures[0].sig, signature)


def test_a_ledger_of_forged_signatures_audits_the_same(tmp_path: Path) -> None:
    """Every record of ledger.bin again at the end, its first signature forged in one of the ways above."""
    records = [Record.from_bytes(frame.payload) for frame in scan(VECTORS / "ledger.bin").frames]
    forged: list[bytes] = []
    for n, record in enumerate(records):
        good = record.signatures[0].sig
        r, s = good[:32], int.from_bytes(good[32:], "little")
        ways = [bytes([good[0] ^ 1]) + good[1:], good[:40] + bytes([good[40] ^ 1]) + good[41:],
                r + (s + L).to_bytes(32, "little"), sorted(_SMALL_ORDER)[n % 8] + good[32:],
                crypto_core_ed25519_add(r, sorted(_SMALL_ORDER)[3 + n % 5]) + good[32:]]
        forged.append(_with_signature(record, ways[n % len(ways)]))
    codes = {f.code for f in audit(insider(tmp_path, "forged.bin", forged), TRUST)[1]}
    assert {"sig.invalid", "sig.s_not_reduced", "sig.r_small_order", "sig.r_invalid_point"} <= codes


@pytest.mark.parametrize("index", range(12))
def test_the_differential_fuzzers_adversarial_ledgers_audit_the_same(tmp_path: Path, index: int) -> None:
    seq, _, _ = case(11, index)
    path = tmp_path / "fuzzed.bin"
    write_ledger(path, seq)
    audit(path, FUZZ_TRUST)
