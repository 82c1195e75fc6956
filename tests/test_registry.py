"""The registry's key lifecycle (enrolled, key_added, key_revoked), its hash chain, and the checkpoint's
commitment to it: a revoked key signs nothing after its revocation, a rotation keeps earlier records valid, and
a revocation cannot be left out without a named finding."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from ledger import AUTHORITY, Ledger, Output, Record, Transferred, Trust, check_ledger, checkpoint_file
from ledger.checkpoint import Checkpoint, format_checkpoint, open_checkpoint, parse_checkpoint, sign_checkpoint
from ledger.commitments import Commitments
from ledger.custody import CustodyState
from ledger.errors import InputError, NoteFormatError, RuleError, VerificationError
from ledger.events import REGISTRY_KINDS, Mined
from ledger.hashing import Digest
from ledger.keys import PrivateKey, note_verifier_key
from ledger.registry import (
    EMPTY_REGISTRY_HEAD,
    checkpoint_registry,
    format_registry_extension,
    parse_registry_extension,
    verify_registry_chain,
)
from ledger.storage import FileStore
from world import ORIGIN, PARTIES, World, codes, key, key_record

OLD = key("producer-a")  # producer-a's enrolled key
NEW = key("producer-a#2")  # the key it rotates to
OPERATOR = key("operator")
TRUST = Trust(operators=(note_verifier_key(ORIGIN, OPERATOR.public_key),),
              authorities=(note_verifier_key("authority", key(AUTHORITY).public_key),))
FAKE_AUTHORITY = key("fake authority")


def mined(w: World, item: str, signing_key: PrivateKey | None = None) -> Record:
    """producer-a mines ``item``, signing with ``signing_key`` (default: its enrolled key)."""
    return w.make(Mined(mine="Jwaneng", country="BW"), "producer-a", place="BW",
                  outputs=[Output(id=item, type="stone", mass_mct=1_000)],
                  keys={"producer-a": signing_key} if signing_key else None)


def added(w: World, party: str = "producer-a", raw: bytes = NEW.public_key.raw, **kw: object) -> Record:
    return key_record(w, "key_added", party, raw, **kw)  # type: ignore[arg-type]


def revoked(w: World, party: str = "producer-a", raw: bytes = OLD.public_key.raw, **kw: object) -> Record:
    return key_record(w, "key_revoked", party, raw, **kw)  # type: ignore[arg-type]


@pytest.fixture
def w() -> World:
    world = World()
    world.enrol_all()  # positions 0..4
    return world


def rotate(w: World) -> None:
    """producer-a mines S1 with its old key, gets NEW, mines S2 with either key, then loses OLD."""
    assert w.add(mined(w, "S1")) == []
    assert w.add(added(w)) == []
    assert w.add(mined(w, "S2", NEW)) == []
    assert w.add(mined(w, "S3", OLD)) == []  # OLD is still valid: not revoked yet
    assert w.add(revoked(w)) == []


# --- key validity by log position -------------------------------------------------------------------------

def test_a_revoked_key_signs_nothing_after_its_revocation(w: World) -> None:
    assert w.add(mined(w, "S1")) == []  # the same key, before its revocation: valid
    assert w.add(added(w)) == []
    assert w.add(revoked(w)) == []
    assert codes(w.add(mined(w, "S2", OLD))) == ["sig.unknown_key"]
    assert w.add(mined(w, "S3", NEW)) == []


def test_a_revoked_key_cannot_cosign(w: World) -> None:
    assert w.add(mined(w, "S1")) == []
    assert w.add(revoked(w, "trader-b", key("trader-b").public_key.raw)) == []
    r = w.make(Transferred(to="trader-b", mode="title"), "producer-a", inputs=["S1"])
    assert codes(w.add(r)) == ["sig.unknown_key"]


def test_an_added_key_is_valid_only_after_its_grant(w: World) -> None:
    assert codes(w.add(mined(w, "S1", NEW))) == ["sig.unknown_key"]
    assert w.add(added(w)) == []
    assert w.add(mined(w, "S2", NEW)) == []


def test_revoking_the_last_key_silences_the_party(w: World) -> None:
    assert w.add(revoked(w)) == []
    assert codes(w.add(mined(w, "S1"))) == ["sig.unknown_key"]


def test_key_valid_is_judged_by_position(w: World) -> None:
    rotate(w)
    registry = w.state.registry
    granted_new, revoked_old = 6, 9
    assert [w.records[p].body.kind for p in (granted_new, revoked_old)] == ["key_added", "key_revoked"]
    old, new = OLD.public_key.raw, NEW.public_key.raw
    assert [q for q in range(12) if registry.key_valid("producer-a", old, q)] == list(range(1, revoked_old + 1))
    assert [q for q in range(12) if registry.key_valid("producer-a", new, q)] == list(range(granted_new + 1, 12))
    assert not registry.key_valid("trader-b", new, 11)  # another party's key


def test_records_signed_before_a_rotation_stay_valid_after_it(w: World) -> None:
    rotate(w)
    assert w.add(w.make(Transferred(to="trader-b", mode="title"), "producer-a", inputs=["S1"],
                        keys={"producer-a": NEW})) == []
    replay = CustodyState(ORIGIN, {key(AUTHORITY).public_key.raw})
    assert [f for r in w.records for f in replay.apply(r)] == []  # the whole log, replayed afterwards


# --- registry records: who may write them, and what they may say -------------------------------------------

@pytest.mark.parametrize("kind", sorted(REGISTRY_KINDS))
def test_registry_record_not_signed_by_the_authority(w: World, kind: str) -> None:
    record = {"enrolled": lambda: w.enrol("outsider", ["trader"], signer=FAKE_AUTHORITY),
              "key_added": lambda: added(w, signer=FAKE_AUTHORITY),
              "key_revoked": lambda: revoked(w, signer=FAKE_AUTHORITY)}[kind]()
    assert codes(w.add(record)) == ["registry.not_authority"]


@pytest.mark.parametrize("kind", ["key_added", "key_revoked"])
def test_key_record_acted_by_a_party(w: World, kind: str) -> None:
    event = (added(w) if kind == "key_added" else revoked(w)).body.event
    assert "registry.not_authority" in codes(w.add(w.make(event, "producer-a")))


def test_a_role_is_granted_never_assumed(w: World) -> None:
    r = w.make(Mined(mine="Jwaneng", country="BW"), "trader-b", place="BW",
               outputs=[Output(id="X", type="stone", mass_mct=5)])
    assert codes(w.add(r)) == ["role.not_granted"]


def test_key_added_for_an_unknown_party(w: World) -> None:
    assert codes(w.add(added(w, "outsider", key("outsider").public_key.raw))) == ["registry.unknown_party"]


def test_key_added_for_the_authority(w: World) -> None:
    assert codes(w.add(added(w, AUTHORITY, key("x").public_key.raw))) == ["registry.reserved_id"]


@pytest.mark.parametrize("holder", ["trader-b", "producer-a"])
def test_key_added_that_is_already_granted(w: World, holder: str) -> None:
    assert codes(w.add(added(w, "producer-a", key(holder).public_key.raw))) == ["registry.duplicate_key"]


def test_a_revoked_key_is_never_granted_again(w: World) -> None:
    assert w.add(added(w)) == []
    assert w.add(revoked(w)) == []
    assert codes(w.add(added(w, "producer-a", OLD.public_key.raw))) == ["registry.duplicate_key"]
    assert codes(w.add(added(w, "trader-b", OLD.public_key.raw))) == ["registry.duplicate_key"]


def test_enrolment_with_a_key_of_another_party(w: World) -> None:
    r = w.enrol("outsider", ["trader"], key_raw=key("trader-b").public_key.raw)
    assert codes(w.add(r)) == ["registry.duplicate_key"]


def test_a_party_key_cannot_be_the_authority_key(w: World) -> None:
    authority = key(AUTHORITY).public_key.raw
    assert codes(w.add(w.enrol("outsider", ["trader"], key_raw=authority))) == ["registry.duplicate_key"]
    assert codes(w.add(added(w, "producer-a", authority))) == ["registry.duplicate_key"]


@pytest.mark.parametrize("raw", [bytes(32), bytes([1]) + bytes(31), bytes.fromhex("ec" + "ff" * 30 + "7f")])
def test_key_added_with_an_unsafe_key(w: World, raw: bytes) -> None:
    found = codes(w.add(added(w, "producer-a", raw)))
    assert len(found) == 1 and found[0].startswith("key."), found


def test_revoking_a_key_never_granted(w: World) -> None:
    assert codes(w.add(revoked(w, "producer-a", key("stolen").public_key.raw))) == ["registry.unknown_key"]


def test_revoking_another_partys_key(w: World) -> None:
    assert codes(w.add(revoked(w, "producer-a", key("trader-b").public_key.raw))) == ["registry.unknown_key"]
    assert w.state.registry.key_valid("trader-b", key("trader-b").public_key.raw, w.state.size)


def test_revoking_a_key_twice(w: World) -> None:
    assert w.add(revoked(w)) == []
    assert codes(w.add(revoked(w))) == ["registry.unknown_key"]


def test_revoking_for_an_unknown_party(w: World) -> None:
    assert codes(w.add(revoked(w, "outsider", key("outsider").public_key.raw))) == ["registry.unknown_party"]


@pytest.mark.parametrize("kind", ["key_added", "key_revoked"])
def test_key_record_off_the_registry_chain(w: World, kind: str) -> None:
    record = added(w, prev=None) if kind == "key_added" else revoked(w, prev=Digest(b"\x07" * 32))
    assert codes(w.add(record)) == ["registry.link_mismatch"]


def test_key_record_older_than_the_registry_head(w: World) -> None:
    r = key_record(w, "key_added", "producer-a", NEW.public_key.raw)
    late = w.make(r.body.event, AUTHORITY, time_ms=1_600_000_000_000)
    assert codes(w.add(late)) == ["chain.time_backwards"]


def test_key_record_with_items_is_refused(w: World) -> None:
    r = w.make(added(w).body.event, AUTHORITY, outputs=[Output(id="FREE", type="stone", mass_mct=1)])
    assert codes(w.add(r)) == ["record.shape"]


def test_refused_registry_records_leave_the_registry_as_it_was(w: World) -> None:
    before = (w.state.registry.size, w.state.registry.head)
    assert w.add(revoked(w, "producer-a", key("stolen").public_key.raw)) != []
    assert w.add(added(w, signer=FAKE_AUTHORITY)) != []
    assert (w.state.registry.size, w.state.registry.head) == before
    assert w.state.registry.head_at(w.state.size) == before
    assert w.state.registry.key_valid("producer-a", OLD.public_key.raw, w.state.size)


def test_head_at_follows_the_log(w: World) -> None:
    rotate(w)
    registry, hashes = w.state.registry, [r.record_hash for r in w.records]
    assert registry.head_at(0) == (0, None)
    assert registry.head_at(1) == (1, hashes[0])
    assert registry.head_at(5) == registry.head_at(6) == (5, hashes[4])  # position 5 is a mined record
    assert registry.head_at(7) == (6, hashes[6])
    assert registry.head_at(10) == registry.head_at(10**6) == (7, hashes[9]) == (registry.size, registry.head)


# --- the checkpoint's registry line -----------------------------------------------------------------------

H = Digest(bytes(range(32)))


@pytest.mark.parametrize(("size", "head"), [(0, None), (1, H), (635, H), (2**64 - 1, H)])
def test_registry_line_round_trip(size: int, head: Digest | None) -> None:
    line = format_registry_extension(size, head)
    assert line == f"stonetrail-registry {size} {(head or EMPTY_REGISTRY_HEAD).b64()}"
    assert parse_registry_extension(line) == (size, head)


def test_empty_registry_line() -> None:
    assert format_registry_extension(0, None) == "stonetrail-registry 0 " + "A" * 43 + "="


@pytest.mark.parametrize("line", [
    "stonetrail-registry 01 " + H.b64(),  # leading zero
    "stonetrail-registry +1 " + H.b64(),
    "stonetrail-registry -1 " + H.b64(),
    "stonetrail-registry 1_0 " + H.b64(),
    "stonetrail-registry \u0661 " + H.b64(),  # ARABIC-INDIC DIGIT ONE
    "stonetrail-registry 18446744073709551616 " + H.b64(),  # 2**64
    "stonetrail-registry  1 " + H.b64(),  # two spaces
    "stonetrail-registry 1 " + H.b64() + " ",
    "stonetrail-registry\t1 " + H.b64(),
    "stonetrail-registry 1 " + H.b64() + " extra",
    "stonetrail-registry 1",
    "stonetrail-registry",
    "Stonetrail-registry 1 " + H.b64(),
    "stonetrail-registry 1 " + H.b64().rstrip("="),  # missing padding
    "stonetrail-registry 1 " + H.b64()[:-2] + "x=",  # non-zero trailing bits
    "stonetrail-registry 1 " + Digest(bytes(32)).b64()[:-4] + "AA==",  # 31 bytes
    "stonetrail-registry 1 " + EMPTY_REGISTRY_HEAD.b64(),  # the empty head with a size
    "stonetrail-registry 0 " + H.b64(),  # size 0 with a head
])
def test_registry_line_is_parsed_strictly(line: str) -> None:
    with pytest.raises(NoteFormatError) as err:
        parse_registry_extension(line)
    assert err.value.code == "checkpoint.extension"


@pytest.mark.parametrize(("size", "head"),
                         [(-1, None), (True, H), (1, None), (0, H), (2**64, H), (1, EMPTY_REGISTRY_HEAD)])
def test_registry_line_refuses_bad_values(size: int, head: Digest | None) -> None:
    with pytest.raises(InputError):
        format_registry_extension(size, head)


def test_checkpoint_registry_reads_the_one_line() -> None:
    line = format_registry_extension(3, H)
    cp = Checkpoint(origin=ORIGIN, tree_size=9, root_hash=H, extensions=("other-ext 1", line, "x"))
    assert checkpoint_registry(parse_checkpoint(format_checkpoint(cp))) == (3, H)
    with pytest.raises(VerificationError) as missing:
        checkpoint_registry(Checkpoint(origin=ORIGIN, tree_size=9, root_hash=H, extensions=("other-ext 1",)))
    assert missing.value.code == "checkpoint.registry_missing"
    with pytest.raises(NoteFormatError) as twice:
        checkpoint_registry(Checkpoint(origin=ORIGIN, tree_size=9, root_hash=H, extensions=(line, line)))
    assert twice.value.code == "checkpoint.extension"


# --- ledger files: checkpoints commit to the registry -----------------------------------------------------

class Log:
    """A ledger file written through :class:`ledger.Ledger`, with a World that builds its records."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.w = World()
        self.ledger = Ledger.create(path, ORIGIN, {key(AUTHORITY).public_key.raw})

    def put(self, record: Record) -> None:
        """Append ``record`` (build it just before: it links to the current heads)."""
        assert self.w.add(record) == []
        self.ledger.append(record)

    def enrol_all(self) -> None:
        for record in _enrolments(self.w):
            self.put(record)

    def checkpoint(self) -> str:
        return self.ledger.checkpoint(OPERATOR)


