"""The differential fuzzer of issue 8: what a proof bundle says, a full audit would say.

One *case* is (ledger, item). A ledger is a random valid trade (tests/differential_ledgers.py) mutated as an
insider operator could — the operator holds the file and can append any validly signed record: records
dropped, duplicated, swapped, moved (a merge hoisted before the creation of one of its inputs: attack 1 of the
issue; a statement echoed before the record it is about), and extra validly signed records inserted (a second
stone graded under a taken report number, an id read alike, statements, a branch of double sales, …), and the
registry now and then cut or repeated. The file is written through the store (not
``Ledger.append``, which refuses invalid records), the operator signs a checkpoint over it, the full audit runs,
and every item any record creates gets its bundle exported and checked.

The invariant, for every item's bundle: each integrity finding of the audit at a position of the bundle's
provenance (its non-registry records; at a registry record, only ``registry.*`` findings) is *matched* (the
bundle has a finding with the same code at that position) or *covered* (the bundle's ``unchecked`` lists that
code at that position, or ``bundle.outside_items`` at that position for the finding's item). A bundle with no
finding while such an audit finding is neither matched nor covered is a **disagreement**: the bundle says
"valid" where the audit says "invalid". Also counted, not asserted: *mismatches* (the bundle fails, but not
with that code there), *false alarms* (the bundle fails, the audit finds nothing in its provenance),
*omissions* (a valid bundle leaves out a statement about one of its records) and export refusals (typed errors
only; anything else is a crash).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from differential_ledgers import ORIGIN, PARTIES, Forge, forge
from sigcache import signatures_verified_once

from ledger import AUTHORITY, Record, Trust
from ledger.bundle import BundleReport, check_bundle, read_bundle
from ledger.errors import StoneTrailError
from ledger.events import REGISTRY_KINDS, Attested, Corrected
from ledger.export import export_bundles
from ledger.findings import Finding
from ledger.item import Item
from ledger.keys import note_verifier_key
from ledger.provenance import Provenance
from ledger.reader import checkpoint_file
from ledger.replay import replay_ledger
from ledger.scope import item_index, provenance_scope
from ledger.storage import FileStore
from world import key

OPERATOR = key("operator")
TRUST = Trust(operators=(note_verifier_key(ORIGIN, OPERATOR.public_key),),
              authorities=(note_verifier_key("authority", key(AUTHORITY).public_key),))
REGISTRY_SIZE = len(PARTIES)
CONTROL_RATE = 0.05  # ledgers left as generated: the audit and every bundle must find nothing


# --- mutations ------------------------------------------------------------------------------------------------

def mutate(rng: random.Random, world: Forge) -> tuple[list[Record], list[str]]:
    """The main sequence of ``world`` changed as an insider operator could; returns it and what was done."""
    seq = list(world.records)
    if rng.random() < CONTROL_RATE:
        return seq, ["none"]
    ops = []
    if world.extras and rng.random() < 0.6:
        placed = []
        for extra in rng.sample(world.extras, min(len(world.extras), rng.randrange(1, 4))):
            natural = rng.random() < 0.7
            at = extra.at if natural else _after_registry(rng, len(seq))
            placed.append((at, extra.records))
            ops.append(f"insert {extra.tag} {'where signed' if natural else 'elsewhere'}")
        for at, records in sorted(placed, key=lambda p: p[0], reverse=True):
            seq[at:at] = records
    for _ in range(rng.choice((0, 1, 1, 2)) if ops else rng.choice((1, 1, 2, 3))):
        op = rng.choices(OPS, [w for _, w in OPS_WEIGHTED])[0]
        if (done := op(rng, seq)) is not None:
            ops.append(done)
    return seq, ops or ["none"]


def _after_registry(rng: random.Random, end: int) -> int:
    """A random place from the end of the enrolments (when there are that many records) to ``end``."""
    return rng.randrange(min(REGISTRY_SIZE, end), end + 1)


def _custody(seq: Sequence[Record]) -> list[int]:
    return [p for p, r in enumerate(seq) if r.body.kind not in REGISTRY_KINDS]


def _drop(rng: random.Random, seq: list[Record]) -> str | None:
    if not (places := _custody(seq)):
        return None
    return f"drop {seq.pop(rng.choice(places)).body.kind}"


def _duplicate(rng: random.Random, seq: list[Record]) -> str | None:
    if not (places := _custody(seq)):
        return None
    p = rng.choice(places)
    seq.insert(rng.randrange(p + 1, len(seq) + 1), seq[p])
    return f"duplicate {seq[p].body.kind} later"


def _move(rng: random.Random, seq: list[Record]) -> str | None:
    if not (places := _custody(seq)):
        return None
    p = rng.choice(places)
    record = seq.pop(p)
    q = _after_registry(rng, len(seq))
    seq.insert(q, record)
    return f"move {record.body.kind} {'earlier' if q < p else 'later'}"


def _swap(rng: random.Random, seq: list[Record]) -> str | None:
    places = [p for p in _custody(seq) if p + 1 < len(seq)]
    if not places:
        return None
    p = rng.choice(places)
    seq[p], seq[p + 1] = seq[p + 1], seq[p]
    return f"swap {seq[p + 1].body.kind} with the next {seq[p].body.kind}"


def _hoist(rng: random.Random, seq: list[Record]) -> str | None:
    """Move a record that names an input to before the record that creates that input (attack 1)."""
    created: dict[str, int] = {}
    for p, r in enumerate(seq):
        for out in r.body.outputs:
            created.setdefault(out.id, p)
    places = [p for p, r in enumerate(seq) if any(created.get(i, p) < p for i, _ in r.body.inputs)]
    if not places:
        return None
    p = rng.choice(places)
    target = rng.choice([i for i, _ in seq[p].body.inputs if created.get(i, p) < p])
    record = seq.pop(p)
    seq.insert(_after_registry(rng, created[target]), record)
    return f"hoist {record.body.kind} before the creation of its input"


def _echo(rng: random.Random, seq: list[Record]) -> str | None:
    """Copy a statement to before the record it is about (where it is about nothing yet)."""
    where = {r.record_hash: p for p, r in enumerate(seq)}
    places = [(p, where[e.subject]) for p, r in enumerate(seq)
              if isinstance(e := r.body.event, Attested | Corrected) and where.get(e.subject, p) < p]
    if not places:
        return None
    p, subject = rng.choice(places)
    seq.insert(_after_registry(rng, subject), seq[p])
    return f"echo {seq[p + 1].body.kind} before its subject"


def _registry(rng: random.Random, seq: list[Record]) -> str | None:
    p = rng.choice([p for p, r in enumerate(seq) if r.body.kind in REGISTRY_KINDS])
    if rng.random() < 0.5:
        del seq[p]
        return "registry drop"
    seq.insert(rng.randrange(p + 1, len(seq) + 1), seq[p])
    return "registry duplicate"


OPS_WEIGHTED: list[tuple[Callable[[random.Random, list[Record]], str | None], float]] = [
    (_hoist, 3), (_drop, 2), (_duplicate, 2), (_move, 2), (_swap, 2), (_echo, 1), (_registry, 0.2)]
OPS = [op for op, _ in OPS_WEIGHTED]


# --- one ledger: write, checkpoint, audit, export, check, compare ----------------------------------------------

@dataclass(slots=True, kw_only=True)
class Outcome:
    """One case. ``relevant``: the audit's findings in the bundle's provenance; ``covered``: those the bundle
    reports as unchecked; ``unmatched``: those it neither matched nor covered. ``elsewhere``: the audit's
    findings at records of the provenance's items that are not in the bundle (e.g. a record naming an item before
    the record that creates it). ``omitted``: statements, made after their subject, about a record of a valid
    bundle and left out of it. ``summary``: what a valid bundle's provenance says of the item (holder, mass,
    origin, …) that the audit's replay does not. ``refusal``: the export's typed error; ``crash``: anything
    untyped."""

    item: str
    positions: tuple[int, ...] = ()
    report: BundleReport | None = None
    relevant: list[Finding] = field(default_factory=list)
    covered: list[Finding] = field(default_factory=list)
    unmatched: list[Finding] = field(default_factory=list)
    elsewhere: list[Finding] = field(default_factory=list)
    omitted: list[int] = field(default_factory=list)
    summary: list[str] = field(default_factory=list)
    refusal: str | None = None
    crash: str | None = None

    @property
    def verdict(self) -> str:
        if self.crash or self.refusal:
            return "crash" if self.crash else "refused"
        assert self.report is not None
        if self.report.ok:
            return "disagreement" if self.unmatched else "valid"
        if self.unmatched:
            return "mismatch"
        return "false_alarm" if not self.relevant and not self.elsewhere else "failed"


def write_ledger(path: Path, seq: Sequence[Record]) -> None:
    """The records as a ledger file, through the store (no rule is checked)."""
    with FileStore.create(path, ORIGIN) as store:
        store.append_batch([r.raw for r in seq])


def created_items(seq: Sequence[Record]) -> list[str]:
    """Every id some record names as an output, in order of first creation."""
    return list(dict.fromkeys(o.id for r in seq for o in r.body.outputs))


@dataclass(frozen=True, slots=True)
class Audit:
    """The full audit of one ledger file: its findings by position, its replayed items, and every item's
    records (:class:`ledger.heads.ItemHeads`, over the records alone)."""

    seq: Sequence[Record]
    at: Mapping[int, list[Finding]]
    items: Mapping[str, Item]
    index: Mapping[str, Sequence[int]]


def judge(path: Path, seq: Sequence[Record], items: Sequence[str] | None = None
          ) -> tuple[list[Finding], list[Outcome]]:
    """Write ``seq`` to ``path``, audit it, and check the bundle of each of ``items`` (default: every created
    item) against the audit. Returns the audit's findings and one outcome per item.

    The audit is :func:`ledger.audit.replay_ledger`, whose findings are those of ``check_ledger`` without a
    checkpoint, and which also gives the replayed items for comparing the bundles' summaries."""
    path.unlink(missing_ok=True)
    write_ledger(path, seq)
    note = checkpoint_file(path, OPERATOR, ORIGIN)
    replay = replay_ledger(path, TRUST)
    at: dict[int, list[Finding]] = {}
    for f in replay.findings:
        if f.position is not None:
            at.setdefault(f.position, []).append(f)
    audit = Audit(seq, at, replay.state.items, item_index(dict(enumerate(seq))))
    items = created_items(seq) if items is None else items
    try:
        bundles = export_bundles(path, items, note, trust=TRUST)
    except StoneTrailError:  # find which item the export refuses, and why
        bundles = {}
    return list(replay.findings), [_outcome(path, audit, item, note, bundles.get(item)) for item in items]


