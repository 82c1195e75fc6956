"""Consistency proofs for a witness, from a ledger: from any earlier size to a signed checkpoint's size.

A witness asks for a proof from the size *it* last cosigned, which the log learns only from its 409 answer, so
proofs are made on demand, for any old size, from one read of the ledger: through its index (C2SP tlog-tiles,
O(log n) reads) when it covers the checkpoint, else one pass over the log (:class:`ledger.reader.LogPass`, read
once and kept). Either way the tree is first checked to be the checkpoint's (its root at the checkpoint's size).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from ..checkpoint import read_unverified_checkpoint
from ..errors import InputError
from ..hashing import Digest
from ..index.reading import IndexedLog, indexed_log, through_index
from ..merkle import MerkleTree
from ..pg.db import is_url
from ..pg.store import as_file
from ..reader import LogPass, check_checkpoint
from ..storage import FrameFile

__all__ = ["ledger_proofs"]


def ledger_proofs(ledger_path: str | Path, note: str) -> Callable[[int], list[Digest]]:
    """old size -> the RFC 9162 §2.1.4.1 consistency proof from it to the checkpoint ``note`` of the ledger at
    ``ledger_path`` (a file or a ``postgresql://`` URL); [] for 0. Thread-safe; the ledger is read at the first
    call that needs it.

    The returned function raises InputError (``witness.no_proof``) for an old size above the checkpoint's, and
    what :func:`ledger.monitor.consistency_proof_for` raises when the ledger is not the checkpoint's.
    """
    cp = read_unverified_checkpoint(note)
    lock, trees = threading.Lock(), list[MerkleTree]()

    def proof(old_size: int) -> list[Digest]:
        if old_size == 0:
            return []
        if not 0 < old_size <= cp.tree_size:
            raise InputError(f"no proof from size {old_size} to {cp.tree_size}: the witness holds a larger tree",
                             code="witness.no_proof")
        if not is_url(ledger_path):
            indexed = through_index(indexed_log(ledger_path, at=cp.tree_size), lambda log: _from_index(log, old_size))
            if indexed is not None:
                return indexed
        with lock:
            if not trees:
                trees.append(_read(ledger_path, note))
        return trees[0].consistency_proof(old_size, cp.tree_size)

    def _from_index(log: IndexedLog, old_size: int) -> list[Digest] | None:
        if log.tree.root_at(cp.tree_size) != cp.root_hash:
            return None  # not this checkpoint's tree: the pass over the log names what differs
        return log.tree.consistency_proof(old_size, cp.tree_size)

    return proof


def _read(ledger_path: str | Path, note: str) -> MerkleTree:
    cp = read_unverified_checkpoint(note)
    with as_file(ledger_path) as local, FrameFile(local) as file:
        log = LogPass(file, at=cp.tree_size)
        if cp.origin == file.origin:
            for _ in log.records():
                pass
        check_checkpoint(log, cp)
        return log.tree
