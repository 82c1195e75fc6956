"""The replay's dictionaries of an audit state (:mod:`ledger.audit_state`) over its saved rows, in the persistent
index's encodings (:data:`ledger.index.state.TABLES`): a row is decoded when the resumed audit first reads it, and
rows it never reads are saved again as they were read, so that a resumed audit decodes what the records after
the state touch, not the whole state — what :class:`ledger.index.maps.StoredMap` does over the index's tables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping
from typing import Any

from ._state_file import damaged
from .errors import StoneTrailError
from .index.state import TABLES
from .item import Item

__all__ = ["ItemRows", "Rows", "encoded", "stones"]


_ABSENT = object()


class Rows(MutableMapping[Any, Any]):
    """A dictionary of the replay over a saved state's rows (``table``: :data:`ledger.index.state.TABLES`; see the
    module docstring). Iterates in the order a dictionary would."""

    def __init__(self, table: str, keys: Iterable[bytes] = (), values: Iterable[bytes] = ()) -> None:
        (self._key, self._unkey), (self._value, self._unvalue) = TABLES[table]
        self._rows: dict[bytes, bytes] = dict(zip(keys, values, strict=True))  # b"" if set here: in _live
        if not all(type(k) is bytes for k in self._rows) or not all(type(v) is bytes for v in self._rows.values()):
            raise ValueError(f"{table} rows that are not byte strings")
        self._live: dict[bytes, Any] = {}  # encoded key -> the value decoded or set

    def __getitem__(self, key: Any) -> Any:
        encoded = self._key(key)
        live = self._live.get(encoded, _ABSENT)
        if live is not _ABSENT:
            return live
        raw = self._rows[encoded]  # KeyError: absent
        value = self._live[encoded] = _decoded(self._unvalue, raw)
        return value

    def __contains__(self, key: object) -> bool:
        return self._key(key) in self._rows

    def __setitem__(self, key: Any, value: Any) -> None:
        encoded = self._key(key)
        self._rows.setdefault(encoded, b"")
        self._live[encoded] = value

    def __delitem__(self, key: Any) -> None:
        encoded = self._key(key)
        del self._rows[encoded]
        self._live.pop(encoded, None)

    def __iter__(self) -> Iterator[Any]:
        return (_decoded(self._unkey, encoded) for encoded in list(self._rows))

    def __len__(self) -> int:
        return len(self._rows)

    def encoded(self) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, value), in order: a value re-encoded if read or set, else as read."""
        live, value = self._live, self._value
        return ((k, value(live[k]) if k in live else raw) for k, raw in self._rows.items())


def _decoded(decode: Callable[[bytes], Any], raw: bytes) -> Any:
    """``decode(raw)``, a row of the state: one that does not decode is a damaged state (its hash protects it from
    damage on disk, not from a writer that wrote it wrong). Raises InputError ``audit.state_damaged``."""
    try:
        return decode(raw)
    except (ValueError, EOFError, TypeError, IndexError, KeyError, AttributeError, StoneTrailError) as exc:
        raise damaged(f"a row does not decode ({exc})") from exc


def encoded(table: str, mapping: Any) -> Iterator[tuple[bytes, bytes]]:
    """Every (key, value) of ``mapping`` (a set: its keys, sorted, with empty values) in the index's encoding of
    ``table``, one at a time."""
    if isinstance(mapping, Rows):
        return mapping.encoded()
    (key, _), (value, _) = TABLES[table]
    if isinstance(mapping, set | frozenset):
        return ((key(k), b"") for k in sorted(mapping))
    return ((key(k), value(v)) for k, v in mapping.items())


class ItemRows(Rows):
    """The ``items`` rows with each saved item's ``type`` beside them (``types``, same order as ``keys``): counting
    the stones (:func:`stones`) decodes no item the audit did not read."""

    def __init__(self, keys: Iterable[bytes] = (), values: Iterable[bytes] = (), types: Iterable[str] = ()) -> None:
        keys = list(keys)
        super().__init__("items", keys, values)
        self._types = dict(zip(keys, types, strict=True))

    def types(self) -> Iterator[str]:
        """Each item's type, in the order of :meth:`encoded`."""
        return (self._live[k].type if k in self._live else self._types[k] for k in self._rows)


def stones(items: Mapping[str, Item]) -> int:
    """How many of ``items`` are stones."""
    if isinstance(items, ItemRows):
        return sum(1 for kind in items.types() if kind == "stone")
    return sum(1 for item in items.values() if item.type == "stone")
