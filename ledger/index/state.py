"""The replay's state kept in the index: every dictionary of the custody replay (:class:`~ledger.custody
.CustodyState`), of the identity index (:class:`~ledger.identity.IdentityIndex`) and of the item heads
(:class:`~ledger.heads.ItemHeads`) as a :class:`~ledger.index.maps.StoredMap`, so that opening a ledger reads
nothing it does not need and checking a new record reads only the rows it touches.

The same classes run the same code over these maps as over plain dictionaries: what the index holds is by
construction what a replay of the log holds (a test rebuilds and compares). Values are encoded with
:mod:`marshal` after the row's checksum is checked (:mod:`ledger.index.maps`); the encoding is private to the
index (``SCHEMA`` in :mod:`ledger.index.db` changes with it).
"""

from __future__ import annotations

import marshal
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

from ..custody import CustodyState
from ..hashing import Digest
from ..heads import ItemHeads
from ..identity import Claim, IdentityIndex, Standing
from ..item import Item
from .maps import Codec, StoredMap, StoredSet, create_table

__all__ = ["TABLES", "attach", "flush", "forget"]


def _text(value: str) -> bytes:
    return value.encode("utf-8")


def _untext(raw: bytes) -> str:
    return raw.decode("utf-8")


def _identity(value: tuple[str, str]) -> bytes:
    return value[0].encode("utf-8") + b"\x00" + value[1].encode("utf-8")  # = ledger.identity.sort_key


def _unidentity(raw: bytes) -> tuple[str, str]:
    kind, _, key = raw.partition(b"\x00")
    return kind.decode("utf-8"), key.decode("utf-8")


def _m(value: Any) -> bytes:
    return marshal.dumps(value, 2)  # version 2: no back-references, so equal values give equal bytes


def _item(item: Item) -> bytes:
    return _m((item.id, item.type, item.mass_mct, item.holder, item.owner, item.nature, item.origin,
               bytes(item.head), item.head_time_ms, item.country, item.state, item.article, item.transit,
               item.report, item.inscription, item.graded_mct, item.contents, item.history,
               b"".join(sorted(item.hashes))))


def _unitem(raw: bytes) -> Item:
    (id_, type_, mass, holder, owner, nature, origin, head, head_time, country, state, article, transit, report,
     inscription, graded, contents, history, hashes) = marshal.loads(raw)
    return Item(id=id_, type=type_, mass_mct=mass, holder=holder, owner=owner, nature=nature, origin=origin,
                head=Digest(head), head_time_ms=head_time, country=country, state=state, article=article,
                transit=transit, report=report, inscription=inscription, graded_mct=graded, contents=contents,
                history=history, hashes={Digest(hashes[i:i + 32]) for i in range(0, len(hashes), 32)})


def _claims(claims: list[Claim]) -> bytes:
    return _m([(c.position, c.item, c.until) for c in claims])


def _unclaims(raw: bytes) -> list[Claim]:
    return [Claim(p, i, u) for p, i, u in marshal.loads(raw)]


def _standing(value: Standing) -> bytes:
    return _m((bytes(value.head), {k: (key, slots) for k, (key, slots) in value.claims.items()}))


def _unstanding(raw: bytes) -> Standing:
    head, claims = marshal.loads(raw)
    return Standing(Digest(head), {k: (key, slots) for k, (key, slots) in claims.items()})


def _unplain(raw: bytes) -> Any:
    return marshal.loads(raw)


_Pair = tuple[Callable[[Any], bytes], Callable[[bytes], Any]]
_BY_TEXT: _Pair = (_text, _untext)
_BY_HASH: _Pair = (bytes, Digest)
_BY_IDENTITY: _Pair = (_identity, _unidentity)
_PLAIN: _Pair = (_m, _unplain)

#: table -> (key codec, value codec): the index's copy of every dictionary of the replay.
TABLES: dict[str, tuple[_Pair, _Pair]] = {
    "items": (_BY_TEXT, (_item, _unitem)),
    "signers": (_BY_HASH, (lambda v: _m(sorted(v)), lambda raw: frozenset(marshal.loads(raw)))),
    "times": (_BY_HASH, _PLAIN),
    "bodies": (_BY_HASH, _PLAIN),
    "id_claims": (_BY_IDENTITY, (_claims, _unclaims)),
    "id_holder": (_BY_IDENTITY, _PLAIN),
    "id_standing": (_BY_TEXT, (_standing, _unstanding)),
    "id_frozen": (_BY_TEXT, (bytes, bytes)),
    "head_positions": (_BY_TEXT, _PLAIN),
    "head_latest": (_BY_TEXT, (bytes, Digest)),
    "head_of": (_BY_HASH, (lambda v: _m(list(v)), lambda raw: tuple(marshal.loads(raw)))),
    "head_waiting": (_BY_HASH, (lambda v: _m([(p, bytes(h)) for p, h in v]),
                                lambda raw: [(p, Digest(h)) for p, h in marshal.loads(raw)])),
}


#: Tables keyed by record or body hash, each key set once: nobody asks their length, so a new key is written
#: without looking for an old row.
UNCOUNTED = frozenset({"signers", "times", "bodies", "head_of"})


def create_tables(db: sqlite3.Connection) -> None:
    """Create every state table."""
    for table in TABLES:
        create_table(db, table)


def attach(state: CustodyState, heads: ItemHeads, db: sqlite3.Connection, counts: dict[str, int]
           ) -> list[StoredMap[Any, Any]]:
    """Replace the dictionaries of ``state`` (and its identity index) and ``heads`` by maps over ``db``'s tables
    holding ``counts`` rows; return the maps (to :func:`flush` or :func:`forget` together)."""
    maps = {table: StoredMap(db, table, Codec(k[0], k[1], v[0], v[1]), _count(table, counts))
            for table, (k, v) in TABLES.items()}
    state.items, state.signers, state.times, state.bodies = (maps["items"], maps["signers"], maps["times"],
                                                             maps["bodies"])
    ids: IdentityIndex = state.identities
    ids.use(claims=maps["id_claims"], holder=maps["id_holder"], standing=maps["id_standing"],
            frozen=StoredSet(maps["id_frozen"]))
    heads.use(positions=maps["head_positions"], latest=maps["head_latest"], of=maps["head_of"],
              waiting=maps["head_waiting"])
    return list(maps.values())


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
