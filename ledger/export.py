"""Export proof bundles from a ledger file: the I/O side of :mod:`ledger.bundle` (which never touches a file).

:func:`export_bundles` reads the file once (without locking), checks that the given signed checkpoint is of this
file — its origin, its tree size within the file, the file's root at that size equal to its root hash, its
registry and heads lines naming the file's registry chain and items' latest records — finds each item's scope
among the records below the tree size (:func:`ledger.scope.provenance_scope`, the same function the
verifier uses), and builds each bundle with RFC 9162 inclusion proofs at the checkpoint's tree size and the
item-head proofs (:mod:`ledger.heads`). The exporter vouches for nothing: the bundle is worth what
:func:`ledger.bundle.check_bundle` says, under the verifier's own pinned keys. O(n) in the file: every record
below the tree size is decoded once, since the item-head tree names every item, and only the scopes' records are
kept.

A bundle is current only as of its checkpoint. By default the exporter refuses a checkpoint that misses a record
of the bundle's items the file holds after it (``checkpoint.stale``: a stone sold or reported stolen since
would be proven "live"); ``as_of=True`` (``stonetrail proof export --as-of``) asks for the older view explicitly,
and :func:`export_bundle_as_of` says which later records the bundle leaves out. The bundle format records
nothing of this: an offline verifier knows only the checkpoint it is given (docs/format.md §7a.3).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ._text import fold
from .bundle import build_bundle
from .checkpoint import Checkpoint, open_checkpoint, read_unverified_checkpoint
from .errors import CorruptStoreError, InputError, VerificationError, expect, expect_each, expect_path
from .heads import ItemHeads
from .merkle import MerkleTree, leaf_hash
from .reader import read_log
from .record import Record
from .registry import checkpoint_registry, verify_registry_chain
from .scope import provenance_scope, scope_claims
from .storage import scan
from .trust import Trust

#: A progress callback: (records read, records in all).
Progress = Callable[[int, int], None]

__all__ = ["AsOf", "StaleCheckpointError", "export_bundle", "export_bundle_as_of", "export_bundles"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AsOf:
    """A bundle exported as of its checkpoint (``tree_size`` records), from a file of ``file_size`` records;
    ``later``: the leaf indices after the checkpoint that are records of the bundle's items (the item, its
    ancestors, the articles it was set in), which the bundle leaves out (empty: the bundle is current)."""

    bundle: bytes
    tree_size: int
    file_size: int
    later: tuple[int, ...]


def export_bundle(ledger_path: str | Path, item: str, checkpoint: str, *, trust: Trust | None = None,
                  as_of: bool = False, progress: Progress | None = None) -> bytes:
    """The proof bundle of ``item`` from the ledger file at ``ledger_path`` under the signed ``checkpoint``
    note. As :func:`export_bundles` for one item."""
    return export_bundles(ledger_path, [item], checkpoint, trust=trust, as_of=as_of, progress=progress)[item]


def export_bundle_as_of(ledger_path: str | Path, item: str, checkpoint: str, *,
                        trust: Trust | None = None, progress: Progress | None = None) -> AsOf:
    """The proof bundle of ``item`` as of ``checkpoint`` even if the file holds later records of it, with the
    positions of those records (to warn whoever asked for the older view). Raises as :func:`export_bundles`
    but never ``checkpoint.stale``."""
    return _export(ledger_path, [item], checkpoint, trust, progress)[item]


def export_bundles(ledger_path: str | Path, items: Sequence[str], checkpoint: str, *,
                   trust: Trust | None = None, as_of: bool = False, progress: Progress | None = None
                   ) -> dict[str, bytes]:
    """Proof bundles of several ``items`` of one ledger file, reading it once.

    The checkpoint's signature is verified only with ``trust`` (an exporter may hold no pinned key); its content
    is always checked against the file. The checkpoint must cover every record the file holds of each bundle's
    items, unless ``as_of`` (then a bundle may be current only as of an older checkpoint). ``progress``, if given,
    is called with (records read, records in all) while the file is read.

    Raises:
        StaleCheckpointError: ``checkpoint.stale`` (a VerificationError; without ``as_of``: the file holds a
            record of a bundle's item, ancestor or article after the checkpoint; sign a new checkpoint).
        NoteFormatError: the checkpoint is malformed. UnverifiedNoteError / SignatureError: with ``trust``, it
            is not signed by a pinned operator key. VerificationError: ``checkpoint.origin_mismatch``,
            ``checkpoint.beyond_log`` (tree size over the file's records), ``checkpoint.root_mismatch``,
            ``checkpoint.registry_missing``, ``checkpoint.heads_missing``, ``checkpoint.heads_mismatch`` (its
            heads line does not name the file's items' latest records), ``checkpoint.identities_missing``,
            ``checkpoint.identities_mismatch`` (its identities line is not the file's). RuleError: ``registry.gap`` /
            ``registry.head_mismatch`` (its registry line does not name the file's registry). InputError:
            ``item.unknown`` (no such item below the tree size). CorruptStoreError: damaged framing.
            StorageError: I/O failure.
    """
    exported = _export(ledger_path, items, checkpoint, trust, progress)
    for item, done in exported.items():
        if done.later and not as_of:
            raise StaleCheckpointError(item, done)
    return {item: done.bundle for item, done in exported.items()}


class StaleCheckpointError(VerificationError):
    """The checkpoint misses records the ledger file holds of a bundle's item or its provenance
    (``checkpoint.stale``): ``item``, and the :class:`AsOf` export it would have given (``done.later``);
    ``message`` replaces the default one (a tool saying how to sign a fresh checkpoint)."""

    default_code = "checkpoint.stale"

    def __init__(self, item: str, done: AsOf, message: str | None = None) -> None:
        more = f" and {len(done.later) - 1} more" if len(done.later) > 1 else ""
        default = (f"the checkpoint (tree size {done.tree_size}) is stale for {item!r}: the ledger has "
                   f"{done.file_size} records, and record {done.later[0]}{more} of its provenance came after it, so a "
                   "bundle under it would leave out the item's latest state; sign a new checkpoint, or export as of "
                   "this one explicitly (as_of)")
        super().__init__(message or default)
        self.item = item
        self.done = done


def _read_alike(item: str, names: Mapping[str, object]) -> str:
    """"; did you mean 'R-00001-A'?" when an item of ``names`` reads like ``item`` (:func:`ledger._text.fold`:
    case, 0/O, 1/l/I), else ""."""
    key = fold(item)
    alike = sorted(name for name in names if fold(name) == key)
    return f"; did you mean {alike[0]!r}?" if alike else ""


def _export(ledger_path: str | Path, items: Sequence[str], checkpoint: str, trust: Trust | None,
            progress: Progress | None = None) -> dict[str, AsOf]:
    """Each item's bundle under ``checkpoint`` and the file's later records of its scope (:class:`AsOf`)."""
    expect_path(ledger_path, "ledger_path")  # ArgumentError (input.type) naming the argument, before any I/O
    expect_each(items, str, "items", "an item id (text)")
    expect(checkpoint, str, "checkpoint", "signed checkpoint text (str)")
    expect(trust, (Trust, type(None)), "trust", "a Trust (Trust.parse) or None")
    result = scan(ledger_path)
    if result.problems:
        problem = result.problems[0]
        raise CorruptStoreError(f"{problem.reason}; run `stonetrail verify` for every finding", code=problem.code)
    cp = open_checkpoint(checkpoint, trust.operators) if trust else read_unverified_checkpoint(checkpoint)
    payloads = [frame.payload for frame in result.frames]
    tree = _tree_of(payloads, cp, result.origin)
    registry, commitments = read_log(payloads[:cp.tree_size], progress)
    verify_registry_chain([record for _, record in registry], *checkpoint_registry(cp))
    commitments.check(cp)
    heads = commitments.heads
    records = _Decoded(payloads)
    later = _later(payloads, cp.tree_size, heads)
    bundles = {}
    for item in items:
        scope = provenance_scope(records, item, heads.index)
        if not scope.items:
            raise InputError(f"no record among the first {cp.tree_size} of {ledger_path} creates {item!r}"
                             f"{_read_alike(item, heads.index)}", code="item.unknown")
        positions = sorted({*scope.positions, *(p for p, _ in registry)})
        latest = [(name, heads.proof(name)) for name in scope.items]
        claimed = {(kind, key) for kind, key, _, _ in scope_claims(records, scope)[0]}
        bundle = build_bundle(item, checkpoint,
                              [(p, payloads[p], tree.inclusion_proof(p, cp.tree_size)) for p in positions],
                              [(name, head.index, head.proof) for name, head in latest],
                              commitments.identities.proofs(claimed))
        missed = tuple(position for position, named in later if not named.isdisjoint(scope.items))
        bundles[item] = AsOf(bundle=bundle, tree_size=cp.tree_size, file_size=len(payloads), later=missed)
    return bundles


def _later(payloads: Sequence[bytes], tree_size: int, heads: ItemHeads) -> list[tuple[int, frozenset[str]]]:
    """The file's readable records after the checkpoint, each with the items it is a record of as far as the
    checkpoint's records tell (:meth:`ledger.heads.ItemHeads.items_of`: those it names, and for a statement
    those its subject is a record of)."""
    found = []
    for position in range(tree_size, len(payloads)):
        try:
            record = Record.from_bytes(payloads[position])
        except InputError:
            continue  # unreadable: no item's record (an audit names it)
        found.append((position, heads.items_of(record)))
    return found


class _Decoded(Mapping[int, Record]):
    """The file's records by leaf index, decoded when first asked for: a scope reads only the records of its
    items (found in :attr:`ledger.heads.ItemHeads.index`), so the file's records are not all held at once."""

    def __init__(self, payloads: Sequence[bytes]) -> None:
        self._payloads = payloads
        self._cache: dict[int, Record] = {}

    def __getitem__(self, position: int) -> Record:
        if position not in self._cache:
            self._cache[position] = Record.from_bytes(self._payloads[position])  # indexed: it decoded before
        return self._cache[position]

    def __iter__(self) -> Iterator[int]:
        return iter(self._cache)

    def __len__(self) -> int:
        return len(self._cache)


def _tree_of(payloads: list[bytes], cp: Checkpoint, origin: str) -> MerkleTree:
    """The file's tree up to the checkpoint's size, after checking that the checkpoint is of this file."""
    if cp.origin != origin:
        raise VerificationError(f"checkpoint is of {cp.origin!r:.80}, the file of {origin!r:.80}",
                                code="checkpoint.origin_mismatch")
    if cp.tree_size > len(payloads):
        raise VerificationError(f"checkpoint tree size {cp.tree_size} > {len(payloads)} records in the file",
                                code="checkpoint.beyond_log")
    tree = MerkleTree(leaf_hash(p) for p in payloads[:cp.tree_size])
    if tree.root() != cp.root_hash:
        raise VerificationError(f"the file's root at tree size {cp.tree_size} is not the checkpoint's root hash",
                                code="checkpoint.root_mismatch")
    return tree
