"""A published log read over HTTP(S) as a :class:`ledger.reader.ReadSide` at its signed checkpoint's tree size
(docs/format.md §8.5): what :func:`ledger.published.fetch_bundle` builds a bundle from.

Every byte fetched is suspect until verified against the checkpoint, which the caller opened under pinned keys:

- the partial tiles (the tree's right edge) must hash to the checkpoint's root (RFC 9162 §2.1.1: the root is
  computed from them alone), and a full tile must hash (its 256 hashes as a subtree) to its hash in the tile one
  level up, itself verified; so every hash of every tile read is the log's (``fetch.tile_mismatch``);
- each entry of an entry bundle must have the leaf hash of the level-0 tile at its place
  (``fetch.entry_mismatch``), and each inclusion proof computed from the tiles is verified against the root;
- the heads and identities files must rebuild the trees the checkpoint's lines name (``fetch.leaves_mismatch``);
- an item's positions must end at its head leaf's record and be records of it, the registry's must be registry
  records ending at the checkpoint's registry head (``fetch.positions_mismatch``, ``fetch.registry_mismatch``).

Files are read through :class:`ledger._http_get.Fetcher` (bounded in time and size; ``fetch.*`` FetchError).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence

from ._http_get import Fetcher
from ._published_format import (
    ENTRY_BUNDLE_CAP,
    LEAVES_CAP,
    decode_entries,
    decode_leaves,
    decode_positions,
    entries_path,
    head_of,
    heads_path,
    identities_path,
    item_path,
    registry_path,
    tile_width,
)
from .checkpoint import Checkpoint
from .commitments import CommittedOver
from .errors import InputError, VerificationError
from .events import REGISTRY_KINDS
from .hashing import DIGEST_SIZE, Digest
from .heads import HeadProof, are_records_of, checkpoint_heads
from .identity import IdentityLeaf, checkpoint_identities, sort_key
from .index.reading import Records
from .merkle import EMPTY_ROOT, MerkleTree, leaf_hash, verify_inclusion
from .record import Record
from .registry import checkpoint_registry
from .storage.tiles import TILE_WIDTH, MemoryTiles, Tile, TiledTree, tile_path

__all__ = ["RemoteLog"]

def _mismatch(what: str, code: str) -> VerificationError:
    return VerificationError(f"{what}: not what the signed checkpoint commits to (a tampered or stale copy)",
                             code=code)


class _VerifiedTiles:
    """A :class:`~ledger.storage.tiles.TileReader` over the published tiles of the tree of ``cp``: each tile is
    returned only once verified (module docstring), at the width the tree has."""

    def __init__(self, fetch: Fetcher, cp: Checkpoint) -> None:
        self._fetch, self._size, self._root = fetch, cp.tree_size, cp.root_hash
        self._ok: dict[tuple[int, int], bytes] = {}
        self._edge_checked = False

    def read_tile(self, level: int, index: int) -> bytes:
        if (level, index) not in self._ok:
            width = tile_width(self._size, level, index)  # KeyError: not in the tree
            if width < TILE_WIDTH:
                self._check_edge()
            else:
                data = self._get(level, index, width)
                parent = self.read_tile(level + 1, index // TILE_WIDTH)
                at = (index % TILE_WIDTH) * DIGEST_SIZE
                if _subtree(data) != parent[at:at + DIGEST_SIZE]:
                    raise _mismatch(tile_path(level, index), "fetch.tile_mismatch")
                self._ok[(level, index)] = data
        return self._ok[(level, index)]

    def _get(self, level: int, index: int, width: int) -> bytes:
        path = tile_path(level, index, width)
        data = self._fetch.get(path, width * DIGEST_SIZE)
        if len(data) != width * DIGEST_SIZE:
            raise _mismatch(f"{path} ({len(data)} bytes)", "fetch.tile_mismatch")
        return data

    def _check_edge(self) -> None:
        """Fetch every partial tile; they must give the checkpoint's root (RFC 9162 §2.1.1)."""
        if self._edge_checked:
            return
        edge, level = MemoryTiles(), 0
        while count := self._size >> (8 * level):
            if width := count % TILE_WIDTH:
                edge.put([Tile(level=level, index=count // TILE_WIDTH, hashes=self._get(level, count // TILE_WIDTH,
                                                                                           width))])
            level += 1
        root = TiledTree(edge, self._size).root_at() if self._size else EMPTY_ROOT
        if root != self._root:
            raise _mismatch("the partial tiles (the tree's right edge)", "fetch.tile_mismatch")
        level = 0
        while count := self._size >> (8 * level):
            if count % TILE_WIDTH:
                self._ok[(level, count // TILE_WIDTH)] = edge.read_tile(level, count // TILE_WIDTH)
            level += 1
        self._edge_checked = True


def _subtree(hashes: bytes) -> bytes:
    """MTH of the 256 hashes of a full tile (RFC 9162 §2.1.1)."""
    return bytes(MerkleTree(Digest(hashes[i:i + DIGEST_SIZE]) for i in range(0, len(hashes), DIGEST_SIZE)).root())


class _Tree:
    """The log's tree at the checkpoint's size, read from verified tiles; each inclusion proof verified."""

    def __init__(self, tiles: _VerifiedTiles, cp: Checkpoint) -> None:
        self._tree, self._cp = TiledTree(tiles, cp.tree_size), cp
        self.size = cp.tree_size

    def root_at(self, size: int) -> Digest:
        return self._tree.root_at(size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[Digest]:
        proof = self._tree.inclusion_proof(index, size)
        if size in (None, self.size):
            verify_inclusion(self._tree.leaf_hash(index), index, self.size, proof, self._cp.root_hash)
        return proof


class _Sorted:
    """A tree of leaf inputs a checkpoint line commits to (count, root), rebuilt from a fetched file."""

    def __init__(self, leaves: list[bytes], line: str) -> None:
        self.leaves, self._line = leaves, line
        self._tree = MerkleTree.of_leaves(leaves)

    def __len__(self) -> int:
        return len(self.leaves)

    def root(self) -> Digest:
        return self._tree.root()

    def extension(self) -> str:
        return self._line

    def path(self, rank: int) -> tuple[Digest, ...]:
        return tuple(self._tree.inclusion_proof(rank))


def _fetch_tree(fetch: Fetcher, path: str, committed: tuple[int, Digest], line: str) -> _Sorted:
    """The tree in ``path``, which must have the (count, root) of the checkpoint's line."""
    tree = _Sorted(decode_leaves(fetch.get(path, LEAVES_CAP), committed[0], path), line)
    if tree.root() != committed[1]:
        raise _mismatch(path, "fetch.leaves_mismatch")
    return tree


class _Positions(Mapping[str, Sequence[int]]):
    """Item id -> positions of its records (:attr:`ledger.heads.ItemHeads.index`), fetched per item and checked
    against its verified head leaf: count, latest record, and that each is a record of the item."""

    def __init__(self, heads: dict[str, tuple[int, Digest, int]], log: RemoteLog) -> None:
        self._heads, self._log = heads, log
        self._found: dict[str, list[int]] = {}

    def __getitem__(self, item: str) -> Sequence[int]:
        if item not in self._found:
            position, record_hash, count = self._heads[item]
            path = item_path(item, count)
            found = decode_positions(self._log.fetch.get(path, count * 8), count, self._log.at, path)
            records = [self._log.records[p] for p in found]
            if found[-1] != position or records[-1].record_hash != record_hash or not are_records_of(item, records):
                raise _mismatch(path, "fetch.positions_mismatch")
            self._found[item] = found
        return self._found[item]

    def __iter__(self) -> Iterator[str]:
        return iter(self._heads)

    def __len__(self) -> int:
        return len(self._heads)


class _Heads(CommittedOver[_Sorted]):
    """The item heads (:class:`ledger.reader.Heads`) from the verified heads file."""

    def __init__(self, tree: _Sorted, log: RemoteLog) -> None:
        super().__init__(tree)
        self._ranks = dict[str, int]()
        heads = {}
        for rank, leaf in enumerate(tree.leaves):
            item, position, record_hash, count = head_of(leaf)
            self._ranks[item] = rank
            heads[item] = (position, record_hash, count)
        self.index = _Positions(heads, log)

    def proof(self, item: str) -> HeadProof:
        rank = self._ranks[item]
        return HeadProof(rank, self._tree.path(rank))

    def items_of(self, record: Record) -> frozenset[str]:
        """The items ``record`` names (statements are not resolved here: unused by a bundle's build)."""
        return record.body.named_items()


class _Identities(CommittedOver[_Sorted]):
    """The identity tree (:class:`ledger.reader.Identities`) from the verified identities file."""

    def __init__(self, tree: _Sorted) -> None:
        super().__init__(tree)
        try:
            self._ranks = {IdentityLeaf.from_bytes(leaf).sort_key: r for r, leaf in enumerate(tree.leaves)}
        except InputError as exc:  # identity.malformed
            raise _mismatch("an identity leaf", "fetch.leaves_mismatch") from exc

    def proofs(self, identities: Iterable[tuple[str, str]]) -> list[tuple[int, bytes, tuple[Digest, ...]]]:
        """As :meth:`ledger.identity.IdentityIndex.proofs`: each identity's leaf and its neighbours'."""
        wanted: set[int] = set()
        for kind, key in identities:
            rank = self._ranks[sort_key(kind, key)]
            wanted.update(r for r in (rank - 1, rank, rank + 1) if 0 <= r < len(self._tree))
        return [(r, self._tree.leaves[r], self._tree.path(r)) for r in sorted(wanted)]


class _Lines:
    def __init__(self, heads: _Heads, identities: _Identities) -> None:
        self.heads, self.identities = heads, identities


class RemoteLog:
    """A published log at the tree size of ``cp`` (a checkpoint the caller opened under pinned keys), as a
    :class:`ledger.reader.ReadSide`; ``records``: its records by position, each verified as read. Files are
    fetched when first needed."""

    framing_ok = True  # the tree is the checkpoint's, verified tile by tile

    def __init__(self, fetch: Fetcher, cp: Checkpoint) -> None:
        self.fetch, self.cp = fetch, cp
        self.origin, self.at = cp.origin, cp.tree_size
        self._tiles = _VerifiedTiles(fetch, cp)
        self.tree = _Tree(self._tiles, cp)
        self._bundles: dict[int, list[bytes]] = {}
        self.records = Records(self._entry)
        self._lines: _Lines | None = None
        self._registry: list[tuple[int, Record]] | None = None

    @property
    def commitments(self) -> _Lines:
        """The heads and identities trees, fetched and checked against the checkpoint's lines."""
        if self._lines is None:
            heads = checkpoint_heads(self.cp)
            ids = checkpoint_identities(self.cp)
            self._lines = _Lines(
                _Heads(_fetch_tree(self.fetch, heads_path(self.at), heads, _line(self.cp, 1)), self),
                _Identities(_fetch_tree(self.fetch, identities_path(self.at), ids, _line(self.cp, 2))))
        return self._lines

    def registry_below(self, tree_size: int) -> list[tuple[int, Record]]:
        """The registry records below the checkpoint's tree size (``tree_size`` must be it)."""
        if tree_size != self.at:
            raise ValueError(f"a published log answers at tree size {self.at}, not {tree_size}")
        if self._registry is None:
            count, head = checkpoint_registry(self.cp)
            path = registry_path(count)
            found = decode_positions(self.fetch.get(path, count * 8), count, self.at, path) if count else []
            registry = [(p, self.records[p]) for p in found]
            if any(r.body.kind not in REGISTRY_KINDS for _, r in registry) or (
                    registry and registry[-1][1].record_hash != head):
                raise _mismatch(path, "fetch.registry_mismatch")
            self._registry = registry
        return self._registry

    def _entry(self, position: int) -> bytes:
        """Record ``position``'s bytes, from its entry bundle, every entry of which is checked against the
        verified level-0 tile."""
        index = position // TILE_WIDTH
        if index not in self._bundles:
            width = tile_width(self.at, 0, index)
            path = entries_path(index, width)
            entries = decode_entries(self.fetch.get(path, ENTRY_BUNDLE_CAP), width, path)
            hashes = self._tiles.read_tile(0, index)
            for i, entry in enumerate(entries):
                if leaf_hash(entry) != hashes[i * DIGEST_SIZE:(i + 1) * DIGEST_SIZE]:
                    raise _mismatch(f"{path} (entry {i})", "fetch.entry_mismatch")
            self._bundles[index] = entries
        return self._bundles[index][position % TILE_WIDTH]


def _line(cp: Checkpoint, which: int) -> str:
    """The checkpoint's heads (1) or identities (2) extension line, as the file's answer to ``extension()``."""
    word = ("stonetrail-heads ", "stonetrail-identities ")[which - 1]
    return next((line for line in cp.extensions if line.startswith(word)), "")
