"""A mapping kept in one SQLite table: what the replay's dictionaries become in the persistent index.

:class:`StoredMap` reads rows on demand and keeps what it read or wrote in memory until :meth:`StoredMap.flush`
writes the changed rows (inside the caller's transaction). Values the caller changes in place (an
:class:`~ledger.item.Item` after a transfer) are written too: at flush every row read is re-encoded and written
when its bytes differ. Rows carry a checksum of table, key and value (CRC-32), checked on every read: a
damaged row raises :class:`IndexDamaged` (the index is then rebuilt from the log, never trusted).

Keys are stored as bytes whose order is the order the checkpoint's trees need (item ids as UTF-8, identities as
their sort key), so :meth:`StoredMap.rows` walks a table in tree order.
"""

from __future__ import annotations

import hashlib
import itertools
import sqlite3
import zlib
from collections.abc import Callable, ItemsView, Iterable, Iterator, MutableMapping, MutableSet
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from ..errors import StorageError
from ..spill import Bloom
from .sql import Db, table, upsert

__all__ = ["ROW_FAULTS", "Codec", "IndexDamaged", "StoredMap", "StoredSet", "Written", "create_table", "is_row",
           "row_check", "sqlite_errors"]

K = TypeVar("K")
V = TypeVar("V")

_MISSING = object()
_UNKNOWN = object()  # the stored bytes of a key set without reading it
#: Bits of a build's :class:`Written` filter (8 MiB: a build stays under the issue's 300 MB at 10^6 records): two
#: a key; at 10^6 records (~2.2 million keys) about 1 lookup of a key never written in 250 is read all the same.
WRITTEN_BITS = 1 << 26
#: Rows a map keeps in memory across flushes (beyond it, the cache is dropped after a flush).
CACHED = 16384


class IndexDamaged(StorageError):
    """The index does not hold what it wrote (a damaged row or file, or another ledger's index): rebuild it from
    the log. Code ``index.damaged``."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code="index.damaged")


#: What a row value of the wrong shape raises where it is used (a row whose checksum passes but which this library
#: did not write: a checksum is not a signature; an adversarial review found each): the index is then not used.
ROW_FAULTS = (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError)


class Written:
    """The keys written to tables that were empty when this was made (an index built from scratch): a
    :class:`~ledger.spill.Bloom` filter of (table, key) pairs, over :data:`WRITTEN_BITS` bits whatever the number
    of rows. It has false positives, never false negatives: a key it never saw has no row, so looking it up needs
    no read (nor the check of a miss, :meth:`StoredMap._absent`); a "maybe" is read as usual."""

    def __init__(self, bits: int = WRITTEN_BITS) -> None:
        self._bloom = Bloom(bits)

    @staticmethod
    def _digest(table: bytes, key: bytes) -> bytes:
        """A uniform 32-byte digest of the row: a 32-byte key as it is (a record or body hash: the same key in two
        tables is then one entry, a false positive; another key of 32 bytes only spreads worse: more false
        positives, each a read, never a miss), else SHA-256 of table and key."""
        return key if len(key) == 32 else hashlib.sha256(b"%d:%s%s" % (len(table), table, key)).digest()

    def add(self, table: bytes, key: bytes) -> None:
        """Note that row ``key`` of ``table`` (its name, encoded) may exist."""
        self._bloom.add(self._digest(table, key))

    def may_hold(self, table: bytes, key: bytes) -> bool:
        """False if row ``key`` of ``table`` was never written (then it does not exist)."""
        return self._digest(table, key) in self._bloom


@dataclass(frozen=True, slots=True)
class Codec(Generic[K, V]):
    """How a map's keys and values become bytes and back (both directions must round-trip exactly)."""

    key: Callable[[K], bytes]
    unkey: Callable[[bytes], K]
    value: Callable[[V], bytes]
    unvalue: Callable[[bytes], V]


@contextmanager
def sqlite_errors(table: str) -> Iterator[None]:
    """Turn an SQLite error (a malformed file, a failed write) into :class:`IndexDamaged`."""
    try:
        yield
    except sqlite3.Error as exc:
        raise IndexDamaged(f"index table {table}: {exc}") from exc


