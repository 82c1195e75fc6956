"""What a bundle says, verifying nothing: its item, checkpoint and leaves as ``stonetrail proof show`` lists them.

Re-exported by :mod:`ledger.bundle`; :func:`ledger.bundle.check_bundle` is what verifies. Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

from ._bundle_format import BundleEntry, read_bundle
from ._describe import describe
from .checkpoint import Checkpoint, read_unverified_checkpoint
from .errors import InputError
from .record import Record

__all__ = ["BundleLine", "BundleSummary", "summarize_bundle"]


@dataclass(frozen=True, slots=True, kw_only=True)
class BundleLine:
    """One leaf of a bundle as ``stonetrail proof show`` lists it (unverified). ``kind`` is None, and ``detail``
    the reason, for a leaf that is not a readable record."""

    index: int
    kind: str | None
    time_ms: int | None
    place: str
    actor: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BundleSummary:
    """What a bundle says, none of it verified: its item, its checkpoint (None if unreadable) and its leaves."""

    item: str
    size_bytes: int
    checkpoint: Checkpoint | None
    lines: tuple[BundleLine, ...]


def summarize_bundle(data: bytes) -> BundleSummary:
    """Read a bundle for display, verifying nothing (:func:`check_bundle` does). Raises BundleFormatError."""
    bundle = read_bundle(data)
    try:
        cp: Checkpoint | None = read_unverified_checkpoint(bundle.checkpoint)
    except InputError:
        cp = None
    return BundleSummary(item=bundle.item, size_bytes=len(data), checkpoint=cp,
                         lines=tuple(_line(e) for e in bundle.entries))


def _line(entry: BundleEntry) -> BundleLine:
    try:
        record = Record.from_bytes(entry.leaf)
    except InputError as exc:
        return BundleLine(index=entry.index, kind=None, time_ms=None, place="", actor="", detail=f"[{exc.code}] {exc}")
    body = record.body
    return BundleLine(index=entry.index, kind=body.kind, time_ms=body.time_ms, place=body.place, actor=body.actor,
                      detail=describe(record))
