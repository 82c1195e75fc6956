"""Audit: replay a stored ledger from its file with nothing assumed, and name every fault.

``check_ledger`` returns an :class:`AuditReport` with every finding (store framing, record format, signatures,
registry, custody); ``verify_ledger`` raises :class:`~ledger.errors.RuleError` on the first. Only the trusted
keys of a :class:`~ledger.trust.Trust` are believed. Optionally a signed checkpoint is checked against the file:
its signature under the operator key, then whether it is the file's at its tree size (origin, tree size, root
hash, registry, heads and identities lines), decided by the read side (:func:`ledger.reader.checkpoint_problems`)
as the exporter, the consistency builders and the signers decide it. The file is read once, in bounded memory
(:class:`ledger.reader.LogPass`).

With a :class:`~ledger.policy.Policy`, the replayed ledger is also checked against it after the replay; those
findings are kept apart (``AuditReport.policy_findings``): integrity (``ok``) never depends on a policy.
"""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from pathlib import Path
from typing import Any

from ._files import check_new
from ._pool import worker_pool
from ._state_rows import stones
from .audit_pass import Pass, _Walk, finish, run_pass
from .audit_report import AuditReport, CheckpointCheck
from .audit_state import Kept, Saved, begin
from .checkpoint import Checkpoint, open_checkpoint
from .chunks import LEVELS, Chunk, plan
from .compact import CompactRange
from .errors import CorruptStoreError, InputError, StoneTrailError, StorageError, VerificationError, expect, expect_path
from .findings import Finding, raise_first
from .item import Inventory
from .kept_findings import MAX_FINDINGS
from .merkle import leaf_hash
from .pg.db import is_url
from .pg.store import as_file
from .policy import Policy, check_policy_records
from .reader import Progress
from .record import Record
from .spill import scratch_errors
from .storage import FrameFile
from .storage.framing import Frame
from .trust import Trust
from .witnessed import check_witnesses

__all__ = ["CHUNK_RECORDS", "LEVELS", "AuditReport", "CheckpointCheck", "Progress", "check_ledger", "verify_ledger"]

#: Records per chunk of a parallel audit: large enough that a worker's start and result cost nothing, small
#: enough that the chunks in flight hold little and the last chunk leaves no core idle for long.
CHUNK_RECORDS = 4096


