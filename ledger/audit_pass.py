"""One streaming audit pass over a ledger file, in one process or with its chunks checked by worker processes.

No record is held: records are decoded, applied and dropped (the facts the custody rules need of every record
later, its signers, time, body hash and items, go to a temporary database: :mod:`ledger.spill`, docs/audit.md);
the Merkle tree is a compact range (O(log n) hashes, :mod:`ledger.compact`); the roots and lines the given
checkpoints need are taken as the pass goes by their tree sizes. With an executor, each chunk's decoding,
hashing and signature checks run in a worker (:func:`ledger.chunks.check_chunk`) while this process applies the
custody rules in log order with the workers' signature verdicts: the findings are those of the one-process pass,
for any number of workers and any chunk size.
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field

from .checkpoint import Checkpoint
from .chunks import LEVELS, Chunk, ChunkFacts, check_chunk, engine_context
from .commitments import Commitments
from .compact import CompactRange
from .errors import CorruptStoreError, InputError, StoneTrailError
from .events import REGISTRY_KINDS
from .findings import Finding
from .hashing import Digest
from .heads import ItemHeads
from .kept_findings import MAX_FINDINGS, KeptFindings
from .merkle import leaf_hash
from .reader import checkpoint_problems, framed_whole
from .record import Record
from .sig_findings import signature_findings
from .spilled import SpilledState
from .spilled_of import SpilledOf
from .storage.framing import Frame, StoreProblem

__all__ = ["Pass", "Progress", "finish", "run_pass"]

#: (records done, records in all), called after each chunk.
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class _Line:
    """A checkpoint line's tree, fixed at a tree size (:class:`ledger.commitments.Committed`)."""

    count: int
    top: Digest
    line: str

    def __len__(self) -> int:
        return self.count

    def root(self) -> Digest:
        return self.top

    def extension(self) -> str:
        return self.line


@dataclass(frozen=True, slots=True)
class _Lines:
    heads: _Line
    identities: _Line


@dataclass(frozen=True, slots=True)
class _Tree:
    """The tree's size and its roots at the checkpoints' tree sizes (:class:`ledger.reader.Roots`)."""

    size: int
    roots: dict[int, Digest]

    def root_at(self, size: int) -> Digest:
        return self.roots[size]


@dataclass(frozen=True, slots=True)
class _Seen:
    """The log as the pass saw it at one checkpoint's tree size (:class:`ledger.reader.Seen`); ``framing_ok``:
    the frames read are the log's first records (:func:`~ledger.reader.framed_whole`)."""

    origin: str
    at: int
    framing_ok: bool
    tree: _Tree
    commitments: _Lines
    registry: list[tuple[int, Record]]

    def registry_below(self, tree_size: int) -> list[tuple[int, Record]]:
        return [(p, r) for p, r in self.registry if p < tree_size]


@dataclass(slots=True)
class Pass:
    """The result of :func:`run_pass`: positions in the log (damaged frames included), the root of the readable
    frames (None when framing is damaged), the custody state (replayed from level ``custody``;
    :meth:`~ledger.spilled.SpilledState.close` it when done), the findings (the first ones in log order kept, the
    rest counted: :class:`~ledger.kept_findings.KeptFindings`) and each checkpoint's problems (same order as
    given), and how many parts of the file read cannot be read (damaged spans, records that do not decode)."""

    records: int
    root: Digest | None
    state: SpilledState
    findings: KeptFindings
    checkpoint_problems: list[list[StoneTrailError]] = field(default_factory=list)
    unreadable: int = 0


