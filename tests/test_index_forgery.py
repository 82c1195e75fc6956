"""Someone who can write the index beside a ledger, and computes its rows' checksums again, never gets the operator
to sign a root the log does not give (ledger.index.anchor, docs/adr/0028-signed-root-anchor.md): an adversarial
review rewrote the tiles and the recorded root, and `stonetrail checkpoint` signed a second tree of the same size,
evidence of a split view against an operator who never made one."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import struct
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from test_index import _grown, _keys

from ledger import Ledger
from ledger._codec import pack_local, unpack_local
from ledger.errors import CorruptStoreError
from ledger.hashing import Digest
from ledger.index import anchor, discard_index, rebuild_index
from ledger.index.db import index_path
from ledger.index.maps import row_check
from ledger.merkle import leaf_hash
from ledger.reader import checkpoint_file as checkpoint_log
from ledger.signing import checkpoint_file as sign_file
from ledger.storage import scan
from ledger.storage.framing import FRAME_MAGIC
from ledger.storage.tiles import MemoryTiles, TiledTree, tile_nodes

_NODES = 1 << 62  # the key bit of a tile's inner-node row (ledger.index.db)
SIGNED_AT = 600  # the writer's checkpoint: its anchor (and the open check reads the last 64 records, after 640)


def _forge_tiles(path: Path, leaf: int) -> None:
    """Rewrite every tile of the index of ``path`` (and the root it recorded) as the tree whose leaf ``leaf`` is
    another hash, each row's checksum computed again: every check of a row passes."""
    data, frames = path.read_bytes(), scan(path).frames
    leaves = [leaf_hash(data[f.offset + 12:f.end]) for f in frames]
    leaves[leaf] = Digest(hashlib.sha256(b"not the log's record").digest())
    tiles = MemoryTiles()
    written = TiledTree(tiles, 0).append(leaves)
    tiles.put(written)
    root = TiledTree(tiles, len(leaves)).root_at(len(leaves))
    with closing(sqlite3.connect(index_path(path))) as db:
        db.execute("DELETE FROM tiles")
        for tile in written:
            key = (tile.level << 56) | tile.index
            for k, v in ((key, tile.hashes), (_NODES | key, tile_nodes(tile.hashes))):
                db.execute("INSERT OR REPLACE INTO tiles VALUES (?, ?, ?)",
                           (k, v, row_check("tiles", str(k).encode(), v)))
        value = pack_local(bytes(root))
        db.execute("UPDATE meta SET v = ?, c = ? WHERE k = 'root'", (value, row_check("meta", b"root", value)))
        db.commit()


@pytest.mark.parametrize("leaf", [100, 620], ids=["below the anchor", "after the anchor"])
@pytest.mark.parametrize("through", ["writer", "checkpoint command"])
def test_forged_tiles_with_their_checksums_are_never_signed(demo: Path, tmp_path: Path, leaf: int,
                                                           through: str) -> None:
    path = _grown(demo, tmp_path, SIGNED_AT)
    keys, operator = _keys(demo)
    want = checkpoint_log(path, operator)  # type: ignore[arg-type]  # the log alone
    _forge_tiles(path, leaf)
    if through == "writer":
        with Ledger.open(path, keys) as ledger:
            assert ledger.checkpoint(operator) == want  # type: ignore[arg-type]  # rebuilt from the log, then signed
    else:
        assert sign_file(path, operator) == want  # type: ignore[arg-type]  # read from the log


def _put(db: sqlite3.Connection, table: str, key: object, value: bytes) -> None:
    column = "k" if table == "meta" else "id"
    db.execute(f"INSERT OR REPLACE INTO {table} ({column}, v, c) VALUES (?, ?, ?)",
               (key, value, row_check(table, str(key).encode(), value)))


