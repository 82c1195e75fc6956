"""An audit's work cut into chunks: what a worker process does with a run of records, with no state but the file.

The audit (:mod:`ledger.audit`) cuts a ledger file into runs of consecutive records (:func:`plan`); for each, a
worker (:func:`check_chunk`, submitted to any :class:`concurrent.futures.Executor`) reads its frames, hashes
them into a compact range (:class:`~ledger.compact.CompactRange`, RFC 9162 subtree hashes), decodes each record
strictly and checks its signatures; it returns only what it found (:class:`ChunkFacts`: a few subtree hashes and
the findings), never the records. The main process merges the ranges in log order into the log's root and
applies the custody rules in log order, taking the signature verdicts from the chunks. The facts of a chunk are
the same whatever process computes them, so the findings are the same for any number of workers and any chunk
size (tests/test_parallel_audit.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .compact import CompactRange, Node
from .custody import signature_findings
from .engines import engine_context
from .errors import CorruptStoreError, InputError
from .findings import Finding
from .merkle import leaf_hash
from .record import Record
from .storage import FrameFile
from .storage.framing import Frame

__all__ = ["LEVELS", "Chunk", "ChunkFacts", "check_chunk", "chunk_frames", "engine_context", "plan"]

#: The audit levels, each including the ones before it (docs/audit.md "Levels").
LEVELS = ("structure", "hashes", "signatures", "custody", "policy")


@dataclass(frozen=True, slots=True)
class Chunk:
    """Records [first, first + count) of the ledger file at ``path``; record ``first``'s frame starts at byte
    ``start``."""

    path: str
    first: int
    start: int
    count: int


@dataclass(frozen=True, slots=True)
class ChunkFacts:
    """What a worker found in a :class:`Chunk`: the compact range of its leaf hashes (``nodes``, left to right),
    the records that fail strict decoding (``unreadable``: their ``record.*``/``input.*`` finding) and the
    signatures that do not verify (``signatures``: ``sig.*`` findings, in position order; empty below the
    ``signatures`` level)."""

    first: int
    count: int
    nodes: tuple[Node, ...]
    unreadable: tuple[Finding, ...]
    signatures: tuple[Finding, ...]

    def range(self) -> CompactRange:
        """The chunk's leaves as a :class:`~ledger.compact.CompactRange` (to merge in log order)."""
        return CompactRange.of(self.first, self.first + self.count, self.nodes)


def plan(frames: Iterator[Frame], path: str | Path, records: int, cuts: frozenset[int] = frozenset()
         ) -> Iterator[Chunk]:
    """Cut the frames of a file read front to back into chunks of at most ``records`` consecutive records (a
    damaged span ends one), also cut before each position in ``cuts`` (a checkpoint's tree size: its root is
    then the merged ranges' root there).
    Raises InputError (``input.value``) if ``records`` < 1."""
    if type(records) is not int or records < 1:
        raise InputError(f"chunk size: got {records!r}, want a whole number of records >= 1", code="input.value")
    first = start = count = 0
    for frame in frames:
        if count and (count == records or frame.index in cuts or frame.index != first + count):  # a damaged span
            yield Chunk(str(path), first, start, count)
            count = 0
        if not count:
            first, start = frame.index, frame.offset
        count += 1
    if count:
        yield Chunk(str(path), first, start, count)


def chunk_frames(chunk: Chunk) -> Iterator[Frame]:
    """The frames of ``chunk``, read again from its file. Raises CorruptStoreError (``store.changed``) if they
    are no longer there (the file changed during the audit), StorageError for I/O."""
    seen = chunk.first
    with FrameFile(chunk.path, resume=(chunk.first, chunk.start)) as file:
        for frame in file.frames():
            if frame.index >= chunk.first + chunk.count:
                break
            if frame.index != seen:
                break
            seen += 1
            yield frame
    if seen != chunk.first + chunk.count:
        raise CorruptStoreError(f"{chunk.path}: records {chunk.first}..{chunk.first + chunk.count - 1} are no "
                                "longer where they were: the file changed during the audit", code="store.changed")


def check_chunk(chunk: Chunk, *, level: str, engine: str | None = None) -> ChunkFacts:
    """Read, hash, decode and (from level ``signatures``) check the signatures of ``chunk``'s records, with the
    signature ``engine`` (:func:`ledger.keys.signature_engine`; None: the default). Runs in any process.
    Raises as :func:`chunk_frames`."""
    piece, unreadable, signatures = CompactRange(chunk.first), [], []
    check = LEVELS.index(level) >= LEVELS.index("signatures")
    with engine_context(engine):
        for frame in chunk_frames(chunk):
            piece.append(leaf_hash(frame.payload))
            try:
                record = Record.from_bytes(frame.payload)
            except InputError as exc:
                unreadable.append(Finding(code=exc.code, position=frame.index, item=None, reason=str(exc)))
                continue
            if check:
                signatures += signature_findings(record, frame.index)
    return ChunkFacts(chunk.first, chunk.count, piece.nodes, tuple(unreadable), tuple(signatures))
