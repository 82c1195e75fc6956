"""Proof bundles: one item's provenance, verifiable offline from the bundle's bytes and the pinned keys alone.

Wire format (normative text: docs/format.md §7a)::

    bundle bytes = BUNDLE_TAG || canonical-msgpack({
        "v": 3,
        "item": item id,
        "checkpoint": the operator's signed checkpoint (C2SP signed note text, with its stonetrail-registry,
                      stonetrail-heads and stonetrail-identities lines),
        "records": [{"index": leaf index, "leaf": record bytes, "proof": [32-byte hash, ...]}, ...],
        "heads": [{"item": item id, "index": index in the item-head tree, "proof": [32-byte hash, ...]}, ...],
        "identities": [{"index": index in the identity tree, "leaf": leaf input, "proof": [32-byte hash, ...]},
                       ...]})

``records`` are sorted by ``index``, each index once: every record of the item's scope
(:mod:`ledger.provenance`) and every registry record below the checkpoint's tree size, each with its RFC 9162
inclusion proof (PATH(index, D[tree size]), RFC 9162 §2.1.3.1) in the checkpoint's tree. ``heads`` are sorted
by item, one for every scope item (the item, its ancestors, every article one of them was set in): the proof
that the checkpoint names the bundle's last record of it as its latest and the bundle's number of its records
as its count (:mod:`ledger.heads`). ``identities`` are sorted by index: the identity-tree leaf of every item id,
report number and inscription that a scope record claims for a scope item, and the leaves beside each
(:mod:`ledger.identity`).

Verifying (:func:`check_bundle` reports every finding, :func:`verify_bundle` raises on the first) trusts the
:class:`~ledger.trust.Trust` and nothing in the bundle until it is checked: the checkpoint's signature; every
leaf hash computed from the leaf bytes, proven at its index with the tree size and root from the checkpoint;
strictly increasing indices; the registry complete up to the checkpoint (:func:`~ledger.registry.
verify_registry_chain`); a replay of the records, at their log positions, through every custody rule
(:class:`~ledger.custody.CustodyState` in partial mode: an input the bundle should hold but that is not created
yet is unknown, as in a full replay, and a check that needs goods outside the provenance is reported as not
checked, never skipped silently); the scope complete and nothing else in it; no later record of any scope item
left out (its item-head proof); every identity the scope claims held by its claimant ledger-wide (the identity
proofs); then any chosen :class:`~ledger.policy.Policy`. Every Ed25519 signature (the checkpoint's, each record's)
is checked by :meth:`ledger.keys.PublicKey.verify` through the signature engine ``engine=`` names
(:mod:`ledger.engines`; by default libsodium, as the audit), whose verdict and code are the same for every engine
(docs/adr/0021). The checks of the proofs alone, which need no key, are :func:`check_bundle_proofs`
(:mod:`ledger._bundle_proofs`): an exporter runs them on every bundle before it hands it out (:mod:`ledger.export`).
This module does no I/O and never imports the store.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass, field

from ._bundle_format import (
    BUNDLE_TAG,
    BUNDLE_VERSION,
    MAX_BUNDLE_SIZE,
    MAX_PROOF_HASHES,
    Bundle,
    BundleEntry,
    HeadEntry,
    IdentityEntry,
    build_bundle,
    bundle_from_json,
    bundle_to_json,
    encode_bundle,
    read_bundle,
)
from ._bundle_proofs import Fault as _Fault
from ._bundle_proofs import check_bundle_proofs, head_faults, proven_identities, read_entries
from ._bundle_proofs import fault as _fault
from ._bundle_proofs import finding as _finding
from ._bundle_summary import BundleLine, BundleSummary, summarize_bundle
from .checkpoint import Checkpoint, open_checkpoint, read_unverified_checkpoint
from .custody import CustodyState
from .engines import engine_context
from .errors import BundleFormatError, InputError, RuleError, StoneTrailError, expect
from .events import REGISTRY_KINDS
from .findings import Finding
from .hashing import Digest
from .heads import ItemHeads, checkpoint_heads
from .identity import IdentityLeaf, checkpoint_identities, identity_findings
from .policy import Policy, check_policy_records
from .provenance import Provenance, Snapshot, build_provenance, replay_scope
from .record import Record
from .registry import checkpoint_registry, verify_registry_chain
from .scope import Scope, provenance_scope, scope_claims
from .trust import Trust
from .verdicts import Verdicts
from .witnessed import Witnessed, check_witnesses, witness_status

__all__ = [
    "BUNDLE_TAG",
    "BUNDLE_VERSION",
    "MAX_BUNDLE_SIZE",
    "MAX_PROOF_HASHES",
    "RULES_CHECKED",
    "Bundle",
    "BundleEntry",
    "BundleFormatError",
    "BundleLine",
    "BundleReport",
    "BundleSummary",
    "HeadEntry",
    "IdentityEntry",
    "build_bundle",
    "bundle_from_json",
    "bundle_to_json",
    "check_bundle",
    "check_bundle_proofs",
    "encode_bundle",
    "read_bundle",
    "summarize_bundle",
    "verify_bundle",
]

#: What verifying a bundle checks, in order (Provenance.rules_checked; docs/format.md §7a, "Verifying").
RULES_CHECKED = (
    f"bundle: canonical encoding, version {BUNDLE_VERSION}, size caps",
    "checkpoint: C2SP signed note with a valid Ed25519 signature by a pinned operator key",
    "inclusion: each record's RFC 9162 leaf hash computed from its bytes and proven at its leaf index in the "
    "checkpoint's tree (index < tree size)",
    "order: records in strictly increasing leaf order, each once",
    "registry: complete up to the checkpoint (a hash chain ending at its stonetrail-registry line), each "
    "registry record signed by a pinned authority key",
    "signatures: each valid (Ed25519 with the pre-checks), by a key enrolled for its party at that log "
    "position, with the role the kind needs; every required co-signer signed",
    "custody: only the holder (or owner) acts, hand-overs signed by both sides, item states, hash links to "
    "each item's previous record, time never backwards",
    "mass and nature: mass never grows, nature fixed at creation, origin inherited through splits and merges",
    "completeness: every record of the item and of its ancestors back to their mined, grown or registered "
    "roots (and of any article it was set in) is in the bundle, and no other record",
    "latest: the checkpoint's stonetrail-heads line names the bundle's last record of the item (and of each "
    "ancestor, and of each article one of them was set in) as its latest below the tree size, and "
    "the bundle's count of its records as its count: no later record and no statement about one was left out",
    "identities: the checkpoint's stonetrail-identities line lists each item id, report number and inscription "
    "the provenance claims (ignoring case and look-alikes) in one leaf, proven with both neighbours, where no "
    "other item held it first: one id per item, one report number and inscription per stone not consumed",
)


# --- verification ---------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class BundleReport(Verdicts):
    """Every finding of :func:`check_bundle`. ``checkpoint``: the checkpoint, if its signature verified.
    ``provenance``: the summary, only when there is no integrity finding. ``policy_findings`` are kept apart:
    they say the goods may not be accepted under that policy, not that the bundle is forged. ``unchecked``: the
    checks a bundle cannot make (each as the finding code the check would give, at its record), because they
    need records outside the provenance or the whole ledger (docs/format.md §7a, "Not checked by a bundle");
    only a full audit makes them."""

    item: str
    record_count: int
    size_bytes: int
    checkpoint: Checkpoint | None
    findings: tuple[Finding, ...]
    policy: Policy | None = None
    policy_findings: tuple[Finding, ...] = ()
    provenance: Provenance | None = field(default=None)
    unchecked: tuple[Finding, ...] = ()
    witnessed: Witnessed | None = None

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict: verdicts, every finding, and the provenance (None unless valid)."""
        cp = self.checkpoint
        return {
            "item": self.item, "records": self.record_count, "bytes": self.size_bytes,
            "checkpoint": {"origin": cp.origin, "tree_size": cp.tree_size, "root_hash": cp.root_hash.b64()}
            if cp else None,
            "witnessed": self.witnessed.to_json() if self.witnessed else None,
            **self.verdicts_json(),
            "unchecked": [f.to_json() for f in self.unchecked],
            "provenance": self.provenance.to_json() if self.provenance else None,
        }


