"""Append-only over time (DESIGN.md §1.4): consistency proofs between signed checkpoints, and fork evidence.

Good proofs for every size pair up to 64 verify; tampered proofs, wrong sizes and rollbacks are refused by
code; a split view and a chain fork each yield evidence that verifies in a directory holding only the evidence
and the trust file; forged evidence proves nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st

from ledger import Ledger, Record, Transferred, Trust, checkpoint_file, note_verifier_key
from ledger.checkpoint import Checkpoint, read_unverified_checkpoint, sign_checkpoint
from ledger.commitments import Commitments
from ledger.consistency import (
    EXTENDS,
    NOTHING_TO_COMPARE,
    SAME_TREE,
    ConsistencyProof,
    format_consistency_proof,
    parse_consistency_proof,
    verify_checkpoint_consistency,
)
from ledger.errors import StoneTrailError
from ledger.evidence import (
    EVIDENCE_TAG,
    ChainFork,
    ChainForkClaim,
    IncludedRecord,
    LeafProof,
    SplitView,
    SplitViewClaim,
    format_evidence,
    parse_evidence,
    verify_evidence,
)
from ledger.hashing import Digest
from ledger.merkle import EMPTY_ROOT, MerkleTree, verify_consistency
from ledger.monitor import consistency_proof_for, fork_evidence, split_view_evidence
from ledger.registry import format_registry_extension
from ledger.storage import FileStore
from stonetrail_cli.main import main
from world import ORIGIN, World, envelope, key

OPERATOR = key("operator")
TRUST = Trust(operators=(note_verifier_key(ORIGIN, OPERATOR.public_key),),
              authorities=(note_verifier_key("authority", key("authority").public_key),))
N = 64


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def code_of(fn: Callable[[], object]) -> str:
    with pytest.raises(StoneTrailError) as info:
        fn()
    return info.value.code


@dataclass(frozen=True)
class Grown:
    """A ledger file of N records and the operator's checkpoint at every size 0..N."""

    path: Path
    records: list[Record]
    notes: dict[int, str]
    tree: MerkleTree


def _grow(path: Path, w: World, records: list[Record]) -> dict[int, str]:
    notes = {}
    with Ledger.create(path, w.origin, {w.keys["authority"].public_key.raw}) as led:
        notes[0] = led.checkpoint(OPERATOR)
        for record in records:
            led.append(record)
            notes[led.size] = led.checkpoint(OPERATOR)
    return notes


def _stones(w: World, count: int, prefix: str = "S") -> list[Record]:
    out = []
    for i in range(count):
        record = w.mine(f"{prefix}{i}")
        assert w.add(record) == []
        out.append(record)
    return out


@pytest.fixture(scope="module")
def grown(tmp_path_factory: pytest.TempPathFactory) -> Grown:
    w = World()
    w.enrol_all()
    records = [*w.records, *_stones(w, N - len(w.records))]
    path = tmp_path_factory.mktemp("grown") / "a.ledger"
    notes = _grow(path, w, records)
    return Grown(path, records, notes, MerkleTree(r.record_hash for r in records))


def proof(g: Grown, m: int, n: int) -> ConsistencyProof:
    return ConsistencyProof(old_size=m, new_size=n, hashes=tuple(g.tree.consistency_proof(m, n)) if m else ())


# --- good proofs ------------------------------------------------------------------------------------------------

def test_every_size_pair_verifies_at_the_merkle_level(grown: Grown) -> None:
    t = grown.tree
    for n in range(1, N + 1):
        for m in range(1, n + 1):
            verify_consistency(m, n, t.root_at(m), t.root_at(n), t.consistency_proof(m, n))


def test_every_size_pair_verifies_between_signed_checkpoints(grown: Grown) -> None:
    for n in range(N + 1):
        for m in range(n + 1):  # size 0 included: see test_from_size_zero_is_trivial_at_the_checkpoint_level
            text = format_consistency_proof(proof(grown, m, n))
            result = verify_checkpoint_consistency(grown.notes[m], grown.notes[n], text, TRUST)
            assert (result.old.tree_size, result.new.tree_size) == (m, n)
            assert result.verdict == (NOTHING_TO_COMPARE if m == 0 else SAME_TREE if m == n else EXTENDS)


@pytest.mark.parametrize(("m", "n"), [(1, 1), (1, 64), (5, 6), (7, 8), (8, 64), (13, 40), (63, 64), (64, 64)])
def test_builder_from_the_file_matches_and_verifies(grown: Grown, m: int, n: int) -> None:
    built = consistency_proof_for(grown.path, grown.notes[m], grown.notes[n], trust=TRUST)
    assert built == proof(grown, m, n)
    verify_checkpoint_consistency(grown.notes[m], grown.notes[n], built, TRUST)


def test_builder_defaults_to_the_whole_file(grown: Grown) -> None:
    assert consistency_proof_for(grown.path, grown.notes[9]) == proof(grown, 9, N)


def test_from_size_zero_is_trivial_at_the_checkpoint_level(grown: Grown) -> None:
    # the core verifier refuses size 0 (DESIGN.md §2); a size-0 checkpoint is a prefix of every tree
    assert code_of(lambda: verify_consistency(0, 5, EMPTY_ROOT, grown.tree.root_at(5), [])) == "proof.size"
    for n in (0, 1, 17, N):
        verify_checkpoint_consistency(grown.notes[0], grown.notes[n], proof(grown, 0, n), TRUST)
    assert consistency_proof_for(grown.path, grown.notes[0], grown.notes[7]).hashes == ()
    extra = ConsistencyProof(old_size=0, new_size=7, hashes=(grown.tree.root_at(7),))
    assert code_of(lambda: verify_checkpoint_consistency(grown.notes[0], grown.notes[7], extra, TRUST)) \
        == "proof.wrong_length"


