"""Canonical msgpack: the one encoding of everything StoneTrail signs, hashes or stores (DESIGN.md §2).

The subset (docs/format.md, "Canonical encoding"):

* nil, bool, integers in -2**63 .. 2**64-1 in msgpack's shortest form, ``str`` (valid UTF-8) for text,
  ``bin`` for bytes, arrays, and maps whose keys are unique text sorted by their UTF-8 bytes;
* no floats, no ext types (the msgpack timestamp included), no ``raw``/legacy str-as-bytes;
* whole documents only: trailing bytes are an error, and so is a document cut short.

:func:`decode` bounds every length and the total size before msgpack allocates, then accepts the bytes only if
:func:`encode` of the decoded value gives the same bytes back. That single comparison refuses unsorted keys,
non-minimal integer, string, array and map headers, and duplicate keys. Only this module imports msgpack.

Records are decoded by the million, so :func:`decode` first tries a fast check that reaches the same verdict
with msgpack's C code doing most of the work (:func:`_fast_decode`, which argues the equivalence); only bytes it
does not accept go through the step-by-step reference check (:func:`_strict_decode`), which names the fault.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final, TypeAlias, cast

import msgpack

from .errors import DecodeError, InputError

__all__ = ["MAX_DEPTH", "MAX_DOCUMENT_SIZE", "MAX_ITEMS", "Value", "decode", "encode", "pack_local", "unpack_local",
           "unpack_local_all"]

#: A decoded canonical value. Maps decode to ``dict[str, Value]``, arrays to ``list``, ``bin`` to ``bytes``.
Value: TypeAlias = "bool | int | str | bytes | list[Value] | dict[str, Value] | None"

#: Largest document :func:`decode` reads, in bytes (a record is far smaller; a proof bundle may be large).
MAX_DOCUMENT_SIZE = 16 * 1024 * 1024
#: Largest number of elements in one array or entries in one map.
MAX_ITEMS = 100_000
#: Deepest nesting of arrays and maps (the top-level document is depth 1).
MAX_DEPTH = 16

_INT_MIN = -(2**63)
_INT_MAX = 2**64 - 1


def encode(value: object) -> bytes:
    """Encode ``value`` canonically.

    Accepts None, bool, int (-2**63 .. 2**64-1), str, bytes, list/tuple and Mapping with str keys, nested at
    most :data:`MAX_DEPTH` deep; map keys are emitted sorted by their UTF-8 bytes.

    Raises:
        InputError: (code ``codec.unencodable``) for a float, another type, a non-text or duplicate map key,
            an out-of-range integer, or nesting deeper than :data:`MAX_DEPTH`.
    """
    try:
        if type(value) in _CONTAINERS and _plain(value, 1):  # already canonical: msgpack's C packer alone
            return _pack_plain(value)
        return msgpack.packb(_canonical(value, 1), use_bin_type=True)
    except UnicodeEncodeError as exc:  # a lone surrogate is not UTF-8
        raise InputError(f"text is not valid Unicode: {exc.reason}", code="codec.unencodable") from exc


def _pack_plain(value: object) -> bytes:
    """``packb`` of a value :func:`_plain` accepts: exactly what :func:`_canonical` would have packed. ``_plain``
    allows only the exact types ``_canonical`` passes through unchanged (None, bool, int, str, bytes, list, dict),
    no deeper than :data:`MAX_DEPTH`, with every map's text keys already in strictly increasing code-point order,
    which for text that encodes (a lone surrogate raises UnicodeEncodeError either way) is the UTF-8 byte order
    ``_canonical_map`` sorts by. What is left is the integer range, which msgpack refuses as ``_canonical`` does."""
    try:
        return msgpack.packb(value, use_bin_type=True)
    except OverflowError:
        return msgpack.packb(_canonical(value, 1), use_bin_type=True)  # raises the InputError naming the integer


def _canonical(value: object, depth: int) -> object:
    if depth > MAX_DEPTH:
        raise InputError(f"nesting deeper than {MAX_DEPTH}", code="codec.unencodable")
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if not _INT_MIN <= value <= _INT_MAX:
            raise InputError(f"integer of {value.bit_length()} bits outside the msgpack range",
                             code="codec.unencodable")
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


def decode(data: bytes) -> Value:
    """Decode one canonical document, refusing anything :func:`encode` would not produce byte for byte.

    Raises:
        DecodeError: with a code naming the fault — ``codec.too_large`` (over :data:`MAX_DOCUMENT_SIZE` or
            :data:`MAX_ITEMS`), ``codec.too_deep``, ``codec.truncated``, ``codec.trailing_bytes``,
            ``codec.float``, ``codec.ext``, ``codec.bad_key`` (non-text map key), ``codec.duplicate_key``,
            ``codec.malformed`` (invalid UTF-8 and other msgpack errors) or ``codec.non_canonical``.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise DecodeError(f"expected bytes, got {type(data).__name__}", code="codec.malformed")
    if len(data) > MAX_DOCUMENT_SIZE:
        raise DecodeError(f"document is {len(data)} bytes, cap is {MAX_DOCUMENT_SIZE}", code="codec.too_large")
    if not data:
        raise DecodeError("empty input", code="codec.truncated")
    data = bytes(data)
    value = _fast_decode(data)
    if value is _REFUSED:
        return _strict_decode(data)
    return cast(Value, value)


