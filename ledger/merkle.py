"""RFC 9162 §2.1 Merkle tree over 32-byte SHA-256 digests: roots, inclusion and consistency proofs.

This module knows nothing about records: a leaf is whatever bytes the caller hashes with :func:`leaf_hash`.
Builders (``inclusion_proof``, ``consistency_proof``) come paired with verifiers (``verify_inclusion``,
``verify_consistency``) taking the same arguments in the same order. Verifiers take the index, the tree
sizes and the roots from a signed checkpoint (trusted), never from the proof, and check every length and bound
before hashing anything. Tree sizes and indices are unsigned 64-bit integers, as in RFC 9162.

Fault split: a malformed *trusted* argument (negative size, a root that is not 32 bytes) is the caller's
fault and raises :class:`~ledger.errors.InputError`; a proof that is malformed or does not verify raises
:class:`~ledger.errors.ProofError` with a specific ``code`` (``proof.size``, ``proof.index_out_of_range``,
``proof.wrong_length``, ``proof.hash_length``, ``proof.root_mismatch``).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable, Sequence

from .errors import InputError, ProofError
from .hashing import DIGEST_SIZE, Digest

__all__ = [
    "EMPTY_ROOT",
    "MerkleTree",
    "consistency_proof",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion_proof",
    "root_hash",
    "verify_consistency",
    "verify_inclusion",
]

_MAX_SIZE = (1 << 64) - 1

#: MTH({}) = SHA-256 of the empty string (RFC 9162 §2.1.1).
EMPTY_ROOT: Digest = Digest(hashlib.sha256(b"").digest())


_sha256 = hashlib.sha256
_HASH_TYPES, _HASH_LENGTH = frozenset({bytes, Digest}), frozenset({DIGEST_SIZE})  # what _check_proof passes at once
_EDGES_KEPT = 4096  # right-edge roots a MerkleTree keeps (a few per tree size proved against)


def leaf_hash(leaf: bytes) -> Digest:
    """Leaf hash SHA-256(0x00 || leaf) of the leaf bytes (RFC 9162 §2.1.1); InputError for non-bytes."""
    if type(leaf) is not bytes:
        if not isinstance(leaf, bytes | bytearray | memoryview):
            raise InputError(f"leaf: got {type(leaf).__name__}, want bytes", code="input.type")
        leaf = bytes(leaf)
    return bytes.__new__(Digest, _sha256(b"\x00" + leaf).digest())


def node_hash(left: Digest, right: Digest) -> Digest:
    """Interior node hash SHA-256(0x01 || left || right) of two 32-byte digests (RFC 9162 §2.1.1).

    Raises:
        InputError: ``left`` or ``right`` is not 32 bytes.
    """
    return _node(_trusted_digest("left", left), _trusted_digest("right", right))


def _node(left: bytes, right: bytes) -> Digest:
    # A SHA-256 output is 32 bytes by construction, so skip Digest's length check (a third of the cost).
    return bytes.__new__(Digest, hashlib.sha256(b"\x01" + left + right).digest())


def root_hash(leaf_hashes: Sequence[Digest]) -> Digest:
    """MTH(D[n]) of n leaf hashes (RFC 9162 §2.1.1); :data:`EMPTY_ROOT` for n = 0.

    Iterative with a stack of O(log n) complete-subtree hashes, linear time.

    Raises:
        InputError: an element is not 32 bytes.
    """
    stack: list[Digest] = []
    for count, h in enumerate(leaf_hashes, start=1):
        stack.append(h if type(h) is Digest else _trusted_digest("leaf hash", h))
        for _ in range((count & -count).bit_length() - 1):  # one merge per trailing zero bit of count
            right = stack.pop()
            stack.append(_node(stack.pop(), right))
    return _fold_right(stack) if stack else EMPTY_ROOT


def perfect_root(leaf_hashes: Sequence[bytes]) -> Digest:
    """MTH(D[n]) of n = 2**k leaf hashes, a perfect subtree (RFC 9162 §2.1.1), hashed a level at a time: what
    :func:`root_hash` gives, a few times faster. Raises InputError if n is not a power of two or a hash is not 32
    bytes."""
    n = len(leaf_hashes)
    if n == 0 or n & (n - 1) or any(len(h) != 32 for h in leaf_hashes):
        raise InputError(f"a perfect subtree needs 2**k hashes of 32 bytes, got {n}", code="input.value")
    level, sha256 = list(leaf_hashes), _sha256
    while len(level) > 1:
        level = [sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
    return bytes.__new__(Digest, level[0])


def inclusion_proof(leaf_hashes: Sequence[Digest], index: int) -> list[Digest]:
    """PATH(index, D[n]) for the tree of the n = len(leaf_hashes) leaf hashes (RFC 9162 §2.1.3.1).

    Requires 0 <= index < n. Returns the sibling hashes from the leaf upwards (0 to ~log2(n) digests).

    Raises:
        InputError: index out of range, or an element is not 32 bytes.
    """
    return MerkleTree(leaf_hashes).inclusion_proof(index)


def consistency_proof(leaf_hashes: Sequence[Digest], old_size: int) -> list[Digest]:
    """PROOF(old_size, D[n]) for n = len(leaf_hashes) (RFC 9162 §2.1.4.1).

    Requires 0 < old_size <= n. Returns the empty list when old_size == n.

    Raises:
        InputError: old_size out of range, or an element is not 32 bytes.
    """
    return MerkleTree(leaf_hashes).consistency_proof(old_size)


class MerkleTree:
    """An in-memory append-only RFC 9162 tree that keeps every complete subtree hash.

    ``_levels[k][j]`` is the hash of leaves [j * 2**k, (j + 1) * 2**k), kept as plain 32-byte ``bytes`` (a
    :class:`~ledger.hashing.Digest` is made only for what leaves the tree: roots and proof hashes); appends are
    amortised O(1), and roots and proofs for any past size need O(log n) lookups and hashes.
    """

    def __init__(self, leaf_hashes: Iterable[Digest] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        self._root: tuple[int, Digest] | None = None
        self._edges: dict[tuple[int, int], Digest] = {}  # (start, end) -> MTH(D[start:end]): never changes
        self.extend(leaf_hashes)

    @classmethod
    def of_leaves(cls, leaves: Iterable[bytes]) -> MerkleTree:
        """The tree of the leaf hashes of ``leaves`` (each hashed as :func:`leaf_hash` does, RFC 9162 §2.1.1),
        built a few times faster than ``MerkleTree(leaf_hash(leaf) for leaf in leaves)``. Raises InputError if
        a leaf is not bytes."""
        given, sha256 = list(leaves), _sha256
        try:
            hashes = [sha256(b"\x00" + leaf).digest() for leaf in given]
        except TypeError:  # name the leaf that is not bytes
            hashes = [leaf_hash(leaf) for leaf in given]
        tree = cls()
        tree._grow(hashes)
        return tree

    @property
    def size(self) -> int:
        """Number of leaves appended so far."""
        return len(self._levels[0])

    @property
    def leaf_hashes(self) -> tuple[Digest, ...]:
        """A copy of the leaf hashes, in append order (O(n))."""
        return tuple(bytes.__new__(Digest, h) for h in self._levels[0])

    def append(self, leaf_hash: Digest) -> int:
        """Append one 32-byte leaf hash; return its index. Raises InputError if it is not 32 bytes."""
        h: bytes = leaf_hash if type(leaf_hash) is Digest else _trusted_digest("leaf hash", leaf_hash)
        index = len(self._levels[0])
        level, pos = 0, index
        self._levels[0].append(h)
        while pos & 1:  # a right child completes its parent
            if level + 1 == len(self._levels):
                self._levels.append([])
            h = _sha256(b"\x01" + self._levels[level][pos - 1] + h).digest()
            level, pos = level + 1, pos >> 1
            self._levels[level].append(h)
        return index

    def extend(self, leaf_hashes: Iterable[Digest]) -> None:
        """Append many 32-byte leaf hashes, hashing the completed subtrees level by level (as :meth:`append` one
        by one, a few times faster). Raises InputError if one is not 32 bytes (nothing is appended then)."""
        self._grow([h if type(h) is Digest else _trusted_digest("leaf hash", h) for h in leaf_hashes])

    def _grow(self, leaf_hashes: list[bytes]) -> None:
        """Append checked 32-byte leaf hashes; hash the completed subtrees level by level."""
        self._levels[0].extend(leaf_hashes)
        sha256, level = _sha256, 0
        while len(self._levels[level]) > 1:
            if level + 1 == len(self._levels):
                self._levels.append([])
            below, above = self._levels[level], self._levels[level + 1]
            above.extend([sha256(b"\x01" + below[i] + below[i + 1]).digest()
                          for i in range(2 * len(above), len(below) - 1, 2)])
            level += 1

    def root(self) -> Digest:
        """MTH of all leaves so far (RFC 9162 §2.1.1); cached until the next append."""
        if self._root is None or self._root[0] != self.size:
            self._root = (self.size, self.root_at(self.size))
        return self._root[1]

    def root_at(self, size: int) -> Digest:
        """MTH(D[size]) of the first ``size`` leaves. Requires 0 <= size <= self.size, else InputError."""
        _check_range("size", size, 0, self.size, f"0 <= size <= {self.size}")
        return range_root(self._node, 0, size) if size else EMPTY_ROOT

    def inclusion_proof(self, index: int, size: int | None = None) -> list[Digest]:
        """PATH(index, D[size]) (RFC 9162 §2.1.3.1); size defaults to self.size.

        Requires 0 <= index < size <= self.size, else InputError.
        """
        size = self.size if size is None else size
        _check_range("size", size, 0, self.size, f"0 <= size <= {self.size}")
        _check_range("index", index, 0, size - 1, f"0 <= index < size {size}")
        return subtree_path(self._node, index, 0, size, self._edge)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[Digest]:
        """PROOF(old_size, D[new_size]) (RFC 9162 §2.1.4.1); new_size defaults to self.size.

        Requires 0 < old_size <= new_size <= self.size, else InputError. Empty when old_size == new_size.
        """
        new_size = self.size if new_size is None else new_size
        _check_range("new size", new_size, 0, self.size, f"0 <= new size <= {self.size}")
        _check_range("old size", old_size, 1, new_size, f"0 < old size <= new size {new_size}")
        return consistency_path(self._node, old_size, new_size) if old_size < new_size else []

    def _node(self, height: int, index: int) -> Digest:
        return bytes.__new__(Digest, self._levels[height][index])

    def _edge(self, start: int, end: int) -> Digest:
        """MTH(D[start:end]) of a proof's right edge, kept: proofs in a tree of one size share one per level."""
        h = self._edges.get((start, end))
        if h is None:
            if len(self._edges) >= _EDGES_KEPT:
                self._edges.clear()
            h = self._edges[start, end] = range_root(self._node, start, end)
        return h


