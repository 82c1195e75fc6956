"""Per record hash, the items it is a record of, kept on disk: the map :class:`ledger.heads.ItemHeads` reads to
count a statement (``attested``, ``corrected``) as a record of its subject's items, for an audit that checks
checkpoint lines. In memory it is a row per record of the log; here it is a table of a private temporary SQLite
database (:func:`ledger.spill.scratch_db`, a 2 MiB page cache), written every :data:`BATCH` records in key order,
so that the audit's memory follows the items, not the records (issue 11; docs/adr/0022-spilled-record-facts.md).
A statement's subject costs one read; other records, none. About 4 µs a record at 10^6 records.

Item ids are identifiers (:data:`ledger._text.ID_RE`): a NUL never occurs in one, so a row's items are stored
NUL-joined. An audit state saves the rows (:meth:`SpilledOf.sections`); a resumed audit reads them where they are
(:meth:`SpilledOf.load`: a binary search in the saved keys), and writes only the new ones.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator, MutableMapping
from typing import TYPE_CHECKING

from .hashing import Digest
from .spill import Blob, first_at, scratch_db

if TYPE_CHECKING:
    from ._state_file import StateFile

__all__ = ["BATCH", "SpilledOf"]

#: Rows held in memory before they are written (about 2 MB).
BATCH = 8192
_CACHE_KIB = 2048
_GONE = b"\xff"  # the items of a row deleted after a resume: its saved row is no longer there (never an item id)
_KEY = 32 + 8  # a saved key: the record hash, then the end of its items in the saved values (8 bytes, big-endian)
_RUN = 1 << 14  # saved keys read at a time


class SpilledOf(MutableMapping[Digest, tuple[str, ...]]):
    """A mapping record hash -> item ids (a tuple, sorted by the caller) on a temporary database; writes are held
    until :data:`BATCH` are, every read looks at the held ones too. :meth:`close` deletes the
    database. Not thread-safe; one process."""

    def __init__(self) -> None:
        self._db = scratch_db(_CACHE_KIB)
        self._db.execute("CREATE TABLE item_of (hash BLOB PRIMARY KEY, items BLOB NOT NULL) WITHOUT ROWID")
        self._held: dict[bytes, tuple[str, ...]] = {}
        self._keys: Blob = b""  # saved rows (:meth:`load`): their keys, in order, then their items
        self._values: Blob = b""

    def __getitem__(self, key: Digest) -> tuple[str, ...]:
        held = self._held.get(key)
        if held is not None:
            return held
        row = self._db.execute("SELECT items FROM item_of WHERE hash = ?", (bytes(key),)).fetchone()
        raw = row[0] if row is not None else self._saved(bytes(key))
        if raw is None or raw == _GONE:
            raise KeyError(key)
        return _items(raw)

    def __setitem__(self, key: Digest, items: tuple[str, ...]) -> None:
        self._held[bytes(key)] = items
        if len(self._held) >= BATCH:
            self.flush()

    def __delitem__(self, key: Digest) -> None:
        if key not in self:
            raise KeyError(key)
        self.flush()
        if self._keys:  # a saved row may be under it: hidden by a deleted one
            self._db.execute("INSERT OR REPLACE INTO item_of VALUES (?, ?)", (bytes(key), _GONE))
        else:
            self._db.execute("DELETE FROM item_of WHERE hash = ?", (bytes(key),))

    def __iter__(self) -> Iterator[Digest]:
        return (Digest(key) for key, _ in self._rows())

    def __len__(self) -> int:
        return sum(1 for _ in self._rows())

    def _saved(self, key: bytes) -> bytes | None:
        """The saved items of ``key`` (a binary search in the saved keys), None if none."""
        keys = self._keys
        low = first_at(keys, key, _KEY)
        entry = keys[low * _KEY:(low + 1) * _KEY]
        if entry[:32] != key:
            return None
        start = int.from_bytes(keys[low * _KEY - 8:low * _KEY], "big") if low else 0
        return self._values[start:int.from_bytes(entry[32:], "big")]

    def _rows(self) -> Iterator[tuple[bytes, bytes]]:
        """Every (key, NUL-joined items) in key order, the saved rows and the written ones (these first on a tie:
        a row written after a resume replaces the saved one), deleted ones left out."""
        self.flush()
        rows = self._db.execute("SELECT hash, items FROM item_of ORDER BY hash")
        if not self._keys:  # nothing saved: no merge, no deleted row
            yield from rows
            return
        merged = heapq.merge(((k, 0, v) for k, v in rows), ((k, 1, v) for k, v in self._saved_rows()))
        for key, group in itertools.groupby(merged, key=lambda row: row[0]):
            value = next(group)[2]
            if value != _GONE:
                yield key, value

    def _saved_rows(self) -> Iterator[tuple[bytes, bytes]]:
        """The saved rows in key order, a run of keys (and their items) read at a time."""
        start = 0
        for at in range(0, len(self._keys), _RUN * _KEY):
            run = self._keys[at:at + _RUN * _KEY]
            ends = [int.from_bytes(run[i + 32:i + _KEY], "big") for i in range(0, len(run), _KEY)]
            values, begin = self._values[start:ends[-1]], start
            for i, end in enumerate(ends):
                yield run[i * _KEY:i * _KEY + 32], values[start - begin:end - begin]
                start = end

    def sections(self) -> list[tuple[str, Iterator[bytes]]]:
        """Every row, for :meth:`load`, as two sections of a state file (:mod:`ledger._state_file`), made a piece
        at a time: ``of.keys``, each record hash in order with the end of its items in ``of.values`` (8 bytes,
        big-endian), and ``of.values``, the rows' NUL-joined items one after the other."""
        def keys() -> Iterator[bytes]:
            end, rows = 0, self._rows()
            while run := list(itertools.islice(rows, _RUN)):
                pieces = []
                for key, value in run:
                    end += len(value)
                    pieces.append(key + end.to_bytes(8, "big"))
                yield b"".join(pieces)

        def values() -> Iterator[bytes]:
            rows = self._rows()
            while run := list(itertools.islice(rows, _RUN)):
                yield b"".join(value for _, value in run)

        return [("of.keys", keys()), ("of.values", values())]

    def load(self, file: StateFile) -> None:
        """Go on from the rows of :meth:`sections` in ``file`` (this map new), read where they are. Raises
        ValueError (or KeyError) for sections not of those shapes."""
        keys, values = file.section("of.keys"), file.section("of.values")
        if len(keys) % _KEY or (len(keys) and int.from_bytes(keys[len(keys) - 8:len(keys)], "big") != len(values)):
            raise ValueError("the saved record -> items rows are not of their shape")
        self._keys, self._values = keys, values

    def flush(self) -> None:
        """Write the held rows, in key order (neighbouring keys share pages), in one transaction."""
        if not self._held:
            return
        rows = sorted((key, "\x00".join(items).encode("utf-8")) for key, items in self._held.items())
        self._db.execute("BEGIN")
        self._db.executemany("INSERT OR REPLACE INTO item_of VALUES (?, ?)", rows)
        self._db.execute("COMMIT")
        self._held = {}

    def close(self) -> None:
        """Delete the database (the mapping is unusable after)."""
        self._db.close()


def _items(raw: bytes) -> tuple[str, ...]:
    return tuple(raw.decode("utf-8").split("\x00")) if raw else ()
