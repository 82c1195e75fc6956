"""Incremental audit (issue 11 item 4): an audit pass saved where it stopped, and a later pass over the same
ledger that goes on from there instead of replaying the records already audited.

A state is taken at the end of the file an audit read: its record count A (every frame 0..A-1 valid: a file
whose framing is damaged gets no state, ``audit.state_unsafe``). It holds what the streaming pass
(:class:`ledger.audit_pass._Walk`) holds after record A-1: the custody replay's items and identity claims, its
per-record facts (the rows of its spill, :mod:`ledger.spill`: per record hash its signers, time and items, per
body hash its first position, with a policy per position its items: O(records) on disk), the registry (its
records' bytes, replayed), the RFC 9162 compact range of leaves [0, A) (:class:`~ledger.compact.CompactRange`: at
most two subtree hashes per level), the item heads and identities the checkpoint lines commit to, the findings so
far, where frame A-1 starts with its leaf hash, and the SHA-256 of the file's bytes up to its end (so that no
record below A can change unseen).
Any later pass at the same level, under the same authority keys, over a file whose bytes up to there are those, goes
on at record A and gives the report a full replay of the longer file gives (tests/test_incremental_audit.py).

Why a checkpoint B checked on resume proves that B extends the audited A: the root at B is computed from the
saved subtree hashes of [0, A) and the leaves after A. A signed root that equals it is the root of a tree whose
first A leaves hash to those subtrees, i.e. (SHA-256 being collision resistant) of the very records audited —
the check a consistency proof from A to B makes (RFC 9162 §2.1.4.2), with the subtree hashes of the old tree
taken from our own replay instead of from the log. A checkpoint below A cannot be checked from the state and
is refused (``audit.checkpoint_before_state``).

File format (docs/format.md §8.3): the line ``stonetrail-audit-state 4`` (LF), then the SHA-256 of the rest,
then the rest: a msgpack map (:func:`ledger._codec.pack_local`) whose dictionaries of the replay are encoded row by row
with the persistent index's codecs (:data:`ledger.index.state.TABLES`), and whose spill is its tables' columns
(:meth:`ledger.spill.Spill.dump`). A state is the auditor's own file: its
hash detects damage (``audit.state_damaged``), not forgery; it is refused for another ledger, other authority
keys, another level or another version (``audit.state_mismatch``). Never pickle nor marshal: a state file is
input, and msgpack's decoder is safe on any bytes.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ._codec import pack_local, unpack_local
from ._files import io_errors, write_file
from ._state_rows import Field, ItemRows, Rows, columns, damaged
from .audit_pass import _Walk
from .commitments import Commitments
from .compact import CompactRange, Node
from .errors import CorruptStoreError, DecodeError, InputError, StoneTrailError, VerificationError
from .findings import Finding
from .hashing import Digest
from .heads import ItemHeads
from .identity import IdentityIndex
from .index.db import SCHEMA
from .merkle import leaf_hash
from .record import Record
from .storage.frames import read_run
from .storage.framing import FRAME_HEADER, FRAME_MAGIC, MAX_HEADER, TORN, Frame, StoreProblem, read_header

__all__ = ["VERSION", "Kept", "Saved", "authority_digest", "begin"]

#: The state file format version (the number on its first line).
VERSION = 4
_MAGIC = b"stonetrail-audit-state "
_LINE_MAX = 64  # the first line (magic and version) is shorter
_ID_TABLES = ("id_claims", "id_holder", "id_standing", "id_frozen")


def authority_digest(keys: Iterable[bytes]) -> bytes:
    """SHA-256 of the trusted authority keys (raw 32 bytes each), sorted and concatenated: what a state is bound
    to (a registry replayed under other keys is another registry)."""
    return hashlib.sha256(b"".join(sorted(keys))).digest()


def _rewritten(why: str) -> VerificationError:
    return VerificationError(f"audit state: {why}", code="audit.log_rewritten")


def _mismatch(why: str) -> InputError:
    return InputError(f"audit state: {why}", code="audit.state_mismatch")


class Saved:
    """A state file read and checked for damage (not yet matched to a ledger: :func:`begin`).

    ``size``: A, the records audited; ``resume``: (A - 1, byte offset of frame A - 1) for
    :class:`ledger.storage.FrameFile`, None when A is 0 (read from the first frame).
    """

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.origin: str = body["origin"]
        self.authority: bytes = body["authority"]
        self.level: str = body["level"]
        self.schema: int = body["schema"]
        self.prefix: bytes | None = body["prefix"]
        self.size: int = body["end"]
        last = body["last"]
        if type(self.size) is not int or self.size < 0 or (last is None) != (self.size == 0) or not (
                last is None or (type(last) is list and len(last) == 2 and type(last[0]) is int and last[0] >= 0
                and type(last[1]) is bytes and len(last[1]) == 32)):
            raise ValueError(f"a state of {self.size!r} records with last frame {last!r}")
        if not (self.prefix is None or (type(self.prefix) is bytes and len(self.prefix) == 32)) \
                or (self.prefix is None) != (last is None):
            raise ValueError(f"a state with prefix digest {self.prefix!r}")
        if type(body["size"]) is not int or not 0 <= body["size"] <= self.size:
            raise ValueError(f"a state whose replay is at record {body['size']!r} of {self.size}")
        self.resume = None if last is None else (self.size - 1, last[0])

    @classmethod
    def read(cls, path: str | Path) -> Saved:
        """Read the state file at ``path``.

        Raises:
            InputError: ``audit.state_damaged`` (not a state file, its hash fails, or its contents are not a
                state's), ``audit.state_mismatch`` (another format version, or tables encoded as another index
                schema did: :data:`ledger.index.db.SCHEMA`). StorageError ``store.io``.
        """
        path = Path(path)
        with io_errors(path, "reading"):
            data = path.read_bytes()
        line, newline, _ = data[:_LINE_MAX].partition(b"\n")
        if not newline or not line.startswith(_MAGIC):
            raise damaged(f"{path} is not an audit state file")
        if line != _MAGIC + str(VERSION).encode():
            raise _mismatch(f"{path} is in another format version ({line[len(_MAGIC):][:20]!r}, this reads {VERSION})")
        rest = memoryview(data)[len(line) + 1:]  # no copy of a state of hundreds of megabytes
        if hashlib.sha256(rest[32:]).digest() != rest[:32]:
            raise damaged(f"{path} is damaged (its SHA-256 does not match its contents)")
        try:
            saved = cls(unpack_local(rest[32:]))  # type: ignore[arg-type]
        except (DecodeError, ValueError, TypeError, KeyError, IndexError) as exc:
            raise damaged(f"{path} does not hold an audit state ({exc})") from exc
        if saved.schema != SCHEMA:
            raise _mismatch(f"{path} encodes the replay's tables as index schema {saved.schema!r} did (this reads "
                            f"{SCHEMA})")
        return saved


class Kept:
    """An audit walk whose state can be saved (:meth:`save`), new or resumed from a :class:`Saved`; ``maps``:
    the identity indexes' and item heads' dictionaries (by name: :func:`_fresh`), which the walk's objects keep
    their data in."""

    def __init__(self, walk: _Walk, maps: dict[str, Any], saved: Saved | None, ledger: Path,
                 head: Future[Any] | None = None) -> None:
        self.walk, self.maps, self.saved, self.ledger, self.head = walk, maps, saved, ledger, head
        self.last: Frame | None = None

    def frames(self, frames: Iterable[Frame]) -> Iterator[Frame]:
        """``frames`` of the ledger (read from :attr:`Saved.resume` on a resumed walk), the last one noted for
        :meth:`save`. A resumed read first checks that frame A - 1 is the one audited and that the bytes up to
        its end are the ones audited (:func:`_prefix`), and drops it.
        Raises VerificationError ``audit.log_rewritten`` if they are not: the log was cut short or rewritten since
        the audit that saved the state (an integrity verdict on the ledger, not a usage error)."""
        frames = iter(frames)
        if self.saved is not None and self.saved.resume is not None:
            index, offset = self.saved.resume
            first = next(frames, None)
            if first is None:
                raise _rewritten(f"the file holds fewer than the {index + 1} records audited: the log was cut short "
                                 "(rolled back) since, or it is another log of the same origin")
            if (first.index, first.offset) != (index, offset) or leaf_hash(first.payload) != self.saved.body["last"][1]:
                raise _rewritten(f"record {index} of this file is not the one audited: the log was rewritten since")
            if _prefix(self.ledger, first, self.head) != self.saved.prefix:
                raise _rewritten(f"records 0..{index} of this file are not the ones audited: the log was rewritten "
                                 "since")
            self.last = first
        for frame in frames:
            self.last = frame
            yield frame

    def save(self, path: str | Path, problems: Iterable[StoreProblem]) -> None:
        """Write the walk's state to the new file ``path`` (atomically: :func:`ledger._files.write_file`).

        Raises:
            InputError: ``audit.state_unsafe`` (the file's framing is damaged: no state describes it; the audit
                reports it, :attr:`ledger.audit.AuditReport.state_unsaved`).
            StorageError: ``store.exists`` (``path`` exists: a state is never overwritten), ``store.io``.
        """
        first = next(iter(problems), None)
        if first is not None:
            hint = ("run `stonetrail repair LEDGER` to move the torn tail aside, then audit again with "
                    "--save-state" if first.code == TORN else "no state describes a damaged log")
            raise InputError(f"audit state: not saved: the ledger file's framing is damaged at record "
                             f"{first.index} ({first.code}); {hint}", code="audit.state_unsafe")
        walk, last = self.walk, self.last
        body = {"origin": walk.origin, "authority": authority_digest(walk.state.registry.authority_keys),
                "level": walk.level, "schema": SCHEMA, "end": walk.end,
                "last": None if last is None else (last.offset, bytes(leaf_hash(last.payload))),
                "prefix": None if last is None else _audited_prefix(self.ledger, last, walk.range.root()),
                "findings": [(f.code, f.position, f.item, f.reason) for f in walk.findings],
                "range": [(n.level, n.index, bytes(n.hash)) for n in walk.range.nodes],
                "registry": [(p, r.raw, walk.state.registry.head_at(p + 1)[1] == r.record_hash)
                             for p, r in walk.registry],
                "size": walk.state.size, "tables": _tables(walk, self.maps), "spill": walk.state.spill.dump()}
        payload = pack_local(body)
        write_file(path, (_MAGIC + str(VERSION).encode() + b"\n" + hashlib.sha256(payload).digest(), payload))


def _audited_prefix(ledger: Path, last: Frame, root: Digest) -> bytes:
    """:func:`_prefix` of the file ``ledger`` up to frame ``last`` (the framing whole), checking in the same read
    that the records in those bytes are the ones the audit read: the RFC 9162 root of their leaves is ``root``,
    the walk's. A state vouches for these bytes on resume without reading them again, so they must be the
    audited ones, not bytes rewritten during the audit. Raises CorruptStoreError ``store.changed`` if they are
    not; InputError ``audit.state_mismatch`` if the file ends before; StorageError ``store.io``."""
    digest, tree = hashlib.sha256(), CompactRange()
    with io_errors(ledger, "reading"), ledger.open("rb") as file:
        _, offset = read_header(file.read(MAX_HEADER))
        file.seek(0)
        digest.update(file.read(offset))
        pending = b""
        while offset < last.end:
            block = file.read(min(last.end - offset, 8 << 20))
            if not block:
                raise _mismatch(f"{ledger} ends before the records audited")
            skip = range(last.offset, last.offset + len(FRAME_MAGIC))  # the last frame's magic: left out
            digest.update(block[:max(0, skip.start - offset)])
            digest.update(block[max(0, skip.stop - offset):])
            offset += len(block)
            pending += block
            whole = _whole_frames(pending)
            frames = read_run(pending[:whole], tree.end, offset - len(pending))
            if frames is None:
                break
            for frame in frames:
                tree.append(leaf_hash(frame.payload))
            pending = pending[whole:]
    if pending or tree.end != last.index + 1 or tree.root() != root:
        raise CorruptStoreError(f"{ledger}: records 0..{last.index} are not the ones audited: the file changed during "
                                "the audit; no state is saved", code="store.changed")
    return digest.digest()


def _whole_frames(data: bytes) -> int:
    """The length of the longest run of whole frames (by their declared lengths) at the start of ``data``."""
    pos = 0
    while pos + FRAME_HEADER <= len(data):
        end = pos + FRAME_HEADER + int.from_bytes(data[pos + 4:pos + 8], "big")
        if end > len(data):
            break
        pos = end
    return pos


def _prefix(ledger: Path, last: Frame, head: Future[Any] | None = None) -> bytes:
    """SHA-256 of the bytes of the file ``ledger`` from its start to the end of its frame ``last`` (A - 1), that
    frame's magic left out: ``STR1`` in a file a writer left there, ``STRB`` in one whose batch went on (a copy
    cut inside a batch ends it there, docs/format.md §8), the records being the same. A resumed audit reads
    these bytes without decoding them, so that no record it does not replay can have changed. ``head``: the
    hash of the bytes before ``last``, started earlier (:func:`_hash_head`).
    Raises InputError ``audit.state_mismatch`` if the file ends before; StorageError ``store.io``."""
    digest = head.result().copy() if head is not None else _digest(ledger, 0, last.offset, hashlib.sha256())
    value: bytes = _digest(ledger, last.offset + len(FRAME_MAGIC), last.end, digest).digest()
    return value


def _hash_head(ledger: Path, stop: int) -> Future[Any]:
    """The SHA-256 object of the file's bytes [0, stop), computed in a thread while the state is restored (reads
    and hashing release the GIL): the first part of :func:`_prefix`."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="stonetrail-prefix")
    try:
        return pool.submit(_digest, ledger, 0, stop, hashlib.sha256())
    finally:
        pool.shutdown(wait=False)