#: (height, index) -> the hash of the complete subtree of leaves [index * 2**height, (index + 1) * 2**height).
Nodes = Callable[[int, int], Digest]


def subtree_path(nodes: Nodes, index: int, height: int, size: int,
                 edge: Callable[[int, int], Digest] | None = None) -> list[Digest]:
    """Sibling hashes of node (height, index) up to the root of the tree of ``size`` leaves (RFC 9162 §2.1.3.1),
    from complete-subtree hashes ``nodes``; an absent right sibling means the node is promoted unchanged. A
    sibling that reaches past ``size`` is MTH(D[start:size]), ``edge(start, size)`` (default :func:`range_root`
    over ``nodes``; a tree of one size has one per level, which a caller may keep)."""
    proof: list[Digest] = []
    while (1 << height) < size:
        sibling = index ^ 1
        start = sibling << height
        if start + (1 << height) <= size:
            proof.append(nodes(height, sibling))
        elif start < size:
            proof.append(edge(start, size) if edge is not None else range_root(nodes, start, size))
        index, height = index >> 1, height + 1
    return proof


def range_root(nodes: Nodes, start: int, end: int) -> Digest:
    """MTH(D[start:end]), start < end, where [start, end) lies within one aligned subtree (RFC 9162 §2.1.1): its
    complete subtrees left to right, largest first, hashed together right to left."""
    parts: list[Digest] = []
    while start < end:
        height = (end - start).bit_length() - 1
        parts.append(nodes(height, start >> height))
        start += 1 << height
    return _fold_right(parts)


