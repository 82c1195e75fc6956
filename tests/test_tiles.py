"""Tests for ledger.storage.tiles: C2SP tlog-tiles paths and tile sets, and a TiledTree differential against
ledger.merkle.MerkleTree (roots and RFC 9162 proofs at every past size, through tiles persisted and re-opened)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Iterator
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import ArgumentError, InputError, StorageError
from ledger.hashing import Digest
from ledger.merkle import MerkleTree, leaf_hash, root_hash, verify_consistency, verify_inclusion
from ledger.storage.tiles import (
    TILE_HEIGHT,
    TILE_WIDTH,
    MemoryTiles,
    NodeReader,
    Tile,
    TiledTree,
    parse_tile_path,
    tile_nodes,
    tile_path,
)

U64 = 1 << 64
BOUNDARIES = (255, 256, 257, 65535, 65536, 65537)
MAX_LEAVES = 70000


@cache
def _leaves() -> tuple[Digest, ...]:
    return tuple(Digest(hashlib.sha256(i.to_bytes(8, "big")).digest()) for i in range(MAX_LEAVES))


def leaves(n: int, start: int = 0) -> tuple[Digest, ...]:
    """Leaf hashes start to n - 1 of one fixed sequence of distinct hashes (n <= MAX_LEAVES)."""
    assert n <= MAX_LEAVES
    return _leaves()[start:n]


def build(n: int, batches: list[int], reopen: list[bool]) -> tuple[TiledTree, list[list[Tile]]]:
    """A TiledTree of leaves(n) appended in batches of the given sizes (then the rest), persisted through a
    MemoryTiles after each append and re-opened from it after the batches flagged in ``reopen``, then re-opened at
    size n; and what each append returned."""
    store, returned = MemoryTiles(), []
    tree, done = TiledTree(store, 0), 0
    for i, batch in enumerate([*batches, n]):
        batch = min(batch, n - done)
        returned.append(tree.append(leaves(done + batch, done)))
        store.put(returned[-1])
        done += batch
        if reopen[i % len(reopen)] if reopen else False:
            tree = TiledTree(store, done)
    assert done == n
    return TiledTree(store, n), returned


def reference_tiles(size: int) -> dict[tuple[int, int], bytes]:
    """Every tile of the tree of leaves(size), straight from the C2SP tlog-tiles text: tile n at level l holds
    MTH(D[(n*256 + i) * 256**l : (n*256 + i + 1) * 256**l]) for i from 0, partial tiles floor(size/256**l) mod 256
    wide."""
    tiles: dict[tuple[int, int], bytes] = {}
    level, data = 0, leaves(size)
    while count := size >> (TILE_HEIGHT * level):
        span = 1 << (TILE_HEIGHT * level)
        hashes = [root_hash(data[j * span:(j + 1) * span]) for j in range(count)]
        for n in range(0, count, TILE_WIDTH):
            tiles[(level, n // TILE_WIDTH)] = b"".join(hashes[n:n + TILE_WIDTH])
        level += 1
    return tiles


def assert_same(tree: TiledTree, ref: MerkleTree, size: int, index: int, old: int) -> None:
    """root_at, inclusion and consistency proofs agree with MerkleTree's and verify."""
    root = tree.root_at(size)
    assert root == ref.root_at(size)
    if size:
        proof = tree.inclusion_proof(index, size)
        assert proof == ref.inclusion_proof(index, size)
        verify_inclusion(leaves(ref.size)[index], index, size, proof, root)
        assert tree.leaf_hash(index) == leaves(ref.size)[index]
        consistency = tree.consistency_proof(old, size)
        assert consistency == ref.consistency_proof(old, size)
        verify_consistency(old, size, ref.root_at(old), root, consistency)


# ----------------------------------------------------------------------------------------------------------
# Paths (C2SP tlog-tiles "Merkle Tree": tile/<L>/<N>[.p/<W>])


@pytest.mark.parametrize(("level", "index", "width", "path"), [
    (0, 1234067, 256, "tile/0/x001/x234/067"),  # the spec's example of <N>
    (0, 0, 256, "tile/0/000"),
    (0, 999, 256, "tile/0/999"),
    (0, 1000, 256, "tile/0/x001/000"),
    (0, 1234, 5, "tile/0/x001/234.p/5"),
    (1, 1, 17, "tile/1/001.p/17"),
    (2, 0, 1, "tile/2/000.p/1"),
    (63, U64 - 1, 255, "tile/63/x018/x446/x744/x073/x709/x551/615.p/255"),
])
def test_tile_path_vectors(level: int, index: int, width: int, path: str) -> None:
    assert tile_path(level, index, width) == path
    assert parse_tile_path(path) == (level, index, width)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 63), st.integers(0, U64 - 1), st.integers(1, TILE_WIDTH))
