"""The checkpoint's two sorted trees (item heads, identities) as they were at a signed tree size, kept in the index
so that a proof bundle under that checkpoint needs O(log n) reads, not a rebuild of either tree.

A snapshot of a tree of ``count`` leaves holds, per rank, the leaf's sort key and leaf input (the rows of table
``snap``, kind 0) and the RFC 9162 node hashes of the leaf hashes as C2SP tlog-tiles (kind 1), plus its extension
line (kind 2). It is written when the writer signs a checkpoint (:meth:`LedgerIndex.checkpoint_lines`) and only
the latest :data:`KEPT` sizes are kept. Like every index row it is checked when read; a proof read from it is
checked against the snapshot's root before it is used.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from ..hashing import Digest
from ..merkle import verify_inclusion
from ..storage.tiles import MemoryTiles, Tile, TiledTree
from .maps import IndexDamaged, is_row, row_check, sqlite_errors

__all__ = ["HEADS", "IDENTITIES", "KEPT", "Snapshot", "create_snapshot_table", "write_snapshot"]

HEADS, IDENTITIES = 0, 1  # which tree
KEPT = 2  # snapshots (tree sizes) kept
_LEAF, _TILE, _LINE = 0, 1, 2


def create_snapshot_table(db: sqlite3.Connection) -> None:
    """Create the ``snap`` table if it does not exist."""
    db.execute("CREATE TABLE IF NOT EXISTS snap (size INTEGER, tree INTEGER, kind INTEGER, k INTEGER, v BLOB NOT NULL, "
               "w BLOB, c INTEGER NOT NULL, PRIMARY KEY (size, tree, kind, k)) WITHOUT ROWID")


def _check(size: int, tree: int, kind: int, k: int, v: bytes, w: bytes | None) -> int:
    return row_check(f"snap/{size}/{tree}/{kind}/{k}", v, w or b"")


def write_snapshot(db: sqlite3.Connection, size: int, tree: int, line: str,
                   leaves: Sequence[tuple[bytes, bytes, Digest]]) -> None:
    """Store the tree ``tree`` at log size ``size``: its extension ``line`` and its (sort key, leaf input, leaf
    hash) ``leaves`` in rank order (inside the caller's transaction); drop snapshots older than the last
    :data:`KEPT` sizes."""
    tiles = MemoryTiles()
    tiles.put(TiledTree(tiles, 0).append(h for _, _, h in leaves))
    rows: list[tuple[int, int, int, int, bytes, bytes | None]] = [
        (size, tree, _LEAF, rank, key, leaf) for rank, (key, leaf, _) in enumerate(leaves)]
    rows += [(size, tree, _TILE, (t.level << 48) | t.index, t.hashes, None) for t in _all(tiles, len(leaves))]
    rows.append((size, tree, _LINE, 0, line.encode(), None))
    with sqlite_errors("snap"):
        db.executemany("INSERT OR REPLACE INTO snap VALUES (?, ?, ?, ?, ?, ?, ?)",
                       [(*r, _check(*r)) for r in rows])
        kept = [s for (s,) in db.execute("SELECT DISTINCT size FROM snap ORDER BY size DESC")][:KEPT]
        db.execute(f"DELETE FROM snap WHERE size NOT IN ({','.join('?' * len(kept))})", kept)


def _all(tiles: MemoryTiles, count: int) -> list[Tile]:
    """Every tile of a tree of ``count`` leaves held in ``tiles`` (each at its widest)."""
    found, level, width = [], 0, count
    while width:
        for index in range((width + 255) // 256):
            found.append(Tile(level=level, index=index, hashes=tiles.read_tile(level, index)))
        level, width = level + 1, width // 256
    return found


class Snapshot:
    """One stored tree at one log size: its line, ranks by key, leaves and inclusion proofs.

    Raises:
        KeyError: no snapshot of this tree at this size (the caller falls back to the log).
        IndexDamaged: a row fails its checksum, or a proof does not lead to the snapshot's root.
    """

    def __init__(self, db: sqlite3.Connection, size: int, tree: int) -> None:
        self._db, self._size, self._tree = db, size, tree
        line = self._row(_LINE, 0)
        if line is None:
            raise KeyError((size, tree))
        self.line = line[0].decode()
        _, count, root = self.line.split(" ")
        self.count, self.root = int(count), Digest.from_b64(root)
        self._nodes = TiledTree(self, self.count)

    def _row(self, kind: int, k: int) -> tuple[bytes, bytes | None] | None:
        with sqlite_errors("snap"):
            row = self._db.execute("SELECT v, w, c FROM snap WHERE size = ? AND tree = ? AND kind = ? AND k = ?",
                                   (self._size, self._tree, kind, k)).fetchone()
        if row is None:
            return None
        if not is_row(k, row[0], row[2]) or not isinstance(row[1], bytes | None) \
                or _check(self._size, self._tree, kind, k, row[0], row[1]) != row[2]:
            raise IndexDamaged("index table snap: a row fails its checksum")
        return row[0], row[1]

    def read_tile(self, level: int, index: int) -> bytes:
        """A tile of the tree's leaf hashes (a :class:`~ledger.storage.tiles.TileReader`); KeyError if none."""
        row = self._row(_TILE, (level << 48) | index)
        if row is None:
            raise KeyError((level, index))
        return row[0]

    def leaf(self, rank: int) -> tuple[bytes, bytes]:
        """(sort key, leaf input) of the leaf at ``rank``. Raises IndexDamaged if missing."""
        row = self._row(_LEAF, rank)
        if row is None or row[1] is None:
            raise IndexDamaged(f"snapshot of tree {self._tree} at {self._size} has no leaf {rank}")
        return row[0], row[1]

    def rank(self, key: bytes) -> int | None:
        """The rank of the leaf whose sort key is ``key`` (binary search over the ranks), or None."""
        low, high = 0, self.count
        while low < high:
            mid = (low + high) // 2
            found = self.leaf(mid)[0]
            if found == key:
                return mid
            low, high = (mid + 1, high) if found < key else (low, mid)
        return None

    def proof(self, rank: int, leaf_hash: Digest) -> tuple[Digest, ...]:
        """The inclusion proof of the leaf at ``rank`` (whose hash is ``leaf_hash``), checked against the root."""
        proof = tuple(self._nodes.inclusion_proof(rank, self.count))
        try:
            verify_inclusion(leaf_hash, rank, self.count, proof, self.root)
        except Exception as exc:
            raise IndexDamaged(f"snapshot of tree {self._tree} at {self._size}: a proof fails ({exc})") from exc
        return proof
