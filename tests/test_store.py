"""Tests of ledger.storage: format bytes, round trips, locking, damage detection, repair, fsync failure."""

from __future__ import annotations

import os
import stat
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.errors import CorruptStoreError, InputError, LockedError, StorageError
from ledger.storage import (
    FRAME_MAGIC,
    MAGIC,
    MAX_RECORD_SIZE,
    FileStore,
    Frame,
    ScanResult,
    StoreProblem,
    repair,
    scan,
)
from ledger.storage.frames import pack_batch
from ledger.storage.framing import SECTOR

ORIGIN = "example.com/stonetrail/test"
PAYLOADS = [b"first record", b"second, a bit longer record", b"third record: the last one"]


def frame(payload: bytes) -> bytes:
    return FRAME_MAGIC + struct.pack(">II", len(payload), zlib.crc32(payload)) + payload


def header(origin: str = ORIGIN, version: int = 1) -> bytes:
    body = MAGIC + struct.pack(">HH", version, len(origin)) + origin.encode()
    return body + struct.pack(">I", zlib.crc32(body))


def make(tmp_path: Path, payloads: list[bytes] = PAYLOADS, name: str = "ledger.stl") -> Path:
    """A ledger holding ``payloads``, each appended alone (a batch of one: every frame is ``STR1``)."""
    path = tmp_path / name
    with FileStore.create(path, ORIGIN) as store:
        for payload in payloads:
            store.append(payload)
    return path


def assert_covers(result: ScanResult, size: int, header_len: int) -> None:
    """Frames and problems tile the file: nothing after the header is skipped without a problem."""
    items: list[Frame | StoreProblem] = sorted([*result.frames, *result.problems], key=lambda i: i.offset)
    assert not items or items[0].offset == header_len
    for item, nxt in zip(items, [*items[1:], None], strict=True):
        if isinstance(item, Frame):
            assert item.offset + 12 + len(item.payload) == (size if nxt is None else nxt.offset)


# --- format and round trips ---------------------------------------------------------------------------------


def test_exact_bytes_on_disk(tmp_path: Path) -> None:
    path = make(tmp_path)
    assert path.read_bytes() == header() + b"".join(frame(p) for p in PAYLOADS)
    assert header()[:12] == b"STNTRAIL\x00\x01\x00\x1b"


