"""A small test world: an authority, enrolled trade parties with fixed keys, and a record builder.

Keys come from fixed seeds so that every test is deterministic.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from ledger import AUTHORITY, Body, Enrolled, Output, PrivateKey, Record, Trust
from ledger._codec import encode
from ledger.custody import CustodyState
from ledger.events import Event
from ledger.findings import Finding
from ledger.hashing import Digest
from ledger.keys import note_verifier_key
from ledger.record import RECORD_TAG
from ledger.rules import RULES

ORIGIN = "test.stonetrail.example/ledger"
PARTIES = {
    "producer-a": ("producer",),
    "trader-b": ("trader",),
    "cutter-c": ("manufacturer",),
    "lab-d": ("lab",),
    "trader-e": ("trader",),
}


def key(name: str) -> PrivateKey:
    """A fixed key per name."""
    return PrivateKey.from_seed(hashlib.sha256(f"stonetrail test key {name}".encode()).digest())


#: The operator of the test ledgers (signs checkpoints) and the trust file that pins it and the authority.
OPERATOR = key("operator")
TRUST = Trust(operators=(note_verifier_key(ORIGIN, OPERATOR.public_key),),
              authorities=(note_verifier_key(AUTHORITY, key(AUTHORITY).public_key),))


class World:
    """Builds signed records against a live CustodyState; ``add`` applies and returns findings."""

    def __init__(self, origin: str = ORIGIN) -> None:
        self.origin = origin
        self.keys = {name: key(name) for name in (AUTHORITY, *PARTIES, "outsider")}
        self.state = CustodyState(origin, {self.keys[AUTHORITY].public_key.raw})
        self.records: list[Record] = []
        self.time_ms = 1_700_000_000_000

    def make(self, event: Event, actor: str, *, signers: Sequence[str] | None = None,
             inputs: Sequence[str] = (), consumes: Sequence[str] = (), outputs: Sequence[Output] = (),
             prev: dict[str, Digest] | None = None, time_ms: int | None = None, place: str | None = None,
             origin: str | None = None, keys: dict[str, PrivateKey] | None = None) -> Record:
        """A record of ``event`` by ``actor``; ``signers`` defaults to the actor plus any cosigner."""
        if signers is None:  # the actor and the co-signer the transition table names, if any
            rule = RULES.get(event.KIND)
            cosigner = rule.cosigner_of(event) if rule else None
            signers = [actor] + ([cosigner] if cosigner and cosigner != actor else [])
        if time_ms is None:
            self.time_ms += 60_000
            time_ms = self.time_ms
        if place is None:  # where the goods are, by default (records take place where their items are)
            known = [self.state.items[i].country for i in inputs if i in self.state.items]
            place = known[0] if known else "BE"
        links = dict(prev or {})
        pairs = tuple(sorted((i, links.get(i) or self.state.items[i].head) for i in inputs))
        body = Body(origin=origin or self.origin, kind=event.KIND, time_ms=time_ms, place=place, actor=actor,
                    event=event, inputs=pairs, consumes=tuple(sorted(consumes)),
                    outputs=tuple(sorted(outputs, key=lambda o: o.id)))
        use = {**self.keys, **(keys or {})}
        return Record.create(body, [(p, use[p]) for p in signers])

    def add(self, record: Record) -> list[Finding]:
        """Apply ``record`` as the next record; returns its findings."""
        self.records.append(record)
        return self.state.apply(record)

    def enrol(self, party: str, roles: Sequence[str], *, key_raw: bytes | None = None,
              signer: PrivateKey | None = None, prev: Digest | str | None = "head") -> Record:
        """An enrolment record (not applied)."""
        event = Enrolled(external_ids=(), party=party, name=f"{party} (test)", roles=tuple(sorted(roles)), country="BW",
                         key=key_raw or self.keys[party].public_key.raw,
                         registry_prev=self.state.registry.head if prev == "head" else prev)  # type: ignore[arg-type]
        return self.make(event, AUTHORITY, keys={AUTHORITY: signer} if signer else None)

    def enrol_party(self, party: str, roles: Sequence[str], country: str) -> Record:
        """Enrol ``party`` (its fixed key) with ``roles`` in ``country`` and apply the record; returns it."""
        self.keys[party] = key(party)
        event = Enrolled(external_ids=(), party=party, name=party, roles=tuple(roles), country=country,
                         key=self.keys[party].public_key.raw, registry_prev=self.state.registry.head)
        record = self.make(event, AUTHORITY)
        assert self.add(record) == [], party
        return record

    def enrol_all(self) -> None:
        for party, roles in PARTIES.items():
            assert self.add(self.enrol(party, roles)) == []

    def mine(self, item: str = "S1", mass_mct: int = 2_000, kind: str = "stone") -> Record:
        from ledger import Mined

        return self.make(Mined(mine="Jwaneng", country="BW"), "producer-a", place="BW",
                         outputs=[Output(id=item, type=kind, mass_mct=mass_mct)])


def envelope(body_bytes: bytes, sigs: list[dict[str, object]]) -> bytes:
    """Record bytes from raw parts (for forging tests)."""
    return RECORD_TAG + encode({"body": body_bytes, "sigs": sigs})


def codes(findings: Sequence[Finding]) -> list[str]:
    return [f.code for f in findings]


# --- key lifecycle records (tests/test_registry.py; kept apart from World, which other tests share) ----------

def key_record(w: World, kind: str, party: str, key_raw: bytes, *, prev: Digest | str | None = "head",
               signer: PrivateKey | None = None, reason: str = "rotated") -> Record:
    """A ``key_added`` or ``key_revoked`` record of ``party``'s ``key_raw`` by the authority (not applied).

    ``prev``: ``registry_prev`` ("head": the registry head of ``w``); ``signer``: another authority key.
    """
    from ledger.events import KeyAdded, KeyRevoked

    registry_prev = w.state.registry.head if prev == "head" else Digest(prev) if isinstance(prev, bytes) else None
    event: Event = (KeyAdded(party=party, key=key_raw, registry_prev=registry_prev) if kind == "key_added"
                    else KeyRevoked(party=party, key=key_raw, reason=reason, registry_prev=registry_prev))
    return w.make(event, AUTHORITY, keys={AUTHORITY: signer} if signer else None)
