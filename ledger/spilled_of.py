"""Per record hash, the items it is a record of, kept on disk: the map :class:`ledger.heads.ItemHeads` reads to
count a statement (``attested``, ``corrected``) as a record of its subject's items, for an audit that checks
checkpoint lines. In memory it is a row per record of the log; here it is a table of a private temporary SQLite
database (:func:`ledger.spill.scratch_db`, a 2 MiB page cache), written every :data:`BATCH` records in key order,
so that the audit's memory follows the items, not the records (issue 11; docs/adr/0022-spilled-record-facts.md).
A statement's subject costs one read; other records, none. About 4 µs a record at 10^6 records.

Item ids are identifiers (:data:`ledger._text.ID_RE`): a NUL never occurs in one, so a row's items are stored
NUL-joined.
"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping

from .hashing import Digest
from .spill import scratch_db

__all__ = ["BATCH", "SpilledOf"]

#: Rows held in memory before they are written (about 2 MB).
BATCH = 8192
_CACHE_KIB = 2048


class SpilledOf(MutableMapping[Digest, tuple[str, ...]]):
    """A mapping record hash -> item ids (a tuple, sorted by the caller) on a temporary database; writes are held
    until :data:`BATCH` are, every read looks at the held ones too. :meth:`close` deletes the
    database. Not thread-safe; one process."""

    def __init__(self) -> None:
        self._db = scratch_db(_CACHE_KIB)
        self._db.execute("CREATE TABLE item_of (hash BLOB PRIMARY KEY, items BLOB NOT NULL) WITHOUT ROWID")
        self._held: dict[bytes, tuple[str, ...]] = {}

    def __getitem__(self, key: Digest) -> tuple[str, ...]:
        held = self._held.get(key)
        if held is not None:
            return held
        row = self._db.execute("SELECT items FROM item_of WHERE hash = ?", (bytes(key),)).fetchone()
        if row is None:
            raise KeyError(key)
        return tuple(row[0].decode("utf-8").split("\x00")) if row[0] else ()

    def __setitem__(self, key: Digest, items: tuple[str, ...]) -> None:
        self._held[bytes(key)] = items
        if len(self._held) >= BATCH:
            self.flush()

    def __delitem__(self, key: Digest) -> None:
        self.flush()
        if not self._db.execute("DELETE FROM item_of WHERE hash = ?", (bytes(key),)).rowcount:
            raise KeyError(key)

    def __iter__(self) -> Iterator[Digest]:
        self.flush()
        return (Digest(h) for h, in self._db.execute("SELECT hash FROM item_of ORDER BY hash").fetchall())

    def __len__(self) -> int:
        self.flush()
        count: int = self._db.execute("SELECT count(*) FROM item_of").fetchone()[0]
        return count

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