def _consistency(tmp_path: Path, old: str, new: str, hashes: tuple[Digest, ...], *flags: str) -> Result:
    """``stonetrail consistency`` of two notes with a proof of ``hashes`` between their sizes."""
    sizes = [read_unverified_checkpoint(n).tree_size for n in (old, new)]
    (tmp_path / "old.txt").write_text(old)
    (tmp_path / "new.txt").write_text(new)
    (tmp_path / "p.txt").write_text(format_consistency_proof(ConsistencyProof(old_size=sizes[0], new_size=sizes[1],
                                                                              hashes=hashes)))
    (tmp_path / "trust.keys").write_text(TRUST.format())
    return run("consistency", tmp_path / "old.txt", tmp_path / "new.txt", "--proof", tmp_path / "p.txt",
               "--trust", tmp_path / "trust.keys", *flags)


def test_without_a_proof_an_auditor_is_shown_the_check_that_needs_none(grown: Grown, tmp_path: Path) -> None:
    """A new user's review: an auditor holding the ledger has no operator key to make a proof, and nothing said
    that verify checks both checkpoints against the file; the command it names says valid for them."""
    _consistency(tmp_path, grown.notes[9], grown.notes[40], proof(grown, 9, 40).hashes)
    told = run("consistency", tmp_path / "old.txt", tmp_path / "new.txt", "--trust", tmp_path / "trust.keys")
    assert told.exit_code == 2 and "[usage]" in told.output
    assert "'stonetrail verify LEDGER --trust TRUST --checkpoint OLD --checkpoint NEW'" in told.output
    (tmp_path / "later.txt").write_text(grown.notes[N])
    both = run("verify", grown.path, "--trust", tmp_path / "trust.keys", "--checkpoint", tmp_path / "old.txt",
               "--checkpoint", tmp_path / "later.txt")
    assert both.exit_code == 0, both.output


def test_from_size_zero_nothing_is_compared_and_nothing_is_called_consistent(grown: Grown, tmp_path: Path) -> None:
    """The reviewer's case: a size-0 checkpoint and a size-7 checkpoint with an arbitrary signed root. Accepted
    (the empty tree is a prefix of every tree), but the verdict says that nothing was compared."""
    arbitrary = _sign(replace(read_unverified_checkpoint(grown.notes[7]), root_hash=Digest(bytes(range(32)))))
    assert verify_checkpoint_consistency(grown.notes[0], arbitrary, proof(grown, 0, 7), TRUST).verdict \
        == NOTHING_TO_COMPARE
    text = _consistency(tmp_path, grown.notes[0], arbitrary, ())
    assert text.exit_code == 0, text.output
    assert text.output.startswith("nothing to compare:") and "consistent" not in text.output
    assert "the old checkpoint has tree size 0" in text.output and "validly signed" in text.output
    data = json.loads(_consistency(tmp_path, grown.notes[0], arbitrary, (), "--json").output)
    assert data["verdict"] == "nothing_to_compare" and (data["old_tree_size"], data["new_tree_size"]) == (0, 7)
    assert "consistent" not in data["summary"]


def test_every_verdict_says_what_was_checked(grown: Grown, tmp_path: Path) -> None:
    same = _consistency(tmp_path, grown.notes[9], grown.notes[9], ())
    assert same.exit_code == 0 and same.output.startswith("consistent (same tree):"), same.output
    assert "same tree of 9 records (equal root hashes" in same.output
    grew = _consistency(tmp_path, grown.notes[9], grown.notes[20], proof(grown, 9, 20).hashes, "--json")
    data = json.loads(grew.output)
    assert grew.exit_code == 0 and data["verdict"] == "extends" and data["new_root"] == grown.tree.root_at(20).b64()
    assert "extends the one of 9" in data["summary"]
    other = _sign(replace(read_unverified_checkpoint(grown.notes[9]), root_hash=grown.tree.root_at(8)))
    forked = _consistency(tmp_path, grown.notes[9], other, (), "--json")
    assert forked.exit_code == 1 and json.loads(forked.output) == {
        "verdict": "not_consistent", "code": "consistency.split_view", "reason": json.loads(forked.output)["reason"],
        "evidence": None, "hint": None}
    both = _consistency(tmp_path, grown.notes[9], grown.notes[9], (), "--json", "--evidence-out", tmp_path / "e")
    assert both.exit_code == 0 and json.loads(both.output)["verdict"] == "same_tree"  # --json goes with it
    assert not (tmp_path / "e").exists()


def test_a_json_error_names_the_proof_file_only_when_the_proof_is_at_fault(grown: Grown, tmp_path: Path) -> None:
    unlined = _sign(replace(read_unverified_checkpoint(grown.notes[20]), extensions=()))  # no registry line
    told = _consistency(tmp_path, grown.notes[9], unlined, proof(grown, 9, 20).hashes, "--json")
    error = json.loads(told.output)["error"]
    assert (told.exit_code, error["code"]) == (1, "checkpoint.registry_missing"), told.output
    assert error["file"] != str(tmp_path / "p.txt")  # a checkpoint's fault, not the proof's
    _consistency(tmp_path, grown.notes[9], grown.notes[20], proof(grown, 9, 20).hashes)
    (tmp_path / "p.txt").write_text("not a proof\n")
    told = run("consistency", tmp_path / "old.txt", tmp_path / "new.txt", "--proof", tmp_path / "p.txt",
               "--trust", tmp_path / "trust.keys", "--json")
    error = json.loads(told.output)["error"]
    assert (told.exit_code, error["code"], error["file"]) == (2, "consistency.malformed", str(tmp_path / "p.txt"))