def check_bundle(data: bytes, trust: Trust, policy: Policy | None = None, *, origin: str | None = None,
                 engine: str | None = None, max_age: int | None = None, now: int | None = None) -> BundleReport:
    """Verify a bundle against ``trust`` alone and report every finding (codes: docs/format.md §7a).

    ``origin``: require the checkpoint to be of this ledger (``checkpoint.origin_mismatch``); by default any
    ledger whose checkpoint a pinned operator key signed is accepted, and the provenance names it. ``engine``:
    the signature engine of every Ed25519 check (:data:`ledger.engines.ENGINES`, after the same pre-checks, with
    the same verdict and code: docs/adr/0021); None: the current one, :data:`ledger.engines.DEFAULT_ENGINE`
    (libsodium) unless the caller chose another (:func:`ledger.engines.signature_engine`).

    The checkpoint must meet the trust file's witness policy, if it has one (:func:`ledger.witnessed.check_witnesses`:
    ``witness.quorum``, ``witness.bad_cosignature``, ``witness.future``), and with ``max_age`` (seconds) have been
    witnessed at most that long before ``now`` (POSIX seconds, default the clock: ``witness.stale``,
    ``witness.no_time``); the report's ``witnessed`` says by whom and when.

    Raises:
        BundleFormatError: the bytes are not a bundle at all (:func:`read_bundle`). ArgumentError: an argument of
            the wrong type. InputError: ``input.engine`` (an unknown engine name). Nothing else: every fault of the
            evidence is a finding.
    """
    run = _start(data, trust, policy, origin, engine, (max_age, now))
    with engine_context(engine):
        findings = tuple(f for f, _ in run.findings())
        policy_findings = run.policy_findings(policy) if policy is not None and policy.active else ()
        provenance = None if findings else run.provenance(policy, policy_findings)
    return BundleReport(item=run.bundle.item, record_count=len(run.bundle.entries), size_bytes=len(data),
                        checkpoint=run.checkpoint, findings=findings, policy=policy,
                        policy_findings=policy_findings, provenance=provenance, unchecked=run.unchecked(),
                        witnessed=run.witnessed)


