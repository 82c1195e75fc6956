"""Proof bundles: export one stone's provenance from a ledger file and verify it offline (DESIGN.md §7).

A small ledger (three enrolments, a mined lot cut into a stone, a sale and a grading, and another stone) gives a
bundle of seven records. Every single-byte flip of it, every record removed, reordered, duplicated or swapped
in, a checkpoint by an unknown key or of another tree size, and the transparency-dev mutation catalogue applied
to every inclusion proof must be rejected with a named reason; the untouched bundle must verify to the right
provenance, in a process that loads nothing but the bundle module and opens nothing but the bundle and the
trust file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ledger import AUTHORITY, Ledger, Output, Record, Transferred, Trust
from ledger._codec import encode
from ledger.bundle import (
    BUNDLE_TAG,
    BUNDLE_VERSION,
    BundleEntry,
    BundleFormatError,
    HeadEntry,
    IdentityEntry,
    build_bundle,
    bundle_from_json,
    bundle_to_json,
    check_bundle,
    read_bundle,
    verify_bundle,
)
from ledger.checkpoint import Checkpoint, read_unverified_checkpoint, sign_checkpoint
from ledger.commitments import Commitments
from ledger.errors import InputError, ProofError, RuleError, StoneTrailError, UnverifiedNoteError, VerificationError
from ledger.events import Corrected, Graded, Mined, Retired, Set, Split, Unset
from ledger.export import export_bundle
from ledger.hashing import Digest
from ledger.heads import ItemHeads
from ledger.keys import note_verifier_key
from ledger.merkle import leaf_hash, verify_inclusion
from ledger.policy import Policy
from stonetrail_cli.main import main
from world import World, key

OPERATOR = key("operator")
TRUST = Trust(operators=(note_verifier_key("test.stonetrail.example/ledger", OPERATOR.public_key),),
              authorities=(note_verifier_key("authority", key(AUTHORITY).public_key),))
ROLES = {"producer-a": ("producer",), "trader-b": ("trader",), "cutter-c": ("manufacturer",), "lab-d": ("lab",)}


class Log:
    """A ledger file written through :class:`ledger.Ledger`, its records built by a World."""

    def __init__(self, path: Path, origin: str = "test.stonetrail.example/ledger") -> None:
        self.path, self.w = path, World(origin)
        self.ledger = Ledger.create(path, origin, {key(AUTHORITY).public_key.raw})

    def put(self, record: Record) -> None:
        assert self.w.add(record) == []
        self.ledger.append(record)

    def enrol(self, *parties: str) -> None:
        for party in parties:
            self.put(self.w.enrol(party, ROLES[party]))

    def checkpoint(self) -> str:
        return self.ledger.checkpoint(OPERATOR, "test.stonetrail.example/ledger")


def small_ledger(path: Path, origin: str = "test.stonetrail.example/ledger") -> Log:
    """0-2 enrolments; 3 mined lot L1 (5 ct); 4 mined S2 (another stone); 5 L1 cut into S1 (1.5 ct) and L1-R;
    6 S1 sold to trader-b; 7 S1 graded 1.49 ct; 8 S2 sold to trader-b."""
    log = Log(path, origin)
    w = log.w
    log.enrol("producer-a", "trader-b", "lab-d")
    log.put(w.make(Mined(mine="Jwaneng", country="BW"), "producer-a", place="BW",
                   outputs=[Output(id="L1", type="lot", mass_mct=5_000)]))
    log.put(w.mine("S2", 900))
    log.put(w.make(Split(loss_mct=500), "producer-a", place="BW", inputs=["L1"], consumes=["L1"],
                   outputs=[Output(id="S1", type="stone", mass_mct=1_500),
                            Output(id="L1-R", type="lot", mass_mct=3_000)]))
    log.put(w.make(Transferred(to="trader-b", mode="title"), "producer-a", inputs=["S1"]))
    log.put(w.make(Graded(lab="lab-d", report="RPT-1", mass_mct=1_490, colour="E", clarity="VS1",
                          nature="natural"), "trader-b", inputs=["S1"]))
    log.put(w.make(Transferred(to="trader-b", mode="title"), "producer-a", inputs=["S2"]))
    return log


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Log, str, bytes]]:
    """The small ledger, its checkpoint (tree size 9) and S1's bundle."""
    log = small_ledger(tmp_path_factory.mktemp("bundle") / "main.ledger")
    note = log.checkpoint()
    yield log, note, export_bundle(log.path, "S1", note)
    log.ledger.close()


@pytest.fixture(scope="module")
def bundle(world: tuple[Log, str, bytes]) -> bytes:
    return world[2]


def encode_bundle(entries: Sequence[BundleEntry], note: str, item: str = "S1",
                  heads: Sequence[HeadEntry] = (), identities: Sequence[IdentityEntry] = ()) -> bytes:
    """Bundle bytes exactly as given (no sorting, no checks): what a forger can send."""
    return BUNDLE_TAG + encode({"v": BUNDLE_VERSION, "item": item, "checkpoint": note, "records": [
        {"index": e.index, "leaf": e.leaf, "proof": list(e.proof)} for e in entries],
        "heads": [{"item": h.item, "index": h.index, "proof": list(h.proof)} for h in heads],
        "identities": [{"index": e.index, "leaf": e.leaf, "proof": list(e.proof)} for e in identities]})


