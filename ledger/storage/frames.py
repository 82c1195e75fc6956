"""Frames built and read back without a survey (docs/format.md §8; the format is in :mod:`ledger.storage.framing`):
a batch packed for one append, one frame read by its offset, and a run of frames a survey already found to be
records read again in one piece (a parallel audit's worker, a saved state's check).
"""

from __future__ import annotations

import zlib

from ..errors import InputError
from .framing import (
    BATCH_MAGIC,
    FRAME_HEADER,
    FRAME_MAGIC,
    FRAME_MAGICS,
    FRAME_STRUCT,
    MAX_RECORD_SIZE,
    OVERSIZE,
    Frame,
)

__all__ = ["pack_batch", "read_frame", "read_run"]


def pack_batch(payloads: list[bytes]) -> tuple[bytes, list[int]]:
    """The frames holding ``payloads`` as one batch (``STRB`` frames, the last ``STR1``) and each frame's offset
    in them. A complete batch means the same records as appending each alone; a batch cut short by a crash is a
    torn tail.

    Raises TypeError (a payload is not bytes); InputError "store.oversize" / "store.empty_payload" (a payload
    not 1..MAX_RECORD_SIZE bytes).
    """
    blob, offsets = bytearray(), list[int]()
    for i, payload in enumerate(payloads):
        if not isinstance(payload, bytes):
            raise TypeError(f"payload must be bytes, got {type(payload).__name__}")
        if not 1 <= len(payload) <= MAX_RECORD_SIZE:
            code = OVERSIZE if payload else "store.empty_payload"
            raise InputError(f"payload is {len(payload)} bytes, want 1..{MAX_RECORD_SIZE}", code=code)
        offsets.append(len(blob))
        magic = FRAME_MAGIC if i == len(payloads) - 1 else BATCH_MAGIC
        blob += FRAME_STRUCT.pack(magic, len(payload), zlib.crc32(payload)) + payload
    return bytes(blob), offsets


def read_frame(raw: bytes) -> bytes | None:
    """The payload of ``raw`` if it is exactly one valid frame (either magic), else None."""
    payload = raw[FRAME_HEADER:]
    if len(raw) < FRAME_HEADER:
        return None
    magic, length, crc = FRAME_STRUCT.unpack_from(raw)
    return payload if magic in FRAME_MAGICS and (length, crc) == (len(payload), zlib.crc32(payload)) else None


def read_run(data: bytes, first: int, offset: int) -> list[Frame] | None:
    """The frames of ``data``, the bytes at ``offset`` of a file where a survey found consecutive records ``first``,
    ``first + 1``, ... filling them exactly (each frame valid: either magic, length in bounds, CRC): read again
    without a survey's batch holding and damage search, as they are known to be records. None if ``data`` is not
    such a run of whole valid frames (the file changed since the survey)."""
    frames: list[Frame] = []
    pos, unpack, end = 0, FRAME_STRUCT.unpack_from, len(data)
    while pos < end:
        if end - pos < FRAME_HEADER:
            return None
        magic, length, crc = unpack(data, pos)
        payload = data[pos + FRAME_HEADER:pos + FRAME_HEADER + length]
        if magic not in FRAME_MAGICS or not 1 <= length <= MAX_RECORD_SIZE or len(payload) != length \
                or zlib.crc32(payload) != crc:
            return None
        frames.append(Frame(first + len(frames), offset + pos, payload))
        pos += FRAME_HEADER + length
    return frames
