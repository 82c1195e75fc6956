"""Item heads (ledger.heads, docs/format.md §7c): the checkpoint's commitment to every item's latest record.

The leaf encoding is pinned byte for byte; the tree is sorted by the ids' UTF-8 bytes; every item's head verifies
against the signed root and any earlier record of it does not (hypothesis); the extension line is parsed
strictly; an audit and an export refuse a checkpoint whose heads line is not the file's; the writer and
``checkpoint_file`` sign the same line.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import Attested, Corrected, Ledger, Transferred, Trust, check_ledger, checkpoint_file
from ledger.checkpoint import Checkpoint, open_checkpoint, read_unverified_checkpoint, sign_checkpoint
from ledger.errors import InputError, NoteFormatError, ProofError, RuleError, VerificationError
from ledger.hashing import Digest
from ledger.heads import HEADS_EXTENSION, Head, HeadProof, ItemHeads, checkpoint_heads, head_leaf, verify_item_head
from ledger.keys import note_verifier_key
from ledger.merkle import leaf_hash, root_hash
from ledger.spilled_of import SpilledOf
from world import ORIGIN, World, key

OPERATOR = key("operator")
H = Digest(hashlib.sha256(b"a record").digest())


@dataclass(frozen=True)
class _Body:
    items: frozenset[str]
    event: Attested | Corrected | None = None

    def named_items(self) -> frozenset[str]:
        return self.items


@dataclass(frozen=True)
class _Record:
    """What ItemHeads reads of a record: the items it names and its hash."""

    body: _Body
    record_hash: Digest


def _record(position: int, *items: str) -> _Record:
    return _Record(_Body(frozenset(items)), Digest(hashlib.sha256(b"%d" % position).digest()))


def test_the_leaf_encoding_is_pinned() -> None:
    leaf = head_leaf("S1", Head(7, H, 3))
    assert leaf == b"stonetrail/v1/item-head\n" + b"\x94\xa2S1\x07\xc4\x20" + H + b"\x03"


def test_the_tree_is_sorted_by_utf8_bytes_and_every_head_verifies() -> None:
    heads = ItemHeads()
    for position, items in enumerate([("b", "a"), ("\u00e9",), ("Z", "a"), ("\U0001f48e",)]):
        heads.add(position, _record(position, *items))  # type: ignore[arg-type]
    order = ["Z", "a", "b", "\u00e9", "\U0001f48e"]  # by UTF-8 bytes, not by code point or case
    latest = {"Z": 2, "a": 2, "b": 0, "\u00e9": 1, "\U0001f48e": 3}
    count = {"Z": 1, "a": 2, "b": 1, "\u00e9": 1, "\U0001f48e": 1}

    def head(item: str) -> Head:
        return Head(latest[item], _record(latest[item]).record_hash, count[item])

    leaves = [leaf_hash(head_leaf(i, head(i))) for i in order]
    assert heads.root() == root_hash(leaves) and len(heads) == 5
    assert heads.extension() == f"{HEADS_EXTENSION} 5 {heads.root().b64()}"
    for rank, item in enumerate(order):
        proof = heads.proof(item)
        assert proof.index == rank and heads.head(item) == head(item)
        verify_item_head(item, head(item), proof, 5, heads.root())
    assert ItemHeads().root() == hashlib.sha256(b"").digest()  # RFC 9162: the empty tree


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sets(st.sampled_from(["L1", "S1", "S2", "S1-A", "RING"]), min_size=1, max_size=3),
                min_size=1, max_size=25))
def test_only_the_latest_record_and_the_full_count_verify(log: list[set[str]]) -> None:
    heads = ItemHeads.of((p, _record(p, *items)) for p, items in enumerate(log))  # type: ignore[misc]
    count, root = len(heads), heads.root()
    for item in set().union(*log):
        positions = [p for p, items in enumerate(log) if item in items]
        proof = heads.proof(item)
        assert heads.index[item] == positions

        def head(position: int, records: int = len(positions)) -> Head:
            return Head(position, _record(position).record_hash, records)

        verify_item_head(item, head(positions[-1]), proof, count, root)
        for earlier in positions[:-1]:  # a bundle cut after an earlier record of the item
            with pytest.raises(ProofError):
                verify_item_head(item, head(earlier), proof, count, root)
        for records in (len(positions) - 1, len(positions) + 1):  # a record left out (or one too many)
            with pytest.raises(ProofError):
                verify_item_head(item, head(positions[-1], records), proof, count, root)
        with pytest.raises(ProofError):  # the right record under another item's name
            verify_item_head(item + "x", head(positions[-1]), proof, count, root)
        if count > 1:
            with pytest.raises(ProofError):
                verify_item_head(item, head(positions[-1]), HeadProof((proof.index + 1) % count, proof.proof),
                                 count, root)


def _statement(position: int, subject: int, corrected: bool) -> _Record:
    event = (Corrected if corrected else Attested)(subject=_record(subject).record_hash, statement="seen")
    return _Record(_Body(frozenset(), event), _record(position).record_hash)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(st.sets(st.sampled_from(["L1", "S1", "S2", "RING"]), min_size=1, max_size=3),
                          st.tuples(st.integers(0, 30), st.booleans())), min_size=1, max_size=30))
def test_counted_heads_with_the_record_map_on_disk_give_the_same_line(log: list[set[str] | tuple[int, bool]]) -> None:
    """An audit's heads (issue 11: memory that follows the live items) keep each item's count and latest position
    and their record map on disk; their line, items and heads are those of the heads that keep every position,
    with statements about earlier, later (a reordered log) and unknown records, across the map's batch writes."""
    records = [_statement(p, *entry) if isinstance(entry, tuple) else _record(p, *entry) for p, entry in enumerate(log)]
    full, of = ItemHeads(), SpilledOf()
    counted = ItemHeads(counted=True, of=of)
    with mock.patch("ledger.spilled_of.BATCH", 3):
        for position, record in enumerate(records):
            assert counted.add(position, record) == full.add(position, record)  # type: ignore[arg-type]
            assert counted.extension() == full.extension()
    assert len(counted) == len(full)
    for item in full.index:
        assert counted.head(item) == full.head(item) and counted.proof(item) == full.proof(item)
    assert sorted(of) == sorted(full._of) and all(of[h] == full._of[h] for h in full._of)
    with pytest.raises(TypeError, match="no positions"):
        _ = counted.index
    of.close()


