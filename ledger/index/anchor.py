"""The index's Merkle tree checked against the log before a checkpoint is signed from it: the index is a cache,
never the authority for a signed root, registry line or heads line (issue 10, item 3;
docs/adr/0028-signed-root-anchor.md).

Row checksums catch damage, not someone who rewrites a tile and the nodes above it and computes the checksums
again: the writer would sign a root the log does not give. So before a checkpoint is signed through the index,
its root is computed from what the index cannot forge:

* the *anchor*: a signed note the signer left in the index's meta when it last signed through it, stating the
  log's origin, the tree size N, the byte offset E where record N - 1 ends, the root at N, the SHA-256 of the
  log's bytes [0, E), the registry line at N (``stonetrail-registry <count> <head>``: how many registry-kind
  records lie below N and the last one's hash) and the heads line at N (``stonetrail-heads <count> <root>``). Its
  text opens with :data:`ANCHOR_TAG` (never a checkpoint's: a checkpoint's second line is a tree size); its
  signature must verify under the key about to sign, the log's bytes [0, E) must still hash as it says (not
  another copy of the ledger, nor one restored from an older backup and appended to), and the index's subtree
  hashes covering [0, N) must give its root — a different leaf below N would need a SHA-256 collision (RFC 9162
  §2.1.1). Without an anchor that holds, N and E are 0;
* the records after it: the log's frames from E to the index's end, read, hashed and decoded.

The root of that compact range must be the index's root at its size, the index's registry records must be the
anchor's below N (count and last hash: the records themselves are read from the log and hash-linked, so a chain
of that length ending at that hash is the log's) followed by exactly the registry-kind records after N, and its
item-head tree must be the anchor's with the records after N added (:mod:`ledger.index.heads_check`); otherwise
the index is damaged (:class:`~ledger.index.maps.IndexDamaged`: the caller rebuilds it or reads the log). So
neither the root, the registry line nor the heads line of a checkpoint signed through the index can be other
than the log's. (The identities line still comes from the index's rows: docs/adr/0028-signed-root-anchor.md.)
Cost: a SHA-256 pass over the log's bytes (C speed: ~0.3 s for 500 MB), a decode of the records since the last
signing and a walk of the item-head tree; without an anchor, a decode of every record.
"""

from __future__ import annotations

import contextlib
import hashlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from ..checkpoint import parse_counted_line
from ..compact import CompactRange, Node
from ..errors import StoneTrailError
from ..events import REGISTRY_KINDS
from ..hashing import Digest
from ..heads import HEADS_EXTENSION
from ..keys import NoteVerifierKey
from ..merkle import EMPTY_ROOT
from ..note import open_note
from ..record import Record
from ..registry import format_registry_extension, parse_registry_extension
from ..storage.frames import read_run
from ..storage.framing import FRAME_HEADER, FRAME_STRUCT
from .db import IndexDB, index_path
from .heads_check import NewRecords, check_heads
from .indexed import LedgerIndex, LogFile, Trees
from .maps import IndexDamaged

__all__ = ["ANCHOR_TAG", "Checked", "anchor_text", "check_tree", "keep_anchor", "keep_anchor_beside", "leaf_runs"]

#: The first line of an anchor's text (domain separation: no other signed note opens so).
ANCHOR_TAG = "stonetrail/v1/index-anchor"
_BLOCK = 4 << 20  # bytes read at a time by leaf_runs (a record is at most 1 MiB: a block holds a whole one)
_PREFIX_READ = 16 << 20  # bytes read at a time to hash the log's bytes below an anchor


class Checked(NamedTuple):
    """What :func:`check_tree` found the index to hold, checked against the log: the SHA-256 of the log's bytes up
    to the index's end, the leaves of its two trees (the item heads' checked) and its root (computed from the
    log: never read from the tiles again, which can change after the check)."""

    prefix: bytes
    trees: Trees
    root: Digest


def anchor_text(index: LedgerIndex, prefix: bytes, root: Digest, heads: str) -> str:
    """The text of ``index``'s anchor as it is now (to sign: :func:`keep_anchor`): tag, origin, tree size, the
    byte offset where its last record ends, ``root`` (the one signed), ``prefix`` (the SHA-256 of the log's bytes
    up to that offset; both in standard base64), its registry line and ``heads``, its heads line (the one signed),
    one a line."""
    registry = index.registry
    line = format_registry_extension(len(registry), registry[-1][1].record_hash if registry else None)
    return (f"{ANCHOR_TAG}\n{index.origin}\n{index.size}\n{index.end}\n{root.b64()}\n"
            f"{Digest(prefix).b64()}\n{line}\n{heads}\n")


def check_tree(index: LedgerIndex, signer: NoteVerifierKey, progress: Callable[[int, int], None] | None = None
               ) -> Checked:
    """Check that ``index``'s tree (its tiles), its registry records and its item heads are the log's, from the
    anchor ``signer`` signed (see the module docstring), and return them (:class:`Checked`). ``progress(records
    read, index size)`` as the records after the anchor are read. Raises IndexDamaged if they are not, or if the
    log's frames are not where the index says."""
    covered, start, digest, signed, heads = _anchored(index, signer)
    anchored, found, new = covered.end, list[int](), NewRecords()
    db, log = index.files()
    for hashes in leaf_runs(log, start, index.end, anchored, digest, registry=found, records=new.add):
        covered.append_all(hashes)
        if progress is not None:
            progress(covered.end, index.size)
    root = covered.root()
    if covered.end != index.size or root != index.tree.root_at(index.size):
        raise IndexDamaged(f"{db.path}: its Merkle tree is not the one the log's records give")
    below = [record.record_hash for p, record in index.registry if p < anchored]
    if (len(below), below[-1] if below else None) != signed or [p for p, _ in index.registry if p >= anchored] != found:
        raise IndexDamaged(f"{db.path}: its registry records are not the registry-kind records of the log")
    trees = check_heads(index, new, (anchored, *heads), root)
    return Checked(digest.digest(), trees, root)