def _digest(ledger: Path, start: int, stop: int, digest: Any) -> Any:
    """``digest`` updated with the file's bytes [start, stop). Raises InputError ``audit.state_mismatch`` if the
    file ends before; StorageError ``store.io``."""
    buffer = memoryview(bytearray(min(stop - start, 16 << 20)))  # large reads: few waits for the GIL in a thread
    with io_errors(ledger, "reading"), ledger.open("rb", buffering=0) as file:
        file.seek(start)
        while start < stop:
            n = file.readinto(buffer[:stop - start])
            if not n:
                raise _mismatch(f"{ledger} ends before the records audited")
            digest.update(buffer[:n])
            start += n
    return digest


def _tables(walk: _Walk, maps: dict[str, Any]) -> dict[str, tuple[list[Any], ...]]:
    """Every dictionary of ``walk`` as (keys, values) in the index's encoding of its table: the custody replay's
    items (and their types: :class:`ledger._state_rows.ItemRows`); per record hash the items it is the head of
    (``records``, the index's row with its signers and time unset: those are in the spill); and ``maps`` (an
    identity set as keys with empty values)."""
    state, of = walk.state, maps["head_of"]
    records = of.rows.columns() if isinstance(of, Field) else columns("records", {k: (None, None, v)
                                                                                  for k, v in of.items()})
    items = state.items if isinstance(state.items, ItemRows) else ItemRows()
    if items is not state.items:
        items.update(state.items)
    return {"items": items.columns(), "item_types": (items.types(),), "records": records,
            **{name: columns(_table(name), dict.fromkeys(m, b"") if isinstance(m, set) else m)
               for name, m in maps.items() if name != "head_of"}}


