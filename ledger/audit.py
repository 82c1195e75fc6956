"""Audit: replay a stored ledger from its file with nothing assumed, and name every fault.

``check_ledger`` returns an :class:`AuditReport` with every finding (store framing, record format, signatures,
registry, custody); ``verify_ledger`` raises :class:`~ledger.errors.RuleError` on the first. Only the trusted
keys of a :class:`~ledger.trust.Trust` are believed. Optionally a signed checkpoint is checked against the file:
its signature under the operator key, its origin, that the log's root at the checkpoint's tree size is the
checkpoint's root hash, that its registry line names the registry replayed up to that tree size, and that its
heads line names every item's latest record below it (:mod:`ledger.heads`).

With a :class:`~ledger.policy.Policy`, the replayed ledger is also checked against it after the replay; those
findings are kept apart (``AuditReport.policy_findings``): integrity (``ok``) never depends on a policy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from .checkpoint import Checkpoint, open_checkpoint
from .commitments import Commitments
from .custody import CustodyState
from .errors import InputError, VerificationError, expect, expect_path
from .findings import Finding, raise_first
from .hashing import Digest
from .merkle import MerkleTree, leaf_hash
from .policy import Policy, Verdicts, check_policy
from .record import Record
from .registry import checkpoint_registry
from .storage import Frame, scan
from .trust import Trust

__all__ = ["AuditReport", "Progress", "Replay", "check_ledger", "replay_ledger", "verify_ledger"]

#: A progress callback: called with (units done, units in all), e.g. frames replayed of the file's frames.
Progress: TypeAlias = Callable[[int, int], None]


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


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditReport(Verdicts):
    """Result of an audit: counts, the RFC 9162 root hash, and every finding.

    ``record_count``: positions in the log (damaged frames included). ``root_hash``: None when the file's
    framing is damaged, since the tree is then unknown. ``checkpoint``: the signed checkpoint that was checked
    against the file and matched it (None if none was given or it did not match). ``policy``: the policy checked
    (None: none); ``policy_findings``: its findings (docs/format.md "Policies"), kept apart from ``findings``:
    they say the goods may not be accepted under that policy, not that the ledger is damaged or forged.
    """

    origin: str
    record_count: int
    root_hash: Digest | None
    items: int
    stones: int
    parties: int
    findings: tuple[Finding, ...]
    checkpoint: Checkpoint | None = None
    policy: Policy | None = None
    policy_findings: tuple[Finding, ...] = ()

    def to_json(self) -> dict[str, object]:
        """JSON-ready summary (hashes in standard base64)."""
        cp = self.checkpoint
        return {
            "origin": self.origin, "records": self.record_count,
            "root_hash": self.root_hash.b64() if self.root_hash else None,
            "items": self.items, "stones": self.stones, "parties": self.parties,
            "checkpoint": {"tree_size": cp.tree_size, "root_hash": cp.root_hash.b64()} if cp else None,
            **self.verdicts_json(),
        }


def replay_ledger(path: str | Path, trust: Trust | None, *, progress: Progress | None = None) -> Replay:
    """Read the ledger file at ``path`` without locking and replay every record through the rules.

    With ``trust`` None no authority key is trusted: the replay still rebuilds items and chains (for display),
    but every registry record, and so every signature, gets a finding. ``progress``, if given, is called after
    each frame is replayed with (frames replayed, frames in the file): an application shows how far a long
    replay has got (the file is read and its frames found first, without calls).

    Raises:
        CorruptStoreError: the file header is damaged. StorageError: I/O failure. Damaged frames and invalid
        records are findings, not exceptions. ArgumentError: ``input.type`` (an argument of the wrong type).
    """
    expect_path(path, "path")
    expect(trust, (Trust, type(None)), "trust", "a Trust (Trust.parse) or None")
    result = scan(path)
    state = CustodyState(result.origin, trust.authority_keys if trust else ())
    tree = MerkleTree()
    findings = [Finding(code=p.code, position=p.index, item=None, reason=p.reason) for p in result.problems]
    records: list[Record | None] = []

    def skip_to(index: int) -> None:  # damaged frames hold positions too: keep them aligned
        while len(records) < index:
            records.append(None)
            state.size += 1

    for frame in _counted(result.frames, progress):
        skip_to(frame.index)
        tree.append(leaf_hash(frame.payload))
        try:
            record = Record.from_bytes(frame.payload)
        except InputError as exc:
            findings.append(Finding(code=exc.code, position=frame.index, item=None, reason=str(exc)))
            skip_to(frame.index + 1)
            continue
        findings += state.apply(record)
        records.append(record)
    for problem in result.problems:
        if problem.code != "store.torn_tail":  # a torn tail is an append that never completed
            skip_to(problem.index + 1)
    if not records:  # nothing passes because it is empty (DESIGN.md §5)
        findings.append(Finding(code="ledger.empty", position=None, item=None, reason="the ledger holds no record"))
    findings.sort(key=lambda f: (f.position is None, f.position or 0))
    return Replay(origin=result.origin, records=tuple(records), state=state, tree=tree,
                  framing_ok=not result.problems, findings=tuple(findings))


def _counted(frames: Sequence[Frame], progress: Progress | None) -> Iterator[Frame]:
    """``frames``, calling ``progress(done, total)`` after each one is handled."""
    for done, frame in enumerate(frames, 1):
        yield frame
        if progress is not None:
            progress(done, len(frames))


def check_ledger(path: str | Path, trust: Trust, *, checkpoint: str | None = None,
                 policy: Policy | None = None, progress: Progress | None = None) -> AuditReport:
    """Audit the ledger at ``path`` against ``trust``; with ``checkpoint`` (signed note text), check it too; with
    ``policy``, check it after the replay (its findings go to ``policy_findings``, never to ``findings``);
    ``progress``: as :func:`replay_ledger`'s.

    Raises only for a file that cannot be read as a ledger at all (see :func:`replay_ledger`), and
    NoteFormatError for a ``checkpoint`` that is not a well-formed signed checkpoint (a well-formed one that fails
    verification is a finding), and ArgumentError (``input.type``) for an argument of the wrong type.
    """
    expect(trust, Trust, "trust", "a Trust (Trust.parse)")
    expect(checkpoint, (str, type(None)), "checkpoint", "signed checkpoint text (str) or None")
    expect(policy, (Policy, type(None)), "policy", "a Policy or None")
    replay = replay_ledger(path, trust, progress=progress)
    findings = list(replay.findings)
    cp = None
    if checkpoint is not None:
        cp, problems = _check_checkpoint(replay, trust, checkpoint)
        findings += problems
    items = replay.state.items.values()
    return AuditReport(origin=replay.origin, record_count=len(replay.records),
                       root_hash=replay.tree.root() if replay.framing_ok else None,
                       items=len(items), stones=sum(1 for i in items if i.type == "stone"),
                       parties=len(replay.state.registry.parties), findings=tuple(findings), checkpoint=cp,
                       policy=policy, policy_findings=tuple(check_policy(replay, policy)) if policy else ())


def verify_ledger(path: str | Path, trust: Trust, *, checkpoint: str | None = None,
                  policy: Policy | None = None, progress: Progress | None = None) -> AuditReport:
    """As :func:`check_ledger`, but raise RuleError with the first integrity finding, else the first policy
    finding; returns the clean report."""
    report = check_ledger(path, trust, checkpoint=checkpoint, policy=policy, progress=progress)
    raise_first(report.findings)
    raise_first(report.policy_findings)
    return report


def _check_checkpoint(replay: Replay, trust: Trust, note: str) -> tuple[Checkpoint | None, list[Finding]]:
    def fail(code: str, reason: str) -> tuple[None, list[Finding]]:
        return None, [_checkpoint_finding(code, reason)]

    try:  # a malformed note is the caller's input error (raised); a note that fails verification is a finding
        cp = open_checkpoint(note, trust.operators, origin=replay.origin)
    except VerificationError as exc:
        return fail(exc.code, str(exc))
    if not replay.framing_ok:
        return fail("checkpoint.unchecked", "the ledger's framing is damaged, so its tree cannot be compared")
    if cp.tree_size > replay.tree.size:
        return fail("checkpoint.beyond_log", f"tree size {cp.tree_size} > {replay.tree.size} records in the file")
    problems = []
    if replay.tree.root_at(cp.tree_size) != cp.root_hash:
        problems.append(_checkpoint_finding("checkpoint.root_mismatch",
                                            f"the log's root at tree size {cp.tree_size} is not its root hash"))
    problems += _check_registry_line(replay, cp)  # also on a root mismatch: says whether the registry differs
    problems += _check_commitments(replay, cp)
    return (None if problems else cp), problems


def _check_registry_line(replay: Replay, cp: Checkpoint) -> list[Finding]:
    """The checkpoint's registry line against the registry replayed up to its tree size (format.md §7)."""
    try:
        claimed = checkpoint_registry(cp)
    except (InputError, VerificationError) as exc:
        return [_checkpoint_finding(exc.code, str(exc))]
    actual = replay.state.registry.head_at(cp.tree_size)
    if claimed == actual:
        return []

    def show(size: int, head: Digest | None) -> str:
        return f"{size} records, head {head.b64() if head else 'none'}"

    return [_checkpoint_finding("checkpoint.registry_mismatch",
                                f"commits to a registry of {show(*claimed)}; the log's registry at tree size "
                                f"{cp.tree_size} has {show(*actual)}")]


def _check_commitments(replay: Replay, cp: Checkpoint) -> list[Finding]:
    """The checkpoint's heads and identities lines against the log's records below its tree size (format.md
    §7c, §7d): :meth:`ledger.commitments.Commitments.check`."""
    commitments = Commitments()
    for position, record in enumerate(replay.records[:cp.tree_size]):
        if record is not None:
            commitments.add(position, record)
    return [_checkpoint_finding(exc.code, str(exc)) for exc in commitments.problems(cp)]


def _checkpoint_finding(code: str, reason: str) -> Finding:
    return Finding(code=code, position=None, item=None, reason=f"checkpoint: {reason}")
