"""An audit's work cut into chunks: what a worker process does with a run of records, with no state but the file.

The audit (:mod:`ledger.audit`) cuts a ledger file into runs of consecutive records (:func:`plan`); for each, a
worker (:func:`check_chunk`, submitted to any :class:`concurrent.futures.Executor`) reads its frames, hashes
them into a compact range (:class:`~ledger.compact.CompactRange`, RFC 9162 subtree hashes) and checks their
signatures; it returns what it found (:class:`ChunkFacts`: a few subtree hashes and the findings) and, when the
main process needs the records, their bytes. The main process merges the ranges in log order into the log's root
and applies the custody rules in log order to those bytes, taking the signature verdicts from the chunks: every
fact of a record is of the bytes one worker read. Below the ``custody`` level the main process decodes no
record, so the worker decodes each one strictly and names the unreadable ones; from ``custody`` on the main
process decodes every record itself, so the worker reads only what a signature check needs (the envelope:
:func:`ledger.record.signed_parts`). The facts of a chunk are the same whatever process computes them, so the
findings are the same for any number of workers and any chunk size (tests/test_parallel_audit.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .compact import CompactRange, Node
from .engines import engine_context
from .errors import CorruptStoreError, InputError
from .findings import Finding
from .merkle import leaf_hash
from .record import Record, signed_parts
from .sig_findings import message_findings
from .storage import FrameFile
from .storage.frames import read_run
from .storage.framing import Frame

__all__ = ["LEVELS", "Chunk", "ChunkFacts", "check_chunk", "chunk_frames", "engine_context", "plan"]

#: Bytes of frames a chunk holds at most (a record alone may be larger: up to 1 MiB).
CHUNK_BYTES = 4 << 20

#: The audit levels, each including the ones before it (docs/audit.md "Levels").
LEVELS = ("structure", "hashes", "signatures", "custody", "policy")


@dataclass(frozen=True, slots=True)
class Chunk:
    """Records [first, first + count) of the ledger file at ``path``; record ``first``'s frame starts at byte
    ``start``, and the last one's ends before byte ``end``."""

    path: str
    first: int
    start: int
    count: int
    end: int


@dataclass(frozen=True, slots=True)
class ChunkFacts:
    """What a worker found in a :class:`Chunk`: the compact range of its leaf hashes (``nodes``, left to right),
    the records that fail strict decoding (``unreadable``: their ``record.*``/``input.*`` finding) and the
    signatures that do not verify (``signatures``: ``sig.*`` findings, in position order; empty below the
    ``signatures`` level). ``decoded`` False: the records were not decoded (``unreadable`` is empty, and the
    verdicts of a record that does not decode mean nothing): the caller decodes them. ``payloads``: the
    records' bytes, in order, when the caller asked for them: those the hashes and verdicts are of (the caller
    applies these, never bytes it reads again, so that every fact of a record is of the same bytes)."""

    first: int
    count: int
    nodes: tuple[Node, ...]
    unreadable: tuple[Finding, ...]
    signatures: tuple[Finding, ...]
    decoded: bool = True
    payloads: tuple[bytes, ...] = ()

    def range(self) -> CompactRange:
        """The chunk's leaves as a :class:`~ledger.compact.CompactRange` (to merge in log order)."""
        return CompactRange.of(self.first, self.first + self.count, self.nodes)


def plan(frames: Iterator[Frame], path: str | Path, records: int, cuts: frozenset[int] = frozenset(), *,
         share: tuple[int, int] = (0, 1)) -> Iterator[Chunk]:
    """Cut the frames of a file read front to back into chunks of at most ``records`` consecutive records (a
    damaged span ends one), also cut before each position in ``cuts`` (a checkpoint's tree size: its root is
    then the merged ranges' root there), and before a record that would take a chunk past :data:`CHUNK_BYTES`
    (a worker holds a chunk's bytes, and the main process the bytes of the chunks in flight: memory stays bounded
    whatever the records' sizes). The first chunks are smaller (an eighth of ``records``, then a quarter, a
    half), so that the process applying them in order starts early instead of waiting for a whole chunk.
    ``share`` (bytes to read, workers): chunks small enough that each worker gets several, however few the
    records (a resumed audit of the last 1 %) — at most an eighth of the bytes a worker would read, at least
    64 KiB. Raises InputError (``input.value``) if ``records`` < 1."""
    if type(records) is not int or records < 1:
        raise InputError(f"chunk size: got {records!r}, want a whole number of records >= 1", code="input.value")
    first = start = count = end = 0
    limit = max(1, records >> 3)
    cap = min(CHUNK_BYTES, max(64 << 10, share[0] // (8 * max(1, share[1])))) if share[0] else CHUNK_BYTES
    for frame in frames:
        if count and (count == limit or frame.index in cuts or frame.index != first + count  # a damaged span
                      or frame.end - start > cap):
            yield Chunk(str(path), first, start, count, end)
            count, limit = 0, min(records, limit * 2)
        if not count:
            first, start = frame.index, frame.offset
        count, end = count + 1, frame.end
    if count:
        yield Chunk(str(path), first, start, count, end)


def chunk_frames(chunk: Chunk) -> Iterator[Frame]:
    """The frames of ``chunk``, read again from its file: its bytes [start, end) in one read
    (:func:`ledger.storage.frames.read_run`: the survey that cut it found them to be records). Raises
    CorruptStoreError (``store.changed``) if they are no longer there (the file changed during the audit),
    StorageError for I/O."""
    with FrameFile(chunk.path, resume=(chunk.first, chunk.start)) as file:
        frames = read_run(file.read(chunk.start, chunk.end - chunk.start), chunk.first, chunk.start)
    if frames is None or len(frames) != chunk.count:
        raise _changed(chunk)
    return iter(frames)


def _changed(chunk: Chunk) -> CorruptStoreError:
    return CorruptStoreError(f"{chunk.path}: records {chunk.first}..{chunk.first + chunk.count - 1} are no longer "
                             "where they were: the file changed during the audit", code="store.changed")


def check_chunk(chunk: Chunk, *, level: str, engine: str | None = None, payloads: bool = False,
                judged: bool = True) -> ChunkFacts:
    """Read and hash ``chunk``'s records and, from level ``signatures``, check their signatures with the signature
    ``engine`` (:func:`ledger.keys.signature_engine`; None: the default) unless none can be ``judged`` (no key is
    trusted). Below level ``custody`` each record is decoded strictly; from it on, only its envelope is read (the
    facts are then not ``decoded``). ``payloads``: return the records' bytes too. Runs in any process. Raises as
    :func:`chunk_frames`."""
    piece, unreadable, signatures, kept, leaves = CompactRange(chunk.first), [], [], [], []
    rank = LEVELS.index(level)
    check, decode = judged and rank >= LEVELS.index("signatures"), rank < LEVELS.index("custody")
    with engine_context(engine):
        for frame in chunk_frames(chunk):
            leaves.append(leaf_hash(frame.payload))
            if payloads:
                kept.append(frame.payload)
            try:
                if decode:
                    record = Record.from_bytes(frame.payload)
                    parts = (record.signed_message(), record.signatures)
                else:
                    parts = signed_parts(frame.payload)
            except InputError as exc:
                if decode:
                    unreadable.append(Finding(code=exc.code, position=frame.index, item=None, reason=str(exc)))
                continue
            if check:
                signatures += message_findings(parts[1], parts[0], frame.index)
    piece.append_all(leaves)
    return ChunkFacts(chunk.first, chunk.count, piece.nodes, tuple(unreadable), tuple(signatures), decode,
                      tuple(kept))
