"""The item-head line checked against the log before a checkpoint is signed through the index (issue 10, item 3:
signing never signs a heads line the log's bytes do not give; docs/adr/0028-signed-root-anchor.md).

The heads line commits to every item's latest record and record count (docs/format.md §7c). The index keeps them
in rows a forger can rewrite with their checksums; so before signing, the index's item-head tree at its size M is
checked against what a forger cannot make:

* the heads line at the anchor's size N, which the anchor states under the signer's signature (an empty tree
  without an anchor: N = 0);
* the records after N, read from the log by :func:`ledger.index.anchor.check_tree` and decoded once each
  (:class:`NewRecords`): which items each is a record of, the statements' (``attested``, ``corrected``) through
  their subject, which is read from the log at a position the index names and whose RFC 9162 inclusion proof
  (§2.1.3.2) must lead to the log's root at M — the index only says where to look.

Every item those records name must have the leaf they give (latest position and hash, and a count of at least
theirs), and the tree with those items put back as they were at N — their earlier record (where the index says,
its hash from the tiles) and count less the new records — must be the anchor's, leaf count and root: a leaf the
index changed below N would need a SHA-256 collision. Then every leaf of the tree at M is the log's.

Not covered: a statement the log holds *before* its subject (an operator reordered the log, ADR 0009) that the
records after N complete — the index then counts it and this check does not: the index is taken as damaged and
rebuilt (the writer) or not used (``stonetrail checkpoint``): slower, never wrong.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence

from ..errors import StoneTrailError
from ..events import Attested, Corrected
from ..hashing import Digest
from ..heads import Head, head_leaf, head_leaf_prefix
from ..merkle import leaf_hash, root_hash, verify_inclusion
from ..record import Record
from .indexed import LedgerIndex, Trees
from .maps import ROW_FAULTS, IndexDamaged

__all__ = ["NewRecords", "check_heads"]

Leaves = Sequence[tuple[bytes, bytes, Digest]]


class NewRecords:
    """The records after an anchor, as :func:`check_heads` needs them: per item (records, latest position, its
    hash); the statements, whose items are known once the log's root is (:meth:`add` in log order)."""

    def __init__(self) -> None:
        self.tally: dict[str, tuple[int, int, Digest]] = {}
        self.statements: list[tuple[int, Digest, frozenset[str], Digest]] = []

    def add(self, position: int, record: Record) -> None:
        """Count ``record``, at leaf index ``position``, for the items it names (a statement: later)."""
        event = record.body.event
        if isinstance(event, Attested | Corrected):
            self.statements.append((position, record.record_hash, record.body.named_items(), event.subject))
        else:
            self.count(record.body.named_items(), position, record.record_hash)

    def count(self, items: Iterable[str], position: int, record_hash: Digest) -> None:
        """Count one record, at ``position`` with ``record_hash``, for each of ``items``."""
        for item in items:
            records, latest, head = self.tally.get(item, (0, -1, record_hash))
            self.tally[item] = (records + 1, *((position, record_hash) if position > latest else (latest, head)))


def check_heads(index: LedgerIndex, new: NewRecords, anchored: tuple[int, int, Digest], root: Digest) -> Trees:
    """The leaves of ``index``'s two trees at its size (:meth:`~ledger.index.indexed.LedgerIndex.leaves`), once its
    item-head tree is checked (module docstring) against ``anchored`` — (N, item count, heads root) at the anchor
    — and ``new``, the records from N on; ``root``: the log's root at the index's size, computed from the log.
    Raises IndexDamaged if the tree is not the log's (or a statement's subject cannot be placed)."""
    size, count, heads_root = anchored
    try:
        found: dict[Digest, frozenset[str]] = {}
        for position, record_hash, named, subject in new.statements:
            new.count(named | _items_of(index, subject, root, found), position, record_hash)
        trees = index.leaves()
        before = _before(index, trees[0], new.tally, size)
    except (StoneTrailError, *ROW_FAULTS) as exc:
        if isinstance(exc, IndexDamaged):
            raise
        raise IndexDamaged(f"its item heads cannot be checked against the log ({exc})") from exc
    if len(before) != count or root_hash(before) != heads_root:
        raise IndexDamaged(f"{index.db.path}: its item heads are not the ones the log's records give")
    return trees