def _outcome(path: Path, audit: Audit, item: str, note: str, data: bytes | None) -> Outcome:
    out = Outcome(item=item)
    try:
        if data is None:
            data = export_bundles(path, [item], note, trust=TRUST)[item]
    except StoneTrailError as exc:
        out.refusal = f"{type(exc).__name__} {exc.code}"
        return out
    except Exception as exc:  # an untyped error is what this counts
        out.crash = f"export: {type(exc).__name__}: {exc}"
        return out
    try:
        out.report = check_bundle(data, TRUST)
    except Exception as exc:
        out.crash = f"check_bundle: {type(exc).__name__}: {exc}"
        return out
    out.positions = tuple(e.index for e in read_bundle(data).entries)
    _compare(out, audit.seq, audit.at)
    scope = provenance_scope(dict(enumerate(audit.seq)), item, audit.index).items
    held = set(out.positions)
    out.elsewhere = [f for p in sorted({p for name in scope for p in audit.index.get(name, ())} - held)
                     for f in audit.at.get(p, ())]
    if out.report.provenance is not None:
        out.summary = _summary(out.report.provenance, audit.items.get(item))
    return out


def _summary(said: Provenance, item: Item | None) -> list[str]:
    """The fields of a valid bundle's summary that the audit's replayed item does not have."""
    if item is None:
        return ["the audit created no such item"]
    mine = {"type": item.type, "nature": item.nature, "mass_mct": item.mass_mct, "state": item.state,
            "holder": item.holder, "owner": item.owner, "article": item.article, "origin": item.origin}
    return [name for name, value in mine.items() if getattr(said, name) != value]


