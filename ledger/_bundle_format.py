"""The proof bundle's bytes: layout, strict reading, building, and the JSON rendering (docs/format.md §7a).

Re-exported by :mod:`ledger.bundle`, which verifies what this module only parses. Pure: no I/O.
"""

from __future__ import annotations

import base64
import binascii
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

from . import _schema as s
from ._codec import MAX_ITEMS, Value, decode, encode
from ._file_kinds import binary_kind, text_kind
from .checkpoint import Checkpoint, read_unverified_checkpoint
from .errors import BundleFormatError, DecodeError, InputError, RecordFormatError
from .hashing import Digest
from .note import MAX_NOTE_BYTES, note_signatures
from .record import MAX_RECORD_SIZE

__all__ = ["BUNDLE_TAG", "BUNDLE_VERSION", "MAX_BUNDLE_SIZE", "MAX_PROOF_HASHES", "Bundle", "BundleEntry",
           "HeadEntry", "IdentityEntry", "build_bundle", "bundle_from_json", "bundle_to_json", "encode_bundle",
           "read_bundle"]

#: Prefix of every bundle's bytes (domain separation: a bundle is never a record, a note or another document).
BUNDLE_TAG = b"stonetrail/v1/bundle\n"
#: Version 2 added ``heads`` (the item-head proofs, docs/format.md §7c), version 3 ``identities`` (the identity
#: proofs, §7d); older bundles are refused.
BUNDLE_VERSION = 3
#: Largest bundle accepted, in bytes, checked before decoding (the canonical decoder's own cap).
MAX_BUNDLE_SIZE = 16 * 1024 * 1024
#: Longest inclusion proof: one hash per level of a tree of at most 2**64 leaves.
MAX_PROOF_HASHES = 64
_MAX_RECORDS = MAX_ITEMS

