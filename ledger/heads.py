"""Item heads: the checkpoint's commitment to every item's records (docs/format.md §7c; ADR 0009).

An inclusion proof shows that a record is in the log; it cannot show that no *other* record of the same item
exists — a later sale or theft report, or a statement about one of its records. So a checkpoint also commits,
in a second extension line signed with the rest of the note, to each item's latest record and record count
below its tree size::

    stonetrail-heads <item count> <base64 heads root>

The heads root is the RFC 9162 root hash (§2.1.1) of the *item-head tree*: one leaf per item with at least one
record below the tree size, sorted by the UTF-8 bytes of the item id, with leaf input::

    TAG_ITEM_HEAD || canonical-msgpack([item id, leaf index of its latest record, that record's hash,
                                        number of its records])

The records of an item are the readable records naming it as an input or an output
(:meth:`ledger.record.Body.named_items`), and the statements (``attested``, ``corrected``) whose subject is a
record of the item — an earlier one, or, in a log reordered by its operator, a later one (such a statement is a
fault, ``record.unknown_subject``, and its bundle must hold it to show it). Custody records are hash-linked per
item, statements are not: the count is what makes a left-out statement show. A proof bundle carries a head proof
for every item of its scope; the verifier checks it against the bundle's own records of the item.

Pure: records in, values out.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Final

from ._codec import encode
from .checkpoint import Checkpoint, extension_line, format_counted_line, parse_counted_line
from .errors import VerificationError
from .events import Attested, Corrected
from .hashing import TAG_ITEM_HEAD, Digest
from .merkle import MerkleTree, leaf_hash, verify_inclusion
from .record import Record

__all__ = ["HEADS_EXTENSION", "Head", "HeadProof", "ItemHeads", "are_records_of", "checkpoint_heads", "head_leaf",
           "head_leaf_prefix", "verify_item_head"]

#: First word of the checkpoint extension line that commits to every item's records.
HEADS_EXTENSION: Final = "stonetrail-heads"


@dataclass(frozen=True, slots=True)
class Head:
    """An item's latest record (0-based leaf ``position`` and ``record_hash``) and its number of records."""

    position: int
    record_hash: Digest
    count: int


def head_leaf_prefix(item: str) -> bytes:
    """The bytes every item-head leaf input of ``item`` (:func:`head_leaf`) opens with: the tag, the header of a
    4-element msgpack array (0x94) and the item id."""
    return TAG_ITEM_HEAD + b"\x94" + encode(item)


def head_leaf(item: str, head: Head) -> bytes:
    """The item-head tree's leaf input for ``item``: TAG_ITEM_HEAD || canonical-msgpack([item, position,
    record hash, count]).

    Raises:
        InputError: ``codec.unencodable`` (a number out of range), ``hash.length`` (not 32 bytes).
    """
    return TAG_ITEM_HEAD + encode([item, head.position, bytes(Digest(head.record_hash)), head.count])


@dataclass(frozen=True, slots=True)
class HeadProof:
    """An item's place in the item-head tree: its 0-based ``index`` (rank of its id) and the RFC 9162
    inclusion proof of its leaf at the tree's size."""

    index: int
    proof: tuple[Digest, ...]