def test_swapped_checkpoints_are_a_rollback_with_a_hint(grown: Grown, tmp_path: Path) -> None:
    """OLD and NEW given the other way round, with the proof from NEW's size to OLD's: still a rollback for the
    order given (an operator that rolled back can hand out that very proof: a second review), with a hint that
    the two may be swapped (a new user's review)."""
    hashes = proof(grown, 9, 20).hashes
    (tmp_path / "old.txt").write_text(grown.notes[20])
    (tmp_path / "new.txt").write_text(grown.notes[9])
    (tmp_path / "p.txt").write_text(format_consistency_proof(ConsistencyProof(old_size=9, new_size=20,
                                                                              hashes=hashes)))
    (tmp_path / "trust.keys").write_text(TRUST.format())
    told = run("consistency", tmp_path / "old.txt", tmp_path / "new.txt", "--proof", tmp_path / "p.txt",
               "--trust", tmp_path / "trust.keys", "--json")
    data = json.loads(told.output)
    assert told.exit_code == 1 and (data["verdict"], data["code"]) == ("not_consistent", "consistency.rollback")
    assert "the other way round" in data["hint"]
    text = run("consistency", tmp_path / "old.txt", tmp_path / "new.txt", "--proof", tmp_path / "p.txt",
               "--trust", tmp_path / "trust.keys")
    assert text.exit_code == 1 and "NOT CONSISTENT: rollback" in text.output and "hint: the proof runs" in text.output
    right = _consistency(tmp_path, grown.notes[9], grown.notes[20], hashes)
    assert right.exit_code == 0, right.output  # the same files the right way round
    rolled = _consistency(tmp_path, grown.notes[20], grown.notes[9], (), "--json")  # a proof of the pair as given
    assert rolled.exit_code == 1 and json.loads(rolled.output)["hint"] is None, rolled.output


def test_size_zero_checkpoint_with_another_root_is_refused(grown: Grown) -> None:
    bad = _sign(Checkpoint(origin=ORIGIN, tree_size=0, root_hash=grown.tree.root_at(1),
                           extensions=(format_registry_extension(0, None),)))
    assert code_of(lambda: verify_checkpoint_consistency(bad, grown.notes[3], proof(grown, 0, 3), TRUST)) \
        == "consistency.empty_root"
    # an adversarial review: a new checkpoint of size 0 with another root was "nothing to compare", exit 0
    assert code_of(lambda: verify_checkpoint_consistency(grown.notes[0], bad, proof(grown, 0, 0), TRUST)) \
        == "consistency.empty_root"
    assert verify_checkpoint_consistency(grown.notes[0], grown.notes[0], proof(grown, 0, 0), TRUST).verdict \
        == NOTHING_TO_COMPARE


# --- tampered proofs and rollbacks -------------------------------------------------------------------------------

def _flip(h: Digest) -> Digest:
    return Digest(bytes([h[0] ^ 1]) + h[1:])


@pytest.mark.parametrize(("m", "n"), [(3, 9), (5, 13), (6, 64), (21, 37), (32, 63)])
def test_tampered_proofs_are_refused(grown: Grown, m: int, n: int) -> None:
    good = proof(grown, m, n)
    hashes = good.hashes

    def check(bad: ConsistencyProof) -> str:
        return code_of(lambda: verify_checkpoint_consistency(grown.notes[m], grown.notes[n], bad, TRUST))

    for i in range(len(hashes)):  # every flipped hash
        assert check(replace(good, hashes=(*hashes[:i], _flip(hashes[i]), *hashes[i + 1:]))) == "proof.root_mismatch"
    assert check(replace(good, hashes=(*hashes, hashes[0]))) == "proof.wrong_length"
    assert check(replace(good, hashes=hashes[:-1])) == "proof.wrong_length"
    assert check(replace(good, hashes=())) == "proof.wrong_length"
    for old_size, new_size in ((m + 1, n), (m, n - 1), (m - 1, n), (n, m), (0, n)):
        assert check(replace(good, old_size=old_size, new_size=new_size)) == "consistency.size_mismatch"


def test_rollbacks_are_refused(grown: Grown) -> None:
    # new older than old, with the honest proof or a proof made for the swapped sizes
    assert code_of(lambda: verify_checkpoint_consistency(grown.notes[20], grown.notes[10], proof(grown, 10, 20),
                                                         TRUST)) == "consistency.rollback"
    swapped = ConsistencyProof(old_size=20, new_size=10, hashes=proof(grown, 10, 20).hashes)
    assert code_of(lambda: verify_checkpoint_consistency(grown.notes[20], grown.notes[10], swapped, TRUST)) \
        == "consistency.rollback"
    assert code_of(lambda: consistency_proof_for(grown.path, grown.notes[20], grown.notes[10])) \
        == "consistency.rollback"


def _sign(cp: Checkpoint, name: str = ORIGIN, signer: str = "operator") -> str:
    return sign_checkpoint(cp, name, key(signer))


def test_a_registry_that_shrinks_or_changes_is_refused(grown: Grown) -> None:
    t, reg = grown.tree, grown.records
    def note(size: int, reg_size: int) -> str:
        head = reg[reg_size - 1].record_hash if reg_size else None
        return _sign(Checkpoint(origin=ORIGIN, tree_size=size, root_hash=t.root_at(size),
                                extensions=(format_registry_extension(reg_size, head),)))

    assert code_of(lambda: verify_checkpoint_consistency(grown.notes[20], note(30, 4), proof(grown, 20, 30),
                                                         TRUST)) == "consistency.registry_rollback"
    other_head = _sign(Checkpoint(origin=ORIGIN, tree_size=30, root_hash=t.root_at(30),
                                  extensions=(format_registry_extension(5, reg[7].record_hash),)))
    assert code_of(lambda: verify_checkpoint_consistency(grown.notes[20], other_head, proof(grown, 20, 30),
                                                         TRUST)) == "consistency.registry_mismatch"
    verify_checkpoint_consistency(grown.notes[20], note(30, 5), proof(grown, 20, 30), TRUST)


