"""An audit's replay with its per-record facts kept out of memory (issue 11: memory proportional to the live items,
not to the file; docs/adr/0022-spilled-record-facts.md).

A replay needs a few facts about every record long after it was applied: its signers and time (a statement may
name it: :func:`ledger._kinds._check_statement`), the items it is a record of (a link to it that is not an
item's head forks that item's chain: ``chain.fork``; a policy reads them per position), and the position of the
first record with its body (``record.duplicate``). :class:`SpilledState` keeps them in a :class:`Spill`: a private
temporary SQLite database (deleted when closed), written every :data:`BATCH` records, the batch being gathered held
in memory. A :class:`Bloom` filter of the body hashes answers the question every record asks — is this body new? —
without a read; a Bloom filter has false positives, never false negatives, so a "maybe" is settled by the
database: it costs a read, never a finding.

Tables (a position in a keyed table is 8 bytes, big-endian, so that a batch is written by one statement):

    records(hash, position)  every record: record hash -> its position (a record met twice: two rows)
    bodies(hash, position)   body hash -> the position of the first record with that body
    facts(first, data)       one row per batch: the facts of positions first, first + 1, ... (:func:`_pack`)

A record's facts: its ``time_ms`` (8 bytes, big-endian), its parties (sorted, NUL-joined), 0x01, then the ids of the
items it was applied to, each NUL-terminated (party and item ids are ASCII identifiers, :data:`ledger._text.ID_RE`:
neither byte occurs in them); empty for a position with no record.
"""

from __future__ import annotations

import bisect
import functools
import heapq
import itertools
import sqlite3
import zlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ParamSpec, Protocol, TypeVar

from .errors import StorageError

if TYPE_CHECKING:
    from ._state_file import StateFile

__all__ = ["BATCH", "BLOOM_BITS", "Blob", "Bloom", "Spill", "bloom_bits", "entry_fields", "first_at", "scratch_db",
           "scratch_errors"]

#: Records gathered in memory before they are written (a few MB): fewer, larger sorted writes touch fewer pages.
BATCH = 32768
#: Most bits of the body-hash filter (16 MiB; :func:`bloom_bits`): two bits a body; a false positive costs one read.
BLOOM_BITS = 1 << 27
_BLOOM_LEAST = 1 << 16
_CACHE_KIB = 8192  # SQLite's page cache
_WIDTH = 8  # bytes of a position in the keyed tables
_OFFSET = 4  # bytes of an offset in a facts row
_PAIR = 32 + _WIDTH  # bytes of a (hash, position) pair
_RUN = _PAIR << 14  # bytes of pairs read or written at a time (640 KiB)
_ROW_HEAD = 8 + _OFFSET  # a saved facts row's first position and length


class Blob(Protocol):
    """Bytes read by slices: ``bytes``, or a section of a saved state read from its file when sliced
    (:class:`ledger._state_file.Section`)."""

    def __len__(self) -> int: ...

    def __getitem__(self, span: slice, /) -> bytes: ...


