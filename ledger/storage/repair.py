"""Repair of a ledger file: move a torn tail (an append that never completed) aside, never deleting a byte
(DESIGN.md §6, docs/format.md §8, docs/adr/0017)."""

from __future__ import annotations

import hashlib
import os
import shlex
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .._beside import published_at
from .._files import io_errors, write_file
from ..checkpoint import Checkpoint, read_unverified_checkpoint
from ..errors import CorruptStoreError, StorageError, VerificationError, expect, expect_path
from .filestore import _lock, _pread, _regular, _survey
from .framing import BATCH_MAGIC, FRAME_HEADER, RESYNC_LIMIT, TORN, StoreProblem

__all__ = ["Repaired", "repair"]


def _move_aside(tail: bytes, side: Path) -> Path:
    """Write ``tail`` into the new file ``side`` (:func:`ledger._files.write_file`), or, if that name holds other
    bytes (the tail of an earlier crash at the same offset), into ``side`` + ``-<16 hex of SHA-256 of tail>``;
    return the file written. A file that already holds exactly ``tail`` (left by an interrupted repair) is kept.
    Raises StorageError "store.exists" (both names hold other bytes, or are not regular files), "store.io"."""
    for name in (side, side.with_name(f"{side.name}-{hashlib.sha256(tail).hexdigest()[:16]}")):
        try:
            write_file(name, tail)
            return name
        except StorageError as exc:
            if exc.code != "store.exists":
                raise
            if _read_regular(name) == tail:
                return name
    raise StorageError(f"{side} and {name} exist with other bytes; move them away", code="store.exists")


def _read_regular(path: Path) -> bytes | None:
    """The bytes of ``path`` if it is a regular file (a symbolic link is not followed), else None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        return _pread(fd, os.fstat(fd).st_size, 0) if stat.S_ISREG(os.fstat(fd).st_mode) else None
    finally:
        os.close(fd)


@dataclass(frozen=True, slots=True, kw_only=True)
class Repaired:
    """What :func:`repair` did to the ledger file ``ledger``: it now holds ``records`` records in ``size_bytes``
    bytes; ``side_file`` holds the ``moved_bytes`` bytes of the torn tail moved aside (None and 0: nothing to
    repair, the file is as it was); ``damaged``: they were a damaged tail (``repair(damaged_tail=True)``)."""

    ledger: Path
    records: int
    size_bytes: int
    side_file: Path | None
    moved_bytes: int
    damaged: bool = False

    @property
    def repaired(self) -> bool:
        """True if a torn (or damaged) tail was moved aside."""
        return self.side_file is not None

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict: ``verdict`` ``repaired`` or ``intact``, the files, counts in records and bytes,
        ``damaged_tail`` (what was moved is a damaged tail, not a torn one)."""
        return {"verdict": "repaired" if self.repaired else "intact", "file": str(self.ledger),
                "records": self.records, "size_bytes": self.size_bytes,
                "side_file": None if self.side_file is None else str(self.side_file), "moved_bytes": self.moved_bytes,
                "damaged_tail": self.damaged}


def repair(path: str | os.PathLike[str], *, checkpoint: str | None = None, damaged_tail: bool = False) -> Repaired:
    """Move a torn tail (an interrupted append: an incomplete last frame, or every frame of a batch cut short)
    into the new file ``<path>.torn-<offset>``; truncate the ledger to the end of the last complete batch
    (docs/format.md §8, "Repair"). Bytes are moved, never deleted.

    ``damaged_tail``: also move aside, into ``<path>.damaged-<offset>``, a damaged tail: one damaged span that
    runs from the end of the last valid frame to end of file but does not look like an interrupted append (bytes
    another program appended, or a last frame that fails its CRC). No valid frame follows it, but it may hold a
    record whose frame was damaged, so it is moved only when asked; without it such a tail is refused, with a
    message that says so, unless it is too short to hold a record (no more than a frame header, 12 bytes: a stray
    newline). Damage with a valid frame after it, or too dense to search (``store.resync_limit``), is always
    refused.

    ``checkpoint``: the text of a checkpoint issued for this ledger. Repair refuses to leave the file with fewer
    records than its tree size, or than the tree size of the checkpoint published beside it (``checkpoint.txt``,
    :func:`ledger._beside.published_at`: beside the path given, or beside a link's target, if it is of this ledger's
    origin), whichever is larger: that would roll back records a verifier may hold a proof of. Their signatures are
    not checked (they only bound the cut: a false one can make repair refuse, never cut more); without
    ``checkpoint``, a ``checkpoint.txt`` that is not a checkpoint refuses the repair (it cannot bound the cut).

    Takes the writer lock. The side file is written and fsynced before the ledger is truncated and fsynced, so
    no byte is ever lost; a side file that already holds exactly the tail (an interrupted repair) is kept.
    Returns what was done (:class:`Repaired`; ``side_file`` None: no problem, nothing changed).
    Raises:
        ArgumentError: ``input.type`` (an argument of the wrong type).
        NoteFormatError: ``checkpoint`` is not a checkpoint; ``checkpoint.unreadable``: none given, and the
            ``checkpoint.txt`` beside the file is not one.
        LockedError: a writer holds the ledger.
        InputError: "store.not_a_ledger" (an empty file, or not a ledger at all).
        CorruptStoreError: "store.bad_header", or the code of a problem other than a torn tail (that needs an
            audit, not a truncate; the message names the record and byte offset); the file is left untouched.
        VerificationError: "checkpoint.origin_mismatch" (the checkpoint is another ledger's); "repair.rollback"
            (the torn tail starts below the checkpoint's tree size, or the file already holds fewer records);
            the file is left untouched.
        StorageError: "store.io" on OSError; "store.exists" if the side file exists with other bytes.
    """
    expect_path(path, "path")
    expect(checkpoint, (str, type(None)), "checkpoint", "signed checkpoint text (str) or None")
    issued = None if checkpoint is None else read_unverified_checkpoint(checkpoint)
    given, p = Path(path), Path(os.path.realpath(path))  # a link's target: the side file goes beside it
    with io_errors(p, "opening"):
        _regular(p)
        fd = os.open(p, os.O_RDWR)
    try:
        _lock(fd, p)
        with io_errors(p, "repairing"):
            origin, offsets, problems, end = _survey(fd)
            published = published_at(given, origin, strict=issued is None)  # none given: an unreadable one refuses
            size = os.fstat(fd).st_size
            kept, cut = len(offsets), end
            if problems and problems[0].code != TORN and problems[0].offset == end:  # a damaged tail
                kept, cut = _open_batch(fd, offsets, end)
            stray = size - end <= FRAME_HEADER and cut == end  # too short to hold a record, and no record goes
            damaged = _may_cut(p, problems, issued, published, origin, kept, cut, end, damaged_tail or stray)
            side, tail = None, b""
            if problems:
                tail = _pread(fd, size - cut, cut)
                side = _move_aside(tail, p.with_name(f"{p.name}.{'damaged' if damaged else 'torn'}-{cut}"))
                os.ftruncate(fd, cut)
                os.fsync(fd)
            return Repaired(ledger=p, records=kept, size_bytes=cut, side_file=side, moved_bytes=len(tail),
                            damaged=damaged)
    finally:
        os.close(fd)


