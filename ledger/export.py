"""Export proof bundles from a ledger file: the I/O side of :mod:`ledger.bundle` (which never touches a file).

:func:`export_bundles` reads the file once (without locking), checks that the given signed checkpoint is of this
file — its origin, its tree size within the file, the file's root at that size equal to its root hash, its
registry and heads lines naming the file's registry chain and items' latest records — finds each item's scope
among the records below the tree size (:func:`ledger.provenance.provenance_scope`, the same function the
verifier uses), and builds each bundle with RFC 9162 inclusion proofs at the checkpoint's tree size and the
item-head proofs (:mod:`ledger.heads`). The exporter vouches for nothing: the bundle is worth what
:func:`ledger.bundle.check_bundle` says, under the verifier's own pinned keys. O(n) in the file: every record
below the tree size is decoded once, since the item-head tree names every item, and only the scopes' records are
kept.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

from ._ledger import read_log
from .bundle import build_bundle
from .checkpoint import Checkpoint, open_checkpoint, read_unverified_checkpoint
from .errors import CorruptStoreError, InputError, VerificationError
from .merkle import MerkleTree, leaf_hash
from .provenance import provenance_scope, scope_claims
from .record import Record
from .registry import checkpoint_registry, verify_registry_chain
from .store import scan
from .trust import Trust

__all__ = ["export_bundle", "export_bundles"]


def export_bundle(ledger_path: str | Path, item: str, checkpoint: str, *, trust: Trust | None = None) -> bytes:
    """The proof bundle of ``item`` from the ledger file at ``ledger_path`` under the signed ``checkpoint``
    note. As :func:`export_bundles` for one item."""
    return export_bundles(ledger_path, [item], checkpoint, trust=trust)[item]


def export_bundles(ledger_path: str | Path, items: Sequence[str], checkpoint: str, *,
                   trust: Trust | None = None) -> dict[str, bytes]:
    """Proof bundles of several ``items`` of one ledger file, reading it once.

    The checkpoint's signature is verified only with ``trust`` (an exporter may hold no pinned key); its content
    is always checked against the file.

    Raises:
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
    result = scan(ledger_path)
    if result.problems:
        problem = result.problems[0]
        raise CorruptStoreError(f"{problem.reason}; run `stonetrail verify` for every finding", code=problem.code)
    cp = open_checkpoint(checkpoint, trust.operators) if trust else read_unverified_checkpoint(checkpoint)
    payloads = [frame.payload for frame in result.frames]
    tree = _tree_of(payloads, cp, result.origin)
    registry, commitments = read_log(payloads[:cp.tree_size])
    verify_registry_chain([record for _, record in registry], *checkpoint_registry(cp))
    commitments.check(cp)
    heads = commitments.heads
    records = _Decoded(payloads)
    bundles = {}
    for item in items:
        scope = provenance_scope(records, item, heads.index)
        if not scope.items:
            raise InputError(f"no record among the first {cp.tree_size} of {ledger_path} creates {item!r}",
                             code="item.unknown")
        positions = sorted({*scope.positions, *(p for p, _ in registry)})
        latest = [(name, heads.proof(name)) for name in scope.items]
        claimed = {(kind, key) for kind, key, _, _ in scope_claims(records, scope)[0]}
        bundles[item] = build_bundle(item, checkpoint,
                                     [(p, payloads[p], tree.inclusion_proof(p, cp.tree_size)) for p in positions],
                                     [(name, head.index, head.proof) for name, head in latest],
                                     commitments.identities.proofs(claimed))
    return bundles


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
