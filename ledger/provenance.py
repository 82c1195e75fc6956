"""One item's provenance: what the records of its scope (:mod:`ledger.scope`) say, as a :class:`Provenance`.

Pure: replayed custody state and records in, values out. The verifier (:mod:`ledger.bundle`) summarises a valid
bundle with it, and :mod:`ledger.history` tells an item's path with the same replay (:func:`replay_scope`) and
steps (:func:`path_steps`), so ``show`` and ``proof verify`` cannot disagree.

Hash links make the custody records of the scope complete: each record names the previous record of every item
it touches, and a creating record names its parents' latest records. The rest is the checkpoint's item heads
(:mod:`ledger.heads`): the bundle proves, for *every* scope item, that the checkpoint names its last record as
the latest and its number of records as the item's, so a provenance is current at the checkpoint's tree size.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ._describe import describe, format_ct
from .checkpoint import Checkpoint
from .custody import CustodyState
from .events import Attested, Corrected, Graded, Grown, Inscribed, Mined, Registered, Verified
from .findings import Finding
from .heads import ItemHeads
from .policy import Policy
from .record import Record
from .scope import Scope

__all__ = ["UNAPPLIED", "Grading", "Inscription", "MassPoint", "Provenance", "Root", "Snapshot", "Step",
           "build_provenance", "path_steps", "replay_scope", "snapshot"]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """An item right after a record: who holds and owns it, its mass (mct), its state and ``country``, where it
    is (ISO code; the destination's only once imported). A statement (``attested``, ``corrected``) is no custody
    event: the snapshot after it is the one before it."""

    holder: str
    owner: str
    mass_mct: int
    state: str
    country: str

    def describe(self, *, live: bool = True) -> str:
        """One line for people, e.g. ``held by trader-b, owned by trader-b, in BE, 1.490 ct, live``: how both
        ``stonetrail show`` and ``stonetrail proof verify`` print an item's state. ``live=False`` leaves the state
        out when it is ``live`` (a path's steps name only the others: in transit, locked, consumed, retired)."""
        state = f", {self.state.replace('_', ' ')}" if live or self.state != "live" else ""
        return f"held by {self.holder}, owned by {self.owner}, in {self.country}, {format_ct(self.mass_mct)}{state}"


#: The snapshot of an item a record names but was not applied to (a faulty ledger: the item did not exist yet,
#: or its id was another item's); only an audit's history shows one, a valid bundle never.
UNAPPLIED = Snapshot("unknown", "unknown", 0, "not applied", "unknown")


def snapshot(state: CustodyState, names: Iterable[str]) -> dict[str, Snapshot]:
    """Snapshots of the items ``names`` (those a record is a record of: :meth:`ledger.heads.ItemHeads.items_of`),
    taken right after it was applied."""
    return {n: Snapshot(i.holder, i.owner, i.mass_mct, i.state, i.country) for n in names
            if (i := state.items.get(n))}


def replay_scope(state: CustodyState, records: Mapping[int, Record], heads: ItemHeads,
                 snapshots: dict[int, dict[str, Snapshot]]) -> Iterator[Finding]:
    """Apply ``records`` (a scope's, and maybe the registry's, by position) to ``state`` in log order, yielding
    each finding as found, and fill ``snapshots`` (position -> the snapshot of each item the record is a record
    of, per ``heads``, right after it). The one replay behind both a bundle's path and ``show``'s, so that
    both tell the same history."""
    for position, record in sorted(records.items()):
        state.skip_to(position)
        yield from state.apply(record)
        snapshots[position] = snapshot(state, heads.items_of(record))


def path_steps(records: Mapping[int, Record], scope: Scope,
               snapshots: Mapping[int, Mapping[str, Snapshot]]) -> tuple[Step, ...]:
    """The custody path: one :class:`Step` per record of ``scope``, oldest first, each with the state of the
    scope item it is shown under right after it (:data:`UNAPPLIED` if the replay did not apply it there)."""
    return tuple(_step(p, records[p], name, snapshots.get(p, {}).get(name, UNAPPLIED))
                 for p, name in sorted(scope.positions.items()))


@dataclass(frozen=True, slots=True, kw_only=True)
class Root:
    """A record that created goods from nothing: ``mined`` / ``grown`` (``site``: mine or facility) or
    ``registered`` (origin unknown, ``country`` XX). Its claims are attested by ``producer``, never proven."""

    position: int
    time_ms: int
    kind: str
    item: str
    producer: str
    country: str
    site: str | None
    mass_mct: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Step:
    """One record of the custody path: what happened to ``item`` (a scope item) and its state right after
    (:class:`Snapshot`: ``holder``, ``owner``, ``state``, ``mass_mct``, ``country``); ``place``: where the record
    took place; ``time_ms``: ms since the Unix epoch, UTC."""

    position: int
    time_ms: int
    kind: str
    place: str
    item: str
    holder: str
    owner: str
    state: str
    mass_mct: int
    country: str
    signers: tuple[str, ...]
    detail: str

    @property
    def after(self) -> Snapshot:
        """The item's state right after this record."""
        return Snapshot(self.holder, self.owner, self.mass_mct, self.state, self.country)


@dataclass(frozen=True, slots=True, kw_only=True)
class MassPoint:
    """The recorded mass of a scope item after a record (creation, or a grading that lowered it)."""

    position: int
    time_ms: int
    item: str
    kind: str
    mass_mct: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Grading:
    """A grading report as the lab signed it (``mass_mct`` as weighed)."""

    position: int
    time_ms: int
    item: str
    report: str
    lab: str
    mass_mct: int
    colour: str
    clarity: str
    nature: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Inscription:
    """A laser inscription recorded on a stone, with the lab that co-signed it."""

    position: int
    time_ms: int
    item: str
    inscription: str
    lab: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Provenance:
    """What a verified proof bundle shows about one item, current at the checkpoint's ``tree_size``; ``as_of`` is
    the position of the latest record in its scope (module docstring).

    ``holder``, ``owner``, ``state``, ``country`` (where the item is): after the scope's last record (a
    statement changes none of them; while set, a stone's follow its article's).
    ``origin``: {ISO country: mct} (``XX``: unknown), inherited through splits and summed through merges; each
    root says who attested it. ``attested``: the claims that rest on a party's word, not on the ledger's
    rules (where a stone was mined, what a lab measured). ``path``: every record of the scope, oldest first.
    ``policy_findings``: the chosen policy's verdict (empty: compliant, or no policy). ``unchecked``: the
    checks the bundle could not make (:attr:`ledger.bundle.BundleReport.unchecked`): not proven.
    """

    item: str
    type: str
    nature: str
    mass_mct: int
    state: str
    holder: str
    owner: str
    country: str
    article: str | None
    origin: Mapping[str, int]
    roots: tuple[Root, ...]
    path: tuple[Step, ...]
    mass_history: tuple[MassPoint, ...]
    gradings: tuple[Grading, ...]
    inscriptions: tuple[Inscription, ...]
    attested: tuple[str, ...]
    as_of: int
    checkpoint_origin: str
    tree_size: int
    root_hash: bytes
    registry_size: int
    record_count: int
    rules_checked: tuple[str, ...]
    policy: Policy | None = None
    policy_findings: tuple[Finding, ...] = field(default=())
    unchecked: tuple[Finding, ...] = field(default=())

    @property
    def compliant(self) -> bool:
        """True when the policy (if any) has no finding."""
        return not self.policy_findings

    def warning(self) -> str | None:
        """Why the item is out of the trade, in one sentence ("R-1-A is retired (retired: stolen, record 10); ..."),
        or None while it is in it: what every reader of a bundle must see before anything else."""
        if self.state not in ("retired", "consumed"):
            return None
        last = next((s for s in reversed(self.path) if s.item in (self.item, self.article)), None)
        why = f" ({last.detail}, record {last.position})" if last else ""
        return f"{self.item} is {self.state}{why}; it is no longer in the trade as this item"

    def attested_by(self) -> dict[str, tuple[str, ...]]:
        """{country: producers whose root records attest goods from it}, sorted."""
        by: dict[str, set[str]] = {}
        for root in self.roots:
            by.setdefault(root.country, set()).add(root.producer)
        return {c: tuple(sorted(p)) for c, p in sorted(by.items())}

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (masses in mct, times in ms since the Unix epoch UTC, the root hash in base64)."""
        return {
            "item": self.item, "type": self.type, "nature": self.nature, "mass_mct": self.mass_mct,
            "state": self.state, "holder": self.holder, "owner": self.owner, "country": self.country,
            "article": self.article,
            "origin": dict(self.origin), "attested_by": {c: list(p) for c, p in self.attested_by().items()},
            "roots": _rows(self.roots), "path": _rows(self.path), "mass_history": _rows(self.mass_history),
            "gradings": _rows(self.gradings), "inscriptions": _rows(self.inscriptions),
            "attested": list(self.attested), "as_of": self.as_of,
            "checkpoint": {"origin": self.checkpoint_origin, "tree_size": self.tree_size,
                           "root_hash": base64.b64encode(self.root_hash).decode("ascii"),
                           "registry_size": self.registry_size},
            "records": self.record_count, "rules_checked": list(self.rules_checked),
            "policy": self.policy.describe() if self.policy else None, "compliant": self.compliant,
            "policy_findings": [f.to_json() for f in self.policy_findings],
            "unchecked": [f.to_json() for f in self.unchecked],
        }


def _rows(values: tuple[Any, ...]) -> list[dict[str, object]]:
    """Rows of small dataclasses as JSON-ready dicts (tuples as lists)."""
    return [{k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(row).items()}
            for row in values]


def build_provenance(state: CustodyState, records: Mapping[int, Record], scope: Scope,
                     snapshots: Mapping[int, Mapping[str, Snapshot]], checkpoint: Checkpoint, *,
                     registry_size: int, rules_checked: tuple[str, ...], policy: Policy | None = None,
                     policy_findings: tuple[Finding, ...] = (), unchecked: tuple[Finding, ...] = ()) -> Provenance:
    """Summarise a replay whose scope is complete (the caller has checked it). Pure; raises KeyError only if
    ``scope`` does not belong to ``state`` and ``records``."""
    item = state.items[scope.target]
    path = path_steps(records, scope, snapshots)
    roots = tuple(r for p, name in sorted(scope.positions.items()) if (r := _root(p, records[p], name)))
    return Provenance(
        item=item.id, type=item.type, nature=item.nature, mass_mct=item.mass_mct, state=item.state,
        holder=item.holder, owner=item.owner, country=item.country, article=item.article,
        origin=MappingProxyType(dict(sorted(item.origin.items()))), roots=roots, path=path,
        mass_history=_mass_history(path), gradings=_gradings(records, scope),
        inscriptions=_inscriptions(records, scope), attested=_attested(records, scope, roots),
        as_of=max(scope.positions), checkpoint_origin=checkpoint.origin, tree_size=checkpoint.tree_size,
        root_hash=bytes(checkpoint.root_hash), registry_size=registry_size, record_count=len(records),
        rules_checked=rules_checked, policy=policy, policy_findings=policy_findings, unchecked=unchecked)


def _step(position: int, record: Record, name: str, snap: Snapshot) -> Step:
    body = record.body
    return Step(position=position, time_ms=body.time_ms, kind=body.kind, place=body.place, item=name,
                holder=snap.holder, owner=snap.owner, state=snap.state, mass_mct=snap.mass_mct, country=snap.country,
                signers=tuple(s.party for s in record.signatures), detail=describe(record, focus=name))


def _root(position: int, record: Record, name: str) -> Root | None:
    body, event = record.body, record.body.event
    if not isinstance(event, Mined | Grown | Registered) or not body.outputs:
        return None
    out = body.outputs[0]
    site = event.mine if isinstance(event, Mined) else event.facility if isinstance(event, Grown) else None
    country = event.country if isinstance(event, Mined | Grown) else "XX"
    return Root(position=position, time_ms=body.time_ms, kind=body.kind, item=out.id, producer=body.actor,
                country=country, site=site, mass_mct=out.mass_mct)


def _mass_history(path: tuple[Step, ...]) -> tuple[MassPoint, ...]:
    points: list[MassPoint] = []
    last: dict[str, int] = {}
    for step in path:
        if last.get(step.item) != step.mass_mct:
            last[step.item] = step.mass_mct
            points.append(MassPoint(position=step.position, time_ms=step.time_ms, item=step.item, kind=step.kind,
                                    mass_mct=step.mass_mct))
    return tuple(points)


def _subjects(records: Mapping[int, Record], scope: Scope) -> list[tuple[int, Record, str]]:
    """(position, record, scope item it is about) for records whose input is a scope item."""
    found = []
    for position, name in sorted(scope.positions.items()):
        record = records[position]
        inputs = [i for i, _ in record.body.inputs if i in scope.items]
        if inputs:
            found.append((position, record, name if name in inputs else inputs[0]))
    return found


def _gradings(records: Mapping[int, Record], scope: Scope) -> tuple[Grading, ...]:
    return tuple(Grading(position=p, time_ms=r.body.time_ms, item=name, report=e.report, lab=e.lab,
                         mass_mct=e.mass_mct, colour=e.colour, clarity=e.clarity, nature=e.nature)
                 for p, r, name in _subjects(records, scope) if isinstance(e := r.body.event, Graded))


def _inscriptions(records: Mapping[int, Record], scope: Scope) -> tuple[Inscription, ...]:
    return tuple(Inscription(position=p, time_ms=r.body.time_ms, item=name, inscription=e.inscription, lab=e.lab)
                 for p, r, name in _subjects(records, scope) if isinstance(e := r.body.event, Inscribed))


def _attested(records: Mapping[int, Record], scope: Scope, roots: tuple[Root, ...]) -> tuple[str, ...]:
    """The claims of this provenance that rest on one party's word (DESIGN.md §1: "attested", never "proven")."""
    claims = []
    for root in roots:
        if root.kind == "registered":
            claims.append(f"{root.item}: registered by {root.producer} with no recorded history; its nature "
                          f"attested at registration by {root.producer}; origin unknown (XX) (record {root.position})")
        else:
            claims.append(f"{root.item}: {root.kind} at {root.site} ({root.country}), {format_ct(root.mass_mct)}; "
                          f"origin and nature attested by {root.producer} (record {root.position})")
    for position, record, name in _subjects(records, scope):
        event = record.body.event
        if isinstance(event, Graded):
            claims.append(f"{name}: {format_ct(event.mass_mct)} {event.colour} {event.clarity} {event.nature}, "
                          f"attested by {event.lab} (report {event.report}, record {position})")
        elif isinstance(event, Inscribed):
            claims.append(f"{name}: inscription {event.inscription!r} attested by {event.lab} (record {position})")
        elif isinstance(event, Verified):
            claims.append(f"{name}: G7 origin verification record by {event.node}: origin "
                          f"{', '.join(event.countries)} (attested, record {position})")
    where = {r.record_hash: p for p, r in records.items()}
    for position, name in sorted(scope.positions.items()):
        record = records[position]
        if isinstance(event := record.body.event, Attested | Corrected):
            what = "attests" if isinstance(event, Attested) else "corrects"
            claims.append(f"{name}: {record.body.actor} {what} record {where.get(event.subject, '?')}: "
                          f"{event.statement!r} (record {position})")
    return tuple(claims)
