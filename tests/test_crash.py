"""Crash safety end to end (issue 10 item 4): a writer SIGKILLed at any moment loses no append that returned, and
the ledger reopens, appends again and audits valid; two writers at once get one lock and a clear error; readers
never block a writer nor see damage. The harness is tests/crashkit.py; bench/crash_soak.py runs 1,000 trials."""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from crashkit import (
    AUTHORITY_KEYS,
    CHECK_TIME_MS,
    TORN,
    Prepared,
    Summary,
    acknowledge,
    acknowledged,
    check_after_crash,
    prepare,
    run_trials,
    write_workload,
)
from forked import Channel, Child
from sigcache import signatures_verified_once

from ledger import Ledger, Mined, Output, Transferred, check_ledger
from ledger.errors import CorruptStoreError, LockedError
from ledger.merkle import leaf_hash
from ledger.storage import FileStore, scan
from world import TRUST, key

SEED = 10
TRIALS = 200


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prepared]:
    with signatures_verified_once():
        yield prepare(tmp_path_factory.mktemp("crash"))


def test_a_writer_killed_at_random_moments_loses_no_acknowledged_record(prepared: Prepared, tmp_path: Path) -> None:
    print(f"crash trials: seed {SEED}, {TRIALS} trials")
    summary = Summary.of(list(run_trials(prepared, SEED, range(TRIALS), tmp_path)))
    print(summary)
    assert summary.trials == TRIALS
    assert summary.torn >= 5 and summary.mid_batch >= 20  # the kills did land inside appends, and inside writes


# --- two writers at once ---------------------------------------------------------------------------------------

def _trade(channel: Channel, led: Ledger, tag: str, count: int) -> None:
    """Append ``count`` records through ``record_event``: stones ``tag<n>`` mined and sold on; acknowledge each."""
    time_ms = CHECK_TIME_MS - 10**9
    for n in range(count):
        time_ms += 60_000
        stone = f"{tag}{n // 3}"
        if n % 3 == 0:
            record = led.record_event(Mined(mine="Jwaneng", country="BW"), actor="producer-a", place="BW",
                                      time_ms=time_ms, signers={"producer-a": key("producer-a")},
                                      outputs=[Output(id=stone, type="stone", mass_mct=1000 + n)])
        else:
            holder = led.item(stone).holder
            buyer = "trader-b" if holder != "trader-b" else "trader-e"
            record = led.record_event(Transferred(to=buyer, mode="title"), actor=holder, place="BW", time_ms=time_ms,
                                      signers={holder: key(holder), buyer: key(buyer)}, inputs=[stone])
        acknowledge(channel, led.size - 1, [record])


def _contend(channel: Channel, path: Path, tag: str, count: int) -> None:
    """A writer child: on ``go``, open ``path``, retrying while it is locked (saying ``L <code> <message>`` the
    first time); once open say ``O``, wait for ``append``, append ``count`` records, close and say ``C``. A
    ledger left torn by a crashed writer is reported (``X <code>``), never written."""
    channel.hear()
    refused: list[LockedError] = []
    while True:
        try:
            led = Ledger.open(path, AUTHORITY_KEYS)
            break
        except LockedError as exc:
            if not refused:
                channel.say(f"L {exc.code} {exc}")
            refused.append(exc)
            time.sleep(0.001)
        except CorruptStoreError as exc:
            channel.say(f"X {exc.code}")
            return
    with led:
        channel.say("O")
        channel.hear()
        _trade(channel, led, tag, count)
    channel.say("C")


def _first_lines(children: list[Child]) -> list[str]:
    lines = [child.next_line() for child in children]
    assert None not in lines, [child.errors() for child in children]
    return [line or "" for line in lines]


def test_two_writers_at_once_get_one_lock_and_a_clear_error(prepared: Prepared, tmp_path: Path) -> None:
    path = prepared.copy(tmp_path / "two")
    children = [Child(functools.partial(_contend, path=path, tag=tag, count=30)) for tag in ("A-", "B-")]
    try:
        for child in children:
            child.tell("go")
        first = _first_lines(children)  # the winner holds the lock until told to append
        assert sorted(line[0] for line in first) == ["L", "O"], first
        winner, loser = children if first[0] == "O" else children[::-1]
        refusal = loser.lines[0]
        assert refusal.startswith("L store.locked ") and f"{path} is locked by another writer" in refusal
        for child in (winner, loser):  # the loser keeps trying while the winner appends, and gets the lock after
            child.tell("append")
            assert child.wait_for("C") is not None, child.errors()
            if child is winner:
                assert loser.wait_for("O") is not None, loser.errors()
        assert [child.join() for child in children] == [0, 0]
    finally:
        for child in children:
            child.kill()
    acks = acknowledged(winner.lines) | acknowledged(loser.lines)
    assert len(acks) == 60 and sorted(acks) == list(range(prepared.template_size, prepared.template_size + 60))
    check_after_crash(path, acks)