def _table(name: str) -> str:
    """The index table whose encoding the map ``name`` (:func:`_fresh`) has."""
    return name.rpartition(".")[2]


def _fresh() -> dict[str, Any]:
    """Empty maps for a new walk, by name: the custody replay's and the commitments' identity indexes, the item
    heads (``head_of``: field 2 of the ``records`` rows)."""
    ids: dict[str, Any] = {f"{owner}.{table}": set() if table == "id_frozen" else {} for owner in ("custody", "commit")
           for table in _ID_TABLES}
    return {**ids, "head_positions": {}, "head_latest": {}, "head_of": {}, "head_waiting": {}}


def _use_ids(index: IdentityIndex, maps: dict[str, Any], owner: str) -> None:
    index.use(claims=maps[f"{owner}.id_claims"], holder=maps[f"{owner}.id_holder"],
              standing=maps[f"{owner}.id_standing"], frozen=maps[f"{owner}.id_frozen"])


def _use_heads(heads: ItemHeads, maps: dict[str, Any]) -> None:
    heads.use(positions=maps["head_positions"], latest=maps["head_latest"], of=maps["head_of"],
              waiting=maps["head_waiting"])


def begin(ledger: str | Path, origin: str, keys: frozenset[bytes], level: str, sizes: frozenset[int], *,
          saved: Saved | None, keep: bool) -> Kept:
    """A walk for the ledger file ``ledger`` of ``origin`` at ``level`` taking roots at the checkpoint tree
    ``sizes``: new, or going on from ``saved`` (A records audited); ``keep``: its state is to be saved
    (commitments over every record).

    Raises:
        InputError: ``audit.state_mismatch`` (``saved`` is another ledger's, under other authority keys —
            the trusted ``keys`` —, or at another level),
            ``audit.checkpoint_before_state`` (a tree size below A), ``audit.state_damaged`` (contents that do
            not decode).
    """
    walk, head = _Walk(origin, keys, level, sizes, keep=keep), None
    if saved is not None:
        _check(saved, origin, keys, level, sizes)
        if saved.resume is not None:
            head = _hash_head(Path(ledger), saved.resume[1])
    try:
        maps = _fresh() if saved is None else _restore(walk, saved)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, zlib.error, StoneTrailError) as exc:
        raise damaged(f"its contents are not a state ({exc})") from exc
    _attach(walk, maps, sizes)
    return Kept(walk, maps, saved, Path(ledger), head)


