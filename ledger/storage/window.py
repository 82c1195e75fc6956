"""A sliding window over a ledger file's bytes: what lets :mod:`ledger.storage.framing` read a file of any size
front to back in memory bounded by :data:`WINDOW` (DESIGN.md §6), not by the file's size.

No I/O of its own: the bytes come from a ``read(offset, n)`` callable (a ``pread`` of a file, or a slice of
bytes already in memory). Reads move forward through the file; a read may go back by at most :data:`BACK` bytes
(a frame and its header: the framing's damage diagnosis looks one frame ahead and comes back) without reading
the file again. Any other read still works; it reads the file again from there.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Final

__all__ = ["BACK", "WINDOW", "Read", "Window"]

#: Bytes held at most at once (plus one read longer than this, which is held whole).
WINDOW: Final = 8 << 20
#: Bytes kept before the offset a refill was asked for: the longest frame (1 MiB payload) and a margin.
BACK: Final = (1 << 20) + 4096

#: (offset, n) -> up to n bytes of the file at offset, short only at end of file.
Read = Callable[[int, int], bytes]


class Window:
    """The bytes ``[start, start + len(buffer))`` of a file of ``size`` bytes, refilled as reads move on."""

    def __init__(self, read: Read, size: int) -> None:
        self.size = size
        self._read, self._start, self._buffer = read, 0, b""

    def view(self, start: int, stop: int) -> memoryview:
        """The bytes ``[start, min(stop, size))`` (no copy while they are held). Raises OSError (from ``read``)."""
        stop = min(stop, self.size)
        if not (self._start <= start and stop <= self._start + len(self._buffer)):
            self._fill(start, stop)
        return memoryview(self._buffer)[start - self._start : stop - self._start]

    def copy(self, start: int, stop: int) -> bytes:
        """As :meth:`view`, copied."""
        return self.view(start, stop).tobytes()

    def search(self, pattern: re.Pattern[bytes], start: int, width: int) -> int:
        """The offset of the first match of ``pattern`` (which matches exactly ``width`` bytes) at or after
        ``start``, or -1: the file is searched window by window, a match across two windows included."""
        while start + width <= self.size:
            self.view(start, start + width)  # holds [start, ...)
            found = pattern.search(self._buffer, start - self._start)
            if found is not None:
                return self._start + found.start()
            end = self._start + len(self._buffer)
            if end >= self.size:
                return -1
            start = end - width + 1  # a match may begin in the last width - 1 bytes
            self._fill(start, start + width)
        return -1

    def zeros_start(self) -> int:
        """Where the run of zero bytes that ends the file starts (its size if the last byte is not zero), read
        window by window from the end."""
        end = self.size
        while end > 0:
            start = max(0, end - WINDOW)
            kept = len(self.view(start, end).tobytes().rstrip(b"\0"))
            if kept:
                return start + kept
            end = start
        return 0

    def _fill(self, start: int, stop: int) -> None:
        """Hold ``[start - BACK, max(stop, start + WINDOW))`` (clipped to the file)."""
        self._start = max(0, start - BACK) if start >= self._start else start
        self._buffer = self._read(self._start, max(stop, start + WINDOW) - self._start)
