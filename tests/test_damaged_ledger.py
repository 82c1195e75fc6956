"""Damaged input is never a quiet answer (issue 9, item 6): ``show`` on a damaged ledger warns and exits 1, an
item past the damage is unreadable (not unknown); ``stonetrail repair`` moves a torn tail aside, never deleting a
byte, and refuses damage in the middle or a cut below an issued checkpoint."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ledger import Ledger, Record, Repaired, Trust, build_demo, check_ledger, checkpoint_file, keyfile, repair
from ledger.errors import ArgumentError, CorruptStoreError, VerificationError
from ledger.index import discard_index, rebuild_index
from ledger.storage import FileStore, scan
from stonetrail_cli.main import main
from world import ORIGIN, World, key


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "out"
    build_demo(out)
    return out


def run(*args: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def _copy(demo: Path, tmp_path: Path) -> Path:
    """A copy of the demo's ledger, trust file and checkpoint in ``tmp_path``; returns the ledger's path."""
    for name in ("demo.ledger", "trust.keys", "checkpoint.txt"):
        shutil.copy(demo / name, tmp_path / name)
    return tmp_path / "demo.ledger"


def cut_short(ledger: Path, n: int = 7) -> bytes:
    """Cut the last ``n`` bytes off the file (an append that never completed); returns them."""
    data = ledger.read_bytes()
    ledger.write_bytes(data[:-n])
    return data[-n:]


def flip_early(ledger: Path, index: int = 5) -> int:
    """Flip a payload byte of frame ``index`` (its CRC no longer matches); returns the frame's offset."""
    frame = scan(ledger).frames[index]
    data = bytearray(ledger.read_bytes())
    data[frame.offset + 12 + len(frame.payload) // 2] ^= 0x01
    ledger.write_bytes(bytes(data))
    return frame.offset


# --- show --------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("trusted", [False, True], ids=["unverified", "with --trust"])
def test_show_on_a_ledger_cut_short_warns_and_exits_1(demo: Path, tmp_path: Path, trusted: bool) -> None:
    ledger = _copy(demo, tmp_path)
    trust = ["--trust", tmp_path / "trust.keys"] if trusted else []
    intact = run("show", ledger, "R-00001-A", *trust)
    assert intact.exit_code == 0 and "warning" not in intact.stderr  # the neighbour: an intact file
    cut_short(ledger)
    result = run("show", ledger, "R-00001-A", *trust)
    assert result.exit_code == 1, result.output
    assert "warning" in result.stderr and "store.torn_tail" in result.stderr and "record 703" in result.stderr
    assert "stonetrail repair" in result.stderr
    assert "set into RING-0001" in result.stdout and "INVALID" in result.stdout  # the readable history, called so
    shown = run("show", ledger, "R-00001-A", *trust, "--json")
    assert shown.exit_code == 1
    report = json.loads(shown.stdout)
    assert report["verdict"] == "invalid"  # the torn record is one the checkpoint published beside it covers
    assert [f["code"] for f in report["damage"]] == ["store.torn_tail", "checkpoint.beyond_log"]


def test_an_item_past_the_damage_is_unreadable_not_unknown(demo: Path, tmp_path: Path) -> None:
    """The demo's last record creates the 67 Lesedi stones: cut short, the file no longer shows them, and
    ``show`` says why (item.unreadable, exit 1) instead of "no item" (item.unknown, exit 2)."""
    ledger = _copy(demo, tmp_path)
    unknown = run("show", ledger, "NO-SUCH-STONE")
    assert unknown.exit_code == 2 and "[item.unknown]" in unknown.output  # the neighbour: an intact file
    unknown_json = json.loads(run("show", ledger, "NO-SUCH-STONE", "--json").stdout)
    assert unknown_json["error"]["code"] == "item.unknown" and unknown_json["error"]["file"] == str(ledger)
    cut_short(ledger)
    result = run("show", ledger, "P-LESEDI-01", "--trust", tmp_path / "trust.keys")
    assert result.exit_code == 1 and "[item.unreadable]" in result.stderr, result.output
    assert "record 703" in result.stderr and "stonetrail repair" in result.stderr
    as_json = json.loads(run("show", ledger, "P-LESEDI-01", "--json").stdout)
    assert as_json["error"]["code"] == "item.unreadable" and as_json["error"]["file"] == str(ledger)


def test_show_on_a_ledger_damaged_in_the_middle_names_the_damage(demo: Path, tmp_path: Path) -> None:
    ledger = _copy(demo, tmp_path)
    flip_early(ledger)
    result = run("show", ledger, "R-00001-A", "--trust", tmp_path / "trust.keys")
    assert result.exit_code == 1
    assert "store.checksum_mismatch" in result.stderr and "record 5" in result.stderr
    assert "stonetrail verify" in result.stderr and "None" not in result.output


@pytest.mark.parametrize("trusted", [False, True], ids=["unverified", "with --trust"])
def test_items_on_a_damaged_ledger_warns_and_exits_1(demo: Path, tmp_path: Path, trusted: bool) -> None:
    """The list read from the whole file (no index) misses what the damaged part holds: it says so, as show does
    (the demo's last record creates the 67 Lesedi stones; damaged, they are not listed)."""
    ledger = _copy(demo, tmp_path)
    trust = ["--trust", tmp_path / "trust.keys"] if trusted else []
    intact = json.loads(run("items", ledger, *trust, "--json").stdout)
    assert intact["damage"] == [] and len(intact["items"]) == 432 and (intact["findings"] == [] if trusted else
                                                                        intact["findings"] is None)
    for damage, code in ((cut_short, "store.torn_tail"), (flip_early, "store.checksum_mismatch")):
        damage(ledger)
        result = run("items", ledger, *trust)
        assert result.exit_code == 1 and code in result.stderr and "INVALID" in result.stdout, result.output
        listed = run("items", ledger, *trust, "--json")
        report = json.loads(listed.stdout)
        assert listed.exit_code == 1 and report["verdict"] == "invalid" and report["damage"][0]["code"] == code
        _copy(demo, tmp_path)


# --- repair ------------------------------------------------------------------------------------------------------

def test_repair_restores_a_demo_ledger_cut_7_bytes_short_and_it_takes_appends_again(demo: Path, tmp_path: Path) -> None:
    """The acceptance case: cut 7 bytes short, the ledger cannot be opened for writing and does not verify, and
    both say to run repair; repair cuts it to its last whole record and keeps the torn bytes aside, exactly; the
    lost record appended again through ledger.Ledger makes the original file, which verifies under the original
    checkpoint after a reopen. (A crash tears an append before any checkpoint covers it: the demo's published
    checkpoint, which covers the torn record, is kept elsewhere; with it in place repair refuses, see below.)"""
    ledger = _copy(demo, tmp_path)
    signed = (tmp_path / "checkpoint.txt").rename(tmp_path / "signed-elsewhere.txt")
    original = ledger.read_bytes()
    last = scan(ledger).frames[-1]
    cut_short(ledger)
    torn = ledger.read_bytes()[last.offset:]
    trust = Trust.parse((tmp_path / "trust.keys").read_text())
    with pytest.raises(CorruptStoreError) as err:
        Ledger.open(ledger, trust.authority_keys)
    assert err.value.code == "store.torn_tail" and "stonetrail repair" in str(err.value)
    audit = run("verify", ledger, "--trust", tmp_path / "trust.keys")
    assert audit.exit_code == 1 and "store.torn_tail" in audit.output and "stonetrail repair" in audit.output
    result = run("repair", ledger)
    assert result.exit_code == 0, result.output
    side = tmp_path / f"demo.ledger.torn-{last.offset}"
    assert f"{len(torn)} bytes from offset {last.offset}" in result.output and str(side) in result.output
    assert ledger.read_bytes() == original[:last.offset] and side.read_bytes() == torn  # nothing lost
    with Ledger.open(ledger, trust.authority_keys) as writer:
        assert writer.size == 703
        writer.append(Record.from_bytes(last.payload))
    assert ledger.read_bytes() == original
    report = check_ledger(ledger, trust, checkpoint=signed.read_text())
    assert report.ok and report.record_count == 704 and report.checkpoint is not None
    again = run("repair", ledger, "--json")
    assert again.exit_code == 0 and json.loads(again.stdout) == {
        "verdict": "intact", "file": str(ledger), "records": 704, "size_bytes": len(original), "side_file": None,
        "moved_bytes": 0, "damaged_tail": False}


def test_a_ledger_below_its_published_checkpoint_is_neither_cut_nor_appended_to(demo: Path, tmp_path: Path) -> None:
    """The checkpoint published beside a ledger bounds it: a file that lost records it covers (cut short, or
    restored from an older copy) is not repaired below it, and a writer refuses it (an append would fork the
    published log); a checkpoint of another ledger beside it bounds nothing."""
    ledger = _copy(demo, tmp_path)
    trust = Trust.parse((tmp_path / "trust.keys").read_text())
    frames = scan(ledger).frames
    whole = ledger.read_bytes()
    cut_short(ledger)  # the last record, which the published checkpoint (704) covers, torn
    torn = ledger.read_bytes()
    refused = run("repair", ledger, "--json")
    error = json.loads(refused.stdout)["error"]
    assert refused.exit_code == 1 and error["code"] == "repair.rollback", refused.output
    assert "checkpoint published beside it" in error["message"] and ledger.read_bytes() == torn
    said = run("verify", ledger, "--trust", tmp_path / "trust.keys")
    assert said.exit_code == 1 and "repair refuses to cut the torn tail below that checkpoint" in said.output
    discard_index(ledger)
    for command in (["items", ledger], ["show", ledger, "R-00001-A"]):  # read from the log: torn, and short
        told = run(*command, "--trust", tmp_path / "trust.keys", "--json")
        damage = [d["code"] for d in json.loads(told.stdout)["damage"]]
        assert told.exit_code == 1 and damage == ["store.torn_tail", "checkpoint.beyond_log"], (command, told.output)
        assert "record 703" in told.stderr and told.stderr.rstrip().endswith("before trusting what it says")
    ledger.write_bytes(whole[:frames[600].offset])  # restored from an older copy: intact, 600 records
    assert run("repair", ledger).exit_code == 1 and ledger.read_bytes() == whole[:frames[600].offset]
    with pytest.raises(VerificationError) as rolled_back:
        Ledger.open(ledger, trust.authority_keys)
    assert rolled_back.value.code == "checkpoint.beyond_log" and "fork the published log" in str(rolled_back.value)
    rebuild_index(ledger, trust.authority_keys)  # an index of the 600: show and items read it without --trust
    for trusted in ([], ["--trust", tmp_path / "trust.keys"]):
        for command in (["items", ledger], ["show", ledger, "R-00001-A"]):
            told = run(*command, *trusted, "--json")
            assert told.exit_code == 1 and json.loads(told.stdout)["verdict"] == "invalid", (command, told.output)
            assert [d["code"] for d in json.loads(told.stdout)["damage"]][-1:] == ["checkpoint.beyond_log"]
            assert "fewer than the 704 of the checkpoint published beside it" in told.stderr
            text = run(*command, *trusted)
            assert text.exit_code == 1 and "INVALID: the file lost records its published checkpoint covers" \
                in text.stdout, text.output
        later = run("show", ledger, "RING-0001", *trusted, "--json")  # made after record 600: lost, not unknown
        assert later.exit_code == 1 and json.loads(later.stdout)["error"]["code"] == "item.unreadable", later.output
    published = tmp_path / "checkpoint.txt"
    origin, rest = published.read_text().split("\n", 1)
    published.write_text(f"other.example/{origin}\n{rest}")  # another ledger's checkpoint: bounds nothing
    with Ledger.open(ledger, trust.authority_keys) as writer:
        assert writer.size == 600
    published.write_text("not a checkpoint\n")  # nor does a file that is not one, but repair will not cut then
    for command in (["items", ledger], ["show", ledger, "R-00001-A"]):  # and readers say it is not one
        assert "[checkpoint.unreadable]" in run(*command).stderr
    with Ledger.open(ledger, trust.authority_keys) as writer:
        assert writer.size == 600
    assert json.loads(run("repair", ledger, "--json").stdout)["error"]["code"] == "checkpoint.unreadable"


def test_repair_is_bounded_by_the_larger_checkpoint_and_refuses_an_unreadable_published_one(
        demo: Path, tmp_path: Path) -> None:
    """A second new user's review: an older --checkpoint let repair cut below the published checkpoint.txt, and a
    checkpoint.txt that was not a checkpoint was passed over without a word. The larger of the two bounds the cut;
    without --checkpoint, an unreadable checkpoint.txt refuses the repair; either way the file is left as it is."""
    ledger = _copy(demo, tmp_path)
    old = tmp_path / "old" / "demo.ledger"  # the ledger as it was at 600 records, and its checkpoint
    old.parent.mkdir()
    old.write_bytes(ledger.read_bytes()[:scan(ledger).frames[600].offset])
    older = tmp_path / "older.txt"
    older.write_text(checkpoint_file(old, keyfile.load_private_key(demo / "keys" / "operator.pem")))
    cut_short(ledger)
    torn = ledger.read_bytes()
    refused = run("repair", ledger, "--checkpoint", older, "--json")
    assert refused.exit_code == 1 and json.loads(refused.stdout)["error"]["code"] == "repair.rollback", refused.output
    assert "checkpoint published beside it" in refused.output and ledger.read_bytes() == torn
    for garbage in ("garbage\n", (tmp_path / "checkpoint.txt").read_text()[:100]):
        (tmp_path / "checkpoint.txt").write_text(garbage)
        unreadable = run("repair", ledger, "--json")
        assert unreadable.exit_code == 2 and json.loads(unreadable.stdout)["error"]["code"] == "checkpoint.unreadable"
        assert ledger.read_bytes() == torn
    assert run("repair", ledger, "--checkpoint", older).exit_code == 0  # given one, within it: repaired


def test_a_second_crash_at_the_same_offset_is_moved_aside_under_another_name(demo: Path, tmp_path: Path) -> None:
    """A second new user's review: after one repair, an append torn again at the same offset was refused
    (the side file's name held the first tail). The second tail goes to a name with its hash; nothing is lost."""
    ledger = _copy(demo, tmp_path)
    (tmp_path / "checkpoint.txt").unlink()  # covers the record torn here: a crash tears only what no one signed
    whole = ledger.read_bytes()
    last = scan(ledger).frames[-1]
    cut_short(ledger)
    first = ledger.read_bytes()[last.offset:]
    assert repair(ledger).repaired
    ledger.write_bytes(whole[:-3])  # appended again, torn elsewhere in the same frame
    second = repair(ledger)
    assert second.side_file is not None and second.side_file.name.startswith(f"demo.ledger.torn-{last.offset}-")
    assert second.side_file.read_bytes() == whole[last.offset:-3]
    assert (tmp_path / f"demo.ledger.torn-{last.offset}").read_bytes() == first
    assert repair(ledger).side_file is None  # and nothing left to do


def test_repair_refuses_a_ledger_damaged_in_the_middle_and_names_the_position(demo: Path, tmp_path: Path) -> None:
    ledger = _copy(demo, tmp_path)
    offset = flip_early(ledger, 5)
    damaged = ledger.read_bytes()
    result = run("repair", ledger)
    assert result.exit_code == 3 and "[store.checksum_mismatch]" in result.stderr
    assert f"record 5 (byte offset {offset})" in result.stderr and "not a torn tail" in result.stderr
    assert ledger.read_bytes() == damaged and list(tmp_path.glob("*.torn-*")) == []
    as_json = run("repair", ledger, "--json")
    assert as_json.exit_code == 3 and json.loads(as_json.stdout)["error"]["code"] == "store.checksum_mismatch"
    cut_short(ledger)  # a torn tail after damage in the middle is no repair either
    assert run("repair", ledger).exit_code == 3 and list(tmp_path.glob("*.torn-*")) == []


def test_the_commands_the_tool_suggests_quote_a_path_with_a_space(demo: Path, tmp_path: Path) -> None:
    """A new user's review: 'stonetrail repair --damaged-tail /tmp/x crash/stones.ledger' failed when pasted."""
    (tmp_path / "my trade").mkdir()
    ledger = _copy(demo, tmp_path / "my trade")
    with ledger.open("ab") as f:
        f.write(b"note to self\n")
    quoted = f"stonetrail repair --damaged-tail '{ledger}'"
    assert quoted in run("verify", ledger, "--trust", tmp_path / "my trade" / "trust.keys").output
    assert quoted in run("repair", ledger).stderr


def test_bytes_appended_by_another_program_are_moved_aside_only_when_asked(demo: Path, tmp_path: Path) -> None:
    """A line of text appended to the ledger (no frame magic: not an interrupted append) makes it invalid; verify
    hints at ``repair --damaged-tail``; plain repair refuses and says so; --damaged-tail moves exactly those bytes
    into LEDGER.damaged-OFFSET and the ledger verifies again. A last record whose CRC fails is a damaged tail too,
    and the published checkpoint, which covers it, refuses its cut (repair.rollback); damage with a record after it,
    or followed by appended bytes, is never one."""
    ledger = _copy(demo, tmp_path)
    original, junk = ledger.read_bytes(), b"note to self: ship parcel on Monday\n"
    with ledger.open("ab") as f:
        f.write(junk)
    audit = run("verify", ledger, "--trust", tmp_path / "trust.keys")
    assert audit.exit_code == 1 and "store.bad_magic" in audit.output
    assert f"'stonetrail repair --damaged-tail {ledger}'" in audit.output
    refused = run("repair", ledger)
    assert refused.exit_code == 3 and "[store.bad_magic]" in refused.stderr and "--damaged-tail" in refused.stderr
    assert ledger.read_bytes() == original + junk and not list(tmp_path.glob("*.damaged-*"))
    done = run("repair", ledger, "--damaged-tail", "--json")
    assert done.exit_code == 0, done.output
    out = json.loads(done.stdout)
    side = tmp_path / f"demo.ledger.damaged-{len(original)}"
    assert out["verdict"] == "repaired" and out["damaged_tail"] is True and out["side_file"] == str(side)
    assert out["records"] == 704 and out["moved_bytes"] == len(junk)
    assert ledger.read_bytes() == original and side.read_bytes() == junk  # nothing lost
    assert run("verify", ledger, "--trust", tmp_path / "trust.keys").exit_code == 0
    assert run("repair", ledger, "--damaged-tail").exit_code == 0 and ledger.read_bytes() == original  # intact
    with ledger.open("ab") as f:  # a stray newline, too short to hold a record: plain repair moves it
        f.write(b"\n")
    assert repair(ledger).damaged and ledger.read_bytes() == original
    newline = b"\n"
    second = f"demo.ledger.damaged-{len(original)}-{hashlib.sha256(newline).hexdigest()[:16]}"
    assert (tmp_path / second).read_bytes() == b"\n"  # beside the first one moved aside at that offset
    last = scan(ledger).frames[-1]
    damaged = bytearray(original)
    damaged[-1] ^= 1  # the last record's payload: its CRC fails, no frame follows
    ledger.write_bytes(bytes(damaged))
    with pytest.raises(VerificationError) as err:
        repair(ledger, damaged_tail=True)
    assert err.value.code == "repair.rollback" and "damaged tail starts at record 703" in str(err.value)
    (tmp_path / "checkpoint.txt").unlink()
    assert repair(ledger, damaged_tail=True).damaged and ledger.read_bytes() == original[:last.offset]
    ledger.write_bytes(bytes(damaged) + junk)  # two damaged spans: the CRC one is followed by no frame either
    flip_early(ledger, 5)
    with pytest.raises(CorruptStoreError) as mid:
        repair(ledger, damaged_tail=True)
    assert mid.value.code == "store.checksum_mismatch" and "not a torn tail" in str(mid.value)


def test_a_damaged_tail_after_a_batch_that_never_ended_takes_the_batch_along(demo: Path, tmp_path: Path) -> None:
    """A breaker's review: the last frame a STRB (its batch never ended), then a stray newline. The cut was the
    newline alone, and the repaired file ended in a torn batch, which the next repair cut (a record the first one
    reported kept). Now the cut takes the unclosed batch too, as a torn tail's does, and only when asked (a record
    goes); below the published checkpoint that is a rollback, refused; through a symbolic link from another folder
    too."""
    ledger = _copy(demo, tmp_path)
    original = ledger.read_bytes()
    last = scan(ledger).frames[-1]
    data = bytearray(original)
    data[last.offset:last.offset + 4] = b"STRB"
    ledger.write_bytes(bytes(data) + b"\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "demo.ledger").symlink_to(ledger)
    for path in (ledger, elsewhere / "demo.ledger"):  # the published checkpoint covers record 703
        with pytest.raises(VerificationError) as err:
            repair(path, damaged_tail=True)
        assert err.value.code == "repair.rollback" and f"record 703 (byte offset {last.offset})" in str(err.value)
    assert ledger.read_bytes() == bytes(data) + b"\n" and not list(elsewhere.glob("*.damaged-*"))
    (tmp_path / "checkpoint.txt").unlink()
    with pytest.raises(CorruptStoreError) as asked:  # a stray newline, but a record goes with it: only when asked
        repair(ledger)
    assert "records 703 on, of a batch that never ended" in str(asked.value)
    done = repair(elsewhere / "demo.ledger", damaged_tail=True)
    assert (done.records, done.size_bytes, done.damaged) == (703, last.offset, True)
    assert ledger.read_bytes() == original[:last.offset]
    assert (tmp_path / f"demo.ledger.damaged-{last.offset}").read_bytes() == bytes(data[last.offset:]) + b"\n"
    assert not repair(ledger).repaired  # whole batches: nothing left to cut


def test_repair_refuses_to_cut_below_an_issued_checkpoint(demo: Path, tmp_path: Path) -> None:
    """A checkpoint of all 704 records was issued: cutting the torn record 703 would roll it back, so repair
    reports the rollback and changes nothing. A checkpoint of the first 703 records allows the cut."""
    ledger = _copy(demo, tmp_path)
    operator = keyfile.load_private_key(demo / "keys" / "operator.pem")
    last = scan(ledger).frames[-1]
    earlier = tmp_path / "earlier.ledger"
    earlier.write_bytes(ledger.read_bytes()[:last.offset])
    (tmp_path / "cp-703.txt").write_text(checkpoint_file(earlier, operator))
    cut_short(ledger)
    damaged = ledger.read_bytes()
    result = run("repair", ledger, "--checkpoint", tmp_path / "checkpoint.txt")
    assert result.exit_code == 1 and "[repair.rollback]" in result.stderr, result.output
    assert "record 703" in result.stderr and "tree size 704" in result.stderr
    assert ledger.read_bytes() == damaged and list(tmp_path.glob("*.torn-*")) == []
    published = (tmp_path / "checkpoint.txt").rename(tmp_path / "cp-704.txt")  # else it bounds the cut too
    allowed = run("repair", ledger, "--checkpoint", tmp_path / "cp-703.txt", "--json")
    assert allowed.exit_code == 0 and json.loads(allowed.stdout)["records"] == 703
    behind = run("repair", ledger, "--checkpoint", published)  # intact now, but rolled back
    assert behind.exit_code == 1 and "[repair.rollback]" in behind.stderr and "holds 703 records" in behind.stderr


def test_repair_refuses_another_ledgers_checkpoint(demo: Path, tmp_path: Path) -> None:
    ledger = _copy(demo, tmp_path)
    other = tmp_path / "other.ledger"
    w = World()
    w.enrol_all()
    with FileStore.create(other, ORIGIN) as store:
        store.append_batch([r.raw for r in w.records])
    note = checkpoint_file(other, key("operator"), ORIGIN)
    cut_short(ledger)
    with pytest.raises(VerificationError) as err:
        repair(ledger, checkpoint=note)
    assert err.value.code == "checkpoint.origin_mismatch" and not list(tmp_path.glob("*.torn-*"))
    (tmp_path / "checkpoint.txt").unlink()  # the demo's, which covers the torn record
    assert repair(ledger).repaired  # the neighbour: no checkpoint given, none published


def test_repair_is_public_and_refuses_wrong_argument_types(tmp_path: Path) -> None:
    import ledger as library

    assert library.repair is repair and library.Repaired is Repaired
    for call in (lambda: repair(b"x.ledger"), lambda: repair(tmp_path / "x", checkpoint=b"note")):  # type: ignore
        with pytest.raises(ArgumentError) as err:
            call()
        assert err.value.code == "input.type"