def test_the_record_map_on_disk_is_a_mapping() -> None:
    of, a, b = SpilledOf(), _record(1).record_hash, _record(2).record_hash
    with mock.patch("ledger.spilled_of.BATCH", 2):
        of[a] = ("S1",)
        assert of[a] == ("S1",) and b not in of and len(of) == 1  # read while held, then written
        of[b] = ()
        of[a] = ("L1", "S1")  # replaced after its first write
        assert (of[a], of[b], of.get(_record(3).record_hash)) == (("L1", "S1"), (), None)
        assert sorted(of) == sorted([a, b]) and len(of) == 2
        del of[a]
        assert a not in of and list(of) == [b]
        with pytest.raises(KeyError):
            del of[a]
    of.close()


@pytest.mark.parametrize("line", [
    f"{HEADS_EXTENSION} 01 {H.b64()}", f"{HEADS_EXTENSION} -1 {H.b64()}", f"{HEADS_EXTENSION}  1 {H.b64()}",
    f"{HEADS_EXTENSION} 1 {H.b64()[:-1]}", f"{HEADS_EXTENSION} 1 {H.b64()} x", f"{HEADS_EXTENSION} 1",
    f"{HEADS_EXTENSION} {2**64} {H.b64()}", f"{HEADS_EXTENSION} 1 " + Digest(bytes(32)).b64().replace("=", ""),
])
def test_a_malformed_heads_line_is_refused(line: str) -> None:
    cp = read_unverified_checkpoint(sign_checkpoint(_cp((line,)), ORIGIN, OPERATOR))
    with pytest.raises(NoteFormatError) as err:
        checkpoint_heads(cp)
    assert err.value.code == "checkpoint.extension"


def test_a_missing_heads_line_is_named() -> None:
    with pytest.raises(VerificationError) as err:
        checkpoint_heads(_cp(("stonetrail-registry 0 " + Digest(bytes(32)).b64(),)))
    assert err.value.code == "checkpoint.heads_missing"
    assert checkpoint_heads(_cp(("witness x", f"{HEADS_EXTENSION} 3 {H.b64()}"))) == (3, H)


def _cp(extensions: tuple[str, ...]) -> Checkpoint:
    return Checkpoint(origin=ORIGIN, tree_size=1, root_hash=H, extensions=extensions)


