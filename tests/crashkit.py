"""The crash-test harness of issue 10 item 4, shared by tests/test_crash.py and bench/crash_soak.py.

A parent prepares one small valid ledger (the *template*: three parties, stones mined and sold) and a *workload*:
steps of valid custody records to append after it, single records and batches of up to a few hundred. Each
*trial* copies the template into a directory of its own and forks (no new interpreter) a writer that opens the
copy with :meth:`ledger.Ledger.open` and appends the workload: a single record through ``record_event``, a
batch through ``append_batch``. Before each append the writer says ``B <step>`` on a pipe; after the append
returns it acknowledges each record (``A <position> <record hash hex>``). The parent SIGKILLs it at a moment
drawn from the trial's seed (after the fork, or after a given step began, plus a delay), then
:func:`check_after_crash` checks what a user relies on after a crash.

Some writers run on a *slow disk*: ``os.write`` writes at most 256 bytes a call, with a pause after each (the
kernel may write less than asked; ``write_all`` loops), so that kills land inside a write and leave a torn tail.
A SIGKILL loses no byte that reached the page cache: this checks a process crash, not a power cut.

Signatures are checked once per exact bytes (``sigcache.signatures_verified_once``, entered by the caller
around :func:`prepare` and the trials): each trial replays the same records three times (the writer's open, the
check's open, the audit), and the cached outcome is what the real check returned, so no verdict changes.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import signal
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from forked import Channel, Child

from ledger import AUTHORITY, Ledger, Mined, Output, Record, Transferred, check_ledger
from ledger.hashing import Digest
from ledger.index import discard_index, index_path
from ledger.merkle import leaf_hash
from ledger.storage import FileStore, repair, scan
from world import TRUST, World, key

#: The authority key of the test ledgers, as ``Ledger.open`` takes it.
AUTHORITY_KEYS = frozenset({key(AUTHORITY).public_key.raw})
#: A time after every record of the workload (ms since the epoch): the check's own appends are dated from it.
CHECK_TIME_MS = 1_760_000_000_000
TORN = "store.torn_tail"
LEDGER_NAME = "crash.ledger"
#: Records in each step of the workload: single records (``record_event``) and batches (``append_batch``).
STEP_SIZES = (1, 1, 4, 1, 96, 1, 2, 1, 64, 8, 1, 160, 1, 3, 1, 120, 1, 1)
TEMPLATE_STONES = 30  # each mined and sold three times: with the 3 enrolments, 123 records
PARTIES = (("producer-a", ("producer",), "BW"), ("trader-b", ("trader",), "BW"), ("trader-e", ("trader",), "BW"))
SLOW_PAUSE_S = 0.0001  # a slow disk's pause after each write of at most 256 bytes
WRITING = "W"  # what a writer on a slow disk says after a step's first write


# --- the prepared ledger and its workload ---------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class Prepared:
    """A template directory holding a valid ledger of ``template_size`` records, and the workload: ``steps`` of
    records to append after it in order (all valid there; a step of one is a ``record_event``)."""

    template: Path
    template_size: int
    steps: tuple[tuple[Record, ...], ...]

    def copy(self, directory: Path) -> Path:
        """A fresh copy of the template (every file of its directory: sidecars too) in ``directory``; its path."""
        shutil.copytree(self.template, directory)
        return directory / LEDGER_NAME

    def planned(self) -> list[bytes]:
        """The bytes of every workload record, in order."""
        return [record.raw for step in self.steps for record in step]


def _trade(w: World, rng: random.Random, count: int, prefix: str) -> list[Record]:
    """``count`` valid records applied to ``w``: stones mined by producer-a (ids ``prefix<n>``) and sold on."""
    records = []
    for _ in range(count):
        held = [i for i, item in w.state.items.items() if item.type == "stone"]
        if not held or rng.random() < 0.3:
            record = w.mine(f"{prefix}{len(w.records)}", mass_mct=rng.randrange(100, 5000))
        else:
            item = rng.choice(held)
            holder = w.state.items[item].holder
            buyer = rng.choice([p for p, _, _ in PARTIES[1:] if p != holder])
            record = w.make(Transferred(to=buyer, mode="title"), holder, inputs=[item])
        assert w.add(record) == [], record.body
        records.append(record)
    return records


def prepare(directory: Path) -> Prepared:
    """Write the template under ``directory`` and check the workload: the template plus every step, appended
    through :class:`ledger.Ledger` in a scratch file, audits valid (and fills the signature cache)."""
    w, rng = World(), random.Random("crashkit workload")
    for party, roles, country in PARTIES:
        w.enrol_party(party, roles, country)
    _trade(w, rng, TEMPLATE_STONES * 4, "T")
    template = directory / "template"
    template.mkdir(parents=True)
    with Ledger.create(template / LEDGER_NAME, w.origin, AUTHORITY_KEYS) as led:
        led.append_batch(w.records)
    prepared = Prepared(template=template, template_size=len(w.records),
                        steps=tuple(tuple(_trade(w, rng, n, "W")) for n in STEP_SIZES))
    scratch = prepared.copy(directory / "scratch")
    with Ledger.open(scratch, AUTHORITY_KEYS) as led:
        for step in prepared.steps:
            led.append_batch(step)
    assert check_ledger(scratch, TRUST).ok
    shutil.rmtree(scratch.parent)
    return prepared


# --- the writer -----------------------------------------------------------------------------------------------

def slow_disk(spare_fd: int, pause_s: float, on_write: Callable[[], None] = lambda: None) -> None:
    """In a child: every ``os.write`` but to ``spare_fd`` writes at most 256 bytes, then pauses ``pause_s``;
    ``on_write`` is called after each such write."""
    real_write = os.write

    def write(fd: int, data: bytes | memoryview) -> int:
        if fd == spare_fd:
            return real_write(fd, data)
        written = real_write(fd, bytes(data[:256]))
        on_write()
        time.sleep(pause_s)
        return written

    os.write = write  # type: ignore[assignment]


def append_step(led: Ledger, step: Sequence[Record]) -> int:
    """Append ``step`` as the workload does: one record through ``record_event`` (rebuilt from the planned
    record's parts, which it must give back byte for byte), several through ``append_batch``. Its first
    position."""
    if len(step) > 1:
        return led.append_batch(step)
    planned = step[0]
    body = planned.body
    made = led.record_event(body.event, actor=body.actor, place=body.place, time_ms=body.time_ms,
                            signers={sg.party: key(sg.party) for sg in planned.signatures},
                            inputs=[item for item, _ in body.inputs], outputs=body.outputs)
    assert made.raw == planned.raw, "record_event did not give the planned record"
    return led.size - 1


def acknowledge(channel: Channel, first: int, step: Sequence[Record]) -> None:
    """Say ``A <position> <hash hex>`` for each record of ``step`` appended at ``first``, in one write."""
    channel.say("".join(f"A {first + k} {r.record_hash.hex()}\n" for k, r in enumerate(step)))


def write_workload(channel: Channel, path: Path, steps: Sequence[Sequence[Record]], *, pause_s: float) -> None:
    """The writer child: open ``path`` (``O``), append each step (``B <step>``, then its acknowledgements),
    say ``D`` when done, then wait for the parent (holding the writer lock) until it says anything.
    ``pause_s``: a slow disk (:func:`slow_disk`) pausing this long after each write, 0: the real disk; on a
    slow disk the writer also says ``W`` after the first write of each step, so that a kill can aim inside it."""
    armed = [False]

    def first_write() -> None:
        if armed[0]:
            armed[0] = False
            channel.say(WRITING)

    if pause_s:
        slow_disk(channel.out_fd, pause_s, first_write)
    with Ledger.open(path, AUTHORITY_KEYS) as led:
        channel.say("O")
        for number, step in enumerate(steps):
            channel.say(f"B {number}")
            armed[0] = True
            acknowledge(channel, append_step(led, step), step)
        channel.say("D")
        channel.hear()


def acknowledged(lines: Sequence[str]) -> dict[int, Digest]:
    """Position -> record hash of every acknowledgement among a child's ``lines``."""
    acks = (line.split() for line in lines if line.startswith("A "))
    return {int(position): Digest(bytes.fromhex(digest)) for _, position, digest in acks}


# --- one trial ------------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class Trial:
    """When trial ``index`` of ``seed`` kills its writer: ``delay_ms`` after the fork (``after_step`` None) or
    after the writer began step ``after_step``; ``slow``: on a slow disk; ``in_write``: at once after the step's
    first write on that slow disk, wherever the machine's load puts it (some trials must tear a write)."""

    seed: int
    index: int
    after_step: int | None
    delay_ms: float
    slow: bool
    in_write: bool = False

    @classmethod
    def draw(cls, seed: int, index: int) -> Trial:
        """The trial's plan, from ``random.Random(f"{seed}:{index}")`` alone (rerun one alone with it)."""
        rng = random.Random(f"{seed}:{index}")
        batches = [n for n, size in enumerate(STEP_SIZES) if size > 1]
        mode = rng.random()
        after = None if mode < 0.15 else rng.choice(batches) if mode < 0.7 else rng.randrange(len(STEP_SIZES))
        delay = rng.uniform(0, 40) if after is None else rng.choice([0.0, rng.uniform(0, 3), rng.uniform(0, 25)])
        slow = rng.random() < 0.5
        in_write = slow and after in batches and rng.random() < 0.25
        return cls(seed=seed, index=index, after_step=after, delay_ms=0.0 if in_write else round(delay, 3),
                   slow=slow, in_write=in_write)

    def __str__(self) -> str:
        began = "'s first write" if self.in_write else " began"
        when = "the fork" if self.after_step is None else f"step {self.after_step}{began}"
        return (f"crash trial {self.index} of seed {self.seed}: SIGKILL {self.delay_ms} ms after {when}"
                f"{', slow disk' if self.slow else ''} (rerun: bench/crash_soak.py --seed {self.seed} "
                f"--only {self.index})")


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What a trial's kill hit: ``opened`` (the writer had opened the ledger), ``in_flight`` (records of the
    append under way, 0: none), ``finished`` (the whole workload was written), ``acknowledged`` records,
    ``unacknowledged`` records found written beyond them, and whether the file had a ``torn`` tail."""

    opened: bool
    in_flight: int
    finished: bool
    acknowledged: int
    unacknowledged: int
    torn: bool


def run_trial(prepared: Prepared, trial: Trial, directory: Path) -> Outcome:
    """Run ``trial`` in the new directory ``directory`` (removed if it passes) and check the crashed ledger.
    Raises AssertionError naming the trial and the directory kept."""
    path = prepared.copy(directory)
    pause_s = SLOW_PAUSE_S if trial.slow else 0
    child = Child(lambda channel: write_workload(channel, path, prepared.steps, pause_s=pause_s))
    try:
        began = trial.after_step is None or child.wait_for(f"B {trial.after_step}") is not None
        if began and (not trial.in_write or child.wait_for(WRITING) is not None):
            time.sleep(trial.delay_ms / 1000)
    finally:
        child.kill()
    try:
        outcome = _judge(prepared, child, path)
    except AssertionError as exc:
        raise AssertionError(f"{trial}: {exc} (files kept in {directory})") from exc
    shutil.rmtree(directory)
    return outcome


def _judge(prepared: Prepared, child: Child, path: Path) -> Outcome:
    """Reap the killed writer ``child`` of ``path``, check what it left and say what the kill hit."""
    status = child.join()
    assert not child.errors() and status == -signal.SIGKILL, f"the writer failed: {child.errors()}"
    acks = acknowledged(child.lines)
    found = scan(path)
    written = _whole_steps(prepared, [f.payload for f in found.frames])
    check_after_crash(path, acks)
    last = next((line for line in reversed(child.lines) if line != WRITING), "")
    in_flight = len(prepared.steps[int(last[2:])]) if last.startswith("B ") else 0  # begun, never acknowledged
    return Outcome(opened="O" in child.lines, in_flight=in_flight, finished="D" in child.lines,
                   acknowledged=len(acks), unacknowledged=written - prepared.template_size - len(acks),
                   torn=any(p.code == TORN for p in found.problems))


def _whole_steps(prepared: Prepared, payloads: Sequence[bytes]) -> int:
    """Assert that the crashed file holds the template and then whole workload steps, in order (an append is
    all or nothing); return its record count."""
    planned, cuts = prepared.planned(), [0]
    for step in prepared.steps:
        cuts.append(cuts[-1] + len(step))
    workload = list(payloads[prepared.template_size:])
    assert len(workload) in cuts, f"{len(workload)} workload records: not whole steps (steps end at {cuts})"
    assert workload == planned[: len(workload)], "the workload records differ from the plan"
    return len(payloads)


# --- the check ------------------------------------------------------------------------------------------------

def check_after_crash(path: Path, acknowledged: Mapping[int, Digest]) -> None:
    """What a user relies on after a writer crashed at any moment (issue 10 item 4). Raises AssertionError.

    (a) the file reopens for reading; a torn tail is the only damage, and ``repair`` moves it, byte for byte, into
    the side file it keeps and leaves the file whole; (b) every acknowledged record is at its position with its
    hash; (c) ``Ledger.open`` succeeds and appends again, and its index (caught up after the crash) holds what a
    rebuild from the log holds; (d) the full audit with the trust finds nothing.
    """
    found = scan(path)
    assert [p.code for p in found.problems] in ([], [TORN]), found.problems
    with FileStore.open(path):  # a reader tolerates a torn tail
        pass
    if found.problems:
        data = path.read_bytes()
        repaired = repair(path)
        assert repaired.side_file is not None and repaired.side_file.read_bytes() == data[found.end_offset:]
        assert path.read_bytes() == data[: found.end_offset] and scan(path).problems == []
    with FileStore.open(path) as store:
        for position, digest in sorted(acknowledged.items()):
            assert position < store.size, f"acknowledged record {position} is lost ({store.size} records)"
            assert leaf_hash(store.read(position)) == digest, f"record {position} is not the acknowledged one"
        size = store.size
    with Ledger.open(path, AUTHORITY_KEYS) as led:
        appended = led.record_event(Mined(mine="Jwaneng", country="BW"), actor="producer-a", place="BW",
                                    time_ms=CHECK_TIME_MS, signers={"producer-a": key("producer-a")},
                                    outputs=[Output(id=f"CHECK-{size}", type="stone", mass_mct=1000)])
        assert led.size == size + 1
    assert index_agrees_with_a_rebuild(path)
    report = check_ledger(path, TRUST)
    assert report.ok and report.record_count == size + 1, report.findings[:3]
    assert leaf_hash(appended.raw) == appended.record_hash


def index_rows(path: Path) -> bytes:
    """A digest of every row of the ledger's index but the signed-size snapshots, the rows changed since the
    latest (docs/format.md §8.2), the last signed checkpoint (meta ``anchor``) and what the index saw of the log
    file (meta ``file``: its inode, size and time): what the log's bytes alone give."""
    digest = hashlib.sha256()
    with closing(sqlite3.connect(f"{index_path(path).resolve().as_uri()}?mode=ro", uri=True)) as db:
        tables = [t for (t,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        for table in tables:
            if table not in ("snap", "changed"):
                for row in db.execute(f"SELECT * FROM {table} ORDER BY 1"):
                    if table != "meta" or row[0] not in ("anchor", "file"):
                        digest.update(repr((table, row)).encode())
    return digest.digest()


def index_agrees_with_a_rebuild(path: Path) -> bool:
    """True if the index the writer kept (caught up after the crash) holds what a rebuild from the log holds."""
    rebuilt = path.with_name(f"rebuilt-{path.name}")
    shutil.copyfile(path, rebuilt)
    try:
        with Ledger.open(rebuilt, AUTHORITY_KEYS):
            pass
        return index_rows(path) == index_rows(rebuilt)
    finally:
        discard_index(rebuilt)
        rebuilt.unlink()


# --- many trials ----------------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True, kw_only=True)
class Summary:
    """Counts over trials (see :class:`Outcome`); ``mid_batch``/``mid_single``: killed during an append of a
    batch / of one record; ``before_open``: before the writer had opened the ledger."""

    trials: int
    torn: int
    mid_batch: int
    mid_single: int
    before_open: int
    finished: int
    acknowledged: int
    unacknowledged: int

    @classmethod
    def of(cls, outcomes: Sequence[Outcome]) -> Summary:
        return cls(trials=len(outcomes), torn=sum(o.torn for o in outcomes),
                   mid_batch=sum(o.in_flight > 1 for o in outcomes), mid_single=sum(o.in_flight == 1 for o in outcomes),
                   before_open=sum(not o.opened for o in outcomes), finished=sum(o.finished for o in outcomes),
                   acknowledged=sum(o.acknowledged for o in outcomes),
                   unacknowledged=sum(o.unacknowledged for o in outcomes))

    def __str__(self) -> str:
        return (f"{self.trials} SIGKILL trials: {self.torn} torn tails repaired, {self.mid_batch} killed mid-batch, "
                f"{self.mid_single} mid single append, {self.before_open} before the ledger was open, "
                f"{self.finished} after the whole workload; {self.acknowledged} acknowledged records all found, "
                f"{self.unacknowledged} more written but not yet acknowledged")


def run_trials(prepared: Prepared, seed: int, indices: Iterator[int] | range, directory: Path) -> Iterator[Outcome]:
    """Run the trials ``indices`` of ``seed``, one after another, each in ``directory/t<index>``."""
    for index in indices:
        yield run_trial(prepared, Trial.draw(seed, index), directory / f"t{index}")
