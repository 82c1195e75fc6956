"""The index's SQLite file (``<ledger>.index``, WAL mode): its schema, its meta rows, the frames' places in the
log, the Merkle tiles and the registry's positions (docs/adr/0018-sqlite-index.md).

Every row carries a checksum (:func:`ledger.index.maps.row_check`); a row that fails it, an SQLite error or a
schema of another version raise :class:`~ledger.index.maps.IndexDamaged`, and the index is rebuilt from the log.

Tables: ``meta`` (name -> value), ``frames`` (per 256 positions, the (offset, length) of each frame in the log, as
big-endian uint64 pairs), ``tiles`` (C2SP tlog-tiles contents by level and index: the full tile, or the widest
partial one; beside each, its inner nodes, :func:`ledger.storage.tiles.tile_nodes`), ``registry`` (positions of
the registry records), ``snap`` (the checkpoint trees of :mod:`ledger.index.snapshot`) and the replay's tables
(:mod:`ledger.index.state`).
"""

from __future__ import annotations

import functools
import os
import sqlite3
import struct
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

from .._codec import pack_local, unpack_local
from ..errors import DecodeError
from ..storage.framing import FRAME_HEADER, MAX_RECORD_SIZE
from ..storage.tiles import TILE_HEIGHT, Tile, tile_nodes
from .maps import IndexDamaged, is_row, row_check, sqlite_errors
from .snapshot import create_snapshot_table
from .sql import Db, table, upsert
from .state import create_tables

__all__ = ["SCHEMA", "IndexDB", "Tables", "checked", "index_path"]

#: The longest meta value read (the anchor note, the table counts: a few hundred bytes); a longer one is damage,
#: never decoded (decoding can build ~75 bytes of objects per byte).
_MAX_META = 64 << 10
#: Changes whenever what a table holds or how it is encoded changes: an index of another version is rebuilt.
SCHEMA = 9
#: Pages the write-ahead log grows to before a commit copies them into the file (SQLite's default is 1,000): a
#: copy ends with an fsync of the file, and pages written again meanwhile (the tables' upper levels, the items
#: and heads a batch moves, the tiles, frames and meta) are copied once; 32 MiB of 4 KiB pages.
CHECKPOINT_PAGES = 8192
_BLOCK = 256  # frames per row of ``frames``
_KEPT_BLOCKS = 1024  # rows of ``frames`` a reader keeps (4 KiB each)
_PAIR = struct.Struct(">QQ")
_NODES = 1 << 62  # tiles rows: a tile's inner nodes, beside the tile


def index_path(ledger_path: str | Path) -> Path:
    """Where the index of the ledger at ``ledger_path`` lives: beside it, named ``<ledger>.index``."""
    return Path(f"{ledger_path}.index")


def checked(table: str, key: object, value: Any, check: Any) -> bytes:
    """The bytes of row (``key``, ``value``, ``check``) of the keyed table ``table`` (``meta``, ``tiles``,
    ``registry``...), once its checksum holds (:func:`~ledger.index.maps.row_check`). Raises IndexDamaged."""
    if not is_row(key, value, check) or row_check(table, str(key).encode(), value) != check:
        raise IndexDamaged(f"index table {table}: row {key!r} fails its checksum")
    return bytes(value)


