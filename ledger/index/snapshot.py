"""The checkpoint's two sorted trees (item heads, identities) as they were at a signed tree size, kept in the index
so that a proof bundle under that checkpoint needs O(log n) reads, not a rebuild of either tree.

A snapshot of a tree of ``count`` leaves holds its leaves' sort keys and leaf inputs in rank order, :data:`WIDTH`
to a row (the rows of table ``snap``, kind 0, numbered like level-0 tiles), the RFC 9162 node hashes of the leaf
hashes as C2SP tlog-tiles (kind 1), its extension line (kind 2) and the first sort key of each kind-0 row (kind 3,
one row), so that a key's rank costs two row reads: that row and the one kind-0 row that holds the key. It is
written when the writer signs a checkpoint (:meth:`~ledger.index.indexed.LedgerIndex.extensions`) and only the
latest :data:`KEPT` sizes are kept.
The next checkpoint's trees are the latest snapshot's leaves with the keys changed since merged in (the index's
``changed`` table, :mod:`ledger.index.state`), so signing costs the records added since, not a walk of every
item. Like every index row it is checked when read; a proof read from it is checked against the snapshot's root
before it is used.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Iterable, Iterator, Sequence

from .._codec import pack_local, unpack_local
from ..checkpoint import format_counted_line
from ..errors import DecodeError, StoneTrailError
from ..hashing import Digest
from ..merkle import leaf_hash, root_hash, verify_inclusion
from ..storage.tiles import MemoryTiles, Tile, TiledTree
from .maps import IndexDamaged, is_row, row_check, sqlite_errors
from .sql import Db, table, upsert

__all__ = ["HEADS", "IDENTITIES", "KEPT", "WIDTH", "Snapshot", "create_snapshot_table", "latest_snapshot", "merged",
           "tree_line", "write_snapshot"]

HEADS, IDENTITIES = 0, 1  # which tree
KEPT = 2  # snapshots (tree sizes) kept
WIDTH = 256  # leaves to a row, as hashes to a C2SP tile
_LEAF, _TILE, _LINE, _FIRSTS = 0, 1, 2, 3


def create_snapshot_table(db: Db) -> None:
    """Create the ``snap`` table if it does not exist."""
    table(db, "snap", "size INTEGER NOT NULL, tree INTEGER NOT NULL, kind INTEGER NOT NULL, k INTEGER NOT NULL, "
          "v BLOB NOT NULL, w BLOB, c INTEGER NOT NULL, PRIMARY KEY (size, tree, kind, k)")


def _check(size: int, tree: int, kind: int, k: int, v: bytes, w: bytes | None) -> int:
    return row_check(f"snap/{size}/{tree}/{kind}/{k}", v, w or b"")


def write_snapshot(db: Db, size: int, tree: int, line: str,
                   leaves: Sequence[tuple[bytes, bytes, Digest]]) -> None:
    """Store the tree ``tree`` at log size ``size``: its extension ``line`` and its (sort key, leaf input, leaf
    hash) ``leaves`` in rank order (inside the caller's transaction); drop snapshots older than the last
    :data:`KEPT` sizes."""
    tiles = MemoryTiles()
    tiles.put(TiledTree(tiles, 0).append(h for _, _, h in leaves))
    rows: list[tuple[int, int, int, int, bytes, bytes | None]] = [
        (size, tree, _LEAF, start // WIDTH, pack_local([(k, v) for k, v, _ in leaves[start:start + WIDTH]]),
         None) for start in range(0, len(leaves), WIDTH)]
    rows += [(size, tree, _TILE, (t.level << 48) | t.index, t.hashes, None) for t in _all(tiles, len(leaves))]
    rows.append((size, tree, _LINE, 0, line.encode(), None))
    rows.append((size, tree, _FIRSTS, 0, pack_local([k for k, _, _ in leaves[::WIDTH]]), None))
    with sqlite_errors("snap"):
        db.executemany(upsert("snap", ["size", "tree", "kind", "k"], ["v", "w", "c"]),
                       [(*r, _check(*r)) for r in rows])
        kept = [s for (s,) in db.execute("SELECT DISTINCT size FROM snap ORDER BY size DESC")][:KEPT]
        db.execute(f"DELETE FROM snap WHERE size NOT IN ({','.join('?' * len(kept))})", kept)


def latest_snapshot(db: Db) -> int | None:
    """The log size of the latest snapshot holding both trees, or None."""
    with sqlite_errors("snap"):
        row = db.execute("SELECT size FROM snap WHERE kind = ? GROUP BY size HAVING count(*) = 2 ORDER BY size DESC "
                         "LIMIT 1", (_LINE,)).fetchone()
    return None if row is None or not isinstance(row[0], int) else row[0]


def merged(old: Iterable[tuple[bytes, bytes]], changed: dict[bytes, bytes | None]
           ) -> list[tuple[bytes, bytes, Digest]]:
    """The (sort key, leaf input, leaf hash) of a tree whose leaves were ``old`` ((sort key, leaf input) in key
    order, e.g. :meth:`Snapshot.pairs`) and whose keys ``changed`` since have these leaf inputs now (None: no
    leaf), in key order. Raises IndexDamaged if ``old`` is not in strictly increasing key order."""
    keys, out, at, last = sorted(changed), list[tuple[bytes, bytes]](), 0, None
    for key, leaf in old:
        if last is not None and key <= last:
            raise IndexDamaged("a snapshot's leaves are not in key order")
        last = key
        while at < len(keys) and keys[at] < key:
            out += [(keys[at], new)] if (new := changed[keys[at]]) is not None else []
            at += 1
        if at < len(keys) and keys[at] == key:
            out += [(key, new)] if (new := changed[key]) is not None else []
            at += 1
        else:
            out.append((key, leaf))
    out += [(k, v) for k in keys[at:] if (v := changed[k]) is not None]
    return [(k, v, leaf_hash(v)) for k, v in out]


def tree_line(keyword: str, leaves: Sequence[tuple[bytes, bytes, Digest]]) -> str:
    """The checkpoint line ``<keyword> <leaf count> <base64 root>`` of the sorted tree of ``leaves`` (sort key,
    leaf input, leaf hash), e.g. the ``stonetrail-heads`` line (docs/format.md §7c)."""
    return format_counted_line(keyword, len(leaves), root_hash([h for _, _, h in leaves]))


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

    def __init__(self, db: Db, size: int, tree: int) -> None:
        self._db, self._size, self._tree = db, size, tree
        line = self._row(_LINE, 0)
        if line is None:
            raise KeyError((size, tree))
        try:
            self.line = line[0].decode()
            _, count, root = self.line.split(" ")
            self.count, self.root = int(count), Digest.from_b64(root)
            if not 0 <= self.count < 1 << 62:
                raise ValueError(f"a tree of {self.count} leaves")
        except (ValueError, StoneTrailError) as exc:  # checksummed bytes that are not a line: not written here
            raise IndexDamaged(f"index table snap: the line of tree {tree} at {size} does not read ({exc})") from exc
        self._nodes = TiledTree(self, self.count)
        self._chunks: dict[int, list[tuple[bytes, bytes]]] = {}
        self._firsts: list[bytes] | None = None

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

    def _chunk(self, index: int) -> list[tuple[bytes, bytes]]:
        """The (sort key, leaf input) pairs of ranks ``index * WIDTH`` on. Raises IndexDamaged if missing or
        malformed."""
        if index not in self._chunks:
            row = self._row(_LEAF, index)
            want = min(WIDTH, self.count - index * WIDTH)
            self._chunks[index] = _pairs(row[0] if row else None, want, f"{self._tree} at {self._size}: {index}")
        return self._chunks[index]

    def leaf(self, rank: int) -> tuple[bytes, bytes]:
        """(sort key, leaf input) of the leaf at ``rank``. Raises IndexDamaged if missing."""
        if not 0 <= rank < self.count:
            raise IndexDamaged(f"snapshot of tree {self._tree} at {self._size} has no leaf {rank}")
        return self._chunk(rank // WIDTH)[rank % WIDTH]

    def rank(self, key: bytes) -> int | None:
        """The rank of the leaf whose sort key is ``key``, or None: the last kind-0 row whose first key is at most
        ``key`` (a bisection of the kind-3 row), then a bisection within that row. Raises IndexDamaged if a row
        is missing or malformed, or the two rows disagree on the row's first key."""
        firsts = self._first_keys()
        row = bisect.bisect_right(firsts, key) - 1
        if row < 0:
            return None
        found = [k for k, _ in self._chunk(row)]
        if found[0] != firsts[row]:
            raise IndexDamaged(f"snapshot of tree {self._tree} at {self._size}: row {row} does not start with the "
                               "key its first-keys row names")
        at = bisect.bisect_left(found, key)
        return row * WIDTH + at if at < len(found) and found[at] == key else None

    def _first_keys(self) -> list[bytes]:
        """The first sort key of each kind-0 row (the kind-3 row), read once: strictly increasing bytes, one per
        row. Raises IndexDamaged."""
        if self._firsts is None:
            row = self._row(_FIRSTS, 0)
            try:
                firsts = unpack_local(row[0]) if row is not None else None
            except DecodeError as exc:
                raise IndexDamaged(f"snapshot of tree {self._tree} at {self._size}: its first keys do not decode "
                                   f"({exc})") from exc
            rows = (self.count + WIDTH - 1) // WIDTH
            if not isinstance(firsts, list) or len(firsts) != rows or not all(isinstance(k, bytes) for k in firsts) \
                    or any(b <= a for a, b in itertools.pairwise(firsts)):
                raise IndexDamaged(f"snapshot of tree {self._tree} at {self._size}: its first keys are not {rows} "
                                   "increasing keys")
            self._firsts = firsts
        return self._firsts

    def pairs(self) -> Iterator[tuple[bytes, bytes]]:
        """Every (sort key, leaf input) in rank order, each row checked."""
        for index in range((self.count + WIDTH - 1) // WIDTH):
            yield from self._chunk(index)
            self._chunks.pop(index)

    def proof(self, rank: int, leaf_hash: Digest) -> tuple[Digest, ...]:
        """The inclusion proof of the leaf at ``rank`` (whose hash is ``leaf_hash``), checked against the root."""
        proof = tuple(self._nodes.inclusion_proof(rank, self.count))
        try:
            verify_inclusion(leaf_hash, rank, self.count, proof, self.root)
        except Exception as exc:
            raise IndexDamaged(f"snapshot of tree {self._tree} at {self._size}: a proof fails ({exc})") from exc
        return proof


def _pairs(raw: bytes | None, want: int, where: str) -> list[tuple[bytes, bytes]]:
    """The ``want`` (sort key, leaf input) pairs of one checked row. Raises IndexDamaged."""
    try:
        pairs = unpack_local(raw) if raw is not None else None
    except DecodeError as exc:
        raise IndexDamaged(f"snapshot of tree {where} does not decode ({exc})") from exc
    if type(pairs) is not list or len(pairs) != want or (pairs and (  # msgpack builds no subclasses
            set(map(type, pairs)) != {list} or set(map(len, pairs)) != {2}
            or {type(k) for k, _ in pairs} | {type(v) for _, v in pairs} != {bytes})):
        raise IndexDamaged(f"snapshot of tree {where} is not {want} leaves")
    return [(k, v) for k, v in pairs]
