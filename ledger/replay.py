"""Replay a stored ledger for display: every record by position (kept as where it is in the file,
:mod:`ledger.file_records`), with the custody state it leaves, the items' record positions and heads, and its
findings (store framing, record format, signatures, registry, custody): the first ones in log order, the rest
counted by code (:mod:`ledger.kept_findings`), so that a file crafted to fail everywhere costs no more. No decoded
record is held: what remains a record is the custody state's hashes of it and its Merkle tree leaf (about 1 KB,
where a decoded record takes 4 KB). An application that shows a file with a part that cannot be read
(``stonetrail show``, ``items``, :mod:`ledger.history`, :mod:`ledger.inventory`) reads this; an auditor reads
:func:`ledger.audit.check_ledger`, which streams in bounded memory and gives the same findings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .custody import CustodyState
from .errors import InputError, expect, expect_path
from .file_records import FileRecords
from .findings import Finding
from .heads import ItemHeads
from .kept_findings import MAX_FINDINGS, KeptFindings
from .merkle import MerkleTree
from .pg.store import as_file
from .pg.url import is_url
from .reader import LogPass, Progress
from .record import Record
from .storage import FrameFile
from .trust import Trust

__all__ = ["Replay", "replay_ledger"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Replay:
    """A ledger file replayed: ``records[i]`` is the record at position i (None where unreadable; read again from
    the file when asked, :class:`~ledger.file_records.FileRecords`, for a replay of a file), and ``heads`` the
    items' record positions and heads (:class:`~ledger.heads.ItemHeads` of the readable records; None: computed
    from ``records`` by whoever needs them).

    ``tree`` is the RFC 9162 tree over every readable frame; it is the log's tree only when ``framing_ok``
    (a damaged frame leaves the tree ambiguous: what the damaged bytes were is unknown). ``findings``: the first
    ones in log order (``replay_ledger(max_findings=...)``); ``omitted``: the others, counted as (code, count)
    sorted by code; :attr:`finding_count` counts them all. ``damage``: the findings of the parts of the file that
    cannot be read (damaged spans of frames, and records that do not decode), the first ones in log order, kept
    apart (a replay without trust has findings on every record: they must not crowd these out); ``unreadable``:
    how many parts there are, kept or not.
    """

    origin: str
    records: Sequence[Record | None]
    state: CustodyState
    tree: MerkleTree
    framing_ok: bool
    findings: tuple[Finding, ...]
    omitted: tuple[tuple[str, int], ...] = ()
    damage: tuple[Finding, ...] = ()
    unreadable: int = 0
    heads: ItemHeads | None = None

    def item_heads(self) -> ItemHeads:
        """:attr:`heads`, or for a replay made without them, those of its readable records."""
        return self.heads if self.heads is not None else ItemHeads.of(enumerate(self.records))

    @property
    def finding_count(self) -> int:
        """Every finding, those kept in :attr:`findings` and those :attr:`omitted`."""
        return len(self.findings) + sum(count for _, count in self.omitted)


def replay_ledger(path: str | Path, trust: Trust | None, *, progress: Progress | None = None,
                  max_findings: int | None = MAX_FINDINGS) -> Replay:
    """Read the ledger file at ``path`` (or the database ledger at a ``postgresql://`` URL: a dump of its records,
    :func:`ledger.pg.store.as_file`) without locking and replay every record through the rules.

    The replay keeps where each record is in the file, not the record (:class:`~ledger.file_records.FileRecords`:
    a record asked for is read again, and must be the one replayed, else CorruptStoreError ``store.changed``); a
    database ledger's records are kept decoded (its dump is deleted on return).

    With ``trust`` None no authority key is trusted: the replay still rebuilds items and chains (for display),
    but every registry record, and so every signature, gets a finding. ``progress``, if given, is called after
    each frame is replayed with (frames replayed, frames in the file, estimated from the bytes left until the
    last call): an application shows how far a long replay has got. ``max_findings``: the findings kept, the
    first in log order (None: every one); the others are counted (:attr:`Replay.omitted`), and so are the damaged
    spans past as many (:attr:`Replay.unreadable`); as many of the parts that cannot be read are kept apart
    (:attr:`Replay.damage`).

    Raises:
        CorruptStoreError: the file header is damaged. StorageError: I/O failure. Damaged frames and invalid
        records are findings, not exceptions. ArgumentError: ``input.type`` (an argument of the wrong type),
        ``input.value`` (``max_findings`` below 1).
    """
    expect_path(path, "path")
    expect(trust, (Trust, type(None)), "trust", "a Trust (Trust.parse) or None")
    expect(max_findings, (int, type(None)), "max_findings", "a whole number >= 1 or None")
    if max_findings is not None and max_findings < 1:
        raise InputError(f"max_findings: got {max_findings}, want a whole number >= 1 or None", code="input.value")
    with as_file(path) as local, FrameFile(local, kept=max_findings) as file:  # a database ledger: from a dump
        replay = _replay(LogPass(file, at=0), trust, progress, max_findings)  # at 0: no checkpoint lines to collect
        if is_url(path):  # the dump is deleted on return: its records are kept decoded
            return dataclasses.replace(replay, records=tuple(replay.records))
        return replay


def _replay(log: LogPass, trust: Trust | None, progress: Progress | None, limit: int | None) -> Replay:
    """Replay every record of ``log`` (read once, damaged frames included) through the rules, keeping ``limit``
    findings and as many of the parts that cannot be read."""
    state, heads = CustodyState(log.origin, trust.authority_keys if trust else ()), ItemHeads()
    records = FileRecords(log.file.path)
    findings, damage, unreadable = KeptFindings(limit), KeptFindings(limit), 0

    def skip_to(index: int) -> None:  # damaged frames hold positions too: keep them aligned
        while len(records) < index:
            records.skip()
            state.size += 1

    for frame, record in log.records(progress, strict=False):
        skip_to(frame.index)
        if isinstance(record, InputError):
            part = (Finding(code=record.code, position=frame.index, item=None, reason=str(record)),)
            findings.add(part)
            damage.add(part)
            unreadable += 1
            skip_to(frame.index + 1)
            continue
        findings.add(state.apply(record))
        records.add(frame, record)
        heads.add(frame.index, record)
    problems, unlisted = log.problems, log.file.survey.omitted  # unlisted: spans past as many as findings are kept
    for kept in (findings, damage):
        kept.add(Finding(code=p.code, position=p.index, item=None, reason=p.reason) for p in problems)
        kept.count(unlisted)
    for problem in problems:
        if problem.code != "store.torn_tail":  # a torn tail is an append that never completed
            skip_to(problem.index + 1)
    if not records:  # nothing passes because it is empty (DESIGN.md §5)
        findings.add((Finding(code="ledger.empty", position=None, item=None, reason="the ledger holds no record"),))
    return Replay(origin=log.origin, records=records, state=state, tree=log.tree, heads=heads,
                  framing_ok=not problems, findings=tuple(findings.kept), omitted=tuple(findings.omitted.items()),
                  damage=tuple(damage.kept), unreadable=unreadable + len(problems) + sum(unlisted.values()))
