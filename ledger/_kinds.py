"""Per-kind checks and effects: what each event kind checks beyond the transition table, and what it does.

:mod:`ledger.custody` runs the generic part of every row of :data:`ledger.rules.RULES` (shape, signers, input
states, holder, hash links) and then, for the record's kind, the check in :data:`CHECKS` and, when the record
is applied, the effect in :data:`EFFECTS` (the generic effect — advance each input's chain, mark consumed
inputs — has run by then). Codes are listed in docs/format.md §10.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any, Protocol

from .events import (
    Attested,
    Corrected,
    Event,
    Exported,
    Graded,
    Grown,
    Imported,
    Inscribed,
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
from .findings import Finding
from .hashing import Digest
from .item import Item
from .origin import UNKNOWN, merge_origins, split_origin
from .record import Record
from .registry import Registry


class State(Protocol):
    """What the per-kind checks and effects read of a replay (:class:`ledger.custody.CustodyState`, which
    applies them: typed here as a protocol so that this module imports nothing below it)."""

    @property
    def items(self) -> MutableMapping[str, Item]: ...
    @property
    def partial(self) -> bool: ...
    @property
    def registry(self) -> Registry: ...
    @property
    def signers(self) -> MutableMapping[Digest, frozenset[str]]: ...
    @property
    def times(self) -> MutableMapping[Digest, int]: ...
    @property
    def subset(self) -> frozenset[Digest]: ...
    def outside(self, item_id: str) -> bool: ...
    def not_checked(self, code: str, position: int, item: str | None, reason: str) -> None: ...


Check = Callable[[State, Record, int], list[Finding]]
Effect = Callable[[State, Record, list[Item]], None]


def _f(code: str, position: int, item: str | None, reason: str) -> Finding:
    return Finding(code=code, position=position, item=item, reason=reason)


def _inputs(state: State, record: Record) -> list[Item]:
    return [state.items[i] for i, _ in record.body.inputs if i in state.items]


# --- checks ---------------------------------------------------------------------------------------------------

def _not_checked(state: State, record: Record, position: int, codes: tuple[str, ...], what: str) -> None:
    """Partial mode: the checks giving ``codes`` need inputs outside the subset (CustodyState.not_checked)."""
    outside = [i for i, _ in record.body.inputs if state.outside(i)]
    if outside:
        for code in codes:
            state.not_checked(code, position, None, f"{what}; {', '.join(outside)} outside this provenance")


def _check_created(state: State, record: Record, position: int) -> list[Finding]:
    """mined / grown: recorded where produced, by a producer enrolled in that country."""
    event, body = record.body.event, record.body
    assert isinstance(event, Mined | Grown)
    found = []
    producer = state.registry.parties.get(body.actor)
    if producer is not None and producer.country != event.country:
        found.append(_f("origin.foreign_mine", position, body.actor,
                        f"a producer enrolled in {producer.country} attests production in {event.country}"))
    if body.place != event.country:
        found.append(_f("record.shape", position, None,
                        f"produced in {event.country} but the record's place is {body.place}"))
    return found


def _check_split(state: State, record: Record, position: int) -> list[Finding]:
    event = record.body.event
    assert isinstance(event, Split | Merged)
    inputs = _inputs(state, record)
    found = [_f("record.shape", position, i.id, f"an article is unset, not {record.body.kind}")
             for i in inputs if i.type == "article"]
    if len(inputs) != len(record.body.inputs):
        _not_checked(state, record, position, ("mass.exceeds_input", "nature.mismatch"),
                     f"the mass balance and nature of this {record.body.kind} need every input")
        return found
    have = sum(i.mass_mct for i in inputs)
    total = sum(o.mass_mct for o in record.body.outputs) + event.loss_mct
    if total > have:
        found.append(_f("mass.exceeds_input", position, inputs[0].id if inputs else None,
                        f"outputs + loss = {total} mct > inputs {have} mct"))
    if len({i.nature for i in inputs}) > 1:
        found.append(_f("nature.mismatch", position, inputs[0].id,
                        "natural and laboratory-grown goods merged into one parcel"))
    return found


def _check_stone(item: Item, kind: str, position: int) -> list[Finding]:
    if item.type != "stone":
        return [_f("record.shape", position, item.id, f"only a stone is {kind}, this is a {item.type}")]
    return []


def _check_graded(state: State, record: Record, position: int) -> list[Finding]:
    event = record.body.event
    assert isinstance(event, Graded)
    found: list[Finding] = []
    for item in _inputs(state, record):
        found += _check_stone(item, "graded", position)
        if event.mass_mct > item.mass_mct:
            found.append(_f("mass.exceeds_input", position, item.id,
                            f"graded {event.mass_mct} mct > recorded {item.mass_mct} mct"))
        if event.nature != item.nature:
            found.append(_f("nature.mismatch", position, item.id,
                            f"graded {event.nature}, but the stone was created {item.nature}"))
    return found


def _check_inscribed(state: State, record: Record, position: int) -> list[Finding]:
    event = record.body.event
    assert isinstance(event, Inscribed)
    found: list[Finding] = []
    for item in _inputs(state, record):
        found += _check_stone(item, "inscribed", position)
    return found


def _check_transferred(state: State, record: Record, position: int) -> list[Finding]:
    event = record.body.event
    assert isinstance(event, Transferred)
    if event.to == record.body.actor:
        return [_f("custody.self_transfer", position, event.to, "a party cannot transfer to itself")]
    return []


def _check_declared(record: Record, declared: tuple[tuple[str, int], ...], position: int) -> list[Finding]:
    if [i for i, _ in declared] != [i for i, _ in record.body.inputs]:
        return [_f("record.shape", position, None, "declared masses must name exactly the shipped items")]
    return []


def _check_exported(state: State, record: Record, position: int) -> list[Finding]:
    event, body = record.body.event, record.body
    assert isinstance(event, Exported)
    found = _check_declared(record, event.declared, position)
    if event.to_country == body.place:
        found.append(_f("record.shape", position, None, f"an export from {body.place} to {event.to_country}"))
    if event.issued_ms > event.expires_ms:
        found.append(_f("record.shape", position, None, "the certificate expires before it is issued"))
    if event.consignee not in state.registry.parties:
        found.append(_f("custody.unknown_consignee", position, event.consignee, "consignee is not enrolled"))
    return found


def _check_imported(state: State, record: Record, position: int) -> list[Finding]:
    event, body = record.body.event, record.body
    assert isinstance(event, Imported)
    found = _check_declared(record, event.declared, position)
    for item in _inputs(state, record):
        if item.transit is None:
            continue
        certificate, _, destination, source = item.transit
        if (certificate, destination, source) != (event.kp_certificate, body.place, event.from_country):
            found.append(_f("custody.transit_mismatch", position, item.id,
                            f"exported under {certificate} from {source} to {destination}; imported under "
                            f"{event.kp_certificate} from {event.from_country} into {body.place}"))
    return found


def _check_verified(state: State, record: Record, position: int) -> list[Finding]:
    event = record.body.event
    assert isinstance(event, Verified)
    found = []
    if UNKNOWN in event.countries:
        found.append(_f("origin.verification_mismatch", position, None, "a node cannot verify an unknown origin"))
    for item in _inputs(state, record):
        if set(event.countries) != set(item.origin):
            found.append(_f("origin.verification_mismatch", position, item.id,
                            f"node attests {list(event.countries)}, the ledger traces {sorted(item.origin)}"))
    return found


def _check_set(state: State, record: Record, position: int) -> list[Finding]:
    inputs = _inputs(state, record)
    found: list[Finding] = []
    for item in inputs:
        found += _check_stone(item, "set", position)
    total = sum(i.mass_mct for i in inputs)
    if len(inputs) != len(record.body.inputs):
        _not_checked(state, record, position, ("mass.article_mismatch",), "the article's mass needs every stone")
    for out in record.body.outputs:
        if len(inputs) == len(record.body.inputs) and out.mass_mct != total:
            found.append(_f("mass.article_mismatch", position, out.id,
                            f"article declares {out.mass_mct} mct of stones, its stones weigh {total} mct"))
    return found


def _check_unset(state: State, record: Record, position: int) -> list[Finding]:
    articles = [i for i in _inputs(state, record) if i.type == "article"]
    if len(articles) != 1:
        if not articles and any(state.outside(i) for i, _ in record.body.inputs):
            _not_checked(state, record, position, ("record.shape",), "which input of this unset is its article")
            return []
        return [_f("record.shape", position, None, f"unset takes one article, got {len(articles)}")]
    article = articles[0]
    inside = {s.id for s in _stones_in(state, article)}
    named = {i for i, _ in record.body.inputs} - {article.id}
    if state.partial:  # a proof bundle holds only its own stones of the article: judge those, and what it knows
        if strangers := sorted(named - set(article.contents)):  # another article, or a stone never set in it
            return [_f("record.shape", position, article.id, f"unset of {article.id} names {', '.join(strangers)}, "
                       "which the set that made it did not name")]
        named &= state.items.keys()
        outside = [stone for stone in article.contents if state.outside(stone)]
        if outside:
            state.not_checked("record.shape", position, article.id, "that this unset releases exactly the "
                              f"article's stones needs every stone set in it; {', '.join(outside)} outside")
    if inside != named:
        return [_f("record.shape", position, article.id,
                   f"unset must release exactly the article's stones {sorted(inside)}")]
    return []


def _check_statement(state: State, record: Record, position: int) -> list[Finding]:
    event = record.body.event
    assert isinstance(event, Attested | Corrected)
    signers = state.signers.get(event.subject)
    if signers is None:
        if state.partial and event.subject not in state.subset:  # a record outside the subset: not a fault
            return []
        return [_f("record.unknown_subject", position, None, "the subject is not an earlier record of this ledger")]
    found: list[Finding] = []
    if isinstance(event, Corrected) and record.body.actor not in signers:
        found.append(_f("correction.not_signer", position, record.body.actor,
                        "only a signer of a record can state a correction to it"))
    if record.body.time_ms < state.times[event.subject]:
        found.append(_f("chain.time_backwards", position, None, "a statement dated before the record it is about"))
    return found


CHECKS: dict[type[Any], Check] = {
    Mined: _check_created, Grown: _check_created, Split: _check_split, Merged: _check_split,
    Graded: _check_graded, Inscribed: _check_inscribed, Transferred: _check_transferred,
    Exported: _check_exported, Imported: _check_imported, Verified: _check_verified, Set: _check_set,
    Unset: _check_unset, Attested: _check_statement, Corrected: _check_statement,
}


# --- effects --------------------------------------------------------------------------------------------------

def birth(event: Event, parents: list[Item], masses: list[int]) -> tuple[str, list[dict[str, int]]]:
    """Nature and origin compositions of new outputs (DESIGN.md §3): from the creating claim, or inherited from
    one parent (split) or summed over several (merge, set); an article of mixed nature is ``mixed``."""
    if isinstance(event, Mined):
        return "natural", [{event.country: m} for m in masses]
    if isinstance(event, Grown):
        return "lab_grown", [{event.country: m} for m in masses]
    if isinstance(event, Registered):
        return event.nature, [{UNKNOWN: m} for m in masses]
    natures = {p.nature for p in parents}
    nature = natures.pop() if len(natures) == 1 else "mixed"
    if len(parents) == 1:
        return nature, split_origin(parents[0].origin, masses)
    return nature, [merge_origins((p.origin for p in parents), m) for m in masses]


def _transferred(state: State, record: Record, items: list[Item]) -> None:
    event = record.body.event
    assert isinstance(event, Transferred)
    for item in items:
        item.holder = event.to
        if event.mode == "title":
            item.owner = event.to
        _carry_stones(state, item)


def _exported(state: State, record: Record, items: list[Item]) -> None:
    event = record.body.event
    assert isinstance(event, Exported)
    for item in items:
        item.state = "in_transit"
        item.transit = (event.kp_certificate, event.consignee, event.to_country, record.body.place)


def _imported(state: State, record: Record, items: list[Item]) -> None:
    for item in items:
        item.state, item.transit, item.country = "live", None, record.body.place
        item.holder = item.owner = record.body.actor
        _carry_stones(state, item)


def _graded(state: State, record: Record, items: list[Item]) -> None:
    event = record.body.event
    assert isinstance(event, Graded)
    for item in items:
        if event.mass_mct < item.mass_mct:  # the origin composition follows the mass the lab weighed
            item.mass_mct = event.mass_mct
            item.origin = split_origin(item.origin, [item.mass_mct])[0]
        item.graded_mct = event.mass_mct
        item.report = event.report


def _inscribed(state: State, record: Record, items: list[Item]) -> None:
    event = record.body.event
    assert isinstance(event, Inscribed)
    for item in items:
        item.inscription = event.inscription


def _unset(state: State, record: Record, items: list[Item]) -> None:
    for item in items:
        if item.type != "article":
            item.state, item.article = "live", None
            item.holder = item.owner = record.body.actor


def _retired(state: State, record: Record, items: list[Item]) -> None:
    for item in items:
        item.state = "retired"
        for stone in _stones_in(state, item):
            stone.state = "retired"


def _carry_stones(state: State, article: Item) -> None:
    """Stones set in an article follow its holder, owner and country."""
    for stone in _stones_in(state, article):
        stone.holder, stone.owner, stone.country = article.holder, article.owner, article.country


def _stones_in(state: State, article: Item) -> list[Item]:
    if article.type != "article":
        return []
    stones = (state.items.get(stone) for stone in article.contents)  # a set names every stone it locks
    return [s for s in stones if s is not None and s.article == article.id and s.state == "locked"]


EFFECTS: dict[type[Any], Effect] = {
    Transferred: _transferred, Exported: _exported, Imported: _imported, Graded: _graded,
    Inscribed: _inscribed, Unset: _unset, Retired: _retired,
}