@scratch_errors
def check_ledger(path: str | Path, trust: Trust | None, *, checkpoint: str | None = None,
                 checkpoints: Sequence[str] = (), observe: Sequence[str] = (), policy: Policy | None = None,
                 progress: Progress | None = None,
                 level: str | None = None, jobs: int = 1, engine: str | None = None,
                 executor: Executor | None = None, chunk_records: int = CHUNK_RECORDS,
                 save_state: str | Path | None = None, resume: str | Path | None = None,
                 max_findings: int | None = MAX_FINDINGS, inventory: bool = False,
                 first_finding: bool = False, until_unreadable: bool = False) -> AuditReport:
    """Audit the ledger at ``path`` (a file, or a ``postgresql://`` URL: a dump of its records,
    :func:`ledger.pg.store.as_file`) against ``trust`` in one streaming pass that holds no record (the facts the
    rules need of every record later go to a temporary database, deleted after: :mod:`ledger.spill`).

    ``checkpoint`` / ``checkpoints``: signed notes to check against the file (each at its tree size); ``observe``:
    more such notes, compared in the same pass but not judged: what was found against them is
    :attr:`AuditReport.observed`, never a finding (a checkpoint published beside the file, for a warning); ``level``:
    one of :data:`LEVELS` (default ``policy`` with a policy, else ``custody``), each including the ones before:
    ``structure`` (framing, strict record format), ``hashes`` (+ the RFC 9162 root, checked against every
    checkpoint), ``signatures`` (+ every signature under the key it names), ``custody`` (+ registry, enrolment,
    roles, hash links, custody, mass: every rule), ``policy`` (+ the trade policy; its findings go to
    ``policy_findings``, never to ``findings``). ``jobs`` > 1 or an ``executor`` (any
    :class:`concurrent.futures.Executor`; default a process pool of ``jobs``): chunks of ``chunk_records`` records
    are decoded, hashed and signature-checked by workers; the findings are the same as with ``jobs=1``.
    ``engine``: the signature engine (:data:`ledger.keys.ENGINES`; None: the default). ``progress``: as
    :func:`replay_ledger`'s, after each chunk.

    ``max_findings``: the findings kept in the report, the first ones in log order (None: all); the others are
    counted by code (``AuditReport.omitted``), so that memory does not grow with a file crafted to fail on every
    record (:mod:`ledger.kept_findings`). The kept findings and the counts are the same for any ``jobs``.

    ``inventory``: also give every item at the end of the log (``AuditReport.inventory``: the audit's own custody
    state and item heads, in memory that follows the items; its lines are those :func:`ledger.inventory.item_lines`
    gives of a replay); at level ``custody`` or ``policy``, and not with ``resume``.

    ``first_finding``: stop at the first finding (a damaged part of the file included), for a caller that wants a
    whole audit of a valid ledger and only the verdict of an invalid one (``stonetrail show`` and ``items``, which
    then replay it to show what is wrong): a report with findings then holds those found in the records read up
    to there, and counts only those records; one without findings is a whole audit, as without this. Not with
    ``save_state`` or ``resume``. ``until_unreadable``: the same, stopping at the first part of the file that cannot
    be read (``AuditReport.unreadable`` > 0), for a caller that lists items or histories from the audit of a file
    it can read whole and replays any other.

    ``trust`` None: no authority key is trusted, as :func:`ledger.replay.replay_ledger` without trust: every
    registry record gets a finding, and so does every custody record (its signers are unknown), but items and
    chains are rebuilt all the same (an unverified listing, with ``inventory``). No signature is checked then:
    none could be judged. Not with a checkpoint, ``save_state`` or ``resume``.

    Incremental audit (:mod:`ledger.audit_state`): ``save_state`` names a new file to save the audit's state in,
    at the end of the file read (its record count A; the file's framing must be whole); ``resume`` names such a
    file saved by an audit of this ledger at this level under the same authority keys: the pass then reads
    only the records from A on and gives the report a full audit of the whole file gives. Every checkpoint is
    then checked from the state's compact range, so one that matches proves that the log it signs extends the
    records audited (RFC 9162 §2.1.4.2); one below A is refused (``audit.checkpoint_before_state``), and so is a
    state that left findings out if ``max_findings`` keeps more than it did (``audit.state_mismatch``).

    Raises only for a file that cannot be read as a ledger at all (see :func:`replay_ledger`), NoteFormatError
    for a checkpoint that is not a well-formed signed checkpoint (a well-formed one that fails verification is a
    finding), InputError (``input.type``, ``input.value``) for an argument of the wrong type or value, and
    for a state: InputError ``audit.state_damaged``, ``audit.state_mismatch``, ``audit.checkpoint_before_state``,
    VerificationError ``audit.log_rewritten`` (the log was cut short or rewritten below the saved state),
    StorageError ``store.exists`` (``save_state`` exists) or ``store.io`` (also: the audit's temporary databases,
    :mod:`ledger.spill`, could not be written); CorruptStoreError ``store.changed`` (the file changed during the
    audit). A file with damaged framing gets no state, and a report that says so
    (``state_unsaved``) beside the findings that name the damage.
    """
    expect(trust, (Trust, type(None)), "trust", "a Trust (Trust.parse) or None")
    expect(checkpoint, (str, type(None)), "checkpoint", "signed checkpoint text (str) or None")
    expect(policy, (Policy, type(None)), "policy", "a Policy or None")
    expect_path(path, "path")
    level = _level(level, policy)
    if type(jobs) is not int or jobs < 1:
        raise InputError(f"jobs: got {jobs!r}, want a whole number >= 1", code="input.value")
    if max_findings is not None and (type(max_findings) is not int or max_findings < 1):
        raise InputError(f"max_findings: got {max_findings!r}, want a whole number >= 1 or None", code="input.value")
    if (first_finding or until_unreadable) and (save_state is not None or resume is not None):
        raise InputError(f"{'first_finding' if first_finding else 'until_unreadable'}: an audit that may stop early "
                         "neither saves nor resumes a state", code="input.value")
    if trust is None and (checkpoint is not None or checkpoints or observe or save_state is not None
                          or resume is not None):
        raise InputError("trust None: checkpoints and audit states need the trust file's keys", code="input.value")
    if inventory and (level not in ("custody", "policy") or resume is not None):
        raise InputError(f"inventory: the items are listed by a whole audit at level custody or policy, not "
                         f"{'a resumed one' if resume is not None else f'one at level {level}'}", code="input.value")
    for name, value in (("save_state", save_state), ("resume", resume)):
        if value is not None:
            expect_path(value, name)
    if is_url(path):  # a database ledger: audited from a dump of its records (ledger.pg.store.as_file)
        with as_file(path) as local:
            return check_ledger(local, trust, checkpoint=checkpoint, checkpoints=checkpoints, observe=observe,
                                policy=policy,
                                progress=progress, level=level, jobs=jobs, engine=engine, executor=executor,
                                chunk_records=chunk_records, save_state=save_state, resume=resume,
                                max_findings=max_findings, inventory=inventory, first_finding=first_finding,
                                until_unreadable=until_unreadable)
    notes = [*([checkpoint] if checkpoint is not None else []), *checkpoints]
    judged, notes = len(notes), [*notes, *observe]  # the first ``judged`` are the caller's to judge
    if save_state is not None:  # before the pass, not after it
        check_new(Path(save_state))
        if not os.access(Path(save_state).resolve().parent, os.W_OK):
            raise StorageError(f"cannot write the audit state {save_state}: its folder is missing or not writable",
                               code="store.io")
    saved = Saved.read(resume) if resume is not None else None
    keys = trust.authority_keys if trust is not None else frozenset()
    try:
        with FrameFile(path, resume=saved.resume if saved else None, kept=max_findings) as file:
            opened = [_open_checkpoint(file.origin, trust, note) for note in notes] if trust is not None else []
            cps = [cp for cp, _, _ in opened if cp is not None]
            sizes = frozenset(cp.tree_size for cp in cps)

            def start() -> Kept | None:  # the walk's saved state, where there is one to resume or to save
                if saved is None and save_state is None:
                    return None
                return begin(path, file.origin, keys, level, sizes, saved=saved,
                             keep=save_state is not None, file_bytes=file.survey.size, limit=max_findings)

            def stop_in(read: FrameFile) -> Callable[[_Walk], bool] | None:  # the first finding, or damage read
                if first_finding:
                    return lambda walk: bool(walk.findings) or bool(read.survey.problems)
                if until_unreadable:
                    return lambda walk: walk.unreadable > 0 or bool(read.survey.problems)
                return None

            def run(kept: Kept | None, **how: Any) -> _Walk:
                walk = kept.walk if kept else None
                if walk is None and inventory:  # a new walk keeping the item heads of every record, to list items
                    walk = _Walk(file.origin, keys, level, sizes, keep=True,
                                 file_bytes=file.survey.size, limit=max_findings)
                return run_pass(file.origin, keys, level=level, checkpoints=cps, engine=engine,
                                progress=progress, size=file.survey.size, walk=walk, limit=max_findings, **how)

            kept, walk, parallel = start(), None, jobs > 1 or executor is not None
            if parallel:  # chunks cut as the file is read, checked by workers at once
                share = (file.survey.size - (saved.resume[1] if saved and saved.resume else 0), jobs)
                chunks = _while_whole(plan(_frames(file, kept), path, chunk_records, sizes, share=share), file)
                ahead = list(itertools.islice(chunks, 2))
                if len(ahead) == 2:  # else too little to share
                    with _pool(executor, jobs) as pool:
                        walk = run(kept, chunks=itertools.chain(ahead, chunks), executor=pool, jobs=jobs,
                                   stop=stop_in(file))
            else:  # one process, one read of the file
                walk = run(kept, frames=_frames(file, kept), stop=stop_in(file))
            problems, unlisted = list(file.survey.problems), file.survey.omitted
            if walk is None or (parallel and problems and not first_finding and not until_unreadable):
                # too little to share, or damaged frames (not runs of records to cut): all again, in one process
                if walk is not None:
                    walk.close()
                    kept = start()
                with FrameFile(path, resume=saved.resume if saved else None, kept=max_findings) as again:
                    walk = run(kept, frames=_frames(again, kept), stop=stop_in(again))
                    problems, unlisted = list(again.survey.problems), again.survey.omitted
        if kept is not None:  # a resumed walk's prefix, hashed meanwhile: before any verdict or state
            kept.confirm()
        unsaved = None
        if kept is not None and save_state is not None:
            try:
                kept.save(save_state, problems)
            except InputError as exc:  # damaged framing: the verdict says so, and that no state was saved
                if exc.code != "audit.state_unsafe":
                    raise
                unsaved = f"{str(exc).removeprefix('audit state: ')} [{exc.code}]"
        seen = finish(walk, problems, cps, unlisted)
        checked = iter(seen.checkpoint_problems)
        found = [[_checkpoint_finding(e) for e in next(checked)] if cp is not None else bad for cp, bad, _ in opened]
        every = tuple(CheckpointCheck(cp, tuple(bad), witnessed)
                      for (cp, _, witnessed), bad in zip(opened, found, strict=True))
        checks, observed = every[:judged], every[judged:]
        matched = [c.checkpoint for c in checks if c.matches and c.checkpoint is not None]
        items = seen.state.items.values()
        seen.findings.add(f for fs in found[:judged] for f in fs)  # last: kept while there is room within the limit
        policy_findings = _policy(path, seen, policy) if policy is not None and level == "policy" else []
        if saved is not None:
            _recheck(saved, save_state if kept is not None and unsaved is None else None)
        listed = _inventory(walk, seen) if inventory else None
        walk.close()
        return AuditReport(origin=walk.origin, record_count=seen.records, root_hash=seen.root, items=len(items),
                           stones=stones(seen.state.items),
                           parties=len(seen.state.registry.parties),
                           findings=tuple(seen.findings.kept),
                           checkpoint=max(matched, key=lambda cp: cp.tree_size, default=None),
                           checkpoints=checks, observed=observed, policy=policy,
                           policy_findings=tuple(policy_findings),
                           level=level, resumed_at=saved.size if saved is not None else 0, state_unsaved=unsaved,
                           omitted=tuple(seen.findings.omitted.items()), inventory=listed,
                           unreadable=seen.unreadable)
    except (ValueError, OverflowError, IndexError, KeyError, TypeError) as exc:
        if saved is None or isinstance(exc, StoneTrailError):
            raise
        # a saved row read while the walk ran (ledger.audit_state): its digest held, so written wrong, not damaged
        raise InputError(f"audit state: {resume}: a saved row does not read ({type(exc).__name__}: {exc})",
                         code="audit.state_damaged") from exc
    finally:
        if saved is not None:  # its sections were read while the walk ran
            saved.close()