#: Every policy rule on, so that the policy pass runs over every mangled bundle too (it must never crash).
EVERY_RULE = Policy(deny_origin=frozenset({"RU"}), kp_rules=True, require_known_origin=True, require_verified=True,
                    regrade_tolerance_mct=5, import_weight_tolerance_mct=5)


def rejected(data: bytes, trust: Trust = TRUST) -> str:
    """The code both tiers reject ``data`` with; fails if either accepts it or raises an untyped error."""
    try:
        report = check_bundle(data, trust, EVERY_RULE)
    except BundleFormatError as exc:
        with pytest.raises(BundleFormatError):
            verify_bundle(data, trust)
        return exc.code
    assert not report.ok and report.provenance is None
    with pytest.raises(StoneTrailError) as err:
        verify_bundle(data, trust)
    assert err.value.code == report.findings[0].code
    return report.findings[0].code


def codes_of(data: bytes, trust: Trust = TRUST) -> set[str]:
    return {f.code for f in check_bundle(data, trust).findings}


# --- the untouched bundle ---------------------------------------------------------------------------------------

def test_the_bundle_verifies_to_the_stones_provenance(bundle: bytes) -> None:
    entries = read_bundle(bundle).entries
    assert [e.index for e in entries] == [0, 1, 2, 3, 5, 6, 7]  # registry, L1 mined, split, sale, grading
    p = verify_bundle(bundle, TRUST)
    assert (p.item, p.type, p.nature, p.state, p.holder, p.owner) == ("S1", "stone", "natural", "live",
                                                                        "trader-b", "trader-b")
    assert dict(p.origin) == {"BW": 1_490} and p.mass_mct == 1_490  # the origin follows the weighed mass
    assert p.attested_by() == {"BW": ("producer-a",)}
    assert [(r.kind, r.item, r.producer, r.site) for r in p.roots] == [("mined", "L1", "producer-a", "Jwaneng")]
    assert [(s.position, s.kind, s.item, s.holder) for s in p.path] == [
        (3, "mined", "L1", "producer-a"), (5, "split", "S1", "producer-a"), (6, "transferred", "S1", "trader-b"),
        (7, "graded", "S1", "trader-b")]
    assert [(m.item, m.mass_mct) for m in p.mass_history] == [("L1", 5_000), ("S1", 1_500), ("S1", 1_490)]
    assert [(g.report, g.lab, g.mass_mct, g.colour) for g in p.gradings] == [("RPT-1", "lab-d", 1_490, "E")]
    assert any("attested by producer-a" in claim for claim in p.attested)
    assert (p.tree_size, p.registry_size, p.record_count, p.as_of) == (9, 3, 7, 7)
    assert any(rule.startswith("inclusion:") for rule in p.rules_checked)
    report = check_bundle(bundle, TRUST)
    assert report.ok and report.provenance == p
    json.dumps(report.to_json())  # JSON-ready


def test_build_is_canonical_and_json_round_trips(world: tuple[Log, str, bytes]) -> None:
    _, note, data = world
    entries = read_bundle(data).entries
    heads = [(h.item, h.index, [Digest(p) for p in h.proof]) for h in read_bundle(data).heads]
    ids = [(e.index, e.leaf, [Digest(p) for p in e.proof]) for e in reversed(read_bundle(data).identities)]
    again = build_bundle("S1", note, [(e.index, e.leaf, [Digest(h) for h in e.proof]) for e in reversed(entries)],
                         heads, ids)
    assert again == data  # sorted by index, one encoding
    rendered = bundle_to_json(data)
    assert rendered["tree_size"] == 9 and rendered["checkpoint"] == note
    assert [h["item"] for h in rendered["heads"]] == ["L1", "S1"]  # type: ignore[attr-defined]
    assert bundle_from_json(json.loads(json.dumps(rendered))) == data
    with pytest.raises(InputError) as twice:
        build_bundle("S1", note, [(0, entries[0].leaf, []), (0, entries[0].leaf, [])], heads)
    assert twice.value.code == "bundle.duplicate_index"


def test_the_json_rendering_is_read_as_strictly_as_the_bytes(world: tuple[Log, str, bytes]) -> None:
    """Not an object, an unknown field, a float version, a lone surrogate: typed format errors. Records out of
    order stay out of order (the verifier's bundle.order), as in the binary form; nothing is re-sorted."""
    _, _, data = world
    rendered = bundle_to_json(data)
    for value in (None, [], "bundle", 5):
        with pytest.raises(BundleFormatError):
            bundle_from_json(value)  # type: ignore[arg-type]
    records, heads = rendered["records"], rendered["heads"]
    assert isinstance(records, list) and isinstance(heads, list)
    changed: list[dict[str, object]] = [
        {"v": 2.0}, {"v": True}, {"extra": 1}, {"item": "\ud800"}, {"checkpoint": 7},
        {"heads": [{**heads[0], "item": "S1\udc80"}]}, {"heads": [{**heads[0], "extra": 1}]},
        {"records": [*records[:-1], {**records[-1], "leaf_index": -1}]}, {"records": records[0]}, {"heads": [1]},
        {"tree_size": "lies"}, {"tree_size": 10}, {"origin": "elsewhere"}, {"root_hash": None}]
    for change in changed:
        with pytest.raises(BundleFormatError):
            bundle_from_json({**rendered, **change})
    derived = {"origin", "tree_size", "root_hash"}
    assert bundle_from_json({k: v for k, v in rendered.items() if k not in derived}) == data  # may be left out
    swapped = bundle_from_json({**rendered, "records": [records[1], records[0], *records[2:]]})
    assert swapped != data and "bundle.order" in codes_of(swapped)
    with pytest.raises(BundleFormatError):
        build_bundle("S1", "x\n", [], [("\udc80", 0, [])])