def test_parse_inverts_format(level: int, index: int, width: int) -> None:
    assert parse_tile_path(tile_path(level, index, width)) == (level, index, width)
    assert Tile(level=level, index=index, hashes=bytes(32 * width)).path == tile_path(level, index, width)


@pytest.mark.parametrize("path", [
    "tile/0/1234067", "tile/0/x001/x234/67", "tile/0/x1/234", "tile/0/001/234", "tile/0/x001/x234",
    "tile/00/000", "tile/01/000", "tile/64/000", "tile/-1/000", "tile/+1/000", "tile/0/x000/001",
    "tile/0/000.p/0", "tile/0/000.p/256", "tile/0/000.p/007", "tile/0/000.p/", "tile/0/000.p", "tile/0/000.p/1/",
    "/tile/0/000", "tile/0/000/", "tile/0/000\n", " tile/0/000", "tile/0/X001/000",
    "tile/0/x018/x446/x744/x073/x709/x551/616",
    "tile/0/\u0660\u0660\u0660", "tile/entries/000", "tile/8/0/000", "tile/0/" + "x001/" * 30 + "000", "", "tile",
])
def test_parse_rejects_bad_paths(path: str) -> None:
    with pytest.raises(InputError) as err:
        parse_tile_path(path)
    assert err.value.code == "tile.bad_path"


def test_parse_rejects_non_text() -> None:
    with pytest.raises(ArgumentError):
        parse_tile_path(b"tile/0/000")  # type: ignore[arg-type]


@pytest.mark.parametrize(("level", "index", "width"), [(64, 0, 256), (-1, 0, 256), (0, -1, 256), (0, U64, 256),
                                                       (0, 0, 0), (0, 0, 257), (True, 0, 256)])
def test_tile_path_rejects_out_of_range(level: int, index: int, width: int) -> None:
    with pytest.raises(InputError) as err:
        tile_path(level, index, width)
    assert err.value.code == "input.range"


@pytest.mark.parametrize(("hashes", "code"), [(b"", "input.range"), (bytes(33), "hash.length"),
                                              (bytes(32 * 257), "input.range")])
def test_tile_holds_1_to_256_whole_hashes(hashes: bytes, code: str) -> None:
    with pytest.raises(InputError) as err:
        Tile(level=0, index=0, hashes=hashes)
    assert err.value.code == code


# ----------------------------------------------------------------------------------------------------------
# The tiles append() returns


def test_size_70000_is_the_spec_example() -> None:
    """C2SP tlog-tiles: 273 full level 0 tiles, one partial level 0 tile of width 112, one full level 1 tile, one
    partial level 1 tile of width 17 and one partial level 2 tile of width 1."""
    tiles = TiledTree(MemoryTiles(), 0).append(leaves(70000))
    want = [(0, n, 256) for n in range(273)] + [(0, 273, 112), (1, 0, 256), (1, 1, 17), (2, 0, 1)]
    assert [(t.level, t.index, t.width) for t in tiles] == want


def test_size_256_is_a_full_tile_and_a_partial_tile_above() -> None:
    tiles = TiledTree(MemoryTiles(), 0).append(leaves(256))
    assert [t.path for t in tiles] == ["tile/0/000", "tile/1/000.p/1"]
    assert tiles[1].hashes == MerkleTree(leaves(256)).root()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 700), min_size=1, max_size=8))
def test_append_returns_exactly_the_changed_tiles(batches: list[int]) -> None:
    """Each append returns every tile whose content changed, once, with its content at the new size (as the spec
    defines it), lower levels first; appending nothing changes nothing."""
    store, size = MemoryTiles(), 0
    tree = TiledTree(store, 0)
    for batch in batches:
        before, after = reference_tiles(size), reference_tiles(size + batch)
        tiles = tree.append(leaves(size + batch, size))
        store.put(tiles)
        keys = [(t.level, t.index) for t in tiles]
        assert keys == sorted(set(keys))
        assert {(t.level, t.index): t.hashes for t in tiles} == {
            key: hashes for key, hashes in after.items() if before.get(key) != hashes}
        size += batch
        assert tree.size == size


# ----------------------------------------------------------------------------------------------------------
# Differential: TiledTree == MerkleTree


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_matches_merkle_tree(data: st.DataObject) -> None:
    n = data.draw(st.integers(0, 3000), label="n")
    batches = data.draw(st.lists(st.integers(0, 600), max_size=10), label="batches")
    reopen = data.draw(st.lists(st.booleans(), max_size=4), label="reopen")
    tree, _ = build(n, batches, reopen)
    ref = MerkleTree(leaves(n))
    assert tree.size == n and tree.root_at() == ref.root()
    for _ in range(5):
        size = data.draw(st.integers(0, n), label="size")
        index = data.draw(st.integers(0, max(size - 1, 0)), label="index")
        old = data.draw(st.integers(min(1, size), size), label="old")
        assert_same(tree, ref, size, index, old)


