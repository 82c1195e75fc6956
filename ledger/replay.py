"""Replay a stored ledger in memory, for display: every record kept by position with the custody state it leaves
and every finding (store framing, record format, signatures, registry, custody). An application that shows a
ledger (``stonetrail show``, ``items``, :mod:`ledger.history`, :mod:`ledger.inventory`) reads this; an auditor
reads :func:`ledger.audit.check_ledger`, which streams in bounded memory and gives the same findings.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .custody import CustodyState
from .errors import InputError, expect, expect_path
from .findings import Finding
from .merkle import MerkleTree
from .pg.store import as_file
from .reader import LogPass, Progress
from .record import Record
from .storage import FrameFile
from .trust import Trust

__all__ = ["Replay", "replay_ledger"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Replay:
    """A ledger file replayed: ``records[i]`` is the record at position i (None where unreadable).

    ``tree`` is the RFC 9162 tree over every readable frame; it is the log's tree only when ``framing_ok``
    (a damaged frame leaves the tree ambiguous: what the damaged bytes were is unknown).
    """

    origin: str
    records: tuple[Record | None, ...]
    state: CustodyState
    tree: MerkleTree
    framing_ok: bool
    findings: tuple[Finding, ...]


def replay_ledger(path: str | Path, trust: Trust | None, *, progress: Progress | None = None) -> Replay:
    """Read the ledger file at ``path`` (or the database ledger at a ``postgresql://`` URL: a dump of its records,
    :func:`ledger.pg.store.as_file`) without locking and replay every record through the rules.

    With ``trust`` None no authority key is trusted: the replay still rebuilds items and chains (for display),
    but every registry record, and so every signature, gets a finding. ``progress``, if given, is called after
    each frame is replayed with (frames replayed, frames in the file, estimated from the bytes left until the
    last call): an application shows how far a long replay has got.

    Raises:
        CorruptStoreError: the file header is damaged. StorageError: I/O failure. Damaged frames and invalid
        records are findings, not exceptions. ArgumentError: ``input.type`` (an argument of the wrong type).
    """
    expect_path(path, "path")
    expect(trust, (Trust, type(None)), "trust", "a Trust (Trust.parse) or None")
    # every damaged span kept (kept=None): a display replay holds every record anyway, and counts what it shows
    with as_file(path) as local, FrameFile(local, kept=None) as file:  # a database ledger: from a dump of its records
        return _replay(LogPass(file, at=0), trust, progress)  # at 0: no checkpoint lines to collect


def _replay(log: LogPass, trust: Trust | None, progress: Progress | None) -> Replay:
    """Replay every record of ``log`` (read once, damaged frames included) through the rules."""
    state = CustodyState(log.origin, trust.authority_keys if trust else ())
    findings: list[Finding] = []
    records: list[Record | None] = []

    def skip_to(index: int) -> None:  # damaged frames hold positions too: keep them aligned
        while len(records) < index:
            records.append(None)
            state.size += 1

    for frame, record in log.records(progress, strict=False):
        skip_to(frame.index)
        if isinstance(record, InputError):
            findings.append(Finding(code=record.code, position=frame.index, item=None, reason=str(record)))
            skip_to(frame.index + 1)
            continue
        findings.extend(state.apply(record))
        records.append(record)
    findings += [Finding(code=p.code, position=p.index, item=None, reason=p.reason) for p in log.problems]
    for problem in log.problems:
        if problem.code != "store.torn_tail":  # a torn tail is an append that never completed
            skip_to(problem.index + 1)
    if not records:  # nothing passes because it is empty (DESIGN.md §5)
        findings.append(Finding(code="ledger.empty", position=None, item=None, reason="the ledger holds no record"))
    findings.sort(key=lambda f: (f.position is None, f.position or 0))
    return Replay(origin=log.origin, records=tuple(records), state=state, tree=log.tree,
                  framing_ok=not log.problems, findings=tuple(findings))