def _check(saved: Saved, origin: str, keys: frozenset[bytes], level: str, sizes: frozenset[int]) -> None:
    """Refuse ``saved`` for another ledger, trust or level, or checkpoints below it (see :func:`begin`)."""
    if saved.origin != origin:
        raise _mismatch(f"it was saved for another ledger (origin {saved.origin}, this one: {origin})")
    if saved.authority != authority_digest(keys):
        raise _mismatch("it was saved under other authority keys (another --trust file): resume only with the trust "
                        "it was saved with, or audit from the start")
    if saved.level != level:
        policy = " (a policy is checked at level policy: a state saved without one does not resume with one, nor " \
                 "the other way round)" if "policy" in (saved.level, level) else ""
        raise _mismatch(f"it was saved at level {saved.level}, this audit is at level {level}{policy}")
    below = sorted(s for s in sizes if s < saved.size)
    if below:
        raise InputError(f"a checkpoint of tree size {below[0]} is below the {saved.size} records of the audit "
                         "state: it cannot be checked from it (audit from the start)",
                         code="audit.checkpoint_before_state")


def _attach(walk: _Walk, maps: dict[str, Any], sizes: frozenset[int]) -> None:
    """Keep ``walk``'s identity indexes and heads in ``maps``; drop its commitments if nothing needs them."""
    _use_ids(walk.state.identities, maps, "custody")
    if walk.commitments is None:
        walk.commitments = Commitments()
    _use_ids(walk.commitments.identities, maps, "commit")
    _use_heads(walk.commitments.heads, maps)
    if not walk.keep and not sizes:
        walk.commitments = None