@pytest.mark.parametrize("step", [4, 11, 15, 3])  # batches of 96, 160 and 120 records, one record
def test_a_writer_killed_while_another_waits_leaves_it_a_whole_or_torn_ledger(prepared: Prepared, tmp_path: Path,
                                                                               step: int) -> None:
    path = prepared.copy(tmp_path / "killed")
    winner = Child(lambda channel: write_workload(channel, path, prepared.steps, pause_s=0.0002))
    waiter: Child | None = None
    try:
        assert winner.wait_for("O") is not None, winner.errors()
        waiter = Child(lambda channel: _contend(channel, path, "W-", 6))
        waiter.tell("go")
        assert (waiter.next_line() or "").startswith("L store.locked "), waiter.lines
        assert winner.wait_for(f"B {step}") is not None, winner.errors()
        time.sleep(0.003)
        winner.kill()
        assert winner.join() == -9
        taken = waiter.wait_for("O") or waiter.lines[-1]  # the lock is free: a torn ledger is refused, not written
        assert taken in ("O", f"X {TORN}"), waiter.lines
        if taken == "O":
            waiter.tell("append")
            assert waiter.wait_for("C") is not None, waiter.errors()
        assert waiter.join() == 0, waiter.errors()
    finally:
        for child in (winner, waiter):
            if child is not None:
                child.kill()
    check_after_crash(path, acknowledged(winner.lines) | acknowledged(waiter.lines))


# --- readers while a writer appends ----------------------------------------------------------------------------

def _read_while_writing(path: Path, planned: list[bytes]) -> bool:
    """One reader's pass over a ledger being appended to: what it sees is the template and whole planned
    records, a torn tail at worst (an append in progress), and the audit finds nothing else. True if torn."""
    found = scan(path)
    assert [p.code for p in found.problems] in ([], [TORN]), found.problems
    assert [f.payload for f in found.frames] == planned[: len(found.frames)]
    with FileStore.open(path) as reader:  # a reader's handle takes no lock
        assert reader.size >= len(found.frames)
    report = check_ledger(path, TRUST)
    assert {f.code for f in report.findings} <= {TORN}, report.findings[:3]
    return bool(found.problems)


def test_readers_never_block_a_writer_nor_see_damage(prepared: Prepared, tmp_path: Path) -> None:
    path = prepared.copy(tmp_path / "read")
    with FileStore.open(path) as template:
        planned = [*template, *prepared.planned()]
    writer = Child(lambda channel: write_workload(channel, path, prepared.steps, pause_s=0.0005))
    try:
        assert writer.wait_for("O") is not None, writer.errors()
        passes = torn = 0
        while "D" not in writer.lines:
            torn += _read_while_writing(path, planned)
            passes += 1
            writer.poll()
            assert not writer.errors(), writer.errors()
        assert writer.alive()  # the writer held its lock through every pass: no reader waited for it
        with pytest.raises(LockedError):
            FileStore.open(path, writable=True)
        writer.tell("stop")
        assert writer.join() == 0, writer.errors()
    finally:
        writer.kill()
    assert passes >= 2 and torn >= 1, (passes, torn)  # readers did overlap appends in progress
    check_after_crash(path, acknowledged(writer.lines))


# --- the check itself ----------------------------------------------------------------------------------------

def test_the_check_after_a_crash_fails_on_a_lost_or_changed_record(prepared: Prepared, tmp_path: Path) -> None:
    path = prepared.copy(tmp_path / "lost")
    frames = scan(path).frames
    last, size = frames[-1], len(frames)
    with pytest.raises(AssertionError, match="lost"):
        check_after_crash(path, {size: leaf_hash(last.payload)})
    with pytest.raises(AssertionError, match="not the acknowledged one"):
        check_after_crash(path, {0: leaf_hash(last.payload)})
    data = bytearray(path.read_bytes())
    data[last.offset + 20] ^= 1  # damage that is not a torn tail
    path.write_bytes(bytes(data))
    with pytest.raises(AssertionError, match="checksum"):
        check_after_crash(path, {})