def row_check(table: str, key: bytes, value: bytes) -> int:
    """The checksum of one row: CRC-32 of table name, key and value, each after its length (a flipped byte, or
    a row moved to another key or table, changes it)."""
    crc = zlib.crc32(b"%d:%s%d:" % (len(table), table.encode(), len(key)))
    return zlib.crc32(value, zlib.crc32(b"%d:" % len(value), zlib.crc32(key, crc)))


def row_checker(table: str) -> Callable[[bytes, bytes], int]:
    """:func:`row_check` of the rows of ``table`` as a function of key and value (the table's part computed
    once)."""
    crc32, head = zlib.crc32, zlib.crc32(b"%d:%s" % (len(table), table.encode()))

    def check(key: bytes, value: bytes) -> int:
        return crc32(value, crc32(b"%d:" % len(value), crc32(key, crc32(b"%d:" % len(key), head))))
    return check


def is_row(key: object, value: object, check: object) -> bool:
    """True if a row read back has the types it was written with (a damaged record header can turn a column's
    type, e.g. into NULL, without SQLite noticing)."""
    return isinstance(key, bytes | str | int) and isinstance(value, bytes) and type(check) is int


def create_table(db: Db, name: str) -> None:
    """Create the key/value table ``name`` if it does not exist."""
    table(db, name, "k BLOB NOT NULL, v BLOB NOT NULL, c INTEGER NOT NULL, PRIMARY KEY (k)")


