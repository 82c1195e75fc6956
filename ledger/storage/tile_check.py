"""Stored tiles checked against a signed root before they are handed on (C2SP tlog-tiles; RFC 9162 §2.1.1).

A tree's node hashes in tiles are a cache: a root computed from the inner nodes a store keeps says nothing about
the tile bytes themselves (a leaf hash changed, its inner nodes left alone, gives the same root). Whoever copies
tiles to others (a published log) checks them first: the tiles of every level above 0, and the partial tile of
level 0, are read once (about one hash in 256 of the tree: 125 KB at 10^6 leaves) and must give the signed root
— every hash a root of a partial tile's hashes, every full tile's hashes folding to its entry in the tile above;
a full tile of level 0 is read when asked for and must fold to its entry in level 1 (read again, its bytes must
hash as they did). So each tile, and each leaf hash, handed on is a part of the tree whose root is signed: another
would need a SHA-256 collision.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

from ..errors import StorageError
from ..hashing import DIGEST_SIZE, Digest
from .tiles import TILE_HEIGHT, TILE_WIDTH, MemoryTiles, Tile, TiledTree, TileReader, fold, tile_path

__all__ = ["CheckedTiles", "tile_widths"]

_FULL = TILE_WIDTH * DIGEST_SIZE
_RECENT = 256  # full level-0 tiles kept at hand (2 MiB): an item's records are often near one another


def tile_widths(size: int, since: int = 0) -> list[tuple[int, int, int]]:
    """(level, index, width) of every tile of the tree of ``size`` leaves that is not complete at ``since`` leaves
    (0: every tile), lower levels first (C2SP tlog-tiles: a level's last tile holds ``count mod 256`` hashes)."""
    out, level = [], 0
    while count := size >> (TILE_HEIGHT * level):
        for index in range((since >> (TILE_HEIGHT * level)) // TILE_WIDTH, -(-count // TILE_WIDTH)):
            out.append((level, index, min(TILE_WIDTH, count - index * TILE_WIDTH)))
        level += 1
    return out


class CheckedTiles:
    """The tiles of the tree of ``size`` leaves (> 0) read from ``reader``, each checked to be part of the tree
    whose root is ``root`` (module docstring) before :meth:`tile` gives it.

    Raises:
        StorageError: ``index.damaged`` (the tiles do not give ``root``), ``index.tile_missing`` (a tile is not
            stored, or narrower than the tree needs).
    """

    def __init__(self, reader: TileReader, size: int, root: Digest) -> None:
        self._reader, self._size = reader, size
        self._upper: dict[tuple[int, int], bytes] = {}
        self._seen: dict[int, bytes] = {}  # full level-0 tiles checked: index -> SHA-256 of their bytes
        self._recent: OrderedDict[int, bytes] = OrderedDict()  # the last ones read, at most _RECENT
        kept = MemoryTiles()
        for level, index, width in tile_widths(size):
            if level or width < TILE_WIDTH:
                self._upper[(level, index)] = hashes = self._read(level, index, width)
                kept.put([Tile(level=level, index=index, hashes=hashes)])
        if TiledTree(kept, size).root_at(size) != root:
            raise _damaged("their tree's root is not the checkpoint's")
        for (level, index), hashes in self._upper.items():
            if level and len(hashes) == _FULL:
                self._check_full(level, index, hashes)

    def tile(self, level: int, index: int) -> bytes:
        """The hashes of tile (level, index) of the tree (as many as it has at ``size``), checked. Raises as the
        class; KeyError for a tile the tree does not have."""
        hashes = self._upper.get((level, index))
        if hashes is not None:
            return hashes
        if level or (index + 1) * TILE_WIDTH > self._size:
            raise KeyError((level, index))
        hashes = self._recent.get(index)
        if hashes is not None:
            self._recent.move_to_end(index)
            return hashes
        hashes = self._read(0, index, TILE_WIDTH)
        seen = self._seen.get(index)
        if seen is None:
            self._check_full(0, index, hashes)
            self._seen[index] = hashlib.sha256(hashes).digest()
        elif hashlib.sha256(hashes).digest() != seen:  # one hash of the bytes checked before, not 255 again
            raise _damaged(f"{tile_path(0, index)} changed while it was read")
        self._recent[index] = hashes
        if len(self._recent) > _RECENT:
            self._recent.popitem(last=False)
        return hashes

    def leaf(self, position: int) -> bytes:
        """The leaf hash of ``position`` (< ``size``), from its tile, checked. Raises as the class."""
        hashes = self.tile(0, position // TILE_WIDTH)
        at = position % TILE_WIDTH * DIGEST_SIZE
        return hashes[at:at + DIGEST_SIZE]

    def _read(self, level: int, index: int, width: int) -> bytes:
        try:
            hashes = self._reader.read_tile(level, index)[:width * DIGEST_SIZE]
        except KeyError:
            hashes = b""
        if len(hashes) != width * DIGEST_SIZE:
            raise StorageError(f"{tile_path(level, index)}: {len(hashes) // DIGEST_SIZE} hashes stored, want {width}",
                               code="index.tile_missing")
        return hashes

    def _check_full(self, level: int, index: int, hashes: bytes) -> None:
        """A full tile's 256 hashes must fold (RFC 9162 §2.1.1) to its entry in the tile above, checked before."""
        above, at = self._upper[(level + 1, index // TILE_WIDTH)], index % TILE_WIDTH * DIGEST_SIZE
        if fold(hashes, TILE_HEIGHT) != above[at:at + DIGEST_SIZE]:
            raise _damaged(f"{tile_path(level, index)} does not hash to its entry in the tile above")


def _damaged(why: str) -> StorageError:
    return StorageError(f"the stored tiles are not the checkpoint's tree: {why}", code="index.damaged")
