"""Custody rules: the transition table of :mod:`ledger.rules`, applied record by record.

:class:`CustodyState` replays records in log order. For each record it checks, and names every fault:

* the record belongs to this ledger (``record.wrong_origin``) and has the shape its kind needs (``record.shape``);
  its body is not the body of an earlier record (``record.duplicate``: a claim counts once);
* every signature verifies (``sig.*``) with a key valid for the signing party at that log position
  (``sig.unknown_key``) and granted by a record dated no later than this one (``sig.before_enrolment``); every
  required signer signed (``sig.missing``) and nobody else (``sig.unexpected``); each signer holds the role the
  kind needs (``role.not_granted``) — DOMAIN.md "Who signs";
* every input exists (``custody.unknown_item``), is in the state the kind needs (``custody.consumed``,
  ``custody.retired``, ``custody.locked``, ``custody.in_transit``, ``custody.not_exported``), is held by the
  actor (``custody.not_holder``; a sale also needs the owner: ``custody.not_owner``; an import the consignee:
  ``custody.not_consignee``; a seizure customs of the record's country: ``role.wrong_country``), is where the
  record takes place (``custody.wrong_place``: crossing a border takes an export and an import), and is linked
  to its latest record (``chain.link_mismatch``; a link to an older record of the item is a second record
  claiming the same predecessor: ``chain.fork``); time never goes backwards along an item's chain, nor from a
  statement back to the record it is about (``chain.time_backwards``);
* outputs get fresh ids, case-insensitively (``item.duplicate_id``); mass never grows (``mass.exceeds_input``,
  DOMAIN.md R10); nature is fixed at creation (``nature.mismatch``, R9); one grading report number and one
  inscription per stone not consumed — a stolen stone keeps its papers (``identity.duplicate_report``,
  ``identity.duplicate_inscription``, R11); a producer attests only its enrolled country
  (``origin.foreign_mine``).

A record with findings is still applied where it can be (so that one fault is reported once, not again on every
later record of the item), except to an item whose chain it forks: that item's first successor stands
(docs/adr/0003). Its other items move on, so that their state never depends on another item's chain (a proof
bundle, which may not hold that chain, reaches the same state).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, MutableMapping

from ._kinds import CHECKS, EFFECTS, birth
from .events import REGISTRY_KINDS, Imported, Retired, Set, Transferred, Unset
from .findings import Finding
from .hashing import Digest
from .identity import KINDS, IdentityIndex
from .item import Item
from .record import Record
from .registry import Registry
from .rules import RULES, Rule
from .sig_findings import signature_findings

__all__ = ["CustodyState", "Signatures"]

#: (record, log position) -> the ``sig.*`` findings of its signatures.
Signatures = Callable[[Record, int], list[Finding]]

_STATE_CODES = {"consumed": "custody.consumed", "retired": "custody.retired", "locked": "custody.locked",
                "in_transit": "custody.in_transit"}


class CustodyState:
    """Replays a ledger's records in order and collects findings (the pure core of audit and verification).

    Args:
        origin: the ledger's origin line (every record must name it: no replay across ledgers).
        authority_keys: trusted accreditation-authority public keys (raw 32 bytes).
        partial: replay a subset of the log (a proof bundle: one item's ancestry plus the whole registry). Inputs
            outside the subset (not in ``track``) and statement subjects outside it are then not findings, and
            every check that needs them is noted in :attr:`unchecked` instead (never skipped silently); the
            caller checks that the subset holds every record of the items it vouches for.
        track: with ``partial``, the only items to create (the ones the subset holds every record of); other
            outputs, e.g. the siblings of a split, are left outside the replay like any unknown item.
        refused: with ``partial``, (position, id) of outputs not to create: those whose id another item held
            first, ledger-wide (a bundle learns it from the checkpoint's identity tree; a full replay from its
            own ids), so that later records naming them name an unknown item, as in a full replay.
        subset: with ``partial``, the record hashes of the whole subset: a statement whose subject is in it but not
            yet replayed names a later record (``record.unknown_subject``, as in a full replay).
        signatures: the ``sig.*`` findings of a record at a position (default :func:`signature_findings`); an
            audit whose worker processes checked the signatures already passes what they found.
    """

    def __init__(self, origin: str, authority_keys: Iterable[bytes], *, partial: bool = False,
                 track: Collection[str] | None = None, refused: Collection[tuple[int, str]] = (),
                 subset: Collection[Digest] = (), signatures: Signatures | None = None) -> None:
        self.origin = origin
        self.signatures: Signatures = signatures or signature_findings
        self.partial = partial
        self.track = None if track is None else frozenset(track)
        self.refused = frozenset(refused)
        self.subset = frozenset(subset)
        self.registry = Registry(authority_keys)
        self.items: MutableMapping[str, Item] = {}
        self.identities = IdentityIndex()  # who claimed each id, report number and inscription (docs/format.md §7d)
        self.signers: MutableMapping[Digest, frozenset[str]] = {}  # record hash -> parties who signed it
        self.times: MutableMapping[Digest, int] = {}  # record hash -> time_ms (statement >= subject)
        self.bodies: MutableMapping[Digest, int] = {}  # body hash -> position of the first record with that body
        self.unchecked: list[Finding] = []  # partial mode: the checks that needed goods outside the subset
        self._parties: dict[frozenset[str], frozenset[str]] = {}
        self.size = 0

    def outside(self, item_id: str) -> bool:
        """True if ``item_id`` is outside the replayed subset (partial mode, not tracked): its absence is no
        fault. A tracked item that does not exist (yet) is one: the subset holds every record of it, so a record
        naming it before the record that creates it names an unknown item, as in a full replay (order matters:
        a parcel cannot be made from a stone that is created later)."""
        return self.partial and (self.track is None or item_id not in self.track)

    def not_checked(self, code: str, position: int, item: str | None, reason: str) -> None:
        """Partial mode: note that the check that gives ``code`` could not be made at ``position`` (it needs
        goods or ledger-wide indexes outside the subset); a proof bundle reports these as not checked. A full
        replay checks everything and notes nothing."""
        if self.partial:
            self.unchecked.append(_f(code, position, item, f"not checked: {reason}"))

    def skip_to(self, position: int) -> None:
        """Continue at log ``position`` (records before it are not replayed: damaged, or outside a bundle).

        Raises:
            ValueError: ``position`` is before the next position (records are replayed in log order).
        """
        if position < self.size:
            raise ValueError(f"position {position} is before the next position {self.size}")
        self.size = position

    def check(self, record: Record) -> list[Finding]:
        """Every finding ``record`` gets as the next record of the log, without applying it (for writers)."""
        position = self.size
        found = self._check_common(record, position)
        if record.body.kind in REGISTRY_KINDS:
            found += self.registry.check(record, position)
        else:
            found += self._check_custody(record, position)
        return found + self._check_duplicate(record, position)

    def apply(self, record: Record, *, trusted: bool = False) -> list[Finding]:
        """Check ``record`` as the next record (position = records applied so far), apply it, return findings.

        Returns every finding for this record (empty: valid). Never raises for a bad record. ``trusted`` (a
        record this ledger's writer checked when it appended it: an index rebuilt from the log, ADR 0020)
        checks registry records in full but a custody record only for ``chain.fork``, the one finding that
        changes what applying it does: the state is the one a checked replay reaches, and the other findings
        are not looked for (an audit names them).
        """
        if trusted and record.body.kind not in REGISTRY_KINDS:
            found = self._forks(record, self.size)
        else:
            found = self.check(record)
        position = self.size
        self.size += 1
        self.note(record, position)
        if record.body.kind in REGISTRY_KINDS:
            if not found:
                self.registry.commit(record, position)
        else:  # the first successor of a record stands: a fork moves nothing of the item whose chain it forks
            self._apply_custody(record, position, forked={f.item for f in found if f.code == "chain.fork"})
            if not self.partial:
                self.identities.add(position, record)
        return found

    # --- checks -----------------------------------------------------------------------------------------------

    def _check_common(self, record: Record, position: int) -> list[Finding]:
        found = []
        if record.body.origin != self.origin:
            found.append(_f("record.wrong_origin", position, None,
                            f"record names origin {record.body.origin!r}, ledger is {self.origin!r}"))
        return found + self.signatures(record, position)

    def _check_duplicate(self, record: Record, position: int) -> list[Finding]:
        """``record.duplicate``: an earlier record has the same body bytes (docs/format.md §5.1). Compared by body
        hash, not record hash: the body is the claim, the signatures only vouch for it, so a statement signed
        again (another key of the party, another set of co-signers) is the same claim told twice — the
        duplicated-leaf class of CVE-2012-2459 for the kinds with no hash link. A statement made again later has
        another ``time_ms``, hence another body, and stands. Reported after the kind's own findings (a copied
        custody record also gets ``chain.fork`` or ``item.duplicate_id``)."""
        first = self.bodies.get(record.body_hash)
        if first is None:
            return []
        return [_f("record.duplicate", position, None, f"the same {record.body.kind} record (same body) as "
                   f"record {first}: a record counts once")]

    def _check_custody(self, record: Record, position: int) -> list[Finding]:
        rule = RULES[record.body.kind]
        found = self._check_shape(record, rule, position)
        found += self._check_signers(record, rule, position)
        for item_id, prev in record.body.inputs:
            found += self._check_input(record, rule, item_id, prev, position)
        return found + self._check_event(record, position) + self._check_identities(record, position)

    def _forks(self, record: Record, position: int) -> list[Finding]:
        """``chain.fork`` for each input whose link names an older record of the item (see :meth:`_check_input`)."""
        found = []
        for item_id, prev in record.body.inputs:
            item = self.items.get(item_id)
            if item is not None and prev != item.head and self.on_chain(item, prev):
                found.append(_f("chain.fork", position, item_id, "a later record already follows this predecessor"))
        return found

    def _check_identities(self, record: Record, position: int) -> list[Finding]:
        """``item.duplicate_id``, ``identity.duplicate_report``, ``identity.duplicate_inscription``: a claim on an
        id, report number or inscription (compared folded, ledger._text.fold) that another item holds, by the one
        rule of :mod:`ledger.identity` (a bundle proves the same rule from the checkpoint's identity tree)."""
        refused = [] if self.partial else self.identities.refused(position, record)
        if not refused:
            return []
        event = record.body.event
        named = {"report": f"report number {getattr(event, 'report', '')!r}",  # as given: the key is folded
                 "inscription": f"inscription {getattr(event, 'inscription', '')!r}"}
        return [_f(KINDS[kind], position, item,
                   "an item with an id read alike (ignoring case, 0/O and 1/I/l) already exists" if kind == "item"
                   else f"{named[kind]} reads as one that stone {holder} already holds (compared ignoring case, 0/O "
                   "and 1/I/l)")
                for kind, _, item, holder in refused]

    def _check_shape(self, record: Record, rule: Rule, position: int) -> list[Finding]:
        body = record.body
        problems = []
        if not rule.inputs[0] <= len(body.inputs) <= rule.inputs[1]:
            problems.append(f"{len(body.inputs)} inputs, {body.kind} takes {rule.inputs[0]}..{rule.inputs[1]}")
        if not rule.outputs[0] <= len(body.outputs) <= rule.outputs[1]:
            more = " (one record a stone or lot: record a lot, then split it)" if len(body.outputs) > rule.outputs[1] \
                and body.kind in ("mined", "grown") else ""  # a new user's review
            problems.append(f"{len(body.outputs)} outputs, {body.kind} makes {rule.outputs[0]}..{rule.outputs[1]}"
                            f"{more}")
        problems += [f"{body.kind} cannot make a {o.type}" for o in body.outputs if o.type not in rule.output_types]
        want = self._consumed_by(record, rule)
        if body.consumes != want:
            problems.append(f"{body.kind} consumes {list(want)}, record says {list(body.consumes)}")
        return [_f("record.shape", position, None, p) for p in problems]

    def _consumed_by(self, record: Record, rule: Rule) -> tuple[str, ...]:
        ids = tuple(i for i, _ in record.body.inputs)
        if rule.consumes == "all":
            return ids
        if rule.consumes == "article":
            return tuple(i for i in ids if i in self.items and self.items[i].type == "article")
        return ()

    def _check_signers(self, record: Record, rule: Rule, position: int) -> list[Finding]:
        body = record.body
        required = {body.actor: rule.actor_roles}
        cosigner = rule.cosigner_of(body.event)
        if cosigner is not None:
            required[cosigner] = rule.cosigner_role
        found = []
        named = self.registry.parties.get(cosigner) if rule.cosigner_if_enrolled and cosigner else None
        if named is not None and named.country != body.place:
            found.append(_f("role.wrong_country", position, named.id,
                            f"{named.id} acts for {named.country}, this {body.kind} is in {body.place}"))
        if rule.cosigner_if_enrolled and cosigner is None:
            present = self.registry.parties_with(rule.cosigner_role, body.place)
            if present:
                found.append(_f("sig.missing", position, present[0], f"{body.kind} in {body.place} needs the "
                                f"co-signature of its enrolled {'/'.join(sorted(rule.cosigner_role))}"))
        signed = {sg.party: sg for sg in record.signatures}
        for party, roles in required.items():
            if party not in signed:
                unknown = "" if party in self.registry.parties else \
                    f", and no party {party!r} is enrolled (a typo, or enrol it first)"  # a review: "nobody"
                found.append(_f("sig.missing", position, party, f"{body.kind} needs a signature by {party}{unknown}"))
            elif party not in self.registry.parties:
                found.append(_f("sig.unknown_party", position, party, "signer is not an enrolled party"))
            elif roles and not any(self.registry.has_role(party, r) for r in roles):
                found.append(_f("role.not_granted", position, party,
                                f"{body.kind} needs role {' or '.join(sorted(roles))}"))
        for party, sg in signed.items():
            if party not in required:
                found.append(_f("sig.unexpected", position, party, f"{party} has no part in this {body.kind}"))
            elif party in self.registry.parties:
                found += self._check_key(body.time_ms, party, sg.key, position)
        return found

    def _check_key(self, time_ms: int, party: str, key: bytes, position: int) -> list[Finding]:
        """The key must be the enrolled ``party``'s at this log position (``sig.unknown_key``), granted by a record
        dated no later than the signed one (``sig.before_enrolment``: a key cannot sign what happened before the
        authority granted it; a backdated record signed with a key granted since)."""
        grant = self.registry.parties[party].grant_valid_at(key, position)
        if grant is None:
            return [_f("sig.unknown_key", position, party, "key is not valid for this party here")]
        if time_ms < grant.since_ms:
            return [_f("sig.before_enrolment", position, party, f"record dated {time_ms} ms, before its key was "
                       f"granted to {party} (record {grant.since}, dated {grant.since_ms} ms)")]
        return []

    def _check_input(self, record: Record, rule: Rule, item_id: str, prev: Digest, position: int) -> list[Finding]:
        item = self.items.get(item_id)
        if item is None:
            if self.outside(item_id):
                self.not_checked("bundle.outside_items", position, item_id, f"{item_id} is outside this "
                                 f"provenance: the rules about it in this {record.body.kind} record were not checked")
                return []
            return [_f("custody.unknown_item", position, item_id, "no such item (yet) in this ledger")]
        found = []
        if prev != item.head:
            forks = self.on_chain(item, prev)
            code, why = (("chain.fork", "a later record already follows this predecessor") if forks
                         else ("chain.link_mismatch", "previous-record hash is not the item's latest record"))
            found.append(_f(code, position, item_id, why))
        state = self._state_problem(record, rule, item)
        if state:
            found.append(_f(state[0], position, item_id, state[1]))
        found += self._check_actor(record, rule, item, position)
        if item.country != record.body.place and not self._at_border(record, item):
            found.append(_f("custody.wrong_place", position, item_id, f"{item_id} is in {item.country}; a "
                            f"record in {record.body.place} needs an export and an import first"))
        if record.body.time_ms < item.head_time_ms:
            found.append(_f("chain.time_backwards", position, item_id, "record is older than the item's last record"))
        return found

    @staticmethod
    def _at_border(record: Record, item: Item) -> bool:
        """An import, or a seizure of goods in transit, happens at the destination, not where the goods left."""
        event = record.body.event
        if isinstance(event, Imported):
            return True
        arriving = item.transit is not None and item.transit[2] == record.body.place
        return isinstance(event, Retired) and event.reason == "seized" and arriving

    def _state_problem(self, record: Record, rule: Rule, item: Item) -> tuple[str, str] | None:
        event = record.body.event
        want = {rule.input_state}
        if isinstance(event, Retired):
            want = {"live", "in_transit"}
        elif isinstance(event, Unset):
            want = {"live"} if item.type == "article" else {"locked"}
        if item.state not in want:
            code = _STATE_CODES.get(item.state) or (
                "custody.not_exported" if want == {"in_transit"} else "custody.not_locked")
            needs = " or ".join(sorted(want))  # sorted: the same text in every run (a set's order is not)
            return code, f"{item.id} is {item.state.replace('_', ' ')}; {record.body.kind} needs {needs}"
        if isinstance(event, Unset) and item.type != "article" and item.article not in dict(record.body.inputs):
            return "custody.locked", f"{item.id} is set in {item.article}, which this record does not unset"
        return None

    def _check_actor(self, record: Record, rule: Rule, item: Item, position: int) -> list[Finding]:
        body, event = record.body, record.body.event
        if isinstance(event, Imported):
            if item.transit is not None and item.transit[1] != body.actor:
                return [_f("custody.not_consignee", position, item.id,
                           f"{body.actor} imports goods consigned to {item.transit[1]}")]
            return []
        if isinstance(event, Retired) and event.reason == "seized" and self.registry.has_role(body.actor, "customs"):
            actor_country = self.registry.parties[body.actor].country
            if actor_country == body.place:
                return []
            return [_f("role.wrong_country", position, body.actor,
                       f"customs of {actor_country} cannot seize goods in {body.place}")]
        holder = item.holder if item.state != "locked" or item.article is None else self.items[item.article].holder
        if rule.holder_acts and holder != body.actor:
            return [_f("custody.not_holder", position, item.id, f"{body.actor} acts on an item held by {holder}")]
        owner_needed = rule.owner_acts or (isinstance(event, Transferred) and event.mode == "title")
        if owner_needed and item.owner != body.actor:
            return [_f("custody.not_owner", position, item.id,
                       f"{body.actor} holds {item.id} on memo; only its owner {item.owner} can {body.kind} it")]
        return []

    def _check_event(self, record: Record, position: int) -> list[Finding]:
        check = CHECKS.get(type(record.body.event))
        return check(self, record, position) if check else []

    # --- effects ----------------------------------------------------------------------------------------------

    def note(self, record: Record, position: int) -> None:
        """Keep what later records need of ``record`` (at log ``position``): its signers and time (a statement
        may name it), its body hash (``record.duplicate``). An audit keeps these facts out of memory instead
        (:class:`ledger.spilled.SpilledState`)."""
        parties = frozenset(s.party for s in record.signatures)
        self.signers[record.record_hash] = self._parties.setdefault(parties, parties)  # one object per set of
        # signers: a replay keeps one entry per record, and a few sets of parties sign them all
        self.times[record.record_hash] = record.body.time_ms
        self.bodies.setdefault(record.body_hash, position)

    def chained(self, item: Item, record: Record, position: int) -> None:
        """Note that ``record`` (at log ``position``) is on ``item``'s chain: its ``history`` and ``hashes``. An
        audit keeps these facts out of memory instead (:class:`ledger.spilled.SpilledState`)."""
        item.history.append(position)
        item.hashes.add(record.record_hash)

    def on_chain(self, item: Item, record_hash: Digest) -> bool:
        """True if the record of ``record_hash`` is on ``item``'s chain (:meth:`chained`): a link to it that is
        not the item's head forks the chain (``chain.fork``)."""
        return record_hash in item.hashes

    def _advance(self, item: Item, record: Record, position: int) -> None:
        item.head = record.record_hash
        item.head_time_ms = max(item.head_time_ms, record.body.time_ms)
        self.chained(item, record, position)

    def _apply_custody(self, record: Record, position: int, forked: Collection[str | None]) -> None:
        body, event = record.body, record.body.event
        inputs = [self.items[i] for i, _ in body.inputs if i in self.items and i not in forked]
        for item in inputs:
            self._advance(item, record, position)
            if item.id in body.consumes:
                item.state = "consumed"
        effect = EFFECTS.get(type(event))
        if effect is not None:
            effect(self, record, inputs)
        self._create_outputs(record, position, inputs)

    def _create_outputs(self, record: Record, position: int, parents: list[Item]) -> None:
        body, event = record.body, record.body.event
        if not body.outputs or (body.inputs and not parents):
            return
        masses = [o.mass_mct for o in body.outputs]
        nature, origins = birth(event, parents, masses)
        taken = self.refused if self.partial else {
            (position, item) for kind, _, item, _ in self.identities.refused(position, record) if kind == "item"}
        for out, origin in zip(body.outputs, origins, strict=True):
            if (self.track is not None and out.id not in self.track) or (position, out.id) in taken:
                continue
            item = Item(id=out.id, type=out.type, mass_mct=out.mass_mct, holder=body.actor, owner=body.actor,
                        nature=nature, origin=origin, head=record.record_hash, head_time_ms=body.time_ms,
                        country=body.place)
            self._advance(item, record, position)
            self.items[out.id] = item
            if isinstance(event, Set):
                item.contents = tuple(i for i, _ in body.inputs)
                for stone in parents:
                    stone.state, stone.article = "locked", out.id


def _f(code: str, position: int, item: str | None, reason: str) -> Finding:
    return Finding(code=code, position=position, item=item, reason=reason)
