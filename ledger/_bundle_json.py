"""A bundle's JSON text: one canonical text per bundle, read so strictly that no two JSON parsers can read one text
as two bundles (docs/format.md §7a.6, "JSON text").

:func:`bundle_to_json_text` writes the value of :func:`~ledger._bundle_format.bundle_to_json` as its canonical
text; :func:`bundle_from_json_text` reads a text back to the bundle bytes. Reading refuses, each with its own
code, everything RFC 8259 leaves to the parser (RFC 8259 §4 duplicate names, §6 number range, §8.1 byte order
mark, §8.2 unpaired surrogates; RFC 7493, I-JSON, refuses the same): then it builds the bundle and accepts the
text only if rendering that bundle gives back the very same bytes (decode, re-encode, compare). An accepted
text is therefore the one canonical text of its bundle, and any conforming JSON parser reads it as the same
value. Pure: no I/O.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from typing import NoReturn, cast

from ._bundle_format import MAX_BUNDLE_SIZE, bundle_from_json, bundle_to_json
from .errors import BundleFormatError

__all__ = ["MAX_BUNDLE_JSON_SIZE", "MAX_JSON_INT", "bundle_from_json_text", "bundle_to_json_text"]

#: Largest JSON text read, in bytes, checked before decoding. A bundle byte renders as at most 3 characters
#: (base64: 4/3; a note's non-ASCII UTF-8 byte as ``\\uXXXX``: at most 3; the smallest record, head or identity
#: entries about 2.5), so every bundle of at most MAX_BUNDLE_SIZE bytes has a text under this cap.
MAX_BUNDLE_JSON_SIZE = 3 * MAX_BUNDLE_SIZE
#: Largest integer in a JSON text, 2**53 - 1: beyond it a parser that reads numbers as IEEE 754 doubles (most do)
#: reads another number (RFC 7493 §2.2).
MAX_JSON_INT = 2**53 - 1
_BOM = b"\xef\xbb\xbf"


def bundle_to_json_text(data: bytes) -> bytes:
    """The canonical JSON text of bundle ``data``: :func:`~ledger._bundle_format.bundle_to_json` with members
    sorted by name, no whitespace, every character outside U+0020-U+007E escaped (``\\n`` and the other short
    escapes where JSON has one, else ``\\u`` and four lowercase hex digits, UTF-16 pairs above U+FFFF), and one
    line feed at the end: ASCII, so it is the same bytes in UTF-8 and any ASCII-compatible encoding.

    Raises:
        BundleFormatError: as :func:`~ledger._bundle_format.read_bundle`; ``bundle.json_number`` for a leaf or
            head index (or the checkpoint's tree size) over :data:`MAX_JSON_INT`, which has no JSON rendering.
    """
    value = bundle_to_json(data)
    _check_ints(value)
    return (json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True) + "\n").encode("ascii")


def bundle_from_json_text(text: bytes) -> bytes:
    """The bundle bytes whose canonical JSON text (:func:`bundle_to_json_text`) is exactly ``text``.

    Raises:
        BundleFormatError: ``bundle.too_large`` (over :data:`MAX_BUNDLE_JSON_SIZE`, before decoding);
            ``bundle.json_encoding`` (a byte order mark, bytes that are not UTF-8, an escaped unpaired
            surrogate); ``bundle.json_syntax`` (not one JSON value: a syntax error, trailing data, nesting too
            deep); ``bundle.json_duplicate_key`` (a name twice in one object); ``bundle.json_number`` (NaN,
            Infinity, a fraction or exponent, ``-0``, an integer beyond +-:data:`MAX_JSON_INT`); the codes of
            :func:`~ledger._bundle_format.bundle_from_json` for a value that is no bundle;
            ``bundle.json_non_canonical`` for a valid bundle written otherwise than its canonical text
            (whitespace, member order, escapes, a derived field left out, no final line feed).
    """
    if not isinstance(text, bytes | bytearray | memoryview):
        raise BundleFormatError(f"a bundle's JSON text is bytes, got {type(text).__name__}")
    text = bytes(text)
    if len(text) > MAX_BUNDLE_JSON_SIZE:
        raise BundleFormatError(f"bundle JSON is {len(text)} bytes, cap {MAX_BUNDLE_JSON_SIZE}",
                                code="bundle.too_large")
    data = bundle_from_json(cast("Mapping[str, object]", _parse(_utf8(text))))  # it refuses a non-object
    canonical = bundle_to_json_text(data)
    if canonical != text:
        at = next((i for i, (a, b) in enumerate(zip(canonical, text, strict=False)) if a != b),
                  min(len(canonical), len(text)))
        raise BundleFormatError(f"bundle JSON is not the canonical text of its bundle (first difference at byte "
                                f"{at}; docs/format.md §7a.6)", code="bundle.json_non_canonical")
    return data


def _utf8(text: bytes) -> str:
    if text.startswith(_BOM):
        raise BundleFormatError("bundle JSON starts with a byte order mark", code="bundle.json_encoding")
    try:
        return text.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BundleFormatError(f"bundle JSON is not UTF-8 (byte {exc.start})", code="bundle.json_encoding") from exc


def _parse(text: str) -> object:
    """One JSON value, every ambiguity refused by name (the hooks raise; ``json`` lets their errors through)."""
    try:
        value = json.loads(text, object_pairs_hook=_object, parse_float=_float, parse_int=_int,
                           parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise BundleFormatError(f"bundle JSON: {exc.msg} at byte {exc.pos}", code="bundle.json_syntax") from exc
    except RecursionError as exc:
        raise BundleFormatError("bundle JSON: nested too deep", code="bundle.json_syntax") from exc
    _check_strings(value)
    return value


def _object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    value = dict(pairs)
    if len(value) != len(pairs):
        twice = next(name for name, count in Counter(name for name, _ in pairs).items() if count > 1)
        raise BundleFormatError(f"bundle JSON: the name {ascii(twice)[:40]} twice in one object (parsers differ on "
                                "which one counts)", code="bundle.json_duplicate_key")
    return value


def _int(literal: str) -> int:
    # Checked on the digits, before int() (a long literal would cost quadratic time or hit Python's digit cap).
    if literal == "-0" or len(literal.lstrip("-")) > len(str(MAX_JSON_INT)) or abs(int(literal)) > MAX_JSON_INT:
        _number(literal, f"not an integer within +-{MAX_JSON_INT} other than -0")
    return int(literal)


def _float(literal: str) -> NoReturn:
    _number(literal, "a fraction or an exponent (bundle JSON holds integers only)")


def _constant(literal: str) -> NoReturn:
    _number(literal, "not a JSON number")


def _number(literal: str, why: str) -> NoReturn:
    raise BundleFormatError(f"bundle JSON: number {literal[:40]}: {why}", code="bundle.json_number")


def _check_strings(value: object) -> None:
    """Refuse a ``\\uD800``-style escape of an unpaired surrogate: not a Unicode scalar value (RFC 8259 §8.2).
    Iterative: a value may nest as deep as the parser allowed."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack += item.keys()
            stack += item.values()
        elif isinstance(item, list):
            stack += item
        elif isinstance(item, str) and not _is_text(item):
            raise BundleFormatError("bundle JSON: an escaped unpaired surrogate is not text",
                                    code="bundle.json_encoding")


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _check_ints(value: object) -> None:
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        for element in value:
            _check_ints(element)
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_JSON_INT:
        _number(str(value), f"over {MAX_JSON_INT}: this bundle has no JSON rendering")