def _forge_skip(path: Path, skip_to: int) -> None:
    """The second adversarial review's forgery: an index that counts records 0..SIGNED_AT-1 and then those after
    ``skip_to``, whose frame and level-0 leaf at SIGNED_AT-1 are record ``skip_to``'s (the inner nodes keep the
    genuine leaf, so the anchor's subtrees still give its root), every checksum computed again. Signing from it
    would start the log pass after record ``skip_to``: another tree size and root."""
    data, frames = path.read_bytes(), scan(path).frames
    leaves = [leaf_hash(data[f.offset + 12:f.end]) for f in frames]
    spans = [(f.offset, f.end - f.offset) for f in frames]
    order = [*range(SIGNED_AT), *range(skip_to + 1, len(frames))]
    placed = [spans[r] for r in order]
    placed[SIGNED_AT - 1] = spans[skip_to]
    tiles = MemoryTiles()
    written = TiledTree(tiles, 0).append([leaves[r] for r in order])
    tiles.put(written)
    root = TiledTree(tiles, len(order)).root_at(len(order))
    with closing(sqlite3.connect(index_path(path))) as db:
        db.execute("DELETE FROM tiles")
        for tile in written:
            key, hashes = (tile.level << 56) | tile.index, tile.hashes
            if tile.level == 0 and tile.index == (SIGNED_AT - 1) // 256:
                at = (SIGNED_AT - 1) % 256 * 32
                hashes = hashes[:at] + leaves[skip_to] + hashes[at + 32:]
            _put(db, "tiles", key, hashes)
            _put(db, "tiles", _NODES | key, tile_nodes(tile.hashes))  # the genuine leaf in the inner nodes
        db.execute("DELETE FROM frames")
        for block in range(0, len(placed), 256):
            _put(db, "frames", block // 256, b"".join(struct.pack(">QQ", *f) for f in placed[block:block + 256]))
        for name, value in (("size", len(order)), ("end", spans[-1][0] + spans[-1][1]),
                            ("last", bytes(leaves[order[-1]])), ("root", bytes(root))):
            _put(db, "meta", name, pack_local(value))
        db.commit()


@pytest.mark.parametrize("skip_to", [650, 500], ids=["forward", "back"])
@pytest.mark.parametrize("through", ["writer", "checkpoint command"])
def test_an_index_that_moves_the_anchors_last_record_is_never_signed(demo: Path, tmp_path: Path, skip_to: int,
                                                                    through: str) -> None:
    """The anchor states the byte offset where its last record ends, under the signer's signature: the log pass
    starts there, whatever the index's frames and leaf rows say (a review got sizes 653 and 907 signed)."""
    path = _grown(demo, tmp_path, SIGNED_AT)
    keys, operator = _keys(demo)
    want = checkpoint_log(path, operator)  # type: ignore[arg-type]
    _forge_skip(path, skip_to)
    if through == "writer":
        with Ledger.open(path, keys) as ledger:
            assert ledger.checkpoint(operator) == want  # type: ignore[arg-type]
    else:
        assert sign_file(path, operator) == want  # type: ignore[arg-type]


def _first_records_read(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The list to which each signing through the index appends the first record it reads from the log."""
    starts: list[int] = []
    real = anchor.leaf_runs

    def spy(log: Any, start: int, end: int, first: int, digest: Any = None, **more: Any) -> Any:
        starts.append(first)
        return real(log, start, end, first, digest, **more)

    monkeypatch.setattr(anchor, "leaf_runs", spy)
    return starts


def test_signing_after_an_anchor_reads_only_the_records_since(demo: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer's checkpoint at SIGNED_AT is the anchor of the next signing, which reads the log from there, not
    from its first record, and leaves its own note as the next anchor; a note by another signer is no anchor."""
    path = _grown(demo, tmp_path, SIGNED_AT)
    _, operator = _keys(demo)
    starts = _first_records_read(monkeypatch)
    want = checkpoint_log(path, operator)  # type: ignore[arg-type]
    size = scan(path).frames[-1].index + 1
    assert sign_file(path, operator) == want  # type: ignore[arg-type]
    assert sign_file(path, operator) == want  # type: ignore[arg-type]
    sign_file(path, operator, "another.example/operator")  # type: ignore[arg-type]
    assert starts == [SIGNED_AT, size, 0]


def test_a_rebuilt_index_keeps_the_anchor_and_the_next_signing_reads_only_the_records_since(
        demo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An anchor is a signed note about the log, checked against the log before it is used: a rebuild keeps it, so
    the first signing after one decodes the records since the last signing, not all (at 10^6 records: ~1 s, not
    ~35 s). A rebuild of an index whose anchor a forger changed keeps a note that is then no anchor."""
    path = _grown(demo, tmp_path, SIGNED_AT)
    keys, operator = _keys(demo)
    starts = _first_records_read(monkeypatch)
    want, size = checkpoint_log(path, operator), scan(path).frames[-1].index + 1  # type: ignore[arg-type]
    rebuild_index(path, keys)
    assert sign_file(path, operator) == want  # type: ignore[arg-type]
    with closing(sqlite3.connect(index_path(path))) as db:
        _put(db, "meta", "anchor", pack_local(unpack_local(db.execute(
            "SELECT v FROM meta WHERE k = 'anchor'").fetchone()[0]).replace(f"\n{size}\n", f"\n{size - 1}\n", 1)))
        db.commit()
    rebuild_index(path, keys)
    assert sign_file(path, operator) == want  # type: ignore[arg-type]
    assert starts == [SIGNED_AT, 0]


def _frames_row_edit(db: sqlite3.Connection) -> None:
    block = db.execute("SELECT v FROM frames WHERE id = 1").fetchone()[0]
    _put(db, "frames", 1, struct.pack(">QQ", 12, 1 << 62) + block[16:])  # a length no frame has


def _registry_row_added(db: sqlite3.Connection) -> None:
    _put(db, "registry", 300, b"")  # a custody record's position, its count raised to match
    count = unpack_local(db.execute("SELECT v FROM meta WHERE k = 'registry'").fetchone()[0])
    _put(db, "meta", "registry", pack_local(count + 1))


def _last_registry_row_dropped(db: sqlite3.Connection) -> None:
    """The registry shortened by its last record, its row count lowered to match (every checksum passes): a
    checkpoint signed from it would commit to a registry one record short (a review: `stonetrail-registry 25`
    signed for 26)."""
    db.execute("DELETE FROM registry WHERE id = (SELECT max(id) FROM registry)")
    count = unpack_local(db.execute("SELECT v FROM meta WHERE k = 'registry'").fetchone()[0])
    _put(db, "meta", "registry", pack_local(count - 1))


def _snapshot_line_garbled(db: sqlite3.Connection) -> None:
    for size, tree, k in db.execute("SELECT size, tree, k FROM snap WHERE kind = 2").fetchall():
        line = b"stonetrail-heads 12"  # two fields, not three
        db.execute("UPDATE snap SET v = ?, c = ? WHERE size = ? AND tree = ? AND kind = 2 AND k = ?",
                   (line, row_check(f"snap/{size}/{tree}/2/{k}", line, b""), size, tree, k))


def _item_without_positions(db: sqlite3.Connection) -> None:
    db.execute("DELETE FROM snap")  # the trees are then walked from the tables
    key = db.execute("SELECT k FROM head_positions ORDER BY k LIMIT 1").fetchone()[0]
    value = pack_local([])
    db.execute("UPDATE head_positions SET v = ?, c = ? WHERE k = ?", (value, row_check("head_positions", key, value),
                                                                     key))


def _snapshot_of_minus_one_leaves(db: sqlite3.Connection) -> None:
    for size, tree, k, v in db.execute("SELECT size, tree, k, v FROM snap WHERE kind = 2").fetchall():
        keyword = bytes(v).split(b" ")[0]
        line = keyword + b" -1 " + bytes(v).split(b" ")[2]
        db.execute("UPDATE snap SET v = ?, c = ? WHERE size = ? AND tree = ? AND kind = 2 AND k = ?",
                   (line, row_check(f"snap/{size}/{tree}/2/{k}", line, b""), size, tree, k))


_BOMB = b"\xdd\x10\x00\x00\x00"  # msgpack: an array of 2**28 entries (5 bytes)


def _values_claiming_huge_containers(db: sqlite3.Connection) -> None:
    """Every value of the state tables, the meta counts and the snapshots' leaf rows replaced by :data:`_BOMB`,
    each with a checksum that passes."""
    from ledger.index.snapshot import _check
    from ledger.index.state import TABLES

    for table in TABLES:
        for (key,) in db.execute(f"SELECT k FROM {table}").fetchall():
            db.execute(f"UPDATE {table} SET v = ?, c = ? WHERE k = ?", (_BOMB, row_check(table, key, _BOMB), key))
    _put(db, "meta", "counts", _BOMB)
    for size, tree, kind, k, w in db.execute("SELECT size, tree, kind, k, w FROM snap WHERE kind IN (0, 3)"):
        db.execute("UPDATE snap SET v = ?, c = ? WHERE size = ? AND tree = ? AND kind = ? AND k = ?",
                   (_BOMB, _check(size, tree, kind, k, _BOMB, w), size, tree, kind, k))


_EDITS = {
    "values claiming 2**28 entries": _values_claiming_huge_containers,
    "size and end past any index": lambda db: [_put(db, "meta", name, pack_local((1 << 64) - 1))
                                              for name in ("size", "end")],
    "size below the registry's last record": lambda db: _put(db, "meta", "size", pack_local(100)),
    "a snapshot of -1 leaves": _snapshot_of_minus_one_leaves,
    "a custody record among the registry rows": _registry_row_added,
    "the last registry row dropped, its count lowered": _last_registry_row_dropped,
    "a snapshot line that is not one": _snapshot_line_garbled,
    "an item with no positions": _item_without_positions,
    "registry rows and count deleted": lambda db: db.executescript(
        "DELETE FROM registry; DELETE FROM meta WHERE k = 'registry';"),
    "registry behind a view": lambda db: db.executescript(
        "ALTER TABLE registry RENAME TO kept; CREATE VIEW registry AS SELECT * FROM kept WHERE id < 25;"),
    "meta size not msgpack": lambda db: _put(db, "meta", "size", b"\xc1"),
    "meta size and end deleted": lambda db: db.execute("DELETE FROM meta WHERE k IN ('size', 'end')"),
    "frame length of 2**62": _frames_row_edit,
    "a tile row deleted": lambda db: db.execute("DELETE FROM tiles WHERE id = 1"),
}


@pytest.mark.parametrize("edit", sorted(_EDITS))
def test_index_edits_lead_to_a_rebuild_or_the_log_never_to_another_checkpoint(demo: Path, tmp_path: Path,
                                                                              edit: str) -> None:
    """The second adversarial review's edits of the index, most needing no checksum: each is noticed (row
    count, schema objects, meta values, frame bounds, a missing tile), and both signing paths sign what the
    log alone gives, with no traceback."""
    path = _grown(demo, tmp_path, SIGNED_AT)
    keys, operator = _keys(demo)
    want = checkpoint_log(path, operator)  # type: ignore[arg-type]
    with closing(sqlite3.connect(index_path(path))) as db:
        _EDITS[edit](db)
        db.commit()
    assert sign_file(path, operator) == want  # type: ignore[arg-type]
    with Ledger.open(path, keys) as ledger:
        assert ledger.checkpoint(operator) == want  # type: ignore[arg-type]


@pytest.mark.parametrize("signed_at", [20, 26], ids=["registry records after the anchor", "none after it"])
def test_an_index_short_of_a_registry_record_is_never_signed(demo: Path, tmp_path: Path, signed_at: int) -> None:
    """The registry line is bound to the log as the root is: the anchor states the registry line at its size,
    and the registry-kind records after it are read from the log (the demo's 26 are records 0..25). An index
    whose last registry row is dropped, its count lowered to match, was signed one registry record short."""
    path = _grown(demo, tmp_path, signed_at)
    keys, operator = _keys(demo)
    want = checkpoint_log(path, operator)  # type: ignore[arg-type]
    assert "stonetrail-registry 26 " in want
    with closing(sqlite3.connect(index_path(path))) as db:
        _last_registry_row_dropped(db)
        db.commit()
    assert sign_file(path, operator) == want  # type: ignore[arg-type]
    with Ledger.open(path, keys) as ledger:
        assert ledger.checkpoint(operator) == want  # type: ignore[arg-type]


def test_an_index_that_ends_inside_a_batch_the_log_never_ended_is_not_used(demo: Path, tmp_path: Path) -> None:
    """A batch cut short by a crash is a torn tail, never records (docs/format.md §8). The fourth review built an
    index over a copy whose last frame was made a batch's end, and put it beside the torn log: both signing paths
    signed the torn records, which `repair` then moves aside (a rollback under the operator's key). The frame
    an index ends at must end a batch in the log."""
    path = _grown(demo, tmp_path, SIGNED_AT)  # records SIGNED_AT.. were appended in one batch
    keys, operator = _keys(demo)
    frames = scan(path).frames
    torn = path.read_bytes()[: frames[SIGNED_AT + 50].end]  # the batch cut after 51 of its frames
    path.write_bytes(torn)
    ended = tmp_path / "ended.ledger"
    at = frames[SIGNED_AT + 50].offset
    ended.write_bytes(torn[:at] + FRAME_MAGIC + torn[at + 4:])  # the CRC covers only the payload
    discard_index(path)
    rebuild_index(ended, keys)
    index_path(ended).rename(index_path(path))
    with pytest.raises(CorruptStoreError) as log_only:
        checkpoint_log(path, operator)  # type: ignore[arg-type]
    with pytest.raises(CorruptStoreError) as through_index:
        sign_file(path, operator)  # type: ignore[arg-type]
    with pytest.raises(CorruptStoreError) as writer:
        Ledger.open(path, keys)
    assert log_only.value.code == through_index.value.code == writer.value.code == "store.torn_tail"


def _set_row(db: sqlite3.Connection, table: str, key: bytes, change: Any) -> None:
    """Row ``key`` of ``table`` with its decoded value changed by ``change`` (a function of it; its result
    stored), its checksum recomputed."""
    value = pack_local(change(unpack_local(db.execute(f"SELECT v FROM {table} WHERE k = ?", (key,)).fetchone()[0])))
    db.execute(f"UPDATE {table} SET v = ?, c = ? WHERE k = ?", (value, row_check(table, key, value), key))


def _replaced(field: int, value: Any) -> Any:
    def change(row: list[Any]) -> list[Any]:
        row[field] = value
        return row
    return change


_STONE = b"R-00001-A"
#: Rows of a stone whose checksums pass but whose values have the wrong shape (an adversarial review: each gave a
#: traceback, a wrong answer or a refusal), and meta counts out of range or that hide rows.
_SHAPES = {
    "item history None": lambda db: _set_row(db, "items", _STONE, _replaced(17, None)),
    "item origin keyed by a number": lambda db: _set_row(db, "items", _STONE, _replaced(6, {1: 2})),
    "item id a number": lambda db: _set_row(db, "items", _STONE, _replaced(0, 7)),
    "head positions with text among them": lambda db: _set_row(
        db, "head_positions", _STONE, lambda at: [*at[:-1], "x", at[-1]]),
    "head positions a number": lambda db: _set_row(db, "head_positions", _STONE, lambda at: 5),
    "a position of another record among a stone's": lambda db: _set_row(
        db, "head_positions", _STONE, lambda at: [*at[:-2], 0, at[-1]]),
    "counts of 2**64 - 1": lambda db: _put(db, "meta", "counts", pack_local(
        {**unpack_local(db.execute("SELECT v FROM meta WHERE k = 'counts'").fetchone()[0]), "items": (1 << 64) - 1})),
    "items counted 0": lambda db: _put(db, "meta", "counts", pack_local(
        {**unpack_local(db.execute("SELECT v FROM meta WHERE k = 'counts'").fetchone()[0]), "items": 0})),
    "a 10 MB counts value": lambda db: _put(db, "meta", "counts", b"\xdc\xff\xff" + b"\x90" * 65535
                                            + b"\x90" * (10 << 20)),
}


@pytest.mark.parametrize("edit", sorted(_SHAPES))
def test_rows_of_the_wrong_shape_make_readers_read_the_log_and_the_writer_rebuild(demo: Path, tmp_path: Path,
                                                                                 edit: str) -> None:
    """`show` (unverified: from the index when it covers the file), `proof export` and both signing paths give
    what the log gives, with no traceback, whatever shape a row's value has."""
    from click.testing import CliRunner

    from ledger.export import export_bundle
    from stonetrail_cli.main import main

    path = _grown(demo, tmp_path, SIGNED_AT)
    keys, operator = _keys(demo)
    note = checkpoint_log(path, operator)  # type: ignore[arg-type]
    shown = CliRunner().invoke(main, ["show", str(path), _STONE.decode(), "--json"])
    assert shown.exit_code == 0, shown.output
    bundle = export_bundle(path, _STONE.decode(), note)
    with closing(sqlite3.connect(index_path(path))) as db:
        _SHAPES[edit](db)
        db.commit()
    again = CliRunner().invoke(main, ["show", str(path), _STONE.decode(), "--json"])
    assert again.exit_code == 0 and json.loads(again.stdout) == json.loads(shown.stdout), again.output
    assert export_bundle(path, _STONE.decode(), note) == bundle
    assert sign_file(path, operator) == note  # type: ignore[arg-type]
    with Ledger.open(path, keys) as ledger:
        assert ledger.checkpoint(operator) == note  # type: ignore[arg-type]