def test_a_policy_is_judged_over_the_provenance(bundle: bytes) -> None:
    report = check_bundle(bundle, TRUST, Policy(deny_origin=frozenset({"BW"})))
    assert report.ok and not report.policy_ok
    assert {(f.code, f.item) for f in report.policy_findings} == {("policy.denied_origin", "L1"),
                                                                  ("policy.denied_origin", "S1")}
    assert report.provenance is not None and not report.provenance.compliant
    with pytest.raises(RuleError) as err:
        verify_bundle(bundle, TRUST, Policy(deny_origin=frozenset({"BW"})))
    assert err.value.code == "policy.denied_origin"
    assert verify_bundle(bundle, TRUST, Policy(deny_origin=frozenset({"RU"}))).compliant


# --- tampering ----------------------------------------------------------------------------------------------------

def test_every_single_byte_flip_is_rejected(bundle: bytes) -> None:
    """Both flips of every byte (low and high bit) through the raising tier, which stops at the first fault;
    every 16th through the reporting tier too, which must find a fault as well and never raise but for a
    non-bundle."""
    for position in range(len(bundle)):
        for mask in (0x01, 0x80):
            flipped = bundle[:position] + bytes([bundle[position] ^ mask]) + bundle[position + 1:]
            with pytest.raises(StoneTrailError):
                verify_bundle(flipped, TRUST)
            if position % 16 == 0 and mask == 0x01:
                assert rejected(flipped), position


def test_cut_short_or_padded_bytes_are_not_a_bundle(bundle: bytes) -> None:
    for length in range(len(bundle)):
        with pytest.raises(BundleFormatError):
            read_bundle(bundle[:length])
    for tail in (b"\x00", b"\xc0", bundle):
        with pytest.raises(BundleFormatError) as err:
            check_bundle(bundle + tail, TRUST)
        assert err.value.code == "codec.trailing_bytes"
    with pytest.raises(BundleFormatError) as err:
        read_bundle(b"stonetrail/v2/bundle\n" + bundle[len(BUNDLE_TAG):])
    assert err.value.code == "bundle.tag"


def test_removing_any_record_is_rejected(world: tuple[Log, str, bytes]) -> None:
    """The last record too: the checkpoint's heads line names it as the stone's latest (docs/format.md §7c)."""
    _, note, data = world
    bundle = read_bundle(data)
    entries, heads, ids = bundle.entries, bundle.heads, bundle.identities
    enc = partial(encode_bundle, identities=ids)  # the faithful identity proofs
    assert verify_bundle(enc(entries, note, heads=heads), TRUST).as_of == 7  # the helper is faithful
    want = {0: "registry.gap", 1: "registry.gap", 2: "registry.head_mismatch", 3: "bundle.incomplete",
            5: "bundle.incomplete", 6: "chain.link_mismatch", 7: "bundle.head_mismatch"}
    for i, entry in enumerate(entries):
        rest = enc(entries[:i] + entries[i + 1:], note, heads=heads)
        assert want[entry.index] in codes_of(rest), entry.index
        assert rejected(rest)
    assert rejected(enc(entries[:-2], note, heads=heads)) == "bundle.head_mismatch"  # the last two


def _head(log: Log, note: str, item: str) -> HeadEntry:
    """``item``'s head proof under ``note`` (as an exporter makes it), from the log's records below its size."""
    size = read_unverified_checkpoint(note).tree_size
    heads = ItemHeads.of((i, log.ledger.record(i)) for i in range(size))
    proof = heads.proof(item)
    return HeadEntry(item=item, index=proof.index, proof=proof.proof)