def leaf_runs(log: LogFile, start: int, end: int, first: int, digest: Any = None, *, registry: list[int],
              records: Callable[[int, Record], None]) -> Iterator[list[Digest]]:
    """The leaf hashes of the records whose frames fill the log's bytes [``start``, ``end``), record ``first``
    first, a read of up to :data:`_BLOCK` bytes at a time (each frame checked: magic, length, CRC,
    :func:`ledger.storage.frames.read_run`), ``digest`` (a SHA-256 object) updated with those bytes, each record
    decoded and given to ``records(position, record)``, and the position of each registry-kind record appended to
    ``registry``. Raises IndexDamaged if they are not whole valid frames of records that decode (the index says
    they are)."""
    while start < end:
        block = log.read(start, min(end - start, _BLOCK))
        whole, unpack = 0, FRAME_STRUCT.unpack_from
        while len(block) - whole >= FRAME_HEADER and whole + FRAME_HEADER + unpack(block, whole)[1] <= len(block):
            whole += FRAME_HEADER + unpack(block, whole)[1]
        frames = read_run(block[:whole], first, start) if whole else None
        if frames is None:
            raise IndexDamaged(f"{log.path}: no whole record at offset {start}, where the index has record {first}")
        if digest is not None:
            digest.update(block[:whole])
        hashes = []
        for frame in frames:
            try:
                record = Record.from_bytes(frame.payload)
            except StoneTrailError as exc:
                raise IndexDamaged(f"{log.path}: record {frame.index}, which the index holds, does not decode "
                                   f"({exc})") from exc
            if record.body.kind in REGISTRY_KINDS:
                registry.append(frame.index)
            records(frame.index, record)
            hashes.append(record.record_hash)  # = leaf_hash(frame.payload)
        yield hashes
        start, first = start + whole, first + len(frames)


def _anchored(index: LedgerIndex, signer: NoteVerifierKey
              ) -> tuple[CompactRange, int, Any, tuple[int, Digest | None], tuple[int, Digest]]:
    """The compact range of the leaves below the anchor's tree size N, from the index's tiles, the byte offset E
    where record N - 1 ends, the SHA-256 object of the log's bytes [0, E), the registry line at N (count, last
    hash) and the heads line at N (item count, root), if the anchor verifies under ``signer``, is of this log (its
    bytes [0, E) hash as it says) and those subtrees give its root; else the empty range, the offset of the log's
    first record, the SHA-256 object of the log's header, the empty registry and the empty item-head tree."""
    log = index.files()[1]
    empty = CompactRange(), len(log.header), hashlib.sha256(log.header), (0, None), (0, EMPTY_ROOT)
    note = index.db.meta("anchor")
    if not isinstance(note, str):
        return empty
    try:
        text, _ = open_note(note, [signer])
        tag, origin, size_text, end_text, root_text, prefix_text, registry_text, heads_text, last = text.split("\n")
        size, end = int(size_text), int(end_text)
        if (tag, origin, last, size_text, end_text) != (ANCHOR_TAG, index.origin, "", str(size), str(end)) \
                or not 0 < size <= index.size or not empty[1] < end <= index.end:
            return empty
        digest = _digest(log, end)
        if digest.digest() != Digest.from_b64(prefix_text):
            return empty
        nodes, begin = [], 0
        for level in reversed(range(size.bit_length())):
            if size >> level & 1:
                nodes.append(Node(level, begin >> level, index.tree.node(level, begin >> level)))
                begin += 1 << level
        covered = CompactRange.of(0, size, nodes)
        if covered.root() != Digest.from_b64(root_text):
            return empty
        registry = parse_registry_extension(registry_text)
        heads = parse_counted_line(heads_text, HEADS_EXTENSION)
    except (StoneTrailError, ValueError):  # another signer's note, not an anchor (or one of before the registry
        return empty  # and heads lines), or tiles that do not give a node
    return covered, end, digest, registry, heads


def _digest(log: LogFile, stop: int) -> Any:
    """The SHA-256 object of the log's bytes [0, ``stop``), read :data:`_PREFIX_READ` bytes at a time."""
    digest, start = hashlib.sha256(), 0
    while start < stop:
        part = log.read(start, min(stop - start, _PREFIX_READ))
        if not part:
            raise IndexDamaged(f"{log.path} ends at {start}, before {stop}")
        digest.update(part)
        start += len(part)
    return digest


def keep_anchor(index: LedgerIndex, sign: Callable[[str], str], root: Digest, heads: str,
                prefix: bytes | None = None) -> None:
    """Keep the anchor of ``index`` as it is now, signed by ``sign`` (text -> signed note), in its meta: call it
    right after signing a checkpoint of it with ``root`` and the heads line ``heads``, which :func:`check_tree`
    checked (``prefix``: what it returned; None: the log's bytes are hashed here, after a rebuild from the log)."""
    note = sign(anchor_text(index, _digest(index.files()[1], index.end).digest() if prefix is None else prefix,
                            root, heads))
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