def test_create_append_read_reopen(tmp_path: Path) -> None:
    path = tmp_path / "l.stl"
    with FileStore.create(path, ORIGIN) as store:
        assert (store.origin, store.size) == (ORIGIN, 0)
        assert store.append(b"a") == 0
        assert store.append_batch([b"b", b"cc"]) == 1
        assert store.append_batch([]) == 3
        assert store.read(2) == b"cc" and list(store) == [b"a", b"b", b"cc"]
    with FileStore.open(path, writable=True) as store:
        assert store.size == 3 and store.append(b"d") == 3
    with FileStore.open(path) as store:
        assert list(store.records()) == [b"a", b"b", b"cc", b"d"] and store.problems == ()
        with pytest.raises(IndexError):
            store.read(4)
    result = scan(path)
    assert [(f.index, f.payload) for f in result.frames] == list(enumerate([b"a", b"b", b"cc", b"d"]))
    assert result.problems == [] and result.end_offset == path.stat().st_size and result.origin == ORIGIN


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(min_size=1, max_size=300), max_size=12), st.integers(0, 12))
def test_roundtrip_property(payloads: list[bytes], split: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "l.stl"
        with FileStore.create(path, ORIGIN) as store:
            for payload in payloads[:split]:
                store.append(payload)
            store.append_batch(payloads[split:])
        with FileStore.open(path) as store:
            assert list(store) == payloads and store.size == len(payloads)
        assert [f.payload for f in scan(path).frames] == payloads


def test_create_refuses_existing_and_bad_origin(tmp_path: Path) -> None:
    path = make(tmp_path)
    before = path.read_bytes()
    with pytest.raises(StorageError) as err:
        FileStore.create(path, ORIGIN)
    assert err.value.code == "store.exists" and path.read_bytes() == before
    for origin in ["", "has space", "a+b", "caf\u00e9", "x" * 256, "tab\there"]:
        with pytest.raises(InputError) as bad:
            FileStore.create(tmp_path / "other.stl", origin)
        assert bad.value.code == "store.bad_origin"
    assert not (tmp_path / "other.stl").exists()
    FileStore.create(tmp_path / "max.stl", "x" * 255).close()


def test_file_mode(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        path = make(tmp_path)
        with open(path, "ab") as f:
            f.write(frame(b"torn")[:7])
        side = repair(path).side_file
    finally:
        os.umask(old)
    assert side is not None
    for p in (path, side):
        assert stat.S_IMODE(p.stat().st_mode) == 0o644 and stat.S_ISREG(p.stat().st_mode)


# --- locking ------------------------------------------------------------------------------------------------


def test_second_writer_in_process_is_locked(tmp_path: Path) -> None:
    path = make(tmp_path)
    with FileStore.open(path, writable=True):
        with pytest.raises(LockedError) as err:
            FileStore.open(path, writable=True)
        assert err.value.code == "store.locked"
        scan(path)  # opening and closing another descriptor must not drop the lock (the lockf pitfall)
        FileStore.open(path).close()
        with pytest.raises(LockedError):
            FileStore.open(path, writable=True)
        with pytest.raises(LockedError):
            repair(path)
    FileStore.open(path, writable=True).close()


def test_second_writer_in_other_process_is_locked(tmp_path: Path) -> None:
    path = make(tmp_path)
    code = (
        "import sys\nfrom ledger.storage import FileStore\nfrom ledger.errors import LockedError\n"
        "try:\n    FileStore.open(sys.argv[1], writable=True)\nexcept LockedError as e:\n    print(e.code)\n"
    )
    with FileStore.open(path, writable=True):
        argv = [sys.executable, "-c", code, str(path)]
        out = subprocess.run(argv, capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "store.locked"


def test_readers_do_not_block_while_writer_holds_lock(tmp_path: Path) -> None:
    path = make(tmp_path)
    with FileStore.open(path, writable=True) as writer:
        with FileStore.open(path) as reader:
            writer.append(b"fourth")
            assert list(reader) == PAYLOADS  # a snapshot as of open
        assert [f.payload for f in scan(path).frames] == [*PAYLOADS, b"fourth"]


# --- damage -------------------------------------------------------------------------------------------------


def test_torn_tail_at_every_offset(tmp_path: Path) -> None:
    path = make(tmp_path)
    data = path.read_bytes()
    last = scan(path).frames[-1]
    for cut in range(last.offset + 1, len(data)):
        path.write_bytes(data[:cut])
        result = scan(path)
        assert [f.payload for f in result.frames] == PAYLOADS[:2]
        assert [(p.code, p.index, p.offset) for p in result.problems] == [("store.torn_tail", 2, last.offset)]
        assert result.end_offset == last.offset
        with FileStore.open(path) as reader:  # a reader tolerates a torn tail (maybe an append in progress)
            assert reader.size == 2 and reader.problems == tuple(result.problems)
        with pytest.raises(CorruptStoreError) as err:
            FileStore.open(path, writable=True)
        assert err.value.code == "store.torn_tail"


@pytest.mark.parametrize("zeros", [1, 5, 12, 4096, MAX_RECORD_SIZE + 100])
def test_zero_filled_tail_is_reported_not_parsed(tmp_path: Path, zeros: int) -> None:
    path = make(tmp_path)
    good = path.stat().st_size
    with open(path, "ab") as f:
        f.write(bytes(zeros))
    result = scan(path)
    assert [f.payload for f in result.frames] == PAYLOADS
    assert [(p.code, p.index, p.offset) for p in result.problems] == [("store.torn_tail", 3, good)]
    side = repair(path).side_file
    assert side is not None and side.read_bytes() == bytes(zeros) and path.stat().st_size == good


BIG = bytes(range(1, 256)) * 8  # 2,040 bytes, none of them zero: a payload spanning several disk sectors


def _zeroed_from(path: Path, start: int) -> bytes:
    """Zero the file from byte ``start`` to its end; the bytes zeroed, as they were."""
    data = bytearray(path.read_bytes())
    was = bytes(data[start:])
    data[start:] = bytes(len(data) - start)
    path.write_bytes(bytes(data))
    return was


def _sector_in(offset: int, into: int) -> int:
    """The first disk sector boundary at least ``into`` bytes past ``offset``."""
    return -(-(offset + into) // SECTOR) * SECTOR


@pytest.mark.parametrize("written", [0, 1, 700, 1500])
def test_a_last_frame_whose_unwritten_sectors_read_as_zeros_is_a_torn_tail(tmp_path: Path, written: int) -> None:
    """A power cut after the file grew but before all of an append reached the disk: the frame's header and its
    first sectors are there, the rest of the file reads as zeros from a sector boundary on."""
    path = make(tmp_path)
    good = path.stat().st_size
    with open(path, "ab") as f:
        f.write(frame(BIG))
    _zeroed_from(path, _sector_in(good, 12 + written))
    tail = path.read_bytes()[good:]
    result = scan(path)
    assert [f.payload for f in result.frames] == PAYLOADS
    assert [(p.code, p.index, p.offset) for p in result.problems] == [("store.torn_tail", 3, good)]
    side = repair(path).side_file
    assert side is not None and side.read_bytes() == tail and path.stat().st_size == good


@pytest.mark.parametrize("into", [2, 4, 6, 8, 10])
def test_a_frame_header_cut_by_an_unwritten_sector_is_a_torn_tail(tmp_path: Path, into: int) -> None:
    """The power cut fell ``into`` bytes into the last append's first frame header: a sector boundary there, and
    zeros from it to end of file."""
    good_end = make(tmp_path, name="probe.stl").stat().st_size
    pad = (SECTOR - into - good_end - 12) % SECTOR or SECTOR  # a record that makes the next frame straddle a sector
    path = make(tmp_path, [*PAYLOADS, b"p" * pad])
    good = path.stat().st_size
    assert (good + into) % SECTOR == 0
    with open(path, "ab") as f:
        f.write(frame(BIG))
    _zeroed_from(path, good + into)
    assert [(p.code, p.index, p.offset) for p in scan(path).problems] == [("store.torn_tail", 4, good)]
    assert repair(path).side_file is not None and path.stat().st_size == good


@pytest.mark.parametrize(("zeros_before", "torn"), [(3, True), (16, True), (17, False)])
def test_bytes_written_as_zeros_just_before_an_unwritten_sector(tmp_path: Path, zeros_before: int,
                                                                 torn: bool) -> None:
    """The written bytes just before the first unwritten sector may be zeros themselves (up to ZERO_SLACK)."""
    path = make(tmp_path)
    good = path.stat().st_size
    cut = _sector_in(good, 12 + 700)
    payload = bytearray(BIG)
    payload[cut - good - 12 - zeros_before : cut - good - 12] = bytes(zeros_before)  # written, and zero
    with open(path, "ab") as f:
        f.write(frame(bytes(payload)))
    _zeroed_from(path, cut)
    code = "store.torn_tail" if torn else "store.checksum_mismatch"
    assert [(p.code, p.offset) for p in scan(path).problems] == [(code, good)]


def test_a_batch_cut_by_unwritten_sectors_is_torn_from_its_first_frame(tmp_path: Path) -> None:
    """A batch of three frames whose second one's later sectors, and the third frame, never reached the disk."""
    path = make(tmp_path)
    good = path.stat().st_size
    with open(path, "ab") as f:
        f.write(pack_batch([BIG, BIG, BIG])[0])
    _zeroed_from(path, _sector_in(good + 12 + len(BIG) + 12, 100))
    assert [(p.code, p.index, p.offset) for p in scan(path).problems] == [("store.torn_tail", 3, good)]
    assert repair(path).side_file is not None and path.stat().st_size == good


@pytest.mark.parametrize("case", ["inside a sector", "in the header", "over records before the last"])
def test_zeros_that_no_power_cut_leaves_are_damage_not_a_torn_tail(tmp_path: Path, case: str) -> None:
    """Zeros to end of file that do not start at a sector boundary inside the last append's frame (mid-sector,
    in its header, or covering whole records of earlier appends, which were on the disk before it began): the
    records are damaged, and repair refuses to cut them."""
    path = make(tmp_path, [*PAYLOADS, BIG, BIG, BIG])
    offsets = [f.offset for f in scan(path).frames]
    start = {"inside a sector": _sector_in(offsets[-1], 100) + 10, "in the header": offsets[-1] + 8,
             "over records before the last": _sector_in(offsets[-2], 100)}[case]
    _zeroed_from(path, start)
    damaged_at = offsets[-2] if case == "over records before the last" else offsets[-1]
    assert [(p.code, p.offset) for p in scan(path).problems][:1] == [("store.checksum_mismatch", damaged_at)]
    with pytest.raises(CorruptStoreError):
        repair(path)


def test_a_whole_last_record_whose_length_field_grew_is_damage_not_a_torn_tail(tmp_path: Path) -> None:
    """A bit flipped in the last frame's length makes it run past end of file, as an interrupted append would;
    but the bytes it has check out under its CRC as a whole payload, so the record was whole: repair refuses."""
    path = make(tmp_path)
    data = bytearray(path.read_bytes())
    last = scan(path).frames[-1].offset
    data[last + 6] ^= 0x01  # length + 256
    path.write_bytes(bytes(data))
    assert [(p.code, p.offset) for p in scan(path).problems] == [("store.checksum_mismatch", last)]
    with pytest.raises(CorruptStoreError):
        repair(path)


@pytest.mark.parametrize("mask", [0x01, 0x80, 0xFF])
def test_every_single_byte_flip_is_found(tmp_path: Path, mask: int) -> None:
    path = make(tmp_path)
    data = path.read_bytes()
    hlen = len(header())
    starts = [f.offset for f in scan(path).frames]
    for pos in range(len(data)):
        damaged = bytearray(data)
        damaged[pos] ^= mask
        path.write_bytes(damaged)
        if pos < hlen:  # a flipped magic byte: not a ledger at all (an input error); else a damaged header
            with pytest.raises((CorruptStoreError, InputError)) as err:
                scan(path)
            assert err.value.code == ("store.not_a_ledger" if pos < len(MAGIC) else "store.bad_header")
            continue
        index = max(i for i, start in enumerate(starts) if start <= pos)
        result = scan(path)
        assert any(p.index == index for p in result.problems), (pos, result.problems)
        assert all(f.payload == PAYLOADS[f.index] for f in result.frames), pos
        assert index not in {f.index for f in result.frames}
        assert_covers(result, len(damaged), hlen)


def test_garbage_between_frames_resyncs(tmp_path: Path) -> None:
    path = make(tmp_path)
    data = path.read_bytes()
    second = scan(path).frames[1].offset
    path.write_bytes(data[:second] + b"garbage STR garbage" + data[second:])
    result = scan(path)
    assert [(p.code, p.index, p.offset) for p in result.problems] == [("store.bad_magic", 1, second)]
    # a span of unknown content is numbered as one record: later frames keep counting after it
    assert [f.index for f in result.frames] == [0, 2, 3]
    assert [f.payload for f in result.frames] == PAYLOADS
    assert_covers(result, len(data) + 19, len(header()))


def test_oversize_frame_is_reported(tmp_path: Path) -> None:
    path = make(tmp_path, PAYLOADS[:1])
    with open(path, "ab") as f:
        f.write(FRAME_MAGIC + struct.pack(">II", MAX_RECORD_SIZE + 1, 0) + b"x" * 100 + frame(b"after"))
    result = scan(path)
    assert [(p.code, p.index) for p in result.problems] == [("store.oversize", 1)]
    assert [(f.index, f.payload) for f in result.frames] == [(0, PAYLOADS[0]), (2, b"after")]


def test_header_damage(tmp_path: Path) -> None:
    path = tmp_path / "h.stl"
    for data in [b"STN", b"STNTRAIL\x00", header()[:-1], header(version=2)]:
        path.write_bytes(data)
        with pytest.raises(CorruptStoreError) as err:
            scan(path)
        assert err.value.code == "store.bad_header"
        with pytest.raises(CorruptStoreError):
            FileStore.open(path)
    with pytest.raises(StorageError) as missing:
        scan(tmp_path / "missing.stl")
    assert missing.value.code == "store.io"


def test_a_file_that_is_no_ledger_is_an_input_error(tmp_path: Path) -> None:
    """Issue 9 (new-user trial 5): an empty file, or one that does not start with the magic (a bundle, a trust
    file), is the caller's wrong input (store.not_a_ledger, exit 2 in the CLI), not storage damage."""
    path = tmp_path / "h.stl"
    for data in [b"", b"stonetrail/v1/bundle\n...", b"operator example.com+1234+AAAA\n", b"STNTRAIM" + header()[8:]]:
        path.write_bytes(data)
        for read in (scan, FileStore.open, repair):
            with pytest.raises(InputError) as err:
                read(path)
            assert err.value.code == "store.not_a_ledger" and not isinstance(err.value, StorageError)
        assert path.read_bytes() == data


def test_read_rechecks_the_frame(tmp_path: Path) -> None:
    path = make(tmp_path)
    with FileStore.open(path) as reader:
        data = bytearray(path.read_bytes())
        data[-1] ^= 1
        path.write_bytes(data)
        assert reader.read(0) == PAYLOADS[0]
        with pytest.raises(CorruptStoreError) as err:
            reader.read(2)
        assert err.value.code == "store.checksum_mismatch"
    with pytest.raises(CorruptStoreError) as err:
        FileStore.open(path)  # a mid-file or complete-frame problem is not tolerated even for reading
    assert err.value.code == "store.checksum_mismatch"


# --- repair -------------------------------------------------------------------------------------------------


def test_repair_moves_torn_bytes_aside(tmp_path: Path) -> None:
    path = make(tmp_path)
    assert repair(path).side_file is None
    good = path.read_bytes()
    torn = frame(b"an append that never finished")[:20]
    path.write_bytes(good + torn)
    side = repair(path).side_file
    assert side == tmp_path / f"ledger.stl.torn-{len(good)}"
    assert side.read_bytes() == torn and path.read_bytes() == good
    with FileStore.open(path, writable=True) as store:
        assert store.append(b"after repair") == 3
    assert scan(path).problems == []


def test_repair_resumes_after_interruption_and_keeps_foreign_sidecars(tmp_path: Path) -> None:
    path = make(tmp_path)
    good = path.read_bytes()
    side = tmp_path / f"ledger.stl.torn-{len(good)}"
    side.write_bytes(b"STR1")  # an earlier repair wrote the sidecar, then crashed before truncating
    path.write_bytes(good + b"STR1")
    assert repair(path).side_file == side and path.read_bytes() == good
    path.write_bytes(good + b"STR")  # another tail at the same offset: beside it, under a name with its hash
    again = repair(path).side_file
    assert again is not None and again.name.startswith(side.name + "-") and again.read_bytes() == b"STR"
    assert side.read_bytes() == b"STR1" and path.read_bytes() == good  # the foreign sidecar kept as it was
    for name in (side, again):  # both names taken by other bytes: refused, nothing cut
        name.write_bytes(b"STRB")
    path.write_bytes(good + b"STR")
    with pytest.raises(StorageError) as err:
        repair(path)
    assert err.value.code == "store.exists" and side.read_bytes() == b"STRB"
    assert path.stat().st_size == len(good) + 3


def test_repair_refuses_mid_file_damage(tmp_path: Path) -> None:
    path = make(tmp_path)
    data = bytearray(path.read_bytes())
    data[scan(path).frames[0].offset + 14] ^= 0x20
    data += frame(b"torn")[:6]
    path.write_bytes(data)
    with pytest.raises(CorruptStoreError) as err:
        repair(path)
    assert err.value.code == "store.checksum_mismatch"
    assert path.read_bytes() == data and list(tmp_path.glob("*.torn-*")) == []


# --- append failures ----------------------------------------------------------------------------------------


def test_payload_size_is_validated(tmp_path: Path) -> None:
    path = make(tmp_path, [])
    size = path.stat().st_size
    with FileStore.open(path, writable=True) as store:
        for bad, code in [(b"x" * (MAX_RECORD_SIZE + 1), "store.oversize"), (b"", "store.empty_payload")]:
            with pytest.raises(InputError) as err:
                store.append_batch([b"ok", bad])
            assert err.value.code == code
        with pytest.raises(TypeError):
            store.append("text")  # type: ignore[arg-type]
        assert store.size == 0 and path.stat().st_size == size
        assert store.append(b"m" * MAX_RECORD_SIZE) == 0
    assert scan(path).frames[0].payload == b"m" * MAX_RECORD_SIZE


def test_fsync_failure_poisons_the_handle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make(tmp_path)
    store = FileStore.open(path, writable=True)

    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(StorageError) as err:
        store.append(b"lost?")
    assert err.value.code == "store.fsync_failed"
    monkeypatch.undo()
    for attempt in (lambda: store.append(b"again"), lambda: store.append_batch([b"x", b"y"]), store.check_intact):
        with pytest.raises(StorageError) as again:
            attempt()
        assert again.value.code == "store.poisoned"  # never retried: reopen
    assert store.size == 3 and store.read(2) == PAYLOADS[2]
    store.close()
    with FileStore.open(path, writable=True) as reopened:  # the unacknowledged frame may or may not be there
        assert reopened.size in (3, 4)


def test_partial_write_leaves_a_repairable_torn_tail(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = make(tmp_path)
    real_write = os.write

    def half_then_fail(fd: int, data: bytes) -> int:
        if len(data) > 8:
            return real_write(fd, bytes(data)[: len(data) // 2])
        raise OSError(28, "No space left on device")

    with FileStore.open(path, writable=True) as store:
        monkeypatch.setattr(os, "write", half_then_fail)
        with pytest.raises(StorageError) as err:
            store.append(b"a record that does not fit on the disk")
        monkeypatch.undo()
        assert err.value.code == "store.fsync_failed"
    assert [p.code for p in scan(path).problems] == ["store.torn_tail"]
    assert repair(path).repaired and scan(path).problems == []


def test_handle_states(tmp_path: Path) -> None:
    path = make(tmp_path)
    with FileStore.open(path) as reader:
        with pytest.raises(StorageError) as err:
            reader.append(b"x")
        assert err.value.code == "store.read_only"
    with pytest.raises(StorageError) as closed:
        reader.read(0)
    assert closed.value.code == "store.closed"
    with FileStore.open(path, writable=True) as writer:
        with open(path, "ab") as sneaky:
            sneaky.write(frame(b"behind the lock"))
        with pytest.raises(StorageError):
            writer.append(b"x")
        with pytest.raises(StorageError):
            writer.append(b"y")