def test_the_head_proofs_are_checked(world: tuple[Log, str, bytes]) -> None:
    """Missing, extra, mutated (the mutation catalogue) or from a checkpoint without or with another heads line:
    each rejected with its reason; the faithful ones accepted. S1's bundle proves the heads of S1 and of L1 (cut
    into S1: consumed, so its later records could only be statements about it)."""
    log, note, data = world
    entries, heads, ids = read_bundle(data).entries, read_bundle(data).heads, read_bundle(data).identities
    enc = partial(encode_bundle, identities=ids)  # the faithful identity proofs
    assert list(heads) == [_head(log, note, "L1"), _head(log, note, "S1")]
    lot, head = heads
    assert verify_bundle(enc(entries, note, heads=heads), TRUST).item == "S1"
    assert rejected(enc(entries, note)) == "bundle.head_missing"
    assert rejected(enc(entries, note, heads=[head])) == "bundle.head_missing"  # L1's
    for other in ("L1-R", "S2"):  # L1's other output, another stone: not in S1's provenance
        extra = sorted([*heads, _head(log, note, other)], key=lambda h: h.item)
        assert rejected(enc(entries, note, heads=extra)) == "bundle.extra_head"
    assert rejected(enc(entries, note, heads=[lot, replace(head, item="S2")])) == "bundle.head_missing"
    for target in (lot, head):
        proof = list(target.proof)
        changes: list[dict[str, object]] = [
            {"index": target.index + 1}, {"proof": (*proof, proof[0])}, {"proof": tuple(proof[:-1])},
            {"proof": ()}, {"proof": (b"\x00" * 32, *proof)}]
        if target.index:
            changes.append({"index": target.index - 1})
        for k in range(len(proof)):
            changes.append({"proof": (*proof[:k], bytes([proof[k][0] ^ 1]) + proof[k][1:], *proof[k + 1:])})
        for change in changes:
            mutated = [replace(h, **change) if h is target else h for h in heads]  # type: ignore[arg-type]
            assert rejected(enc(entries, note, heads=mutated)) == "bundle.head_mismatch", change
    cp = read_unverified_checkpoint(note)
    registry, heads_line, identities = cp.extensions
    word, count, root = heads_line.split(" ")
    lines = {"checkpoint.heads_missing": (registry, identities),
             "checkpoint.extension": (registry, heads_line, heads_line, identities)}
    for code, extensions in lines.items():
        assert rejected(enc(entries, _sign(replace(cp, extensions=extensions)), heads=heads)) == code
    for other_line in (f"{word} {int(count) * 2} {root}", f"{word} {int(count) // 2} {root}",
                       f"{word} {count} {Digest(bytes(32)).b64()}"):
        forged = _sign(replace(cp, extensions=(registry, other_line, identities)))
        assert rejected(enc(entries, forged, heads=heads)) == "bundle.head_mismatch", other_line
    for bad in ([head, lot], [lot, head, head]):
        with pytest.raises(BundleFormatError) as err:
            read_bundle(enc(entries, note, heads=bad))
        assert err.value.code == "bundle.malformed"


def test_a_statement_about_the_stone_is_in_its_bundle_and_cannot_be_left_out(tmp_path: Path) -> None:
    """A lab's correction of S1's grading, followed by a sale; and, after the cut, the producer's correction of
    the mined record of L1 (consumed by the cut). Statements are not hash-linked, but the checkpoint's record
    count for each item includes them, so a bundle without either is rejected."""
    log = small_ledger(tmp_path / "statement.ledger")
    grading, mined = log.ledger.record(7), log.ledger.record(3)
    log.put(log.w.make(Corrected(subject=grading.record_hash, statement="mass is 1.489 ct"), "lab-d",
                       signers=["lab-d"]))
    log.put(log.w.make(Transferred(to="producer-a", mode="title"), "trader-b", inputs=["S1"]))
    log.put(log.w.make(Corrected(subject=mined.record_hash, statement="mined at Orapa, not Jwaneng"),
                       "producer-a", signers=["producer-a"]))
    note = log.checkpoint()
    data = export_bundle(log.path, "S1", note)
    bundle = read_bundle(data)
    assert [e.index for e in bundle.entries][-3:] == [9, 10, 11]
    p = verify_bundle(data, TRUST)
    assert [(s.position, s.kind, s.item) for s in p.path][-3:] == [
        (9, "corrected", "S1"), (10, "transferred", "S1"), (11, "corrected", "L1")]
    assert "S1: lab-d corrects record 7: 'mass is 1.489 ct' (record 9)" in p.attested
    assert "L1: producer-a corrects record 3: 'mined at Orapa, not Jwaneng' (record 11)" in p.attested
    for left_out in (9, 11):
        without = [e for e in bundle.entries if e.index != left_out]
        assert rejected(encode_bundle(without, note, heads=bundle.heads)) == "bundle.head_mismatch", left_out
    log.ledger.close()


def test_a_later_theft_report_cannot_be_cut_from_a_bundle(tmp_path: Path) -> None:
    """The stone's bundle after it was reported stolen shows it retired; with the report cut out it is
    rejected, under the new checkpoint and with the old checkpoint's head proof alike. The bundle made before
    the report still verifies, as of that checkpoint's tree size."""
    log = small_ledger(tmp_path / "theft.ledger")
    before = log.checkpoint()
    old = export_bundle(log.path, "S1", before)
    log.put(log.w.make(Retired(reason="stolen"), "trader-b", inputs=["S1"]))
    after = log.checkpoint()
    new = export_bundle(log.path, "S1", after)
    assert verify_bundle(new, TRUST).state == "retired"
    p = verify_bundle(old, TRUST)
    assert (p.state, p.tree_size) == ("live", 9)
    cut = read_bundle(new)
    assert cut.entries[-1].index == 9
    assert rejected(encode_bundle(cut.entries[:-1], after, heads=cut.heads)) == "bundle.head_mismatch"
    assert rejected(encode_bundle(cut.entries[:-1], after, heads=read_bundle(old).heads)) == "bundle.head_mismatch"
    log.ledger.close()
    (tmp_path / "S1.stproof").write_bytes(new)
    (tmp_path / "trust.keys").write_text(TRUST.format(), encoding="utf-8")
    shown = CliRunner().invoke(main, ["proof", "verify", str(tmp_path / "S1.stproof"), "--trust",
                                      str(tmp_path / "trust.keys")])
    assert shown.exit_code == 0  # the evidence is valid; what it says is printed first
    assert "WARNING:    S1 is retired (retired: stolen, record 9)" in shown.output


