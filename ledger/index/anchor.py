"""The index's Merkle tree checked against the log before a checkpoint is signed from it: the index is a cache,
never the authority for a signed root (issue 10, item 3; docs/adr/0028-signed-root-anchor.md).

Row checksums catch damage, not someone who rewrites a tile and the nodes above it and computes the checksums
again: the writer would sign a root the log does not give. So before a checkpoint is signed through the index,
its root is computed from what the index cannot forge:

* the *anchor*: a signed note the signer left in the index's meta when it last signed through it, stating the
  log's origin, the tree size N, the byte offset where record N - 1 ends and the root at N. Its text opens with
  :data:`ANCHOR_TAG` (never a checkpoint's: a checkpoint's second line is a tree size); its signature must verify
  under the key about to sign, and the index's subtree hashes covering [0, N) must give its root — a different
  leaf below N would need a SHA-256 collision (RFC 9162 §2.1.1). Without an anchor that holds, N is 0;
* the records after it: the log's frames from the anchor's byte offset to the index's end, read and hashed.

The root of that compact range must be the index's root at its size, or the index is damaged
(:class:`~ledger.index.maps.IndexDamaged`: the caller rebuilds it or reads the log). Cost: the records since the
last signing, or one hash pass over the log without an anchor.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

from ..compact import CompactRange, Node
from ..errors import StoneTrailError
from ..hashing import Digest
from ..keys import NoteVerifierKey
from ..merkle import leaf_hash
from ..note import open_note
from ..storage.frames import read_run
from ..storage.framing import FRAME_HEADER, FRAME_STRUCT
from .db import IndexDB, index_path
from .indexed import LedgerIndex, LogFile
from .maps import IndexDamaged

__all__ = ["ANCHOR_TAG", "anchor_text", "check_tree", "keep_anchor", "keep_anchor_beside", "leaf_runs"]

#: The first line of an anchor's text (domain separation: no other signed note opens so).
ANCHOR_TAG = "stonetrail/v1/index-anchor"
_BLOCK = 4 << 20  # bytes read at a time by leaf_runs (a record is at most 1 MiB: a block holds a whole one)


def anchor_text(index: LedgerIndex) -> str:
    """The text of ``index``'s anchor as it is now (to sign: :func:`keep_anchor`): tag, origin, tree size, the
    byte offset where its last record ends, root (standard base64), one a line."""
    return f"{ANCHOR_TAG}\n{index.origin}\n{index.size}\n{index.end}\n{index.tree.root_at(index.size).b64()}\n"


def check_tree(index: LedgerIndex, signer: NoteVerifierKey) -> None:
    """Check that ``index``'s tree (its tiles) is the log's, from the anchor ``signer`` signed (see the module
    docstring). Raises IndexDamaged if it is not, or if the log's frames are not where the index says."""
    covered, start = _anchored(index, signer)
    db, log = index.files()
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


def _anchored(index: LedgerIndex, signer: NoteVerifierKey) -> tuple[CompactRange, int]:
    """The compact range of the leaves below the anchor's tree size N, from the index's tiles, and the byte offset
    where record N - 1 ends, if the anchor verifies under ``signer`` and is of this log and those subtrees give
    its root; else the empty range and the offset of the log's first record."""
    empty = CompactRange(), len(index.files()[1].header)
    note = index.db.meta("anchor")
    if not isinstance(note, str):
        return empty
    try:
        text, _ = open_note(note, [signer])
        tag, origin, size_text, end_text, root_text, last = text.split("\n")
        size, end = int(size_text), int(end_text)
        if (tag, origin, last, size_text, end_text) != (ANCHOR_TAG, index.origin, "", str(size), str(end)) \
                or not 0 < size <= index.size or not empty[1] < end <= index.end:
            return empty
        nodes, begin = [], 0
        for level in reversed(range(size.bit_length())):
            if size >> level & 1:
                nodes.append(Node(level, begin >> level, index.tree.node(level, begin >> level)))
                begin += 1 << level
        covered = CompactRange.of(0, size, nodes)
        if covered.root() != Digest.from_b64(root_text):
            return empty
    except (StoneTrailError, ValueError):  # another signer's note, not an anchor, or tiles that do not give a node
        return empty
    return covered, end


def keep_anchor(index: LedgerIndex, sign: Callable[[str], str]) -> None:
    """Keep the anchor of ``index`` as it is now, signed by ``sign`` (text -> signed note), in its meta: call it
    right after signing a checkpoint of it, checked by :func:`check_tree`."""
    note = sign(anchor_text(index))
    with index.db.transaction():
        index.db.set_meta(anchor=note)


def keep_anchor_beside(ledger_path: str | Path, note: str) -> None:
    """Keep the signed anchor ``note`` (of :func:`anchor_text`) for a signer that read the index without writing
    it (``stonetrail checkpoint``): the index beside the ledger at ``ledger_path`` is opened for this one write, if
    it can be; otherwise the next signing hashes the log from its first record, which is slower, never wrong."""
    with contextlib.suppress(StoneTrailError, sqlite3.Error, OSError):
        db = IndexDB.open(index_path(Path(ledger_path)), create=False)
        try:
            with db.transaction():
                db.set_meta(anchor=note)
        finally:
            db.close()
