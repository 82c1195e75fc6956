"""Someone who can write the index beside a ledger, and computes its rows' checksums again, never gets the operator
to sign a root the log does not give (ledger.index.anchor, docs/adr/0028-signed-root-anchor.md): an adversarial
review rewrote the tiles and the recorded root, and `stonetrail checkpoint` signed a second tree of the same size,
evidence of a split view against an operator who never made one."""

from __future__ import annotations

import hashlib
import marshal
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from test_index import _grown, _keys

from ledger import Ledger
from ledger.hashing import Digest
from ledger.index import anchor
from ledger.index.db import index_path
from ledger.index.maps import row_check
from ledger.merkle import leaf_hash
from ledger.reader import checkpoint_file as checkpoint_log
from ledger.signing import checkpoint_file as sign_file
from ledger.storage import scan
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
        value = marshal.dumps(bytes(root), 2)
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


def test_signing_after_an_anchor_reads_only_the_records_since(demo: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer's checkpoint at SIGNED_AT is the anchor of the next signing, which reads the log from there, not
    from its first record, and leaves its own note as the next anchor; a note by another signer is no anchor."""
    path = _grown(demo, tmp_path, SIGNED_AT)
    _, operator = _keys(demo)
    starts: list[int] = []
    real = anchor.leaf_runs

    def spy(log: Any, start: int, end: int, first: int) -> Any:
        starts.append(first)
        return real(log, start, end, first)

    monkeypatch.setattr(anchor, "leaf_runs", spy)
    want = checkpoint_log(path, operator)  # type: ignore[arg-type]
    size = scan(path).frames[-1].index + 1
    assert sign_file(path, operator) == want  # type: ignore[arg-type]
    assert sign_file(path, operator) == want  # type: ignore[arg-type]
    sign_file(path, operator, "another.example/operator")  # type: ignore[arg-type]
    assert starts == [SIGNED_AT, size, 0]