@dataclass(frozen=True, slots=True, kw_only=True)
class BundleEntry:
    """One leaf: its 0-based ``index`` in the log, the record bytes, and the inclusion proof as received."""

    index: int
    leaf: bytes
    proof: tuple[bytes, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class HeadEntry:
    """An item-head proof as received: the ``item``, its leaf's 0-based ``index`` in the checkpoint's item-head
    tree, and the inclusion proof (docs/format.md §7c)."""

    item: str
    index: int
    proof: tuple[bytes, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class IdentityEntry:
    """A leaf of the checkpoint's identity tree as received: its 0-based ``index``, the leaf input and the
    inclusion proof (docs/format.md §7d)."""

    index: int
    leaf: bytes
    proof: tuple[bytes, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Bundle:
    """A bundle's parts as decoded by :func:`read_bundle`: suspect until :func:`check_bundle` accepts them."""

    item: str
    checkpoint: str
    entries: tuple[BundleEntry, ...]
    heads: tuple[HeadEntry, ...]
    identities: tuple[IdentityEntry, ...] = ()


def build_bundle(item: str, checkpoint: str, entries: Sequence[tuple[int, bytes, Sequence[Digest]]],
                 heads: Sequence[tuple[str, int, Sequence[Digest]]],
                 identities: Sequence[tuple[int, bytes, Sequence[Digest]]] = ()) -> bytes:
    """The bundle bytes for ``item``: the signed ``checkpoint`` note, (leaf index, record bytes, inclusion
    proof) ``entries``, sorted here by index, (item, index in the item-head tree, inclusion proof) ``heads``,
    sorted here by item, and (index in the identity tree, leaf input, inclusion proof) ``identities``, sorted
    here by index. Pure: it checks the layout, not the evidence (that is
    :func:`check_bundle`'s job).

    Raises:
        InputError: ``bundle.duplicate_index`` (an index twice); BundleFormatError for anything
            :func:`read_bundle` would refuse (e.g. over a cap, an item's head given twice), and
            ``bundle.read_back`` (see :func:`encode_bundle`).
    """
    return encode_bundle(item, checkpoint, entries, heads, identities)[0]


def encode_bundle(item: str, checkpoint: str, entries: Sequence[tuple[int, bytes, Sequence[Digest]]],
                  heads: Sequence[tuple[str, int, Sequence[Digest]]],
                  identities: Sequence[tuple[int, bytes, Sequence[Digest]]] = ()) -> tuple[bytes, Bundle]:
    """:func:`build_bundle`'s bytes, and the :class:`Bundle` they read back as (:func:`read_bundle`), which holds
    exactly the parts given, sorted as :func:`build_bundle` sorts them: what the caller hands out is what it
    built (an exporter checks the evidence of the parts read back, :func:`ledger.bundle.check_bundle_proofs`).
    Raises as :func:`build_bundle`."""
    ordered = sorted(entries, key=lambda e: e[0])
    for before, after in itertools.pairwise(ordered):
        if before[0] == after[0]:
            raise InputError(f"leaf index {after[0]} given twice", code="bundle.duplicate_index")
    return _encode(item, checkpoint, ordered, sorted(heads, key=lambda h: h[0].encode("utf-8", "surrogatepass")),
                   sorted(identities, key=lambda e: e[0]))


def _encode(item: str, checkpoint: str, entries: Sequence[tuple[int, bytes, Sequence[bytes]]],
            heads: Sequence[tuple[str, int, Sequence[bytes]]],
            identities: Sequence[tuple[int, bytes, Sequence[bytes]]]) -> tuple[bytes, Bundle]:
    """The bundle bytes with entries, heads and identities in the order given, and the Bundle they read back as.

    Raises:
        BundleFormatError: as :func:`read_bundle`; ``bundle.read_back``: the bytes read back as other parts than
            those given (a fault of the encoder, never of the parts).
    """
    value = {"checkpoint": checkpoint,  # every map's keys in canonical order: encode packs it as it is
             "heads": [{"index": i, "item": name, "proof": [bytes(h) for h in proof]} for name, i, proof in heads],
             "identities": [{"index": i, "leaf": bytes(leaf), "proof": [bytes(h) for h in proof]}
                            for i, leaf, proof in identities],
             "item": item,
             "records": [{"index": i, "leaf": bytes(leaf), "proof": [bytes(h) for h in proof]}
                         for i, leaf, proof in entries],
             "v": BUNDLE_VERSION}
    try:
        data = BUNDLE_TAG + encode(value)
    except InputError as exc:  # a lone surrogate, a negative index: nothing read_bundle could accept
        raise BundleFormatError(f"bundle: {exc}", code="bundle.malformed") from exc
    back = read_bundle(data)  # what we write, we can read back, as what we wrote
    if not _holds(back, item, checkpoint, entries, heads, identities):
        raise BundleFormatError("bundle: its bytes read back as other parts than those written",
                                code="bundle.read_back")
    return data, back


def _holds(bundle: Bundle, item: str, checkpoint: str, entries: Sequence[tuple[int, bytes, Sequence[bytes]]],
           heads: Sequence[tuple[str, int, Sequence[bytes]]],
           identities: Sequence[tuple[int, bytes, Sequence[bytes]]]) -> bool:
    """True if ``bundle`` is exactly these parts, in this order: ``bundle == Bundle(item=item, ...)`` with each
    part as :func:`read_bundle` gives it (leaves as bytes, proofs as tuples; a Digest compares as its bytes),
    compared field by field without building that Bundle."""
    return (bundle.item == item and bundle.checkpoint == checkpoint and len(bundle.entries) == len(entries)
            and len(bundle.heads) == len(heads) and len(bundle.identities) == len(identities)
            and all(e.index == i and e.leaf == bytes(leaf) and e.proof == tuple(proof)
                    for e, (i, leaf, proof) in zip(bundle.entries, entries, strict=True))
            and all(h.item == name and h.index == i and h.proof == tuple(proof)
                    for h, (name, i, proof) in zip(bundle.heads, heads, strict=True))
            and all(e.index == i and e.leaf == bytes(leaf) and e.proof == tuple(proof)
                    for e, (i, leaf, proof) in zip(bundle.identities, identities, strict=True)))


def read_bundle(data: bytes) -> Bundle:
    """Decode bundle bytes strictly (tag, size caps, canonical msgpack, exact layout), checking no evidence.

    Raises:
        BundleFormatError: ``bundle.too_large``, ``bundle.tag``, ``bundle.version``, ``bundle.malformed``, or
            the ``codec.*`` code of a document that is not canonical msgpack.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise BundleFormatError(f"a bundle is bytes, got {type(data).__name__}")
    if len(data) > MAX_BUNDLE_SIZE:
        raise BundleFormatError(f"bundle is {len(data)} bytes, cap {MAX_BUNDLE_SIZE}", code="bundle.too_large")
    data = bytes(data)
    if not data.startswith(BUNDLE_TAG):
        kind = binary_kind(data) or text_kind(data[:4096].decode("utf-8", "replace"))
        use = {"a ledger file": ": use 'stonetrail verify'", "an evidence file": ": use 'stonetrail evidence verify'",
               "a checkpoint": ": a bundle holds one; 'stonetrail proof export' writes bundles"}
        what = f" (it is {kind}{use.get(kind, '')})" if kind else " (it is an empty file)" if not data else ""
        raise BundleFormatError(f"not a StoneTrail proof bundle (missing the bundle tag){what}", code="bundle.tag")
    try:
        return _read_value(decode(data[len(BUNDLE_TAG):]))
    except DecodeError as exc:
        raise BundleFormatError(f"bundle: {exc}", code=exc.code) from exc
    except RecordFormatError as exc:
        raise BundleFormatError(f"bundle: {exc}") from exc


def _read_value(value: Value) -> Bundle:
    top = s.read_map(value, "bundle")
    version = top.get("v")
    if version != BUNDLE_VERSION or isinstance(version, bool):
        raise BundleFormatError(f"unsupported bundle version {version!r}", code="bundle.version")
    s.exact_keys(top, "bundle", {"v", "item", "checkpoint", "records", "heads", "identities"})
    note = top["checkpoint"]
    if not isinstance(note, str) or len(note) > MAX_NOTE_BYTES:
        raise s.fail("checkpoint", f"expected signed-note text of at most {MAX_NOTE_BYTES} characters")
    entries = tuple(_read_entry(v) for v in s.read_list(top["records"], "records", _MAX_RECORDS))
    heads = tuple(_read_head(v) for v in s.read_list(top["heads"], "heads", _MAX_RECORDS))
    names = [h.item.encode("utf-8") for h in heads]
    if names != sorted(set(names)):
        raise s.fail("heads", "expected items sorted by their UTF-8 bytes, each once")
    identities = tuple(_read_identity(v) for v in s.read_list(top["identities"], "identities", _MAX_RECORDS))
    if any(b.index <= a.index for a, b in itertools.pairwise(identities)):
        raise s.fail("identities", "expected leaves sorted by index, each once")
    return Bundle(item=s.read_id(top["item"], "item"), checkpoint=note, entries=entries, heads=heads,
                  identities=identities)


def _read_entry(value: Value) -> BundleEntry:
    return BundleEntry(**_read_leaf(value, "records"))


def _read_head(value: Value) -> HeadEntry:
    m = s.read_map(value, "heads")
    s.exact_keys(m, "heads", {"item", "index", "proof"})
    return HeadEntry(item=s.read_id(m["item"], "heads.item"), index=s.read_int(m["index"], "heads.index", 0,
                     2**64 - 1), proof=_read_proof(m["proof"], "heads.proof"))


def _read_identity(value: Value) -> IdentityEntry:
    return IdentityEntry(**_read_leaf(value, "identities"))


def _read_leaf(value: Value, name: str) -> dict[str, Any]:
    """A map of exactly ``index`` (0..2**64-1), ``leaf`` (1..MAX_RECORD_SIZE bytes) and ``proof``."""
    m = s.read_map(value, name)
    s.exact_keys(m, name, {"index", "leaf", "proof"})
    leaf = m["leaf"]
    if not isinstance(leaf, bytes) or not 0 < len(leaf) <= MAX_RECORD_SIZE:
        raise s.fail(f"{name}.leaf", f"expected 1..{MAX_RECORD_SIZE} bytes")
    return {"index": s.read_int(m["index"], f"{name}.index", 0, 2**64 - 1), "leaf": leaf,
            "proof": _read_proof(m["proof"], f"{name}.proof")}


def _read_proof(value: Value, name: str) -> tuple[bytes, ...]:
    """Hashes as given (a wrong length is the verifier's finding, ``proof.hash_length``)."""
    proof = tuple(s.read_list(value, name, MAX_PROOF_HASHES))
    if not all(isinstance(h, bytes) for h in proof):
        raise s.fail(name, "expected an array of bin hashes")
    return cast("tuple[bytes, ...]", proof)


# --- JSON rendering -------------------------------------------------------------------------------------------

def bundle_to_json(data: bytes) -> dict[str, object]:
    """The bundle as JSON-ready values (docs/format.md §7a, "JSON"): the signed note text; per record
    ``leaf_index``, ``leaf`` (base64 of the record bytes: the RFC 9162 leaf input) and ``inclusion_proof``
    (base64 hashes); per item-head proof (``heads``, §7c) ``item``, ``heads_index`` and ``inclusion_proof``.
    ``origin``, ``tree_size`` and ``root_hash`` are read from the checkpoint WITHOUT verifying it (None if it is
    unreadable), and so are ``cosignatures``: its signature lines shaped as witness cosignatures (§7e), each
    ``name``, ``key_id`` (hex) and ``time``. Raises BundleFormatError as :func:`read_bundle`."""
    bundle = read_bundle(data)
    try:
        cp: Checkpoint | None = read_unverified_checkpoint(bundle.checkpoint)
    except InputError:
        cp = None
    return {
        "format": "stonetrail-bundle", "v": BUNDLE_VERSION, "item": bundle.item, "checkpoint": bundle.checkpoint,
        "origin": cp.origin if cp else None, "tree_size": cp.tree_size if cp else None,
        "root_hash": cp.root_hash.b64() if cp else None, "cosignatures": _cosignatures(bundle.checkpoint),
        "records": [{"leaf_index": e.index, "leaf": _b64(e.leaf), "inclusion_proof": [_b64(h) for h in e.proof]}
                    for e in bundle.entries],
        "heads": [{"item": h.item, "heads_index": h.index, "inclusion_proof": [_b64(p) for p in h.proof]}
                  for h in bundle.heads],
        "identities": [{"identities_index": e.index, "leaf": _b64(e.leaf),
                        "inclusion_proof": [_b64(p) for p in e.proof]} for e in bundle.identities],
    }


def _cosignatures(note: str) -> list[dict[str, object]]:
    """The checkpoint's signature lines shaped as C2SP tlog-cosignature/v1 (72 bytes: timestamp and Ed25519
    signature), NOT verified: ``name``, ``key_id`` (hex) and ``time`` (POSIX seconds) of each, in note order."""
    try:
        lines = note_signatures(note)[1]
    except InputError:
        return []
    return [{"name": name, "key_id": key_id.hex(), "time": int.from_bytes(raw[:8], "big")}
            for name, key_id, raw in lines if len(raw) == 72]


def bundle_from_json(value: Mapping[str, object]) -> bytes:
    """The bundle bytes of a :func:`bundle_to_json` rendering, with its records and heads in the order given
    (an out-of-order record is the verifier's finding, as in the binary form); base64 parsed strictly; the
    derived fields (``origin``, ``tree_size``, ``root_hash``, ``cosignatures``) may be left out but, if present,
    must be what the checkpoint says; other fields are refused.

    Raises:
        BundleFormatError: not a JSON object, a missing, unknown or mistyped field, or anything
            :func:`read_bundle` refuses.
    """
    if not isinstance(value, Mapping):
        raise BundleFormatError(f"bundle JSON must be an object, not {type(value).__name__}")
    version = value.get("format"), value.get("v")
    if version[0] != "stonetrail-bundle" or type(version[1]) is not int or version[1] != BUNDLE_VERSION:
        raise BundleFormatError(f"not a version {BUNDLE_VERSION} stonetrail-bundle JSON rendering",
                                code="bundle.version")
    _json_keys(value, "bundle", _JSON_KEYS)
    try:
        item, note = _json_text(value["item"], "item"), _json_text(value["checkpoint"], "checkpoint")
        entries = [(_json_int(r["leaf_index"]), _unb64(r["leaf"]), _proof(r["inclusion_proof"]))
                   for r in _json_rows(value["records"], "records", {"leaf_index", "leaf", "inclusion_proof"})]
        heads = [(_json_text(h["item"], "heads[].item"), _json_int(h["heads_index"]), _proof(h["inclusion_proof"]))
                 for h in _json_rows(value["heads"], "heads", {"item", "heads_index", "inclusion_proof"})]
        identities = [(_json_int(e["identities_index"]), _unb64(e["leaf"]), _proof(e["inclusion_proof"]))
                      for e in _json_rows(value["identities"], "identities",
                                          {"identities_index", "leaf", "inclusion_proof"})]
    except KeyError as exc:
        raise BundleFormatError(f"bundle JSON: missing field {exc}") from exc
    data = _encode(item, note, entries, heads, identities)[0]
    derived = bundle_to_json(data)
    if wrong := [key for key in _DERIVED if key in value and value[key] != derived[key]]:
        raise BundleFormatError(f"bundle JSON: {', '.join(wrong)} not what the checkpoint says")
    return data


_DERIVED = ("origin", "tree_size", "root_hash", "cosignatures")
_JSON_KEYS = frozenset({"format", "v", "item", "checkpoint", *_DERIVED, "records", "heads", "identities"})


def _json_keys(value: Mapping[str, object], name: str, allowed: frozenset[str] | set[str]) -> None:
    if unknown := sorted(set(value) - allowed, key=str):
        raise BundleFormatError(f"bundle JSON: unknown field(s) in {name}: {', '.join(map(str, unknown))[:200]}")


def _json_rows(value: object, name: str, keys: set[str]) -> list[Mapping[str, object]]:
    if not isinstance(value, list) or not all(isinstance(row, Mapping) for row in value):
        raise BundleFormatError(f"bundle JSON: {name} must be an array of objects")
    for row in value:
        _json_keys(row, name, keys)
    return value


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def _unb64(text: object) -> bytes:
    if not isinstance(text, str):
        raise BundleFormatError("expected base64 text")
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError) as exc:
        raise BundleFormatError(f"not standard base64: {text[:40]!r}") from exc
    if _b64(raw) != text:
        raise BundleFormatError(f"non-canonical base64: {text[:40]!r}")
    return raw


def _proof(value: object) -> Sequence[Digest]:
    """Hashes as given (a wrong length is the verifier's finding, ``proof.hash_length``, not a format error)."""
    if not isinstance(value, list):
        raise BundleFormatError("inclusion_proof must be an array")
    return cast("Sequence[Digest]", [_unb64(h) for h in value])


def _json_int(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BundleFormatError("leaf_index, heads_index and identities_index must be integers")
    return value


def _json_text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise BundleFormatError(f"bundle JSON: {name} must be text")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise BundleFormatError(f"bundle JSON: {name} is not valid Unicode (a lone surrogate)") from exc
    return value
