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

File format (docs/format.md §8.3; :mod:`ledger._state_file`): the line ``stonetrail-audit-state 5`` (LF), the
sections that grow with the log, written as they are made (the spill's tables, :meth:`ledger.spill.Spill.sections`;
the item heads' record -> items map, :meth:`ledger.spilled_of.SpilledOf.sections`), then the head: a msgpack map
(:func:`ledger._codec.pack_local`) of the rest, whose dictionaries of the replay (the items, the identity claims:
they follow the items) are encoded row by row with the persistent index's codecs
(:data:`ledger.index.state.TABLES`), with the item heads counted (per item its record count, latest position and
hash); the head's length; the SHA-256 of it all. A resumed audit reads the sections where they are, when the records
after the state ask (a statement's subject, a body seen before): neither saving nor resuming holds them in memory.
A state is the auditor's own file: its
hash detects damage (``audit.state_damaged``), not forgery; it is refused for another ledger, other authority
keys, another level or another version (``audit.state_mismatch``). Never pickle nor marshal: a state file is
input, and msgpack's decoder is safe on any bytes.
"""

from __future__ import annotations

import hashlib
import itertools
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from ._codec import pack_local, unpack_local_all
from ._files import write_file
from ._state_file import StateFile, damaged, state_bytes
from ._state_prefix import audited_prefix, hash_head, prefix_digest
from ._state_rows import ItemRows, Rows, encoded
from .audit_pass import _Walk
from .compact import CompactRange, Node
from .errors import InputError, StoneTrailError, VerificationError
from .findings import Finding
from .hashing import Digest
from .heads import ItemHeads
from .identity import IdentityIndex
from .index.db import SCHEMA
from .kept_findings import MAX_FINDINGS, KeptFindings
from .merkle import leaf_hash
from .record import Record
from .storage.framing import TORN, Frame, StoreProblem

__all__ = ["VERSION", "Kept", "Saved", "authority_digest", "begin"]

#: The state file format version (the number on its first line).
VERSION = 5
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
    """A state file opened and checked for damage (not yet matched to a ledger: :func:`begin`); its sections are
    read from ``file`` while the resumed audit runs: :meth:`close` it after.

    ``size``: A, the records audited; ``resume``: (A - 1, byte offset of frame A - 1) for
    :class:`ledger.storage.FrameFile`, None when A is 0 (read from the first frame).
    """

    def __init__(self, file: StateFile) -> None:
        self.file = file
        self.body = body = file.head
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
        # the findings past the audit's limit, by code, and that limit (absent: a state saved before there was one)
        omitted, self.limit = body.get("omitted", []), body.get("max_findings")
        if type(omitted) is not list or not all(type(o) is list and len(o) == 2 and type(o[0]) is str
                                                and type(o[1]) is int and o[1] > 0 for o in omitted) \
                or not (self.limit is None or (type(self.limit) is int and self.limit > 0)) \
                or (omitted and (self.limit is None or len(body["findings"]) != self.limit)):
            raise ValueError("findings left out not as [code, count], or not past the findings kept")
        self.omitted: dict[str, int] = dict(omitted)
        self.resume = None if last is None else (self.size - 1, last[0])

    @classmethod
    def read(cls, path: str | Path) -> Saved:
        """Open the state file at ``path``.

        Raises:
            InputError: ``audit.state_damaged`` (not a state file, its hash fails, or its contents are not a
                state's), ``audit.state_mismatch`` (another format version, or tables encoded as another index
                schema did: :data:`ledger.index.db.SCHEMA`). StorageError ``store.io``.
        """
        file = StateFile(path, VERSION)
        try:
            try:
                saved = cls(file)
            except (ValueError, TypeError, KeyError, IndexError) as exc:
                raise damaged(f"{path} does not hold an audit state ({exc})") from exc
            if saved.schema != SCHEMA:
                raise _mismatch(f"{path} encodes the replay's tables as index schema {saved.schema!r} did (this "
                                f"reads {SCHEMA})")
        except BaseException:
            file.close()
            raise
        return saved

    def close(self) -> None:
        """Close the state file (idempotent)."""
        self.file.close()


class Kept:
    """An audit walk whose state can be saved (:meth:`save`), new or resumed from a :class:`Saved`; ``maps``:
    the identity indexes' dictionaries (by name: :func:`_fresh`), which the walk's objects keep their data in."""

    def __init__(self, walk: _Walk, maps: dict[str, Any], saved: Saved | None, ledger: Path,
                 head: Future[Any] | None = None) -> None:
        self.walk, self.maps, self.saved, self.ledger, self.head = walk, maps, saved, ledger, head
        self.last: Frame | None = None
        self._audited: Frame | None = None  # frame A - 1 of a resumed read, until :meth:`confirm` checks the bytes

    def frames(self, frames: Iterable[Frame]) -> Iterator[Frame]:
        """``frames`` of the ledger (read from :attr:`Saved.resume` on a resumed walk), the last one noted for
        :meth:`save`. A resumed read first checks that frame A - 1 is the one audited, and drops it; once the
        frames are read, it checks that the file's bytes up to the end of that frame are the ones audited
        (:meth:`confirm`): the records after it are read meanwhile, while a thread hashes those bytes.
        Raises VerificationError ``audit.log_rewritten`` if they are not: the log was cut short or rewritten since
        the audit that saved the state (an integrity verdict on the ledger, not a usage error)."""
        frames = iter(frames)
        if self.saved is not None and self.saved.resume is not None:
            index, offset = self.saved.resume
            first = next(frames, None)
            if first is None:
                raise _rewritten(f"the file has no record at byte {offset}, where the audit read record {index}: the "
                                 "log was cut short (rolled back) or rewritten since, or it is another log of the "
                                 "same origin (an audit without --resume names what the file holds there, a torn "
                                 "tail included)")
            if (first.index, first.offset) != (index, offset) or leaf_hash(first.payload) != self.saved.body["last"][1]:
                raise _rewritten(f"record {index} of this file is not the one audited: the log was rewritten since")
            self.last, self._audited = first, first
        for frame in frames:
            self.last = frame
            yield frame
        self.confirm()

    def confirm(self) -> None:
        """Check, once, that the file's bytes up to the end of frame A - 1 are the ones the state was saved on
        (:func:`ledger._state_prefix.prefix_digest`; nothing to check on a new walk or before :meth:`frames` read
        that frame). An audit calls it before it gives a verdict or saves a state from a resumed walk: until then
        what the walk found stands on bytes not yet confirmed. Raises VerificationError ``audit.log_rewritten``."""
        first, self._audited = self._audited, None
        if first is not None and self.saved is not None \
                and prefix_digest(self.ledger, first, self.head) != self.saved.prefix:
            raise _rewritten(f"records 0..{first.index} of this file are not the ones audited: the log was rewritten "
                             "since")

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
        if walk.commitments is None or walk.item_of is None:
            raise TypeError("a walk kept to be saved has its commitments")
        counts, latest, waiting = walk.commitments.heads.counted_rows()
        body = {"origin": walk.origin, "authority": authority_digest(walk.state.registry.authority_keys),
                "level": walk.level, "schema": SCHEMA, "end": walk.end,
                "last": None if last is None else (last.offset, bytes(leaf_hash(last.payload))),
                "prefix": None if last is None else audited_prefix(self.ledger, last, walk.range.root()),
                "findings": [(f.code, f.position, f.item, f.reason) for f in walk.findings.kept],
                "omitted": [[code, count] for code, count in walk.findings.omitted.items()],
                "max_findings": walk.findings.limit,
                "range": [(n.level, n.index, bytes(n.hash)) for n in walk.range.nodes],
                "registry": [(p, r.raw, walk.state.registry.head_at(p + 1)[1] == r.record_hash)
                             for p, r in walk.registry],
                "size": walk.state.size,
                "heads": [(item, *counts[item], bytes(latest[item])) for item in sorted(counts)],
                "waiting": [(bytes(s), [(p, bytes(h)) for p, h in waiting[s]]) for s in sorted(waiting)]}
        sections = [*walk.state.spill.sections(), *walk.item_of.sections(), *_tables(walk, self.maps)]
        write_file(path, state_bytes(VERSION, sections, lambda where: {**body, "sections": where}))


def _tables(walk: _Walk, maps: dict[str, Any]) -> list[tuple[str, Iterator[bytes]]]:
    """The dictionaries of ``walk`` that follow the items, as sections ``table.<name>`` of msgpack documents, a row
    each, in the index's encoding of its table (:data:`ledger.index.state.TABLES`), made a run at a time: the custody
    replay's items ([key, value, the item's type]: :class:`ledger._state_rows.ItemRows`) and ``maps`` ([key,
    value]; an identity set's keys with empty values)."""
    items = walk.state.items
    typed = zip(items.encoded(), items.types(), strict=True) if isinstance(items, ItemRows) else (
        (row, item.type) for row, item in zip(encoded("items", items), items.values(), strict=True))
    return [("table.items", _runs([k, v, kind] for (k, v), kind in typed)),
            *((f"table.{name}", _runs(list(row) for row in encoded(_table(name), m))) for name, m in maps.items())]


def _runs(rows: Iterable[list[Any]]) -> Iterator[bytes]:
    rows = iter(rows)
    while run := list(itertools.islice(rows, 4096)):
        yield b"".join(pack_local(row) for row in run)


def _table_rows(saved: Saved, name: str, width: int) -> list[list[Any]]:
    """The rows of section ``table.<name>``, each a list of ``width`` fields. Raises ValueError, DecodeError."""
    rows = unpack_local_all(saved.file.section(f"table.{name}")[:])
    if not all(type(row) is list and len(row) == width for row in rows):
        raise ValueError(f"{name} rows not of {width} fields")
    return rows  # type: ignore[return-value]


def _table(name: str) -> str:
    """The index table whose encoding the map ``name`` (:func:`_fresh`) has."""
    return name.rpartition(".")[2]


def _fresh(owners: tuple[str, ...] = ("custody", "commit")) -> dict[str, Any]:
    """Empty maps for a new walk, by name: the identity indexes of the custody replay and of the commitments."""
    return {f"{owner}.{table}": set() if table == "id_frozen" else {} for owner in owners for table in _ID_TABLES}


def _use_ids(index: IdentityIndex, maps: dict[str, Any], owner: str) -> None:
    index.use(claims=maps[f"{owner}.id_claims"], holder=maps[f"{owner}.id_holder"],
              standing=maps[f"{owner}.id_standing"], frozen=maps[f"{owner}.id_frozen"])


def begin(ledger: str | Path, origin: str, keys: frozenset[bytes], level: str, sizes: frozenset[int], *,
          saved: Saved | None, keep: bool, file_bytes: int = 0, limit: int | None = MAX_FINDINGS) -> Kept:
    """A walk for the ledger file ``ledger`` (of ``file_bytes`` bytes) of ``origin`` at ``level`` taking roots at
    the checkpoint tree ``sizes``, keeping ``limit`` findings: new, or going on from ``saved`` (A records audited);
    ``keep``: its state is to be saved (commitments over every record).

    Raises:
        InputError: ``audit.state_mismatch`` (``saved`` is another ledger's, under other authority keys —
            the trusted ``keys`` —, or at another level; or it left findings out, and ``limit`` keeps more),
            ``audit.checkpoint_before_state`` (a tree size below A), ``audit.state_damaged`` (contents that do
            not decode).
    """
    walk, head = _Walk(origin, keys, level, sizes, keep=keep, file_bytes=file_bytes, limit=limit), None
    if saved is not None:
        _check(saved, origin, keys, level, sizes, limit)
        if saved.resume is not None:
            head = hash_head(Path(ledger), saved.resume[1])
    try:
        maps = _fresh(_owners(walk)) if saved is None else _restore(walk, saved)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, zlib.error, StoneTrailError) as exc:
        if isinstance(exc, StoneTrailError) and exc.code in ("audit.state_damaged", "store.io"):
            raise
        raise damaged(f"its contents are not a state ({exc})") from exc
    _use_ids(walk.state.identities, maps, "custody")
    if walk.commitments is not None:
        _use_ids(walk.commitments.identities, maps, "commit")
    return Kept(walk, maps, saved, Path(ledger), head)


