"""What an audit tells (:func:`ledger.audit.check_ledger`): :class:`AuditReport`, with a
:class:`CheckpointCheck` for each checkpoint given to it."""

from __future__ import annotations

from dataclasses import dataclass, field

from .checkpoint import Checkpoint
from .findings import Finding
from .hashing import Digest
from .item import Inventory
from .policy import Policy
from .verdicts import Verdicts

__all__ = ["AuditReport", "CheckpointCheck"]


@dataclass(frozen=True, slots=True)
class CheckpointCheck:
    """One checkpoint given to an audit, in the order given: ``checkpoint``, the note opened under the trusted
    operator keys (None: it did not open, or its witness policy is not met), and the ``findings`` against it
    (``checkpoint.*``, ``witness.*``; none: checked against the log and matches); ``witnessed``: how it met the
    trust file's witness policy (:meth:`ledger.witnessed.Witnessed.describe`; None: no policy, or not met)."""

    checkpoint: Checkpoint | None
    findings: tuple[Finding, ...]
    witnessed: str | None = None

    @property
    def matches(self) -> bool:
        """Opened under the trusted keys and matching the log at its tree size."""
        return self.checkpoint is not None and not self.findings

    def to_json(self) -> dict[str, object]:
        """``{tree_size, root_hash, matches, codes, witnessed}`` (tree size and root null for a note that did not
        open)."""
        cp = self.checkpoint
        return {"tree_size": cp.tree_size if cp else None, "root_hash": cp.root_hash.b64() if cp else None,
                "matches": self.matches, "codes": [f.code for f in self.findings], "witnessed": self.witnessed}


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditReport(Verdicts):
    """Result of an audit: counts, the RFC 9162 root hash, and every finding.

    ``record_count``: positions in the log (damaged frames included). ``root_hash``: None when the file's
    framing is damaged, since the tree is then unknown. ``checkpoint``: the largest signed checkpoint that was
    checked against the file and matched it (None if none was given or none matched); ``checkpoints``: each one
    given, in order, with what was found against it; ``observed``: the same for the notes given to observe, which
    are not judged (none of their findings is among ``findings``). ``policy``: the policy checked
    (None: none); ``policy_findings``: its findings (docs/format.md "Policies"), kept apart from ``findings``:
    they say the goods may not be accepted under that policy, not that the ledger is damaged or forged.
    ``resumed_at``: the records a saved audit state covered, not read again (``check_ledger(resume=...)``; 0 for
    a full audit): the rest of the report is the same either way. ``state_unsaved``: why the state asked for
    (``save_state``) was not saved — the file's framing is damaged, which the findings name (code
    ``audit.state_unsafe`` in the message) — or None. ``omitted``: the findings past the audit's limit
    (``check_ledger(max_findings=...)``), not kept but counted, as (code, count) sorted by code; ``findings`` then
    holds the first ones in log order (:mod:`ledger.kept_findings`), and :attr:`finding_count` counts them all.
    ``inventory``: every item at the end of the log, its custody state and the head of its records
    (``check_ledger(inventory=True)``; else None). ``unreadable``: the parts of the file this audit read that cannot
    be read (damaged spans, a torn tail included, and records that do not decode), among the findings or not; a
    resumed audit counts those after its state only.
    """

    origin: str
    record_count: int
    root_hash: Digest | None
    items: int
    stones: int
    parties: int
    findings: tuple[Finding, ...]
    checkpoint: Checkpoint | None = None
    checkpoints: tuple[CheckpointCheck, ...] = ()
    observed: tuple[CheckpointCheck, ...] = field(default=(), compare=False)
    policy: Policy | None = None
    policy_findings: tuple[Finding, ...] = ()
    level: str = "custody"
    resumed_at: int = 0
    state_unsaved: str | None = None
    omitted: tuple[tuple[str, int], ...] = ()
    inventory: Inventory | None = field(default=None, compare=False, repr=False)
    unreadable: int = field(default=0, compare=False)

    @property
    def finding_count(self) -> int:
        """Every finding, those kept in :attr:`findings` and those :attr:`omitted`."""
        return len(self.findings) + sum(count for _, count in self.omitted)

    def to_json(self) -> dict[str, object]:
        """JSON-ready summary (hashes in standard base64; the goods' counts null below level custody, which does
        not replay them)."""
        cp, full = self.checkpoint, self.level in ("custody", "policy")
        return {
            "origin": self.origin, "records": self.record_count,
            "root_hash": self.root_hash.b64() if self.root_hash else None,
            "items": self.items if full else None, "stones": self.stones if full else None,
            "parties": self.parties if full else None,
            "checkpoint": {"tree_size": cp.tree_size, "root_hash": cp.root_hash.b64()} if cp else None,
            "checkpoints": [check.to_json() for check in self.checkpoints],
            "level": self.level, "full_audit": full,
            **self.verdicts_json(),
            "finding_count": self.finding_count, "findings_omitted": dict(self.omitted),
        }