def _inventory(walk: _Walk, seen: Pass) -> Inventory:
    """Every item of the walk's custody state, with the head of its records."""
    if walk.commitments is None:
        raise TypeError("a walk that lists its items keeps their heads")
    return Inventory(dict(seen.state.items), walk.commitments.heads.every_head())


def _recheck(saved: Saved, written: str | Path | None) -> None:
    """Check that the resumed state file has not changed (:meth:`ledger._state_file.StateFile.recheck`): its rows
    were read while the walk ran. If it changed, the state ``written`` from them, if any, is removed. Raises
    InputError ``audit.state_damaged``."""
    try:
        saved.file.recheck()
    except InputError:
        if written is not None:
            Path(written).unlink(missing_ok=True)
        raise


def _while_whole(chunks: Iterator[Chunk], file: FrameFile) -> Iterator[Chunk]:
    """``chunks`` until the file's first damaged frame: the chunks' ranges no longer follow one another there, so
    the audit of a damaged file is redone in one process."""
    for chunk in chunks:
        if file.survey.problems:
            return
        yield chunk


def _frames(file: FrameFile, kept: Kept | None) -> Iterator[Frame]:
    """The frames of ``file``, through ``kept`` (checked where a resumed audit goes on; the last one noted)."""
    return file.frames() if kept is None else kept.frames(file.frames())