def _compare(out: Outcome, seq: Sequence[Record], at: Mapping[int, list[Finding]]) -> None:
    report = out.report
    assert report is not None
    said = {(f.code, f.position) for f in report.findings}
    unchecked = report.unchecked
    skipped = {(f.code, f.position) for f in unchecked}
    outside = {(f.position, f.item) for f in unchecked if f.code == "bundle.outside_items"}
    for p in out.positions:
        registry = seq[p].body.kind in REGISTRY_KINDS
        for f in at.get(p, ()):
            if registry and not f.code.startswith("registry."):
                continue
            out.relevant.append(f)
            if (f.code, p) in skipped or (p, f.item) in outside:
                out.covered.append(f)
            elif (f.code, p) not in said:
                out.unmatched.append(f)
    if report.ok:
        mine = {seq[p].record_hash: p for p in out.positions if seq[p].body.kind not in REGISTRY_KINDS}
        held = set(out.positions)
        out.omitted = [p for p, r in enumerate(seq) if p not in held and isinstance(e := r.body.event,
                       Attested | Corrected) and mine.get(e.subject, p) < p]


# --- classification of what went wrong ------------------------------------------------------------------------

def kinds(seq: Sequence[Record], out: Outcome) -> list[tuple[str, str]]:
    """(class, kind) for each distinct problem of ``out``: class is disagreement, mismatch, false_alarm, blind
    (valid, though the audit faults a record of its items left out of it), summary (a valid bundle's summary is
    not the audit's), omission, refused or crash; kind names the code and the record it is at."""
    verdict = out.verdict
    if verdict in ("crash", "refused"):
        return [(verdict, (out.crash or out.refusal or "")[:120])]
    assert out.report is not None
    found: list[tuple[str, str]] = []
    if verdict in ("disagreement", "mismatch"):
        scope = provenance_scope(dict(enumerate(seq)), out.item).items
        for f in out.unmatched:
            assert f.position is not None
            about = ("the item" if f.item == out.item else "a scope item" if f.item in scope else
                     "a party" if f.item in PARTIES or f.item == AUTHORITY else "no item" if f.item is None
                     else "an item outside the provenance")
            where = seq[f.position].body.kind
            said = sorted({g.code for g in out.report.findings if g.position == f.position}) or ["-"]
            tail = "" if verdict == "disagreement" else f"; bundle says {','.join(said)} there"
            found.append((verdict, f"{f.code} at a {where} record, about {about}{_cause(seq, out, f)}{tail}"))
    elif verdict == "false_alarm":
        first = out.report.findings[0]
        where = seq[first.position].body.kind if first.position is not None else "no"
        found.append((verdict, f"bundle {first.code} at a {where} record"))
    if out.summary:
        after = f", after covered {out.covered[0].code}" if out.covered else ""
        found.append(("summary", f"a valid bundle's summary is not the audit's replay: {', '.join(out.summary)}"
                      f"{after}"))
    if out.report.ok and out.elsewhere:
        f = out.elsewhere[0]
        where = seq[f.position].body.kind if f.position is not None else "no"
        found.append(("blind", f"valid, but the audit finds {f.code} at a {where} record of a provenance item "
                      "that the bundle leaves out"))
    for p in out.omitted:
        subject = next(seq[q].body.kind for q in out.positions if seq[q].record_hash == _subject(seq[p]))
        found.append(("omission", f"{seq[p].body.kind} about a {subject} record left out of a valid bundle"))
    return list(dict.fromkeys(found))


def _cause(seq: Sequence[Record], out: Outcome, f: Finding) -> str:
    """", after covered <code> at a <kind> record" if an earlier record of the bundle that names ``f``'s item
    has an audit finding the bundle reported as unchecked (what ``f`` may follow from)."""
    assert f.position is not None
    for g in out.covered:
        assert g.position is not None
        if g.position < f.position and f.item in seq[g.position].body.named_items():
            return f", after covered {g.code} at a {seq[g.position].body.kind} record"
    return ""


def _subject(record: Record) -> object:
    event = record.body.event
    assert isinstance(event, Attested | Corrected)
    return event.subject


__all__ = ["OPERATOR", "TRUST", "Outcome", "created_items", "forge", "judge", "kinds", "mutate",
           "signatures_verified_once", "write_ledger"]
