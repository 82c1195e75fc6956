"""The log-only read side: what a ledger file's bytes say, read without an index (DESIGN.md §6).

:func:`read_log` decodes every record once and keeps what a checkpoint commits to; :func:`checkpoint_file` signs
a checkpoint of a file as it is. Audit, export, consistency and checkpoint signing read a log through here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from .checkpoint import Checkpoint, sign_checkpoint
from .commitments import Commitments
from .errors import CorruptStoreError, InputError
from .events import REGISTRY_KINDS
from .keys import PrivateKey
from .merkle import MerkleTree, leaf_hash
from .record import Record
from .registry import format_registry_extension
from .signer import check_checkpoint_signer, key_owners
from .storage import scan
from .trust import Trust

__all__ = ["checkpoint_file", "read_log"]


def checkpoint_file(path: str | Path, key: PrivateKey, name: str | None = None, *, trust: Trust | None = None,
                    progress: Callable[[int, int], None] | None = None) -> str:
    """Sign a C2SP checkpoint of the ledger file at ``path`` as it is now (reads without locking).

    Before signing, ``key`` is refused if the file's registry gives it to a party or the authority, and with
    ``trust`` unless (``name``, ``key``) is a pinned operator key (:func:`ledger.signer.check_checkpoint_signer`).

    The operator vouches for the log's bytes, not for its records' validity (that is an audit's job); but a
    file with damaged framing is refused, since its tree would be ambiguous.

    The registry and heads lines (:meth:`Ledger.checkpoint`) are computed from the file's readable records
    (each decoded strictly; an unreadable one is skipped, as an audit does), without checking their rules.
    ``progress``, if given, is called with (records read, records in all) as they are read.

    Returns:
        The signed note text (origin, tree size, base64 root hash, registry and heads lines; signature line by
        ``name``, default origin).
    Raises:
        CorruptStoreError: the file has a torn tail or a damaged frame. StorageError: I/O failure.
        InputError: ``checkpoint.party_key``, ``trust.not_operator`` (the key is not the operator's).
    """
    result = scan(path)
    if result.problems:
        problem = result.problems[0]
        raise CorruptStoreError(f"{problem.reason}; run `stonetrail verify` for every finding", code=problem.code)
    payloads = [frame.payload for frame in result.frames]
    tree = MerkleTree(leaf_hash(payload) for payload in payloads)
    registry, commitments = read_log(payloads, progress)
    check_checkpoint_signer(result.origin, name or result.origin, key.public_key,
                            owners=key_owners(record for _, record in registry), trust=trust)
    size, head = len(registry), registry[-1][1].record_hash if registry else None
    cp = Checkpoint(origin=result.origin, tree_size=tree.size, root_hash=tree.root(),
                    extensions=(format_registry_extension(size, head), *commitments.extensions()))
    return sign_checkpoint(cp, name or result.origin, key)


def read_log(payloads: Sequence[bytes], progress: Callable[[int, int], None] | None = None
             ) -> tuple[list[tuple[int, Record]], Commitments]:
    """Decode every payload strictly, once, keeping only what a checkpoint commits to: the registry-kind records
    (leaf index, record) and the :class:`~ledger.commitments.Commitments` (item heads, identities) of all
    records. An unreadable payload is an
    audit's finding; it is no registry record and no item's record. The operator vouches for bytes, not
    validity: no rule is applied, so for a ledger written through :class:`Ledger` these give the lines
    :meth:`Ledger.checkpoint` writes. ``progress(done, total)`` is called as payloads are read."""
    registry, heads = [], Commitments()
    for position, payload in enumerate(payloads):
        if progress is not None and position % 4096 == 0:
            progress(position, len(payloads))
        try:
            record = Record.from_bytes(payload)
        except InputError:
            continue
        if record.body.kind in REGISTRY_KINDS:
            registry.append((position, record))
        heads.add(position, record)
    if progress is not None:
        progress(len(payloads), len(payloads))
    return registry, heads