def test_heads_lines_that_shrink_or_differ_are_refused(grown: Grown) -> None:
    """An item (identity) once named stays in the item-head (identity) tree, and one tree has one heads line and
    one identities line; a checkpoint without such lines (an older version's) is not compared on them."""
    old, new = read_unverified_checkpoint(grown.notes[20]), read_unverified_checkpoint(grown.notes[30])
    for at, name in ((1, "heads"), (2, "identities")):
        line, (word, count, root) = new.extensions[at], old.extensions[at].split(" ")
        fewer = _sign(replace(new, extensions=_swap(new.extensions, at, f"{word} {int(count) - 1} {root}")))
        assert code_of(lambda fewer=fewer: verify_checkpoint_consistency(  # type: ignore[misc]
            grown.notes[20], fewer, proof(grown, 20, 30), TRUST)) == f"consistency.{name}_rollback"
        other = _sign(replace(old, extensions=_swap(old.extensions, at, line)))  # the tree of 20, a line of 30
        assert code_of(lambda other=other: verify_checkpoint_consistency(  # type: ignore[misc]
            grown.notes[20], other, proof(grown, 20, 20), TRUST)) == f"consistency.{name}_mismatch"
    verify_checkpoint_consistency(grown.notes[20], grown.notes[20], proof(grown, 20, 20), TRUST)
    verify_checkpoint_consistency(grown.notes[20], _sign(replace(new, extensions=new.extensions[:1])),
                                  proof(grown, 20, 30), TRUST)


def _swap(lines: tuple[str, ...], at: int, line: str) -> tuple[str, ...]:
    return tuple(line if i == at else e for i, e in enumerate(lines))


def test_checkpoints_of_another_origin_or_signer_are_refused(grown: Grown) -> None:
    t = grown.tree
    other = _sign(Checkpoint(origin="other.example/ledger", tree_size=30, root_hash=t.root_at(30),
                             extensions=(format_registry_extension(5, grown.records[4].record_hash),)),
                  name="other.example/ledger")  # the operator's key pinned for two ledgers, under each one's name
    both = Trust(operators=(*TRUST.operators, note_verifier_key("other.example/ledger", key("operator").public_key)),
                 authorities=TRUST.authorities)
    assert code_of(lambda: verify_checkpoint_consistency(grown.notes[20], other, proof(grown, 20, 30), both)) \
        == "consistency.origin_mismatch"
    # ADR 0037: pinned under this ledger's name only, the key never vouches for the other origin's checkpoint
    assert code_of(lambda: verify_checkpoint_consistency(grown.notes[20], other, proof(grown, 20, 30), TRUST)) \
        == "note.unverified"
    outsider = _sign(Checkpoint(origin=ORIGIN, tree_size=30, root_hash=t.root_at(30),
                                extensions=(format_registry_extension(5, grown.records[4].record_hash),)),
                     signer="outsider")
    assert code_of(lambda: verify_checkpoint_consistency(grown.notes[20], outsider, proof(grown, 20, 30), TRUST)) \
        == "note.unverified"


# --- the proof file --------------------------------------------------------------------------------------------

@given(st.integers(0, 2**64 - 1), st.integers(0, 2**64 - 1), st.lists(st.binary(min_size=32, max_size=32),
                                                                        max_size=70))
def test_proof_file_round_trips(old: int, new: int, hashes: list[bytes]) -> None:
    p = ConsistencyProof(old_size=old, new_size=new, hashes=tuple(Digest(h) for h in hashes))
    text = format_consistency_proof(p)
    assert parse_consistency_proof(text) == p == parse_consistency_proof(text.encode())


H = Digest(bytes(range(32))).b64()


@pytest.mark.parametrize("text", [
    "", "stonetrail/v1/consistency-proof\nold 1\nnew 2\n" + H,  # no final newline
    "stonetrail/v1/consistency-proof\nold 1\n", "stonetrail/v2/consistency-proof\nold 1\nnew 2\n",
    "stonetrail/v1/consistency-proof\nold +1\nnew 2\n", "stonetrail/v1/consistency-proof\nold 01\nnew 2\n",
    "stonetrail/v1/consistency-proof\nold 1\nnew 2_0\n", "stonetrail/v1/consistency-proof\nold 1\nnew \uff12\n",
    "stonetrail/v1/consistency-proof\nold 1\nnew 18446744073709551616\n",
    "stonetrail/v1/consistency-proof\nnew 2\nold 1\n", "stonetrail/v1/consistency-proof\nold  1\nnew 2\n",
    f"stonetrail/v1/consistency-proof\nold 1\nnew 2\n{H}\n\n",
    f"stonetrail/v1/consistency-proof\nold 1\nnew 2\n{H[:-1]}\n",
    f"stonetrail/v1/consistency-proof\nold 1\nnew 2\n{H[:-2]}==\n",
    "stonetrail/v1/consistency-proof\r\nold 1\nnew 2\n",
    "stonetrail/v1/consistency-proof\nold 1\nnew 2\n" + f"{H}\n" * 129,
])
def test_proof_file_parsing_is_strict(text: str) -> None:
    assert code_of(lambda: parse_consistency_proof(text)) == "consistency.malformed"


def test_the_longest_proof_file_parses() -> None:
    longest = ConsistencyProof(old_size=2**64 - 1, new_size=2**64 - 1, hashes=(Digest(bytes(32)),) * 128)
    assert parse_consistency_proof(format_consistency_proof(longest)) == longest


