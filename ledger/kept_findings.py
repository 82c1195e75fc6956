"""An audit's findings in bounded memory: the first ones in log order kept, the rest counted by code.

A ledger file can be crafted to fail on every record: 13 bytes a frame (a frame holding one byte that is not a
record) make a million findings out of 13 MB, and an audit that kept them all held 1.3 GB. :class:`KeptFindings`
keeps the first ``limit`` findings in log order (position, then the order they were found in: the order of the
audit's report) and counts the others by code, so that an audit's memory follows ``limit``, not the file. The
findings kept are the same, and the counts too, however the findings arrive (in chunks of any size, from any
number of workers): they are the first ``limit`` of the one order the report sorts them in.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping

from .findings import Finding

__all__ = ["MAX_FINDINGS", "KeptFindings", "order"]

#: The findings an audit keeps by default (``check_ledger(max_findings=...)``, ``verify --max-findings``); the
#: rest are counted by code. ~300 bytes each in memory.
MAX_FINDINGS = 10_000


def order(finding: Finding) -> tuple[bool, int]:
    """The report's sort key of a finding: by position, findings not tied to a record (position None) last (a
    stable sort keeps the order they were found in among equals)."""
    return finding.position is None, finding.position or 0


class KeptFindings:
    """The first ``limit`` findings added, in report order (:func:`order`, stable), and the count of the others by
    code (``limit`` None: every finding kept).

    Memory: at most twice ``limit`` findings at any time. Once more are held, they are sorted and cut to ``limit``;
    the key of the last one kept is remembered, and a finding added later that sorts at or after it is counted
    without being kept (an equal key sorts after it too: it was found later)."""

    def __init__(self, limit: int | None, kept: Iterable[Finding] = (), omitted: Mapping[str, int] | None = None
                 ) -> None:
        if limit is not None and (type(limit) is not int or limit < 1):
            raise ValueError(f"limit: got {limit!r}, want a whole number >= 1 or None")
        self.limit = limit
        self._held: list[Finding] = []
        self._omitted: Counter[str] = Counter()
        self._cutoff: tuple[bool, int] | None = None
        self.add(kept)
        self.count(omitted or {})  # counted already (a saved walk's): nothing after the last one kept is kept

    def add(self, found: Iterable[Finding]) -> None:
        """Add ``found``, in the order they were found."""
        held, cutoff, most = self._held, self._cutoff, None if self.limit is None else 2 * self.limit
        for finding in found:
            if cutoff is not None and order(finding) >= cutoff:
                self._omitted[finding.code] += 1
                continue
            held.append(finding)
            if most is not None and len(held) > most:
                self._cut()
                cutoff = self._cutoff

    def count(self, omitted: Mapping[str, int]) -> None:
        """Count findings by code that are known to sort after every finding kept (those a saved walk counted; the
        damaged spans a survey did not keep: past as many as this keeps, :class:`~ledger.storage.framing.Survey`):
        a finding added later is kept only if it sorts before the last one kept."""
        if any(omitted.values()):
            self._omitted.update(omitted)
            self._cut()
            if self._held:
                self._cutoff = order(self._held[-1])

    def _cut(self) -> None:
        """Sort the held findings and count those past :attr:`limit`."""
        self._held.sort(key=order)
        if self.limit is not None and len(self._held) > self.limit:
            self._omitted.update(f.code for f in self._held[self.limit:])
            del self._held[self.limit:]
            self._cutoff = order(self._held[-1])

    def __bool__(self) -> bool:
        """True once any finding was added or counted."""
        return bool(self._held) or any(self._omitted.values())

    @property
    def kept(self) -> list[Finding]:
        """The findings kept, in report order (at most :attr:`limit`)."""
        self._cut()
        return list(self._held)

    @property
    def omitted(self) -> dict[str, int]:
        """The number of findings not kept, by code (sorted by code; empty if none was left out)."""
        self._cut()
        return dict(sorted(self._omitted.items()))
