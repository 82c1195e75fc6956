"""Compact ranges (ledger.compact): a log hashed in pieces and merged in order has the RFC 9162 root of the whole."""

from __future__ import annotations

import hashlib
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger.compact import CompactRange
from ledger.errors import InputError
from ledger.merkle import EMPTY_ROOT, MerkleTree, leaf_hash, perfect_root, root_hash


def _leaves(n: int) -> list:
    return [leaf_hash(hashlib.sha256(b"%d" % i).digest()) for i in range(n)]


@given(st.integers(0, 300), st.lists(st.integers(0, 300), max_size=6))
def test_pieces_merged_in_order_give_the_root_of_the_whole(n: int, cuts: list[int]) -> None:
    leaves = _leaves(n)
    bounds = sorted({0, n, *(c for c in cuts if c <= n)})
    whole = CompactRange()
    for begin, end in itertools.pairwise(bounds):
        piece = CompactRange(begin)
        for h in leaves[begin:end]:
            piece.append(h)
        whole.extend(piece)
    assert whole.end == n
    assert whole.root() == (MerkleTree(leaves).root() if n else EMPTY_ROOT)
    assert len(whole.nodes) == bin(n).count("1")  # one perfect subtree per bit of the size


@given(st.integers(0, 700), st.integers(0, 1300))
def test_leaves_appended_all_at_once_are_the_leaves_appended_one_by_one(begin: int, n: int) -> None:
    """append_all hashes aligned runs of 256 leaves a level at a time: the same subtrees as append, wherever the
    range begins and ends (and the same root from leaf 0, ledger.merkle.root_hash)."""
    leaves = _leaves(n)
    ones, all_at_once = CompactRange(begin), CompactRange(begin)
    for h in leaves:
        ones.append(h)
    all_at_once.append_all(leaves[: n // 3])
    all_at_once.append_all(leaves[n // 3:])
    assert (all_at_once.end, all_at_once.nodes) == (ones.end, ones.nodes) == (begin + n, ones.nodes)
    if begin == 0:
        assert all_at_once.root() == root_hash(leaves)


def test_a_perfect_root_needs_a_power_of_two_of_digests() -> None:
    assert perfect_root(_leaves(8)) == root_hash(_leaves(8))
    for bad in ([], _leaves(3), [b"short"] * 2):
        with pytest.raises(InputError):
            perfect_root(bad)


@given(st.integers(0, 200), st.integers(0, 200))
def test_a_range_holds_at_most_two_subtrees_per_level(begin: int, length: int) -> None:
    piece = CompactRange(begin)
    for h in _leaves(length):
        piece.append(h)
    levels = [node.level for node in piece.nodes]
    assert all(levels.count(level) <= 2 for level in levels)
    assert sum(1 << node.level for node in piece.nodes) == length


def test_a_range_that_does_not_follow_is_refused() -> None:
    first, gap = CompactRange(), CompactRange(5)
    with pytest.raises(InputError) as refused:
        first.extend(gap)
    assert refused.value.code == "input.value"
    with pytest.raises(InputError):
        gap.root()