#: Returned by :func:`_fast_decode` for bytes it does not accept (``None`` is a valid document).
_REFUSED: Final = object()
_SCALARS = frozenset({type(None), bool, int, str, bytes})
_CONTAINERS = frozenset({list, dict})


def _fast_decode(data: bytes) -> object:
    """The decoded value of ``data`` if :func:`_strict_decode` accepts it, else :data:`_REFUSED`.

    Steps: msgpack's C unpacker (ext types refused, non-text-or-bytes keys refused, duplicate keys silently merged;
    the length caps are :func:`_limits`'s for the input's size rounded up to a power of two: a document that
    decodes has no string, array or map longer than its own bytes, so they refuse here exactly what
    :func:`_limits` refuses there); one walk (:func:`_plain`) checking depth, types, text keys and strictly
    increasing key order; then msgpack's C packer must give ``data`` back byte for byte.

    Why the verdict equals :func:`_strict_decode`'s (which runs ``_unpack``, ``_check_decoded`` and
    ``encode(value) == data``):

    * Accepted here => accepted there. ``data == packb(v)`` and every map of ``v`` has distinct text keys, so the
      maps in ``data`` have no duplicate and no non-text key: ``_pairs`` passes, and the strict unpack (same caps,
      same ext handling) gives the same ``v``, in the same key order. ``_plain`` checks what ``_check_decoded``
      does (depth, no float, no other type). ``v``'s keys already ascend in code-point order, which for valid
      Unicode (msgpack decodes strict UTF-8, so no surrogates) is the UTF-8 byte order ``encode`` sorts by; its
      integers are in range and its text encodes, so ``encode(v)`` is exactly ``packb(v)`` (``encode`` is
      ``packb`` of a sorted copy), which is ``data``.
    * Accepted there => accepted here. The strict unpack succeeded with text keys only and no duplicates, so the
      dict-building unpack succeeds with the same ``v``, same order. ``_check_decoded`` passed, so types and depth
      pass ``_plain``. ``encode(v) == data`` emits keys sorted, and ``v`` keeps ``data``'s order, so ``v``'s keys
      ascend (strictly: no duplicates) and ``packb(v) == encode(v) == data``.

    So ``decode`` returns the same value or raises the same error as before: any bytes refused here are decided,
    and their error named, by ``_strict_decode`` itself. Bool vs int, bin vs str, floats and header widths are
    all visible in ``packb(v) != data`` or in ``_plain``; ints msgpack decodes are always within the range.
    """
    try:
        value: Value = msgpack.unpackb(data, **_fast_options(len(data)))
    except Exception:  # whatever the fault, _strict_decode names it
        return _REFUSED
    if type(value) not in _SCALARS and not _plain(value, 1):
        return _REFUSED
    try:
        packed = msgpack.packb(value, use_bin_type=True)
    except Exception:
        return _REFUSED
    return value if packed == data else _REFUSED


def _plain(value: Any, depth: int) -> bool:
    """True if ``value`` at ``depth`` is a list or dict that, with everything in it, passes ``_check_decoded`` and
    whose maps have text keys in strictly increasing order (exact types suffice: msgpack builds no subclasses)."""
    kind = type(value)
    if kind is not list and kind is not dict:
        return False  # a float, a Timestamp: refused
    if depth >= MAX_DEPTH:  # any child would sit deeper than MAX_DEPTH
        return not value
    scalars, child = _SCALARS, depth + 1
    if kind is list:
        for item in value:  # noqa: SIM110 (a loop is faster than all())
            if type(item) not in scalars and not _plain(item, child):
                return False
        return True
    previous = None
    for key, item in value.items():
        if type(key) is not str or (previous is not None and key <= previous):
            return False
        previous = key
        if type(item) not in scalars and not _plain(item, child):
            return False
    return True


def _strict_decode(data: bytes) -> Value:
    """The reference check, step by step, raising the error that names the first fault."""
    value = _unpack(data)
    _check_decoded(value, 1)
    if encode(value) != data:
        raise DecodeError("not in canonical form (key order, integer or header width)", code="codec.non_canonical")
    return value


