"""Canonical msgpack: golden bytes, rejection of every non-canonical variant, round trips."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger import _codec
from ledger._codec import MAX_DEPTH, MAX_DOCUMENT_SIZE, decode, encode
from ledger.errors import DecodeError, InputError

GOLDEN = [
    (None, "c0"),
    (True, "c3"),
    (False, "c2"),
    (0, "00"),
    (127, "7f"),
    (128, "cc80"),
    (-1, "ff"),
    (-32, "e0"),
    (-33, "d0df"),
    (65536, "ce00010000"),
    (2**64 - 1, "cfffffffffffffffff"),
    (-(2**63), "d38000000000000000"),
    ("", "a0"),
    ("ct", "a26374"),
    (b"", "c400"),
    (b"\x01", "c40101"),
    ([], "90"),
    ({}, "80"),
    ({"b": 1, "a": 2}, "82a16102a16201"),  # keys sorted by UTF-8 bytes
    ({"é": 1, "z": 2}, "82a17a02a2c3a901"),  # "z" (0x7a) sorts before "é" (0xc3 0xa9)
    ([1, [2, {"k": b"v"}]], "9201920281a16bc40176"),
]


@pytest.mark.parametrize(("value", "hex_bytes"), GOLDEN)
def test_golden_bytes(value: object, hex_bytes: str) -> None:
    assert encode(value).hex() == hex_bytes
    assert decode(bytes.fromhex(hex_bytes)) == value


NON_CANONICAL = [
    ("unsorted keys", msgpack.packb({"b": 1, "a": 2}), "codec.non_canonical"),
    ("uint8 for a fixint", b"\xcc\x05", "codec.non_canonical"),
    ("uint16 for a uint8", b"\xcd\x00\x80", "codec.non_canonical"),
    ("int64 for a negative fixint", b"\xd3" + b"\xff" * 8, "codec.non_canonical"),
    ("str8 for a fixstr", b"\xd9\x01a", "codec.non_canonical"),
    ("bin16 for a bin8", b"\xc5\x00\x01a", "codec.non_canonical"),
    ("array16 for a fixarray", b"\xdc\x00\x01\x01", "codec.non_canonical"),
    ("map16 for a fixmap", b"\xde\x00\x01\xa1a\x01", "codec.non_canonical"),
    ("float64", msgpack.packb(1.5), "codec.float"),
    ("float32", b"\xca\x3f\xc0\x00\x00", "codec.float"),
    ("duplicate key", b"\x82\xa1a\x01\xa1a\x02", "codec.duplicate_key"),
    ("integer key", msgpack.packb({1: 2}), "codec.bad_key"),
    ("bin key", b"\x81\xc4\x01a\x01", "codec.bad_key"),
    ("ext type", msgpack.packb(msgpack.ExtType(5, b"xx")), "codec.ext"),
    ("timestamp ext", msgpack.packb(msgpack.Timestamp(1)), "codec.ext"),
    ("cut-off array", b"\x92\x01", "codec.truncated"),
    ("trailing bytes", b"\x01\x02", "codec.trailing_bytes"),
    ("empty input", b"", "codec.truncated"),
    ("invalid UTF-8", b"\xa1\xff", "codec.malformed"),
    ("never-used byte 0xc1", b"\xc1", "codec.malformed"),
    ("huge array header", b"\xdd\xff\xff\xff\xff", "codec.too_large"),
    ("too deep", b"\x91" * (MAX_DEPTH + 1) + b"\x01", "codec.too_deep"),
    ("deeper than msgpack's stack", b"\x91" * 5000 + b"\x01", "codec.too_deep"),
]


@pytest.mark.parametrize(("desc", "data", "code"), NON_CANONICAL, ids=[c[0] for c in NON_CANONICAL])
def test_non_canonical_rejected_with_code(desc: str, data: bytes, code: str) -> None:
    with pytest.raises(DecodeError) as info:
        decode(data)
    assert info.value.code == code, desc


def _nested(depth: int) -> object:
    value: object = 0
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize("value", [1.0, {1: 2}, {"a": object()}, 2**64, -(2**63) - 1, _nested(MAX_DEPTH + 1)])
def test_encode_refuses_what_decode_would_refuse(value: object) -> None:
    with pytest.raises(InputError) as info:
        encode(value)
    assert info.value.code == "codec.unencodable"


def test_bool_and_int_stay_distinct_as_bytes() -> None:
    # True == 1 in Python; the encodings (and so every hash over them) differ.
    assert encode(True) != encode(1)
    assert encode({"a": True}) != encode({"a": 1})


values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(max_size=20) | st.binary(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=30,
)


@given(values)
def test_round_trip(value: object) -> None:
    data = encode(value)
    assert decode(data) == value
    assert encode(decode(data)) == data


@given(st.binary(max_size=64))
def test_decode_never_crashes(data: bytes) -> None:
    try:
        value = decode(data)
    except DecodeError:
        return
    assert encode(value) == data  # anything accepted is exactly canonical


@given(values, st.data())
def test_single_byte_change_never_decodes_to_the_same_value(value: object, data: st.DataObject) -> None:
    raw = bytearray(encode(value))
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] ^= data.draw(st.integers(1, 255))
    try:
        decoded = decode(bytes(raw))
    except DecodeError:
        return
    assert encode(decoded) == bytes(raw) != encode(value)


@pytest.mark.parametrize("size", [1, 2, 3, 100, 4096, 4097, 999_999, MAX_DOCUMENT_SIZE])
def test_the_fast_decoders_caps_follow_the_input_size(size: int) -> None:
    """The fast path's unpacker options are made once per power of two (not per call), and still cap every
    length by at most twice the input's size (as the strict path caps them by the size itself): a header that
    claims more than the input can hold allocates little before msgpack finds the data missing."""
    options, strict = _codec._fast_options(size), _codec._limits(b"\x00" * size)
    assert options is _codec._fast_options(size)
    for key in ("max_str_len", "max_bin_len", "max_array_len", "max_map_len"):
        assert strict[key] <= options[key] <= max(2 * strict[key], 1), key
    assert options["max_ext_len"] == 0 and options["strict_map_key"] is True