def _level(level: str | None, policy: Policy | None) -> str:
    """The level to audit at; a policy is checked only at level ``policy`` and that level needs one, so a policy
    is never reported met without being checked. Raises InputError (``input.value``)."""
    if level is None:
        return "policy" if policy is not None else "custody"
    if level not in LEVELS:
        raise InputError(f"level: got {level!r}, want one of {', '.join(LEVELS)}", code="input.value")
    if (policy is not None) != (level == "policy"):
        raise InputError(f"level {level} with {'a' if policy else 'no'} policy: a policy is checked at level policy "
                         "only (drop --level, or give a policy for --level policy)", code="input.value")
    return level


def _pool(executor: Executor | None, jobs: int) -> contextlib.AbstractContextManager[Executor]:
    """The caller's executor (left running), or a pool of ``jobs`` worker processes (:func:`ledger._pool
    .worker_pool`: shut down after, torn down on an error or an interrupt)."""
    return contextlib.nullcontext(executor) if executor is not None else worker_pool(jobs)


def _policy(path: str | Path, seen: Pass, policy: Policy) -> list[Finding]:
    """The policy's findings, from a second streaming read of the records the replay applied to some item. Raises
    CorruptStoreError (``store.changed``) if the file's root is no longer the one the replay saw."""
    def records() -> Iterator[tuple[int, Record]]:
        again = CompactRange()
        with FrameFile(path) as file:
            for frame in file.frames():
                again.append(leaf_hash(frame.payload))
                try:
                    yield frame.index, Record.from_bytes(frame.payload)
                except InputError:
                    continue
        if seen.root is not None and again.root() != seen.root:
            raise CorruptStoreError(f"{path} changed during the audit: the policy read other records",
                                    code="store.changed")

    return check_policy_records(records(), seen.state.items, policy, end=seen.records,
                                touched=seen.state.touched())