class Bloom:
    """A Bloom filter of SHA-256 digests over ``bits`` bits (a power of two up to 2^32), with two bits per digest
    taken from its first 8 bytes (a digest is uniform: no further hashing). ``h in filter``: False means never
    added; True, probably added (with n digests added, wrongly about (1 - e^(-2n/bits))^2 of the time)."""

    def __init__(self, bits: int) -> None:
        if bits < 8 or bits & (bits - 1) or bits > 1 << 32:
            raise ValueError(f"bits: got {bits}, want a power of two from 8 to 2^32")
        self.bits = bytearray(bits // 8)  # bit i: byte i // 8, bit i % 8
        self._mask = bits - 1

    def add(self, digest: bytes) -> None:
        x, mask, bits = int.from_bytes(digest[:8], "little"), self._mask, self.bits
        a, b = x & mask, (x >> 32) & mask
        bits[a >> 3] |= 1 << (a & 7)
        bits[b >> 3] |= 1 << (b & 7)

    def __contains__(self, digest: object) -> bool:
        if not isinstance(digest, bytes):
            return False
        x, mask, bits = int.from_bytes(digest[:8], "little"), self._mask, self.bits
        a, b = x & mask, (x >> 32) & mask
        return bool(bits[a >> 3] >> (a & 7) & 1 and bits[b >> 3] >> (b & 7) & 1)


_SCHEMA = (
    "CREATE TABLE records (hash BLOB NOT NULL, position BLOB NOT NULL, PRIMARY KEY (hash, position)) WITHOUT ROWID",
    "CREATE TABLE bodies (hash BLOB PRIMARY KEY, position BLOB NOT NULL) WITHOUT ROWID",
    "CREATE TABLE facts (first INTEGER PRIMARY KEY, data BLOB NOT NULL)",
)
#: Rows of a keyed table from one blob of (32-byte hash, position) pairs, ?2 of them (one statement, no row-by-row
#: binding); a body already kept keeps its first position.
_PUT_KEYED = ("WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < ?2) INSERT OR IGNORE "
              f"INTO {{}} SELECT substr(?1, i * {_PAIR} + 1, 32), substr(?1, i * {_PAIR} + 33, {_WIDTH}) FROM n")


def scratch_db(cache_kib: int = _CACHE_KIB) -> sqlite3.Connection:
    """A private temporary SQLite database (on disk, deleted when closed), set for scratch data: no journal, no
    sync, one connection, a page cache of ``cache_kib`` KiB; autocommit unless a ``BEGIN`` is executed."""
    db = sqlite3.connect("", isolation_level=None)  # "": private, on disk, deleted when closed
    for pragma in ("journal_mode = OFF", "synchronous = OFF", "locking_mode = EXCLUSIVE",
                   f"cache_size = -{cache_kib}"):
        db.execute(f"PRAGMA {pragma}")
    return db


_P = ParamSpec("_P")
_R = TypeVar("_R")


def scratch_errors(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """``fn`` with an error of a scratch database (:func:`scratch_db`: a full or unwritable temporary folder) raised
    as StorageError ``store.io``, not as :mod:`sqlite3`'s own exception (for a function whose only SQLite
    databases are scratch ones: an audit)."""
    @functools.wraps(fn)
    def wrapped(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        try:
            return fn(*args, **kwargs)
        except sqlite3.Error as exc:
            raise StorageError(f"the audit's temporary database: {exc} (a full or unwritable temporary folder? SQLite "
                               "writes it in $TMPDIR, else /var/tmp or /tmp)", code="store.io") from exc
    return wrapped


def _pack(entries: list[bytes]) -> bytes:
    """A facts row: the number of entries and each entry's end offset (4 bytes each, big-endian), then the entries."""
    ends, end = [], 0
    for entry in entries:
        end += len(entry)
        ends.append(end.to_bytes(_OFFSET, "big"))
    return len(entries).to_bytes(_OFFSET, "big") + b"".join(ends) + b"".join(entries)


def _unpack(data: Blob, index: int) -> bytes:
    """Entry ``index`` of a facts row (b"" past its end). Raises ValueError for a row that is not :func:`_pack`'s."""
    count = int.from_bytes(data[:_OFFSET], "big")
    if index >= count:
        return b""
    body = (count + 1) * _OFFSET
    start = 0 if index == 0 else int.from_bytes(data[index * _OFFSET:(index + 1) * _OFFSET], "big")
    end = int.from_bytes(data[(index + 1) * _OFFSET:(index + 2) * _OFFSET], "big")
    if not start <= end <= len(data) - body:
        raise ValueError("a facts row of the spill is not of its shape")
    return data[body + start:body + end]


def bloom_bits(file_bytes: int) -> int:
    """Bits of the body-hash filter for a ledger file of ``file_bytes`` bytes: one to two bits per 16 bytes of the
    file, a power of two from 2^16 to :data:`BLOOM_BITS` (2^27 from a 2 GiB file on). With records of ~500 bytes
    that is 31 to 62 bits a body: a false positive for 1 body in 250 to 1,000 (1 in 55 at the cap, 10^7 records)."""
    bits = _BLOOM_LEAST
    while bits < file_bytes // 16 and bits < BLOOM_BITS:
        bits *= 2
    return min(bits, BLOOM_BITS)


class Spill:
    """The per-record facts of a replay (module docstring) on a private temporary SQLite database. A record's
    facts are gathered with :meth:`note` and :meth:`chain`, held until :data:`BATCH` records are, then written;
    every read looks at the held ones too. ``filter_bits``: the body filter's size (:func:`bloom_bits` of the
    ledger file's size). Not thread-safe; one process."""

    def __init__(self, filter_bits: int = BLOOM_BITS) -> None:
        self._db = scratch_db(_CACHE_KIB)
        for statement in _SCHEMA:
            self._db.execute(statement)
        # held (immutable values: nothing here for the garbage collector to walk)
        self._heads: dict[int, bytes] = {}  # position -> time and parties, 0x01 (its entry's head)
        self._items: dict[int, bytes] = {}  # position -> the items applied there (its entry's tail)
        self._held: dict[bytes, int] = {}  # record hash -> its position
        self._again: dict[bytes, list[int]] = {}  # record hash -> its positions after the first (a record met twice)
        self._pairs: list[bytes] = []  # record hash || position, for the records table
        self._bodies: dict[bytes, int] = {}  # held: body hash -> first position
        self._seen = Bloom(min(filter_bits, BLOOM_BITS))  # every body hash, written or held
        self._asked: tuple[object, int | None] = (None, None)  # the last body hash looked for, and its answer
        self._row: tuple[int, bytes] = (-1, b"\x00" * _OFFSET)  # the last facts row read: (first, data)
        self._base: dict[str, Any] = {"records": b"", "bodies": b"", "firsts": [], "datas": []}  # :meth:`load`

    # --- gathering --------------------------------------------------------------------------------------------

    def note(self, key: bytes, position: int, time_ms: int, parties: bytes) -> None:
        """Keep the facts of the record ``key`` at ``position`` (after every position noted before): its time
        and its parties (sorted, NUL-joined)."""
        self._heads[position] = time_ms.to_bytes(8, "big") + parties + b"\x01"
        if self._held.setdefault(key, position) != position:
            self._again.setdefault(key, []).append(position)
        self._pairs.append(key + position.to_bytes(_WIDTH, "big"))

    def chain(self, position: int, item: str) -> None:
        """Note that the record at ``position`` (the last one noted) was applied to ``item``."""
        self._items[position] = self._items.get(position, b"") + item.encode("ascii") + b"\x00"

    # --- record hash -> time, parties, items ------------------------------------------------------------------

    def record(self, key: bytes) -> tuple[int, bytes, bytes] | None:
        """(time_ms, parties, items) of the record ``key``: the items of every record with that hash (a record met
        twice, its second copy possibly applied to other items), None if none was noted. Reads the database: asked
        for a statement's subject and a link that is not an item's head only, not for every record."""
        rows = self._db.execute("SELECT position FROM records WHERE hash = ?", (key,)).fetchall()
        found = [self.entry(p) for p in _find(self._base["records"], key)]
        found += [self.entry(int.from_bytes(p, "big")) for p, in rows]
        held = self._held.get(key)
        if held is not None:
            found += [self.entry(p) for p in (held, *self._again.get(key, ()))]
        found = [f for f in found if f]
        if not found:
            return None
        time_ms, parties, _ = entry_fields(found[0])
        return time_ms, parties, b"".join(entry_fields(f)[2] for f in found)

    def entry(self, position: int) -> bytes:
        """The facts of ``position`` as stored (module docstring; b"": no record there)."""
        head = self._heads.get(position)
        if head is not None:
            return head + self._items.get(position, b"")
        first, data = self._row
        if not first <= position < first + int.from_bytes(data[:_OFFSET], "big"):
            row = self._db.execute("SELECT first, data FROM facts WHERE first <= ? ORDER BY first DESC LIMIT 1",
                                   (position,)).fetchone()
            if row is None:
                firsts = self._base["firsts"]
                at = bisect.bisect_right(firsts, position) - 1
                if at < 0:
                    return b""
                row = firsts[at], self._base["datas"][at]
            first, data = self._row = row
        return _unpack(data, position - first)

    # --- body hash -> first position --------------------------------------------------------------------------

    def first_body(self, key: bytes) -> int | None:
        """The position of the first record with body hash ``key`` (None: none yet)."""
        if key is self._asked[0]:  # a record's body is looked for (its check), then kept (applied)
            return self._asked[1]
        first = self._bodies.get(key)
        if first is None and key in self._seen:
            row = self._db.execute("SELECT position FROM bodies WHERE hash = ?", (key,)).fetchone()
            first = int.from_bytes(row[0], "big") if row else next(iter(_find(self._base["bodies"], key)), None)
        self._asked = (key, first)
        return first

    def add_body(self, key: bytes, position: int) -> None:
        """Keep ``position`` for body hash ``key`` unless a position is kept for it."""
        if self.first_body(key) is None:
            self._bodies[key] = position
            self._seen.add(key)
            self._asked = (key, position)

    # --- writing, saving, closing -----------------------------------------------------------------------------

    def settle(self) -> None:
        """Write the held facts if :data:`BATCH` records are held (call between records)."""
        if len(self._heads) >= BATCH:
            self.flush()

    def flush(self) -> None:
        """Write every held fact: each keyed table in one statement, in key order (neighbouring keys share pages),
        and the facts in one row."""
        if not self._heads:
            return
        db, first, items = self._db, min(self._heads), self._items
        entries = [b""] * (max(self._heads) - first + 1)
        for position, head in self._heads.items():
            entries[position - first] = head + items.get(position, b"")
        records, bodies = self._pairs, [k + p.to_bytes(_WIDTH, "big") for k, p in self._bodies.items()]
        records.sort()
        bodies.sort()
        db.execute("BEGIN")
        for table, pairs in (("records", records), ("bodies", bodies)):
            if pairs:
                db.execute(_PUT_KEYED.format(table), (b"".join(pairs), len(pairs)))
        db.execute("INSERT INTO facts VALUES (?, ?)", (first, _pack(entries)))
        db.execute("COMMIT")
        self._heads, self._items, self._held, self._again, self._bodies, self._pairs = {}, {}, {}, {}, {}, []

    def sections(self) -> list[tuple[str, Iterator[bytes]]]:
        """Every row, for :meth:`load`, as sections of a state file (:mod:`ledger._state_file`), each made a piece
        at a time as it is written (memory does not follow the rows): ``spill.records`` and ``spill.bodies``, each
        keyed table's (hash, position) pairs in key order; ``spill.facts``, the facts rows in order, each as its
        first position (8 bytes), its length (4 bytes) and the row; ``spill.filter``, the body filter's bits
        (zlib)."""
        self.flush()
        return [(f"spill.{table}", self._keyed(table)) for table in ("records", "bodies")] + [
            ("spill.facts", self._facts()), ("spill.filter", iter([zlib.compress(self._seen.bits, 1)]))]

    def _keyed(self, table: str) -> Iterator[bytes]:
        written = (h + p for h, p in self._db.execute(f"SELECT hash, position FROM {table} ORDER BY 1, 2"))
        merged = heapq.merge(_pairs(self._base[table]), written) if self._base[table] else written
        while run := list(itertools.islice(merged, _RUN // _PAIR)):
            yield b"".join(run)

    def _facts(self) -> Iterator[bytes]:
        for first, data in zip(self._base["firsts"], self._base["datas"], strict=True):
            yield _row_head(first, data)
            yield from _runs(data)
        for first, data in self._db.execute("SELECT first, data FROM facts ORDER BY first"):
            yield _row_head(first, data) + data

    def load(self, file: StateFile) -> None:
        """Go on from the sections of :meth:`sections` in ``file`` (this spill new): they are read where they are,
        on disk, when asked (a binary search in the keyed tables, a facts row by position), never written again.
        Raises ValueError (or KeyError, zlib.error, InputError ``audit.state_damaged``) for sections not of those
        shapes: (32-byte hash, 8-byte position) pairs, facts rows as :func:`_pack` makes them at increasing firsts,
        a filter of a power of two bits up to :data:`BLOOM_BITS` (kept, though the file grew, unless it is under a
        quarter of this spill's: then made again from the bodies, at this spill's size)."""
        records, bodies, facts = (file.section(f"spill.{name}") for name in ("records", "bodies", "facts"))
        _check(len(records) % _PAIR == 0 and len(bodies) % _PAIR == 0)
        firsts: list[int] = []
        datas: list[Blob] = []
        at = 0
        while at < len(facts):
            head = facts[at:at + _ROW_HEAD]
            first, length, at = int.from_bytes(head[:8], "big"), int.from_bytes(head[8:], "big"), at + _ROW_HEAD
            _check(len(head) == _ROW_HEAD and (not firsts or first > firsts[-1]) and at + length <= len(facts))
            firsts.append(first)
            datas.append(facts.part(at, length))
            _check(_whole(datas[-1]))
            at += length
        bits = zlib.decompressobj().decompress(file.section("spill.filter")[:], BLOOM_BITS // 8 + 1)
        size = len(bits) * 8
        if 8 <= size <= BLOOM_BITS and not size & (size - 1) and size * 4 >= len(self._seen.bits) * 8:
            self._seen = Bloom(size)
            self._seen.bits[:] = bits
        else:
            for pair in _pairs(bodies):
                self._seen.add(pair)
        self._base = {"records": records, "bodies": bodies, "firsts": firsts, "datas": datas}

    def hashes(self, table: str) -> Iterator[bytes]:
        """Every hash of ``table`` (``records`` or ``bodies``), once each, in order."""
        self.flush()
        written = (h for h, in self._db.execute(f"SELECT DISTINCT hash FROM {table} ORDER BY hash"))
        return (h for h, _ in itertools.groupby(heapq.merge((p[:32] for p in _pairs(self._base[table])), written)))

    def positions(self) -> Iterator[int]:
        """Every position with a record, in order."""
        self.flush()
        written = self._db.execute("SELECT first, data FROM facts ORDER BY first").fetchall()
        for first, data in [*zip(self._base["firsts"], self._base["datas"], strict=True), *written]:
            row = data[:]  # a saved row read once, not once per entry
            yield from (first + i for i in range(int.from_bytes(row[:_OFFSET], "big")) if _unpack(row, i))

    def close(self) -> None:
        """Close and delete the database; the spill is not usable after."""
        self._db.close()
        self._heads, self._items, self._held, self._again, self._bodies, self._pairs = {}, {}, {}, {}, {}, []


def _whole(data: Blob) -> bool:
    """Whether the facts row ``data`` has the length its header says (each entry's offsets are checked when it is
    read: :func:`_unpack`)."""
    count = int.from_bytes(data[:_OFFSET], "big")
    body = (count + 1) * _OFFSET
    return len(data) >= body and int.from_bytes(data[body - _OFFSET:body] if count else b"", "big") == len(data) - body


def _row_head(first: int, data: Blob) -> bytes:
    return first.to_bytes(8, "big") + len(data).to_bytes(_OFFSET, "big")


def _runs(blob: Blob) -> Iterator[bytes]:
    """The bytes of ``blob``, :data:`_RUN` at a time."""
    return (blob[at:at + _RUN] for at in range(0, len(blob), _RUN))


def _pairs(blob: Blob) -> Iterator[bytes]:
    """The (hash, position) pairs of a keyed table's blob (:meth:`Spill.sections`), read a run at a time."""
    for run in _runs(blob):
        yield from (run[at:at + _PAIR] for at in range(0, len(run), _PAIR))


def first_at(blob: Blob, key: bytes, width: int) -> int:
    """The index of the first entry of ``blob`` (entries of ``width`` bytes, each opening with a 32-byte hash, in
    order) whose hash is not below ``key``: a binary search, a read per step of a saved section."""
    low, high = 0, len(blob) // width
    while low < high:
        mid = (low + high) // 2
        if blob[mid * width:mid * width + 32] < key:
            low = mid + 1
        else:
            high = mid
    return low


def _find(blob: Blob, key: bytes) -> list[int]:
    """The positions paired with hash ``key`` in a keyed table's blob (its pairs in order)."""
    low, found = first_at(blob, key, _PAIR), []
    while low * _PAIR < len(blob) and blob[low * _PAIR:low * _PAIR + 32] == key:
        found.append(int.from_bytes(blob[low * _PAIR + 32:(low + 1) * _PAIR], "big"))
        low += 1
    return found


def entry_fields(entry: bytes) -> tuple[int, bytes, bytes]:
    """(time_ms, parties, items) of a non-empty facts entry."""
    parties, _, items = entry[8:].partition(b"\x01")
    return int.from_bytes(entry[:8], "big"), parties, items


def _check(condition: bool) -> None:
    if not condition:
        raise ValueError("a row of the spill is not of its table's shape")