class _Walk:
    """The in-order part of a pass: custody rules, commitments and roots, fed one frame at a time (``file_bytes``:
    the ledger file's size, which sizes the custody state's body filter; ``limit``: the findings kept, the rest
    counted by code, :class:`~ledger.kept_findings.KeptFindings`)."""

    def __init__(self, origin: str, keys: frozenset[bytes], level: str, sizes: frozenset[int], *,
                 keep: bool = False, file_bytes: int = 0, limit: int | None = MAX_FINDINGS) -> None:
        self.origin, self.sizes, self.level = origin, sizes, level
        self.keep = keep  # commitments over every record, to save the walk (:mod:`ledger.audit_state`)
        self.custody = LEVELS.index(level) >= LEVELS.index("custody")
        # no key trusted (an unverified listing): no signature could be judged, so none is checked
        self.inline_signatures = bool(keys) and LEVELS.index(level) >= LEVELS.index("signatures")
        self.state = SpilledState(origin, keys, signatures=self._signatures, file_bytes=file_bytes)
        self.verdicts: dict[int, list[Finding]] = {}  # the workers' sig.* findings of the chunk being applied
        self.from_workers = False
        self.worker_decoded = False  # the chunk's unreadable records are in the workers' findings already
        # Lines at the checkpoints' tree sizes, or a state to save: the item heads counted, their record map on
        # disk, so that memory follows the items, not the records.
        self.item_of = SpilledOf() if sizes or keep else None
        self.commitments = None if self.item_of is None else Commitments(ItemHeads(counted=True, of=self.item_of))
        self.largest = max(sizes, default=0)  # records below it go into the commitments (a checkpoint's lines)
        self.range = CompactRange()
        self.roots: dict[int, Digest] = {}
        self.lines: dict[int, _Lines] = {}
        self.registry: list[tuple[int, Record]] = []
        self.findings = KeptFindings(limit)
        self.end = 0  # the position after the last frame seen
        self.unreadable = 0  # records that do not decode

    def close(self) -> None:
        """Delete the walk's temporary databases (its custody state's spill and its heads' record map)."""
        self.state.close()
        if self.item_of is not None:
            self.item_of.close()

    def _signatures(self, record: Record, position: int) -> list[Finding]:
        if self.from_workers:
            return self.verdicts.get(position, [])
        return signature_findings(record, position) if self.inline_signatures else []

    def mark_below(self, index: int) -> None:
        """Take the root and lines at each checkpoint's tree size up to ``index`` not taken yet (every record
        below ``index`` is applied; the readable ones are in the range)."""
        for size in self.sizes:
            if size <= index and size not in self.roots:
                self._mark(size)

    def _mark(self, size: int) -> None:
        self.roots[size] = self.range.root()
        if self.commitments is not None:
            heads, ids = self.commitments.heads, self.commitments.identities
            self.lines[size] = _Lines(_Line(len(heads), heads.root(), heads.extension()),
                                      _Line(len(ids), ids.root(), ids.extension()))

    def frame(self, index: int, payload: bytes, *, hashed: bool) -> None:
        """Apply the frame of record ``index`` (``hashed``: its leaf is in the range already)."""
        try:
            record = Record.from_bytes(payload)
        except InputError as exc:
            self.unreadable += 1
            if not hashed:
                self.range.append(leaf_hash(payload))
            if not self.worker_decoded:
                self.findings.add((Finding(code=exc.code, position=index, item=None, reason=str(exc)),))
            self._skip_to(index + 1)
            return
        if not hashed:
            self.range.append(record.record_hash)  # = leaf_hash(payload), computed once: the rules need it too
        if record.body.kind in REGISTRY_KINDS:
            self.registry.append((index, record))
        if self.commitments is not None and (self.keep or index < self.largest):
            self.commitments.add(index, record)
        if self.custody:
            self._skip_to(index)
            self.findings.add(self.state.apply(record))
        elif not self.from_workers:
            self.findings.add(self._signatures(record, index))
        self.end = index + 1

    def _skip_to(self, index: int) -> None:
        if self.state.size < index:
            self.state.skip_to(index)
        self.end = max(self.end, index)


