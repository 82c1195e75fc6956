"""A large, valid, deterministic ledger for benchmarks: a handful of parties, filler custody traffic, and one
target stone whose ancestry is exactly :data:`TARGET_STEPS` records spread across the whole log.

Layout of a ledger of ``n`` records (positions are 0-based leaf indices)::

    0 .. E-1     the registry: :data:`PARTIES` enrolled by the authority, written through ledger.Ledger
    E .. n-1     a stream of filler records (``mined`` stones, then 10..30 ``transferred`` each, title, between
                 trader parties, in the mining country, interleaved over a pool of ~2,000 live stones) into
                 which the target's steps are woven at evenly spread positions (an ``imported`` right after
                 its ``exported``)

The target (:data:`TARGET`) is mined as a lot in Botswana, sorted (split), sold, exported to Antwerp, imported,
verified by the G7 node, traded, shipped to Surat, cut, graded, inscribed, shipped back, traded, exported to New
York, imported, re-graded and sold: every kind a real proof covers, with every co-signer the rules need.

Speed: the filler bypasses :class:`ledger.Ledger` (which replays and checks every append) and goes straight to
:meth:`ledger.storage.FileStore.append_batch`. Records are built with :meth:`ledger.record.Record.create`, so they
are real signed records; ``bench_bundle.py --self-check`` audits a small ledger with ``check_ledger`` and checks
that the bytes do not depend on the number of worker processes.

Determinism: keys come from fixed seeds, times from positions (one minute per record), choices from one seeded
plan; Ed25519 signatures are deterministic. Each record depends only on the plan and on its item's previous
record, so items are split between worker processes (signing is the cost) and the result is byte-identical for
any number of workers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import multiprocessing
import os
import random
import struct
from array import array
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ledger import AUTHORITY, Ledger, Trust, note_verifier_key
from ledger.events import (
    Enrolled,
    Event,
    Exported,
    Graded,
    Imported,
    Inscribed,
    Mined,
    Split,
    Transferred,
    Verified,
)
from ledger.hashing import Digest
from ledger.keys import PrivateKey
from ledger.record import Body, Output, Record
from ledger.rules import RULES
from ledger.storage import FileStore

ORIGIN = "bench.stonetrail.example/ledger"
AUTHORITY_NAME = "bench.stonetrail.example/authority"
START_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z
STEP_MS = 60_000  # one record a minute
DAY_MS = 86_400_000
POOL = 2_000  # live filler stones being traded at once
BATCH = 20_000  # records per append_batch (one fsync each)
TARGET = "T-STONE"

#: (party id, roles, country), enrolled in this order at positions 0 .. len - 1.
PARTIES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("producer-bw", ("producer",), "BW"), ("producer-ca", ("producer",), "CA"),
    ("producer-za", ("producer",), "ZA"), ("producer-ao", ("producer",), "AO"),
    ("trader-gaborone", ("trader",), "BW"), ("trader-antwerp", ("trader",), "BE"),
    *((f"trader-{i:02d}", ("trader",), c)
      for i, c in enumerate(("BE", "AE", "IN", "IL", "US", "HK", "CH", "GB") * 2, start=1)),
    ("cutter-surat", ("manufacturer",), "IN"), ("lab-mumbai", ("lab",), "IN"), ("node-antwerp", ("node",), "BE"),
    ("kp-botswana", ("kp_authority",), "BW"), ("kp-belgium", ("kp_authority",), "BE"),
    ("kp-india", ("kp_authority",), "IN"), ("customs-belgium", ("customs",), "BE"),
    ("customs-india", ("customs",), "IN"), ("customs-us", ("customs",), "US"),
    ("jeweller-newyork", ("jeweller",), "US"),
)
COUNTRY = {party: country for party, _, country in PARTIES}
PRODUCERS = tuple(p for p, roles, _ in PARTIES if roles == ("producer",))
TRADERS = tuple(p for p in COUNTRY if p.startswith("trader-") and p[7:].isdigit())
MINE = {"BW": "Jwaneng", "CA": "Diavik", "ZA": "Venetia", "AO": "Catoca"}
MINE_OP, TRANSFER_OP, TARGET_OP = 0, 1, 2


def key(name: str) -> PrivateKey:
    """The fixed key of ``name`` (a party, ``authority`` or ``operator``)."""
    return PrivateKey.from_seed(hashlib.sha256(f"stonetrail bench {name}".encode()).digest())


def trust() -> Trust:
    """The pinned keys a verifier of the bench ledger uses."""
    return Trust(operators=(note_verifier_key(ORIGIN, key("operator").public_key),),
                 authorities=(note_verifier_key(AUTHORITY_NAME, key(AUTHORITY).public_key),))


def format_hash() -> str:
    """Names a cache entry: changes with this file (the generator) and with the record and store formats."""
    from ledger import record, storage
    h = hashlib.sha256(Path(__file__).read_bytes())
    h.update(f"{record.FORMAT_VERSION} {record.RECORD_TAG!r} {storage.FORMAT_VERSION}".encode())
    return h.hexdigest()[:12]


# --- the target stone: one row per record of its ancestry ------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Step:
    """One record of the target's ancestry: ``actor`` does ``event`` at ``place`` on ``inputs``."""

    actor: str
    place: str
    event: Event
    inputs: tuple[str, ...] = ()
    consumes: bool = False
    outputs: tuple[Output, ...] = ()
    follows: bool = False  # placed right after the previous step (an import after its export)