def _before(index: LedgerIndex, leaves: Leaves, tally: dict[str, tuple[int, int, Digest]], size: int
            ) -> list[Digest]:
    """The leaf hashes of the tree at ``size`` that ``leaves`` (the index's tree now) give once the items of
    ``tally`` are put back as they were: each must have the leaf the new records give it. Every leaf must open
    with its sort key's item id, the keys increasing: a stored snapshot's keys are rows too, and a leaf under
    another key would stand elsewhere in the tree, or hide its item from the check (an adversarial review signed
    both). Raises IndexDamaged."""
    left, hashes, last = dict(tally), list[Digest](), None
    for key, leaf, hashed in leaves:
        item = key.decode("utf-8")
        if (last is not None and key <= last) or not leaf.startswith(head_leaf_prefix(item)):
            raise IndexDamaged("the index's item-head tree is not one leaf per item, in order")
        last = key
        if item not in left:
            hashes.append(hashed)
            continue
        records, latest, head = left.pop(item)
        at = list(index.heads.index[item])
        if leaf != head_leaf(item, Head(latest, head, len(at))) or len(at) < records:
            raise IndexDamaged(f"the index's head of item {item!r} is not the one the log's records give")
        if len(at) > records:  # the item had records below the anchor: its leaf there
            earlier = at[bisect.bisect_left(at, size) - 1]
            if not 0 <= earlier < size:
                raise IndexDamaged(f"the index has no record of item {item!r} below the anchor")
            was = Head(earlier, index.tree.leaf_hash(earlier), len(at) - records)
            hashes.append(leaf_hash(head_leaf(item, was)))
    if left:
        raise IndexDamaged(f"the index's item heads lack {len(left)} items the log's records name")
    return hashes


def _items_of(index: LedgerIndex, subject: Digest, root: Digest, found: dict[Digest, frozenset[str]]
              ) -> frozenset[str]:
    """The items the record ``subject`` is a record of (:meth:`ledger.heads.ItemHeads.items_of`): those it names,
    and for a statement its own subject's, and so on down the chain, each record read from the log where the index
    places it (``found``: the records' items found so far)."""
    chain: list[tuple[Digest, frozenset[str]]] = []
    while subject not in found:
        record = _placed(index, subject, root)
        chain.append((subject, record.body.named_items()))
        event = record.body.event
        if not isinstance(event, Attested | Corrected):
            break
        subject = event.subject
    items = found.get(subject, frozenset()) if not chain or chain[-1][0] != subject else frozenset()
    for link, named in reversed(chain):  # the chain's end first: a statement's items include its subject's
        items = found[link] = named | items
    return items


def _placed(index: LedgerIndex, subject: Digest, root: Digest) -> Record:
    """The record ``subject``, read from the log at a position the index gives it — among the positions of the
    items it is a record of, the registry records' or the waiting statements' — once its inclusion proof leads to
    ``root`` (the log's, at the index's size)."""
    size, heads = index.size, index.heads
    places = [p for item in heads.items_of_record(subject) for p in reversed(heads.index.get(item, ()))]
    for group in (places, [p for p, _ in index.registry], heads.waiting_at(subject)):  # the last: a statement
        for position in group:  # about a record of no item (or about a record not in the log)
            if 0 <= position < size and index.tree.leaf_hash(position) == subject:
                verify_inclusion(subject, position, size, index.tree.inclusion_proof(position, size), root)
                return Record.from_bytes(index.payload(position))  # checked against its leaf hash
    raise IndexDamaged(f"the index places no record {subject.hex()[:16]}… that a statement names")