class ItemHeads:
    """Every item's records, collected from records in log order (:meth:`add`), and the item-head tree over
    their heads."""

    def __init__(self, *, counted: bool = False, of: MutableMapping[Digest, tuple[str, ...]] | None = None) -> None:
        """``counted``: keep each item's record count and latest position only, not every position (an audit's
        heads, whose memory follows the items, not the records: :attr:`index` is then unavailable). ``of``: the mapping
        record hash -> items to keep (:class:`ledger.spilled_of.SpilledOf`, on disk), else a dictionary."""
        self._positions: MutableMapping[str, list[int]] = {}
        self._counts: dict[str, tuple[int, int]] | None = {} if counted else None  # item -> (records, latest position)
        self._latest: MutableMapping[str, Digest] = {}
        self._of: MutableMapping[Digest, tuple[str, ...]] = {} if of is None else of  # record hash -> its items
        self._waiting: MutableMapping[Digest, list[tuple[int, Digest]]] = {}  # subject not seen yet -> (position, hash)
        self._tree: tuple[dict[str, int], MerkleTree] | None = None

    def use(self, *, positions: MutableMapping[str, list[int]], latest: MutableMapping[str, Digest],
            of: MutableMapping[Digest, tuple[str, ...]], waiting: MutableMapping[Digest, list[tuple[int, Digest]]]
            ) -> None:
        """Keep the heads in these mappings instead of dictionaries (the persistent index's tables,
        :mod:`ledger.index.state`); they hold the heads of the records added so far (every position: not
        counted)."""
        self._positions, self._latest, self._of, self._waiting = positions, latest, of, waiting
        self._counts = None
        self._tree = None

    def counted_rows(self) -> tuple[dict[str, tuple[int, int]], Mapping[str, Digest],
                                    Mapping[Digest, list[tuple[int, Digest]]]]:
        """The rows of counted heads, to save (an audit state, :mod:`ledger.audit_state`): per item its record
        count and latest position, per item its latest record's hash, per subject not seen yet the statements
        waiting for it (position, hash). The record -> items map is the caller's (``of``). Raises TypeError for
        heads that keep every position."""
        if self._counts is None:
            raise TypeError("item heads that keep every position are saved by their tables")
        return self._counts, self._latest, self._waiting

    def resume_counted(self, counts: dict[str, tuple[int, int]], latest: MutableMapping[str, Digest],
                       waiting: MutableMapping[Digest, list[tuple[int, Digest]]]) -> None:
        """Go on from :meth:`counted_rows` (these counted heads new, their ``of`` holding the saved map)."""
        if self._counts is None or self._counts or self._latest:
            raise TypeError("only new counted item heads go on from saved rows")
        self._counts, self._latest, self._waiting, self._tree = counts, latest, waiting, None

    @classmethod
    def of(cls, records: Iterable[tuple[int, Record | None]]) -> ItemHeads:
        """The heads of ``records`` given as (leaf index, record) in increasing index; None (an unreadable
        leaf) is no item's record."""
        heads = cls()
        for position, record in records:
            if record is not None:
                heads.add(position, record)
        return heads

    def items_of(self, record: Record) -> frozenset[str]:
        """The items ``record`` is a record of: those it names, and for a statement those its subject (a record
        already added) is a record of."""
        items = record.body.named_items()
        event = record.body.event
        if isinstance(event, Attested | Corrected):
            items |= frozenset(self._of.get(event.subject, ()))
        return items

    def items_of_record(self, record_hash: Digest) -> tuple[str, ...]:
        """The items the record ``record_hash``, added before, is a record of (sorted); () if none, or not added."""
        return tuple(self._of.get(record_hash, ()))

    def waiting_at(self, record_hash: Digest) -> list[int]:
        """The positions of the statement ``record_hash`` among those waiting for their subject (a record not added
        yet, or one that is no item's record): one walk of the waiting statements."""
        return [p for _, waiting in self._waiting.items() for p, statement in waiting if statement == record_hash]

    def add(self, position: int, record: Record) -> frozenset[str]:
        """Add ``record``, at leaf index ``position`` (after every record added so far); return the items it is
        a record of."""
        items = self.items_of(record)
        event = record.body.event
        if isinstance(event, Attested | Corrected) and event.subject not in self._of:
            self._waiting.setdefault(event.subject, []).append((position, record.record_hash))
        ordered = sorted(items)  # never the set's order, which varies from run to run: the tables an index or an
        if ordered:  # audit state keeps are then the same bytes in every run
            self._of[record.record_hash] = tuple(ordered)
        for item in ordered:
            if self._counts is None:
                self._positions.setdefault(item, []).append(position)
            else:
                _tally(self._counts, item, position)
            self._latest[item] = record.record_hash
        if items and record.record_hash in self._waiting:
            self._settle(record.record_hash, items)
        self._tree = None
        return items

    def _settle(self, subject: Digest, items: frozenset[str]) -> None:
        """Count the statements that named ``subject`` before it was added (a log can hold a statement about a
        later record only if it was reordered: a fault an audit names, ``record.unknown_subject``) as records of
        its ``items``, at their own earlier positions; and so on for statements about those statements."""
        pending = [(subject, items)]
        while pending:
            subject, items = pending.pop()
            for position, statement in self._waiting.pop(subject, ()):
                self._of[statement] = tuple(sorted({*self._of.get(statement, ()), *items}))
                for item in sorted(items):
                    if self._counts is None:
                        bisect.insort(self._positions.setdefault(item, []), position)
                    else:
                        _tally(self._counts, item, position)
                pending.append((statement, items))

    def _items(self) -> Mapping[str, object]:
        return self._positions if self._counts is None else self._counts

    def __len__(self) -> int:
        return len(self._items())

    def every_head(self) -> dict[str, Head]:
        """Every item with a record (created or only named) -> its :meth:`head`."""
        return {item: self.head(item) for item in self._items()}

    @property
    def index(self) -> Mapping[str, Sequence[int]]:
        """Item id -> leaf indices of its records, increasing. Raises TypeError for counted heads (they keep
        none)."""
        if self._counts is not None:
            raise TypeError("counted item heads keep no positions")
        return self._positions

    def head(self, item: str) -> Head:
        """``item``'s latest record and record count; KeyError if it has no record."""
        if self._counts is not None:
            count, latest = self._counts[item]
            return Head(latest, self._latest[item], count)
        positions = self._positions[item]
        return Head(positions[-1], self._latest[item], len(positions))

    def _built(self) -> tuple[dict[str, int], MerkleTree]:
        if self._tree is None:
            order = sorted(self._items(), key=lambda item: item.encode("utf-8"))
            tree = MerkleTree.of_leaves(head_leaf(item, self.head(item)) for item in order)
            self._tree = ({item: rank for rank, item in enumerate(order)}, tree)
        return self._tree

    def leaves(self) -> Iterator[bytes]:
        """Every leaf input of the item-head tree, in tree order (ascending item id bytes)."""
        for item in sorted(self._items(), key=lambda name: name.encode("utf-8")):
            yield head_leaf(item, self.head(item))

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