def _open_batch(fd: int, offsets: Sequence[int], end: int) -> tuple[int, int]:
    """Where a damaged tail's cut goes: (records kept, byte offset). ``end`` and all of ``offsets`` if the last
    valid frame ends a batch; else the batch it is in never ended (its ``STRB`` frames are the start of an append
    the damage interrupted, docs/adr/0012-batch-frames.md): the cut takes them along, as a torn tail's does, so
    that what stays is whole batches and no later read finds a torn tail there."""
    kept = len(offsets)
    while kept and _pread(fd, len(BATCH_MAGIC), offsets[kept - 1]) == BATCH_MAGIC:
        kept -= 1
    return (kept, offsets[kept]) if kept < len(offsets) else (kept, end)


def _may_cut(p: Path, problems: Sequence[StoreProblem], issued: Checkpoint | None,
            published_there: tuple[Path, Checkpoint] | None,
            origin: str, kept: int, cut: int, end: int, damaged_tail: bool) -> bool:
    """Refuse a repair that would cut anything but a torn tail (or, with ``damaged_tail``, a damaged tail: one span
    from ``end``, the end of the last valid frame, to end of file), or leave fewer records than ``issued`` (the
    caller's checkpoint) or ``published_there`` (the one published for the file, and where) covers, whichever is
    larger (``kept``: the records before the cut, or all of them; ``cut``: its byte offset). Return whether the
    tail to cut is a damaged one. Raises as :func:`repair`."""
    damaged = bool(problems) and problems[0].code != TORN  # a torn tail is always the last problem
    if damaged:
        first = problems[0]
        at = f"{p} is damaged at record {first.index} (byte offset {first.offset}): " \
             f"{first.reason.removeprefix(f'record {first.index}: ')}; "
        if len(problems) > 1 or first.offset != end or first.code == RESYNC_LIMIT:
            raise CorruptStoreError(at + "that is not a torn tail, so repair leaves the file as it is (it may hold "
                                    "whole records): restore the file from a backup or a mirror; stonetrail verify "
                                    "names the damaged records", code=first.code)
        if cut < end:
            at += f"records {kept} on, of a batch that never ended, would go with them; "
        if not damaged_tail:
            raise CorruptStoreError(at + "no valid frame follows, but these bytes are not an interrupted append "
                                    "(bytes another program appended, or a last record damaged), so repair leaves "
                                    "the file as it is. If no record you need is in them, 'stonetrail repair "
                                    f"--damaged-tail {shlex.quote(str(p))}' moves them into {p.name}.damaged-OFFSET "
                                    "(nothing is deleted); else restore the file from a backup or a mirror",
                                    code=first.code)
    if issued is not None and issued.origin != origin:
        raise VerificationError(f"the checkpoint is of {issued.origin!r:.80}, {p} of {origin!r:.80}",
                                code="checkpoint.origin_mismatch")
    published = published_there[1] if published_there is not None else None
    given = issued is not None and (published is None or issued.tree_size >= published.tree_size)
    issued = issued if given else published
    if issued is None:
        return damaged
    if kept < issued.tree_size:
        which = "the checkpoint given" if given else \
            f"the checkpoint published beside it ({published_there[0] if published_there else ''})"
        tail = "damaged" if damaged else "torn"
        where = (f"its {tail} tail starts at record {kept} (byte offset {cut})" if problems
                 else f"it holds {kept} records")
        raise VerificationError(f"{p}: {where}, below the tree size {issued.tree_size} of {which}: "
                                f"{issued.tree_size - kept} record(s) it covers would be rolled back; nothing was "
                                "changed: recover them (a backup, a copy) before repairing" +
                                ("" if given else ", or move that checkpoint aside if it is not this ledger's"),
                                code="repair.rollback")
    return damaged
