"""Custody rules: the lifecycle as one transition table, applied record by record.

:class:`CustodyState` replays records in log order. For each record it checks, and names every fault:

* the record belongs to this ledger (``record.wrong_origin``) and has the shape its kind needs (``record.shape``);
* every signature verifies (``sig.*``) with a key enrolled for the signing party at that log position
  (``sig.unknown_key``); every required signer signed (``sig.missing``) and nobody else (``sig.unexpected``);
  each signer holds the role the kind needs (``role.not_granted``) — DOMAIN.md "Who signs";
* every input item exists (``custody.unknown_item``), is live (``custody.consumed``), is held by the actor
  (``custody.not_holder``), and is linked to its latest record (``chain.link_mismatch``; a link to an older
  record of the item is a second record claiming the same predecessor: ``chain.fork``); time never goes
  backwards along an item's chain (``chain.time_backwards``);
* outputs get fresh ids, case-insensitively (``item.duplicate_id``); mass never grows (``mass.exceeds_input``,
  DOMAIN.md R10); nature is fixed at creation (``nature.mismatch``, R9); one grading report number per live
  stone (``identity.duplicate_report``, R11); a producer attests only mines of the country it is enrolled in
  (``origin.foreign_mine``: multinational miners enrol one party per country).

A record with findings is still applied where it can be (so that one fault is reported once, not again on every
later record of the item), except a forking record, which changes nothing (docs/adr/0003).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .errors import KeyFormatError, SignatureError
from .events import REGISTRY_KINDS, Graded, Mined, Split, Transferred
from .findings import Finding
from .hashing import Digest
from .record import Record
from .registry import Registry

__all__ = ["RULES", "CustodyState", "Item", "Rule", "split_origin"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """One row of the transition table.

    ``actor_roles``: roles of which the actor needs one (empty: any enrolled party). ``inputs`` / ``outputs``:
    allowed (min, max) counts. ``consumes_all``: every input dies. ``cosigner``: name of the event field naming
    a second party who must sign, with ``cosigner_role`` (empty: any enrolled party).
    """

    actor_roles: frozenset[str]
    inputs: tuple[int, int]
    outputs: tuple[int, int]
    consumes_all: bool = False
    cosigner: str | None = None
    cosigner_role: str | None = None


_MANY = 1000
#: The transition table: kind -> rule. ``enrolled`` is checked by :class:`~ledger.registry.Registry`.
RULES: dict[str, Rule] = {
    "mined": Rule(actor_roles=frozenset({"producer"}), inputs=(0, 0), outputs=(1, 1)),
    "transferred": Rule(actor_roles=frozenset(), inputs=(1, _MANY), outputs=(0, 0), cosigner="to"),
    "split": Rule(actor_roles=frozenset({"producer", "trader", "manufacturer"}), inputs=(1, 1),
                  outputs=(1, _MANY), consumes_all=True),
    "graded": Rule(actor_roles=frozenset(), inputs=(1, 1), outputs=(0, 0), cosigner="lab", cosigner_role="lab"),
}


@dataclass(slots=True, kw_only=True)
class Item:
    """The replayed state of one item. ``origin``: {ISO country: millicarats}; ``history``: record positions."""

    id: str
    type: str
    mass_mct: int
    holder: str
    nature: str
    origin: dict[str, int]
    head: Digest
    head_time_ms: int
    live: bool = True
    report: str | None = None
    history: list[int] = field(default_factory=list)
    hashes: set[Digest] = field(default_factory=set)


def split_origin(origin: dict[str, int], masses: list[int]) -> list[dict[str, int]]:
    """Share an origin composition among outputs in proportion to their masses (millicarats).

    Each output's composition sums to its own mass; integer shares use the largest-remainder method with ties
    broken by country code, so the result is deterministic. Every country of the input appears in every output
    with a share of at least 0 — a stone cut from a mixed parcel is tainted by all its countries (DESIGN.md §3).
    """
    total = sum(origin.values())
    result = []
    for mass in masses:
        exact = {c: m * mass for c, m in origin.items()}
        share = {c: v // total for c, v in exact.items()} if total else dict.fromkeys(origin, 0)
        left = mass - sum(share.values())
        for c in sorted(origin, key=lambda c: (-(exact[c] % total if total else 0), c))[:max(left, 0)]:
            share[c] += 1
        result.append(share)
    return result


class CustodyState:
    """Replays a ledger's records in order and collects findings (the pure core of audit and verification).

    Args:
        origin: the ledger's origin line (every record must name it: no replay across ledgers).
        authority_keys: trusted accreditation-authority public keys (raw 32 bytes).
    """

    def __init__(self, origin: str, authority_keys: Iterable[bytes]) -> None:
        self.origin = origin
        self.registry = Registry(authority_keys)
        self.items: dict[str, Item] = {}
        self.reports: dict[str, str] = {}  # live grading report number -> stone id
        self.folded_ids: set[str] = set()  # case-folded item ids: R-1 and r-1 cannot both exist
        self.size = 0

    def check(self, record: Record) -> list[Finding]:
        """Every finding ``record`` gets as the next record of the log, without applying it (for writers)."""
        position = self.size
        found = self._check_common(record, position)
        if record.body.kind in REGISTRY_KINDS:
            return found + self.registry.check(record, position)
        return found + self._check_custody(record, position)

    def apply(self, record: Record) -> list[Finding]:
        """Check ``record`` as the next record (position = records applied so far), apply it, return findings.

        Returns every finding for this record (empty: valid). Never raises for a bad record.
        """
        found = self.check(record)
        position = self.size
        self.size += 1
        if record.body.kind in REGISTRY_KINDS:
            if not found:
                self.registry.commit(record, position)
        else:
            self._apply_custody(record, position, found)
        return found

    def _check_common(self, record: Record, position: int) -> list[Finding]:
        found = []
        body = record.body
        if body.origin != self.origin:
            found.append(_f("record.wrong_origin", position, None,
                            f"record names origin {body.origin!r}, ledger is {self.origin!r}"))
        for sig in record.signatures:
            try:
                record.verify_signature(sig)
            except (SignatureError, KeyFormatError) as exc:
                found.append(_f(exc.code, position, sig.party, f"signature by {sig.party}: {exc}"))
        return found

    def _check_custody(self, record: Record, position: int) -> list[Finding]:
        body = record.body
        rule = RULES[body.kind]
        found = self._check_shape(record, rule, position)
        found += self._check_signers(record, rule, position)
        for item_id, prev in body.inputs:
            found += self._check_input(record, item_id, prev, position)
        for out in body.outputs:
            if out.id.casefold() in self.folded_ids:
                found.append(_f("item.duplicate_id", position, out.id,
                                "an item with this id (ignoring case) already exists"))
        found += self._check_event(record, position)
        return found

    def _check_shape(self, record: Record, rule: Rule, position: int) -> list[Finding]:
        body = record.body
        problems = []
        if not rule.inputs[0] <= len(body.inputs) <= rule.inputs[1]:
            problems.append(f"{len(body.inputs)} inputs, {body.kind} takes {rule.inputs[0]}..{rule.inputs[1]}")
        if not rule.outputs[0] <= len(body.outputs) <= rule.outputs[1]:
            problems.append(f"{len(body.outputs)} outputs, {body.kind} makes {rule.outputs[0]}..{rule.outputs[1]}")
        want_consumed = tuple(i for i, _ in body.inputs) if rule.consumes_all else ()
        if body.consumes != want_consumed:
            problems.append(f"{body.kind} consumes {list(want_consumed)}, record says {list(body.consumes)}")
        return [_f("record.shape", position, None, p) for p in problems]

    def _check_signers(self, record: Record, rule: Rule, position: int) -> list[Finding]:
        body = record.body
        required = {body.actor: rule.actor_roles}
        if rule.cosigner is not None:
            required[str(getattr(body.event, rule.cosigner))] = (
                frozenset({rule.cosigner_role}) if rule.cosigner_role else frozenset())
        found = []
        signed = {sg.party: sg for sg in record.signatures}
        for party, roles in required.items():
            if party not in signed:
                found.append(_f("sig.missing", position, party, f"{body.kind} needs a signature by {party}"))
            elif party not in self.registry.parties:
                found.append(_f("sig.unknown_party", position, party, "signer is not an enrolled party"))
            elif roles and not any(self.registry.has_role(party, r) for r in roles):
                found.append(_f("role.not_granted", position, party,
                                f"{body.kind} needs role {' or '.join(sorted(roles))}"))
        for party, sg in signed.items():
            if party not in required:
                found.append(_f("sig.unexpected", position, party, f"{party} has no part in this {body.kind}"))
            elif party in self.registry.parties and not self.registry.key_valid(party, sg.key, position):
                found.append(_f("sig.unknown_key", position, party, "key is not enrolled for this party here"))
        return found

    def _check_input(self, record: Record, item_id: str, prev: Digest, position: int) -> list[Finding]:
        item = self.items.get(item_id)
        if item is None:
            return [_f("custody.unknown_item", position, item_id, "no such item in this ledger")]
        found = []
        if prev != item.head:
            code, why = (("chain.fork", "a later record already follows this predecessor") if prev in item.hashes
                         else ("chain.link_mismatch", "previous-record hash is not the item's latest record"))
            found.append(_f(code, position, item_id, why))
        if not item.live:
            found.append(_f("custody.consumed", position, item_id, "item was consumed by an earlier record"))
        if item.holder != record.body.actor:
            found.append(_f("custody.not_holder", position, item_id,
                            f"{record.body.actor} acts on an item held by {item.holder}"))
        if record.body.time_ms < item.head_time_ms:
            found.append(_f("chain.time_backwards", position, item_id, "record is older than the item's last record"))
        return found

    def _check_event(self, record: Record, position: int) -> list[Finding]:
        event, body = record.body.event, record.body
        inputs = [self.items[i] for i, _ in body.inputs if i in self.items]
        found = []
        if isinstance(event, Split) and inputs:
            total = sum(o.mass_mct for o in body.outputs) + event.loss_mct
            if total > inputs[0].mass_mct:
                found.append(_f("mass.exceeds_input", position, inputs[0].id,
                                f"outputs + loss = {total} mct > input {inputs[0].mass_mct} mct"))
        elif isinstance(event, Graded) and inputs:
            found += self._check_grading(event, inputs[0], position)
        elif isinstance(event, Mined):
            producer = self.registry.parties.get(body.actor)
            if producer is not None and producer.country != event.country:
                found.append(_f("origin.foreign_mine", position, body.actor,
                                f"a producer enrolled in {producer.country} attests a mine in {event.country}"))
            found += [_f("record.shape", position, o.id, f"mined creates a rough stone or lot, not a {o.type}")
                      for o in body.outputs if o.type == "article"]
            if body.place != event.country:
                found.append(_f("record.shape", position, None,
                                f"mined in {event.country} but the record's place is {body.place}"))
        elif isinstance(event, Transferred) and event.to == body.actor:
            found.append(_f("custody.self_transfer", position, event.to, "a party cannot transfer to itself"))
        return found

    def _check_grading(self, event: Graded, item: Item, position: int) -> list[Finding]:
        found = []
        if item.type != "stone":
            found.append(_f("record.shape", position, item.id, f"only a stone is graded, this is a {item.type}"))
        if event.mass_mct > item.mass_mct:
            found.append(_f("mass.exceeds_input", position, item.id,
                            f"graded {event.mass_mct} mct > recorded {item.mass_mct} mct"))
        if event.nature != item.nature:
            found.append(_f("nature.mismatch", position, item.id,
                            f"graded {event.nature}, but the stone was created {item.nature}"))
        holder = self.reports.get(event.report)
        if holder is not None and holder != item.id and self.items[holder].live:
            found.append(_f("identity.duplicate_report", position, item.id,
                            f"report {event.report} already belongs to live stone {holder}"))
        return found

    def _apply_custody(self, record: Record, position: int, found: list[Finding]) -> None:
        body, event = record.body, record.body.event
        if any(f.code == "chain.fork" for f in found):
            return  # a second successor of a record changes nothing: the first branch stands
        for item_id, _ in body.inputs:
            item = self.items.get(item_id)
            if item is None:
                continue
            _advance(item, record, position)
            if item_id in body.consumes:
                item.live = False
            if isinstance(event, Transferred):
                item.holder = event.to
            elif isinstance(event, Graded):
                item.mass_mct = min(item.mass_mct, event.mass_mct)
                self._assign_report(item, event.report)
        self._create_outputs(record, position)

    def _assign_report(self, item: Item, report: str) -> None:
        """Point ``report`` at ``item`` unless another live stone holds it; free the item's old number."""
        if item.report is not None and item.report != report and self.reports.get(item.report) == item.id:
            del self.reports[item.report]
        holder = self.reports.get(report)
        if holder is None or holder == item.id or not self.items[holder].live:
            self.reports[report] = item.id
        item.report = report

    def _create_outputs(self, record: Record, position: int) -> None:
        body, event = record.body, record.body.event
        parents = [self.items[i] for i, _ in body.inputs if i in self.items]
        if isinstance(event, Mined):
            nature, origins = "natural", [{event.country: o.mass_mct} for o in body.outputs]
        elif parents:
            nature = parents[0].nature
            origins = split_origin(parents[0].origin, [o.mass_mct for o in body.outputs])
        else:
            return
        for out, origin in zip(body.outputs, origins, strict=True):
            if out.id.casefold() in self.folded_ids:
                continue
            self.folded_ids.add(out.id.casefold())
            item = Item(id=out.id, type=out.type, mass_mct=out.mass_mct, holder=body.actor, nature=nature,
                        origin=origin, head=record.record_hash, head_time_ms=body.time_ms)
            _advance(item, record, position)
            self.items[out.id] = item


def _advance(item: Item, record: Record, position: int) -> None:
    item.head = record.record_hash
    item.head_time_ms = max(item.head_time_ms, record.body.time_ms)
    item.history.append(position)
    item.hashes.add(record.record_hash)


def _f(code: str, position: int, item: str | None, reason: str) -> Finding:
    return Finding(code=code, position=position, item=item, reason=reason)