def test_proof_file_bytes_must_be_utf8_and_small() -> None:
    assert code_of(lambda: parse_consistency_proof(b"\xff\n")) == "consistency.malformed"
    assert code_of(lambda: parse_consistency_proof(b"x" * 10_000)) == "consistency.malformed"


# --- split views ------------------------------------------------------------------------------------------------

K = 7  # records the two ledgers share


@dataclass(frozen=True)
class Split:
    a: Path
    b: Path
    notes_a: dict[int, str]
    notes_b: dict[int, str]


@pytest.fixture(scope="module")
def split(tmp_path_factory: pytest.TempPathFactory) -> Split:
    """Two ledgers of one origin sharing K records, then diverging: A mines SA0..SA2, B mines SB0, SB1."""
    w = World()
    w.enrol_all()
    shared = [*w.records, *_stones(w, K - len(w.records))]
    d = tmp_path_factory.mktemp("split")
    a_records, b_records = [*shared, *_stones(w, 3, "SA")], [*shared, *_stones(w, 2, "SB")]
    return Split(d / "a.ledger", d / "b.ledger", _grow(d / "a.ledger", w, a_records),
                 _grow(d / "b.ledger", w, b_records))


def test_split_view_evidence_from_two_ledgers(split: Split) -> None:
    data = split_view_evidence(split.a, split.notes_a[K + 3], split.b, split.notes_b[K + 2])
    proven = verify_evidence(data, TRUST)
    assert isinstance(proven, SplitView) and proven.index == K and proven.origin == ORIGIN
    assert (proven.a.tree_size, proven.b.tree_size) == (K + 3, K + 2)
    assert "split view" in proven.describe()[0]


def test_split_view_of_equal_sizes_needs_no_ledger(split: Split) -> None:
    data = split_view_evidence(None, split.notes_a[K + 1], None, split.notes_b[K + 1])
    proven = verify_evidence(data, TRUST)
    assert isinstance(proven, SplitView) and proven.index is None
    assert code_of(lambda: split_view_evidence(None, split.notes_a[K + 2], None, split.notes_b[K + 1])) \
        == "evidence.needs_ledgers"


def test_consistent_checkpoints_yield_no_evidence(split: Split) -> None:
    assert code_of(lambda: split_view_evidence(split.a, split.notes_a[K], split.b, split.notes_b[K + 2])) \
        == "evidence.consistent"
    assert code_of(lambda: split_view_evidence(None, split.notes_a[K], None, split.notes_b[K])) \
        == "evidence.consistent"
    with pytest.raises(StoneTrailError, match="tree size 0: nothing to compare") as info:
        split_view_evidence(split.a, split.notes_a[0], split.b, split.notes_b[K + 2])
    assert info.value.code == "evidence.consistent" and "are consistent" not in str(info.value)


def test_a_checkpoint_that_is_not_the_file_is_not_of_this_log(split: Split) -> None:
    """One file and one checkpoint that is not its tree: the read side's code, as an audit or an export gives it
    (tests/test_one_read_side.py); consistency.split_view is for two checkpoints that contradict each other."""
    assert code_of(lambda: consistency_proof_for(split.b, split.notes_a[K + 1])) == "checkpoint.root_mismatch"
    assert code_of(lambda: consistency_proof_for(split.a, split.notes_a[K + 1], split.notes_b[K + 2])) \
        == "checkpoint.root_mismatch"


def test_split_view_cli_end_to_end_in_a_clean_directory(split: Split, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    (work / "old.txt").write_text(split.notes_a[K + 1])
    (work / "trust.keys").write_text(TRUST.format())
    result = run("checkpoint", split.a, "--key", _pem(work), "--since", work / "old.txt",
                 "--proof-out", work / "p.txt", "-o", work / "new_a.txt")
    assert result.exit_code == 0, result.output
    ok = run("consistency", work / "old.txt", work / "new_a.txt", "--proof", work / "p.txt", "--trust",
             work / "trust.keys")
    assert ok.exit_code == 0 and f"checkpoint of {K + 3} records extends the one of {K + 1}" in ok.output
    # the mirror B: its checkpoint does not extend OLD, whatever proof is offered
    (work / "new_b.txt").write_text(split.notes_b[K + 2])
    (work / "p2.txt").write_text(format_consistency_proof(consistency_proof_for(split.a, split.notes_a[K + 1],
                                                                                split.notes_a[K + 2])))
    bad = run("consistency", work / "old.txt", work / "new_b.txt", "--proof", work / "p2.txt", "--trust",
              work / "trust.keys", "--evidence-out", work / "split.ev", "--old-ledger", split.a,
              "--new-ledger", split.b)
    assert bad.exit_code == 1 and "NOT CONSISTENT" in bad.output and "[proof.root_mismatch]" in bad.output
    assert f"leaf {K} is" in bad.output
    kept = (work / "split.ev").read_bytes()
    again = run("consistency", work / "old.txt", work / "new_b.txt", "--proof", work / "p2.txt", "--trust",
                work / "trust.keys", "--evidence-out", work / "split.ev", "--json")
    assert again.exit_code == 3 and "[store.exists]" not in again.output  # refused before the check, as JSON:
    assert json.loads(again.output)["error"]["code"] == "store.exists"  # no verdict was reached and lost
    assert (work / "split.ev").read_bytes() == kept
    consistent = run("consistency", work / "old.txt", work / "new_a.txt", "--proof", work / "p.txt", "--trust",
                     work / "trust.keys", "--evidence-out", work / "split.ev")
    assert consistent.exit_code == 3 and "exists" in consistent.output  # whatever the verdict would have been
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "split.ev").write_bytes((work / "split.ev").read_bytes())
    (clean / "trust.keys").write_text(TRUST.format())
    verified = _verify_in(clean, "split.ev")
    assert verified.returncode == 0, verified.stderr
    assert "split view" in verified.stdout and "misbehaviour proven" in verified.stdout