def _ship(item: str, mass: int, holder: str, source: str, consignee: str, dest: str, kp: str, customs: str,
          number: int) -> list[Step]:
    cert = f"{source}-BENCH-{number:05d}"
    declared = ((item, mass),)
    return [Step(holder, source, Exported(kp_certificate=cert, to_country=dest, consignee=consignee,
                                          certificate_mct=mass, issued_ms=START_MS, expires_ms=START_MS,
                                          declared=declared,  # dated when signed (_Writer.sign)
                                          kp_authority=kp), (item,)),
            Step(consignee, dest, Imported(kp_certificate=cert, from_country=source, declared=declared,
                                           customs=customs, basis=None), (item,), follows=True)]


def _sales(item: str, chain: list[str], place: str) -> list[Step]:
    return [Step(a, place, Transferred(to=b, mode="title"), (item,)) for a, b in itertools.pairwise(chain)]


def target_steps() -> list[Step]:
    """The 40 records of the target's ancestry, oldest first (export dates are filled in when written)."""
    lot, rough, rest = "T-LOT", "T-ROUGH", "T-LOT-REST"
    rough_mct, stone_mct = 4_000, 1_510
    sort = (Output(id=rough, type="stone", mass_mct=rough_mct), Output(id=rest, type="lot", mass_mct=40_000))
    cut = (Output(id=TARGET, type="stone", mass_mct=stone_mct), Output(id=TARGET + "-B", type="stone", mass_mct=420))
    antwerp = ["trader-antwerp", "trader-01", "trader-09", "trader-01", "trader-09", "trader-01", "trader-09",
               "trader-antwerp"]
    return [
        Step("producer-bw", "BW", Mined(mine="Jwaneng", country="BW"),
             outputs=(Output(id=lot, type="lot", mass_mct=50_000),)),
        Step("producer-bw", "BW", Split(loss_mct=6_000), (lot,), consumes=True, outputs=sort),
        *_sales(rough, ["producer-bw", "trader-gaborone"], "BW"),
        *_ship(rough, rough_mct, "trader-gaborone", "BW", "trader-antwerp", "BE", "kp-botswana", "customs-belgium", 1),
        Step("trader-antwerp", "BE", Verified(node="node-antwerp", countries=("BW",)), (rough,)),
        *_sales(rough, [*antwerp, "cutter-surat"], "BE"),
        *_ship(rough, rough_mct, "cutter-surat", "BE", "cutter-surat", "IN", "kp-belgium", "customs-india", 2),
        Step("cutter-surat", "IN", Split(loss_mct=rough_mct - stone_mct - 420), (rough,), consumes=True, outputs=cut),
        Step("cutter-surat", "IN", Graded(lab="lab-mumbai", report="BENCH-REPORT-0001", mass_mct=stone_mct,
                                          colour="G", clarity="VS1", nature="natural"), (TARGET,)),
        Step("cutter-surat", "IN", Inscribed(lab="lab-mumbai", inscription="BENCH-REPORT-0001"), (TARGET,)),
        *_ship(TARGET, stone_mct, "cutter-surat", "IN", "trader-antwerp", "BE", "kp-india", "customs-belgium", 3),
        Step("trader-antwerp", "BE", Verified(node="node-antwerp", countries=("BW",)), (TARGET,)),
        *_sales(TARGET, [*antwerp, "trader-01", "trader-antwerp"], "BE"),
        *_ship(TARGET, stone_mct, "trader-antwerp", "BE", "jeweller-newyork", "US", "kp-belgium", "customs-us", 4),
        Step("jeweller-newyork", "US", Graded(lab="lab-mumbai", report="BENCH-REPORT-0002", mass_mct=stone_mct,
                                              colour="G", clarity="VS1", nature="natural"), (TARGET,)),
        *_sales(TARGET, ["jeweller-newyork", *["trader-05", "trader-13"] * 3], "US"),
    ]