def _enrolments(w: World) -> Iterator[Record]:
    for party, roles in PARTIES.items():
        yield w.enrol(party, roles)  # built lazily: each links to the head the one before it made


@pytest.fixture
def log(tmp_path: Path) -> Iterator[Log]:
    lg = Log(tmp_path / "main.ledger")
    yield lg
    lg.ledger.close()


def write(path: Path, records: Sequence[Record]) -> Path:
    """A ledger file holding exactly ``records`` (bypassing every rule, as a forger would)."""
    with FileStore.create(path, ORIGIN) as store:
        store.append_batch([r.raw for r in records])
    return path


def test_a_rotated_ledger_audits_clean_with_its_checkpoint(log: Log) -> None:
    log.enrol_all()
    w = log.w
    log.put(mined(w, "S1"))
    log.put(added(w))
    log.put(mined(w, "S2", NEW))
    log.put(revoked(w))
    log.put(w.make(Transferred(to="trader-b", mode="title"), "producer-a", inputs=["S1"], keys={"producer-a": NEW}))
    note = log.checkpoint()
    report = check_ledger(log.path, TRUST, checkpoint=note)
    assert report.findings == () and report.checkpoint is not None
    assert checkpoint_registry(report.checkpoint) == (7, log.ledger.registry_head)