def test_reordering_or_duplicating_records_is_rejected(world: tuple[Log, str, bytes]) -> None:
    _, note, data = world
    entries = list(read_bundle(data).entries)
    for i in range(len(entries) - 1):
        swapped = [*entries[:i], entries[i + 1], entries[i], *entries[i + 2:]]
        assert "bundle.order" in codes_of(encode_bundle(swapped, note))
        assert rejected(encode_bundle(swapped, note))
    for i in range(len(entries)):
        doubled = [*entries[:i + 1], entries[i], *entries[i + 1:]]
        assert rejected(encode_bundle(doubled, note)) == "bundle.duplicate_index"


def _entry(log: Log, note: str, index: int) -> BundleEntry:
    """Leaf ``index`` of ``log`` with its inclusion proof at the checkpoint's size (as an exporter makes it)."""
    size = read_unverified_checkpoint(note).tree_size
    return BundleEntry(index=index, leaf=log.ledger.record(index).raw,
                       proof=tuple(log.ledger.tree.inclusion_proof(index, size)))


def test_another_stones_record_is_rejected(world: tuple[Log, str, bytes]) -> None:
    log, note, data = world
    entries = list(read_bundle(data).entries)
    other = [_entry(log, note, 4), _entry(log, note, 8)]  # S2 mined, S2 sold: valid leaves of this very log
    added = sorted([*entries, other[1]], key=lambda e: e.index)
    assert rejected(encode_bundle(added, note)) == "bundle.extra_record"
    swapped = sorted([e for e in entries if e.index != 6] + [other[0]], key=lambda e: e.index)
    assert {"bundle.extra_record", "chain.link_mismatch"} <= codes_of(encode_bundle(swapped, note))
    assert rejected(encode_bundle(swapped, note))
    assert rejected(encode_bundle(entries, note, item="S2")) == "bundle.incomplete"  # relabelled: no S2 in it
    assert rejected(encode_bundle(entries, note, item="L1-R")) == "bundle.extra_record"  # a sibling, not S1


def test_a_record_from_another_ledger_is_rejected(world: tuple[Log, str, bytes], tmp_path: Path) -> None:
    _, note, data = world
    other = small_ledger(tmp_path / "other.ledger", "other.stonetrail.example/ledger")
    other_note = other.ledger.checkpoint(OPERATOR, "test.stonetrail.example/ledger")
    entries = list(read_bundle(data).entries)
    for i, entry in enumerate(entries):
        foreign = _entry(other, other_note, entry.index)
        code = rejected(encode_bundle([*entries[:i], foreign, *entries[i + 1:]], note))
        assert code.startswith("proof."), code
        assert "record.wrong_origin" in codes_of(encode_bundle([*entries[:i], foreign, *entries[i + 1:]], note))
    whole = export_bundle(other.path, "S1", other_note)  # another ledger's own bundle, checkpoint and all
    # signed by this ledger's operator key, under this ledger's name: a key pinned for one ledger never vouches for
    # another's checkpoints (an adversarial review: any pinned operator key could sign any origin)
    assert {f.code for f in check_bundle(whole, TRUST).findings} == {"note.unverified"}
    pinned_too = note_verifier_key("other.stonetrail.example/ledger", OPERATOR.public_key)
    both = Trust(operators=(*TRUST.operators, pinned_too),
                 authorities=TRUST.authorities)  # one operator key pinned for two ledgers, under each one's name
    whole = export_bundle(other.path, "S1", other.ledger.checkpoint(OPERATOR))
    assert verify_bundle(whole, both).checkpoint_origin == "other.stonetrail.example/ledger"
    origin = "test.stonetrail.example/ledger"
    assert {f.code for f in check_bundle(whole, both, origin=origin).findings} == {"checkpoint.origin_mismatch"}
    with pytest.raises(VerificationError):
        verify_bundle(whole, both, origin=origin)
    relabelled = encode_bundle(read_bundle(whole).entries, note)  # its records under this ledger's checkpoint
    assert {"proof.root_mismatch", "record.wrong_origin"} <= codes_of(relabelled)
    other.ledger.close()


def test_a_checkpoint_by_an_unknown_key_is_rejected(world: tuple[Log, str, bytes]) -> None:
    _log, note, data = world
    cp = read_unverified_checkpoint(note)
    forged = sign_checkpoint(cp, "test.stonetrail.example/ledger", key("not the operator"))
    entries = read_bundle(data).entries
    assert rejected(encode_bundle(entries, forged)) == "note.unverified"
    with pytest.raises(UnverifiedNoteError):
        verify_bundle(encode_bundle(entries, forged), TRUST)


def test_a_checkpoint_of_another_tree_size_is_rejected(world: tuple[Log, str, bytes], tmp_path: Path) -> None:
    _log, _note, data = world
    entries = read_bundle(data).entries
    later = small_ledger(tmp_path / "later.ledger")
    later.put(later.w.mine("S3", 700))
    grown = later.checkpoint()  # size 10, the same first nine leaves (same keys, same times)
    assert read_unverified_checkpoint(grown).tree_size == 10
    code = rejected(encode_bundle(entries, grown))
    assert code in {"proof.root_mismatch", "proof.wrong_length"}
    later.ledger.close()


