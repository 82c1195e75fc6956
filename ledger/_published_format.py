"""The files of a published log (docs/format.md §8.5; docs/adr/0024-published-log.md): their paths, bytes and size
caps. Pure: values in, bytes out, and strict parsing back.

A published log is a directory that any static HTTP server serves. Beside C2SP tlog-tiles' ``checkpoint``,
``tile/<L>/<N>[.p/<W>]`` and ``tile/entries/<N>[.p/<W>]`` (entry bundles: each entry a big-endian uint16 length,
then the record bytes, the RFC 9162 leaf input) it holds what a client needs to build one item's proof bundle:

- ``heads/<tree size>`` and ``identities/<tree size>``: every leaf input of the item-head tree (§7c) and of the
  identity tree (§7d) at that tree size, in tree order, each a big-endian uint32 length then the leaf input;
- ``item/<hex SHA-256 of the item id>/<record count>``: the positions of the item's records (§7c) below a tree
  size where it has that many, each a big-endian uint64, increasing;
- ``registry/<registry count>``: the positions of the registry records below a tree size with that many.

Every file but ``checkpoint`` is immutable: a path names one content for ever.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterable, Sequence
from typing import Final

from ._codec import decode
from .errors import DecodeError, InputError, VerificationError
from .hashing import DIGEST_SIZE, TAG_ITEM_HEAD, Digest
from .storage.tiles import TILE_WIDTH, tile_path

__all__ = ["ENTRY_BUNDLE_CAP", "LEAVES_CAP", "MAX_CHECKPOINT", "MAX_ENTRY", "TILE_CAP", "decode_entries",
           "decode_leaves", "decode_positions", "encode_entries", "encode_leaves", "encode_positions",
           "entries_path", "head_of", "heads_path", "identities_path", "item_path", "registry_path", "tile_width"]

#: C2SP tlog-tiles: an entry is prefixed by a big-endian uint16 length, so at most 65535 bytes.
MAX_ENTRY: Final = 0xFFFF
#: Largest files a client reads, in bytes: a checkpoint note, a tile, an entry bundle, a heads or identities file.
MAX_CHECKPOINT: Final = 1 << 20
TILE_CAP: Final = TILE_WIDTH * DIGEST_SIZE
ENTRY_BUNDLE_CAP: Final = TILE_WIDTH * (2 + MAX_ENTRY)
LEAVES_CAP: Final = 256 << 20
_POSITION = 8  # bytes of a uint64 position
_LEAF_LENGTH = 4  # bytes of a heads / identities leaf's uint32 length


def tile_width(size: int, level: int, index: int) -> int:
    """The width of tile (level, index) in a tree of ``size`` leaves (C2SP tlog-tiles): 256 for a full tile,
    ``floor(size / 256**level) mod 256`` for the partial one; KeyError for a tile the tree does not have."""
    count = size >> (8 * level)
    if index < count // TILE_WIDTH:
        return TILE_WIDTH
    if index == count // TILE_WIDTH and count % TILE_WIDTH:
        return count % TILE_WIDTH
    raise KeyError((level, index))


def entries_path(index: int, width: int = TILE_WIDTH) -> str:
    """``tile/entries/<N>[.p/<W>]``: the path of entry bundle ``index`` (C2SP tlog-tiles)."""
    return tile_path(0, index, width).replace("tile/0/", "tile/entries/", 1)


def heads_path(tree_size: int) -> str:
    """``heads/<tree size>``: the item-head tree's leaves at that tree size."""
    return f"heads/{tree_size}"


def identities_path(tree_size: int) -> str:
    """``identities/<tree size>``: the identity tree's leaves at that tree size."""
    return f"identities/{tree_size}"


def item_path(item: str, count: int) -> str:
    """``item/<hex SHA-256 of the UTF-8 item id>/<record count>``: the positions of an item's first ``count``
    records (a hash: any id is one safe path element)."""
    return f"item/{hashlib.sha256(item.encode('utf-8')).hexdigest()}/{count}"