class Tables:
    """The index's own tables (meta, tiles, registry) and the replay's, over a connection ``db`` of either
    database (:mod:`ledger.index.sql`); the caller holds the transaction."""

    def __init__(self, db: Db, path: object) -> None:
        self.db, self.path = db, path  # path: where the tables are, for messages

    def transaction(self) -> AbstractContextManager[None]:
        """One write transaction: committed when the block ends, rolled back if it raises."""
        raise NotImplementedError

    def close(self) -> None:
        """Close the connection (idempotent)."""
        raise NotImplementedError

    def create(self, more: Sequence[tuple[str, str]] = ()) -> None:
        """Create every table (``more``: (name, columns) of the holder's own) and set the schema if unset."""
        for name, columns in (("meta", "k TEXT NOT NULL, v BLOB NOT NULL"),
                              ("tiles", "id INTEGER NOT NULL, v BLOB NOT NULL"),
                              ("registry", "id INTEGER NOT NULL, v BLOB NOT NULL"), *more):
            key = "k" if name == "meta" else "id"
            table(self.db, name, f"{columns}, c INTEGER NOT NULL, PRIMARY KEY ({key})")
        create_tables(self.db)
        create_snapshot_table(self.db)
        if self.meta("schema") is None:
            self.set_meta(schema=SCHEMA)

    # --- checked rows ----------------------------------------------------------------------------------------

    def _get(self, table: str, key: object) -> bytes | None:
        col = "k" if table == "meta" else "id"
        with sqlite_errors(table):
            row = self.db.execute(f"SELECT v, c FROM {table} WHERE {col} = ?", (key,)).fetchone()
        return None if row is None else checked(table, key, row[0], row[1])

    def _put(self, table: str, rows: Iterable[tuple[object, bytes]]) -> None:
        rows = list(rows)
        if not rows:
            return
        col = "k" if table == "meta" else "id"
        with sqlite_errors(table):
            self.db.executemany(upsert(table, [col], ["v", "c"]),
                                [(key, value, row_check(table, str(key).encode(), value)) for key, value in rows])

    def meta(self, name: str) -> Any:
        """The meta value ``name`` (None if unset). Raises IndexDamaged for a value that does not decode."""
        raw = self._get("meta", name)
        try:
            if raw is not None and len(raw) > _MAX_META:
                raise DecodeError(f"{len(raw)} bytes, over the {_MAX_META} a meta value may have",
                                  code="codec.too_large")
            return None if raw is None else unpack_local(raw)
        except DecodeError as exc:
            raise IndexDamaged(f"index table meta: {name} does not decode ({exc})") from exc

    def set_meta(self, **values: Any) -> None:
        """Set meta values (inside a transaction)."""
        self._put("meta", ((name, pack_local(value)) for name, value in values.items()))

    # --- tiles (C2SP tlog-tiles): a TileReader --------------------------------------------------------------

    def read_tile(self, level: int, index: int) -> bytes:
        """The stored tile (level, index), full or the widest partial one; KeyError if none."""
        raw = self._get("tiles", (level << 56) | index)
        if raw is None:
            raise KeyError((level, index))
        return raw

    def read_tile_nodes(self, level: int, index: int) -> bytes:
        """The :func:`~ledger.storage.tiles.tile_nodes` kept beside tile (level, index); KeyError if none (a
        :class:`~ledger.storage.tiles.NodeReader`: proofs need no hashing inside tiles)."""
        raw = self._get("tiles", _NODES | (level << 56) | index)
        if raw is None:
            raise KeyError((level, index))
        return raw

    @staticmethod
    def path_tiles(leaves: Iterable[int]) -> set[int]:
        """The ``tiles`` row ids (:meth:`read_tile` and :meth:`read_tile_nodes`) on the paths of ``leaves`` to the
        root of a tree whose last leaf is the greatest of them: every tile level up to the top one, at the tile
        holding the leaf's ancestor (and so its siblings): what an inclusion proof of each leaf reads."""
        leaves = list(leaves)
        top, ids = max(leaves, default=0), set[int]()
        level = 0
        while level == 0 or top >> (TILE_HEIGHT * level):
            for leaf in leaves:
                key = (level << 56) | (leaf >> (TILE_HEIGHT * (level + 1)))
                ids.update((key, _NODES | key))
            level += 1
        return ids

    def put_tiles(self, tiles: Iterable[Tile]) -> None:
        """Store tiles and their inner nodes (each replaces the narrower version of itself; in a transaction)."""
        rows: list[tuple[object, bytes]] = []
        for t in tiles:
            rows += [((t.level << 56) | t.index, t.hashes), (_NODES | (t.level << 56) | t.index, tile_nodes(t.hashes))]
        self._put("tiles", rows)

    # --- registry records ---------------------------------------------------------------------------------

    def registry_positions(self) -> list[int]:
        """Positions of the registry records, in log order (strictly increasing, or IndexDamaged)."""
        positions: list[int] = []
        with sqlite_errors("registry"):
            for key, value, check in self.db.execute("SELECT id, v, c FROM registry ORDER BY id"):
                checked("registry", key, value, check)
                if type(key) is not int or key < 0 or (positions and key <= positions[-1]):
                    raise IndexDamaged(f"index table registry: position {key!r} out of order")
                positions.append(key)
        return positions

    def add_registry(self, positions: Iterable[int]) -> None:
        """Record registry records' positions (inside a transaction)."""
        self._put("registry", ((p, b"") for p in positions))


