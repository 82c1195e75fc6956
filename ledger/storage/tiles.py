"""The Merkle node hashes of a ledger stored as C2SP tlog-tiles; roots and proofs read from them. Pure: no I/O.

C2SP tlog-tiles ("Merkle Tree"): tile ``n`` at level ``L`` holds up to 256 consecutive hashes of the tree nodes of
height ``8 * L`` (level 0: the leaf hashes), hash ``i`` being MTH(D[(n*256 + i) * 256**L : (n*256 + i + 1) *
256**L]). A full tile holds 256 hashes (8,192 bytes); the rightmost tile of a level is *partial*, with
``floor(size / 256**L) mod 256`` hashes, and is never hashed into the level above. Tile contents are
prefix-stable: the first W hashes of a tile never change as the tree grows, so the widest version stored of a tile
serves every size up to the size it was written for. Node hashes between the tile levels are recomputed by
hashing inside one tile (RFC 9162 §2.1.1), so a root or proof reads at most one tile per tile level and node.

Who stores tiles is the caller's business (:class:`TileReader`: bytes by (level, index)). :class:`TiledTree`
appends leaf hashes and returns the tiles to persist; it reads only through the reader.

Fault split: bad arguments raise :class:`~ledger.errors.InputError` (``input.range``, ``hash.length``,
``tile.bad_path``); stored tiles that cannot serve a read raise :class:`~ledger.errors.StorageError` with code
``index.tile_missing`` (no tile stored, or one narrower than the read needs) or ``index.tile_corrupt`` (stored
bytes not a whole number of 32-byte hashes, empty, or over 256 hashes): both mean "rebuild the tiles from the log".
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from ..errors import InputError, StorageError, expect, expect_each
from ..hashing import DIGEST_SIZE, Digest
from ..merkle import EMPTY_ROOT, consistency_path, range_root, subtree_path

__all__ = ["TILE_HEIGHT", "TILE_WIDTH", "MemoryTiles", "NodeReader", "Tile", "TileReader", "TiledTree", "fold",
           "parse_tile_path", "tile_nodes", "tile_path"]

#: C2SP tlog-tiles: a tile spans 8 tree levels, so a full tile holds 2**8 = 256 hashes.
TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
_FULL = TILE_WIDTH * DIGEST_SIZE  # bytes of a full tile
_MAX_LEVEL = 63  # C2SP tlog-tiles: <L> is between 0 and 63
_MAX_SIZE = (1 << 64) - 1  # RFC 9162: tree sizes and indices are unsigned 64-bit
_KEPT = 1 << 16  # complete subtree hashes a tree keeps across calls (then it starts again)
_PATH = re.compile(r"tile/(0|[1-9][0-9]?)/((?:x[0-9]{3}/)*[0-9]{3})(?:\.p/([1-9][0-9]{0,2}))?")
_MAX_PATH = 64  # longer than any valid path ("tile/63/" + 7 groups + ".p/255")


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """The C2SP tlog-tiles path ``tile/<L>/<N>[.p/<W>]`` of a tile: ``<N>`` in zero-padded 3-digit elements, all
    but the last prefixed with ``x`` (index 1234067 -> ``x001/x234/067``); ``.p/<W>`` only for a partial tile
    (1 <= width <= 255). Requires 0 <= level <= 63, 0 <= index < 2**64, 1 <= width <= 256, else InputError."""
    _check_range("level", level, 0, _MAX_LEVEL, f"0 <= level <= {_MAX_LEVEL}")
    _check_range("index", index, 0, _MAX_SIZE, "an integer in [0, 2**64)")
    _check_range("width", width, 1, TILE_WIDTH, f"1 <= width <= {TILE_WIDTH}")
    n = f"{index % 1000:03d}"
    while index >= 1000:
        index //= 1000
        n = f"x{index % 1000:03d}/{n}"
    return f"tile/{level}/{n}" + (f".p/{width}" if width < TILE_WIDTH else "")


def parse_tile_path(path: str) -> tuple[int, int, int]:
    """(level, index, width) of a tile path; the strict inverse of :func:`tile_path` (C2SP tlog-tiles): accepted
    only if formatting the result gives ``path`` back (no extra leading zeros, no ``x000`` element, no ``.p/256``).

    Raises:
        ArgumentError: ``path`` is not a str.
        InputError: ``tile.bad_path``, anything else.
    """
    expect(path, str, "path", "a str")
    match = _PATH.fullmatch(path) if len(path) <= _MAX_PATH else None
    if match is not None:  # digits are ASCII [0-9] only (the pattern), so int() reads them as written
        level, index = int(match[1]), int(match[2].replace("x", "").replace("/", ""))
        width = int(match[3]) if match[3] else TILE_WIDTH
        in_range = level <= _MAX_LEVEL and index <= _MAX_SIZE and width <= TILE_WIDTH
        if in_range and tile_path(level, index, width) == path:
            return level, index, width
    raise InputError(f"not a tlog-tiles tile path: {path[:80]!r}", code="tile.bad_path")


@dataclass(frozen=True, slots=True, kw_only=True)
class Tile:
    """One stored tile (C2SP tlog-tiles): the concatenated 32-byte hashes of the nodes of height 8 * ``level``,
    starting at node ``index`` * 256; ``width`` = len(hashes) // 32, 256 for a full tile, 1-255 for a partial one.

    Raises:
        InputError: level not in [0, 63], index not in [0, 2**64), or hashes not 1 to 256 whole hashes.
    """

    level: int
    index: int
    hashes: bytes

    def __post_init__(self) -> None:
        expect(self.hashes, bytes, "hashes", "bytes")
        if len(self.hashes) % DIGEST_SIZE:
            raise InputError(f"tile hashes: got {len(self.hashes)} bytes, want a multiple of {DIGEST_SIZE}",
                             code="hash.length")
        tile_path(self.level, self.index, self.width)  # checks the ranges

    @property
    def width(self) -> int:
        """Number of hashes in the tile."""
        return len(self.hashes) // DIGEST_SIZE

    @property
    def path(self) -> str:
        """Its C2SP tlog-tiles path (see :func:`tile_path`)."""
        return tile_path(self.level, self.index, self.width)


@runtime_checkable
class TileReader(Protocol):
    """Where a :class:`TiledTree` reads its tiles from."""

    def read_tile(self, level: int, index: int) -> bytes:
        """The stored hashes of tile (level, index): the full tile, or the widest partial one stored.
        Raises KeyError when none is stored."""
        ...


class MemoryTiles:
    """A dict-backed :class:`TileReader` that keeps the tiles :meth:`TiledTree.append` returns (tests, in-memory
    builds)."""

    def __init__(self) -> None:
        self._tiles: dict[tuple[int, int], bytes] = {}

    def put(self, tiles: Iterable[Tile]) -> None:
        """Store ``tiles``, keeping the widest version of each (level, index). ArgumentError for a non-Tile."""
        for tile in expect_each(tiles, Tile, "tiles", "a Tile"):
            key = (tile.level, tile.index)
            if len(tile.hashes) >= len(self._tiles.get(key, b"")):
                self._tiles[key] = tile.hashes

    def read_tile(self, level: int, index: int) -> bytes:
        """The widest stored version of tile (level, index); KeyError when none is stored."""
        return self._tiles[(level, index)]


class TiledTree:
    """RFC 9162 tree whose node hashes are read from tiles.

    ``size`` leaves are committed: the reader must hold the tiles of that size (as returned by :meth:`append`);
    results equal :class:`ledger.merkle.MerkleTree`'s for the same leaf hashes, at every size up to ``size``.
    Reads go through the reader only, so persist what :meth:`append` returns before reading at the new size.
    The right edge (the partial tile of each level) is kept in memory after the first append. Not thread-safe.

    Raises:
        ArgumentError: ``reader`` is not a TileReader.
        InputError: ``size`` not in [0, 2**64).
    """

    def __init__(self, reader: TileReader, size: int) -> None:
        expect(reader, TileReader, "reader", "a TileReader")
        _check_range("size", size, 0, _MAX_SIZE, "an integer in [0, 2**64)")
        self._reader = reader
        self._size = size
        self._edge: list[bytes] | None = None  # per level: the hashes of its partial tile (b"" if none)
        self._nodes = _Nodes(reader)  # tiles and complete subtrees read so far, kept across calls

    @property
    def size(self) -> int:
        """Number of leaves committed."""
        return self._size

    def append(self, leaf_hashes: Iterable[Digest]) -> list[Tile]:
        """Append 32-byte leaf hashes; return every tile whose content changed, each once with its new content:
        full tiles once complete, then the partial tile of each level as it now is (C2SP tlog-tiles), lower
        levels first. The caller persists them together with the new size. Amortised O(1) per leaf: the right
        edge is read once (on the first append) and then kept. Nothing changes unless every hash is accepted.

        Raises:
            ArgumentError: ``leaf_hashes`` is not a collection of bytes.
            InputError: ``hash.length`` (a hash is not 32 bytes), ``input.range`` (the size would reach 2**64).
            StorageError: ``index.tile_missing`` or ``index.tile_corrupt`` reading the right edge.
        """
        leaves = expect_each(leaf_hashes, bytes, "leaf_hashes", "a 32-byte digest")
        for i, h in enumerate(leaves):
            if len(h) != DIGEST_SIZE:
                raise InputError(f"leaf hash {i}: got {len(h)} bytes, want {DIGEST_SIZE}", code="hash.length")
        new_size = self._size + len(leaves)
        _check_range("new size", new_size, 0, _MAX_SIZE, "an integer in [0, 2**64)")
        edge, tiles = list(self._right_edge()), list[Tile]()
        level, incoming = 0, b"".join(leaves)
        while incoming:  # the hashes added at this level: new tiles here, their roots are added one level up
            if level == len(edge):
                edge.append(b"")
            first, hashes = (self._size >> (TILE_HEIGHT * level)) // TILE_WIDTH, edge[level] + incoming
            full = [hashes[i:i + _FULL] for i in range(0, len(hashes) - _FULL + 1, _FULL)]
            edge[level] = hashes[len(full) * _FULL:]
            tiles += [Tile(level=level, index=first + i, hashes=t) for i, t in enumerate(full)]
            if edge[level]:
                tiles.append(Tile(level=level, index=first + len(full), hashes=edge[level]))
            level, incoming = level + 1, b"".join(fold(t, TILE_HEIGHT) for t in full)
        self._edge, self._size = edge, new_size
        return tiles

    def leaf_hash(self, index: int) -> Digest:
        """The hash of leaf ``index``. Requires 0 <= index < size, else InputError; StorageError as the class."""
        _check_range("index", index, 0, self._size - 1, f"0 <= index < size {self._size}")
        return self._nodes.node(0, index)

    def node(self, level: int, index: int) -> Digest:
        """The hash of the complete subtree of leaves [index * 2**level, (index + 1) * 2**level), which must lie
        below :attr:`size` (else InputError); StorageError as the class."""
        _check_range("index", index, 0, (self._size >> level) - 1, f"a complete subtree below size {self._size}")
        return self._nodes.node(level, index)

    def known_leaf(self, index: int) -> Digest | None:
        """The hash of leaf ``index`` if it costs no read (kept, or in a tile read before), else None."""
        return self._nodes.known_leaf(index) if 0 <= index < self._size else None

    def pair_holds(self, index: int, leaf: bytes, sibling: bytes) -> bool:
        """True if ``leaf`` and ``sibling`` hash together (RFC 9162 §2.1.1) to the parent of leaf ``index`` and leaf
        ``index ^ 1`` (both below size) that the reader keeps beside its tiles (:class:`NodeReader`): both are then
        this tree's leaf hashes, kept as such, and a proof of either reads no tile of leaf hashes. False: not told
        so (no such pair or kept parent, or another parent); the caller then asks :meth:`leaf_hash`."""
        if not 0 <= index < self._size or index ^ 1 >= self._size or {len(leaf), len(sibling)} != {DIGEST_SIZE}:
            return False
        parent = self._nodes.inner(0, index // TILE_WIDTH, 1, index % TILE_WIDTH & ~1)
        pair = leaf + sibling if index % 2 == 0 else sibling + leaf
        if parent is None or hashlib.sha256(b"\x01" + pair).digest() != parent:
            return False
        self._nodes.keep_leaf(index, leaf)
        self._nodes.keep_leaf(index ^ 1, sibling)
        return True

    def root_at(self, size: int | None = None) -> Digest:
        """MTH(D[size]) (RFC 9162 §2.1.1); size defaults to self.size, :data:`~ledger.merkle.EMPTY_ROOT` for 0.

        Requires 0 <= size <= self.size, else InputError. Reads at most ~2 tiles per tile level.
        """
        size = self._size if size is None else size
        _check_range("size", size, 0, self._size, f"0 <= size <= {self._size}")
        return range_root(self._nodes.node, 0, size) if size else EMPTY_ROOT

    def inclusion_proof(self, index: int, size: int | None = None) -> list[Digest]:
        """PATH(index, D[size]) (RFC 9162 §2.1.3.1), leaf upwards; size defaults to self.size.

        Requires 0 <= index < size <= self.size, else InputError.
        """
        size = self._size if size is None else size
        _check_range("size", size, 0, self._size, f"0 <= size <= {self._size}")
        _check_range("index", index, 0, size - 1, f"0 <= index < size {size}")
        return subtree_path(self._nodes.node, index, 0, size, self._nodes.edge)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[Digest]:
        """PROOF(old_size, D[new_size]) (RFC 9162 §2.1.4.1); new_size defaults to self.size.

        Requires 0 < old_size <= new_size <= self.size, else InputError. Empty when old_size == new_size.
        """
        new_size = self._size if new_size is None else new_size
        _check_range("new size", new_size, 0, self._size, f"0 <= new size <= {self._size}")
        _check_range("old size", old_size, 1, new_size, f"0 < old size <= new size {new_size}")
        return consistency_path(self._nodes.node, old_size, new_size) if old_size < new_size else []

    def _right_edge(self) -> list[bytes]:
        """Per level, the first ``floor(size / 256**L) mod 256`` hashes of its last tile (C2SP tlog-tiles)."""
        if self._edge is None:
            nodes, edge, level = _Nodes(self._reader), [], 0
            while count := self._size >> (TILE_HEIGHT * level):
                width = count % TILE_WIDTH
                edge.append(nodes.tile(level, count // TILE_WIDTH, width)[:width * DIGEST_SIZE] if width else b"")
                level += 1
            self._edge = edge
        return self._edge


class _Nodes:
    """The node hashes of a tree, read from tiles: each tile is read at most once (again only when a partial tile
    read before is too narrow now), and each complete subtree's hash, which never changes, computed once. Kept by
    a :class:`TiledTree` across calls, up to :data:`_KEPT` nodes."""

    __slots__ = ("_edges", "_inner", "_nodes", "_reader", "_tiles", "_with_nodes")

    def __init__(self, reader: TileReader) -> None:
        self._reader = reader
        self._with_nodes = isinstance(reader, NodeReader)  # once: a protocol check is slow
        self._tiles: dict[tuple[int, int], bytes] = {}
        self._inner: dict[tuple[int, int], tuple[int, bytes]] = {}  # (width, tile_nodes)
        self._nodes: dict[tuple[int, int], Digest] = {}
        self._edges: dict[tuple[int, int], Digest] = {}

    def edge(self, start: int, end: int) -> Digest:
        """MTH(D[start:end]) of a subtree cut short by the tree's right edge (RFC 9162 §2.1.1: its complete
        subtrees hashed together), computed once per (start, end): every proof at one size shares them."""
        found = self._edges.get((start, end))
        if found is None:
            if len(self._edges) >= _KEPT:
                self._edges.clear()
            found = self._edges[(start, end)] = range_root(self.node, start, end)
        return found

    def known_leaf(self, index: int) -> Digest | None:
        """Leaf ``index``'s hash if kept, or in a tile read before (no read), else None."""
        data = self._tiles.get((0, index // TILE_WIDTH))
        if (0, index) in self._nodes or (data is not None and len(data) > index % TILE_WIDTH * DIGEST_SIZE):
            return self.node(0, index)
        return None

    def keep_leaf(self, index: int, leaf: bytes) -> None:
        """Keep ``leaf`` (32 bytes, checked by the caller) as the hash of leaf ``index``."""
        if len(self._nodes) >= _KEPT:
            self._nodes.clear()
            self._tiles.clear()
            self._inner.clear()
        self._nodes[(0, index)] = bytes.__new__(Digest, leaf)

    def node(self, height: int, index: int) -> Digest:
        """The hash of the complete subtree of leaves [index * 2**height, (index + 1) * 2**height): hashes of tile
        level height // 8, hashed up height % 8 times (C2SP tlog-tiles: the levels between tiles are recomputed)."""
        found = self._nodes.get((height, index))
        if found is None:
            level, rise = divmod(height, TILE_HEIGHT)
            tile, offset = divmod(index << rise, TILE_WIDTH)
            stored = self.inner(level, tile, rise, offset) if rise else None
            if stored is None:
                data = self.tile(level, tile, offset + (1 << rise))
                stored = fold(data[offset * DIGEST_SIZE:(offset + (1 << rise)) * DIGEST_SIZE], rise)
            found = bytes.__new__(Digest, stored)  # 32 bytes: inner checks its slice, a fold of whole hashes gives one
            if len(self._nodes) >= _KEPT:
                self._nodes.clear()
                self._tiles.clear()
                self._inner.clear()
            self._nodes[(height, index)] = found
        return found

    def inner(self, level: int, index: int, rise: int, offset: int) -> bytes | None:
        """A node inside tile (level, index) from the reader's :func:`tile_nodes`, if it keeps them and they hold it.
        A :class:`NodeReader` whose nodes disagree with its tiles gives proofs that do not verify."""
        if not self._with_nodes:
            return None
        kept = self._inner.get((level, index))
        if kept is None:
            try:
                nodes: bytes = self._reader.read_tile_nodes(level, index)  # type: ignore[attr-defined]
            except KeyError:
                return None
            kept = self._inner[(level, index)] = (int.from_bytes(nodes[:2], "big"), nodes)
        width, nodes = kept  # the hash of the node of ``rise`` (1..7) whose first hash is at ``offset`` in the tile
        if offset + (1 << rise) > width or width > TILE_WIDTH:  # too narrow for it, or malformed
            return None
        at = 2 + (_BELOW[width][rise] + (offset >> rise)) * DIGEST_SIZE
        found = nodes[at:at + DIGEST_SIZE]
        return found if len(found) == DIGEST_SIZE else None

    def tile(self, level: int, index: int, need: int) -> bytes:
        """The stored hashes of tile (level, index), at least ``need`` of them. Raises StorageError
        ``index.tile_missing`` (none stored, or fewer) or ``index.tile_corrupt`` (not 1-256 whole hashes)."""
        data = self._tiles.get((level, index))
        if data is None or len(data) < need * DIGEST_SIZE:
            try:
                data = self._reader.read_tile(level, index)
            except KeyError:
                raise StorageError(f"{tile_path(level, index)}: no tile stored", code="index.tile_missing") from None
            if not isinstance(data, bytes) or not 0 < len(data) <= _FULL or len(data) % DIGEST_SIZE:
                got = f"{len(data)} bytes" if isinstance(data, bytes) else type(data).__name__
                raise StorageError(f"{tile_path(level, index)}: stored {got}, want 1 to {TILE_WIDTH} hashes of "
                                   f"{DIGEST_SIZE} bytes", code="index.tile_corrupt")
            self._tiles[(level, index)] = data
        if len(data) < need * DIGEST_SIZE:
            raise StorageError(f"{tile_path(level, index)}: {len(data) // DIGEST_SIZE} hashes stored, want at least "
                               f"{need}", code="index.tile_missing")
        return data


def tile_nodes(hashes: bytes) -> bytes:
    """The node hashes inside a tile, above its own hashes (which tlog-tiles leave to be recomputed): a 2-byte
    big-endian width W, then for each rise r = 1..7 the W >> r complete subtrees of 2**r of its hashes, left to
    right. A store that keeps them beside each tile (:class:`NodeReader`) spares every proof that hashing."""
    width, parts, level = len(hashes) // DIGEST_SIZE, [], hashes
    for _ in range(1, TILE_HEIGHT):
        level = fold(level[:len(level) // (2 * DIGEST_SIZE) * 2 * DIGEST_SIZE], 1)
        parts.append(level)
    return width.to_bytes(2, "big") + b"".join(parts)


@runtime_checkable
class NodeReader(Protocol):
    """A :class:`TileReader` that also keeps each tile's :func:`tile_nodes`."""

    def read_tile_nodes(self, level: int, index: int) -> bytes:
        """The :func:`tile_nodes` of the stored tile (level, index); KeyError when none is stored."""
        ...


#: For a tile of W hashes (the index) and a rise r (1..7): the number of nodes :func:`tile_nodes` holds before its
#: nodes of rise r, sum(W >> k for k in 1..r-1).
_BELOW = [[sum(width >> k for k in range(1, rise)) for rise in range(TILE_HEIGHT)] for width in range(TILE_WIDTH + 1)]


def fold(hashes: bytes, times: int) -> bytes:
    """Hash adjacent pairs of 32-byte hashes into their parents, SHA-256(0x01 || left || right) (RFC 9162 §2.1.1),
    ``times`` times: 2**times hashes in, their subtree's root out."""
    for _ in range(times):
        step = 2 * DIGEST_SIZE
        hashes = b"".join([hashlib.sha256(b"\x01" + hashes[i:i + step]).digest() for i in range(0, len(hashes), step)])
    return hashes


def _check_range(name: str, value: int, low: int, high: int, want: str) -> None:
    """InputError ``input.range`` unless ``value`` is an int (not a bool) in [low, high]; the wording of
    :mod:`ledger.merkle`'s range checks."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(f"{name}: got {value!r}, want {want}", code="input.range")