def consistency_path(nodes: Nodes, old_size: int, new_size: int) -> list[Digest]:
    """PROOF(old_size, D[new_size]) (RFC 9162 §2.1.4.1) for 0 < old_size < new_size: the old tree's last complete
    subtree and its path in the new tree; the subtree itself is left out when it is the whole old tree (old_size a
    power of two), as SUBPROOF(m, D[m], true) = []."""
    height = (old_size & -old_size).bit_length() - 1
    index = (old_size - 1) >> height
    path = subtree_path(nodes, index, height, new_size)
    return [nodes(height, index), *path] if index else path


def _fold_right(parts: list[Digest]) -> Digest:
    """Hash complete subtrees of decreasing size (left to right) into one root, right to left."""
    h = parts[-1]
    for left in reversed(parts[:-1]):
        h = _node(left, h)
    return h


def root_from_inclusion_proof(
    leaf_hash: Digest, index: int, tree_size: int, proof: Sequence[Digest]
) -> Digest:
    """The root implied by an inclusion proof of ``leaf_hash`` at ``index`` (RFC 9162 §2.1.3.2).

    ``index`` and ``tree_size`` are trusted (from a signed checkpoint). Requires 0 <= index < tree_size and
    exactly the proof length the pair implies; the length and every element (32 bytes) are checked before
    hashing.

    Raises:
        InputError: a negative or over-2**64 index or size, or ``leaf_hash`` not 32 bytes.
        ProofError: ``proof.index_out_of_range``, ``proof.wrong_length`` or ``proof.hash_length``.
    """
    _check_uint("index", index)
    _check_uint("tree size", tree_size)
    h = _trusted_digest("leaf hash", leaf_hash)
    if index >= tree_size:
        raise ProofError(
            f"leaf index out of range: got {index}, want < tree size {tree_size}",
            code="proof.index_out_of_range",
        )
    inner = (index ^ (tree_size - 1)).bit_length()  # levels where the path has a sibling on either side
    border = (index >> inner).bit_count()  # levels above, where only left siblings exist
    _check_proof(proof, inner + border)
    sha, node, acc = _sha256, b"\x01", bytes(h)  # _node inlined: a proof's every hash goes through here
    for i, p in enumerate(proof):
        acc = sha(node + p + acc).digest() if i >= inner or (index >> i) & 1 else sha(node + acc + p).digest()
    return bytes.__new__(Digest, acc)


