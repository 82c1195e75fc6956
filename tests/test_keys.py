"""ledger.keys and ledger.keyfile: keys, signatures, the Ed25519 edge-case policy (CCTV), key files."""

from __future__ import annotations

import json
import os
import stat
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from ledger.errors import KeyFormatError, SignatureError, StorageError
from ledger.keyfile import load_private_key, save_private_key
from ledger.keys import (
    PrivateKey,
    PublicKey,
    format_note_signer_key,
    note_key_id,
    note_verifier_key,
    parse_note_signer_key,
    verify_signature,
)

VECTORS = Path(__file__).resolve().parents[1].parent / "shared" / "vectors"
CCTV = VECTORS / "cctv-ed25519" / "ed25519vectors.json"
L = 2**252 + 27742317777372353535851937790883648493
SEED = bytes(range(32))


# --- keys, signatures, encodings -------------------------------------------------------------------------


def test_sign_verify_round_trip() -> None:
    key = PrivateKey.generate()
    sig = key.sign(b"stone 1")
    assert len(sig) == 64
    key.public_key.verify(sig, b"stone 1")
    verify_signature(key.public_key, sig, b"stone 1")
    with pytest.raises(SignatureError) as err:
        key.public_key.verify(sig, b"stone 2")
    assert err.value.code == "sig.invalid"


def test_from_seed_is_deterministic_rfc8032_test1() -> None:
    # RFC 8032 §7.1 TEST 1 (empty message).
    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    key = PrivateKey.from_seed(seed)
    assert key.public_key.raw.hex() == "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
    assert key.sign(b"").hex() == (
        "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46b"
        "d25bf5f0595bbe24655141438e7a100b"
    )
    assert key.seed() == seed


@pytest.mark.parametrize(
    ("sig", "code"),
    [
        (b"\x00" * 63, "sig.length"),
        (b"\x00" * 65, "sig.length"),
        ("not bytes", "sig.length"),
    ],
)
def test_signature_length(sig: Any, code: str) -> None:
    with pytest.raises(SignatureError) as err:
        PrivateKey.from_seed(SEED).public_key.verify(sig, b"m")
    assert err.value.code == code


def test_s_not_reduced_is_refused_even_if_s_plus_l_would_verify() -> None:
    key = PrivateKey.from_seed(SEED)
    sig = key.sign(b"m")
    s = int.from_bytes(sig[32:], "little")
    malleated = sig[:32] + (s + L).to_bytes(32, "little")  # same signature mod L
    with pytest.raises(SignatureError) as err:
        key.public_key.verify(malleated, b"m")
    assert err.value.code == "sig.s_not_reduced"


def test_identity_key_forgery_is_refused() -> None:
    """cryptography (OpenSSL) accepts sig = identity || 0 for every message under key = identity."""
    identity = bytes.fromhex("01" + "00" * 31)
    forged = identity + bytes(32)
    raw = ed25519.Ed25519PublicKey.from_public_bytes(identity)
    raw.verify(forged, b"any message at all")  # the forgery the pre-checks exist for
    with pytest.raises(KeyFormatError) as err:
        PublicKey.from_bytes(identity)
    assert err.value.code == "key.small_order"
    # The same R under a good key is refused before cryptography is called.
    with pytest.raises(SignatureError) as serr:
        PrivateKey.from_seed(SEED).public_key.verify(forged, b"m")
    assert serr.value.code == "sig.r_small_order"


@pytest.mark.parametrize(
    ("hex_key", "code"),
    [
        ("01" + "00" * 30 + "80", "key.non_canonical"),  # identity with x = -0
        ("ee" + "ff" * 30 + "7f", "key.non_canonical"),  # identity with y = p + 1
        ("ed" + "ff" * 30 + "ff", "key.non_canonical"),  # y = p
        ("ec" + "ff" * 30 + "7f", "key.small_order"),  # order 2
        ("00" * 32, "key.small_order"),  # order 4
    ],
)
def test_public_key_refusals(hex_key: str, code: str) -> None:
    with pytest.raises(KeyFormatError) as err:
        PublicKey.from_bytes(bytes.fromhex(hex_key))
    assert err.value.code == code


def test_public_key_construction_always_validates() -> None:
    with pytest.raises(KeyFormatError):
        PublicKey(raw=bytes.fromhex("01" + "00" * 31))
    with pytest.raises(KeyFormatError) as err:
        PublicKey.from_bytes(b"\x01" * 31)
    assert err.value.code == "key.length"