def _pem(directory: Path) -> Path:
    from ledger import keyfile

    path = directory / "operator.pem"
    if not path.exists():
        keyfile.save_private_key(path, OPERATOR)
    return path


def _verify_in(directory: Path, name: str) -> subprocess.CompletedProcess[str]:
    """``stonetrail evidence verify NAME --trust trust.keys`` in a fresh process, cwd ``directory``."""
    argv = [sys.executable, "-c", "from stonetrail_cli.main import main; main()", "evidence", "verify", name,
            "--trust", "trust.keys"]
    assert sorted(p.name for p in directory.iterdir()) == sorted([name, "trust.keys"])
    return subprocess.run(argv, cwd=directory, capture_output=True, text=True, timeout=60, check=False)


# --- chain forks ------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Forked:
    path: Path
    note: str
    records: list[Record]


@pytest.fixture(scope="module")
def forked(tmp_path_factory: pytest.TempPathFactory) -> Forked:
    """Enrolments, S0 mined, sold to trader-b (T1); then T2, a second sale of S0 by producer-a to trader-e
    naming the same predecessor, written as a raw frame (Ledger.append refuses it); then one more stone."""
    w = World()
    w.enrol_all()
    mined = _stones(w, 1)[0]
    t1 = w.make(Transferred(to="trader-b", mode="title"), "producer-a", inputs=["S0"], place="BW")
    t2 = w.make(Transferred(to="trader-e", mode="title"), "producer-a", inputs=["S0"], place="BW",
                prev={"S0": mined.record_hash})
    assert w.add(t1) == []
    path = tmp_path_factory.mktemp("fork") / "fork.ledger"
    _grow(path, w, w.records)
    with FileStore.open(path, writable=True) as store:
        store.append(t2.raw)
        store.append(w.mine("S1").raw)
    records = [*w.records, t2]
    return Forked(path, checkpoint_file(path, OPERATOR), records)


def test_fork_evidence_finds_the_two_successors(forked: Forked) -> None:
    data = fork_evidence(forked.path, forked.note)
    assert data is not None
    proven = verify_evidence(data, TRUST)
    assert isinstance(proven, ChainFork)
    t1, t2 = forked.records[-2], forked.records[-1]
    assert (proven.index_a, proven.index_b) == (len(forked.records) - 2, len(forked.records) - 1)
    assert proven.record_a.raw == t1.raw and proven.record_b.raw == t2.raw
    assert proven.shared == (("S0", forked.records[-3].record_hash),)


def test_no_fork_no_evidence(grown: Grown, forked: Forked) -> None:
    assert fork_evidence(grown.path, grown.notes[N]) is None
    assert fork_evidence(forked.path, _note_at(forked, len(forked.records) - 1)) is None


def _note_at(f: Forked, size: int) -> str:
    """The fork ledger's checkpoint at ``size``, with every line the read side checks."""
    tree, lines = MerkleTree(r.record_hash for r in f.records[:size]), Commitments()
    for position, record in enumerate(f.records[:size]):
        lines.add(position, record)
    return _sign(Checkpoint(origin=ORIGIN, tree_size=size, root_hash=tree.root(),
                            extensions=(format_registry_extension(5, f.records[4].record_hash), *lines.extensions())))


def test_fork_cli_end_to_end_in_a_clean_directory(forked: Forked, tmp_path: Path) -> None:
    cp = tmp_path / "cp.txt"
    cp.write_text(forked.note)
    (tmp_path / "trust.keys").write_text(TRUST.format())
    result = run("evidence", "fork", forked.path, "--checkpoint", cp, "-o", tmp_path / "fork.ev",
                 "--trust", tmp_path / "trust.keys")
    assert result.exit_code == 0, result.output
    assert "chain fork" in result.output
    clean = tmp_path / "clean"
    clean.mkdir()
    (clean / "fork.ev").write_bytes((tmp_path / "fork.ev").read_bytes())
    (clean / "trust.keys").write_text(TRUST.format())
    verified = _verify_in(clean, "fork.ev")
    assert verified.returncode == 0, verified.stderr
    assert "chain fork" in verified.stdout and "both follow record" in verified.stdout


# --- forged evidence --------------------------------------------------------------------------------------------

def _fork_claim(records: list[Record], i: int, j: int, *, note: str | None = None,
                origin: str = ORIGIN) -> ChainForkClaim:
    tree = MerkleTree(r.record_hash for r in records)
    note = note or _sign(Checkpoint(origin=origin, tree_size=tree.size, root_hash=tree.root()), name=origin)

    def entry(k: int) -> IncludedRecord:
        return IncludedRecord(index=k, record=records[k].raw, proof=tuple(tree.inclusion_proof(k)))

    return ChainForkClaim(note=note, a=entry(i), b=entry(j))


def verify_claim(claim: SplitViewClaim | ChainForkClaim, trust: Trust = TRUST) -> str:
    return code_of(lambda: verify_evidence(format_evidence(claim), trust))


#: The operator's key pinned for this ledger and, under its own name, for another: the other's checkpoints open
#: (docs/adr/0037), and evidence mixing the two ledgers is refused for what it is.
BOTH = Trust(operators=(*TRUST.operators, note_verifier_key("other.example/ledger", key("operator").public_key)),
             authorities=TRUST.authorities)


