"""An index is never used beside a ledger that forked from its own (ledger.index.indexed.LedgerIndex.check): the last
CHECKED records of the log, at the index's offsets, must hash to the index's leaf hashes. Here the log keeps every
frame's place and length but one record's bytes differ (a signature byte, the frame's CRC made good again): a
reader does not answer from that index, a writer rebuilds it."""

from __future__ import annotations

import os
import shutil
import struct
import zlib
from pathlib import Path

import pytest

from ledger import Ledger, Trust, repair
from ledger.index.db import index_path
from ledger.index.indexed import CHECKED
from ledger.index.reading import indexed_log
from ledger.record import Record
from ledger.storage import scan


def _forked(path: Path, position: int) -> None:
    """Rewrite record ``position`` of the ledger at ``path`` in place: one signature byte changed, the frame's
    length kept and its CRC-32 made to match, so the file is a well-framed ledger of the same shape."""
    frame = scan(path).frames[position]
    signature = Record.from_bytes(frame.payload).signatures[0].sig
    at = frame.payload.index(signature)
    payload = frame.payload[:at] + bytes([frame.payload[at] ^ 0x01]) + frame.payload[at + 1:]
    with open(path, "r+b") as file:
        file.seek(frame.offset + 8)  # the frame header: magic, length, CRC-32 of the payload
        file.write(struct.pack(">I", zlib.crc32(payload)))
        file.write(payload)


@pytest.mark.parametrize("back", [0, 1, CHECKED // 2, CHECKED - 1])
def test_an_index_beside_a_ledger_forked_in_its_last_records_is_not_used(demo: Path, tmp_path: Path,
                                                                          back: int) -> None:
    path = tmp_path / "demo.ledger"
    shutil.copy(demo / "demo.ledger", path)
    keys = Trust.parse((demo / "trust.keys").read_text()).authority_keys
    with Ledger.open(path, keys) as ledger:  # builds the index
        size = ledger.size
    log = indexed_log(path)
    assert log is not None
    log.close()
    _forked(path, size - 1 - back)
    assert indexed_log(path) is None
    with Ledger.open(path, keys) as ledger:  # the writer rebuilds it from the log (the old one would be refused)
        assert ledger.record(size - 1 - back).raw == scan(path).frames[size - 1 - back].payload
    assert indexed_log(path) is not None


@pytest.mark.parametrize("back", [None, CHECKED, 600])
def test_an_index_copied_beside_another_file_is_never_used(demo: Path, tmp_path: Path, back: int | None) -> None:
    """An index is bound to the file it was built for (its inode), not only to the last CHECKED records: copied
    beside a copy of its ledger that forked further back than those (an adversarial review: a transfer CHECKED + 7
    records before the end, another holder in each), or even an identical copy, it is not used by a reader and is
    rebuilt by a writer, so the writer checks a new record against the state of the file it writes to."""
    keys = Trust.parse((demo / "trust.keys").read_text()).authority_keys
    mine, other = tmp_path / "a" / "demo.ledger", tmp_path / "b" / "demo.ledger"
    mine.parent.mkdir()
    other.parent.mkdir()
    shutil.copy(demo / "demo.ledger", mine)
    with Ledger.open(mine, keys) as ledger:  # builds the index
        size = ledger.size
    shutil.copy(mine, other)
    if back is not None:
        _forked(other, size - 1 - back)
    shutil.copy(index_path(mine), index_path(other))
    assert indexed_log(other) is None
    with Ledger.open(other, keys) as ledger:  # rebuilt from its own log
        assert ledger.record(size - 1 - (back or 0)).raw == scan(other).frames[size - 1 - (back or 0)].payload
    for path in (other, mine):  # each file's own index serves
        log = indexed_log(path)
        assert log is not None
        log.close()


def test_an_index_beside_a_ledger_written_over_in_place_is_not_used(demo: Path, tmp_path: Path) -> None:
    """A second adversarial review: another ledger copied over the log in place (cp B A keeps A's inode, and a
    deleted file's inode number is soon reused) kept the index bound to it. The index keeps the file's size and
    time as of its last commit too: a file written over is not grown, so the index is not used (readers) and
    rebuilt (the writer); a file grown since (an append behind the writer's back) is caught up and checked."""
    keys = Trust.parse((demo / "trust.keys").read_text()).authority_keys
    mine, other = tmp_path / "demo.ledger", tmp_path / "other.ledger"
    shutil.copy(demo / "demo.ledger", mine)
    with Ledger.open(mine, keys) as ledger:  # builds the index
        size = ledger.size
    shutil.copy(mine, other)
    _forked(other, size - 1 - 600)  # the same length, far before the last CHECKED records
    shutil.copyfile(other, mine)  # written over in place: the same inode
    assert indexed_log(mine) is None
    with Ledger.open(mine, keys) as ledger:  # rebuilt from the bytes now there
        assert ledger.record(size - 1 - 600).raw == scan(other).frames[size - 1 - 600].payload
    log = indexed_log(mine)
    assert log is not None
    log.close()


def test_an_index_beside_its_ledger_repaired_back_to_its_end_is_caught_up_not_rebuilt(demo: Path,
                                                                                          tmp_path: Path) -> None:
    """A crash tears an append after the index's last commit; repair cuts the log back to where the index ends.
    The file is then of the index's size with a new time, as a file written over would be: the repair's side file
    tells them apart (one more than the index recorded), so the index is kept (caught up, not rebuilt), and what
    it records of the file is refreshed, so that the old side file excuses nothing later."""
    keys = Trust.parse((demo / "trust.keys").read_text()).authority_keys
    mine, other = tmp_path / "demo.ledger", tmp_path / "other.ledger"
    shutil.copy(demo / "demo.ledger", mine)
    with Ledger.open(mine, keys) as ledger:  # builds the index
        size = ledger.size
    built = os.stat(index_path(mine)).st_ino
    with open(mine, "ab") as log:
        log.write(b"STR1\x00\x00\x01\x00")  # an append torn by a crash
    assert repair(mine).repaired
    log_ = indexed_log(mine)
    assert log_ is not None
    log_.close()
    with Ledger.open(mine, keys) as ledger:
        assert ledger.size == size
    assert os.stat(index_path(mine)).st_ino == built  # the same index file: not rebuilt
    shutil.copy(mine, other)
    _forked(other, size - 1 - 600)
    shutil.copyfile(other, mine)  # now written over in place: the old side file does not excuse it
    assert indexed_log(mine) is None