def test_public_key_text_round_trip_and_strictness() -> None:
    pk = PrivateKey.from_seed(SEED).public_key
    text = pk.text()
    assert text.startswith("ed25519:")
    assert PublicKey.from_text(text) == pk
    body = text[len("ed25519:") :]
    for bad in [
        "",
        body,
        "ED25519:" + body,
        text + "\n",
        text[:-1],
        "ed25519: " + body,
        text.replace("=", ""),
    ]:
        with pytest.raises(KeyFormatError):
            PublicKey.from_text(bad)
    # Non-canonical base64: change the unused low bits of the last data character.
    last = body[-2]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    tweaked = alphabet[alphabet.index(last) ^ 1]
    with pytest.raises(KeyFormatError):
        PublicKey.from_text("ed25519:" + body[:-2] + tweaked + "=")


def test_reprs_are_short_and_private_key_does_not_leak() -> None:
    key = PrivateKey.from_seed(SEED)
    text = repr(key)
    assert SEED.hex() not in text and "PRIVATE" not in text
    assert key.seed().hex() not in text
    assert len(repr(key.public_key)) < 40


def test_pem_round_trip() -> None:
    key = PrivateKey.from_seed(SEED)
    pem = key.to_pem()
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    again = PrivateKey.from_pem(pem)
    assert again.seed() == SEED
    assert again.public_key == key.public_key


def test_pem_refuses_other_keys_and_garbage() -> None:
    ec_pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(KeyFormatError) as err:
        PrivateKey.from_pem(ec_pem)
    assert err.value.code == "key.not_ed25519"
    encrypted = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pw"),
    )
    for bad in [encrypted, b"", b"garbage", PrivateKey.from_seed(SEED).to_pem()[:-30], b"x" * 100_000]:
        with pytest.raises(KeyFormatError) as err:
            PrivateKey.from_pem(bad)
        assert err.value.code == "key.pem"
    with pytest.raises(KeyFormatError):
        PrivateKey.from_seed(b"\x00" * 31)


def test_note_key_id_and_signer_key_round_trip() -> None:
    key = PrivateKey.from_seed(SEED)
    vkey = note_verifier_key("example.com/log", key.public_key)
    assert vkey.key_id == note_key_id("example.com/log", key.public_key)
    skey = format_note_signer_key("example.com/log", key)
    name, again = parse_note_signer_key(skey)
    assert name == "example.com/log" and again.seed() == SEED
    wrong_id = skey.replace(f"+{vkey.key_id.hex()}+", "+00000000+")
    for bad in [wrong_id, skey.replace("PRIVATE+KEY", "PRIVATE+KEX"), "PRIVATE+KEY+x+00000000", skey + "A"]:
        with pytest.raises(KeyFormatError) as err:
            parse_note_signer_key(bad)
        assert err.value.code == "note.bad_skey"
        assert SEED.hex() not in str(err.value)


@pytest.mark.parametrize(
    "name", ["", "a+b", "a b", "a\u00a0b", "a\u3000b", "a\tb", "a\nb", "a\x00b", "\ud800"]
)
def test_bad_key_names(name: str) -> None:
    with pytest.raises(KeyFormatError):
        note_key_id(name, PrivateKey.from_seed(SEED).public_key)


# --- key files -------------------------------------------------------------------------------------------


def test_keyfile_mode_0600_round_trip_and_no_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "operator.pem"
    key = PrivateKey.from_seed(SEED)
    old_umask = os.umask(0)  # even a permissive umask must not widen the mode
    try:
        save_private_key(path, key)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_private_key(path).seed() == SEED
    with pytest.raises(StorageError) as err:
        save_private_key(path, PrivateKey.generate())
    assert err.value.code == "key.exists"
    assert load_private_key(path).seed() == SEED  # untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["operator.pem"]  # no temporary file left


def test_keyfile_load_errors(tmp_path: Path) -> None:
    with pytest.raises(StorageError) as err:
        load_private_key(tmp_path / "missing.pem")
    assert err.value.code == "key.io"
    bad = tmp_path / "bad.pem"
    bad.write_bytes(b"not a key")
    with pytest.raises(KeyFormatError):
        load_private_key(bad)
    big = tmp_path / "big.pem"
    big.write_bytes(b"-" * 20_000)
    with pytest.raises(KeyFormatError):
        load_private_key(big)
    with pytest.raises(StorageError) as err:
        save_private_key(tmp_path / "no-such-dir" / "k.pem", PrivateKey.generate())
    assert err.value.code == "key.io"


def test_keyfile_does_not_follow_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real.pem"
    save_private_key(real, PrivateKey.from_seed(SEED))
    link = tmp_path / "link.pem"
    link.symlink_to(real)
    with pytest.raises(StorageError):
        load_private_key(link)


# --- CCTV ed25519 edge cases (docs/ed25519-policy.md) -------------------------------------------------------