# --- a real ledger: writer, checkpoint_file and audit agree -------------------------------------------------------

def test_the_writer_and_checkpoint_file_sign_the_same_heads_line_and_an_audit_checks_it(tmp_path: Path) -> None:
    w = World()
    path = tmp_path / "heads.ledger"
    trust = Trust(operators=(note_verifier_key(ORIGIN, OPERATOR.public_key),),
                  authorities=(note_verifier_key("authority", w.keys["authority"].public_key),))
    with Ledger.create(path, ORIGIN, {w.keys["authority"].public_key.raw}) as ledger:
        for party, roles in (("producer-a", ("producer",)), ("trader-b", ("trader",))):
            record = w.enrol(party, roles)
            assert w.add(record) == []
            ledger.append(record)
        for record in (w.mine("S1"), w.mine("S2")):
            assert w.add(record) == []
            ledger.append(record)
        early = ledger.checkpoint(OPERATOR)
        sale = w.make(Transferred(to="trader-b", mode="title"), "producer-a", inputs=["S1"])
        assert w.add(sale) == []
        ledger.append(sale)
        note = ledger.checkpoint(OPERATOR)
    assert checkpoint_file(path, OPERATOR) == note
    cp = open_checkpoint(note, trust.operators)
    count, _ = checkpoint_heads(cp)
    assert count == 2
    assert check_ledger(path, trust, checkpoint=note).findings == ()
    assert check_ledger(path, trust, checkpoint=early).findings == ()  # an earlier checkpoint stays valid
    stale_line = open_checkpoint(early, trust.operators).extensions[1]  # S1's head before the sale
    registry, _, identities = cp.extensions
    stale = sign_checkpoint(replace(cp, extensions=(registry, stale_line, identities)), ORIGIN, OPERATOR)
    assert [f.code for f in check_ledger(path, trust, checkpoint=stale).findings] == ["checkpoint.heads_mismatch"]
    without = sign_checkpoint(replace(cp, extensions=(registry, identities)), ORIGIN, OPERATOR)
    assert [f.code for f in check_ledger(path, trust, checkpoint=without).findings] == ["checkpoint.heads_missing"]
    neither = sign_checkpoint(replace(cp, extensions=(registry,)), ORIGIN, OPERATOR)
    assert [f.code for f in check_ledger(path, trust, checkpoint=neither).findings] == [
        "checkpoint.heads_missing", "checkpoint.identities_missing"]


def test_recording_an_event_on_an_unknown_item_is_a_typed_error(tmp_path: Path) -> None:
    w = World()
    with Ledger.create(tmp_path / "x.ledger", ORIGIN, {w.keys["authority"].public_key.raw}) as ledger:
        with pytest.raises(InputError) as err:
            ledger.record_event(Transferred(to="trader-b", mode="title"), actor="producer-a", place="BW",
                                time_ms=1, signers={"producer-a": w.keys["producer-a"]}, inputs=["NOPE"])
        assert err.value.code == "item.unknown" and ledger.size == 0


def test_looking_up_an_unknown_item_is_a_typed_error_that_suggests_one_read_alike(tmp_path: Path) -> None:
    """A new user's review: Ledger.item raised a bare KeyError; it is item.unknown (still a KeyError)."""
    w = World()
    w.enrol_all()
    w.add(w.mine("S-100"))
    with Ledger.create(tmp_path / "x.ledger", ORIGIN, {w.keys["authority"].public_key.raw}) as ledger:
        ledger.append_batch(w.records)
        assert ledger.item("S-100").holder == "producer-a"
        with pytest.raises(InputError) as err:
            ledger.item("s-1OO")
        assert err.value.code == "item.unknown" and isinstance(err.value, KeyError)
        assert str(err.value) == "no item 's-1OO' in this ledger; did you mean 'S-100'?"


def test_a_refused_append_names_every_code_of_the_record(tmp_path: Path) -> None:
    """A new user's review: re-running an enrolment script said only chain.time_backwards; the real cause,
    registry.duplicate_party, is named too."""
    w = World()
    w.enrol_all()
    with Ledger.create(tmp_path / "x.ledger", ORIGIN, {w.keys["authority"].public_key.raw}) as ledger:
        ledger.append_batch(w.records)
        with pytest.raises(RuleError) as again:
            ledger.append_batch([w.records[1]])
        assert "registry.duplicate_party" in str(again.value) and "this record also:" in str(again.value)