def are_records_of(item: str, records: Sequence[Record]) -> bool:
    """True if each of ``records`` (the records a store says are all of ``item``'s) can be one of ``item``'s as
    :meth:`ItemHeads.add` counts them: it names the item, or it is a statement (``attested``, ``corrected``) about
    another of them. A reader checks a store's positions with it: a statement about another item's record is not
    this item's, whatever the store says."""
    hashes = {record.record_hash for record in records}
    return all(item in record.body.named_items() or (isinstance(event := record.body.event, Attested | Corrected)
                                                     and event.subject in hashes) for record in records)


def _tally(counts: dict[str, tuple[int, int]], item: str, position: int) -> None:
    """Count one more record of ``item``, at ``position``, in counted heads: (records, latest position)."""
    count, latest = counts.get(item, (0, position))
    counts[item] = (count + 1, max(latest, position))


def checkpoint_heads(cp: Checkpoint) -> tuple[int, Digest]:
    """The (item count, heads root) of ``cp``'s one ``stonetrail-heads`` extension line.

    Raises:
        VerificationError: ``checkpoint.heads_missing`` (no such line).
        NoteFormatError: ``checkpoint.extension`` (a malformed line, or more than one).
    """
    missing = VerificationError(f"checkpoint has no {HEADS_EXTENSION} line: it does not commit to the items' "
                                "latest records", code="checkpoint.heads_missing")
    return parse_counted_line(extension_line(cp, HEADS_EXTENSION, missing), HEADS_EXTENSION)


def verify_item_head(item: str, head: Head, proof: HeadProof, item_count: int, root: Digest) -> None:
    """Check that the item-head tree of ``item_count`` leaves with ``root`` (from a signed checkpoint, never from
    the proof) holds ``head`` as ``item``'s (RFC 9162 §2.1.3.2).

    Raises:
        ProofError: the proof does not lead to ``root`` (``proof.*``: the item's head is another, or the proof
            is wrong). InputError: malformed values.
    """
    verify_inclusion(leaf_hash(head_leaf(item, head)), proof.index, item_count, proof.proof, root)