def verify_bundle(data: bytes, trust: Trust, policy: Policy | None = None, *, origin: str | None = None,
                  engine: str | None = None, max_age: int | None = None, now: int | None = None) -> Provenance:
    """Verify a bundle against ``trust`` alone (and ``origin``, ``engine``, ``max_age`` and ``now``, as
    :func:`check_bundle`); return the item's provenance. Stops at the first fault.

    Raises:
        BundleFormatError: not a bundle. InputError: ``input.engine``. Otherwise the first fault, as the typed
        error that found it (``NoteFormatError`` / ``UnverifiedNoteError`` / ``SignatureError`` for the
        checkpoint, ``WitnessError`` for its witness policy, ``ProofError`` for an inclusion proof,
        ``RecordFormatError`` for a leaf) or a ``RuleError``
        carrying its finding (custody, registry and ``bundle.*`` rules); then, with a policy, a ``RuleError``
        for its first finding.
    """
    run = _start(data, trust, policy, origin, engine, (max_age, now))
    with engine_context(engine):
        for finding, error in run.findings():
            raise error or RuleError(str(finding), code=finding.code, finding=finding)
        policy_findings = run.policy_findings(policy) if policy is not None and policy.active else ()
        for finding in policy_findings:
            raise RuleError(str(finding), code=finding.code, finding=finding)
        return run.provenance(policy, policy_findings)


def _start(data: object, trust: object, policy: object, origin: object, engine: object,
           freshness: tuple[object, object]) -> _Verification:
    """The arguments of :func:`check_bundle` and :func:`verify_bundle`, checked (ArgumentError, ``input.type``,
    naming the argument; InputError ``input.engine`` for an engine name not in :data:`ledger.engines.ENGINES`),
    then the bundle read and its verification set up."""
    expect(data, (bytes, bytearray, memoryview), "data", "the bundle's bytes")
    expect(trust, Trust, "trust", "a Trust (Trust.parse)")
    expect(policy, (Policy, type(None)), "policy", "a Policy or None")
    expect(origin, (str, type(None)), "origin", "a ledger origin (str) or None")
    expect(engine, (str, type(None)), "engine", "a signature engine name (ledger.engines.ENGINES) or None")
    max_age, now = freshness
    expect(max_age, (int, type(None)), "max_age", "seconds (int) or None")
    expect(now, (int, type(None)), "now", "POSIX seconds (int) or None")
    assert (max_age is None or isinstance(max_age, int)) and (now is None or isinstance(now, int))
    assert engine is None or isinstance(engine, str)
    with engine_context(engine):  # an unknown name is refused before the bundle is read
        pass
    assert isinstance(data, bytes | bytearray | memoryview) and isinstance(trust, Trust)
    assert origin is None or isinstance(origin, str)
    return _Verification(read_bundle(bytes(data)), trust, origin, max_age, now)


