"""The persistent index beside a ledger (ledger.index, DESIGN.md §6, docs/adr/0018): a cache of the log, never an
authority. What the writer signs from it is byte for byte what the log-only path gives; an index that is missing,
of another ledger, behind the log or damaged is caught up or rebuilt, never trusted."""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import zlib
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner
from crashkit import index_rows

from ledger import Ledger, Mined, Output, Trust, check_bundle, export_bundles, keyfile, replay_ledger
from ledger.checkpoint import read_unverified_checkpoint
from ledger.errors import StoneTrailError
from ledger.history import indexed_scope
from ledger.identity import claims_of, sort_key
from ledger.index import discard_index, rebuild_index
from ledger.index.db import index_path
from ledger.index.reading import indexed_log
from ledger.inventory import indexed_item_lines, item_lines
from ledger.reader import checkpoint_file
from ledger.record import Record
from ledger.signing import checkpoint_file as sign_file
from ledger.storage import frames, framing, scan
from stonetrail_cli.main import main


def _copy(demo: Path, tmp_path: Path, *, with_index: bool = True) -> Path:
    """A copy of the demo's ledger, with an index of its own (one copied with it is another file's: rebuilt)."""
    path = tmp_path / "demo.ledger"
    shutil.copy(demo / "demo.ledger", path)
    if with_index:
        rebuild_index(path, _keys(demo)[0])
    return path


def _keys(demo: Path) -> tuple[frozenset[bytes], object]:
    trust = Trust.parse((demo / "trust.keys").read_text())
    return trust.authority_keys, keyfile.load_private_key(demo / "keys" / "operator.pem")


def _signed_from_index(path: Path, demo: Path) -> str:
    keys, operator = _keys(demo)
    with Ledger.open(path, keys) as ledger:
        return ledger.checkpoint(operator)  # type: ignore[arg-type]


def test_the_index_signs_the_checkpoint_the_log_gives(demo: Path, tmp_path: Path) -> None:
    path = _copy(demo, tmp_path, with_index=False)
    _, operator = _keys(demo)
    built = _signed_from_index(path, demo)  # no index: built from the log
    assert index_path(path).exists()
    assert built == _signed_from_index(path, demo)  # reopened: the index is used, not rebuilt
    assert built == checkpoint_file(path, operator)  # type: ignore[arg-type]
    assert indexed_log(path) is not None
    assert built == sign_file(path, operator)  # type: ignore[arg-type]  # stonetrail checkpoint, through the index


def test_an_index_catches_up_with_records_appended_without_it(demo: Path, tmp_path: Path) -> None:
    path = _copy(demo, tmp_path, with_index=False)
    keys, operator = _keys(demo)
    with Ledger.open(path, keys) as ledger:
        size = ledger.size
    stale = index_path(path).read_bytes()
    with Ledger.open(path, keys) as ledger:  # the same records again, to grow the log past the index's copy
        last = ledger.record(size - 1)
        with pytest.raises(StoneTrailError):
            ledger.append(last)  # a duplicate: refused, nothing written
    index_path(path).write_bytes(stale)
    with Ledger.open(path, keys) as ledger:
        assert ledger.size == size == len(scan(path).frames)
        assert ledger.checkpoint(operator) == checkpoint_file(path, operator)  # type: ignore[arg-type]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_checkpoints_signed_one_after_another_sign_the_trees_the_log_gives(demo: Path, tmp_path: Path,
                                                                           seed: int) -> None:
    """Each checkpoint's trees are the previous snapshot with the changed rows merged in: after any mix of
    batches, checkpoints (kept as snapshots or not) and reopenings, the lines are the log-only path's."""
    source = _copy(demo, tmp_path, with_index=False)
    keys, operator = _keys(demo)
    with Ledger.open(source, keys) as whole:
        records = [whole.record(i) for i in range(whole.size)]
    path = tmp_path / "grown.ledger"
    rng = random.Random(seed)
    ledger = Ledger.create(path, scan(source).origin, keys)
    try:
        at = 0
        while at < len(records):
            step = rng.choice([1, 2, 5, 17, 40])
            ledger.append_batch(records[at:at + step])
            at += step
            if rng.random() < 0.3:
                ledger.close()
                ledger = Ledger.open(path, keys)
            if rng.random() < 0.5:
                heads, claims = ledger._backend.index.leaves()
                assert (heads, claims) == ledger._backend.index._walked()
            if rng.random() < 0.4:
                assert ledger.checkpoint(operator) == checkpoint_file(path, operator)  # type: ignore[arg-type]
        assert sign_file(path, operator) == checkpoint_file(path, operator)  # type: ignore[arg-type]
    finally:
        ledger.close()


