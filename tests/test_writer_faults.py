"""A broken writer stops signing: a failed store write or fsync poisons the Ledger handle (``store.poisoned`` for
every later append and checkpoint), its in-memory state never counts the record that was not written, and the
reopened file verifies and checkpoints consistently with the checkpoints signed before the failure."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger import Ledger, Trust, check_ledger, note_verifier_key
from ledger.consistency import verify_checkpoint_consistency
from ledger.errors import StorageError
from ledger.monitor import consistency_proof_for
from ledger.storage import repair
from world import ORIGIN, PARTIES, World, key

OPERATOR = key("operator")
TRUST = Trust(operators=(note_verifier_key(ORIGIN, OPERATOR.public_key),),
              authorities=(note_verifier_key("authority", key("authority").public_key),))


def _disk_full(monkeypatch: pytest.MonkeyPatch, *, half: bool) -> None:
    """Make the next large write fail with ENOSPC, after writing half of it if ``half``."""
    real_write = os.write

    def write(fd: int, data: bytes) -> int:
        if len(data) < 64:
            return real_write(fd, data)
        if half:
            real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", write)


def _fsync_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    def fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", fsync)


FAULTS: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "disk full": lambda m: _disk_full(m, half=False),
    "disk full half way": lambda m: _disk_full(m, half=True),
    "fsync fails": _fsync_fails,
}


@pytest.mark.parametrize("fault", FAULTS)
def test_a_failed_append_poisons_the_handle_and_reopening_is_consistent(tmp_path: Path, fault: str,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    w = World()
    parties = list(PARTIES.items())
    for party, roles in parties[:3]:
        assert w.add(w.enrol(party, roles)) == []
    path, authority = tmp_path / "w.ledger", {w.keys["authority"].public_key.raw}
    led = Ledger.create(path, ORIGIN, authority)
    led.append_batch(w.records)
    before = led.checkpoint(OPERATOR)
    size, registry = led.size, (led.state.registry.size, led.registry_head)
    enrolment = w.enrol(*parties[3])  # a registry record: the checkpoint's registry line would count it
    FAULTS[fault](monkeypatch)
    with pytest.raises(StorageError) as failed:
        led.append(enrolment)
    monkeypatch.undo()
    assert failed.value.code == "store.fsync_failed"
    assert (led.size, led.state.registry.size, led.registry_head) == (size, *registry)  # nothing counted
    for attempt in (lambda: led.checkpoint(OPERATOR), lambda: led.append(enrolment)):
        with pytest.raises(StorageError) as poisoned:
            attempt()
        assert poisoned.value.code == "store.poisoned" and "reopen" in str(poisoned.value)
    led.close()

    repair(path)  # a torn tail, if half of the frame reached the disk
    with Ledger.open(path, authority) as reopened:
        if reopened.size == size:  # the record is not on disk: write it again
            reopened.append(enrolment)
        after = reopened.checkpoint(OPERATOR)
    assert check_ledger(path, TRUST, checkpoint=after).ok
    proof = consistency_proof_for(path, before, after, trust=TRUST)
    checked = verify_checkpoint_consistency(before, after, proof, TRUST)  # no consistency.registry_rollback
    assert (checked.old.tree_size, checked.new.tree_size) == (size, size + 1)
