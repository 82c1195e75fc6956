"""A verified bundle for people: its provenance with the records it rests on, who signed each and in which role,
and the split and merge graph back to the roots. What the provenance report (:mod:`ledger.report`) and the
customs annexes (:mod:`ledger.annex`) are drawn from, and what ``show`` and ``proof verify`` print as a table.

Pure: a :class:`~ledger.bundle.BundleReport` that :func:`~ledger.bundle.check_bundle` accepted, and the bundle's
bytes it judged, in; values out. Nothing here is trusted that the verifier did not check: the records are the
bundle's leaves at the positions of the verified provenance's path, the parties are the registry records the
verifier proved complete. Every text field of a record stays untrusted text: renderers escape it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from ._bundle_format import read_bundle
from .bundle import BundleReport
from .errors import ArgumentError, expect
from .events import Enrolled, Merged, Set, Split
from .provenance import Provenance, Step
from .record import Record
from .rules import RULES

__all__ = ["Dossier", "Edge", "JourneyStep", "PartyInfo", "Signer", "dossier_of", "signer_roles"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PartyInfo:
    """An enrolled party as the registry names it: ``name`` is free text (untrusted), ``roles`` sorted."""

    id: str
    name: str
    roles: tuple[str, ...]
    country: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Signer:
    """One signature of a record: the ``party`` and the ``role`` the custody rules needed of it there (a
    registry role such as ``lab``, or ``holder`` / ``receiver`` where any enrolled party may sign)."""

    party: str
    role: str


@dataclass(frozen=True, slots=True, kw_only=True)
class JourneyStep:
    """A step of the custody path (:class:`~ledger.provenance.Step`) with its record's hash (hex) and signers."""

    step: Step
    record_hash: str
    signers: tuple[Signer, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Edge:
    """A record that made ``child`` from ``parents`` (a split, merge or setting): ``others`` are its other outputs
    (a split) or other inputs (a setting) outside the scope, as (id, mct); ``loss_mct`` as declared."""

    position: int
    kind: str
    place: str
    parents: tuple[str, ...]
    child: str
    others: tuple[tuple[str, int], ...]
    loss_mct: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Dossier:
    """A verified bundle for people (module docstring). ``masses``: each scope item's mass when created (mct);
    ``types``: its item type; ``edges``: the records that made scope items from others, oldest first."""

    report: BundleReport
    provenance: Provenance
    records: Mapping[int, Record]
    parties: Mapping[str, PartyInfo]
    journey: tuple[JourneyStep, ...]
    edges: tuple[Edge, ...]
    masses: Mapping[str, int]
    types: Mapping[str, str]


def dossier_of(report: BundleReport, data: bytes) -> Dossier:
    """The dossier of the bundle ``data`` that :func:`~ledger.bundle.check_bundle` judged in ``report``.

    Raises:
        ArgumentError: ``report`` is not valid (it has integrity findings, so no provenance: a report or an annex
            is drawn only from a verified bundle), or ``data`` is not the bundle it judged.
    """
    expect(report, BundleReport, "report", "a BundleReport (check_bundle)")
    expect(data, (bytes, bytearray, memoryview), "data", "the bundle's bytes")
    p = report.provenance
    if p is None or not report.ok:
        raise ArgumentError("report: the bundle is not valid, and only a verified provenance can be shown")
    bundle = read_bundle(bytes(data))
    if bundle.item != report.item or len(data) != report.size_bytes:
        raise ArgumentError("data: not the bundle the report judged")
    records = {e.index: Record.from_bytes(e.leaf) for e in bundle.entries}  # all decode: the bundle verified
    parties = _parties(records.values())
    wanted = {s.position for s in p.path}
    scope = {i: r for i, r in records.items() if i in wanted}
    journey = tuple(JourneyStep(step=s, record_hash=scope[s.position].record_hash.hex(),
                                signers=signer_roles(scope[s.position], parties)) for s in p.path)
    items = {h.item for h in bundle.heads}  # every scope item (the bundle proves each one's head), not only those
    # the path shows a record under: a split's second output merged back into the line has no step of its own
    masses, types = _created(scope, items)
    return Dossier(report=report, provenance=p, records=MappingProxyType(scope),
                   parties=MappingProxyType(parties), journey=journey, edges=_edges(scope, items),
                   masses=MappingProxyType(masses), types=MappingProxyType(types))


def _parties(records: Iterable[Record]) -> dict[str, PartyInfo]:
    """Every enrolled party, from the registry records (the verifier proved them complete to the checkpoint)."""
    parties: dict[str, PartyInfo] = {}
    for record in records:
        if isinstance(e := record.body.event, Enrolled):
            parties[e.party] = PartyInfo(id=e.party, name=e.name, roles=e.roles, country=e.country)
    return parties


def signer_roles(record: Record, parties: Mapping[str, PartyInfo]) -> tuple[Signer, ...]:
    """Who signed ``record`` and as what: the actor in a role its kind's rule accepts (``holder`` where any
    enrolled party may act), the co-signer in the rule's co-signer role (``receiver`` of a transfer)."""
    rule = RULES.get(record.body.kind)
    out = []
    for sig in record.signatures:
        roles = set(parties[sig.party].roles) if sig.party in parties else set()
        if rule is None:
            role = "authority"
        elif sig.party == record.body.actor:
            role = _pick(roles & rule.actor_roles) or "holder"
        else:
            role = _pick(roles & rule.cosigner_role) or ("receiver" if rule.cosigner == "to" else "co-signer")
        out.append(Signer(party=sig.party, role=role))
    return tuple(out)


def _pick(roles: set[str]) -> str:
    return sorted(roles)[0] if roles else ""


def _created(scope: Mapping[int, Record], items: set[str]) -> tuple[dict[str, int], dict[str, str]]:
    masses: dict[str, int] = {}
    types: dict[str, str] = {}
    for _, record in sorted(scope.items()):
        for out in record.body.outputs:
            if out.id in items and out.id not in masses:
                masses[out.id], types[out.id] = out.mass_mct, out.type
    return masses, types


def _edges(scope: Mapping[int, Record], items: set[str]) -> tuple[Edge, ...]:
    edges = []
    for position, record in sorted(scope.items()):
        body, event = record.body, record.body.event
        if not isinstance(event, Split | Merged | Set):
            continue
        inputs = tuple(i for i, _ in body.inputs)
        for out in body.outputs:
            if out.id not in items:
                continue
            if isinstance(event, Set):  # the article's other stones are outside the scope: mass unknown here (0)
                parents = tuple(i for i in inputs if i in items)
                others = tuple((i, 0) for i in inputs if i not in items)
            else:
                parents = inputs
                others = tuple((o.id, o.mass_mct) for o in body.outputs if o.id not in items)
            loss = event.loss_mct if isinstance(event, Split | Merged) else 0
            edges.append(Edge(position=position, kind=body.kind, place=body.place, parents=parents, child=out.id,
                              others=others, loss_mct=loss))
    return tuple(edges)
