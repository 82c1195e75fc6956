"""An export checks the bundle it built before it hands it out (issue 10, Build 3): the index is a cache, so every
proof, leaf and record it supplies is checked against the signed checkpoint with the verifier's own checks
(ledger.bundle.check_bundle_proofs). A bundle from the index that fails is never handed out: the export reads the
log instead and hands out the log's bundle, checked in turn; one that fails there too is refused
(``export.self_check``) and nothing is written."""

from __future__ import annotations

import random
import shutil
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import pytest
from click.testing import CliRunner

from ledger import Ledger, Trust, check_bundle, export_bundle, export_bundles
from ledger._bundle_format import _encode
from ledger.bundle import Bundle, check_bundle_proofs, read_bundle
from ledger.checkpoint import read_unverified_checkpoint
from ledger.export import SelfCheckError
from ledger.index.db import index_path
from ledger.index.indexed import LedgerIndex
from ledger.index.reading import indexed_log
from ledger.record import Record
from stonetrail_cli.main import main

STONE = "R-00001-A"
T = TypeVar("T")


@pytest.fixture
def ledger(demo: Path, tmp_path: Path) -> Path:
    """A copy of the demo ledger with its index (built by a writer's open)."""
    path = tmp_path / "demo.ledger"
    shutil.copy(demo / "demo.ledger", path)
    with Ledger.open(path, Trust.parse((demo / "trust.keys").read_text()).authority_keys):
        pass
    assert index_path(path).exists()
    return path


def _note(demo: Path) -> str:
    return (demo / "checkpoint.txt").read_text()


def _flip(raw: bytes, at: int = 0) -> bytes:
    return raw[:at] + bytes([raw[at] ^ 0x01]) + raw[at + 1:]


def _scope_position(path: Path, note_size: int) -> int:
    """A position of a record of STONE's provenance that is the last record of no item (so only its proof, never
    the index's check of an item's head, meets a fault there)."""
    log = indexed_log(path, note_size)
    assert log is not None
    with log:
        heads = log.commitments.heads
        lasts = {positions[-1] for positions in (heads.index[item] for item in heads.index)}
        return next(p for p in heads.index[STONE] if p not in lasts)


def test_the_untouched_export_passes_its_self_check_and_verifies(demo: Path, ledger: Path) -> None:
    trust = Trust.parse((demo / "trust.keys").read_text())
    data = export_bundle(ledger, STONE, _note(demo), trust=trust)
    assert check_bundle_proofs(read_bundle(data)) == ()
    assert check_bundle(data, trust).ok


def _refused(demo: Path, ledger: Path, tmp_path: Path) -> SelfCheckError:
    """Export STONE through the library and the CLI: both refuse with ``export.self_check``; the CLI exits 1 and
    writes no file. Returns the library's error."""
    with pytest.raises(SelfCheckError) as refused:
        export_bundles(ledger, [STONE], _note(demo))
    assert refused.value.code == "export.self_check" and refused.value.item == STONE
    out = tmp_path / "out.stproof"
    result = CliRunner().invoke(main, ["proof", "export", str(ledger), STONE, "-o", str(out), "--checkpoint",
                                       str(demo / "checkpoint.txt")])
    assert result.exit_code == 1, result.output
    assert "[export.self_check]" in result.output and "stonetrail verify" in result.output
    assert not out.exists()
    return refused.value


def _log_bundle(demo: Path, tmp_path: Path) -> bytes:
    """STONE's bundle from a copy of the demo ledger without an index (the log's own answer)."""
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(demo / "demo.ledger", alone / "demo.ledger")
    return export_bundle(alone / "demo.ledger", STONE, _note(demo))


def _from_the_log(demo: Path, ledger: Path, tmp_path: Path, want: bytes) -> None:
    """Export STONE through the library and the CLI: the index's bundle fails its own check, so both give the
    log's bundle ``want`` (which verifies), the CLI with exit 0."""
    got = export_bundles(ledger, [STONE], _note(demo))[STONE]
    assert got == want and check_bundle(got, Trust.parse((demo / "trust.keys").read_text())).ok
    out = tmp_path / "out.stproof"
    result = CliRunner().invoke(main, ["proof", "export", str(ledger), STONE, "-o", str(out), "--checkpoint",
                                       str(demo / "checkpoint.txt")])
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == want


def _index_refuses(demo: Path, ledger: Path) -> SelfCheckError:
    """The index's own bundle of STONE (no log to fall back on: :func:`ledger.export._from_index`) fails its
    self-check; returns that error."""
    from ledger.export import _from_index

    log = indexed_log(ledger, _tree_size(demo))
    assert log is not None
    with log, pytest.raises(Exception) as failed:
        _from_index(log, [STONE], _note(demo))
    cause = failed.value.__cause__
    assert isinstance(cause, SelfCheckError) and cause.code == "export.self_check", failed.value
    return cause


