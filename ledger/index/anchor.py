"""The index's Merkle tree checked against the log before a checkpoint is signed from it: the index is a cache,
never the authority for a signed root (issue 10, item 3; docs/adr/0028-signed-root-anchor.md).

Row checksums catch damage, not someone who rewrites a tile and the nodes above it and computes the checksums
again: the writer would sign a root the log does not give. So before a checkpoint is signed through the index,
its root is computed from what the index cannot forge:

* the *anchor*, the last checkpoint this signer signed through the index (the signed note, kept in the index's
  meta): its signature verifies under the signing key, and the index's subtree hashes covering its tree size
  (RFC 9162 §2.1.1, a compact range) must give its root, so they are the log's (a different leaf below it would
  need a SHA-256 collision) — without an anchor, or with one that does not hold, the range starts empty;
* the records after it, read from the log in one pass from the end of the anchor's last record (found where the
  index says and checked against its leaf hash: the log holds no two records with the same bytes) and hashed.

The root of that range must be the index's root at its size, and the pass must end where the index ends, or the
index is damaged (:class:`~ledger.index.maps.IndexDamaged`: the caller rebuilds it or reads the log). Cost: the
records since the last signing, or one hash pass over the log when there is no anchor.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from ..checkpoint import open_checkpoint
from ..compact import CompactRange, Node
from ..errors import StoneTrailError
from ..hashing import Digest
from ..keys import NoteVerifierKey
from ..merkle import leaf_hash
from ..storage.frames import read_run
from ..storage.framing import FRAME_HEADER, FRAME_STRUCT
from .db import IndexDB, index_path
from .indexed import LedgerIndex, LogFile
from .maps import IndexDamaged

__all__ = ["check_tree", "keep_anchor", "keep_anchor_beside", "leaf_runs"]

_BLOCK = 4 << 20  # bytes read at a time by leaf_runs (a record is at most 1 MiB: a block holds a whole one)


def check_tree(index: LedgerIndex, signer: NoteVerifierKey) -> None:
    """Check that ``index``'s tree (its tiles) is the log's, from the anchor ``signer`` signed (see the module
    docstring). Raises IndexDamaged if it is not, or if the log's frames are not where the index says."""
    covered = _anchored(index, signer)
    db, log = index.files()
    start = len(log.header)
    if covered.end:
        index.payload(covered.end - 1)  # the anchor's last record, where the index says: checked against its leaf
        offset, length = db.frame(covered.end - 1)
        start = offset + length
    for hashes in leaf_runs(log, start, index.end, covered.end):
        covered.append_all(hashes)
    if covered.end != index.size or covered.root() != index.tree.root_at(index.size):
        raise IndexDamaged(f"{db.path}: its Merkle tree is not the one the log's records give")


def leaf_runs(log: LogFile, start: int, end: int, first: int) -> Iterator[list[Digest]]:
    """The leaf hashes of the records whose frames fill the log's bytes [``start``, ``end``), record ``first``
    first, a read of up to :data:`_BLOCK` bytes at a time (each frame checked: magic, length, CRC,
    :func:`ledger.storage.frames.read_run`). Raises IndexDamaged if those bytes are not whole valid frames (the
    index says they are)."""
    while start < end:
        block = log.read(start, min(end - start, _BLOCK))
        whole, unpack = 0, FRAME_STRUCT.unpack_from
        while len(block) - whole >= FRAME_HEADER and whole + FRAME_HEADER + unpack(block, whole)[1] <= len(block):
            whole += FRAME_HEADER + unpack(block, whole)[1]
        frames = read_run(block[:whole], first, start) if whole else None
        if frames is None:
            raise IndexDamaged(f"{log.path}: no whole record at offset {start}, where the index has record {first}")
        yield [leaf_hash(frame.payload) for frame in frames]
        start, first = start + whole, first + len(frames)


def _anchored(index: LedgerIndex, signer: NoteVerifierKey) -> CompactRange:
    """The compact range of the leaves below the anchor's tree size, from the index's tiles, if the anchor's
    signature verifies under ``signer`` and those subtrees give its root; else the empty range."""
    note = index.db.meta("anchor")
    if not isinstance(note, str):
        return CompactRange()
    try:
        cp = open_checkpoint(note, [signer], origin=index.origin)
        if not 0 < cp.tree_size <= index.size:
            return CompactRange()
        nodes, begin = [], 0
        for level in reversed(range(cp.tree_size.bit_length())):
            if cp.tree_size >> level & 1:
                nodes.append(Node(level, begin >> level, index.tree.node(level, begin >> level)))
                begin += 1 << level
        covered = CompactRange.of(0, cp.tree_size, nodes)
    except StoneTrailError:  # another key's note, or tiles that do not give a node: no anchor
        return CompactRange()
    return covered if covered.root() == cp.root_hash else CompactRange()


def keep_anchor(index: LedgerIndex, note: str) -> None:
    """Keep ``note``, a checkpoint just signed from ``index`` (checked by :func:`check_tree`), as its anchor."""
    with index.db.transaction():
        index.db.set_meta(anchor=note)


def keep_anchor_beside(ledger_path: str | Path, note: str) -> None:
    """:func:`keep_anchor` for a signer that read the index without writing it (``stonetrail checkpoint``): the
    index beside the ledger at ``ledger_path`` is opened for this one write, if it can be; otherwise the next
    signing hashes the log from its first record, which is slower, never wrong."""
    with contextlib.suppress(StoneTrailError, sqlite3.Error, OSError):
        db = IndexDB.open(index_path(Path(ledger_path)), create=False)
        try:
            with db.transaction():
                db.set_meta(anchor=note)
        finally:
            db.close()