def _owners(walk: _Walk) -> tuple[str, ...]:
    """Whose identity indexes the walk keeps: the custody replay's, and the commitments' if it has them."""
    return ("custody", "commit") if walk.commitments is not None else ("custody",)


def _check(saved: Saved, origin: str, keys: frozenset[bytes], level: str, sizes: frozenset[int], limit: int | None
           ) -> None:
    """Refuse ``saved`` for another ledger, trust or level, findings it left out that ``limit`` would keep, or
    checkpoints below it (see :func:`begin`)."""
    if saved.origin != origin:
        raise _mismatch(f"it was saved for another ledger (origin {saved.origin}, this one: {origin})")
    if saved.authority != authority_digest(keys):
        raise _mismatch("it was saved under other authority keys (another --trust file): resume only with the trust "
                        "it was saved with, or audit from the start")
    if saved.level != level:
        policy = " (a policy is checked at level policy: a state saved without one does not resume with one, nor " \
                 "the other way round)" if "policy" in (saved.level, level) else ""
        raise _mismatch(f"it was saved at level {saved.level}, this audit is at level {level}{policy}")
    if saved.omitted and saved.limit is not None and (limit is None or limit > saved.limit):
        keeps = "every finding" if limit is None else f"{limit:,} findings"
        raise _mismatch(f"it kept the first {saved.limit:,} findings and left {sum(saved.omitted.values()):,} out, "
                        f"this audit keeps {keeps}: resume with a limit of at most {saved.limit:,}, or audit from "
                        "the start")
    below = sorted(s for s in sizes if s < saved.size)
    if below:
        raise InputError(f"a checkpoint of tree size {below[0]} is below the {saved.size} records of the audit "
                         "state: it cannot be checked from it (audit from the start)",
                         code="audit.checkpoint_before_state")