def _limits(data: bytes) -> dict[str, Any]:
    """The unpacker options both decoders share: text as str, arrays as lists, ext types (the timestamp
    included) refused, every length capped by the input's size and :data:`MAX_ITEMS` before allocating."""
    return {"raw": False, "use_list": True, "ext_hook": _refuse_ext, "timestamp": 0, "max_str_len": len(data),
            "max_bin_len": len(data), "max_array_len": min(MAX_ITEMS, len(data)),
            "max_map_len": min(MAX_ITEMS, len(data) // 2), "max_ext_len": 0}


def _unpack(data: bytes) -> Value:
    try:
        value: Value = msgpack.unpackb(data, strict_map_key=False,  # checked in _pairs, so the error names the fault
                                       object_pairs_hook=_pairs, **_limits(data))
    except DecodeError:
        raise
    except msgpack.exceptions.StackError as exc:  # msgpack's own fixed stack bounds nesting before we can
        raise DecodeError("nesting deeper than msgpack's stack", code="codec.too_deep") from exc
    except msgpack.ExtraData as exc:
        raise DecodeError("trailing bytes after the document", code="codec.trailing_bytes") from exc
    except ValueError as exc:
        code = _value_error_code(str(exc))
        what = "truncated: the data ends inside a value (a file cut short?)" if code == "codec.truncated" else \
            f"msgpack: {exc}"
        raise DecodeError(what, code=code) from exc
    except Exception as exc:  # msgpack raises assorted types (FormatError, StackError, UnicodeDecodeError, ...)
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


def _pairs(pairs: list[tuple[object, Value]]) -> dict[str, Value]:
    result: dict[str, Value] = {}
    for key, item in pairs:
        if not isinstance(key, str):
            raise DecodeError(f"map key of type {type(key).__name__}; keys must be text", code="codec.bad_key")
        if key in result:
            raise DecodeError(f"duplicate map key {key!r}", code="codec.duplicate_key")
        result[key] = item
    return result


def _refuse_ext(code: int, data: bytes) -> object:
    raise DecodeError(f"ext type {code} is not allowed", code="codec.ext")


#: :func:`_fast_decode`'s unpacker options by the bit length of the input's size (:func:`_fast_options`).
_FAST_OPTIONS: dict[int, dict[str, Any]] = {}


def _fast_options(size: int) -> dict[str, Any]:
    """:func:`_limits` for an input of ``size`` bytes rounded up to a power of two (caps at most twice the
    size), made once per power: building them for every call cost a fifth of :func:`_fast_decode`'s time."""
    bits = size.bit_length()
    options = _FAST_OPTIONS.get(bits)
    if options is None:
        cap = 1 << bits
        options = _FAST_OPTIONS[bits] = {
            "raw": False, "use_list": True, "ext_hook": _refuse_ext, "timestamp": 0, "strict_map_key": True,
            "max_str_len": cap, "max_bin_len": cap, "max_array_len": min(MAX_ITEMS, cap),
            "max_map_len": min(MAX_ITEMS, cap // 2), "max_ext_len": 0}
    return options


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


def pack_local(value: object) -> bytes:
    """Plain (not canonical) msgpack of ``value`` — None, bool, int, str, bytes, lists or tuples, maps — for a file
    this library writes and reads back itself (an audit state: :mod:`ledger.audit_state`). Raises InputError
    (``codec.unencodable``) for another type."""
    try:
        return msgpack.packb(value, use_bin_type=True)
    except (TypeError, ValueError, OverflowError) as exc:
        raise InputError(f"cannot encode: {exc}", code="codec.unencodable") from exc


def unpack_local(data: bytes | memoryview) -> object:
    """What :func:`pack_local` wrote (arrays come back as lists), read by msgpack's decoder, which is safe on any
    bytes (marshal and pickle are not: a file is input). Raises DecodeError (``codec.malformed``)."""
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False)
    except (ValueError, TypeError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
        raise DecodeError(f"not a msgpack document: {exc}", code="codec.malformed") from exc


def unpack_local_all(data: bytes) -> list[object]:
    """Every document of ``data``, documents :func:`pack_local` wrote one after the other (a file written a piece at
    a time). Raises DecodeError (``codec.malformed``), also for a last document cut short."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=max(len(data), 1))
    try:
        unpacker.feed(data)
        documents = list(unpacker)
        if unpacker.tell() != len(data):
            raise ValueError(f"{len(data) - unpacker.tell()} bytes after the last whole document")
    except (ValueError, TypeError, msgpack.FormatError, msgpack.StackError, msgpack.BufferFull) as exc:
        raise DecodeError(f"not msgpack documents: {exc}", code="codec.malformed") from exc
    return documents
