"""Random valid small ledgers, and a pool of validly signed extra records, for the differential fuzzer
(tests/differential.py).

:class:`Forge` plays a small trade from a seeded ``random.Random``: eleven parties enrolled by the authority, then
stones and lots mined (in Botswana and in Russia), grown and registered; sold (title) and consigned (memo), one
item or several at once; split, merged into parcels, set into articles and unset; graded and inscribed; verified
by a node; exported and imported; retired; attested and corrected. Every record is checked against the live
:class:`~ledger.custody.CustodyState` before it is applied, so the main sequence is valid by construction.

Along the way it signs *extras* (:class:`Extra`): records an insider operator could get signed and append at a
chosen place — ones that break a rule (a second stone graded under a report number that is taken, an output id
differing only in case, mass from nothing, a correction by a non-signer, …), valid statements about a record,
and the records of a *branch* (another valid continuation from the same point: a stone sold twice, a lot split
twice). Each extra is signed once, against the state at its ``at`` (the number of main records before it), so
its hash links are right if it is put back there.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from dataclasses import dataclass

from ledger import AUTHORITY, Enrolled, Output, PrivateKey, Record
from ledger.events import (
    Attested,
    Corrected,
    Exported,
    Graded,
    Grown,
    Imported,
    Inscribed,
    KeyAdded,
    KeyRevoked,
    Merged,
    Mined,
    Registered,
    Retired,
    Set,
    Split,
    Transferred,
    Unset,
    Verified,
)
from ledger.hashing import Digest
from ledger.item import Item
from world import World, key

ORIGIN = "test.stonetrail.example/ledger"
#: party -> (roles, country)
PARTIES: dict[str, tuple[tuple[str, ...], str]] = {
    "producer-a": (("producer",), "BW"),
    "producer-ru": (("producer",), "RU"),
    "trader-b": (("trader",), "BW"),
    "trader-e": (("trader",), "BE"),
    "cutter-c": (("manufacturer",), "BW"),
    "jeweller-j": (("jeweller",), "BE"),
    "lab-d": (("lab",), "BW"),
    "kp-bw": (("kp_authority",), "BW"),
    "customs-be": (("customs",), "BE"),
    "node-be": (("node",), "BE"),
    "auditor-x": (("auditor",), "BE"),
}
TRADERS = ("producer-a", "trader-b", "trader-e", "cutter-c", "cutter-c", "jeweller-j", "jeweller-j")
MAKERS = frozenset({"producer-a", "producer-ru", "trader-b", "trader-e", "cutter-c"})
SETTERS = frozenset({"jeweller-j", "cutter-c"})
DAY_MS = 86_400_000


@dataclass(frozen=True, slots=True)
class Extra:
    """Validly signed records outside the main sequence, to be put in together: ``tag`` says what they are, ``at``
    where they were signed (their hash links name the heads after the first ``at`` main records)."""

    records: tuple[Record, ...]
    at: int
    tag: str


class Forge(World):
    """A seeded random trade; ``records`` is the valid main sequence, ``extras`` the pool of other records."""

    def __init__(self, rng: random.Random) -> None:
        super().__init__(ORIGIN)
        self.rng = rng
        self.keys.update({name: key(name) for name in PARTIES})
        self.extras: list[Extra] = []
        self.added: dict[bytes, tuple[str, PrivateKey]] = {}  # key_added signed, not yet applied: key -> (party, key)
        self.retiring: dict[str, bytes] = {}  # party -> its previous key, to be revoked
        self.serial = 0
        self.misses = 0  # actions the generator built that the rules refused (a generator bug if many)
        for party, (roles, country) in PARTIES.items():
            event = Enrolled(external_ids=(), party=party, name=party, roles=roles, country=country,
                             key=self.keys[party].public_key.raw, registry_prev=self.state.registry.head)
            assert self.add(self.make(event, AUTHORITY)) == []

    # --- the main sequence --------------------------------------------------------------------------------

    def play(self, steps: int, attack_rate: float = 0.25) -> None:
        """``steps`` random actions (some find nothing to do), with an extra signed after about ``attack_rate``
        of them."""
        actions = self._actions()
        weights = [w for _, w in actions]
        for _ in range(steps):
            action = self.rng.choices([a for a, _ in actions], weights)[0]
            self.step(action)
            if self.rng.random() < attack_rate:
                self.attack()

    def step(self, action: Callable[[], Record | None]) -> Record | None:
        """Build one record with ``action`` and apply it if it is valid; returns it (None: nothing applied)."""
        record = action()
        if record is None:
            return None
        if self.state.check(record):
            self.misses += 1
            return None
        assert self.add(record) == []
        event = record.body.event
        if isinstance(event, KeyAdded) and event.key in self.added:  # the party signs with its new key from now on
            party, new = self.added.pop(event.key)
            self.retiring[party] = self.keys[party].public_key.raw
            self.keys[party] = new
        return record

    def _actions(self) -> list[tuple[Callable[[], Record | None], int]]:
        return [(self.create, 5), (self.transfer, 6), (self.split, 3), (self.merge, 4), (self.set_, 4),
                (self.unset, 5), (self.grade, 3), (self.inscribe, 1), (self.retire, 1), (self.export, 2),
                (self.import_, 3), (self.verify, 1), (self.attest, 1), (self.correct, 1), (self.rotate, 2)]

    def fresh(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial}"

    def live(self, *, types: tuple[str, ...] = ("stone", "lot", "article"), owned: bool = True,
             among: frozenset[str] | None = None) -> list[Item]:
        """Live items of ``types``; ``owned``: held by their owner; ``among``: held by one of these parties."""
        return [i for i in self.state.items.values() if i.state == "live" and i.type in types
                and (not owned or i.holder == i.owner) and (among is None or i.holder in among)]

    def pick(self, items: list[Item], most: int = 1) -> list[Item]:
        """One random item and up to ``most - 1`` others with the same holder, owner, country and nature."""
        if not items:
            return []
        first = self.rng.choice(items)
        peers = self.peers(first, items)
        return [first, *self.rng.sample(peers, min(len(peers), self.rng.randrange(most)))]

    @staticmethod
    def peers(first: Item, items: list[Item]) -> list[Item]:
        """The other ``items`` with the holder, owner, country and nature of ``first`` (one record's inputs)."""
        return [i for i in items if i is not first and (i.holder, i.owner, i.country, i.nature)
                == (first.holder, first.owner, first.country, first.nature)]

    def create(self) -> Record:
        choice, kind = self.rng.randrange(4), self.rng.choice(("stone", "stone", "lot"))
        mass = self.rng.randrange(500, 10_000)
        if choice == 0:
            return self.make(Mined(mine="Jwaneng", country="BW"), "producer-a", place="BW",
                             outputs=[Output(id=self.fresh("S"), type=kind, mass_mct=mass)])
        if choice == 1:
            return self.make(Mined(mine="Udachny", country="RU"), "producer-ru", place="RU",
                             outputs=[Output(id=self.fresh("RU"), type=kind, mass_mct=mass)])
        if choice == 2:
            return self.make(Grown(facility="Gaborone CVD", country="BW", method="CVD"), "producer-a", place="BW",
                             outputs=[Output(id=self.fresh("G"), type=kind, mass_mct=mass)])
        return self.make(Registered(reason="recovered from old jewellery", nature=self.rng.choice(("natural",
                         "lab_grown"))), "trader-b", place="BW",
                         outputs=[Output(id=self.fresh("X"), type="stone", mass_mct=mass)])

    def transfer(self) -> Record | None:
        items = self.pick(self.live(owned=False), 2)
        if not items:
            return None
        holder, owner = items[0].holder, items[0].owner
        if holder != owner:  # back from memo
            return self.make(Transferred(to=owner, mode="memo"), holder, inputs=[i.id for i in items])
        to = self.rng.choice([p for p in TRADERS if p != holder])
        mode = self.rng.choice(("title", "title", "memo"))
        return self.make(Transferred(to=to, mode=mode), holder, inputs=[i.id for i in items])

    def split(self) -> Record | None:
        items = self.pick([i for i in self.live(types=("stone", "lot"), among=MAKERS) if i.mass_mct >= 10])
        if not items:
            return None
        item = items[0]
        kept = item.mass_mct * self.rng.randrange(70, 101) // 100
        count = self.rng.randrange(1, 4)
        masses = [kept // count] * count
        outs = [Output(id=self.fresh(item.id + "-"), type=self.rng.choice(("stone", "lot")), mass_mct=m)
                for m in masses]
        return self.make(Split(loss_mct=item.mass_mct - sum(masses)), item.holder, inputs=[item.id],
                         consumes=[item.id], outputs=outs)

    def merge(self) -> Record | None:
        candidates = self.live(types=("stone", "lot"), among=MAKERS)
        with_peers = [i for i in candidates if self.peers(i, candidates)]
        if not with_peers:
            return None
        first = self.rng.choice(with_peers)
        peers = self.peers(first, candidates)
        items = [first, *self.rng.sample(peers, min(len(peers), self.rng.randrange(1, 3)))]
        total = sum(i.mass_mct for i in items)
        loss = self.rng.randrange(0, total // 10 + 1)
        ids = [i.id for i in items]
        return self.make(Merged(loss_mct=loss), items[0].holder, inputs=ids, consumes=ids,
                         outputs=[Output(id=self.fresh("LOT"), type="lot", mass_mct=total - loss)])

    def set_(self) -> Record | None:
        stones = self.pick(self.live(types=("stone",), among=SETTERS), 2)
        if not stones:
            return None
        return self.make(Set(description="platinum ring"), stones[0].holder, inputs=[s.id for s in stones],
                         outputs=[Output(id=self.fresh("RING"), type="article",
                                         mass_mct=sum(s.mass_mct for s in stones))])

    def unset(self) -> Record | None:
        articles = self.live(types=("article",), among=SETTERS)
        if not articles:
            return None
        article = self.rng.choice(articles)
        inside = sorted(i.id for i in self.state.items.values() if i.article == article.id and i.state == "locked")
        if not inside:
            return None
        return self.make(Unset(reason="remount"), article.holder, inputs=[article.id, *inside],
                         consumes=[article.id])

    def grade(self, report: str | None = None, item: Item | None = None, mass_mct: int | None = None,
              nature: str | None = None) -> Record | None:
        stones = [item] if item else self.live(types=("stone",), owned=False)
        if not stones:
            return None
        stone = self.rng.choice(stones)
        weighed = stone.mass_mct - self.rng.randrange(0, stone.mass_mct // 50 + 1) if mass_mct is None else mass_mct
        event = Graded(lab="lab-d", report=report or self.fresh("RPT-"), mass_mct=weighed, colour="G",
                       clarity="VS1", nature=nature or stone.nature)
        return self.make(event, stone.holder, inputs=[stone.id])

    def inscribe(self, inscription: str | None = None, item: Item | None = None) -> Record | None:
        stones = [item] if item else self.live(types=("stone",), owned=False)
        if not stones:
            return None
        stone = self.rng.choice(stones)
        return self.make(Inscribed(lab="lab-d", inscription=inscription or self.fresh("INS-")), stone.holder,
                         inputs=[stone.id])

    def retire(self) -> Record | None:
        items = [i for i in self.state.items.values() if i.state in ("live", "in_transit") and i.holder == i.owner]
        if not items:
            return None
        item = self.rng.choice(items)
        return self.make(Retired(reason=self.rng.choice(("lost", "stolen", "destroyed"))), item.holder,
                         inputs=[item.id])

    def export(self) -> Record | None:
        items = self.pick(self.live(), 2)
        if not items:
            return None
        source = items[0].country
        to = "BE" if source != "BE" else "BW"
        declared = tuple(sorted((i.id, i.mass_mct) for i in items))
        event = Exported(kp_certificate=self.fresh(f"{source}-KP-"), to_country=to,
                         consignee="trader-e" if to == "BE" else "trader-b",
                         certificate_mct=sum(m for _, m in declared), issued_ms=self.time_ms,
                         expires_ms=self.time_ms + 90 * DAY_MS, declared=declared,
                         kp_authority="kp-bw" if source == "BW" else None)
        return self.make(event, items[0].holder, inputs=[i.id for i in items], place=source)

    def import_(self) -> Record | None:
        moving = [i for i in self.state.items.values() if i.state == "in_transit" and i.transit]
        if not moving:
            return None
        first = self.rng.choice(moving)
        assert first.transit is not None
        certificate, consignee, destination, source = first.transit
        items = [i for i in moving if i.transit == first.transit]
        declared = tuple(sorted((i.id, i.mass_mct) for i in items))
        event = Imported(kp_certificate=certificate, from_country=source, declared=declared,
                         customs="customs-be" if destination == "BE" else None, basis=None)
        return self.make(event, consignee, inputs=[i.id for i in items], place=destination)

    def verify(self) -> Record | None:
        items = [i for i in self.live(owned=False) if "XX" not in i.origin]
        if not items:
            return None
        item = self.rng.choice(items)
        return self.make(Verified(node="node-be", countries=tuple(sorted(item.origin))), item.holder,
                         inputs=[item.id])

    def rotate(self) -> Record:
        """A party's key rotated by the authority: a new key added (signing from then on), later the old revoked."""
        party = self.rng.choice(sorted(self.retiring) if self.retiring and self.rng.random() < 0.7 else TRADERS)
        if party in self.retiring:
            return self.make(KeyRevoked(party=party, key=self.retiring.pop(party), reason="rotated",
                                        registry_prev=self.state.registry.head), AUTHORITY)
        new = key(f"{party} {self.fresh('rotation ')}")
        self.added[new.public_key.raw] = (party, new)
        return self.make(KeyAdded(party=party, key=new.public_key.raw, registry_prev=self.state.registry.head),
                         AUTHORITY)

    def _subject(self) -> Record | None:
        custody = [r for r in self.records if r.body.kind not in ("enrolled", "key_added", "key_revoked")]
        return self.rng.choice(custody) if custody else None

    def attest(self, subject: Digest | None = None, actor: str = "auditor-x") -> Record | None:
        record = self._subject()
        if record is None:
            return None
        return self.make(Attested(subject=subject or record.record_hash, statement="held before 2024-03-01"),
                         actor, place="BE")

    def correct(self, *, signer: bool = True) -> Record | None:
        record = self._subject()
        if record is None:
            return None
        signers = {s.party for s in record.signatures}
        pool = sorted(signers) if signer else sorted(set(TRADERS) - signers)
        return self.make(Corrected(subject=record.record_hash, statement="the time was a day earlier"),
                         self.rng.choice(pool), place="BE")

    # --- extras -------------------------------------------------------------------------------------------

    def attack(self) -> None:
        """Sign one extra against the current state (not applied) and put it in the pool."""
        name, make = self.rng.choice(self._attacks())
        records = self.branch() if name == "branch" else [r for r in [make()] if r is not None]
        if records:
            self.extras.append(Extra(tuple(records), len(self.records), name))

    def _attacks(self) -> list[tuple[str, Callable[[], Record | None]]]:
        return [("dup_report", self.dup_report), ("dup_inscription", self.dup_inscription),
                ("case_id", lambda: self.clone_id(swap=True)), ("same_id", lambda: self.clone_id(swap=False)),
                ("statement", lambda: self.rng.choice((self.attest, self.correct))()),
                ("not_signer", lambda: self.correct(signer=False)),
                ("unknown_subject", lambda: self.attest(Digest(self.rng.randbytes(32)))),
                ("over_split", self.over_split), ("over_grade", self.over_grade), ("nature", self.wrong_nature),
                ("not_holder", self.not_holder), ("article_mass", self.article_mass), ("branch", lambda: None),
                ("branch", lambda: None)]

    def _identity(self, attr: str) -> tuple[str, Item] | None:
        holders = [i for i in self.state.items.values() if getattr(i, attr)]
        others = self.live(types=("stone",), owned=False)
        if not holders or not others:
            return None
        value: str = getattr(self.rng.choice(holders), attr)
        return self.look_alike(value) if self.rng.random() < 0.4 else value, self.rng.choice(others)

    def look_alike(self, text: str) -> str:
        """``text`` as a reader would confuse it: another case, or 1 written l or I, 0 written O (or back)."""
        swaps = [text.swapcase(), text.replace("1", "l"), text.replace("1", "I"), text.replace("0", "O"),
                 text.replace("l", "1").replace("I", "1")]
        changed = [new for new in swaps if new != text]
        return self.rng.choice(changed) if changed else text

    def dup_report(self) -> Record | None:
        found = self._identity("report")
        return self.grade(report=found[0], item=found[1]) if found else None

    def dup_inscription(self) -> Record | None:
        found = self._identity("inscription")
        return self.inscribe(inscription=found[0], item=found[1]) if found else None

    def clone_id(self, *, swap: bool) -> Record | None:
        if not self.state.items:
            return None
        taken = self.rng.choice(sorted(self.state.items))
        new = self.look_alike(taken) if swap else taken
        return self.make(Mined(mine="Jwaneng", country="BW"), "producer-a", place="BW",
                         outputs=[Output(id=new, type="stone", mass_mct=self.rng.randrange(500, 5_000))])

    def over_split(self) -> Record | None:
        items = self.live(types=("stone", "lot"), among=MAKERS)
        if not items:
            return None
        item = self.rng.choice(items)
        return self.make(Split(loss_mct=0), item.holder, inputs=[item.id], consumes=[item.id],
                         outputs=[Output(id=self.fresh("BIG"), type="lot", mass_mct=item.mass_mct * 200)])

    def over_grade(self) -> Record | None:
        stones = self.live(types=("stone",), owned=False)
        if not stones:
            return None
        stone = self.rng.choice(stones)
        return self.grade(item=stone, mass_mct=stone.mass_mct + 1_000)

    def wrong_nature(self) -> Record | None:
        stones = self.live(types=("stone",), owned=False)
        if not stones:
            return None
        stone = self.rng.choice(stones)
        return self.grade(item=stone, nature="lab_grown" if stone.nature == "natural" else "natural")

    def not_holder(self) -> Record | None:
        items = self.live(owned=False)
        if not items:
            return None
        item = self.rng.choice(items)
        thief = self.rng.choice([p for p in TRADERS if p != item.holder])
        to = self.rng.choice([p for p in TRADERS if p != thief])
        return self.make(Transferred(to=to, mode="title"), thief, inputs=[item.id])

    def article_mass(self) -> Record | None:
        stones = self.live(types=("stone",), among=SETTERS)
        if not stones:
            return None
        stone = self.rng.choice(stones)
        return self.make(Set(description="ring"), stone.holder, inputs=[stone.id],
                         outputs=[Output(id=self.fresh("RING"), type="article", mass_mct=stone.mass_mct * 3)])

    def branch(self) -> list[Record]:
        """One to three valid records of another continuation from here (double sales, second cuts, …)."""
        fork = copy.copy(self)
        fork.state, fork.records = copy.deepcopy(self.state), list(self.records)
        fork.keys, fork.added, fork.retiring = dict(self.keys), dict(self.added), dict(self.retiring)
        fork.extras, fork.rng = [], random.Random(self.rng.random())
        done = [r for _ in range(self.rng.randrange(1, 4))
                if (r := fork.step(self.rng.choice([a for a, _ in fork._actions()]))) is not None]
        self.time_ms, self.serial = fork.time_ms, fork.serial  # the main sequence goes on later
        return done


def forge(rng: random.Random, steps: int) -> Forge:
    """A played :class:`Forge` of about ``steps`` actions."""
    world = Forge(rng)
    world.play(steps)
    return world


__all__ = ["ORIGIN", "PARTIES", "Extra", "Forge", "forge"]