def test_another_ledgers_index_is_never_used(demo: Path, tmp_path: Path) -> None:
    mine = _copy(demo, tmp_path, with_index=False)
    keys, operator = _keys(demo)
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    with Ledger.open(mine, keys) as ledger:
        records = [ledger.record(i) for i in range(40)]
    other = other_dir / "demo.ledger"
    with Ledger.create(other, scan(mine).origin, keys) as short:
        short.append_batch(records)
    shutil.copy(index_path(other), index_path(mine))  # a shorter ledger of the same origin: its index
    assert _signed_from_index(mine, demo) == checkpoint_file(mine, operator)  # type: ignore[arg-type]


def test_a_deleted_index_is_rebuilt(demo: Path, tmp_path: Path) -> None:
    path = _copy(demo, tmp_path)
    _, operator = _keys(demo)
    index_path(path).unlink(missing_ok=True)
    assert _signed_from_index(path, demo) == checkpoint_file(path, operator)  # type: ignore[arg-type]


def _grown(demo: Path, tmp_path: Path, signed_at: int) -> Path:
    """The demo ledger written anew: its first ``signed_at`` records, a checkpoint (the index keeps its trees'
    snapshot), then the rest (the index notes the keys they change)."""
    source = _copy(demo, tmp_path, with_index=False)
    keys, operator = _keys(demo)
    with Ledger.open(source, keys) as whole:
        records = [whole.record(i) for i in range(whole.size)]
    path = tmp_path / "grown.ledger"
    with Ledger.create(path, scan(source).origin, keys) as ledger:
        ledger.append_batch(records[:signed_at])
        ledger.checkpoint(operator)  # type: ignore[arg-type]
        ledger.append_batch(records[signed_at:])
    return path


