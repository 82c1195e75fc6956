"""A real Sigstore Rekor v2 entry: its signed checkpoint opens, and its RFC 9162 inclusion proof verifies
against the size and root of that signed checkpoint (index from the entry, never from the proof)."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from ledger import merkle
from ledger.checkpoint import open_checkpoint
from ledger.errors import ProofError, StoneTrailError
from ledger.hashing import Digest
from ledger.keys import NoteVerifierKey

VECTORS = Path(__file__).resolve().parents[1].parent / "shared" / "vectors"
BUNDLE = VECTORS / "sigstore-rekor-v2" / "a.dsse.staging-rekor-v2.txt.sigstore.json"
REKOR_VKEY = "log2025-alpha3.rekor.sigstage.dev+d3d3a70c+AZQ93VXPMmj9uZj7U/7CefQ9yy8RgYFv6mKzOseipjqp"
ORIGIN = "log2025-alpha3.rekor.sigstage.dev"


@pytest.fixture(scope="module")
def entry() -> dict[str, Any]:
    if not BUNDLE.exists():
        pytest.skip(f"shared vectors not found at {BUNDLE}")
    tlog_entry: dict[str, Any] = json.loads(BUNDLE.read_text())["verificationMaterial"]["tlogEntries"][0]
    return tlog_entry


def _verify(entry: dict[str, Any], envelope: str, proof: list[Digest]) -> None:
    cp = open_checkpoint(envelope, [NoteVerifierKey.parse(REKOR_VKEY)], origin=ORIGIN)
    leaf = merkle.leaf_hash(base64.b64decode(entry["canonicalizedBody"], validate=True))
    merkle.verify_inclusion(leaf, int(entry["logIndex"]), cp.tree_size, proof, cp.root_hash)


def _proof(entry: dict[str, Any]) -> list[Digest]:
    return [Digest.from_b64(h) for h in entry["inclusionProof"]["hashes"]]


def test_rekor_checkpoint_and_inclusion_verify(entry: dict[str, Any]) -> None:
    envelope = entry["inclusionProof"]["checkpoint"]["envelope"]
    cp = open_checkpoint(envelope, [NoteVerifierKey.parse(REKOR_VKEY)])  # 3 witness lines ignored
    assert cp.origin == ORIGIN
    assert cp.tree_size == 4026479 == int(entry["inclusionProof"]["treeSize"])
    assert cp.root_hash.b64() == entry["inclusionProof"]["rootHash"]
    assert sum(line.startswith("\u2014 ") for line in envelope.split("\n")) == 4  # log + 3 witnesses
    _verify(entry, envelope, _proof(entry))


@pytest.mark.parametrize("position", [0, 6, 12])
def test_rekor_altered_proof_hash_fails(entry: dict[str, Any], position: int) -> None:
    proof = _proof(entry)
    proof[position] = Digest(bytes([proof[position][0] ^ 1]) + proof[position][1:])
    with pytest.raises(ProofError):
        _verify(entry, entry["inclusionProof"]["checkpoint"]["envelope"], proof)


def test_rekor_wrong_index_fails(entry: dict[str, Any]) -> None:
    entry = dict(entry, logIndex=str(int(entry["logIndex"]) - 1))
    with pytest.raises(ProofError):
        _verify(entry, entry["inclusionProof"]["checkpoint"]["envelope"], _proof(entry))


def test_rekor_flipped_checkpoint_byte_fails(entry: dict[str, Any]) -> None:
    envelope: bytes = entry["inclusionProof"]["checkpoint"]["envelope"].encode()
    signed_part = envelope.index(b"\n\xe2\x80\x94 witness")  # the log's own signature ends here
    for i in range(signed_part):
        mutated = bytearray(envelope)
        mutated[i] ^= 0x01
        with pytest.raises(StoneTrailError):
            cp = open_checkpoint(bytes(mutated), [NoteVerifierKey.parse(REKOR_VKEY)], origin=ORIGIN)
            leaf = merkle.leaf_hash(base64.b64decode(entry["canonicalizedBody"]))
            merkle.verify_inclusion(leaf, int(entry["logIndex"]), cp.tree_size, _proof(entry), cp.root_hash)