def test_forged_chain_forks_prove_nothing(forked: Forked) -> None:
    recs, n = forked.records, len(forked.records)
    assert isinstance(verify_evidence(format_evidence(_fork_claim(recs, n - 2, n - 1)), TRUST), ChainFork)
    assert verify_claim(_fork_claim(recs, 0, 1)) == "evidence.no_shared_predecessor"  # unrelated records
    assert verify_claim(_fork_claim(recs, n - 1, n - 1)) == "evidence.same_record"
    good = _fork_claim(recs, n - 2, n - 1)
    flipped = replace(good, b=replace(good.b, proof=(_flip(good.b.proof[0]), *good.b.proof[1:])))
    assert verify_claim(flipped) == "proof.root_mismatch"
    assert verify_claim(replace(good, b=replace(good.b, index=n - 3))) == "proof.root_mismatch"
    assert verify_claim(replace(good, b=replace(good.b, index=n))) == "proof.index_out_of_range"
    assert verify_claim(replace(good, b=replace(good.b, proof=good.b.proof[1:]))) == "proof.wrong_length"
    outsider = MerkleTree(r.record_hash for r in recs)
    unsigned = _sign(Checkpoint(origin=ORIGIN, tree_size=n, root_hash=outsider.root()), signer="outsider")
    assert verify_claim(_fork_claim(recs, n - 2, n - 1, note=unsigned)) == "note.unverified"
    other_origin = _fork_claim(recs, n - 2, n - 1, origin="other.example/ledger")
    assert verify_claim(other_origin, BOTH) == "evidence.wrong_origin"
    assert verify_claim(other_origin) == "note.unverified"  # ADR 0037: no key pinned for that origin signed it
    # an adversarial review: another ledger's pinned operator signing under this ledger's origin proved a "fork"
    assert verify_claim(_fork_claim(recs, n - 2, n - 1, note=_sign(
        Checkpoint(origin=ORIGIN, tree_size=n, root_hash=MerkleTree(r.record_hash for r in recs).root()),
        name="other.example/ledger")), BOTH) == "note.unverified"


def test_a_fork_of_records_with_bad_signatures_proves_nothing(forked: Forked) -> None:
    from ledger._codec import decode

    recs = forked.records
    env = decode(recs[-1].raw[len(b"stonetrail/v1/record\n"):])
    assert isinstance(env, dict) and isinstance(env["sigs"], list) and isinstance(env["body"], bytes)
    sigs = [dict(s) for s in env["sigs"] if isinstance(s, dict)]
    sigs[0]["sig"] = bytes(64 - 1) + b"\x01"
    forged = Record.from_bytes(envelope(env["body"], sigs))
    assert verify_claim(_fork_claim([*recs[:-1], forged], len(recs) - 2, len(recs) - 1)).startswith("sig.")


def test_forged_split_views_prove_nothing(split: Split, grown: Grown) -> None:
    same = SplitViewClaim(note_a=split.notes_a[K + 1], note_b=split.notes_a[K + 1])
    assert verify_claim(same) == "evidence.consistent"
    assert verify_claim(SplitViewClaim(note_a=split.notes_a[K + 1], note_b=split.notes_b[K + 2])) \
        == "evidence.unproven"
    tree_a = MerkleTree(Digest(h) for h in _leaves(split.a))
    tree_b = MerkleTree(Digest(h) for h in _leaves(split.b))

    def leaf(tree: MerkleTree, index: int, size: int) -> LeafProof:
        return LeafProof(leaf_hash=tree.leaf_hashes[index], proof=tuple(tree.inclusion_proof(index, size)))

    agree = SplitViewClaim(note_a=split.notes_a[K + 3], note_b=split.notes_b[K + 2], index=2,
                           leaf_a=leaf(tree_a, 2, K + 3), leaf_b=leaf(tree_b, 2, K + 2))
    assert verify_claim(agree) == "evidence.consistent"
    good = replace(agree, index=K, leaf_a=leaf(tree_a, K, K + 3), leaf_b=leaf(tree_b, K, K + 2))
    assert isinstance(verify_evidence(format_evidence(good), TRUST), SplitView)
    swapped_leaf = replace(good, leaf_a=replace(good.leaf_a, leaf_hash=tree_a.leaf_hashes[K + 1]))  # type: ignore[arg-type]
    assert verify_claim(swapped_leaf) == "proof.root_mismatch"
    beyond = replace(good, index=K + 2, leaf_a=leaf(tree_a, K + 2, K + 3))
    assert verify_claim(beyond) == "proof.index_out_of_range"
    other = _sign(Checkpoint(origin="other.example/ledger", tree_size=K + 1,
                             root_hash=grown.tree.root_at(K + 1)), name="other.example/ledger")
    assert verify_claim(SplitViewClaim(note_a=split.notes_a[K + 1], note_b=other), BOTH) == "evidence.origin_mismatch"
    forged = _sign(replace(read_unverified_checkpoint(split.notes_a[K + 1]), root_hash=Digest(bytes(32))),
                   name="other.example/ledger")  # another ledger's operator, in this one's name (a review)
    assert verify_claim(SplitViewClaim(note_a=split.notes_a[K + 1], note_b=forged), BOTH) == "note.unverified"


def _leaves(path: Path) -> list[bytes]:
    from ledger.merkle import leaf_hash
    from ledger.storage import scan

    return [leaf_hash(f.payload) for f in scan(path).frames]


