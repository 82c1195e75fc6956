"""A batch is all or nothing across a crash (docs/format.md §8, ADR 0010): its frames are marked, so a batch cut
short at any byte is a torn tail from its first frame, and repair moves the whole of it aside."""

from __future__ import annotations

import os
import random
import signal
import struct
import subprocess
import sys
import textwrap
import time
import zlib
from pathlib import Path

import pytest

from ledger import Ledger
from ledger.errors import CorruptStoreError
from ledger.storage import BATCH_MAGIC, FRAME_MAGIC, FileStore, repair, scan
from world import World

ORIGIN = "example.com/stonetrail/batches"
BEFORE = [b"first, alone", b"second, alone"]
BATCH = [b"batch record one", b"batch record two, longer", b"batch record three"]


def frame(payload: bytes, magic: bytes = FRAME_MAGIC) -> bytes:
    return magic + struct.pack(">II", len(payload), zlib.crc32(payload)) + payload


def ledger_with_batch(tmp_path: Path) -> tuple[Path, int]:
    """A ledger of two single appends and then one batch of three; returns (path, offset of the batch)."""
    path = tmp_path / "l.stl"
    with FileStore.create(path, ORIGIN) as store:
        for payload in BEFORE:
            store.append(payload)
        start = path.stat().st_size
        assert store.append_batch(BATCH) == 2
    return path, start


def test_batch_frames_are_marked_and_mean_the_same_records(tmp_path: Path) -> None:
    path, start = ledger_with_batch(tmp_path)
    data = path.read_bytes()
    assert data[start:] == frame(BATCH[0], BATCH_MAGIC) + frame(BATCH[1], BATCH_MAGIC) + frame(BATCH[2])
    assert data[:start].endswith(frame(BEFORE[0]) + frame(BEFORE[1]))  # a single append is a batch of one
    one_by_one = tmp_path / "single.stl"
    with FileStore.create(one_by_one, ORIGIN) as store:
        for payload in [*BEFORE, *BATCH]:
            store.append(payload)
    batched, single = scan(path), scan(one_by_one)
    assert [(f.index, f.payload) for f in batched.frames] == [(f.index, f.payload) for f in single.frames]
    assert batched.problems == single.problems == []
    with FileStore.open(path) as reader:
        assert list(reader) == [*BEFORE, *BATCH]  # read() re-checks a batch frame too


def test_a_batch_cut_at_any_byte_is_torn_whole_and_repaired_to_before_it(tmp_path: Path) -> None:
    path, start = ledger_with_batch(tmp_path)
    data = path.read_bytes()
    boundaries = {start + len(frame(BATCH[0])), start + len(frame(BATCH[0])) + len(frame(BATCH[1]))}
    for cut in range(start + 1, len(data)):
        path.write_bytes(data[:cut])
        result = scan(path)
        assert [f.payload for f in result.frames] == BEFORE, cut
        assert [(p.code, p.index, p.offset) for p in result.problems] == [("store.torn_tail", 2, start)], cut
        assert result.end_offset == start
        if cut in boundaries:  # whole frames of an unfinished batch: the case a frame-by-frame reader accepted
            assert "incomplete batch" in result.problems[0].reason
        with pytest.raises(CorruptStoreError) as err:
            FileStore.open(path, writable=True)
        assert err.value.code == "store.torn_tail"
        side = repair(path).side_file
        assert side == tmp_path / f"l.stl.torn-{start}" and side.read_bytes() == data[start:cut]  # nothing lost
        assert path.read_bytes() == data[:start]
        side.unlink()
    path.write_bytes(data)
    assert [f.payload for f in scan(path).frames] == [*BEFORE, *BATCH] and repair(path).side_file is None


def test_a_batch_after_mid_file_damage_is_left_to_an_audit(tmp_path: Path) -> None:
    path, start = ledger_with_batch(tmp_path)
    data = bytearray(path.read_bytes())
    data[start - 1] ^= 0x01  # the second single record is damaged; the batch after it is whole
    path.write_bytes(bytes(data[: len(data) - 3]))  # and its last frame is cut
    result = scan(path)
    assert [p.code for p in result.problems] == ["store.checksum_mismatch", "store.torn_tail"]
    with pytest.raises(CorruptStoreError) as err:
        repair(path)
    assert err.value.code == "store.checksum_mismatch" and path.read_bytes() == bytes(data[: len(data) - 3])


def test_ledger_append_batch_cut_short_reopens_as_before(tmp_path: Path) -> None:
    w = World()
    w.enrol_all()
    path = tmp_path / "w.ledger"
    authority = {w.keys["authority"].public_key.raw}
    with Ledger.create(path, w.origin, authority) as led:
        led.append_batch(w.records[:2])
        size, root, cut_at = led.size, led.root_hash(), path.stat().st_size
        led.append_batch(w.records[2:])
    with open(path, "r+b") as f:  # a crash wrote all but the last byte of the batch
        f.truncate(path.stat().st_size - 1)
    with pytest.raises(CorruptStoreError) as err:
        Ledger.open(path, authority)
    assert err.value.code == "store.torn_tail"
    assert repair(path).repaired and path.stat().st_size == cut_at
    with Ledger.open(path, authority) as led:
        assert (led.size, led.root_hash()) == (size, root)
        assert led.append_batch(w.records[2:]) == size  # the batch can be written again, whole


# --- real crashes -------------------------------------------------------------------------------------------

_WRITER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from ledger.storage import FileStore

    def slow_write(fd, data, real_write=os.write):  # a slow disk: a batch takes many short writes
        time.sleep(0.0003)
        return real_write(fd, bytes(data[:1024]))

    os.write = slow_write
    path, first = Path(sys.argv[1]), int(sys.argv[2])
    store = FileStore.open(path, writable=True) if path.exists() else FileStore.create(path, "example.com/crash")
    for batch in range(first, first + 1000):
        n = 8 + batch % 24
        store.append_batch([f"{batch}:{i}:{n}:".encode() + bytes(2000 + i) for i in range(n)])
        print(batch, flush=True)
""")


def _whole_batches(path: Path) -> int:
    """Assert that the file holds whole batches only, numbered from 0; return how many."""
    labels = [f.payload.split(b":", 3)[:3] for f in scan(path).frames]
    batches, i = 0, 0
    while i < len(labels):
        n = int(labels[i][2])
        assert labels[i : i + n] == [[str(batches).encode(), str(k).encode(), str(n).encode()] for k in range(n)]
        batches, i = batches + 1, i + n
    return batches


def test_sigkill_during_batches_leaves_whole_batches_only(tmp_path: Path) -> None:
    path, rng, torn, batches = tmp_path / "crash.stl", random.Random(8), 0, 0
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    for _ in range(20):
        child = subprocess.Popen([sys.executable, "-c", _WRITER, str(path), str(batches)], stdout=subprocess.PIPE,
                                 text=True, env=env)
        assert child.stdout is not None and child.stdout.readline()  # one batch written: the writer is running
        for _ in range(rng.randrange(3)):
            child.stdout.readline()
        time.sleep(rng.uniform(0, 0.01))
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
        problems = scan(path).problems
        assert [p.code for p in problems] in ([], ["store.torn_tail"])
        if problems:
            torn += 1
            side = repair(path).side_file
            assert side is not None
            side.unlink()
        with FileStore.open(path, writable=True):
            pass  # whole again: a writer may open it
        batches = _whole_batches(path)
    assert torn >= 5 and batches >= 20  # most kills land inside a batch