def _restore(walk: _Walk, saved: Saved) -> dict[str, Any]:
    """``walk`` as it was at the end of the saved audit; returns the maps its identity indexes and heads keep
    their data in (:func:`_attach`)."""
    body = saved.body
    state, tables = walk.state, body["tables"]
    records = Rows("records", *tables["records"])
    state.items = ItemRows(*tables["items"], *tables["item_types"])
    state.spill.load(body["spill"])
    state.size = body["size"]
    registry = body["registry"]
    if type(registry) is not list or not all(
            type(entry) is list and len(entry) == 3 and type(entry[0]) is int and 0 <= entry[0] < saved.size
            and type(entry[1]) is bytes and type(entry[2]) is bool for entry in registry) \
            or [entry[0] for entry in registry] != sorted({entry[0] for entry in registry}):
        raise ValueError("registry records not as (position, bytes, committed) at increasing positions")
    for position, raw, committed in registry:
        record = Record.from_bytes(raw)
        walk.registry.append((position, record))
        if committed:
            state.registry.commit(record, position)
    if not all(type(lv) is int and 0 <= lv < 64 and type(ix) is int and 0 <= ix < 1 << 63
               for lv, ix, _ in body["range"]):
        raise ValueError("subtree hashes at levels or indices no tree has")
    walk.range = CompactRange.of(0, saved.size, (Node(lv, ix, Digest(h)) for lv, ix, h in body["range"]))
    walk.findings = [Finding(code=c, position=p, item=i, reason=r) for c, p, i, r in body["findings"]]
    walk.end = saved.size
    maps: dict[str, Any] = {name: Rows(_table(name), *tables[name]) for name in _fresh() if name != "head_of"}
    maps.update({name: set(m) for name, m in maps.items() if _table(name) == "id_frozen"}, head_of=Field(records, 2))
    return maps