def test_evidence_parsing_is_strict(split: Split) -> None:
    data = format_evidence(SplitViewClaim(note_a=split.notes_a[K + 1], note_b=split.notes_b[K + 1]))
    assert parse_evidence(data) == SplitViewClaim(note_a=split.notes_a[K + 1], note_b=split.notes_b[K + 1])
    from ledger._codec import decode, encode

    value = decode(data[len(EVIDENCE_TAG):])
    assert isinstance(value, dict)

    def code(raw: bytes) -> str:
        return code_of(lambda: parse_evidence(raw))

    assert code(data[1:]) == "evidence.malformed"  # no tag
    assert code(b"stonetrail/v1/record\n" + data[len(EVIDENCE_TAG):]) == "evidence.malformed"
    assert code(data + b"\x00") == "codec.trailing_bytes"
    assert code(data[:-1]) == "codec.truncated"
    for bad in ({**value, "extra": 1}, {**value, "kind": "rollback"}, {**value, "index": -1},
                {**value, "index": 3}, {**value, "a": {**value["a"], "proof": [bytes(32)]}},  # type: ignore[dict-item]
                {k: v for k, v in value.items() if k != "b"}):
        assert code(EVIDENCE_TAG + encode(bad)) == "evidence.malformed", bad


# --- the CLI ----------------------------------------------------------------------------------------------------

def test_every_new_help_has_an_example() -> None:
    for args in (["consistency"], ["evidence"], ["evidence", "verify"], ["evidence", "fork"], ["checkpoint"]):
        result = run(*args, "--help")
        assert result.exit_code == 0 and "Example" in result.output, args


def test_cli_usage_errors_and_rollbacks(grown: Grown, tmp_path: Path) -> None:
    (tmp_path / "trust.keys").write_text(TRUST.format())
    for size in (10, 20):
        (tmp_path / f"cp{size}.txt").write_text(grown.notes[size])
    (tmp_path / "p.txt").write_text(format_consistency_proof(proof(grown, 10, 20)))
    pem, trust = _pem(tmp_path), tmp_path / "trust.keys"
    no_proof_out = run("checkpoint", grown.path, "--key", pem, "--since", tmp_path / "cp10.txt")
    assert no_proof_out.exit_code == 2 and "go together" in no_proof_out.output
    assert run("consistency", tmp_path / "cp10.txt", tmp_path / "cp20.txt", "--proof", tmp_path / "p.txt",
               "--trust", trust).exit_code == 0
    swapped = run("consistency", tmp_path / "cp20.txt", tmp_path / "cp10.txt", "--proof", tmp_path / "p.txt",
                  "--trust", trust)
    assert swapped.exit_code == 1 and "[consistency.rollback]" in swapped.output and "hint:" in swapped.output
    (tmp_path / "back.txt").write_text(format_consistency_proof(ConsistencyProof(old_size=20, new_size=10, hashes=())))
    rollback = run("consistency", tmp_path / "cp20.txt", tmp_path / "cp10.txt", "--proof", tmp_path / "back.txt",
                   "--trust", trust)
    assert rollback.exit_code == 1 and "[consistency.rollback]" in rollback.output
    (tmp_path / "bad.txt").write_text("not a proof\n")
    malformed = run("consistency", tmp_path / "cp10.txt", tmp_path / "cp20.txt", "--proof", tmp_path / "bad.txt",
                    "--trust", trust)
    assert malformed.exit_code == 2 and "[consistency.malformed]" in malformed.output
    lonely = run("consistency", tmp_path / "cp10.txt", tmp_path / "cp20.txt", "--proof", tmp_path / "p.txt",
                 "--trust", trust, "--old-ledger", grown.path)
    assert lonely.exit_code == 2
    no_evidence = run("consistency", tmp_path / "cp20.txt", tmp_path / "cp10.txt", "--proof", tmp_path / "back.txt",
                      "--trust", trust, "--evidence-out", tmp_path / "x.ev", "--old-ledger", grown.path,
                      "--new-ledger", grown.path)
    assert no_evidence.exit_code == 1 and "no evidence written: the trees do not fork" in no_evidence.output
    assert "checkpoints are consistent" not in no_evidence.output  # beside "NOT CONSISTENT: rollback"
    assert not (tmp_path / "x.ev").exists()


def test_cli_checkpoint_since_another_tree_writes_nothing(split: Split, tmp_path: Path) -> None:
    (tmp_path / "old.txt").write_text(split.notes_a[K + 1])
    result = run("checkpoint", split.b, "--key", _pem(tmp_path), "--since", tmp_path / "old.txt",
                 "--proof-out", tmp_path / "p.txt", "-o", tmp_path / "new.txt")
    assert result.exit_code == 1 and "[checkpoint.root_mismatch]" in result.output
    assert not (tmp_path / "new.txt").exists() and not (tmp_path / "p.txt").exists()


def test_cli_evidence_verify_and_fork_failures(grown: Grown, split: Split, tmp_path: Path) -> None:
    (tmp_path / "trust.keys").write_text(TRUST.format())
    (tmp_path / "junk.ev").write_bytes(b"junk")
    junk = run("evidence", "verify", tmp_path / "junk.ev", "--trust", tmp_path / "trust.keys")
    assert junk.exit_code == 2 and "[evidence.malformed]" in junk.output
    (tmp_path / "same.ev").write_bytes(format_evidence(SplitViewClaim(note_a=split.notes_a[K],
                                                                      note_b=split.notes_b[K])))
    same = run("evidence", "verify", tmp_path / "same.ev", "--trust", tmp_path / "trust.keys")
    assert same.exit_code == 1 and "[evidence.consistent]" in same.output
    (tmp_path / "cp.txt").write_text(grown.notes[N])
    none = run("evidence", "fork", grown.path, "--checkpoint", tmp_path / "cp.txt", "-o", tmp_path / "f.ev")
    assert none.exit_code == 1 and "no fork" in none.output and not (tmp_path / "f.ev").exists()


def test_the_pure_core_does_not_load_the_store_or_click() -> None:
    code = ("import sys, ledger.consistency, ledger.evidence; print(sorted(m for m in sys.modules if m in "
            "('click', 'ledger.storage', 'ledger._ledger', 'ledger.audit', 'ledger.monitor')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
