"""`publish` hands on only tiles of the signed tree (ledger.storage.tile_check): the index's tiles are a cache, and
an adversarial review changed a leaf hash in a level-0 tile (the inner nodes kept beside it left alone, the row's
checksum computed again): publish copied it, and every client then refused the directory."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from copies import copy_demo

from ledger.checkpoint import read_unverified_checkpoint
from ledger.errors import StoneTrailError
from ledger.hashing import Digest
from ledger.index import discard_index, rebuild_index
from ledger.index.db import index_path
from ledger.index.maps import row_check
from ledger.merkle import leaf_hash
from ledger.published import publish_log
from ledger.storage import scan
from ledger.storage.tile_check import CheckedTiles, tile_widths
from ledger.storage.tiles import MemoryTiles, TiledTree
from ledger.trust import Trust


def _copy(demo: Path, to: Path) -> Path:
    return copy_demo(demo, to)


def _flip(ledger: Path, level: int, index: int, at: int) -> None:
    """Change hash ``at`` of tile (level, index) in the index, its checksum computed again (its inner nodes, a row
    of their own, left as they were)."""
    key = (level << 56) | index
    with closing(sqlite3.connect(index_path(ledger))) as db:
        (value,) = db.execute("SELECT v FROM tiles WHERE id = ?", (key,)).fetchone()
        value = bytearray(value)
        value[at * 32] ^= 1
        db.execute("UPDATE tiles SET v = ?, c = ? WHERE id = ?", (bytes(value), row_check("tiles", str(key).encode(),
                                                                                       bytes(value)), key))
        db.commit()


class _Changed:
    """A tile store whose tile ``key`` now holds ``hashes``."""

    def __init__(self, tiles: MemoryTiles, key: tuple[int, int], hashes: bytes) -> None:
        self._tiles, self._key, self._hashes = tiles, key, hashes

    def read_tile(self, level: int, index: int) -> bytes:
        return self._hashes if (level, index) == self._key else self._tiles.read_tile(level, index)


def _files(site: Path) -> dict[str, bytes]:
    return {str(p.relative_to(site)): p.read_bytes() for p in site.rglob("*") if p.is_file()}


@pytest.mark.parametrize(("level", "index", "at"), [(0, 0, 5), (0, 1, 255), (0, 2, 0), (1, 0, 1)],
                         ids=["full tile, a left leaf", "full tile, its last leaf", "partial tile", "level 1"])
def test_a_tile_the_index_altered_is_never_published(demo: Path, tmp_path: Path, level: int, index: int,
                                                      at: int) -> None:
    base = _copy(demo, tmp_path / "forged")
    note = (base / "checkpoint.txt").read_text()
    assert read_unverified_checkpoint(note).tree_size == 704  # tiles 0/000, 0/001 full, 0/002.p/192, 1/000.p/2
    _flip(base / "demo.ledger", level, index, at)
    with pytest.raises(StoneTrailError) as refused:
        publish_log(base / "demo.ledger", base / "site", note)
    assert refused.value.code == "publish.no_index", refused.value
    assert not [name for name in _files(base / "site") if name.startswith("tile/")]
    rebuild_index(base / "demo.ledger", Trust.parse((base / "trust.keys").read_text()).authority_keys)
    publish_log(base / "demo.ledger", base / "site", note)
    clean = _copy(demo, tmp_path / "clean")
    publish_log(clean / "demo.ledger", clean / "site", note)
    assert _files(base / "site") == _files(clean / "site")


@pytest.mark.parametrize("size", [1, 255, 256, 257, 512, 65535, 65536, 65537, 70000])
def test_checked_tiles_give_every_tile_of_the_tree_and_refuse_any_changed_hash(size: int) -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    tiles = MemoryTiles()
    tiles.put(TiledTree(tiles, 0).append(leaves))
    root = TiledTree(tiles, size).root_at(size)
    checked = CheckedTiles(tiles, size, root)
    widths = tile_widths(size)
    assert [checked.tile(level, index) for level, index, _ in widths] == \
        [tiles.read_tile(level, index)[:width * 32] for level, index, width in widths]
    assert tile_widths(size, size - 1)[0] == [w for w in widths if w[0] == 0][-1]  # the tile of the last leaf
    for level, index, width in widths[:: max(1, len(widths) // 5)] + widths[-1:]:
        hashes = bytearray(tiles.read_tile(level, index))
        hashes[(width - 1) * 32] ^= 0x80
        forged = _Changed(tiles, (level, index), bytes(hashes))
        with pytest.raises(StoneTrailError) as refused:
            CheckedTiles(forged, size, root).tile(level, index)
        assert refused.value.code == "index.damaged"
    with pytest.raises(StoneTrailError) as other:
        CheckedTiles(tiles, size, Digest(bytes(32)))
    assert other.value.code == "index.damaged"


def test_published_tiles_hold_the_leaf_hashes_of_the_ledgers_records(demo: Path, tmp_path: Path) -> None:
    base = _copy(demo, tmp_path / "d")
    publish_log(base / "demo.ledger", base / "site", (base / "checkpoint.txt").read_text())
    site = base / "site"
    published = (site / "tile/0/000").read_bytes() + (site / "tile/0/001").read_bytes() + \
        (site / "tile/0/002.p/192").read_bytes()
    assert published == b"".join(leaf_hash(f.payload) for f in scan(base / "demo.ledger").frames)


def test_an_item_file_places_only_records_of_the_signed_tree(tmp_path: Path) -> None:
    """A review forged, between two publishes, the index's frame and leaf hash of position g (in a tile complete
    at the first publish, which the second does not write again) to be record b's, and moved one of a stone's
    positions from b to g: the second publish wrote an item file every client refused, and no later publish could
    replace it. Now every position an item file names must have, in the checked tree, the leaf of the record read
    there: the publish is refused, nothing is written, and a rebuilt index publishes the right file."""
    import random
    import struct

    from differential_ledgers import forge

    from ledger import Ledger
    from ledger._codec import pack_local
    from ledger.heads import ItemHeads
    from world import OPERATOR, ORIGIN, TRUST

    records = forge(random.Random(1), 700).records
    path, site, since = tmp_path / "t.ledger", tmp_path / "site", 513
    with Ledger.create(path, ORIGIN, TRUST.authority_keys) as ledger:
        ledger.append_batch(records[:since])
        publish_log(path, site, ledger.checkpoint(OPERATOR))
        ledger.append_batch(records[since:])
        note = ledger.checkpoint(OPERATOR)
    positions = ItemHeads.of(enumerate(records)).index
    item, at, b, g = next((item, at, b, g) for item, at in sorted(positions.items()) if at[-1] >= since
                          for b in at if b < 512 for g in range(b // 256 * 256, b) if g not in at and g > at[0])
    frame = scan(path).frames[b]
    with closing(sqlite3.connect(index_path(path))) as db:
        for table, key, change in (
                ("frames", g // 256, lambda v: struct.pack_into(">QQ", v, g % 256 * 16, frame.offset,
                                                                   frame.end - frame.offset)),
                ("tiles", g // 256, lambda v: v.__setitem__(slice(g % 256 * 32, g % 256 * 32 + 32),
                                                            leaf_hash(records[b].raw)))):
            value = bytearray(db.execute(f"SELECT v FROM {table} WHERE id = ?", (key,)).fetchone()[0])
            change(value)
            db.execute(f"UPDATE {table} SET v = ?, c = ? WHERE id = ?",
                       (bytes(value), row_check(table, str(key).encode(), bytes(value)), key))
        moved = pack_local(sorted([*(p for p in at if p != b), g]))
        db.execute("UPDATE head_positions SET v = ?, c = ? WHERE k = ?",
                   (moved, row_check("head_positions", item.encode(), moved), item.encode()))
        db.commit()
    before = _files(site)
    with pytest.raises(StoneTrailError) as refused:
        publish_log(path, site, note)
    assert refused.value.code == "publish.no_index" and _files(site) == before
    rebuild_index(path, TRUST.authority_keys)
    publish_log(path, site, note)
    fresh = tmp_path / "fresh"
    publish_log(path, fresh, note)
    assert _files(site) == _files(fresh) | {name: data for name, data in before.items() if name not in _files(fresh)}


def test_a_checkpoint_the_index_does_not_give_is_checked_against_the_log(demo: Path, tmp_path: Path) -> None:
    """A review cut the index's registry rows short: publish named the checkpoint's registry line as the fault
    (checkpoint.registry_mismatch), a verdict on the ledger, from a cache. The log now decides: the index is
    damaged (publish.no_index). A checkpoint of another ledger is still named as such."""
    from ledger import build_demo
    from ledger._codec import pack_local, unpack_local

    base = _copy(demo, tmp_path / "forged")
    note = (base / "checkpoint.txt").read_text()
    with closing(sqlite3.connect(index_path(base / "demo.ledger"))) as db:
        db.execute("DELETE FROM registry WHERE id = (SELECT max(id) FROM registry)")
        count = pack_local(unpack_local(db.execute("SELECT v FROM meta WHERE k = 'registry'").fetchone()[0]) - 1)
        db.execute("UPDATE meta SET v = ?, c = ? WHERE k = 'registry'", (count, row_check("meta", b"registry", count)))
        db.commit()
    with pytest.raises(StoneTrailError) as refused:
        publish_log(base / "demo.ledger", base / "site", note)
    assert refused.value.code == "publish.no_index", refused.value
    other = tmp_path / "other"
    build_demo(other, seed=7)
    with pytest.raises(StoneTrailError) as foreign:
        publish_log(demo / "demo.ledger", tmp_path / "site", (other / "checkpoint.txt").read_text())
    assert foreign.value.code.startswith("checkpoint."), foreign.value


def test_a_damaged_or_short_ledger_is_named_as_such_not_as_an_index_to_build(demo: Path, tmp_path: Path) -> None:
    """A new-user review: publish on a torn ledger said to build the index, which then refused (the file is
    damaged, not the index). The error is now the file's own, naming it; a file short of the checkpoint says so."""
    base = _copy(demo, tmp_path / "torn")
    note = (base / "checkpoint.txt").read_text()
    ledger = base / "demo.ledger"
    frames = scan(ledger).frames
    ledger.write_bytes(ledger.read_bytes()[:-5])  # the last record torn
    with pytest.raises(StoneTrailError) as torn:
        publish_log(ledger, base / "site", note)
    assert (torn.value.code, torn.value.file) == ("store.torn_tail", str(ledger)), torn.value
    ledger.write_bytes(ledger.read_bytes()[:frames[600].offset])  # an older copy, 600 records, intact
    discard_index(ledger)
    with pytest.raises(StoneTrailError) as short:
        publish_log(ledger, base / "site", note)
    assert short.value.code == "checkpoint.beyond_log" and "600 records" in str(short.value), short.value
    assert not [name for name in _files(base / "site") if not name.startswith(".")]  # nothing published