def test_checkpoint_file_writes_the_same_registry_line(log: Log) -> None:
    log.enrol_all()
    log.put(added(log.w))
    log.put(revoked(log.w))
    assert checkpoint_file(log.path, OPERATOR) == log.checkpoint()


def test_checkpoint_of_an_empty_ledger(log: Log) -> None:
    cp = open_checkpoint(log.checkpoint(), TRUST.operators)
    assert cp.extensions == (format_registry_extension(0, None), *Commitments().extensions())
    assert checkpoint_file(log.path, OPERATOR) == log.checkpoint()


def test_an_earlier_checkpoint_stays_valid_as_the_registry_grows(log: Log) -> None:
    log.enrol_all()
    log.put(added(log.w))
    early = log.checkpoint()
    log.put(revoked(log.w))
    log.put(log.w.enrol("outsider", ["lab"]))
    assert check_ledger(log.path, TRUST, checkpoint=early).findings == ()


def test_a_revocation_cannot_be_left_out_of_the_chain(log: Log, tmp_path: Path) -> None:
    log.enrol_all()
    log.put(added(log.w))
    log.put(revoked(log.w))
    log.put(log.w.enrol("outsider", ["lab"]))
    records = log.w.records
    assert check_ledger(write(tmp_path / "whole.ledger", records), TRUST).findings == ()
    hidden = [r for r in records if r.body.kind != "key_revoked"]
    found = check_ledger(write(tmp_path / "hidden.ledger", hidden), TRUST).findings
    assert [(f.code, f.position, f.item) for f in found] == [("registry.link_mismatch", 6, "outsider")]