class StoredMap(MutableMapping[K, V]):
    """A mapping over the table ``table`` of ``db`` (created by :func:`create_table`).

    ``count``: the rows the table holds, kept up to date by every change; None for a map whose length nobody
    asks (keys set once, e.g. by record hash): a new key is then written without looking for an old row first.
    Rows read stay cached across flushes (up to :data:`CACHED` of them); a flush re-encodes only the rows read
    or set since the last one, and passes the key bytes of each row it writes or deletes to :attr:`journal` if
    set. Reads raise :class:`IndexDamaged` on a row whose checksum fails or whose value does not decode.
    Iteration (:meth:`__iter__`, :meth:`rows`) first flushes, then walks the table in key order.
    """

    def __init__(self, db: Db, table: str, codec: Codec[K, V], count: int | None) -> None:
        self._db, self._table, self._codec = db, table, codec
        self._count = count
        self._cache: dict[K, object] = {}
        self._stored: dict[K, object] = {}  # the bytes the table holds for each cached key (None: no row)
        self._touched: set[K] = set()  # read or set since the last flush
        self.journal: Callable[[bytes], None] | None = None
        #: Every key ever written to the table, if it was empty when this was set (see :class:`Written`).
        self.written: Written | None = None
        self._name = table.encode()
        # the key's row, if any, with the two rows on each side of where it sorts (to check a miss: _absent)
        self._find = (f"SELECT 0, k, v, c FROM (SELECT k, v, c FROM {table} WHERE k < ? ORDER BY k DESC LIMIT 2) AS "
                      f"below UNION ALL SELECT 1, k, v, c FROM (SELECT k, v, c FROM {table} WHERE k >= ? ORDER BY k "
                      "LIMIT 3) AS above")
        self._upsert = upsert(table, ["k"], ["v", "c"])
        self._check = row_checker(table)

    def _load(self, key: K) -> object:
        if key in self._cache:
            self._touched.add(key)
            return self._cache[key]
        if self._count == 0:  # an empty table holds no key: nothing to ask, nor to keep
            return _MISSING
        raw = self._codec.key(key)
        value: object = _MISSING
        stored: bytes | None = None
        if not self._may_hold(raw):  # a key never written: no row; kept, unless it is asked once (set once)
            if self._count is None:
                return _MISSING
        else:
            try:
                rows = self._db.execute(self._find, (raw, raw)).fetchall()
            except sqlite3.Error as exc:
                raise IndexDamaged(f"index table {self._table}: {exc}") from exc
            hit = next((r for r in rows if r[0] == 1), None)
            if hit is not None and hit[1] == raw:
                value, stored = self._decode(raw, hit[2], hit[3]), hit[2]
            else:
                self._absent(raw, rows)
        self._stored[key] = stored
        self._cache[key] = value
        self._touched.add(key)
        return value

    def _may_hold(self, raw: bytes) -> bool:
        """False if the table holds no row of key bytes ``raw`` for sure (:attr:`written` never saw it)."""
        return self.written is None or self.written.may_hold(self._name, raw)

    def prefetch(self, keys: Iterable[K]) -> None:
        """Read the rows of ``keys`` not cached yet in one query per 500 keys, and cache them (a key with no row
        as absent), so that looking them up later costs no round trip: for a database server, where each
        lookup is one (:mod:`ledger.pg`). A miss is taken as the query gives it, without the neighbouring rows'
        check of a lookup (:meth:`_absent`, against a damaged SQLite file)."""
        self.send_prefetch(keys)()

    def send_prefetch(self, keys: Iterable[K]) -> Callable[[], None]:
        """Send the queries of :meth:`prefetch` and return the function that takes their rows: several tables'
        queries, sent before any is taken, share one round trip in a database pipeline (:mod:`ledger.pg`)."""
        todo = {self._codec.key(k): k for k in keys if k not in self._cache}
        raws, sent = list(todo), []
        for start in range(0, len(raws), 500):
            part = raws[start:start + 500]
            with sqlite_errors(self._table):
                sent.append((part, self._db.execute(
                    f"SELECT k, v, c FROM {self._table} WHERE k IN ({', '.join('?' * len(part))})", part)))

        def take() -> None:
            for part, cursor in sent:
                with sqlite_errors(self._table):
                    found = {bytes(k): (v, c) for k, v, c in cursor.fetchall()}
                for raw in part:
                    key = todo[raw]
                    if raw in found:
                        value, check = found[raw]
                        self._cache[key], self._stored[key] = self._decode(raw, bytes(value), check), bytes(value)
                    else:
                        self._cache[key], self._stored[key] = _MISSING, None
        return take

    def key_of(self, raw: bytes) -> K:
        """The key whose bytes in the table are ``raw``."""
        return self._codec.unkey(raw)

    def _absent(self, raw: bytes, rows: list[Any]) -> None:
        """Check a lookup's miss of key bytes ``raw``: the ``rows`` on each side of where ``raw`` sorts (two each,
        tagged 0 below and 1 above) must pass their checksums and be strictly ordered around it. A damaged byte
        can make a lookup miss a row that is there: a changed key leaves the row where the old key sorted (its
        checksum, over the key, then fails); a changed cell pointer shows another row in its place (out of order,
        or twice). Raises IndexDamaged, so that a miss never lets the writer accept a duplicate id, body or report
        number."""
        rows = [r for r in rows if r[0] == 0] + [r for r in rows if r[0] == 1][:2]
        keys = [r[1] for r in reversed(rows) if r[0] == 0] + [raw] + [r[1] for r in rows if r[0] == 1]
        damaged = any(not is_row(k, v, c) or row_check(self._table, k, v) != c for _, k, v, c in rows)
        if damaged or any(not isinstance(a, bytes) or not isinstance(b, bytes) or a >= b
                          for a, b in itertools.pairwise(keys)):
            raise IndexDamaged(f"index table {self._table}: the rows around a missing key are damaged")

    def _decode(self, key: bytes, value: bytes, check: int) -> V:
        if not is_row(key, value, check) or row_check(self._table, key, value) != check:
            raise IndexDamaged(f"index table {self._table}: a row fails its checksum")
        try:
            return self._codec.unvalue(value)
        except Exception as exc:  # checksummed bytes that do not decode: written by something else
            raise IndexDamaged(f"index table {self._table}: a row does not decode ({exc})") from exc

    def __getitem__(self, key: K) -> V:
        value = self._load(key)
        if value is _MISSING:
            raise KeyError(key)
        return value  # type: ignore[return-value]

    def __contains__(self, key: object) -> bool:
        return self._load(key) is not _MISSING  # type: ignore[arg-type]

    def get(self, key: K, default: Any = None) -> Any:
        """``self[key]``, or ``default`` if absent (without the KeyError of Mapping's)."""
        value = self._load(key)
        return default if value is _MISSING else value

    def setdefault(self, key: K, default: V) -> V:
        """``self[key]``, first set to ``default`` if absent (one lookup, not the two of MutableMapping's)."""
        value = self._load(key)
        if value is _MISSING:
            self[key] = default
            return default
        return value  # type: ignore[return-value]

    def __setitem__(self, key: K, value: V) -> None:
        if self._count is None and key not in self._cache:
            self._stored[key] = _UNKNOWN  # never read: written whatever the table holds
        elif self._load(key) is _MISSING and self._count is not None:
            self._count += 1
            self._stored.setdefault(key, None)  # a miss is not kept (:meth:`_load`): no row
        self._cache[key] = value
        self._touched.add(key)

    def __delitem__(self, key: K) -> None:
        if self._load(key) is _MISSING:
            raise KeyError(key)
        if self._count is not None:
            self._count -= 1
        self._cache[key] = _MISSING

    def __len__(self) -> int:
        if self._count is None:
            self.flush()
            with sqlite_errors(self._table):
                return int(self._db.execute(f"SELECT count(*) FROM {self._table}").fetchone()[0])
        return self._count

    def __iter__(self) -> Iterator[K]:
        return (key for key, _ in self.rows())

    def items(self) -> ItemsView[K, V]:
        return _Rows(self)

    def rows(self) -> Iterator[tuple[K, V]]:
        """Every (key, value) in key-byte order, each row's checksum checked (after a :meth:`flush`)."""
        self.flush()
        unkey = self._codec.unkey
        with sqlite_errors(self._table):
            for key, value, check in self._db.execute(f"SELECT k, v, c FROM {self._table} ORDER BY k"):
                decoded = self._decode(key, value, check)  # the checksum first, then the key
                try:
                    yield unkey(key), decoded
                except (ValueError, TypeError) as exc:
                    raise IndexDamaged(f"index table {self._table}: a key does not decode ({exc})") from exc

    def flush(self) -> None:
        """Write every row changed since the last flush (in the caller's transaction)."""
        writes, deletes = [], []
        cache, stored, encode, key_bytes_of, check = (self._cache, self._stored, self._codec.value, self._codec.key,
                                                      self._check)
        for key in self._touched:
            value, before = cache[key], stored[key]
            if value is _MISSING:
                if before is not None:
                    deletes.append((key_bytes_of(key),))
                    stored[key] = None
                continue
            raw = encode(value)  # type: ignore[arg-type]
            if raw != before:
                k = key_bytes_of(key)
                writes.append((k, raw, check(k, raw)))
                stored[key] = raw
        if self.written is not None:
            for key_bytes, _, _ in writes:
                self.written.add(self._name, key_bytes)
        if self.journal is not None:
            for (key_bytes,) in deletes:
                self.journal(key_bytes)
            for key_bytes, _, _ in writes:
                self.journal(key_bytes)
        writes.sort()  # in key order: neighbouring rows go to the same page, one after the other
        with sqlite_errors(self._table):
            if deletes:
                self._db.executemany(f"DELETE FROM {self._table} WHERE k = ?", deletes)
            if writes:
                self._db.executemany(self._upsert, writes)
        self._touched.clear()
        if len(self._cache) > CACHED or self._count is None:  # keys set once are seldom read again: not kept
            self._cache.clear()
            self._stored.clear()

    def clear(self) -> None:
        """Delete every row (in the caller's transaction), pending changes included."""
        with sqlite_errors(self._table):
            self._db.execute(f"DELETE FROM {self._table}")
        self.forget()
        if self._count is not None:
            self._count = 0

    def forget(self) -> None:
        """Drop the cached rows without writing them (to abandon changes: then reset the count with
        :meth:`recount`)."""
        self._cache.clear()
        self._stored.clear()
        self._touched.clear()

    def recount(self, count: int | None) -> None:
        """Set the row count (after abandoning changes)."""
        self._count = count


class _Rows(ItemsView[K, V]):
    """A map's items read in one walk of its table (never a lookup per key, which a damaged interior page of
    the table could send astray)."""

    _mapping: StoredMap[K, V]

    def __iter__(self) -> Iterator[tuple[K, V]]:
        return self._mapping.rows()


class StoredSet(MutableSet[K]):
    """A set of keys over a :class:`StoredMap` with empty values."""

    def __init__(self, rows: StoredMap[K, bytes]) -> None:
        self._rows = rows

    def __contains__(self, key: object) -> bool:
        return key in self._rows

    def __iter__(self) -> Iterator[K]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, value: K) -> None:
        self._rows[value] = b""

    def discard(self, value: K) -> None:
        if value in self._rows:
            del self._rows[value]