def verify_ledger(path: str | Path, trust: Trust, *, checkpoint: str | None = None,
                  policy: Policy | None = None, progress: Progress | None = None) -> AuditReport:
    """As :func:`check_ledger`, but raise RuleError with the first integrity finding, else the first policy
    finding; returns the clean report. ``trust`` is required (without it every record has a finding)."""
    expect(trust, Trust, "trust", "a Trust (Trust.parse)")
    report = check_ledger(path, trust, checkpoint=checkpoint, policy=policy, progress=progress)
    raise_first(report.findings)
    raise_first(report.policy_findings)
    return report


def _open_checkpoint(origin: str, trust: Trust, note: str | None
                     ) -> tuple[Checkpoint | None, list[Finding], str | None]:
    """The checkpoint ``note`` opened under ``trust.operators`` for the ledger of ``origin`` (None: no note) and
    meeting the trust file's witness policy (with how it met it, if there is one), or the finding why not
    (``witness.quorum``, ...). A malformed note is the caller's input error (raised: NoteFormatError)."""
    if note is None:
        return None, [], None
    try:
        cp = open_checkpoint(note, trust.operators, origin=origin)
        status = check_witnesses(note, trust)  # the trust file's witness policy, if any (witness.*)
        return cp, [], status.describe() if status.policy is not None else None
    except VerificationError as exc:
        return None, [_checkpoint_finding(exc)], None


def _checkpoint_finding(exc: StoneTrailError) -> Finding:
    return Finding(code=exc.code, position=None, item=None, reason=f"checkpoint: {exc}")
