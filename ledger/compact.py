"""Compact ranges: the few RFC 9162 subtree hashes that stand for a run of leaves, so that a log can be hashed
in pieces (by worker processes, by chunks) and the pieces merged in order into the tree's root — the idea of
transparency-dev/merkle's ``compact.Range``, over this project's RFC 9162 hashing (:mod:`ledger.merkle`).

A range [begin, end) is covered by perfect subtrees, each of ``2**level`` leaves starting at a multiple of its
size: at most two per level. Appending a leaf, or a whole adjacent range, merges siblings as they complete. The
root of a range from leaf 0 is its subtrees hashed right to left (RFC 9162 §2.1.1: MTH splits at the largest
power of two below the size, which is exactly the largest subtree). Memory is O(log n) whatever the size.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .errors import InputError
from .hashing import Digest
from .merkle import EMPTY_ROOT, node_hash, perfect_root

__all__ = ["CompactRange", "Node"]

_RUN = 256  # leaves hashed together by CompactRange.append_all (a C2SP tile's width)


@dataclass(frozen=True, slots=True)
class Node:
    """The hash of the perfect subtree of leaves [index * 2**level, (index + 1) * 2**level)."""

    level: int
    index: int
    hash: Digest


class CompactRange:
    """The subtree hashes covering leaves [begin, end), left to right (see the module docstring)."""

    def __init__(self, begin: int = 0) -> None:
        if type(begin) is not int or begin < 0:
            raise InputError(f"begin: got {begin!r}, want an integer >= 0", code="input.value")
        self.begin = self.end = begin
        self._nodes: list[Node] = []

    @classmethod
    def of(cls, begin: int, end: int, nodes: Iterable[Node]) -> CompactRange:
        """The range [begin, end) with these covering ``nodes`` (as :attr:`nodes` gave them; a worker's range
        sent back). Raises InputError if they do not cover exactly [begin, end), left to right."""
        piece = cls(begin)
        for node in nodes:
            if node.index << node.level != piece.end:
                raise InputError(f"subtree {node.level}/{node.index} does not follow leaf {piece.end}",
                                 code="input.value")
            piece._nodes.append(node)
            piece.end += 1 << node.level
        if piece.end != end:
            raise InputError(f"the subtrees cover [{begin}, {piece.end}), not [{begin}, {end})", code="input.value")
        return piece

    @property
    def nodes(self) -> tuple[Node, ...]:
        """The covering subtrees, left to right."""
        return tuple(self._nodes)

    def append(self, leaf_hash: Digest) -> None:
        """Add the leaf ``end`` (its RFC 9162 leaf hash)."""
        self._push(Node(0, self.end, leaf_hash))
        self.end += 1

    def append_all(self, leaf_hashes: Sequence[Digest]) -> None:
        """Add leaves ``end``, ``end + 1``, ... (their RFC 9162 leaf hashes): :meth:`append` of each, with every
        aligned run of :data:`_RUN` leaves hashed into its subtree a level at a time
        (:func:`ledger.merkle.perfect_root`)."""
        i, n = 0, len(leaf_hashes)
        while i < n and (self.end % _RUN or n - i < _RUN):
            self.append(leaf_hashes[i])
            i += 1
        while n - i >= _RUN:
            self._push(Node(_RUN.bit_length() - 1, self.end // _RUN, perfect_root(leaf_hashes[i:i + _RUN])))
            self.end, i = self.end + _RUN, i + _RUN
        for h in leaf_hashes[i:]:
            self.append(h)

    def extend(self, other: CompactRange) -> None:
        """Add the adjacent range ``other`` ([end, other.end)). Raises InputError if it does not start at
        ``end``."""
        if other.begin != self.end:
            raise InputError(f"range [{other.begin}, {other.end}) does not follow [{self.begin}, {self.end})",
                             code="input.value")
        for node in other._nodes:
            self._push(node)
        self.end = other.end

    def _push(self, node: Node) -> None:
        # A right child (odd index) whose left sibling is last completes their parent; repeat upwards. The
        # range's own left edge keeps a right child unmerged when its sibling lies before ``begin``.
        nodes = self._nodes
        while node.index & 1 and nodes and nodes[-1].level == node.level and nodes[-1].index == node.index - 1:
            left = nodes.pop()
            node = Node(node.level + 1, node.index >> 1, node_hash(left.hash, node.hash))
        nodes.append(node)

    def root(self) -> Digest:
        """MTH of leaves [0, end) (RFC 9162 §2.1.1). Raises InputError for a range that does not begin at 0."""
        if self.begin:
            raise InputError(f"the range begins at {self.begin}: only a range from leaf 0 has a root",
                             code="input.value")
        if not self._nodes:
            return EMPTY_ROOT
        h = self._nodes[-1].hash
        for left in reversed(self._nodes[:-1]):
            h = node_hash(left.hash, h)
        return h