@pytest.fixture(scope="module")
def boundary_stores() -> dict[int, MemoryTiles]:
    """For each boundary size s, a MemoryTiles holding only what the appends up to size s returned."""
    _, returned = build(BOUNDARIES[-1], [b - a for a, b in zip((0, *BOUNDARIES), BOUNDARIES, strict=False)], [])
    stores = {}
    for k, size in enumerate(BOUNDARIES):
        stores[size] = MemoryTiles()
        for tiles in returned[:k + 1]:
            stores[size].put(tiles)
    return stores


@pytest.mark.parametrize("size", BOUNDARIES)
def test_matches_merkle_tree_at_tile_boundaries(size: int, boundary_stores: dict[int, MemoryTiles]) -> None:
    tree, ref = TiledTree(boundary_stores[size], size), MerkleTree(leaves(size))
    for past in sorted({1, 2, 255, 256, 257, 65535, 65536, size - 1, size} & set(range(1, size + 1))):
        for index, old in [(0, 1), (past // 2, max(past // 3, 1)), (past - 1, past), (past - 1, past - 1 or 1)]:
            assert_same(tree, ref, past, index, old)


def test_memory_tiles_keep_the_widest_version() -> None:
    """A narrower (older) version of a tile put later does not hide the wider one: the store still serves its
    largest size."""
    store = MemoryTiles()
    _, returned = build(300, [290], [])
    for tiles in reversed(returned):
        store.put(tiles)
    assert store.read_tile(0, 1) == b"".join(leaves(300, 256))
    assert TiledTree(store, 300).root_at() == MerkleTree(leaves(300)).root()
    with pytest.raises(KeyError):
        store.read_tile(0, 2)
    with pytest.raises(ArgumentError):
        store.put([b"tile"])  # type: ignore[list-item]


def test_appending_after_reopening_continues_the_same_tree() -> None:
    store = MemoryTiles()
    tree = TiledTree(store, 0)
    for size in (100, 256, 300, 65536, 65537, 65800):
        store.put(tree.append(leaves(size, tree.size)))
        tree = TiledTree(store, size)
    assert tree.root_at() == MerkleTree(leaves(65800)).root()


# ----------------------------------------------------------------------------------------------------------
# Range errors: the same as MerkleTree's


def _calls(size: int) -> Iterator[tuple[str, Callable[[TiledTree | MerkleTree], object]]]:
    yield "root above size", lambda t: t.root_at(size + 1)
    yield "negative root size", lambda t: t.root_at(-1)
    yield "index = size", lambda t: t.inclusion_proof(size)
    yield "negative index", lambda t: t.inclusion_proof(-1)
    yield "bool index", lambda t: t.inclusion_proof(True, 0)
    yield "proof size above size", lambda t: t.inclusion_proof(0, size + 1)
    yield "old size 0", lambda t: t.consistency_proof(0)
    yield "old above new", lambda t: t.consistency_proof(5, 4)
    yield "new above size", lambda t: t.consistency_proof(1, size + 1)
    yield "str size", lambda t: t.root_at("3")  # type: ignore[arg-type]


@pytest.mark.parametrize(("what", "call"), list(_calls(300)), ids=[w for w, _ in _calls(300)])
def test_range_errors_match_merkle_tree(what: str, call: Callable[[TiledTree | MerkleTree], object]) -> None:
    tree, _ = build(300, [], [])
    with pytest.raises(InputError) as ours:
        call(tree)
    with pytest.raises(InputError) as theirs:
        call(MerkleTree(leaves(300)))
    assert (str(ours.value), ours.value.code) == (str(theirs.value), theirs.value.code)


def test_leaf_hash_range() -> None:
    tree, _ = build(3, [], [])
    with pytest.raises(InputError, match="want 0 <= index < size 3"):
        tree.leaf_hash(3)


def test_append_refuses_bad_hashes_and_changes_nothing() -> None:
    store = MemoryTiles()
    tree = TiledTree(store, 0)
    with pytest.raises(InputError) as err:
        tree.append([leaves(2)[0], leaves(2)[1][:31]])  # type: ignore[list-item]
    assert err.value.code == "hash.length" and tree.size == 0
    assert tree.append([]) == [] and tree.size == 0
    with pytest.raises(ArgumentError):
        tree.append(bytes(32))  # type: ignore[arg-type]
    with pytest.raises(InputError) as err:
        TiledTree(store, U64 - 1).append(leaves(1))
    assert err.value.code == "input.range"
    with pytest.raises(InputError):
        TiledTree(store, U64)
    with pytest.raises(ArgumentError):
        TiledTree({}, 0)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------------------------------------
# Damaged tiles and read counts


class Reader:
    """A TileReader over a dict that counts reads."""

    def __init__(self, tiles: dict[tuple[int, int], bytes]) -> None:
        self.tiles, self.reads = tiles, list[tuple[int, int]]()

    def read_tile(self, level: int, index: int) -> bytes:
        self.reads.append((level, index))
        return self.tiles[(level, index)]


@pytest.mark.parametrize(("damage", "code"), [
    (lambda b: None, "index.tile_missing"),
    (lambda b: b[:-32], "index.tile_missing"),
    (lambda b: b[:-1], "index.tile_corrupt"),
    (lambda b: b"", "index.tile_corrupt"),
    (lambda b: b + bytes(32 * TILE_WIDTH), "index.tile_corrupt"),
    (lambda b: bytearray(b), "index.tile_corrupt"),
])
def test_damaged_tile_raises_named_code(damage: Callable[[bytes], object], code: str) -> None:
    """The level-0 tile 1 of a 300-leaf tree is missing, cut short or corrupt: every read that needs it, and
    appending (which reads the right edge), raises the StorageError code that tells the index to rebuild."""
    tiles = dict(reference_tiles(300))
    damaged = damage(tiles.pop((0, 1)))
    if damaged is not None:
        tiles[(0, 1)] = damaged  # type: ignore[assignment]
    tree = TiledTree(Reader(tiles), 300)
    assert tree.root_at(256) == MerkleTree(leaves(256)).root()  # reads that do not need it still work
    for call in (lambda: tree.root_at(), lambda: tree.inclusion_proof(297), lambda: tree.consistency_proof(299),
                 lambda: tree.leaf_hash(299), lambda: tree.append(leaves(1))):
        with pytest.raises(StorageError) as err:
            call()
        assert err.value.code == code
        assert "tile/0/001" in str(err.value)
    assert tree.size == 300


def test_reads_each_tile_once_and_appends_read_the_edge_once() -> None:
    size = 65536 + 300
    reader = Reader(reference_tiles(size))
    tree = TiledTree(reader, size)
    for call in (lambda: tree.inclusion_proof(65536 + 299), lambda: tree.consistency_proof(70, size),
                 lambda: tree.root_at(size - 1), lambda: tree.inclusion_proof(5)):
        reader.reads.clear()
        call()
        assert len(reader.reads) == len(set(reader.reads)) <= 2 * 3  # at most two tiles on each of three levels
    reader.reads.clear()
    tiles = tree.append(leaves(size + 1, size))
    assert len(reader.reads) <= 3  # the partial tile of each level, once
    reader.tiles.update({(t.level, t.index): t.hashes for t in tiles})
    reader.reads.clear()
    for n in range(size + 1, size + 600):
        tiles = tree.append(leaves(n + 1, n))
    assert reader.reads == []


class _WithNodes(MemoryTiles):
    """A store that keeps each tile's inner nodes beside it (a NodeReader), optionally damaged."""

    def __init__(self, damage: bool = False) -> None:
        super().__init__()
        self.nodes: dict[tuple[int, int], bytes] = {}
        self.damage = damage

    def put(self, tiles: Iterable[Tile]) -> None:
        tiles = list(tiles)
        super().put(tiles)
        for t in tiles:
            nodes = tile_nodes(t.hashes)
            damaged = len(nodes) > 40 and self.damage
            self.nodes[(t.level, t.index)] = nodes[:40] + bytes([nodes[40] ^ 1]) + nodes[41:] if damaged else nodes

    def read_tile_nodes(self, level: int, index: int) -> bytes:
        return self.nodes[(level, index)]


@pytest.mark.parametrize("size", [1, 255, 256, 257, 70_000])
def test_a_store_keeping_inner_nodes_gives_the_same_proofs_with_no_hashing_in_tiles(size: int) -> None:
    leaves = [leaf_hash(i.to_bytes(4, "big")) for i in range(size)]
    plain, kept, damaged = MemoryTiles(), _WithNodes(), _WithNodes(damage=True)
    for store in (plain, kept, damaged):
        store.put(TiledTree(store, 0).append(leaves))
    assert isinstance(kept, NodeReader) and not isinstance(plain, NodeReader)
    want, got = TiledTree(plain, size), TiledTree(kept, size)
    for index in {0, size // 3, size - 1}:
        assert got.inclusion_proof(index) == want.inclusion_proof(index)
        assert got.root_at(index + 1) == want.root_at(index + 1)
    if size > 2:  # a store whose nodes disagree with its tiles gives a proof that does not verify, never a pass
        bad = TiledTree(damaged, size)
        proofs = [bad.inclusion_proof(i) for i in range(0, size, max(1, size // 50))]
        assert proofs != [want.inclusion_proof(i) for i in range(0, size, max(1, size // 50))]
