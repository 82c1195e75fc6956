"""Strict readers for decoded canonical values: one place for "this field must be text of this shape".

Every reader raises :class:`~ledger.errors.RecordFormatError` naming the field, so a malformed record is
refused with a precise one-line reason: code ``record.identifier`` for text that is not an identifier,
``record.text`` for text that is not free text (both classes: :mod:`ledger._text`), ``record.time_range`` for a
time before 2000 (:func:`read_time`), ``record.grading_scale`` for a grade off a laboratory scale
(:func:`off_scale`, used by :mod:`ledger.events`), ``record.malformed`` for the rest. Used by
:mod:`ledger.record` and :mod:`ledger.events`, when a record is built and when it is decoded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Set

from ._codec import Value
from ._text import ID_RE, text_fault
from .errors import RecordFormatError
from .hashing import Digest

__all__ = [
    "COUNTRY_RE",
    "ID_RE",
    "MAX_TIME_MS",
    "MIN_TIME_MS",
    "exact_keys",
    "off_scale",
    "read_bytes",
    "read_country",
    "read_digest",
    "read_id",
    "read_int",
    "read_list",
    "read_map",
    "read_text",
    "read_time",
]

#: ISO 3166-1 alpha-2 country code (shape only; the registry of codes is not embedded).
COUNTRY_RE = re.compile(r"[A-Z]{2}")
_MAX_TEXT = 256
#: Latest representable time: 9999-12-31T23:59:59.999Z, in ms since the Unix epoch (UTC).
MAX_TIME_MS = 253_402_300_799_999
#: Earliest time a record may name: 2000-01-01T00:00:00Z, in ms since the Unix epoch (UTC). The trade records
#: here (Kimberley Process certificates from 2003, laser inscriptions, Ed25519) are all later; an earlier time is
#: a clock or unit fault (seconds for milliseconds, a zero), never an event.
MIN_TIME_MS = 946_684_800_000
_ID_MATCH = ID_RE.fullmatch
_COUNTRY_MATCH = COUNTRY_RE.fullmatch


def fail(field: str, reason: str) -> RecordFormatError:
    """Build the error for ``field``; callers ``raise fail(...)``."""
    return RecordFormatError(f"{field}: {reason}", code="record.malformed")


def read_map(value: Value, field: str) -> Mapping[str, Value]:
    """``value`` as a map, or RecordFormatError."""
    if not isinstance(value, dict):
        raise fail(field, f"expected a map, got {_kind(value)}")
    return value


def exact_keys(value: Mapping[str, Value], field: str, required: Set[str], optional: Set[str] = frozenset()) -> None:
    """Refuse a map whose keys are not ``required`` plus a subset of ``optional`` (unknown keys are errors)."""
    if value.keys() == required and not optional:  # the common case, when nothing below can fail
        return
    keys = set(value)
    missing = required - keys
    extra = keys - required - optional
    if missing:
        raise fail(field, f"missing {sorted(missing)}")
    if extra:
        raise fail(field, f"unknown keys {sorted(extra)}")


def read_text(value: Value, field: str, max_len: int = _MAX_TEXT) -> str:
    """Free text (:mod:`ledger._text`: printable Unicode in NFC, one line) of 1..``max_len`` characters.

    Raises:
        RecordFormatError: ``record.text`` for a character free text refuses or a text not in NFC;
            ``record.malformed`` for a value that is not text, or empty or too long.
    """
    if type(value) is str and 0 < len(value) <= max_len and value.isascii() and value.isprintable():
        return value  # printable ASCII (U+0020-U+007E) is free text: the common case
    text = _read_str(value, field, max_len)
    if (fault := text_fault(text)) is not None:
        raise RecordFormatError(f"{field}: {fault}", code="record.text")
    return text


def read_id(value: Value, field: str) -> str:
    """An identifier (:data:`~ledger._text.ID_RE`: 1-64 ASCII letters, digits and ``. _ : -``).

    Raises:
        RecordFormatError: ``record.identifier`` for text that is not an identifier; ``record.malformed`` for a
            value that is not text.
    """
    if type(value) is str and _ID_MATCH(value):  # the common case, without the checks below
        return value
    text = _read_str(value, field)
    if not _ID_MATCH(text):
        raise RecordFormatError(f"{field}: {ascii(text)[:80]} is not an identifier ({ID_RE.pattern})",
                                code="record.identifier")
    return text


def _read_str(value: Value, field: str, max_len: int | None = None) -> str:
    if not isinstance(value, str):
        raise fail(field, f"expected text, got {_kind(value)}")
    if max_len is not None and not 0 < len(value) <= max_len:
        raise fail(field, f"text must be 1..{max_len} characters")
    return value


def read_time(value: Value, field: str) -> int:
    """Milliseconds since the Unix epoch, UTC: :data:`MIN_TIME_MS` (2000-01-01) .. :data:`MAX_TIME_MS`.

    Raises:
        RecordFormatError: ``record.malformed`` for a value that is not an integer or is outside
            0 .. :data:`MAX_TIME_MS` (not a time the format holds); ``record.time_range`` for a time before
            2000-01-01T00:00:00Z (docs/format.md §4.2).
    """
    time_ms = read_int(value, field, 0, MAX_TIME_MS)
    if time_ms < MIN_TIME_MS:
        raise RecordFormatError(f"{field}: {time_ms} ms is before 2000-01-01T00:00:00Z ({MIN_TIME_MS} ms): a clock "
                                "or unit fault, not the time of an event", code="record.time_range")
    return time_ms


def off_scale(field: str, text: str, scale: str) -> RecordFormatError:
    """The error for a grade ``text`` that is not on the laboratory ``scale`` (``record.grading_scale``); callers
    ``raise off_scale(...)``."""
    return RecordFormatError(f"{field}: {ascii(text)[:60]} is not on the {scale}", code="record.grading_scale")


def read_country(value: Value, field: str) -> str:
    """An ISO 3166-1 alpha-2 code (:data:`COUNTRY_RE`); anything else is ``record.malformed``."""
    text = _read_str(value, field)
    if not _COUNTRY_MATCH(text):
        raise fail(field, f"{ascii(text)[:40]} does not match {COUNTRY_RE.pattern}")
    return text


def read_int(value: Value, field: str, minimum: int = 0, maximum: int = 2**63 - 1) -> int:
    """An integer (never a bool) within ``minimum..maximum``."""
    if type(value) is int and minimum <= value <= maximum:  # the common case: the checks below pass
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise fail(field, f"expected an integer, got {_kind(value)}")
    if not minimum <= value <= maximum:
        raise fail(field, f"{value} outside {minimum}..{maximum}")
    return value


def read_bytes(value: Value, field: str, size: int) -> bytes:
    """A ``bin`` of exactly ``size`` bytes."""
    if not isinstance(value, bytes) or len(value) != size:
        raise fail(field, f"expected {size} bytes, got {_kind(value)}")
    return value


def read_digest(value: Value, field: str) -> Digest:
    """A 32-byte SHA-256 digest."""
    return Digest(read_bytes(value, field, 32))


def read_list(value: Value, field: str, max_len: int = 10_000) -> list[Value]:
    """An array of at most ``max_len`` elements."""
    if not isinstance(value, list):
        raise fail(field, f"expected an array, got {_kind(value)}")
    if len(value) > max_len:
        raise fail(field, f"more than {max_len} elements")
    return value


def _kind(value: Value) -> str:
    if isinstance(value, bytes):
        return f"{len(value)} bytes"
    return type(value).__name__