TARGET_STEPS = len(target_steps())


# --- the plan: what every position after the registry holds -----------------------------------------------------

@dataclass(frozen=True, slots=True)
class Plan:
    """For stream position p (ledger position ``first + p``): ``kind[p]`` (MINE_OP, TRANSFER_OP, TARGET_OP),
    ``item[p]`` (filler stone number, or target step), ``arg[p]`` (producer or recipient index)."""

    first: int
    kind: array[int]
    item: array[int]
    arg: array[int]


def make_plan(records: int, seed: int = 1) -> Plan:
    """The plan of a ledger of ``records`` records; requires records >= 500."""
    first = len(PARTIES)
    size = records - first
    steps = target_steps()
    slots, at = sum(not s.follows for s in steps), 0
    spots: list[int] = []
    for s in steps:
        spots.append(spots[-1] + 1 if s.follows else (2 * at + 1) * size // (2 * slots))
        at += not s.follows
    target = dict(zip(spots, range(len(steps)), strict=True))
    rng = random.Random(seed)
    kind, item, arg = array("B", bytes(size)), array("I", bytes(4 * size)), array("B", bytes(size))
    active: list[int] = []
    left: dict[int, int] = {}
    holder: dict[int, int] = {}
    stones = 0
    for p in range(size):
        if p in target:
            kind[p], item[p] = TARGET_OP, target[p]
        elif not active or (len(active) < POOL and rng.random() < 0.5):
            kind[p], item[p], arg[p] = MINE_OP, stones, rng.randrange(len(PRODUCERS))
            active.append(stones)
            left[stones], holder[stones] = rng.randrange(10, 31), -1
            stones += 1
        else:
            i = rng.randrange(len(active))
            j = active[i]
            to = rng.randrange(len(TRADERS) - (holder[j] >= 0))
            to += 0 <= holder[j] <= to  # never to the holder itself
            kind[p], item[p], arg[p] = TRANSFER_OP, j, to
            holder[j], left[j] = to, left[j] - 1
            if not left[j]:
                active[i] = active[-1]
                active.pop()
                del left[j], holder[j]
    return Plan(first, kind, item, arg)


def _owner(plan: Plan, p: int, workers: int) -> int:
    return 0 if plan.kind[p] == TARGET_OP else plan.item[p] % workers


# --- writing records --------------------------------------------------------------------------------------------

class _Writer:
    """Signs the records of the plan positions one worker owns; tracks its items' heads and holders."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.keys: dict[str, PrivateKey] = {}
        self.heads: dict[str, Digest] = {}
        self.holders: dict[str, str] = {}
        self.places: dict[str, str] = {}  # where each filler stone is: where it was mined (it never travels)
        self.steps = target_steps()

    def sign(self, p: int) -> bytes:
        kind, j, arg = self.plan.kind[p], self.plan.item[p], self.plan.arg[p]
        time_ms = START_MS + (self.plan.first + p) * STEP_MS
        if kind == MINE_OP:
            producer = PRODUCERS[arg]
            country = COUNTRY[producer]
            mass = 200 + (j * 7919) % 20_000
            out = Output(id=f"F-{j:07d}", type="stone", mass_mct=mass)
            self.places[out.id] = country
            return self._record(Step(producer, country, Mined(mine=MINE[country], country=country),
                                     outputs=(out,)), time_ms)
        if kind == TRANSFER_OP:
            item, to = f"F-{j:07d}", TRADERS[arg]
            holder = self.holders[item]
            return self._record(Step(holder, self.places[item], Transferred(to=to, mode="title"), (item,)), time_ms)
        step = self.steps[j]
        if isinstance(step.event, Exported):
            event = dataclasses.replace(step.event, issued_ms=time_ms, expires_ms=time_ms + 90 * DAY_MS)
            step = dataclasses.replace(step, event=event)
        return self._record(step, time_ms)

    def _record(self, step: Step, time_ms: int) -> bytes:
        rule = RULES[step.event.KIND]
        cosigner = getattr(step.event, rule.cosigner) if rule.cosigner else None
        signers = sorted({step.actor, *([cosigner] if cosigner else [])})
        body = Body(origin=ORIGIN, kind=step.event.KIND, time_ms=time_ms, place=step.place, actor=step.actor,
                    event=step.event, inputs=tuple((i, self.heads[i]) for i in sorted(step.inputs)),
                    consumes=tuple(sorted(step.inputs)) if step.consumes else (),
                    outputs=tuple(sorted(step.outputs, key=lambda o: o.id)))
        record = Record.create(body, [(s, self._key(s)) for s in signers])
        holder = step.event.to if isinstance(step.event, Transferred) else step.actor
        for item in (*step.inputs, *(o.id for o in step.outputs)):
            if step.consumes and item in step.inputs:
                del self.heads[item], self.holders[item]
            else:
                self.heads[item], self.holders[item] = record.record_hash, holder
        return record.raw

    def _key(self, party: str) -> PrivateKey:
        if party not in self.keys:
            self.keys[party] = key(party)
        return self.keys[party]


def _work(plan: Plan, worker: int, workers: int, part: Path) -> None:
    """Sign every record ``worker`` owns, in position order, into ``part`` (u32 length, record bytes)."""
    writer = _Writer(plan)
    with part.open("wb", buffering=1 << 20) as out:
        for p in range(len(plan.kind)):
            if _owner(plan, p, workers) == worker:
                raw = writer.sign(p)
                out.write(struct.pack(">I", len(raw)) + raw)


def _enrol(path: Path) -> None:
    with Ledger.create(path, ORIGIN, trust().authority_keys) as ledger:
        for position, (party, roles, country) in enumerate(PARTIES):
            event = Enrolled(party=party, name=f"{party} (bench sample)", roles=tuple(sorted(roles)),
                             country=country, external_ids=(), key=key(party).public_key.raw,
                             registry_prev=ledger.registry_head)
            ledger.record_event(event, actor=AUTHORITY, place="BE", time_ms=START_MS + position * STEP_MS,
                                signers={AUTHORITY: key(AUTHORITY)})


def generate(path: Path, records: int, *, workers: int | None = None, seed: int = 1,
             progress: Callable[[str], None] = lambda _: None) -> None:
    """Write the bench ledger of ``records`` records to ``path`` (which must not exist)."""
    if records < 500:
        raise ValueError(f"records must be >= 500, got {records}")
    workers = workers or os.cpu_count() or 1
    plan = make_plan(records, seed)
    progress(f"plan of {records:,} records; signing with {workers} worker process(es)")
    parts = [path.with_name(f"{path.name}.part{w}") for w in range(workers)]
    _enrol(path)
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_work, args=(plan, w, workers, parts[w])) for w in range(workers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
        if proc.exitcode != 0:
            raise RuntimeError(f"generator worker failed with exit code {proc.exitcode}")
    _merge(path, plan, workers, parts)
    for part in parts:
        part.unlink()


def _merge(path: Path, plan: Plan, workers: int, parts: list[Path]) -> None:
    """Append the workers' records in plan order, BATCH records per append."""
    streams = [part.open("rb", buffering=1 << 20) for part in parts]
    try:
        with FileStore.open(path, writable=True) as store:
            batch: list[bytes] = []
            for p in range(len(plan.kind)):
                stream = streams[_owner(plan, p, workers)]
                (length,) = struct.unpack(">I", stream.read(4))
                batch.append(stream.read(length))
                if len(batch) == BATCH:
                    store.append_batch(batch)
                    batch = []
            store.append_batch(batch)
    finally:
        for stream in streams:
            stream.close()