def verify_inclusion(
    leaf_hash: Digest, index: int, tree_size: int, proof: Sequence[Digest], root: Digest
) -> None:
    """Verify that ``leaf_hash`` is leaf ``index`` of the tree of ``tree_size`` leaves with ``root``.

    RFC 9162 §2.1.3.2. ``index``, ``tree_size`` and ``root`` are trusted (from a signed checkpoint). Returns
    nothing on success.

    Raises:
        InputError: as :func:`root_from_inclusion_proof`, or ``root`` not 32 bytes.
        ProofError: as :func:`root_from_inclusion_proof`, or ``proof.root_mismatch``.
    """
    want = _trusted_digest("root", root)
    got = root_from_inclusion_proof(leaf_hash, index, tree_size, proof)
    _check_match("inclusion", got, want)


def verify_consistency(
    old_size: int, new_size: int, old_root: Digest, new_root: Digest, proof: Sequence[Digest]
) -> None:
    """Verify that the tree of ``old_size`` leaves with ``old_root`` is a prefix of the ``new_size`` tree.

    RFC 9162 §2.1.4.2. Sizes and roots are trusted (from signed checkpoints). Requires 0 < old_size <=
    new_size: consistency from size 0 is an error (even 0 -> 0). Equal sizes need an empty proof and equal
    roots. The proof length is checked exactly, and every element (32 bytes), before any hashing.

    Raises:
        InputError: a negative or over-2**64 size, or a root not 32 bytes.
        ProofError: ``proof.size`` (old_size == 0 or old_size > new_size), ``proof.wrong_length``,
            ``proof.hash_length`` or ``proof.root_mismatch``.
    """
    _check_uint("old size", old_size)
    _check_uint("new size", new_size)
    root1, root2 = _trusted_digest("old root", old_root), _trusted_digest("new root", new_root)
    if old_size == 0:
        raise ProofError("consistency from an empty tree: got old size 0, want > 0", code="proof.size")
    if old_size > new_size:
        raise ProofError(
            f"old size {old_size} > new size {new_size}, want old size <= new size", code="proof.size"
        )
    if old_size == new_size:
        _check_proof(proof, 0)
        _check_match("equal-size", root1, root2)
        return
    level = (old_size & -old_size).bit_length() - 1  # the old tree's last complete subtree is at this level
    mask = (old_size - 1) >> level  # its position; the proof is its path to the new root
    inner = (mask ^ ((new_size - 1) >> level)).bit_length()
    border = (mask >> inner).bit_count()
    start = 1 if mask else 0  # the subtree's hash is in the proof unless it is the whole old tree
    _check_proof(proof, start + inner + border)
    seed = proof[0] if mask else root1
    hash1, hash2 = seed, seed
    for i, p in enumerate(proof[start:]):
        if i >= inner or (mask >> i) & 1:  # left sibling: part of both trees
            hash1, hash2 = _node(p, hash1), _node(p, hash2)
        else:  # right sibling: only in the new tree
            hash2 = _node(hash2, p)
    _check_match("old", hash1, root1)
    _check_match("new", hash2, root2)


