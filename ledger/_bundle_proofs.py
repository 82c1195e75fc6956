"""A bundle's proofs checked against its checkpoint's tree head and lines: the part of verifying a bundle
(:mod:`ledger.bundle`) that needs no key, shared with the exporter, which checks the proofs its index gave before
it hands a bundle out (:mod:`ledger.export`). Pure: no I/O.

The verifier's :class:`~ledger.bundle.BundleReport` gathers these checks' findings with the rest (signatures, the
registry, the replay, completeness, claims); :func:`check_bundle_proofs` runs them alone. Each takes its trusted
inputs (tree size, roots, counts) from the checkpoint, never from the proof (RFC 9162 §2.1.3.2).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import cast

from ._bundle_format import Bundle, BundleEntry, HeadEntry, IdentityEntry
from .checkpoint import Checkpoint, read_unverified_checkpoint
from .errors import InputError, StoneTrailError
from .findings import Finding
from .hashing import Digest
from .heads import Head, HeadProof, ItemHeads, checkpoint_heads, verify_item_head
from .identity import IdentityLeaf, checkpoint_identities, proven_leaf
from .merkle import leaf_hash, verify_inclusion
from .record import Record

__all__ = ["Fault", "check_bundle_proofs", "fault", "finding", "head_faults", "proven_identities", "read_entries"]

#: A finding, and the typed error that found it (None: a rule's finding, raised as a RuleError).
Fault = tuple[Finding, StoneTrailError | None]


def check_bundle_proofs(bundle: Bundle, known: Mapping[int, Record] | None = None) -> tuple[Finding, ...]:
    """Check the proofs of ``bundle`` against its own checkpoint's tree head and lines, read without checking the
    note's signature, with the verifier's own checks: records in strictly increasing leaf order, each record's
    RFC 9162 inclusion proof (§2.1.3.2) of its leaf hash at its index in the checkpoint's tree (so its bytes are
    the log's: :func:`read_entries`), each head proof against the ``stonetrail-heads`` line for the bundle's own
    last record and count of that item (docs/format.md §7c: :func:`head_faults`), each identity leaf against
    the ``stonetrail-identities`` line (§7d: :func:`proven_identities`). No signature, rule, completeness or
    claim is judged: the note's and the records' signatures are their signers' own bytes, which the bundle's
    verifier checks under its pinned keys.

    ``known``: records already decoded (position -> record); one whose bytes are the bundle's leaf there is taken
    as it is, any other leaf is decoded. Returns every finding, in that order (empty: every proof holds). Never
    raises for the bundle's content (a leaf that does not decode, a line missing: findings).
    """
    try:
        tree = read_unverified_checkpoint(bundle.checkpoint)
    except InputError as exc:
        return (fault(exc, None, None, "checkpoint: ")[0],)
    records: dict[int, Record] = {}
    found = [f for f, _ in read_entries(bundle.entries, tree, records, known or {})]
    try:
        count, root = checkpoint_heads(tree)
    except StoneTrailError as exc:
        found.append(fault(exc, None, None, "checkpoint: ")[0])
    else:
        heads = ItemHeads.of(sorted(records.items()))
        for head in bundle.heads:
            found += [f for f, _ in head_faults(head, heads.index.get(head.item, ()), records, count, root)]
    try:
        count, root = checkpoint_identities(tree)
    except StoneTrailError as exc:
        found.append(fault(exc, None, None, "checkpoint: ")[0])
    else:
        found += [f for f, _ in proven_identities(bundle.identities, count, root, {})]
    return tuple(found)


def read_entries(entries: Sequence[BundleEntry], tree: Checkpoint, records: dict[int, Record],
                 known: Mapping[int, Record] = MappingProxyType({})) -> Iterator[Fault]:
    """Order and inclusion of every leaf first (cheap, and what a forger must beat), then the records read into
    ``records`` (a ``known`` record whose bytes are the leaf is taken as it is)."""
    last, leaves = -1, []
    for entry in entries:
        if entry.index <= last:
            code, why = (("bundle.duplicate_index", "leaf index given twice") if entry.index == last else
                         ("bundle.order", f"leaf index after {last}: records must be in increasing order"))
            yield finding(code, entry.index, why)
            continue
        last = entry.index
        leaves.append(entry)
        try:
            proof = cast("Sequence[Digest]", entry.proof)  # as received: verify_inclusion checks each length
            verify_inclusion(leaf_hash(entry.leaf), entry.index, tree.tree_size, proof, tree.root_hash)
        except StoneTrailError as exc:
            yield fault(exc, entry.index, None, f"inclusion in the checkpoint's tree of {tree.tree_size}: ")
    for entry in leaves:
        record = known.get(entry.index)
        try:
            records[entry.index] = record if record is not None and record.raw == entry.leaf else \
                Record.from_bytes(entry.leaf)
        except InputError as exc:
            yield fault(exc, entry.index, None, "")


def head_faults(head: HeadEntry, mine: Sequence[int], records: Mapping[int, Record], count: int, root: Digest
                ) -> Iterator[Fault]:
    """The head proof ``head`` against the item-head tree of ``count`` leaves with ``root`` (the checkpoint's
    heads line) for the item's records ``mine`` (positions among ``records``, the bundle's own): the last of them
    named as its latest, their number as its count (docs/format.md §7c)."""
    name = head.item
    if not mine:
        yield finding("bundle.extra_head", None, f"a head proof for {name}, which no record of the bundle is a "
                      "record of", name)
        return
    last = mine[-1]
    try:
        verify_item_head(name, Head(last, records[last].record_hash, len(mine)),
                         HeadProof(head.index, cast("tuple[Digest, ...]", head.proof)), count, root)
    except StoneTrailError as exc:
        yield finding("bundle.head_mismatch", last, f"the checkpoint does not name record {last} as the latest "
                      f"of {name} with {len(mine)} records: a record of it was left out (a later one, or a "
                      f"statement about one), or the head proof is wrong ({exc})", name)


def proven_identities(entries: Sequence[IdentityEntry], count: int, root: Digest, leaves: dict[int, IdentityLeaf]
                      ) -> Iterator[Fault]:
    """Each identity leaf proven against the identity tree of ``count`` leaves with ``root`` (the checkpoint's
    identities line), and parsed into ``leaves`` (docs/format.md §7d)."""
    for entry in entries:
        try:
            proof = cast("Sequence[Digest]", entry.proof)  # as received: verify_inclusion checks each length
            leaves[entry.index] = proven_leaf(entry.index, entry.leaf, proof, count, root)
        except StoneTrailError as exc:
            yield fault(exc, None, None, f"identity leaf {entry.index}: ")


def finding(code: str, position: int | None, reason: str, item: str | None = None) -> Fault:
    """A rule's finding (no typed error)."""
    return Finding(code=code, position=position, item=item, reason=reason), None


def fault(exc: StoneTrailError, position: int | None, item: str | None, prefix: str) -> Fault:
    """The finding of a typed error: its own if it carries one, else one with its code and ``prefix`` + message."""
    carried = getattr(exc, "finding", None)
    if isinstance(carried, Finding):
        return carried, exc
    return Finding(code=exc.code, position=position, item=item, reason=f"{prefix}{exc}"), exc