def test_a_last_revocation_cannot_be_left_out_under_a_checkpoint(log: Log, tmp_path: Path) -> None:
    log.enrol_all()
    w = log.w
    log.put(mined(w, "S1"))
    log.put(added(w))
    log.put(revoked(w))  # the revocation is the last registry record
    log.put(w.make(Transferred(to="trader-b", mode="title"), "producer-a", inputs=["S1"], keys={"producer-a": NEW}))
    note = log.checkpoint()
    log.put(mined(w, "S2", NEW))  # the log grows past the checkpoint
    hidden = [r for r in w.records if r.body.kind != "key_revoked"]
    path = write(tmp_path / "hidden.ledger", hidden)
    assert check_ledger(path, TRUST).findings == ()  # within the log, the chain looks whole
    report = check_ledger(path, TRUST, checkpoint=note)
    assert codes(report.findings) == ["checkpoint.root_mismatch", "checkpoint.registry_mismatch",
                                      "checkpoint.heads_mismatch",  # the records after it moved down one place
                                      "checkpoint.identities_mismatch"]  # and so did S1's claims
    assert report.checkpoint is None


def _signed(log: Log, extensions: tuple[str, ...]) -> str:
    """A checkpoint of the log with these extension lines and its true heads and identities lines."""
    lines = Commitments()
    for i in range(log.ledger.size):
        lines.add(i, log.ledger.record(i))
    cp = Checkpoint(origin=ORIGIN, tree_size=log.ledger.size, root_hash=log.ledger.root_hash(),
                    extensions=(*extensions, *lines.extensions()))
    return sign_checkpoint(cp, ORIGIN, OPERATOR)