#: Outcome -> count over the 914 CCTV vectors. Regenerate docs/ed25519-policy.md if this changes.
EXPECTED_COUNTS = {
    "key refused: key.non_canonical": 226,
    "key refused: key.small_order": 300,
    "key refused: key.invalid_point": 360,
    "pre-check refused: sig.r_non_canonical": 12,
    "pre-check refused: sig.r_small_order": 8,
    "pre-check refused: sig.r_invalid_point": 7,
    "rejected by cryptography: sig.invalid": 0,
    "accepted": 1,
}


def _cctv() -> list[dict[str, Any]]:
    if not CCTV.exists():
        pytest.skip(f"shared vectors not found at {CCTV}")
    vectors: list[dict[str, Any]] = json.loads(CCTV.read_text())
    return vectors


def classify(vector: dict[str, Any]) -> str:
    """The verdict of our policy on one vector."""
    try:
        key = PublicKey.from_bytes(bytes.fromhex(vector["key"]))
    except KeyFormatError as exc:
        return f"key refused: {exc.code}"
    try:
        key.verify(bytes.fromhex(vector["sig"]), vector["msg"].encode())
    except SignatureError as exc:
        kind = "rejected by cryptography" if exc.code == "sig.invalid" else "pre-check refused"
        return f"{kind}: {exc.code}"
    return "accepted"


def expected_from_flags(flags: set[str]) -> str:
    """The policy as a function of the CCTV flags alone: first the key, then R, else accept."""
    if "non_canonical_A" in flags:
        return "key refused: key.non_canonical"
    if "low_order_A" in flags:
        return "key refused: key.small_order"
    if "low_order_component_A" in flags:  # mixed order: only a subgroup check can refuse it
        return "key refused: key.invalid_point"
    if "non_canonical_R" in flags:
        return "pre-check refused: sig.r_non_canonical"
    if "low_order_R" in flags:
        return "pre-check refused: sig.r_small_order"
    if "low_order_component_R" in flags:
        return "pre-check refused: sig.r_invalid_point"
    assert not flags, flags
    return "accepted"


def test_cctv_every_vector_classified_by_flags() -> None:
    vectors = _cctv()
    assert len(vectors) == 914
    counts: Counter[str] = Counter()
    for vector in vectors:
        flags = set(vector["flags"] or ())
        got = classify(vector)
        assert got == expected_from_flags(flags), (vector["number"], sorted(flags), got)
        assert classify(vector) == got  # deterministic
        counts[got] += 1
        if flags:
            assert got != "accepted", vector["number"]
    assert {k: v for k, v in EXPECTED_COUNTS.items() if v} == dict(counts)


def test_cctv_policy_is_never_looser_than_cryptography() -> None:
    """Every vector we accept, cryptography alone accepts; cryptography alone accepts 207 that we refuse."""
    loose = 0
    for vector in _cctv():
        raw = ed25519.Ed25519PublicKey.from_public_bytes(bytes.fromhex(vector["key"]))
        try:
            raw.verify(bytes.fromhex(vector["sig"]), vector["msg"].encode())
            raw_ok = True
        except InvalidSignature:
            raw_ok = False
        ours = classify(vector) == "accepted"
        assert raw_ok or not ours, vector["number"]
        loose += raw_ok and not ours
    assert loose == 207


def test_cctv_all_signatures_have_reduced_s() -> None:
    assert all(int.from_bytes(bytes.fromhex(v["sig"])[32:], "little") < L for v in _cctv())


def _strict(vector: dict[str, Any]) -> str:
    """The outcome with every check on R in front of the equation (DESIGN.md §2 as first written, ADR 0005)."""
    from ledger.keys import _SMALL_ORDER, _in_prime_order_subgroup, _is_canonical

    try:
        key = PublicKey.from_bytes(bytes.fromhex(vector["key"]))
    except KeyFormatError as exc:
        return f"key refused: {exc.code}"
    sig, r = bytes.fromhex(vector["sig"]), bytes.fromhex(vector["sig"])[:32]
    for failed, code in ((int.from_bytes(sig[32:], "little") >= L, "sig.s_not_reduced"),
                         (not _is_canonical(r), "sig.r_non_canonical"), (r in _SMALL_ORDER, "sig.r_small_order"),
                         (not _in_prime_order_subgroup(r), "sig.r_invalid_point")):
        if failed:
            return f"pre-check refused: {code}"
    try:
        ed25519.Ed25519PublicKey.from_public_bytes(key.raw).verify(sig, vector["msg"].encode())
    except InvalidSignature:
        return "rejected by cryptography: sig.invalid"
    return "accepted"


def test_cctv_checking_r_after_the_equation_gives_every_verdict_and_code_of_checking_it_first() -> None:
    """docs/adr/0019: the full R check runs only after a failed equation; on all 914 vectors the outcome is the one
    with every check in front (and on every test ledger: the suite's verdicts are unchanged)."""
    for vector in _cctv():
        assert classify(vector) == _strict(vector), vector["number"]