def registry_path(count: int) -> str:
    """``registry/<registry count>``: the positions of the first ``count`` registry records."""
    return f"registry/{count}"


def encode_entries(entries: Iterable[bytes]) -> bytes:
    """An entry bundle: each entry as a big-endian uint16 length, then its bytes.

    Raises:
        InputError: ``publish.entry_too_large`` (an entry over 65535 bytes: tlog-tiles cannot carry it).
    """
    parts = []
    for entry in entries:
        if len(entry) > MAX_ENTRY:
            raise InputError(f"a record of {len(entry)} bytes is over the {MAX_ENTRY} bytes an entry bundle can "
                             "carry (C2SP tlog-tiles)", code="publish.entry_too_large")
        parts += [len(entry).to_bytes(2, "big"), entry]
    return b"".join(parts)


def decode_entries(data: bytes, count: int, what: str) -> list[bytes]:
    """The ``count`` entries of an entry bundle; VerificationError ``fetch.entry_mismatch`` for any other shape."""
    return _split(data, 2, count, what, "fetch.entry_mismatch")


def encode_leaves(leaves: Iterable[bytes]) -> bytes:
    """A heads or identities file: each leaf input as a big-endian uint32 length, then its bytes."""
    return b"".join(len(leaf).to_bytes(_LEAF_LENGTH, "big") + leaf for leaf in leaves)


def decode_leaves(data: bytes, count: int, what: str) -> list[bytes]:
    """The ``count`` leaf inputs of a heads or identities file; VerificationError ``fetch.leaves_mismatch``
    for any other shape."""
    return _split(data, _LEAF_LENGTH, count, what, "fetch.leaves_mismatch")


def encode_positions(positions: Sequence[int]) -> bytes:
    """Positions as big-endian uint64s."""
    return b"".join(p.to_bytes(_POSITION, "big") for p in positions)


def decode_positions(data: bytes, count: int, below: int, what: str) -> list[int]:
    """``count`` strictly increasing positions, each below ``below``; VerificationError
    ``fetch.positions_mismatch`` for anything else."""
    found = [int.from_bytes(data[i:i + _POSITION], "big") for i in range(0, len(data), _POSITION)]
    if len(data) != count * _POSITION or any(b <= a for a, b in itertools.pairwise(found)) or (
            found and found[-1] >= below):
        raise VerificationError(f"{what}: not {count} increasing positions below {below}",
                                code="fetch.positions_mismatch")
    return found


def _split(data: bytes, prefix: int, count: int, what: str, code: str) -> list[bytes]:
    """``count`` length-prefixed (``prefix`` bytes, big-endian) items filling ``data`` exactly."""
    items: list[bytes] = []
    at = 0
    while at < len(data) and len(items) < count:
        length = int.from_bytes(data[at:at + prefix], "big")
        at += prefix
        items.append(data[at:at + length])
        at += length
    if at != len(data) or len(items) != count:
        raise VerificationError(f"{what}: not {count} length-prefixed items", code=code)
    return items


def head_of(leaf: bytes) -> tuple[str, int, Digest, int]:
    """(item, position, record hash, count) of an item-head leaf input (docs/format.md §7c); VerificationError
    ``fetch.leaves_mismatch`` for any other bytes."""
    try:
        value = decode(leaf[len(TAG_ITEM_HEAD):]) if leaf.startswith(TAG_ITEM_HEAD) else None
    except DecodeError:
        value = None
    if not (isinstance(value, list) and len(value) == 4 and isinstance(value[0], str) and type(value[1]) is int
            and isinstance(value[2], bytes) and len(value[2]) == DIGEST_SIZE and type(value[3]) is int
            and value[3] > 0):
        raise VerificationError("an item-head leaf is not [item, position, record hash, count]",
                                code="fetch.leaves_mismatch")
    return value[0], value[1], Digest(value[2]), value[3]