def _restore(walk: _Walk, saved: Saved) -> dict[str, Any]:
    """``walk`` as it was at the end of the saved audit (its sections read where they are); returns the maps its
    identity indexes keep their data in."""
    body, file = saved.body, saved.file
    state = walk.state
    items = _table_rows(saved, "items", 3)
    state.items = ItemRows([k for k, _, _ in items], [v for _, v, _ in items], [t for _, _, t in items])
    state.spill.load(file)
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
    if not all(type(f) is list and len(f) == 4 and type(f[0]) is str and type(f[1]) in (int, type(None))
               and type(f[2]) in (str, type(None)) and type(f[3]) is str for f in body["findings"]):
        raise ValueError("findings not as (code, position or nil, item or nil, reason)")
    if not all(type(f[1]) is int and 0 <= f[1] < saved.size for f in body["findings"]):
        raise ValueError("findings not of the records saved")
    walk.findings = KeptFindings(walk.findings.limit, (Finding(code=c, position=p, item=i, reason=r)
                                                       for c, p, i, r in body["findings"]), saved.omitted)
    walk.end = saved.size
    if walk.commitments is not None and walk.item_of is not None:
        walk.item_of.load(file)
        _resume_heads(walk.commitments.heads, body["heads"], body["waiting"])
    maps: dict[str, Any] = {name: Rows(_table(name), *zip(*_table_rows(saved, name, 2), strict=True))
                            for name in _fresh(_owners(walk))}
    maps.update({name: set(m) for name, m in maps.items() if _table(name) == "id_frozen"})
    return maps


def _resume_heads(heads: ItemHeads, rows: list[Any], waiting: list[Any]) -> None:
    """Counted ``heads`` as saved: (item, count, latest position, latest hash) rows, (subject, [(position, hash)])
    rows of the statements waiting. Raises ValueError for rows not of those shapes."""
    if not all(type(r) is list and len(r) == 4 and type(r[0]) is str and type(r[1]) is int and r[1] > 0
               and type(r[2]) is int and r[2] >= 0 for r in rows) or not all(
            type(w) is list and len(w) == 2 and type(w[1]) is list and all(
                type(e) is list and len(e) == 2 and type(e[0]) is int for e in w[1]) for w in waiting):
        raise ValueError("item heads not as (item, count, latest position, latest hash) rows")
    heads.resume_counted({item: (count, last) for item, count, last, _ in rows},
                         {item: Digest(latest) for item, _, _, latest in rows},
                         {Digest(subject): [(p, Digest(h)) for p, h in entries] for subject, entries in waiting})
