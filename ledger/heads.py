"""Item heads: the checkpoint's commitment to every item's latest record (docs/format.md §7c; ADR 0009).

An inclusion proof shows that a record is in the log; it cannot show that no *later* record of the same item
exists. So a checkpoint also commits to each item's latest record below its tree size, in a second extension
line signed with the rest of the note::

    stonetrail-heads <item count> <base64 heads root>

The heads root is the RFC 9162 root hash (§2.1.1) of the *item-head tree*: one leaf per item named by a
readable record below the tree size, sorted by the UTF-8 bytes of the item id, with leaf input::

    TAG_ITEM_HEAD || canonical-msgpack([item id, leaf index of its latest record, record hash of that record])

An item's records are the records naming it as an input or an output (:meth:`ledger.record.Body.named_items`).
A proof bundle carries, for the item and for every item whose records count to the end of its provenance, the
RFC 9162 inclusion proof of that leaf; the verifier builds the leaf itself from the bundle's last record of the
item, so a bundle whose tail was cut (a later sale, a theft report) fails against the signed root.

Pure: records in, values out.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from ._codec import encode
from .checkpoint import Checkpoint, extension_line, format_counted_line, parse_counted_line
from .errors import VerificationError
from .hashing import TAG_ITEM_HEAD, Digest
from .merkle import MerkleTree, leaf_hash, verify_inclusion
from .record import Record

__all__ = ["HEADS_EXTENSION", "HeadProof", "ItemHeads", "checkpoint_heads", "head_leaf", "verify_item_head"]

#: First word of the checkpoint extension line that commits to every item's latest record.
HEADS_EXTENSION: Final = "stonetrail-heads"


def head_leaf(item: str, position: int, record_hash: Digest) -> bytes:
    """The item-head tree's leaf input for ``item`` whose latest record is at leaf index ``position`` (0-based)
    with ``record_hash``: TAG_ITEM_HEAD || canonical-msgpack([item, position, record_hash]).

    Raises:
        InputError: ``codec.unencodable`` (position out of range), ``hash.length`` (not 32 bytes).
    """
    return TAG_ITEM_HEAD + encode([item, position, bytes(Digest(record_hash))])


@dataclass(frozen=True, slots=True)
class HeadProof:
    """An item's place in the item-head tree: its 0-based ``index`` (rank of its id) and the RFC 9162
    inclusion proof of its leaf at the tree's size."""

    index: int
    proof: tuple[Digest, ...]


class ItemHeads:
    """Every item's latest record, collected from records in log order (:meth:`add`), and the item-head tree
    over them. An item's head is replaced each time a later record names it."""

    def __init__(self) -> None:
        self._heads: dict[str, tuple[int, Digest]] = {}
        self._tree: tuple[dict[str, int], MerkleTree] | None = None

    @classmethod
    def of(cls, records: Iterable[tuple[int, Record | None]]) -> ItemHeads:
        """The heads of ``records`` given as (leaf index, record) in increasing index; None (an unreadable
        leaf) names no item."""
        heads = cls()
        for position, record in records:
            if record is not None:
                heads.add(position, record)
        return heads

    def add(self, position: int, record: Record) -> None:
        """Make ``record``, at leaf index ``position``, the head of every item it names."""
        for item in record.body.named_items():
            self._heads[item] = (position, record.record_hash)
        self._tree = None

    def __len__(self) -> int:
        return len(self._heads)

    def head(self, item: str) -> tuple[int, Digest]:
        """(leaf index, record hash) of ``item``'s latest record; KeyError if no record names it."""
        return self._heads[item]

    def _built(self) -> tuple[dict[str, int], MerkleTree]:
        if self._tree is None:
            order = sorted(self._heads, key=lambda item: item.encode("utf-8"))
            tree = MerkleTree(leaf_hash(head_leaf(item, *self._heads[item])) for item in order)
            self._tree = ({item: rank for rank, item in enumerate(order)}, tree)
        return self._tree

    def root(self) -> Digest:
        """RFC 9162 root hash of the item-head tree (of the empty tree: SHA-256 of nothing)."""
        return self._built()[1].root()

    def extension(self) -> str:
        """The checkpoint extension line ``stonetrail-heads <item count> <base64 heads root>`` (no newline)."""
        return format_counted_line(HEADS_EXTENSION, len(self), self.root())

    def proof(self, item: str) -> HeadProof:
        """Where ``item``'s head leaf is in the item-head tree, with its inclusion proof; KeyError if unknown."""
        ranks, tree = self._built()
        rank = ranks[item]
        return HeadProof(rank, tuple(tree.inclusion_proof(rank)))


def checkpoint_heads(cp: Checkpoint) -> tuple[int, Digest]:
    """The (item count, heads root) of ``cp``'s one ``stonetrail-heads`` extension line.

    Raises:
        VerificationError: ``checkpoint.heads_missing`` (no such line).
        NoteFormatError: ``checkpoint.extension`` (a malformed line, or more than one).
    """
    missing = VerificationError(f"checkpoint has no {HEADS_EXTENSION} line: it does not commit to the items' "
                                "latest records", code="checkpoint.heads_missing")
    return parse_counted_line(extension_line(cp, HEADS_EXTENSION, missing), HEADS_EXTENSION)


def verify_item_head(item: str, position: int, record_hash: Digest, proof: HeadProof, count: int,
                     root: Digest) -> None:
    """Check that the item-head tree of ``count`` leaves with ``root`` (from a signed checkpoint, never from the
    proof) names the record at ``position`` with ``record_hash`` as ``item``'s latest (RFC 9162 §2.1.3.2).

    Raises:
        ProofError: the proof does not lead to ``root`` (``proof.*``: a later record of the item exists, or the
            proof is wrong). InputError: malformed values.
    """
    hashes: Sequence[Digest] = proof.proof
    verify_inclusion(leaf_hash(head_leaf(item, position, record_hash)), proof.index, count, hashes, root)