class IndexDB(Tables):
    """An open index file. Writes happen inside :meth:`transaction` only."""

    def __init__(self, db: sqlite3.Connection, path: Path) -> None:
        super().__init__(db, path)
        self.db: sqlite3.Connection = db
        self.path: Path = path
        self._blocks: dict[int, bytes] | None = None  # a reader's frames rows read so far (:meth:`frame`)

    @classmethod
    def open(cls, path: Path, *, create: bool, read_only: bool = False) -> IndexDB:
        """Open (or, with ``create``, create) the index at ``path`` (``read_only``: for a reader).

        Raises:
            IndexDamaged: not an SQLite file, another schema, or unreadable. FileNotFoundError: missing and not
                ``create``.
        """
        if not create and not path.is_file():
            raise FileNotFoundError(path)
        db: sqlite3.Connection | None = None
        try:
            if read_only:  # a reader never writes the index: query_only; a file it may not write is opened read-only
                writable = os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)
                db = sqlite3.connect(f"{path.resolve().as_uri()}?mode={'rw' if writable else 'ro'}", uri=True,
                                     isolation_level=None)  # rw: the last to close removes the -wal and -shm files
                db.execute("PRAGMA query_only=ON")
            else:
                db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
                db.execute("PRAGMA journal_mode=WAL")
                db.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_PAGES}")
            db.execute("PRAGMA synchronous=NORMAL")  # the log is fsynced first; the index can lag and catch up
            if not read_only:  # a reader reads a few hundred pages in its short life: with SQLite's default
                db.execute("PRAGMA cache_size=-32768")  # 32 MiB  # cache (2 MiB) an export costs ~1 ms less
            if read_only:
                db.execute("BEGIN")  # one read transaction for the reader's life: one consistent snapshot
            index = cls(db, path)
            index._blocks = {} if read_only else None
            if create:
                index._create()
            if index.meta("schema") != SCHEMA:
                raise IndexDamaged(f"{path} is an index of schema {index.meta('schema')!r}, not {SCHEMA}")
            if _objects(db) != _expected_objects():
                raise IndexDamaged(f"{path} holds tables, views or triggers an index does not (edited by hand?)")
        except (sqlite3.Error, IndexDamaged) as exc:
            if db is not None:
                db.close()  # never left to the collector (see ledger.index.opening.open_index)
            raise exc if isinstance(exc, IndexDamaged) else IndexDamaged(f"{path}: {exc}") from exc
        return index

    def _create(self) -> None:
        with self.transaction():
            self.create([("frames", "id INTEGER NOT NULL, v BLOB NOT NULL")])

    def close(self) -> None:
        """Close the file (idempotent)."""
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """One write transaction: committed when the block ends, rolled back if it raises."""
        with sqlite_errors("(transaction)"):
            self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
            with sqlite_errors("(commit)"):
                self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise

    # --- frames: where each record is in the log ------------------------------------------------------------

    @property
    def keeps_frames(self) -> bool:
        """True for a reader, which keeps the frames rows it read (:meth:`frame`)."""
        return self._blocks is not None

    def frame(self, position: int) -> tuple[int, int]:
        """(offset, length) in the log of the frame of record ``position``. Raises IndexDamaged if not indexed. A
        reader, whose one read transaction never sees a row change, keeps the rows it read (up to
        :data:`_KEPT_BLOCKS`): records near each other (a registry, the records checked on open) cost one."""
        number, blocks = position // _BLOCK, self._blocks
        block = blocks.get(number) if blocks is not None else None
        if block is None:
            block = self._get("frames", number)
            if blocks is not None and block is not None:
                if len(blocks) >= _KEPT_BLOCKS:
                    blocks.clear()
                blocks[number] = block
        at = (position % _BLOCK) * _PAIR.size
        if block is None or len(block) < at + _PAIR.size:
            raise IndexDamaged(f"the index has no frame for record {position}")
        offset, length = _PAIR.unpack_from(block, at)
        if not FRAME_HEADER < length <= FRAME_HEADER + MAX_RECORD_SIZE or offset >= 1 << 62:
            raise IndexDamaged(f"the index has no frame for record {position} (offset {offset}, length {length})")
        return offset, length

    def add_frames(self, first: int, frames: Sequence[tuple[int, int]]) -> None:
        """Record the (offset, length) of records ``first``, ``first + 1``, ... (inside a transaction)."""
        rows, position, i = [], first, 0
        while i < len(frames):
            block, at = divmod(position, _BLOCK)
            take = min(_BLOCK - at, len(frames) - i)
            before = (self._get("frames", block) or b"") if at else b""
            if len(before) != at * _PAIR.size:
                raise IndexDamaged(f"the index's frames of block {block} do not end at record {position}")
            rows.append((block, before + b"".join(_PAIR.pack(*f) for f in frames[i:i + take])))
            position, i = position + take, i + take
        self._put("frames", rows)


def _objects(db: sqlite3.Connection) -> list[tuple[str, str, str, str | None]]:
    """The schema objects of ``db`` (tables, indexes, views, triggers), as SQLite keeps their definitions."""
    return sorted(db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master"))


@functools.cache
def _expected_objects() -> list[tuple[str, str, str, str | None]]:
    """:func:`_objects` of a new index: an index holding any other (a view in place of a table, a trigger) was
    not written by this code, and its answers are not taken."""
    db = sqlite3.connect(":memory:", isolation_level=None)
    try:
        IndexDB(db, Path(":memory:"))._create()
        return _objects(db)
    finally:
        db.close()
