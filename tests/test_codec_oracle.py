"""``decode`` against the reference it replaced: same value, or the same error code and message, on any bytes.

``_reference_decode`` below is the pre-optimisation ``ledger._codec.decode`` kept verbatim (unpack with a pairs
hook, walk, re-encode with sorted keys, compare bytes). The strategies write msgpack by hand so that documents
come with every header width (minimal or not), keys in any order and repeated, non-text keys, floats, ext types,
timestamps, invalid UTF-8, over-deep nesting, and byte-level damage.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping, Sequence
from typing import Any

import msgpack
from hypothesis import example, given, settings
from hypothesis import strategies as st

from ledger._codec import MAX_DEPTH, MAX_DOCUMENT_SIZE, MAX_ITEMS, decode, encode
from ledger.errors import DecodeError, InputError

# --- the reference: ledger._codec.decode before the fast path (verbatim) ----------------------------------------

_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1


def _ref_encode(value: object) -> bytes:
    try:
        return msgpack.packb(_canonical(value, 1), use_bin_type=True)
    except UnicodeEncodeError as exc:
        raise InputError(f"text is not valid Unicode: {exc.reason}", code="codec.unencodable") from exc


def _canonical(value: object, depth: int) -> object:
    if depth > MAX_DEPTH:
        raise InputError(f"nesting deeper than {MAX_DEPTH}", code="codec.unencodable")
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise InputError(f"integer {value} outside the msgpack range", code="codec.unencodable")
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, Mapping):
        return _canonical_map(value, depth)
    if isinstance(value, Sequence):
        return [_canonical(item, depth + 1) for item in value]
    raise InputError(f"cannot encode {type(value).__name__} (floats and other types are refused)",
                     code="codec.unencodable")


def _canonical_map(value: Mapping[Any, object], depth: int) -> dict[str, object]:
    for key in value:
        if not isinstance(key, str):
            raise InputError(f"map key {key!r} is not text", code="codec.unencodable")
    keys = sorted(value, key=lambda k: k.encode("utf-8"))
    return {key: _canonical(value[key], depth + 1) for key in keys}


def _reference_decode(data: bytes) -> Any:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(f"expected bytes, got {type(data).__name__}", code="codec.malformed")
    if len(data) > MAX_DOCUMENT_SIZE:
        raise DecodeError(f"document is {len(data)} bytes, cap is {MAX_DOCUMENT_SIZE}", code="codec.too_large")
    if not data:
        raise DecodeError("empty input", code="codec.truncated")
    value = _unpack(bytes(data))
    _check_decoded(value, 1)
    if _ref_encode(value) != data:
        raise DecodeError("not in canonical form (key order, integer or header width)", code="codec.non_canonical")
    return value


def _unpack(data: bytes) -> Any:
    try:
        value = msgpack.unpackb(
            data,
            raw=False,
            use_list=True,
            strict_map_key=False,
            object_pairs_hook=_pairs,
            ext_hook=_refuse_ext,
            timestamp=0,
            max_str_len=len(data),
            max_bin_len=len(data),
            max_array_len=min(MAX_ITEMS, len(data)),
            max_map_len=min(MAX_ITEMS, len(data) // 2),
            max_ext_len=0,
        )
    except DecodeError:
        raise
    except msgpack.exceptions.StackError as exc:
        raise DecodeError("nesting deeper than msgpack's stack", code="codec.too_deep") from exc
    except msgpack.ExtraData as exc:
        raise DecodeError("trailing bytes after the document", code="codec.trailing_bytes") from exc
    except ValueError as exc:
        raise DecodeError(f"msgpack: {exc}", code=_value_error_code(str(exc))) from exc
    except Exception as exc:
        raise DecodeError(f"msgpack: {type(exc).__name__}: {exc}", code="codec.malformed") from exc
    return value


def _value_error_code(message: str) -> str:
    if "incomplete" in message:
        return "codec.truncated"
    if "max_ext_len" in message:
        return "codec.ext"
    if "exceeds max_" in message:
        return "codec.too_large"
    return "codec.malformed"


def _pairs(pairs: list[tuple[object, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, item in pairs:
        if not isinstance(key, str):
            raise DecodeError(f"map key of type {type(key).__name__}; keys must be text", code="codec.bad_key")
        if key in result:
            raise DecodeError(f"duplicate map key {key!r}", code="codec.duplicate_key")
        result[key] = item
    return result


def _refuse_ext(code: int, data: bytes) -> object:
    raise DecodeError(f"ext type {code} is not allowed", code="codec.ext")


def _check_decoded(value: object, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise DecodeError(f"nesting deeper than {MAX_DEPTH}", code="codec.too_deep")
    if isinstance(value, float):
        raise DecodeError("floats are not allowed", code="codec.float")
    if isinstance(value, list):
        for item in value:
            _check_decoded(item, depth + 1)
    elif isinstance(value, dict):
        for item in value.values():
            _check_decoded(item, depth + 1)
    elif not (value is None or isinstance(value, bool | int | str | bytes)):
        raise DecodeError(f"type {type(value).__name__} is not allowed", code="codec.ext")


# --- hand-written msgpack with chosen header widths ----------------------------------------------------------------

def _uint_header(draw: st.DrawFn, n: int) -> bytes:
    forms = [(0xCC, ">B", 2**8), (0xCD, ">H", 2**16), (0xCE, ">I", 2**32), (0xCF, ">Q", 2**64)]
    options = [bytes([n])] if n < 128 else []
    options += [bytes([tag]) + struct.pack(fmt, n) for tag, fmt, cap in forms if n < cap]
    if n < 2**63:  # a non-negative number in a signed form is never canonical, but is valid msgpack
        options += [bytes([tag]) + struct.pack(fmt, n) for tag, fmt, cap in
                    [(0xD0, ">b", 2**7), (0xD1, ">h", 2**15), (0xD2, ">i", 2**31), (0xD3, ">q", 2**63)] if n < cap]
    return draw(st.sampled_from(options))


def _int(draw: st.DrawFn) -> bytes:
    n = draw(st.integers(-(2**63), 2**64 - 1) | st.integers(-40, 300))
    if n >= 0:
        return _uint_header(draw, n)
    forms = [(0xD0, ">b", 2**7), (0xD1, ">h", 2**15), (0xD2, ">i", 2**31), (0xD3, ">q", 2**63)]
    options = [struct.pack(">b", n)] if n >= -32 else []
    options += [bytes([tag]) + struct.pack(fmt, n) for tag, fmt, cap in forms if n >= -cap]
    return draw(st.sampled_from(options))


def _sized(draw: st.DrawFn, n: int, fix: tuple[int, int] | None, forms: list[tuple[int, str, int]]) -> bytes:
    options = [bytes([fix[0] | n])] if fix is not None and n < fix[1] else []
    options += [bytes([tag]) + struct.pack(fmt, n) for tag, fmt, cap in forms if n < cap]
    return draw(st.sampled_from(options))


def _str_header(draw: st.DrawFn, n: int) -> bytes:
    return _sized(draw, n, (0xA0, 32), [(0xD9, ">B", 2**8), (0xDA, ">H", 2**16), (0xDB, ">I", 2**32)])


def _text(draw: st.DrawFn) -> bytes:
    raw = draw(st.sampled_from(["", "a", "b", "ab", "é", "z", "\U0001f48e", "\uff5a"]).map(str.encode)
               | st.text(max_size=6).map(lambda t: t.encode("utf-8", "surrogatepass"))
               | st.binary(max_size=4))  # sometimes not UTF-8 (or a lone surrogate)
    return _str_header(draw, len(raw)) + raw


def _bin(draw: st.DrawFn) -> bytes:
    raw = draw(st.binary(max_size=6))
    return _sized(draw, len(raw), None, [(0xC4, ">B", 2**8), (0xC5, ">H", 2**16), (0xC6, ">I", 2**32)]) + raw


def _other_scalar(draw: st.DrawFn) -> bytes:
    return draw(st.sampled_from([
        b"\xc0", b"\xc2", b"\xc3",
        b"\xca" + struct.pack(">f", 1.5), b"\xcb" + struct.pack(">d", 0.0), msgpack.packb(-2.25),
        b"\xd4\x05\x01", b"\xd6\xff\x00\x00\x00\x01", b"\xc7\x00\x07", msgpack.packb(msgpack.Timestamp(1, 2)),
    ]))


@st.composite
def _node(draw: st.DrawFn, depth: int = 1) -> bytes:
    choice = draw(st.integers(0, 9 if depth < 5 else 5))
    if choice <= 1:
        return _int(draw)
    if choice == 2:
        return _text(draw)
    if choice == 3:
        return _bin(draw)
    if choice <= 5:
        return _other_scalar(draw)
    if choice <= 7:
        items = draw(st.lists(_node(depth + 1), max_size=4))
        header = _sized(draw, len(items), (0x90, 16), [(0xDC, ">H", 2**16), (0xDD, ">I", 2**32)])
        return header + b"".join(items)
    shared = _text(draw)  # reused, so that keys repeat
    entries = []
    for _ in range(draw(st.integers(0, 4))):
        pick = draw(st.integers(0, 9))
        key = shared if pick < 2 else draw(st.sampled_from(_NON_TEXT_KEYS)) if pick == 2 else _text(draw)
        entries.append(key + draw(_node(depth + 1)))
    header = _sized(draw, len(entries), (0x80, 16), [(0xDE, ">H", 2**16), (0xDF, ">I", 2**32)])
    return header + b"".join(entries)


_NON_TEXT_KEYS = [b"\x01", b"\xc4\x01a", b"\xc0", b"\xc3", b"\x90", b"\x80", b"\xcb" + struct.pack(">d", 1.0)]


@st.composite
def _document(draw: st.DrawFn) -> bytes:
    doc = draw(_node())
    wrap = draw(st.sampled_from([0, 0, 0, MAX_DEPTH - 2, MAX_DEPTH - 1, MAX_DEPTH]))
    for _ in range(wrap):  # push the document towards (and past) the depth cap
        doc = (b"\x91" if draw(st.booleans()) else b"\x81\xa1k") + doc
    damage = draw(st.integers(0, 5))
    if damage == 1 and doc:
        doc = doc[: draw(st.integers(0, len(doc) - 1))]
    elif damage == 2:
        doc += draw(st.binary(min_size=1, max_size=2))
    elif damage == 3 and doc:
        i = draw(st.integers(0, len(doc) - 1))
        doc = doc[:i] + bytes([doc[i] ^ draw(st.integers(1, 255))]) + doc[i + 1:]
    return doc


canonical_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=8) | st.binary(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=4), children, max_size=4),
    max_leaves=20,
)


def _outcome(decoder: Any, data: bytes | bytearray) -> tuple[str, object]:
    try:
        value = decoder(data)
    except DecodeError as exc:
        return "error", (exc.code, str(exc))
    return "value", (repr(value), _ref_encode(value))  # repr tells True from 1 and keeps key order


#: The one message reworded since the reference (the error code is the same): what a truncated document says.
_TRUNCATED = ("codec.truncated", "truncated: the data ends inside a value (a file cut short?)")


def _assert_same(data: bytes | bytearray) -> None:
    want = _outcome(_reference_decode, data)
    if want[0] == "error" and want[1][0] == "codec.truncated" and want[1][1].startswith("msgpack: "):
        want = ("error", _TRUNCATED)
    assert _outcome(decode, data) == want, data.hex()


@settings(max_examples=1200, deadline=None)
@given(_document())
@example(b"\x82\xa0\x01\xa1a\x02")  # "" then "a": ascending
@example(b"\x82\xa1a\x01\xa0\x02")  # "a" then "": not
@example(b"\x82\xa1z\x01\xa2\xc3\xa9\x02")  # "z" < "é" in UTF-8 bytes and in code points
@example(b"\x82\xa3\xef\xbd\x9a\x01\xa4\xf0\x9f\x92\x8e\x02")  # U+FF5A < U+1F48E, UTF-8 3 vs 4 bytes
@example(b"\x82\xa1a\xcb" + struct.pack(">d", 1.0) + b"\xa1a\x01")  # float before a duplicate key
@example(b"\x82\xa1b\xcb" + struct.pack(">d", 1.0) + b"\xa1a\x01")  # float and unsorted keys
@example(b"\x91" * MAX_DEPTH + b"\xcb" + struct.pack(">d", 0.0))  # a falsy float at the deepest level
@example(b"\x91" * (MAX_DEPTH - 1) + b"\x90")  # an empty array at the deepest level
@example(b"\x91" * (MAX_DEPTH - 1) + b"\x80")
@example(b"\x91" * (MAX_DEPTH - 1) + b"\x91\xc0")
@example(b"\x82\x01\x01\x01\x01")  # integer keys, duplicated
@example(b"\x81\xc4\x01a\x01")  # a bin key
@example(b"\x81\x90\x01")  # an array key
def test_decode_agrees_with_the_reference_on_any_bytes(data: bytes) -> None:
    _assert_same(data)


@settings(max_examples=500, deadline=None)
@given(canonical_values, st.data())
def test_decode_agrees_with_the_reference_on_canonical_and_reordered_maps(value: Any, data: st.DataObject) -> None:
    raw = encode(value)
    _assert_same(raw)
    _assert_same(msgpack.packb(value, use_bin_type=True))  # the caller's key order, not the sorted one
    _assert_same(raw + b"\xc0")
    _assert_same(bytearray(raw))
    _assert_same(raw[: data.draw(st.integers(0, len(raw) - 1))])


def test_decode_agrees_with_the_reference_on_large_documents() -> None:
    many = MAX_ITEMS + 1
    for data in (b"\xdd" + struct.pack(">I", many) + b"\x00" * many,
                 b"\xdd" + struct.pack(">I", MAX_ITEMS) + b"\x00" * MAX_ITEMS,
                 b"\xc6" + struct.pack(">I", 200_000) + b"\x00" * 200_000):
        _assert_same(data)