def test_a_wrong_inclusion_proof_from_the_index_is_never_handed_out(demo: Path, ledger: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    want = _log_bundle(demo, tmp_path)
    from ledger.index import reading

    position = _scope_position(ledger, _tree_size(demo))
    proof = reading._FileTree.inclusion_proof

    def wrong(self: reading._FileTree, index: int, size: int | None = None) -> list[bytes]:
        hashes = proof(self, index, size)
        return [_flip(hashes[0]), *hashes[1:]] if index == position else hashes

    monkeypatch.setattr(reading._FileTree, "inclusion_proof", wrong)
    error = _index_refuses(demo, ledger)
    _from_the_log(demo, ledger, tmp_path, want)
    assert (error.findings[0].code, error.findings[0].position) == ("proof.root_mismatch", position)


def test_wrong_record_bytes_from_the_index_are_never_handed_out(demo: Path, ledger: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The index's frame of a record gives other bytes (here: the record with one signature byte changed, which
    decodes and names the same items) and its leaf hash check is passed by: the bundle's leaf is not the log's."""
    want = _log_bundle(demo, tmp_path)
    position = _scope_position(ledger, _tree_size(demo))
    payload = LedgerIndex.payload

    def wrong(self: LedgerIndex, at: int) -> bytes:
        raw = payload(self, at)
        if at != position:
            return raw
        signature = Record.from_bytes(raw).signatures[0].sig
        return _flip(raw, raw.index(signature))

    monkeypatch.setattr(LedgerIndex, "payload", wrong)
    error = _index_refuses(demo, ledger)
    _from_the_log(demo, ledger, tmp_path, want)
    assert (error.findings[0].code, error.findings[0].position) == ("proof.root_mismatch", position)


def test_a_wrong_item_head_proof_from_the_index_is_never_handed_out(demo: Path, ledger: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    want = _log_bundle(demo, tmp_path)
    from ledger.heads import HeadProof
    from ledger.index import reading

    proof = reading._Heads.proof

    def wrong(self: reading._Heads, item: str) -> HeadProof:
        right = proof(self, item)
        return HeadProof(right.index, (_flip(right.proof[0]), *right.proof[1:]))

    monkeypatch.setattr(reading._Heads, "proof", wrong)
    error = _index_refuses(demo, ledger)
    _from_the_log(demo, ledger, tmp_path, want)
    assert error.findings[0].code == "bundle.head_mismatch"


def test_a_wrong_identity_proof_from_the_index_is_never_handed_out(demo: Path, ledger: Path, tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    want = _log_bundle(demo, tmp_path)
    from ledger.index import reading

    proofs = reading._Identities.proofs

    def wrong(self: reading._Identities, identities: object) -> list[tuple[int, bytes, tuple[bytes, ...]]]:
        (rank, leaf, proof), *rest = proofs(self, identities)  # type: ignore[arg-type]
        return [(rank, leaf, (_flip(proof[0]), *proof[1:])), *rest]

    monkeypatch.setattr(reading._Identities, "proofs", wrong)
    error = _index_refuses(demo, ledger)
    _from_the_log(demo, ledger, tmp_path, want)
    assert error.findings[0].code == "proof.root_mismatch" and error.findings[0].reason.startswith("identity leaf")


def test_bytes_that_do_not_read_back_as_built_are_refused(demo: Path, ledger: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from ledger import _bundle_format

    read = _bundle_format.read_bundle

    def dropping(data: bytes) -> Bundle:  # an encoder that loses the last record on the way
        whole = read(data)
        return Bundle(item=whole.item, checkpoint=whole.checkpoint, entries=whole.entries[:-1], heads=whole.heads,
                      identities=whole.identities)

    monkeypatch.setattr(_bundle_format, "read_bundle", dropping)
    error = _refused(demo, ledger, tmp_path)
    assert error.findings[0].code == "bundle.read_back"


def _tree_size(demo: Path) -> int:
    return read_unverified_checkpoint(_note(demo)).tree_size


# --- check_bundle_proofs: the verifier's own proof checks --------------------------------------------------------

def _mutations(bundle: Bundle, rng: random.Random) -> list[tuple[str, Bundle]]:
    """(what, bundle) with one proof hash or leaf byte flipped: of a record, a head proof, an identity proof."""
    e, h, i = (rng.randrange(len(part)) for part in (bundle.entries, bundle.heads, bundle.identities))
    entry, head, identity = bundle.entries[e], bundle.heads[h], bundle.identities[i]

    def wrong(proof: tuple[bytes, ...]) -> tuple[bytes, ...]:
        at = rng.randrange(len(proof))
        return (*proof[:at], _flip(proof[at], rng.randrange(32)), *proof[at + 1:])

    def put(part: tuple[T, ...], at: int, value: T) -> tuple[T, ...]:
        return (*part[:at], value, *part[at + 1:])

    return [
        ("record proof", replace(bundle, entries=put(bundle.entries, e, replace(entry, proof=wrong(entry.proof))))),
        ("record bytes", replace(bundle, entries=put(bundle.entries, e, replace(entry, leaf=_flip(entry.leaf, 40))))),
        ("head proof", replace(bundle, heads=put(bundle.heads, h, replace(head, proof=wrong(head.proof))))),
        ("identity proof", replace(bundle, identities=put(bundle.identities, i,
                                                          replace(identity, proof=wrong(identity.proof))))),
    ]


def test_every_mutated_proof_is_a_finding_the_verifier_also_reports(demo: Path) -> None:
    trust = Trust.parse((demo / "trust.keys").read_text())
    rng = random.Random(10)
    for path in sorted((demo / "proofs").glob("*.stproof"))[:6]:
        bundle = read_bundle(path.read_bytes())
        assert check_bundle_proofs(bundle) == ()
        for what, wrong in _mutations(bundle, rng):
            found = check_bundle_proofs(wrong)
            assert found, (path.name, what)
            data = _encode(wrong.item, wrong.checkpoint, [(e.index, e.leaf, e.proof) for e in wrong.entries],
                           [(h.item, h.index, h.proof) for h in wrong.heads],
                           [(x.index, x.leaf, x.proof) for x in wrong.identities])[0]
            reported = {(f.code, f.position) for f in check_bundle(data, trust).findings}
            assert (found[0].code, found[0].position) in reported, (path.name, what)
