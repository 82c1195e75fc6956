"""Reading a damaged file costs work linear in its size, however the damage is laid out: one work budget per
read of a file (ledger.storage.framing.work_budget), shared by every damaged span, with the rest of the file reported as
one ``store.resync_limit`` span once it is spent. Work is counted in bytes checked by CRC32, not in seconds."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

import ledger.storage.frames as frames
import ledger.storage.framing as framing
from ledger import Ledger, Trust, check_ledger, checkpoint_file, export_bundles, note_verifier_key, replay_ledger
from ledger.errors import StoneTrailError
from ledger.keys import PrivateKey
from ledger.storage import FRAME_MAGIC, MAX_RECORD_SIZE, FileStore, repair, scan

ORIGIN = "example.com/stonetrail/framing"
SPANS = 4000  # damaged spans; each made the old reader CRC a whole MiB
KEY = PrivateKey.from_seed(bytes(32))
TRUST = Trust(operators=(note_verifier_key(ORIGIN, KEY.public_key),),
              authorities=(note_verifier_key("authority", KEY.public_key),))


def frame(payload: bytes) -> bytes:
    return FRAME_MAGIC + struct.pack(">II", len(payload), zlib.crc32(payload)) + payload


def crafted(path: Path) -> Path:
    """A ledger of SPANS damaged spans, each a fake frame header declaring 1 MiB (CRC wrong) followed by a small
    valid frame, then a valid 1 MiB frame, so that every fake's declared payload lies inside the file."""
    with FileStore.create(path, ORIGIN) as store:
        store.append(b"genesis")
    fake = FRAME_MAGIC + struct.pack(">II", MAX_RECORD_SIZE, 0)
    with open(path, "ab") as f:
        f.write((fake + frame(b"x")) * SPANS + frame(b"y" * MAX_RECORD_SIZE))
    return path


@pytest.fixture
def crc_work(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Bytes passed to CRC32 by the framing code, counted from here on."""
    counted = [0]

    def crc32(data: bytes | memoryview, value: int = 0) -> int:
        counted[0] += len(data)
        return zlib.crc32(data, value)

    monkeypatch.setattr(framing, "zlib", SimpleNamespace(crc32=crc32))
    yield counted


def test_dense_damage_costs_one_budget_per_file(tmp_path: Path, crc_work: list[int]) -> None:
    path = crafted(tmp_path / "dense.stl")
    size = path.stat().st_size
    result = scan(path)
    budget = framing.work_budget(size)
    assert crc_work[0] <= budget
    assert 40 * budget < SPANS * MAX_RECORD_SIZE  # what a budget per damaged span let this file cost
    assert [p.code for p in result.problems[:-1]] == ["store.checksum_mismatch"] * len(result.problems[:-1])
    last = result.problems[-1]  # the rest is one damaged span: nothing after it is taken as a record
    assert last.code == "store.resync_limit" and "to end of file" in last.reason
    assert all(f.offset < last.offset for f in result.frames) and len(result.frames) > 10
    assert result.frames[0].payload == b"genesis" and all(f.payload == b"x" for f in result.frames[1:])


def _codes(read: Callable[[], object]) -> list[str]:
    """The finding codes of a report, or the code of the error raised."""
    try:
        outcome = read()
    except StoneTrailError as exc:
        return [exc.code]
    return [f.code for f in getattr(outcome, "findings", ())]


def test_every_reader_of_a_file_is_bounded_and_refuses_it(tmp_path: Path, crc_work: list[int]) -> None:
    path = crafted(tmp_path / "dense.stl")
    before, budget = path.read_bytes(), framing.work_budget(path.stat().st_size)
    readers: dict[str, Callable[[], object]] = {
        "verify": lambda: check_ledger(path, TRUST), "show": lambda: replay_ledger(path, None),
        "open": lambda: FileStore.open(path), "Ledger.open": lambda: Ledger.open(path, ()),
        "checkpoint": lambda: checkpoint_file(path, KEY), "export": lambda: export_bundles(path, ["S"], "x"),
        "repair": lambda: repair(path),
    }
    for name, read in readers.items():
        crc_work[0] = 0
        found = _codes(read)
        assert crc_work[0] <= budget + 64, name  # (+ the header's CRC)
        if name in ("verify", "show"):
            assert "store.resync_limit" in found and "store.checksum_mismatch" in found, name
        else:
            assert found == ["store.checksum_mismatch"], name  # the first damaged span, named
    assert path.read_bytes() == before  # repair moves only a torn tail


def test_an_undamaged_file_reads_within_its_size(tmp_path: Path, crc_work: list[int]) -> None:
    path = tmp_path / "clean.stl"
    with FileStore.create(path, ORIGIN) as store:
        store.append_batch([b"m" * MAX_RECORD_SIZE, b"small", b"n" * 1000])
        store.append(b"alone")
    crc_work[0] = 0
    result = scan(path)
    assert result.problems == [] and len(result.frames) == 4
    assert crc_work[0] <= path.stat().st_size


def test_read_run_reads_a_surveyed_run_again_and_refuses_anything_else() -> None:
    """A parallel audit's worker reads its chunk's bytes in one read (frames.read_run): the same frames the survey
    found, batch frames included; any byte changed, a frame cut short or extra bytes give None (store.changed)."""
    blob, offsets = frames.pack_batch([b"alpha", b"beta", b"gamma"])
    run = frames.read_run(blob, 7, 1000)
    assert run == [framing.Frame(7 + i, 1000 + o, p) for i, (o, p) in
                      enumerate(zip(offsets, [b"alpha", b"beta", b"gamma"], strict=True))]
    assert frames.read_run(blob[offsets[1]:], 8, 0) is not None  # a run may start inside a batch
    for i in range(len(blob)):  # one bit changed anywhere: a magic, a length or a payload's CRC no longer holds
        assert frames.read_run(blob[:i] + bytes([blob[i] ^ 0x01]) + blob[i + 1:], 0, 0) is None, i
    assert frames.read_run(blob[:-1], 0, 0) is None
    assert frames.read_run(blob + b"\x00", 0, 0) is None
    assert frames.read_run(b"", 0, 0) == []
