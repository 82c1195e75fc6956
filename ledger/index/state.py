"""The replay's state kept in the index: every dictionary of the custody replay (:class:`~ledger.custody
.CustodyState`), of the identity index (:class:`~ledger.identity.IdentityIndex`) and of the item heads
(:class:`~ledger.heads.ItemHeads`) as a :class:`~ledger.index.maps.StoredMap`, so that opening a ledger reads
nothing it does not need and checking a new record reads only the rows it touches.

The same classes run the same code over these maps as over plain dictionaries: what the index holds is by
construction what a replay of the log holds (a test rebuilds and compares). Values are plain msgpack
(:func:`ledger._codec.pack_local`), decoded after the row's checksum is checked (:mod:`ledger.index.maps`) by
msgpack's decoder, which caps every length by the bytes given: a row written by someone else (a checksum is not a
signature) fails to decode or gives a value of the wrong shape, never a container larger than the row. Never
``marshal``: its decoder allocates whatever a 5-byte value claims. The encoding is private to the index
(``SCHEMA`` in :mod:`ledger.index.db` changes with it).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Any

from .._codec import pack_local, unpack_local
from ..custody import CustodyState
from ..errors import DecodeError
from ..hashing import Digest
from ..heads import ItemHeads
from ..identity import Claim, IdentityIndex, Standing
from ..item import Item
from .maps import Codec, StoredMap, StoredSet, create_table
from .sql import Db

__all__ = ["TABLES", "RecordRows", "attach", "flush", "forget", "increasing", "track"]


def _text(value: str) -> bytes:
    return value.encode("utf-8")


def _untext(raw: bytes) -> str:
    return raw.decode("utf-8")


def _identity(value: tuple[str, str]) -> bytes:
    return value[0].encode("utf-8") + b"\x00" + value[1].encode("utf-8")  # = ledger.identity.sort_key


def _unidentity(raw: bytes) -> tuple[str, str]:
    kind, _, key = raw.partition(b"\x00")
    return kind.decode("utf-8"), key.decode("utf-8")


_m = pack_local  # equal values give equal bytes (a tuple and a list alike: both are arrays)


#: The longest value a row is decoded from: an item's row grows ~37 bytes a record of it (a position and a record
#: hash), so this is ~100,000 records of one item. Decoding builds up to ~75 bytes of objects per byte (a 1-byte
#: empty array is a 56-byte list), so a forged row costs at most ~300 MB before it fails (an adversarial review:
#: a 10 MB row took 767 MB).
MAX_VALUE = 4 << 20


def _unplain(raw: bytes) -> Any:
    """The value of :func:`_m`'s bytes (arrays as lists). Raises DecodeError (``codec.too_large`` over
    :data:`MAX_VALUE` bytes)."""
    if len(raw) > MAX_VALUE:
        raise DecodeError(f"an index row value of {len(raw)} bytes, over the {MAX_VALUE} this reads",
                          code="codec.too_large")
    return unpack_local(raw)


def increasing(at: object) -> bool:
    """True if ``at``, a head_positions row, is a list of strictly increasing record positions (a row of another
    shape passes its checksum if someone else wrote it)."""
    return type(at) is list and all(type(p) is int for p in at) and all(a < b for a, b in itertools.pairwise(at))


def _item(item: Item) -> bytes:
    return _m((item.id, item.type, item.mass_mct, item.holder, item.owner, item.nature, item.origin,
               bytes(item.head), item.head_time_ms, item.country, item.state, item.article, item.transit,
               item.report, item.inscription, item.graded_mct, item.contents, item.history,
               b"".join(sorted(item.hashes))))


_OPTIONAL_TEXT = (str, type(None))
#: The type of each field of an item row, in :func:`_item`'s order (a row of another shape is refused: ValueError).
_ITEM_FIELDS: tuple[type | tuple[type, ...], ...] = (
    str, str, int, str, str, str, dict, bytes, int, str, str, _OPTIONAL_TEXT, (list, type(None)), _OPTIONAL_TEXT,
    _OPTIONAL_TEXT, (int, type(None)), list, list, bytes)


def _unitem(raw: bytes) -> Item:
    fields = _unplain(raw)
    if type(fields) is not list or len(fields) != len(_ITEM_FIELDS) \
            or not all(isinstance(v, t) for v, t in zip(fields, _ITEM_FIELDS, strict=True)):
        raise ValueError("an item row of another shape")
    (id_, type_, mass, holder, owner, nature, origin, head, head_time, country, state, article, transit, report,
     inscription, graded, contents, history, hashes) = fields
    if not all(type(k) is str and type(v) is int for k, v in origin.items()) or not all(
            type(v) is str for v in (*(transit or ()), *contents)) or not all(type(p) is int for p in history) \
            or (transit is not None and len(transit) != 4) or len(hashes) % 32:
        raise ValueError("an item row of another shape")
    return Item(id=id_, type=type_, mass_mct=mass, holder=holder, owner=owner, nature=nature, origin=origin,
                head=Digest(head), head_time_ms=head_time, country=country, state=state, article=article,
                transit=None if transit is None else tuple(transit), report=report, inscription=inscription,
                graded_mct=graded, contents=tuple(contents), history=history,
                hashes={Digest(hashes[i:i + 32]) for i in range(0, len(hashes), 32)})


def _claims(claims: list[Claim]) -> bytes:
    return _m([(c.position, c.item, c.until) for c in claims])


def _unclaims(raw: bytes) -> list[Claim]:
    return [Claim(p, i, u) for p, i, u in _unplain(raw)]


def _standing(value: Standing) -> bytes:
    return _m((bytes(value.head), {k: (key, slots) for k, (key, slots) in value.claims.items()}))


def _unstanding(raw: bytes) -> Standing:
    head, claims = _unplain(raw)
    return Standing(Digest(head), {k: (key, slots) for k, (key, slots) in claims.items()})


_Pair = tuple[Callable[[Any], bytes], Callable[[bytes], Any]]
_BY_TEXT: _Pair = (_text, _untext)
_BY_HASH: _Pair = (bytes, Digest)
_BY_IDENTITY: _Pair = (_identity, _unidentity)
_PLAIN: _Pair = (_m, _unplain)


def _record(value: tuple[frozenset[str] | None, int | None, tuple[str, ...] | None]) -> bytes:
    signers, time_ms, of = value
    return _m((None if signers is None else sorted(signers), time_ms, None if of is None else list(of)))


def _unrecord(raw: bytes) -> tuple[frozenset[str] | None, int | None, tuple[str, ...] | None]:
    signers, time_ms, of = _unplain(raw)
    if not (_texts_or_none(signers) and (time_ms is None or type(time_ms) is int) and _texts_or_none(of)):
        raise ValueError("a records row of another shape")  # e.g. items that are not ids: used, they would raise
    return None if signers is None else frozenset(signers), time_ms, None if of is None else tuple(of)


def _texts_or_none(value: object) -> bool:
    return value is None or (type(value) is list and all(type(v) is str for v in value))


#: table -> (key codec, value codec): the index's copy of every dictionary of the replay. ``records`` holds, per
#: record hash, the three dictionaries keyed by it (:class:`RecordRows`).
TABLES: dict[str, tuple[_Pair, _Pair]] = {
    "items": (_BY_TEXT, (_item, _unitem)),
    "records": (_BY_HASH, (_record, _unrecord)),
    "bodies": (_BY_HASH, _PLAIN),
    "id_claims": (_BY_IDENTITY, (_claims, _unclaims)),
    "id_holder": (_BY_IDENTITY, _PLAIN),
    "id_standing": (_BY_TEXT, (_standing, _unstanding)),
    "id_frozen": (_BY_TEXT, (bytes, bytes)),
    "head_positions": (_BY_TEXT, _PLAIN),
    "head_latest": (_BY_TEXT, (bytes, Digest)),
    "head_waiting": (_BY_HASH, (lambda v: _m([(p, bytes(h)) for p, h in v]),
                                lambda raw: [(p, Digest(h)) for p, h in _unplain(raw)])),
    "changed": ((bytes, bytes), (bytes, bytes)),  # last: the others' flushes note keys in it (:func:`track`)
}


#: Tables keyed by record or body hash, each key set once: nobody asks their length, so a new key is written
#: without looking for an old row.
UNCOUNTED = frozenset({"records", "bodies"})


def create_tables(db: Db) -> None:
    """Create every state table."""
    for table in TABLES:
        create_table(db, table)


_Row = tuple[Any, Any, Any]  # (signers, time_ms, items of): None for a value the replay never set
_UNSET = object()  # a field of a pending row not set since the last flush: the table's value stands


class RecordRows(StoredMap[Digest, _Row]):
    """The ``records`` table: per record hash, the parties who signed it, its ``time_ms`` and the items it is a
    record of — three dictionaries of the replay (:attr:`~ledger.custody.CustodyState.signers`,
    :attr:`~ledger.custody.CustodyState.times`, the item heads' record -> items) kept in one row, so that a new
    record costs one row at a random place in the file, not three. :meth:`field` gives each as a mapping.

    A field set on a key not read first is kept pending; at :meth:`flush` a row whose three fields were all set is
    written without reading the table (a new record's), any other is merged with the row the table holds. Each
    field reads and writes as a dictionary would (the index is compared with a replay of the log, row for row).
    """

    def __init__(self, db: Db, codec: Codec[Digest, _Row]) -> None:
        super().__init__(db, "records", codec, None)
        self._pending: dict[Digest, list[object]] = {}

    def field(self, index: int) -> MutableMapping[Any, Any]:
        """Field ``index`` (0: signers, 1: time_ms, 2: items of) as a mapping from record hash."""
        return _Field(self, index)

    def get_field(self, key: Digest, index: int) -> Any:
        """Field ``index`` of ``key`` (None: not set)."""
        pending = self._pending.get(key)
        if pending is not None and pending[index] is not _UNSET:
            return pending[index]
        self._settle(key)
        row = self.get(key)
        return None if row is None else row[index]

    def set_field(self, key: Digest, index: int, value: Any) -> None:
        """Set field ``index`` of ``key`` (None: unset it)."""
        self._pending.setdefault(key, [_UNSET, _UNSET, _UNSET])[index] = value

    def _settle(self, key: Digest) -> None:
        """Turn the pending fields of ``key`` into its row (merged with the table's row unless all are set)."""
        pending = self._pending.pop(key, None)
        if pending is None:
            return
        if _UNSET in pending:
            row = self.get(key) or (None, None, None)
            pending = [row[i] if value is _UNSET else value for i, value in enumerate(pending)]
        if pending == [None, None, None]:
            self.pop(key, None)
        else:
            self[key] = (pending[0], pending[1], pending[2])

    def flush(self) -> None:
        for key in list(self._pending):
            self._settle(key)
        super().flush()

    def forget(self) -> None:
        self._pending.clear()
        super().forget()


class _Field(MutableMapping[Digest, Any]):
    """One field of :class:`RecordRows` as a mapping (a key whose field is None is absent)."""

    def __init__(self, rows: RecordRows, index: int) -> None:
        self._rows, self._index = rows, index

    def __getitem__(self, key: Digest) -> Any:
        value = self._rows.get_field(key, self._index)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return self._rows.get_field(key, self._index) is not None  # type: ignore[arg-type]

    def __setitem__(self, key: Digest, value: Any) -> None:
        self._rows.set_field(key, self._index, value)

    def __delitem__(self, key: Digest) -> None:
        if key not in self:
            raise KeyError(key)
        self._rows.set_field(key, self._index, None)

    def __iter__(self) -> Iterator[Digest]:
        return (key for key, row in self._rows.rows() if row[self._index] is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def attach(state: CustodyState, heads: ItemHeads, db: Db, counts: dict[str, int]
           ) -> list[StoredMap[Any, Any]]:
    """Replace the dictionaries of ``state`` (and its identity index) and ``heads`` by maps over ``db``'s tables
    holding ``counts`` rows; return the maps (to :func:`flush` or :func:`forget` together)."""
    records = RecordRows(db, _codec("records"))
    maps: dict[str, StoredMap[Any, Any]] = {
        table: records if table == "records" else StoredMap(db, table, _codec(table), _count(table, counts))
        for table in TABLES}
    state.items, state.bodies = maps["items"], maps["bodies"]
    state.signers, state.times = records.field(0), records.field(1)
    ids: IdentityIndex = state.identities
    ids.use(claims=maps["id_claims"], holder=maps["id_holder"], standing=maps["id_standing"],
            frozen=StoredSet(maps["id_frozen"]))
    heads.use(positions=maps["head_positions"], latest=maps["head_latest"], of=records.field(2),
              waiting=maps["head_waiting"])
    return list(maps.values())


def _codec(table: str) -> Codec[Any, Any]:
    (key, unkey), (value, unvalue) = TABLES[table]
    return Codec(key, unkey, value, unvalue)


def _count(table: str, counts: dict[str, int]) -> int | None:
    return None if table in UNCOUNTED else counts.get(table, 0)


def flush(maps: Iterable[StoredMap[Any, Any]]) -> dict[str, int]:
    """Write every map's changed rows (in the caller's transaction); return the row counts of the counted
    tables."""
    counts = {}
    for table, rows in zip(TABLES, maps, strict=True):
        rows.flush()
        if table not in UNCOUNTED:
            counts[table] = len(rows)
    return counts


def forget(maps: Iterable[StoredMap[Any, Any]], counts: dict[str, int]) -> None:
    """Abandon every map's unwritten changes; the tables hold ``counts`` rows."""
    for table, rows in zip(TABLES, maps, strict=True):
        rows.forget()
        rows.recount(_count(table, counts))


def track(maps: list[StoredMap[Any, Any]], trees: dict[str, int] | None) -> None:
    """Note in table ``changed`` the key bytes of every row written to or deleted from the tables ``trees``
    names, each tagged with its tree's number (one byte before the key: ``changed`` then holds what changed in
    each checkpoint tree since the latest snapshot, :mod:`ledger.index.snapshot`); ``None``: note nothing."""
    tables = list(TABLES)
    changed = maps[tables.index("changed")]
    for table, tree in (trees or {}).items():
        maps[tables.index(table)].journal = lambda key, tag=bytes([tree]): changed.__setitem__(tag + key, b"")
    if trees is None:
        for rows in maps:
            rows.journal = None