def _check_proof(proof: Sequence[Digest], want: int) -> None:
    if len(proof) != want:
        raise ProofError(
            f"wrong proof length: got {len(proof)} hashes, want {want}", code="proof.wrong_length"
        )
    if set(map(type, proof)) <= _HASH_TYPES and set(map(len, proof)) <= _HASH_LENGTH:  # at C speed: all fine
        return
    for i, p in enumerate(proof):
        if not isinstance(p, bytes) or len(p) != DIGEST_SIZE:
            got = f"{len(p)} bytes" if isinstance(p, bytes) else type(p).__name__
            raise ProofError(f"proof hash {i}: got {got}, want {DIGEST_SIZE} bytes", code="proof.hash_length")


def _check_match(which: str, got: bytes, want: bytes) -> None:
    """Raise ProofError ``proof.root_mismatch`` if ``got`` is not ``want``, both named in standard base64, as
    checkpoints and every command print root hashes."""
    if got != want:
        raise ProofError(f"{which} root mismatch: got {base64.b64encode(got).decode()}, want "
                         f"{base64.b64encode(want).decode()}", code="proof.root_mismatch")


def _trusted_digest(name: str, value: Digest) -> Digest:
    if type(value) is Digest:
        return value
    if not isinstance(value, bytes) or len(value) != DIGEST_SIZE:
        got = f"{len(value)} bytes" if isinstance(value, bytes) else type(value).__name__
        raise InputError(f"{name}: got {got}, want {DIGEST_SIZE} bytes", code="hash.length")
    return Digest(value)


def _check_uint(name: str, value: int) -> None:
    _check_range(name, value, 0, _MAX_SIZE, "an integer in [0, 2**64)")


def _check_range(name: str, value: int, low: int, high: int, want: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(f"{name}: got {value!r}, want {want}", code="input.range")