def test_a_checkpoint_that_omits_the_revocation_from_its_registry_line(log: Log) -> None:
    log.enrol_all()
    log.put(added(log.w))
    stale = format_registry_extension(log.w.state.registry.size, log.w.state.registry.head)
    log.put(revoked(log.w))
    report = check_ledger(log.path, TRUST, checkpoint=_signed(log, (stale,)))
    assert codes(report.findings) == ["checkpoint.registry_mismatch"] and report.checkpoint is None


@pytest.mark.parametrize(("extensions", "code"), [
    ((), "checkpoint.registry_missing"),
    (("other-ext 1",), "checkpoint.registry_missing"),
    (("stonetrail-registry 06 " + H.b64(),), "checkpoint.extension"),
])
def test_a_checkpoint_without_a_sound_registry_line(log: Log, extensions: tuple[str, ...], code: str) -> None:
    log.enrol_all()
    report = check_ledger(log.path, TRUST, checkpoint=_signed(log, extensions))
    assert codes(report.findings) == [code]


def test_other_extension_lines_are_ignored(log: Log) -> None:
    log.enrol_all()
    line = format_registry_extension(log.w.state.registry.size, log.w.state.registry.head)
    assert check_ledger(log.path, TRUST, checkpoint=_signed(log, ("witness-note x", line))).findings == ()