def run_pass(origin: str, keys: frozenset[bytes], *, level: str, checkpoints: Sequence[Checkpoint] = (),
             frames: Iterable[Frame] = (), chunks: Iterable[Chunk] = (), executor: Executor | None = None,
             jobs: int = 1, engine: str | None = None, progress: Progress | None = None, size: int = 0,
             walk: _Walk | None = None, limit: int | None = MAX_FINDINGS,
             stop: Callable[[_Walk], bool] | None = None) -> _Walk:
    """Audit a ledger at ``level`` (:data:`ledger.chunks.LEVELS`) in one process, from its ``frames`` read front
    to back, or with ``executor`` checking its ``chunks`` (cut by :func:`ledger.chunks.plan` at every checkpoint's
    tree size, as the file is read: the workers start at once), up to ``jobs`` chunks ahead.
    ``progress(done, total)``: after each frame or chunk (``total`` estimated from the bytes read of the file's
    ``size``, exact at the end). ``walk``: a walk to go on with (:mod:`ledger.audit_state`: the frames or chunks
    then start at its ``end``; its level, origin and checkpoints' tree sizes are these), else a new one. Returns
    the walk, to :func:`finish`. ``stop(walk)``: asked after each frame or chunk; True ends the pass there (the
    walk then covers the records up to :attr:`_Walk.end` only). Raises as :func:`ledger.chunks.chunk_frames`."""
    if walk is None:
        walk = _Walk(origin, keys, level, frozenset(cp.tree_size for cp in checkpoints), file_bytes=size,
                     limit=limit)
    walk.mark_below(walk.end)
    told = (0, 0)
    with engine_context(engine):
        for frame in frames:
            walk.mark_below(frame.index)
            walk.frame(frame.index, frame.payload, hashed=False)
            if progress is not None:
                done = frame.index + 1
                told = (done, max(done, done * size // frame.end))
                progress(*told)
            if stop is not None and stop(walk):
                return _stopped(walk)
    # the records are needed here too (the rules, a checkpoint's lines, a state's commitments): the worker's bytes
    records = walk.custody or bool(walk.sizes) or walk.keep
    work = functools.partial(check_chunk, level=level, engine=engine, payloads=records, judged=bool(keys))
    for chunk, facts in _facts(chunks, executor, jobs, work):
        if records and len(facts.payloads) != chunk.count:
            raise CorruptStoreError(f"records {chunk.first}..{chunk.first + chunk.count - 1}: a worker returned "
                                    f"{len(facts.payloads)} of them", code="store.changed")
        walk.from_workers, walk.worker_decoded = True, facts.decoded
        walk.verdicts = _by_position(facts.signatures)
        walk.range.extend(facts.range())
        walk.findings.add(facts.unreadable)
        if not records:  # else walk.frame counts them
            walk.unreadable += len(facts.unreadable)
        if not walk.custody:
            walk.findings.add(facts.signatures)
        for index, payload in enumerate(facts.payloads, start=chunk.first):
            walk.frame(index, payload, hashed=True)
        walk.end = max(walk.end, chunk.first + chunk.count)
        walk.mark_below(walk.end)
        if progress is not None:
            told = (walk.end, max(walk.end, walk.end * size // max(chunk.end, 1)))
            progress(*told)
        if stop is not None and stop(walk):
            return _stopped(walk)
    walk.mark_below(walk.end)
    if progress is not None and told != (walk.end, walk.end):
        progress(walk.end, walk.end)
    return walk


def _stopped(walk: _Walk) -> _Walk:
    """``walk``, ended where its ``stop`` said, with the roots and lines up to there taken."""
    walk.mark_below(walk.end)
    return walk


def _facts(chunks: Iterable[Chunk], executor: Executor | None, jobs: int, work: Callable[[Chunk], ChunkFacts]
           ) -> Iterator[tuple[Chunk, ChunkFacts]]:
    """Each chunk with its ``work``'s facts, in order, keeping at most ``jobs`` + 1 chunks submitted ahead so that
    memory stays bounded."""
    if executor is None:
        return
    ahead: deque[tuple[Chunk, Future[ChunkFacts]]] = deque()
    pending = iter(chunks)
    for chunk in pending:
        ahead.append((chunk, executor.submit(work, chunk)))
        if len(ahead) > jobs:
            break
    while ahead:
        chunk, future = ahead.popleft()
        following = next(pending, None)
        if following is not None:
            ahead.append((following, executor.submit(work, following)))
        yield chunk, future.result()


def _by_position(findings: Sequence[Finding]) -> dict[int, list[Finding]]:
    out: dict[int, list[Finding]] = {}
    for f in findings:
        out.setdefault(f.position or 0, []).append(f)
    return out


def _below(problems: Sequence[StoreProblem], tree_size: int) -> list[StoreProblem]:
    """The damaged spans that begin below ``tree_size``: damage only after a checkpoint's records (bytes appended
    to the file after them) leaves its records 0 .. tree_size - 1 read in order, so the checkpoint is compared
    with them (a new user's review: 200 stray bytes after the last record made a good checkpoint
    ``checkpoint.unchecked``)."""
    return [p for p in problems if p.index < tree_size or p.code == "store.torn_tail"]


def finish(walk: _Walk, problems: Sequence[StoreProblem], checkpoints: Sequence[Checkpoint],
           unlisted: Mapping[str, int] | None = None) -> Pass:
    """The :class:`Pass` of a walk once the file's damaged spans (``problems``; ``unlisted``: those the survey
    counted by code without keeping them, past as many as the walk keeps findings) are known, with each of
    ``checkpoints`` checked against what the walk saw at its tree size."""
    origin = walk.origin
    walk.findings.add(Finding(code=p.code, position=p.index, item=None, reason=p.reason) for p in problems)
    walk.findings.count(unlisted or {})
    records = max([walk.end, *(p.index + 1 for p in problems if p.code != "store.torn_tail")])
    if not walk.end:  # nothing passes because it is empty (DESIGN.md §5)
        walk.findings.add((Finding(code="ledger.empty", position=None, item=None,
                                   reason="the ledger holds no record"),))
    framing_ok = not problems
    empty = Commitments()
    blank = _Lines(_Line(0, empty.heads.root(), empty.heads.extension()),
                   _Line(0, empty.identities.root(), empty.identities.extension()))
    seen = [checkpoint_problems(_Seen(origin, cp.tree_size, framed_whole(_below(problems, cp.tree_size)),
                                      _Tree(walk.end, walk.roots),
                                      walk.lines.get(cp.tree_size, blank), walk.registry), cp)
            for cp in checkpoints]
    return Pass(records, walk.range.root() if framing_ok else None, walk.state, walk.findings, seen,
                walk.unreadable + len(problems) + sum((unlisted or {}).values()))
