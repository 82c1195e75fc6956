"""The bytes of a ledger file below an audit state (:mod:`ledger.audit_state`): digested when the state is saved,
in the same read that checks they are the records audited, and digested again when it is resumed, so that no record
below the state can change unseen (docs/format.md §8.3).
"""

from __future__ import annotations

import hashlib
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ._files import io_errors
from .compact import CompactRange
from .errors import CorruptStoreError, InputError
from .hashing import Digest
from .merkle import leaf_hash
from .storage.frames import read_run
from .storage.framing import FRAME_HEADER, FRAME_MAGIC, Frame
from .storage.header import MAX_HEADER, read_header

__all__ = ["audited_prefix", "hash_head", "prefix_digest"]


def _ends(ledger: Path) -> InputError:
    return InputError(f"audit state: {ledger} ends before the records audited", code="audit.state_mismatch")


def audited_prefix(ledger: Path, last: Frame, root: Digest) -> bytes:
    """:func:`prefix_digest` of the file ``ledger`` up to frame ``last`` (the framing whole), checking in the same read
    that the records in those bytes are the ones the audit read: the RFC 9162 root of their leaves is ``root``,
    the walk's. A state vouches for these bytes on resume without reading them again, so they must be the
    audited ones, not bytes rewritten during the audit. Raises CorruptStoreError ``store.changed`` if they are
    not; InputError ``audit.state_mismatch`` if the file ends before; StorageError ``store.io``."""
    digest, tree = hashlib.sha256(), CompactRange()
    with io_errors(ledger, "reading"), ledger.open("rb") as file:
        _, offset = read_header(file.read(MAX_HEADER))
        file.seek(0)
        digest.update(file.read(offset))
        pending = b""
        while offset < last.end:
            block = file.read(min(last.end - offset, 8 << 20))
            if not block:
                raise _ends(ledger)
            skip = range(last.offset, last.offset + len(FRAME_MAGIC))  # the last frame's magic: left out
            digest.update(block[:max(0, skip.start - offset)])
            digest.update(block[max(0, skip.stop - offset):])
            offset += len(block)
            pending += block
            whole = _whole_frames(pending)
            frames = read_run(pending[:whole], tree.end, offset - len(pending))
            if frames is None:
                break
            for frame in frames:
                tree.append(leaf_hash(frame.payload))
            pending = pending[whole:]
    if pending or tree.end != last.index + 1 or tree.root() != root:
        raise CorruptStoreError(f"{ledger}: records 0..{last.index} are not the ones audited: the file changed during "
                                "the audit; no state is saved", code="store.changed")
    return digest.digest()


def _whole_frames(data: bytes) -> int:
    """The length of the longest run of whole frames (by their declared lengths) at the start of ``data``."""
    pos = 0
    while pos + FRAME_HEADER <= len(data):
        end = pos + FRAME_HEADER + int.from_bytes(data[pos + 4:pos + 8], "big")
        if end > len(data):
            break
        pos = end
    return pos


def prefix_digest(ledger: Path, last: Frame, head: Future[Any] | None = None) -> bytes:
    """SHA-256 of the bytes of the file ``ledger`` from its start to the end of its frame ``last`` (A - 1), that
    frame's magic left out: ``STR1`` in a file a writer left there, ``STRB`` in one whose batch went on (a copy
    cut inside a batch ends it there, docs/format.md §8), the records being the same. A resumed audit reads
    these bytes without decoding them, so that no record it does not replay can have changed. ``head``: the
    hash of the bytes before ``last``, started earlier (:func:`hash_head`).
    Raises InputError ``audit.state_mismatch`` if the file ends before; StorageError ``store.io``."""
    digest = head.result().copy() if head is not None else _digest(ledger, 0, last.offset, hashlib.sha256())
    value: bytes = _digest(ledger, last.offset + len(FRAME_MAGIC), last.end, digest).digest()
    return value


def hash_head(ledger: Path, stop: int) -> Future[Any]:
    """The SHA-256 object of the file's bytes [0, stop), computed in a thread while the state is restored (reads
    and hashing release the GIL): the first part of :func:`prefix_digest`."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="stonetrail-prefix")
    try:
        return pool.submit(_digest, ledger, 0, stop, hashlib.sha256())
    finally:
        pool.shutdown(wait=False)


def _digest(ledger: Path, start: int, stop: int, digest: Any) -> Any:
    """``digest`` updated with the file's bytes [start, stop). Raises InputError ``audit.state_mismatch`` if the
    file ends before; StorageError ``store.io``."""
    buffer = memoryview(bytearray(min(stop - start, 16 << 20)))  # large reads: few waits for the GIL in a thread
    with io_errors(ledger, "reading"), ledger.open("rb", buffering=0) as file:
        file.seek(start)
        while start < stop:
            n = file.readinto(buffer[:stop - start])
            if not n:
                raise _ends(ledger)
            digest.update(buffer[:n])
            start += n
    return digest