# --- verify_registry_chain: a set of registry records is the complete registry of a checkpoint ------------

@pytest.fixture
def chain(w: World) -> tuple[list[Record], int, Digest | None]:
    rotate(w)
    regs = [r for r in w.records if r.body.kind in REGISTRY_KINDS]
    assert len(regs) == 7
    return regs, w.state.registry.size, w.state.registry.head


def _raises(code: str, records: Sequence[Record], size: int, head: Digest | None) -> None:
    with pytest.raises(RuleError) as err:
        verify_registry_chain(records, size, head)
    assert err.value.code == code


def test_the_intact_chain_verifies(chain: tuple[list[Record], int, Digest | None]) -> None:
    verify_registry_chain(*chain)
    verify_registry_chain([], 0, None)
    records, _, _ = chain
    verify_registry_chain(records[:3], 3, records[2].record_hash)  # an earlier checkpoint's registry


def test_the_chain_against_a_checkpoint(log: Log) -> None:
    log.enrol_all()
    log.put(added(log.w))
    log.put(revoked(log.w))
    cp = open_checkpoint(log.checkpoint(), TRUST.operators, origin=ORIGIN)
    regs = [r for r in log.w.records if r.body.kind in REGISTRY_KINDS]
    verify_registry_chain(regs, *checkpoint_registry(cp))
    _raises("registry.head_mismatch", regs[:-1], *checkpoint_registry(cp))  # the revocation left out


@pytest.mark.parametrize("drop", [0, 3, 5])
def test_a_gap_in_the_chain(chain: tuple[list[Record], int, Digest | None], drop: int) -> None:
    records, size, head = chain
    _raises("registry.gap", records[:drop] + records[drop + 1:], size, head)


def test_a_reordered_chain(chain: tuple[list[Record], int, Digest | None]) -> None:
    records, size, head = chain
    _raises("registry.gap", [records[1], records[0], *records[2:]], size, head)


def test_the_last_record_left_out(chain: tuple[list[Record], int, Digest | None]) -> None:
    records, size, head = chain
    assert records[-1].body.kind == "key_revoked"
    _raises("registry.head_mismatch", records[:-1], size, head)


def test_a_wrong_head_or_size(chain: tuple[list[Record], int, Digest | None]) -> None:
    records, size, head = chain
    _raises("registry.head_mismatch", records, size, Digest(b"\x01" * 32))
    _raises("registry.head_mismatch", records, size + 1, head)
    _raises("registry.head_mismatch", records, size, None)
    _raises("registry.head_mismatch", [], 1, head)
    _raises("registry.head_mismatch", records, size - 1, records[-2].record_hash)  # one record too many


def test_a_custody_record_in_the_chain(w: World, chain: tuple[list[Record], int, Digest | None]) -> None:
    records, size, head = chain
    custody = next(r for r in w.records if r.body.kind == "mined")
    _raises("registry.gap", [*records, custody], size, head)