class _Verification:
    """One pass over a bundle. :meth:`findings` yields each fault as found (so the first can stop it early)
    and leaves the replay behind for :meth:`provenance` and :meth:`policy_findings`."""

    def __init__(self, bundle: Bundle, trust: Trust, origin: str | None, max_age: int | None = None,
                 now: int | None = None) -> None:
        self.bundle, self.trust, self.origin = bundle, trust, origin
        self.max_age, self.now = max_age, now
        self.witnessed: Witnessed | None = None  # the witness policy's verdict on the checkpoint
        self.checkpoint: Checkpoint | None = None  # signature verified
        self.tree: Checkpoint | None = None  # the tree head the proofs are checked against (maybe unverified)
        self.registry: tuple[int, Digest | None] | None = None
        self.records: dict[int, Record] = {}
        self.state: CustodyState | None = None
        self.snapshots: dict[int, dict[str, Snapshot]] = {}
        self.scope: Scope | None = None
        self.heads = ItemHeads()  # the bundle's own records of each item
        self.identities: list[_Fault] = []  # the verdict on the identities the provenance claims
        self.outside_ids: list[Finding] = []  # the ids of outputs outside the provenance: not checked
        self.refused: set[tuple[int, str]] = set()  # outputs not created: another item held the id first

    def findings(self) -> Iterator[_Fault]:
        yield from self._checkpoint()
        if self.tree is None:
            return  # no tree head: nothing below can be checked
        yield from self._entries(self.tree)
        yield from self._registry()
        yield from self._replay(self.tree)
        yield from self._completeness()
        yield from self._latest(self.tree)
        yield from self.identities

    def _checkpoint(self) -> Iterator[_Fault]:
        note = self.bundle.checkpoint
        try:
            self.checkpoint = self.tree = open_checkpoint(note, self.trust.operators, origin=self.origin)
        except StoneTrailError as exc:
            yield _fault(exc, None, None, "checkpoint: ")
            try:  # go on against the unverified tree head, to report every other fault too
                self.tree = read_unverified_checkpoint(note)
            except InputError:
                return
        else:
            yield from self._witnesses(note)
        try:
            self.registry = checkpoint_registry(self.tree)
        except StoneTrailError as exc:
            yield _fault(exc, None, None, "checkpoint: ")

    def _witnesses(self, note: str) -> Iterator[_Fault]:
        """The trust file's witness policy applied to the (operator-verified) checkpoint."""
        try:
            self.witnessed = check_witnesses(note, self.trust, max_age=self.max_age, now=self.now)
        except StoneTrailError as exc:
            yield _fault(exc, None, None, "checkpoint: ")
            with suppress(StoneTrailError):  # a bad cosignature: no status to show
                self.witnessed = witness_status(note, self.trust)

    def _entries(self, tree: Checkpoint) -> Iterator[_Fault]:
        yield from read_entries(self.bundle.entries, tree, self.records)

    def _registry(self) -> Iterator[_Fault]:
        if self.registry is None:
            return
        chain = [r for _, r in sorted(self.records.items()) if r.body.kind in REGISTRY_KINDS]
        try:
            verify_registry_chain(chain, *self.registry)
        except RuleError as exc:
            yield _fault(exc, None, None, "")

    def _replay(self, tree: Checkpoint) -> Iterator[_Fault]:
        heads = self.heads = ItemHeads.of(sorted(self.records.items()))
        scope = self.scope = provenance_scope(self.records, self.bundle.item, heads.index)
        self.identities = list(self._judge_identities(tree, scope))  # reported after the heads, known before:
        refused = self.refused = {(f.position, f.item) for f, _ in self.identities
                                  if f.code == "item.duplicate_id" and f.position is not None and f.item is not None}
        state = self.state = CustodyState(tree.origin, self.trust.authority_keys, partial=True, track=scope.items,
                                          refused=refused,  # an id another item held first is not created
                                          subset={r.record_hash for r in self.records.values()})
        for finding in replay_scope(state, self.records, heads, self.snapshots):
            yield finding, None

    def _completeness(self) -> Iterator[_Fault]:
        scope, target = self.scope, self.bundle.item
        assert scope is not None
        if not scope.items:
            yield _finding("bundle.incomplete", None, f"no record of the bundle creates {target}", target)
        for parent, child, position in scope.missing:
            yield _finding("bundle.incomplete", position, f"{child} was made from {parent}, which no record of the "
                                                          "bundle creates", parent)
        for position, record in sorted(self.records.items()):
            if record.body.kind in REGISTRY_KINDS:
                continue
            name = scope.positions.get(position)
            if name is None:
                yield _finding("bundle.extra_record", position, f"a {record.body.kind} record outside the "
                               f"provenance of {target} (another item's record, or one past an ancestor's end)")
            elif name not in self.snapshots[position] and (position, name) not in self.refused:
                yield _finding("bundle.unapplied", position, f"the replay did not apply this record to {name}", name)

    def _latest(self, tree: Checkpoint) -> Iterator[_Fault]:
        """Each scope item has a head proof naming its last record in the bundle."""
        scope = self.scope
        assert scope is not None
        try:
            count, root = checkpoint_heads(tree)
        except StoneTrailError as exc:
            yield _fault(exc, None, None, "checkpoint: ")
            return
        given = {h.item: h for h in self.bundle.heads}
        for name in scope.items:
            head = given.pop(name, None)
            mine = self.heads.index.get(name)
            if head is None or not mine:
                yield _finding("bundle.head_missing", None, f"no proof of the latest record of {name}", name)
                continue
            yield from head_faults(head, mine, self.records, count, root)
        for name in given:
            yield _finding("bundle.extra_head", None, f"a head proof for {name}, which is not in this provenance",
                           name)

    def _judge_identities(self, tree: Checkpoint, scope: Scope) -> Iterator[_Fault]:
        """Every identity a record of the provenance claims for a scope item is that item's in the checkpoint's
        identity tree (ids, report numbers, inscriptions); the ids of outputs outside the scope are not checked."""
        try:
            count, root = checkpoint_identities(tree)
        except StoneTrailError as exc:
            yield _fault(exc, None, None, "checkpoint: ")
            return
        leaves: dict[int, IdentityLeaf] = {}
        yield from proven_identities(self.bundle.identities, count, root, leaves)
        claims, outside = scope_claims(self.records, scope)
        self.outside_ids = [Finding(code="item.duplicate_id", position=position, item=None, reason=(
            f"not checked: that no other item holds the id of {', '.join(ids[:3])}"
            f"{f' and {len(ids) - 3} more' if len(ids) > 3 else ''} (outputs of this record outside this "
            "provenance)")) for position, ids in outside]
        for finding in identity_findings(claims, leaves, count):
            yield finding, None
        ranks = {(leaf.kind, leaf.key): index for index, leaf in leaves.items()}
        wanted = {r for kind, key, _, _ in claims if (kind, key) in ranks
                  for r in range(ranks[kind, key] - 1, ranks[kind, key] + 2)}
        for index in sorted(set(leaves) - wanted):
            yield _finding("bundle.extra_identity", None, f"identity leaf {index} is not one this provenance claims, "
                           "nor a neighbour of one")

    def unchecked(self) -> tuple[Finding, ...]:
        """The checks the replay could not make (after :meth:`findings`), in log order."""
        found = [*self.state.unchecked, *self.outside_ids] if self.state is not None else []
        return tuple(sorted(found, key=lambda f: f.position or 0))

    def policy_findings(self, policy: Policy) -> tuple[Finding, ...]:
        """The policy's findings over the provenance's items and records (after :meth:`findings`)."""
        if self.state is None or self.scope is None or self.tree is None:
            return ()
        items = {name: self.state.items[name] for name in self.scope.items if name in self.state.items}
        return tuple(check_policy_records(sorted(self.records.items()), items, policy, end=self.tree.tree_size))

    def provenance(self, policy: Policy | None, policy_findings: tuple[Finding, ...]) -> Provenance:
        """The summary (after :meth:`findings` found nothing)."""
        state, scope = self.state, self.scope
        assert state is not None and scope is not None and self.checkpoint is not None and self.registry is not None
        # rules_checked: what the bundle proves; a policy's rules are judged, not proven (their verdict is apart)
        return build_provenance(state, self.records, scope, self.snapshots, self.checkpoint,
                                registry_size=self.registry[0], rules_checked=RULES_CHECKED, policy=policy,
                                policy_findings=policy_findings, unchecked=self.unchecked())