@pytest.mark.parametrize("snapshot", [False, True])
def test_a_flipped_byte_anywhere_in_the_index_leads_to_a_rebuild_or_a_refusal(demo: Path, tmp_path: Path,
                                                                              snapshot: bool) -> None:
    path = _grown(demo, tmp_path, 150) if snapshot else _copy(demo, tmp_path, with_index=False)
    keys, operator = _keys(demo)
    want = checkpoint_file(path, operator)  # type: ignore[arg-type]
    with Ledger.open(path, keys) as ledger:
        duplicate = ledger.record(ledger.size - 1)  # a record a full audit rejects (a replay of the last one)
        with pytest.raises(StoneTrailError) as clean_refusal:
            ledger.append(duplicate)
    clean = index_path(path).read_bytes()
    refused = rebuilt = 0
    for offset in range(0, len(clean), max(1, len(clean) // 150)):
        damaged = bytearray(clean)
        damaged[offset] ^= 0x41
        index_path(path).write_bytes(bytes(damaged))
        try:
            with Ledger.open(path, keys) as ledger:
                assert ledger.checkpoint(operator) == want, f"byte {offset}"  # type: ignore[arg-type]
                with pytest.raises(StoneTrailError) as refusal:
                    ledger.append(duplicate)
                assert refusal.value.code == clean_refusal.value.code, f"byte {offset}"
                rebuilt += 1
        except StoneTrailError:
            refused += 1
    assert rebuilt + refused > 100


def _stones(demo: Path) -> list[str]:
    return sorted(p.stem for p in (demo / "proofs").glob("*.stproof"))


def test_bundles_from_the_index_are_byte_identical_to_the_log_only_ones(demo: Path, tmp_path: Path) -> None:
    path = _copy(demo, tmp_path, with_index=False)
    keys, operator = _keys(demo)
    with Ledger.open(path, keys) as ledger:
        signed = ledger.checkpoint(operator)  # type: ignore[arg-type]  # the writer keeps its trees' snapshot
        older = checkpoint_file(path, operator)  # type: ignore[arg-type]
    trust = Trust.parse((demo / "trust.keys").read_text())
    stones = _stones(demo)
    for note in (signed, older, (demo / "checkpoint.txt").read_text()):
        from_index = export_bundles(path, stones, note, trust=trust)
        assert indexed_log(path, read_unverified_checkpoint(note).tree_size) is not None
        moved = tmp_path / "moved.index"
        index_path(path).rename(moved)
        try:
            from_log = export_bundles(path, stones, note, trust=trust)
        finally:
            moved.rename(index_path(path))
        assert from_index == from_log
        for stone in stones:
            assert check_bundle(from_index[stone], trust).ok


def test_show_through_the_index_tells_what_the_replay_tells(demo: Path, tmp_path: Path) -> None:
    path = _copy(demo, tmp_path, with_index=False)
    keys, _ = _keys(demo)
    with Ledger.open(path, keys):
        pass
    runner = CliRunner()
    for stone in _stones(demo)[:5]:
        for flags in (["--json"], []):
            fast = runner.invoke(main, ["show", str(path), stone, *flags])
            assert indexed_log(path) is not None
            moved = tmp_path / "moved.index"
            index_path(path).rename(moved)
            try:
                slow = runner.invoke(main, ["show", str(path), stone, *flags])
            finally:
                moved.rename(index_path(path))
            assert (fast.exit_code, fast.output) == (slow.exit_code, slow.output)
    unknown = runner.invoke(main, ["show", str(path), "r-00001-a"])
    assert unknown.exit_code != 0 and "did you mean 'R-00001-A'" in unknown.output


@pytest.mark.slow
def test_a_generated_ledger_of_100000_records_gives_the_same_bytes_through_the_index(tmp_path: Path) -> None:
    """Run from bench/ (pytest -m slow tests/test_index.py): the bench's generated ledger of 10^5 records."""
    bench = Path(__file__).resolve().parents[1] / "bench"
    sys.path.insert(0, str(bench))
    import bench_bundle
    import ledgergen

    source, meta = bench_bundle.ensure_ledger(Path("/tmp/stonetrail-bench"), 100_000, 2)
    path = tmp_path / "bench.ledger"
    shutil.copy(source, path)
    trust, operator = ledgergen.trust(), ledgergen.key("operator")
    with Ledger.open(path, trust.authority_keys) as ledger:  # builds the index
        note = ledger.checkpoint(operator)
    assert note == checkpoint_file(path, operator) == sign_file(path, operator)
    from_index = export_bundles(path, [meta["target"]], note, trust=trust)
    assert indexed_log(path) is not None
    index_path(path).rename(tmp_path / "moved.index")
    assert export_bundles(path, [meta["target"]], note, trust=trust) == from_index
    assert check_bundle(from_index[meta["target"]], trust).ok


def test_readers_given_a_damaged_index_read_the_log(demo: Path, tmp_path: Path) -> None:
    """A row that fails its checksum is never shown: show, proof export and checkpoint read the log instead, and
    say the same; read-only commands leave no -wal/-shm files behind."""
    path = _copy(demo, tmp_path, with_index=False)
    keys, operator = _keys(demo)
    with Ledger.open(path, keys):
        pass
    trust = Trust.parse((demo / "trust.keys").read_text())
    note = (demo / "checkpoint.txt").read_text()
    runner = CliRunner()

    def outputs() -> tuple[object, ...]:
        shown = runner.invoke(main, ["show", str(path), "R-00001-A", "--json"])
        return (shown.exit_code, shown.output, export_bundles(path, ["R-00001-A"], note, trust=trust),
                sign_file(path, operator))  # type: ignore[arg-type]

    clean = outputs()
    assert not Path(f"{index_path(path)}-wal").exists() and not Path(f"{index_path(path)}-shm").exists()
    with closing(sqlite3.connect(index_path(path))) as db:  # one item's row no longer matches its checksum
        db.execute("UPDATE items SET c = c + 1 WHERE k = ?", (b"R-00001-A",))
        db.execute("UPDATE tiles SET c = c + 1 WHERE id = 0")
        db.commit()
    assert outputs() == clean


def test_stonetrail_index_builds_the_index_a_writer_would_keep(demo: Path, tmp_path: Path) -> None:
    path = _copy(demo, tmp_path, with_index=False)
    built = CliRunner().invoke(main, ["index", str(path), "--trust", str(demo / "trust.keys"), "--json"])
    assert built.exit_code == 0 and '"records": ' in built.output, built.output
    assert indexed_log(path) is not None
    _, operator = _keys(demo)
    assert sign_file(path, operator) == checkpoint_file(path, operator)  # type: ignore[arg-type]
    with Ledger.open(path, _keys(demo)[0]) as ledger:  # locked: a second builder is refused, nothing changes
        refused = CliRunner().invoke(main, ["index", str(path), "--trust", str(demo / "trust.keys")])
        assert refused.exit_code != 0 and "store.locked" in refused.output
        assert ledger.size == len(scan(path).frames)


def test_rows_a_damaged_page_hides_are_noticed_not_signed_or_exported(demo: Path, tmp_path: Path) -> None:
    """A damaged B-tree page can hide rows from SQLite (an adversarial review flipped a page's cell count): a
    row gone from the identity table or from an item's positions is noticed (a walk's length against the
    checksummed row counts; positions against the signed item-head tree), never signed or put in a bundle."""
    path = _copy(demo, tmp_path, with_index=False)
    keys, operator = _keys(demo)
    trust = Trust.parse((demo / "trust.keys").read_text())
    with Ledger.open(path, keys) as ledger:
        note = ledger.checkpoint(operator)  # type: ignore[arg-type]
    want_note, want_bundles = checkpoint_file(path, operator), export_bundles(path, ["R-00001-A"], note,
                                                                             trust=trust)  # type: ignore[arg-type]
    with closing(sqlite3.connect(index_path(path))) as db:
        db.execute("DELETE FROM id_claims WHERE k = (SELECT k FROM id_claims ORDER BY k LIMIT 1 OFFSET 7)")
        db.execute("DELETE FROM head_positions WHERE k = ?", (b"RING-0001",))  # the ring R-00001-A is set in
        db.commit()
    assert export_bundles(path, ["R-00001-A"], note, trust=trust) == want_bundles  # read from the log
    assert sign_file(path, operator) == want_note  # type: ignore[arg-type]
    with Ledger.open(path, keys) as ledger:
        assert ledger.checkpoint(operator) == want_note  # type: ignore[arg-type]  # rebuilt, then signed


def test_items_from_the_index_are_the_replays(demo: Path, tmp_path: Path) -> None:
    """`stonetrail items` without --trust reads the index (no replay of the log): the same lines as a replay."""
    path = _copy(demo, tmp_path)
    replay = replay_ledger(path, None)
    assert indexed_item_lines(path) == (item_lines(replay), len(replay.records), replay.origin)
    discard_index(path)
    assert indexed_item_lines(path) is None  # no index: the caller replays


def test_an_interrupted_rebuild_keeps_the_index_it_was_replacing(demo: Path, tmp_path: Path) -> None:
    """`stonetrail index` interrupted (Ctrl-C) leaves the index it was rebuilding as it was, and no half-built
    file (a new-user review lost the index that way)."""
    path = _copy(demo, tmp_path)
    keys, _ = _keys(demo)
    before = index_rows(path)

    def interrupted(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        rebuild_index(path, keys, progress=interrupted)
    assert index_rows(path) == before and indexed_log(path) is not None
    assert not Path(f"{index_path(path)}.building").exists()


def test_a_registry_row_gone_from_the_index_is_noticed_not_signed(demo: Path, tmp_path: Path) -> None:
    """Each registry row is checksummed, so a row deleted (or hidden by a damaged page) leaves rows that pass:
    their number is checked against the count the index recorded (adversarial review: the registry line of a
    signed checkpoint once lacked the last registry record)."""
    path = _copy(demo, tmp_path, with_index=False)
    keys, operator = _keys(demo)
    want = checkpoint_file(path, operator)  # type: ignore[arg-type]
    rebuild_index(path, keys)
    with closing(sqlite3.connect(index_path(path))) as db:
        db.execute("DELETE FROM registry WHERE id = (SELECT max(id) FROM registry)")
        db.commit()
    assert sign_file(path, operator) == want  # type: ignore[arg-type]
    with Ledger.open(path, keys) as ledger:
        assert ledger.checkpoint(operator) == want  # type: ignore[arg-type]  # rebuilt, then signed


def test_a_forged_record_behind_the_writers_back_is_refused_by_the_index_and_named_by_the_audit(
        demo: Path, tmp_path: Path) -> None:
    """A frame the writer never checked: refused when the index catches up with it; a build from scratch takes
    the log as the writer's (ADR 0020) and reaches the replay's state; ``--check`` and the audit name it."""
    path = _copy(demo, tmp_path, with_index=False)
    keys, _ = _keys(demo)
    scratch = tmp_path / "scratch.ledger"
    shutil.copy(path, scratch)
    with Ledger.open(scratch, keys, now_ms=lambda: 1 << 62) as ledger:  # a new record, valid but for the forgery
        new = ledger.record_event(Mined(mine="Jwaneng", country="BW"), actor="producer-jwaneng", place="BW",
                                  time_ms=1_800_000_000_000, signers={"producer-jwaneng": keyfile.load_private_key(
                                      demo / "keys" / "producer-jwaneng.pem")},
                                  outputs=[Output(id="FORGED-1", type="lot", mass_mct=1000)])
    forged = bytearray(new.raw)
    forged[-40] ^= 0x01  # inside the signature
    Ledger.open(path, keys).close()  # the index, built
    with open(path, "ab") as log:  # a frame appended behind the writer's back
        log.write(frames.pack_batch([bytes(forged)])[0])
    with pytest.raises(StoneTrailError) as refused:
        Ledger.open(path, keys)
    assert refused.value.code.startswith("sig."), refused.value
    discard_index(path)
    with pytest.raises(StoneTrailError) as refused:
        rebuild_index(path, keys, checked=True)
    assert refused.value.code.startswith("sig."), refused.value
    with Ledger.open(path, keys) as ledger:  # trusted build: the state a replay reaches, the forgery included
        assert ledger.item("FORGED-1").mass_mct == 1000
    trust = demo / "trust.keys"
    audit = CliRunner().invoke(main, ["verify", str(path), "--trust", str(trust), "--json"])
    assert audit.exit_code != 0 and '"sig.' in audit.output, audit.output
    checked = CliRunner().invoke(main, ["index", str(path), "--trust", str(trust), "--check"])
    assert checked.exit_code == 1 and "invalid record" in checked.output, checked.output  # a verdict, not I/O


def _findings(ledger: Ledger, records: list[Record]) -> list[tuple[str, ...]]:
    return [tuple(f.code for f in ledger.state.check(r)) for r in records]


def test_a_flipped_byte_in_a_key_never_hides_a_duplicate(demo: Path, tmp_path: Path) -> None:
    """A damaged key byte makes a point lookup miss its row: that miss must never let the writer take a record
    again (``record.duplicate``) or an id, report number or inscription twice. Every key the index holds for the
    demo's body hashes and claims is flipped in turn: each record checked again gets the clean index's findings,
    or the damage is named (the writer then rebuilds)."""
    path = _copy(demo, tmp_path, with_index=False)
    keys, _ = _keys(demo)
    with Ledger.open(path, keys) as ledger:
        records = [ledger.record(p) for p in range(ledger.size)]
        want = _findings(ledger, records)
    clean = index_path(path).read_bytes()
    needles = {bytes(r.body_hash) for r in records} | {
        sort_key(kind, key) for r in records for kind, key, _ in claims_of(r)}
    offsets = sorted({at + len(n) // 2 for n in needles if (at := clean.find(n)) >= 0})
    assert len(offsets) > 100
    offsets = offsets[::max(1, len(offsets) // 60)]
    for offset in offsets:
        damaged = bytearray(clean)
        damaged[offset] ^= 0x10
        index_path(path).write_bytes(bytes(damaged))
        try:
            with Ledger.open(path, keys) as ledger:
                assert _findings(ledger, records) == want, f"byte {offset}"
        except StoneTrailError as exc:
            assert exc.code == "index.damaged", exc


def test_a_trusted_build_holds_what_a_checked_one_holds(demo: Path, tmp_path: Path) -> None:
    """ADR 0020: a build from scratch that takes the log's custody records as checked reaches, row for row, the
    index of a build that checks every record (and of the writer that appended them)."""
    path = _copy(demo, tmp_path, with_index=False)
    keys, _ = _keys(demo)
    rebuild_index(path, keys, checked=True)
    checked = index_rows(path)
    rebuild_index(path, keys)
    assert index_rows(path) == checked
    assert index_rows(demo / "demo.ledger") == checked


def test_an_index_holds_the_same_bytes_in_every_run(demo: Path, tmp_path: Path) -> None:
    """The index is a function of the log: two builds in processes whose string hashes differ (PYTHONHASHSEED:
    the order of a set's items) write the same rows, so a writer's index and a rebuild compare byte for byte."""
    path = _copy(demo, tmp_path, with_index=False)
    rows = []
    for seed in ("1", "2"):
        discard_index(path)
        built = subprocess.run([sys.executable, "-c", "import sys; from stonetrail_cli.main import main; main()",
                                "index", str(path), "--trust", str(demo / "trust.keys")],
                               env={**os.environ, "PYTHONHASHSEED": seed}, capture_output=True, text=True, check=False)
        assert built.returncode == 0, built.stderr
        rows.append(index_rows(path))
    assert rows[0] == rows[1]


def _overwrite(path: Path, position: int, payload: bytes, *, crc: bool) -> None:
    """Overwrite the payload of record ``position`` in place (same length), its frame's CRC-32 made to match
    only if ``crc``."""
    frame = scan(path).frames[position]
    assert len(payload) == len(frame.payload)
    with open(path, "r+b") as file:
        if crc:
            file.seek(frame.offset + 8)  # the frame header: magic, length, CRC-32 of the payload
            file.write(zlib.crc32(payload).to_bytes(4, "big"))
        file.seek(frame.offset + 12)
        file.write(payload)


@pytest.mark.parametrize("undecodable", [False, True])
@pytest.mark.parametrize("with_progress", [False, True])
def test_a_build_names_the_logs_damage_first(demo: Path, tmp_path: Path, undecodable: bool,
                                             with_progress: bool) -> None:
    """A build reads the log once when nobody asks its progress (no count of the records first): damage is named
    all the same, before a record that cannot be read, and no index is left."""
    path = _copy(demo, tmp_path, with_index=False)
    keys, _ = _keys(demo)
    frames = scan(path).frames
    damaged = frames[-2].payload
    _overwrite(path, len(frames) - 2, bytes([damaged[0] ^ 0xFF]) + damaged[1:], crc=False)
    if undecodable:  # a well-framed record that does not decode, before the damage
        _overwrite(path, len(frames) // 2, b"\xc1" * len(frames[len(frames) // 2].payload), crc=True)
    seen: list[tuple[int, int]] = []
    with pytest.raises(StoneTrailError) as caught:
        rebuild_index(path, keys, progress=(lambda done, total: seen.append((done, total))) if with_progress
                      else None)
    assert caught.value.code == framing.CHECKSUM
    assert not index_path(path).exists() and not Path(f"{index_path(path)}.building").exists()


def test_a_leaf_page_that_hides_rows_makes_items_and_show_read_the_log(demo: Path, tmp_path: Path) -> None:
    """One byte of the index file, the cell count of a leaf page of its items table, one lower (an adversarial
    review: no checksum covers it): the last row of the page is hidden from walks and lookups alike. `items`
    listed 431 of the 432 items (exit 0) and `show` said an item did not exist; now the walk's length is compared
    with the row count and a lookup's miss with the item's record positions, and both read the log."""
    path = _copy(demo, tmp_path)
    want = item_lines(replay_ledger(path, None))
    with closing(sqlite3.connect(index_path(path))) as db:
        pages = [p for (p,) in db.execute("SELECT pageno FROM dbstat WHERE name = 'items' AND pagetype = 'leaf'")]
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
    assert pages and not Path(f"{index_path(path)}-wal").exists()  # the rows are in the file itself
    whole = index_path(path).read_bytes()
    for page in pages:
        at = (page - 1) * page_size + (100 if page == 1 else 0) + 4  # the low byte of the page's cell count
        with open(index_path(path), "r+b") as file:
            file.seek(at)
            file.write(bytes([whole[at] - 1]))
        listed = CliRunner().invoke(main, ["items", str(path), "--json"])
        assert listed.exit_code == 0 and [line["item"] for line in json.loads(listed.stdout)["items"]] == \
            [line.item for line in want], page
        log = indexed_log(path)
        assert log is not None
        with log:
            for line in want:
                try:
                    indexed_scope(log, line.item)
                except StoneTrailError as exc:  # the caller then reads the log: never "no such item"
                    assert exc.code == "index.damaged", (page, line.item)
        index_path(path).write_bytes(whole)