def _sign(cp: Checkpoint) -> str:
    return sign_checkpoint(cp, "test.stonetrail.example/ledger", OPERATOR)


def test_the_inclusion_proof_mutation_catalogue_is_rejected(world: tuple[Log, str, bytes]) -> None:
    """transparency-dev/merkle's catalogue (proof/verify_test.go) on every proof: the index +-1, the tree size
    doubled and halved and the root wrong (in an operator-signed checkpoint: the verifier takes them from it), a
    hash added, removed, flipped, cut short or prepended, the proof empty. (A size off by one is not in it: an
    inclusion proof can be valid for two sizes with the same path shape, which only a consistency proof tells
    apart.)"""
    _, note, data = world
    cp = read_unverified_checkpoint(note)
    entries = list(read_bundle(data).entries)
    for size in (cp.tree_size * 2, cp.tree_size // 2):
        assert rejected(encode_bundle(entries, _sign(replace(cp, tree_size=size)))).startswith("proof.")
        for e in entries:  # each proof on its own, not only the bundle as a whole
            with pytest.raises(ProofError):
                verify_inclusion(leaf_hash(e.leaf), e.index, size, [Digest(h) for h in e.proof], cp.root_hash)
    wrong_root = _sign(replace(cp, root_hash=Digest(bytes(31) + b"\x01")))
    assert rejected(encode_bundle(entries, wrong_root)) == "proof.root_mismatch"
    for i, e in enumerate(entries):
        proof = list(e.proof)
        changes: list[dict[str, object]] = [
            {"index": e.index + 1}, {"proof": (*proof, proof[0])}, {"proof": tuple(proof[:-1])},
            {"proof": (b"\x00" * 32, *proof)}, {"proof": ()}]
        if e.index:
            changes.append({"index": e.index - 1})
        for k in range(len(proof)):
            changes.append({"proof": (*proof[:k], bytes([proof[k][0] ^ 1]) + proof[k][1:], *proof[k + 1:])})
            changes.append({"proof": (*proof[:k], proof[k][:31], *proof[k + 1:])})
        for change in changes:
            mutated = [*entries[:i], replace(e, **change), *entries[i + 1:]]  # type: ignore[arg-type]
            assert rejected(encode_bundle(mutated, note)), (e.index, change)


# --- articles: a stone moves with the ring it is set in -------------------------------------------------------

def test_a_stone_set_in_an_article_carries_the_articles_custody(tmp_path: Path) -> None:
    log = Log(tmp_path / "ring.ledger")
    w = log.w
    log.enrol("producer-a", "trader-b", "cutter-c")
    for stone in ("S1", "S2"):
        log.put(w.mine(stone, 1_000))
        log.put(w.make(Transferred(to="cutter-c", mode="title"), "producer-a", inputs=[stone]))
    log.put(w.make(Set(description="two-stone ring"), "cutter-c", inputs=["S1", "S2"],
                   outputs=[Output(id="RING-1", type="article", mass_mct=2_000)]))
    log.put(w.make(Transferred(to="trader-b", mode="title"), "cutter-c", inputs=["RING-1"]))
    log.put(w.make(Transferred(to="cutter-c", mode="title"), "trader-b", inputs=["RING-1"]))
    log.put(w.make(Unset(reason="remount"), "cutter-c", inputs=["RING-1", "S1", "S2"], consumes=["RING-1"]))
    note = log.checkpoint()
    p = verify_bundle(export_bundle(log.path, "S1", note), TRUST)
    assert [(s.kind, s.item, s.holder) for s in p.path] == [
        ("mined", "S1", "producer-a"), ("transferred", "S1", "cutter-c"), ("set", "S1", "cutter-c"),
        ("transferred", "RING-1", "trader-b"), ("transferred", "RING-1", "cutter-c"), ("unset", "S1", "cutter-c")]
    assert (p.state, p.holder, p.article) == ("live", "cutter-c", None)
    ring = verify_bundle(export_bundle(log.path, "RING-1", note), TRUST)
    assert {r.item for r in ring.roots} == {"S1", "S2"} and ring.state == "consumed"
    log.ledger.close()


def test_a_set_stone_carries_its_articles_latest_record(tmp_path: Path) -> None:
    """While S1 is set in RING-1, S1's bundle proves the ring's latest record too: cutting the ring's sale out
    is rejected."""
    log = Log(tmp_path / "ring.ledger")
    w = log.w
    log.enrol("producer-a", "trader-b", "cutter-c")
    log.put(w.mine("S1", 1_000))
    log.put(w.make(Transferred(to="cutter-c", mode="title"), "producer-a", inputs=["S1"]))
    log.put(w.make(Set(description="solitaire"), "cutter-c", inputs=["S1"],
                   outputs=[Output(id="RING-1", type="article", mass_mct=1_000)]))
    log.put(w.make(Transferred(to="trader-b", mode="title"), "cutter-c", inputs=["RING-1"]))
    note = log.checkpoint()
    bundle = read_bundle(export_bundle(log.path, "S1", note))
    enc = partial(encode_bundle, identities=bundle.identities)  # the faithful identity proofs
    assert [h.item for h in bundle.heads] == ["RING-1", "S1"]
    assert verify_bundle(enc(bundle.entries, note, heads=bundle.heads), TRUST).holder == "trader-b"
    cut = enc(bundle.entries[:-1], note, heads=bundle.heads)
    assert [(f.code, f.item) for f in check_bundle(cut, TRUST).findings] == [("bundle.head_mismatch", "RING-1")]
    log.ledger.close()


# --- export -------------------------------------------------------------------------------------------------------

def test_export_checks_the_checkpoint_against_the_file(world: tuple[Log, str, bytes], tmp_path: Path) -> None:
    log, note, _ = world
    cp = read_unverified_checkpoint(note)
    cases = {"checkpoint.root_mismatch": _sign(replace(cp, root_hash=Digest(bytes(31) + b"\x01"))),
             "checkpoint.beyond_log": _sign(replace(cp, tree_size=99)),
             "checkpoint.origin_mismatch": _sign(replace(cp, origin="elsewhere.example/ledger"))}
    for code, forged in cases.items():
        with pytest.raises(VerificationError) as err:
            export_bundle(log.path, "S1", forged)
        assert err.value.code == code
    with pytest.raises(InputError) as unknown:
        export_bundle(log.path, "NOPE", note)
    assert unknown.value.code == "item.unknown"
    with pytest.raises(UnverifiedNoteError):
        export_bundle(log.path, "S1", _sign(cp), trust=replace(TRUST, operators=TRUST.authorities))
    early_lines = Commitments()
    for i in range(4):  # L1, mined at 3
        early_lines.add(i, log.ledger.record(i))
    early = _sign(Checkpoint(origin=cp.origin, tree_size=4, root_hash=log.ledger.tree.root_at(4),
                             extensions=(cp.extensions[0], *early_lines.extensions())))  # all enrolments are below 4
    with pytest.raises(VerificationError) as later:  # L1 has records after 4: the early checkpoint is stale
        export_bundle(log.path, "L1", early)
    assert later.value.code == "checkpoint.stale"
    assert read_bundle(export_bundle(log.path, "L1", early, as_of=True)).entries[-1].index == 3
    stale = _sign(replace(cp, tree_size=4, root_hash=log.ledger.tree.root_at(4)))  # the lines of size 9
    without = _sign(replace(cp, extensions=cp.extensions[:1]))
    stale_ids = _sign(replace(early_cp := read_unverified_checkpoint(early), extensions=(
        *early_cp.extensions[:2], cp.extensions[2])))
    without_ids = _sign(replace(early_cp, extensions=early_cp.extensions[:2]))
    for code, forged in (("checkpoint.heads_mismatch", stale), ("checkpoint.heads_missing", without),
                         ("checkpoint.identities_mismatch", stale_ids),
                         ("checkpoint.identities_missing", without_ids)):
        with pytest.raises(VerificationError) as err:
            export_bundle(log.path, "L1", forged)
        assert err.value.code == code


# --- offline ------------------------------------------------------------------------------------------------------

def test_verifying_needs_only_the_bundle_and_the_trust_file(bundle: bytes, tmp_path: Path) -> None:
    (tmp_path / "S1.stproof").write_bytes(bundle)
    (tmp_path / "trust.keys").write_text(TRUST.format(), encoding="utf-8")
    code = """if True:
        import builtins, io, os, sys
        opened = []
        real_open, real_io_open = builtins.open, io.open
        def spy(file, *a, **k):
            opened.append(os.path.abspath(file) if isinstance(file, str | bytes | os.PathLike) else file)
            return real_open(file, *a, **k)
        builtins.open = io.open = spy
        from ledger.bundle import verify_bundle
        from ledger.trust import Trust
        p = verify_bundle(open("S1.stproof", "rb").read(), Trust.parse(open("trust.keys").read()))
        assert p.item == "S1" and dict(p.origin) == {"BW": 1490}, p
        assert "ledger.storage" not in sys.modules and "ledger._ledger" not in sys.modules, sorted(sys.modules)
        assert "click" not in sys.modules
        assert "cryptography" not in sys.modules  # libsodium checks the signatures; no private key is loaded
        mine = [f for f in opened if isinstance(f, str) and f.startswith(os.getcwd())]
        assert sorted(os.path.basename(f) for f in mine) == ["S1.stproof", "trust.keys"], opened
        assert not [f for f in opened if str(f).endswith(".ledger")], opened
        assert sorted(os.listdir(".")) == ["S1.stproof", "trust.keys"]
        print("verified offline")
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "verified offline"


def test_importing_the_bundle_verifier_does_not_load_the_store() -> None:
    code = ("import sys, ledger.bundle; "
            "print(sorted(m for m in sys.modules if m in ('click', 'ledger._ledger', 'ledger.audit')"
            " or m.startswith('ledger.storage')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# --- the command line -----------------------------------------------------------------------------------------------

def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def test_cli_export_verify_show(world: tuple[Log, str, bytes], tmp_path: Path) -> None:
    log, note, data = world
    (tmp_path / "cp.txt").write_text(note, encoding="utf-8")
    (tmp_path / "trust.keys").write_text(TRUST.format(), encoding="utf-8")
    out = tmp_path / "S1.stproof"
    result = run("proof", "export", log.path, "S1", "--checkpoint", tmp_path / "cp.txt", "-o", out)
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == data
    again = run("proof", "export", log.path, "S1", "--checkpoint", tmp_path / "cp.txt", "-o", out)
    assert again.exit_code == 3 and "exists" in again.output  # never overwritten
    result = run("proof", "verify", out, "--trust", tmp_path / "trust.keys")
    assert result.exit_code == 0, result.output
    for text in ("S1", "BW 1.490 ct (attested by producer-a)", "1.490 ct", "graded", "trader-b", "verdict:    valid"):
        assert text in result.output, text
    denied = run("proof", "verify", out, "--trust", tmp_path / "trust.keys", "--deny-origin", "BW")
    assert denied.exit_code == 1 and "policy.denied_origin" in denied.output
    assert run("proof", "verify", out, "--trust", tmp_path / "trust.keys", "--deny-origin", "B").exit_code == 2
    flipped = tmp_path / "bad.stproof"
    flipped.write_bytes(data[:-40] + bytes([data[-40] ^ 1]) + data[-39:])
    bad = run("proof", "verify", flipped, "--trust", tmp_path / "trust.keys")
    assert bad.exit_code == 1 and "INVALID" in bad.output
    (tmp_path / "junk.stproof").write_bytes(b"not a bundle")
    junk = run("proof", "verify", tmp_path / "junk.stproof", "--trust", tmp_path / "trust.keys")
    assert junk.exit_code == 2 and "bundle.tag" in junk.output and len(junk.output.strip().splitlines()) == 1
    shown = run("proof", "show", out, "--json")
    assert shown.exit_code == 0
    rendered = json.loads(shown.output)
    assert rendered["item"] == "S1" and rendered["tree_size"] == 9 and rendered["checkpoint"] == note
    assert [r["leaf_index"] for r in rendered["records"]] == [0, 1, 2, 3, 5, 6, 7]
    assert all({"leaf", "inclusion_proof"} <= set(r) for r in rendered["records"])
    listed = run("proof", "show", out)
    assert listed.exit_code == 0 and "unverified" in listed.output and "graded" in listed.output
    as_json = run("proof", "verify", out, "--trust", tmp_path / "trust.keys", "--json")
    report = json.loads(as_json.output)
    assert as_json.exit_code == 0 and report["valid"] and report["provenance"]["origin"] == {"BW": 1_490}
    assert [s["kind"] for s in report["provenance"]["path"]] == ["mined", "split", "transferred", "graded"]
    for command in ("export", "verify", "show"):
        assert "Example" in run("proof", command, "--help").output


def test_cli_export_defaults(world: tuple[Log, str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log, note, data = world
    ledger_copy = tmp_path / "main.ledger"
    ledger_copy.write_bytes(log.path.read_bytes())
    (tmp_path / "checkpoint.txt").write_text(note, encoding="utf-8")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    result = run("proof", "export", ledger_copy, "S1")
    assert result.exit_code == 0, result.output
    assert (work / "S1.stproof").read_bytes() == data


def test_a_statement_about_a_ring_the_stone_has_left_cannot_be_dropped(tmp_path: Path) -> None:
    """The unset consumes the ring, so the ring's records count to the end of S1's provenance: a later
    correction of the ring's sale (made while S1 was in it) is in S1's bundle, and dropping it is rejected."""
    log = Log(tmp_path / "unset.ledger")
    w = log.w
    log.enrol("producer-a", "trader-b", "cutter-c")
    log.put(w.mine("S1", 1_000))
    log.put(w.make(Transferred(to="cutter-c", mode="title"), "producer-a", inputs=["S1"]))
    log.put(w.make(Set(description="solitaire"), "cutter-c", inputs=["S1"],
                   outputs=[Output(id="RING-1", type="article", mass_mct=1_000)]))
    log.put(w.make(Transferred(to="trader-b", mode="title"), "cutter-c", inputs=["RING-1"]))
    sale = log.ledger.record(log.ledger.size - 1)
    log.put(w.make(Transferred(to="cutter-c", mode="title"), "trader-b", inputs=["RING-1"]))
    log.put(w.make(Unset(reason="remount"), "cutter-c", inputs=["RING-1", "S1"], consumes=["RING-1"]))
    log.put(w.make(Corrected(subject=sale.record_hash, statement="sold at a discount"), "cutter-c",
                   signers=["cutter-c"]))
    note = log.checkpoint()
    bundle = read_bundle(export_bundle(log.path, "S1", note))
    enc = partial(encode_bundle, identities=bundle.identities)  # the faithful identity proofs
    assert [h.item for h in bundle.heads] == ["RING-1", "S1"] and bundle.entries[-1].index == 9
    assert verify_bundle(enc(bundle.entries, note, heads=bundle.heads), TRUST).state == "live"
    dropped = enc(bundle.entries[:-1], note, heads=bundle.heads)
    assert [(f.code, f.item) for f in check_bundle(dropped, TRUST).findings] == [("bundle.head_mismatch", "RING-1")]
    log.ledger.close()
