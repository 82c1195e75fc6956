"""A ledger published as a C2SP tlog-tiles log, and one item's proof bundle fetched from it (docs/format.md §8.5;
docs/adr/0024-published-log.md).

:func:`publish_log` writes, then keeps up to date, a directory that any static HTTP server serves: the tiles and
entry bundles of the log at a signed checkpoint's tree size, the files a client needs to build an item's bundle
(:mod:`ledger._published_format`), and last the ``checkpoint``. It reads the ledger's index
(:func:`ledger.index.reading.indexed_log`) and writes only what is new since the checkpoint the directory holds:
nothing but ``checkpoint`` is ever replaced (a partial tile of a new width is a new file), and a file that exists
must hold exactly the bytes it would be given.

:func:`fetch_bundle` reads such a directory over HTTP(S) (or file://): the checkpoint, opened under the pinned
operator keys, then only what the item needs, each byte verified against the checkpoint
(:class:`ledger._remote_log.RemoteLog`); the bundle is built by the exporter's own code
(:func:`ledger.export.bundle_from`), so it is byte-identical to ``export_bundle``'s under the same checkpoint, and
checked offline (:func:`ledger.bundle.check_bundle`) before it is returned.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from ._http_get import Fetcher, FetchError
from ._published_dir import CHECKPOINT_NAME, check_directory, exclusive, read_published, replace, write_new
from ._published_format import (
    MAX_CHECKPOINT,
    encode_entries,
    encode_leaves,
    encode_positions,
    entries_path,
    head_of,
    heads_path,
    identities_path,
    item_path,
    registry_path,
)
from ._remote_log import RemoteLog
from .bundle import check_bundle
from .checkpoint import Checkpoint, open_checkpoint, read_unverified_checkpoint
from .cosignature import has_cosignature
from .errors import (
    CorruptStoreError,
    InputError,
    StoneTrailError,
    StorageError,
    VerificationError,
    expect,
    expect_each,
    expect_path,
)
from .export import SelfCheckError, bundle_from
from .index.maps import IndexDamaged
from .index.reading import IndexedLog, index_fault, indexed_log
from .merkle import EMPTY_ROOT, leaf_hash, root_hash
from .note import note_signers
from .reader import LogPass, Progress, check_checkpoint
from .record import Record
from .storage import FrameFile, origin_of
from .storage.tile_check import CheckedTiles, tile_widths
from .storage.tiles import TILE_WIDTH, tile_path
from .trust import Trust
from .witnessed import check_witnesses

__all__ = ["CHECKPOINT_NAME", "FetchError", "PublishedLog", "fetch_bundle", "fetch_bundles", "publish_log"]


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishedLog:
    """What :func:`publish_log` did in ``directory``: the log published at ``tree_size`` (``previous``: the tree
    size the directory held before, None: none); ``written``: the new files (paths relative to it); ``unchanged``:
    the directory already held this checkpoint, byte for byte; ``ledger_size``: the records the ledger holds
    (more than ``tree_size``: a newer checkpoint would publish more)."""

    directory: Path
    tree_size: int
    previous: int | None
    written: tuple[str, ...]
    unchanged: bool
    ledger_size: int


def publish_log(ledger_path: str | Path, directory: str | Path, note: str, *,
                trust: Trust | None = None, allow_unwitnessed: bool = False, recheck: bool = False,
                progress: Progress | None = None) -> PublishedLog:
    """Publish the ledger file at ``ledger_path`` as of the signed checkpoint ``note`` in ``directory`` (created
    if missing), as the module docstring says; ``checkpoint`` is written last, atomically. The files are made
    and written a batch at a time (memory does not follow the log); with ``recheck``, every file the directory
    should hold is made and compared with the one it has, not only those new since its checkpoint (a pass over
    the log's records: to find a file altered or damaged since it was published). ``progress(done, total)`` is
    called as the tiles and the items' files are made (``done`` of ``total`` tiles and items).

    ``note`` is copied byte for byte (witness cosignatures included); with ``trust`` it must open under a pinned
    operator key and meet its witness policy, if any. It must be the ledger's
    (:func:`ledger.reader.check_checkpoint`) and extend the checkpoint the directory holds; and unless
    ``allow_unwitnessed``, it must carry witness cosignatures if the directory's checkpoint does (clients whose
    trust file requires them would be refused). Without ``trust``, it must be signed by a key that signed the
    directory's checkpoint (an operator key, name and key ID): another key, which clients may not pin, is
    published only when ``trust`` says it is the operator's.

    Raises:
        NoteFormatError: ``note``, or the directory's checkpoint, is malformed. UnverifiedNoteError /
            SignatureError: with ``trust``, not signed by a pinned operator key. VerificationError: the first of
            :func:`ledger.reader.checkpoint_problems`; ``publish.other_log`` (the directory holds another
            ledger's log), ``publish.rollback`` (its checkpoint is of a larger tree), ``publish.fork`` (its
            checkpoint is of another tree at its size), ``publish.conflict`` (a file there holds other bytes than
            this log's: none is replaced, the new files written before it was met stay, they are this log's),
            ``publish.unwitnessed`` (no cosignature, where the directory's checkpoint has some),
            ``publish.other_signer`` (without ``trust``: no key that signed the directory's checkpoint signed it);
            WitnessError ``witness.*`` (with ``trust``). InputError: ``publish.not_a_log`` (the directory holds
            other files than a published log's), ``publish.entry_too_large`` (a record over 65535 bytes),
            ``publish.empty`` (a checkpoint of the empty log: nothing to publish),
            ``store.not_a_ledger`` (``ledger_path`` is not a ledger file). StorageError:
            ``publish.no_index`` (the ledger's index cannot answer at the checkpoint's tree size: run ``stonetrail
            index``; or the file's damage instead, CorruptStoreError ``store.*``, or VerificationError
            ``checkpoint.beyond_log`` if the file holds fewer records), ``publish.locked`` (another publish of the
            directory is running), ``store.io``.
    """
    expect_path(ledger_path, "ledger_path")
    expect_path(directory, "directory")
    expect(note, str, "note", "signed checkpoint text (str)")
    cp = open_checkpoint(note, trust.operators) if trust else read_unverified_checkpoint(note)
    if trust is not None:
        check_witnesses(note, trust)
    origin = origin_of(ledger_path)  # InputError store.not_a_ledger (or not_a_file) before any index is asked
    if cp.origin != origin:  # before the index is asked: it could only say it cannot answer
        raise VerificationError(f"a checkpoint of another ledger ({cp.origin!r:.80}, not {origin!r:.80})",
                                code="checkpoint.origin_mismatch")
    if cp.tree_size == 0:
        raise InputError("the checkpoint is of the empty log: nothing to publish (append records, then sign a new "
                         "checkpoint)", code="publish.empty")
    out = Path(directory)
    check_directory(out)
    with exclusive(out):  # one publisher at a time: a second one waits for nothing, it is refused
        old_note = read_published(out)
        old = read_unverified_checkpoint(old_note) if old_note is not None else None
        if old_note is not None and has_cosignature(old_note) and not has_cosignature(note) and not allow_unwitnessed:
            raise VerificationError(f"{out / CHECKPOINT_NAME} carries witness cosignatures and this checkpoint none: "
                                    "clients that require witnesses would refuse the log; gather cosignatures "
                                    "('stonetrail checkpoint --witness-policy'), or allow it explicitly "
                                    "(--allow-unwitnessed)",
                                    code="publish.unwitnessed")
        log: IndexedLog | _Past | None = indexed_log(ledger_path, cp.tree_size) or _past(ledger_path, cp.tree_size)
        if log is None:
            raise _no_index(ledger_path, cp.tree_size)
        try:
            with log:
                _check_against_log(ledger_path, log, cp)
                _check_extends(log, old, cp, out)
                if old_note is not None and trust is None:
                    _check_signer(old_note, note, out)
                written = write_new(out, _files(log, cp, old.tree_size if old and not recheck else 0, out, progress))
                ledger_size = log.tree.size
        except StorageError as exc:
            if index_fault(exc):
                raise _no_index(ledger_path, cp.tree_size) from exc
            raise
        unchanged = old_note == note.encode("utf-8")
        if not unchanged:
            replace(out / CHECKPOINT_NAME, note.encode("utf-8"))
        return PublishedLog(directory=out, tree_size=cp.tree_size, previous=old.tree_size if old else None,
                            written=tuple(written), unchanged=unchanged, ledger_size=ledger_size)


class _Past:
    """The ledger at an earlier tree size than its index's, whose item-head and identity trees the index did not
    keep (a checkpoint older than the last two signed): tiles, records and the file's size from the index, the
    trees and the registry from one pass over the log's records below that size (:class:`ledger.reader.LogPass`)."""

    framing_ok = True

    def __init__(self, ledger_path: str | Path, whole: IndexedLog, size: int) -> None:
        self._whole, self.at, self.origin = whole, size, whole.origin
        self.index, self.records, self.tree = whole.index, whole.records, whole.tree
        with FrameFile(ledger_path) as file:
            self._pass = LogPass(file, at=size).drain()
        self.commitments = self._pass.commitments

    def registry_below(self, tree_size: int) -> list[tuple[int, Record]]:
        return self._pass.registry_below(tree_size)

    def __enter__(self) -> _Past:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._whole.close()


def _past(ledger_path: str | Path, size: int) -> _Past | None:
    """:class:`_Past` at ``size`` if the index covers the whole ledger (so at least ``size`` records), else None."""
    whole = indexed_log(ledger_path)
    if whole is None:
        return None
    if size == 0 or whole.index.size < size:
        whole.close()
        return None
    try:
        return _Past(ledger_path, whole, size)
    except BaseException:
        whole.close()
        raise


def _check_signer(old_note: bytes, note: str, out: Path) -> None:
    """Without a trust file: ``note`` must be signed by a key that signed the directory's checkpoint ``old_note``.
    Raises VerificationError ``publish.other_signer``."""
    old, new = note_signers(old_note), note_signers(note)
    if not old & new:
        raise VerificationError(f"{out / CHECKPOINT_NAME} is signed by {', '.join(sorted(old))} and this checkpoint "
                                f"by {', '.join(sorted(new)) or 'no operator key'}: clients "
                                "that pin the first would refuse the log; publish with --trust to check it against "
                                "the operator key you pin", code="publish.other_signer")


def _no_index(ledger_path: str | Path, size: int) -> StoneTrailError:
    """Why the ledger's index cannot answer at tree ``size``, read from the file in one pass (an error path): the
    file's damage (its first problem, whose reason says what to do), fewer records than ``size``
    (``checkpoint.beyond_log``), else an index to build (``publish.no_index``). The error names the file."""
    with FrameFile(ledger_path) as file:
        records = sum(1 for _ in file.frames())
        problems = file.survey.problems
    err: StoneTrailError
    if problems:
        err = CorruptStoreError(f"{ledger_path} is damaged: {problems[0].reason}", code=problems[0].code)
    elif records < size:
        err = VerificationError(f"the checkpoint's tree size {size} is over the {records} records of {ledger_path}: "
                                "the file lost records it covers, or it is another ledger's",
                                code="checkpoint.beyond_log")
    else:
        err = StorageError(f"publishing reads the ledger's index, and the index of {ledger_path} cannot answer at "
                           f"tree size {size} (missing, behind or damaged): build it with 'stonetrail index "
                           f"{shlex.quote(str(ledger_path))} --trust TRUST', then publish again",
                           code="publish.no_index")
    err.file = str(ledger_path)
    return err


def _check_against_log(ledger_path: str | Path, log: IndexedLog | _Past, cp: Checkpoint) -> None:
    """:func:`ledger.reader.check_checkpoint` of ``cp`` through the index; where it fails, again from the log's
    records (one pass below the tree size), whose verdict stands: the index is a cache, and a fault in it
    (``publish.no_index``) is not the checkpoint's."""
    try:
        check_checkpoint(log, cp)
    except VerificationError:
        with FrameFile(ledger_path) as file:
            check_checkpoint(LogPass(file, at=cp.tree_size).drain(), cp)
        raise IndexDamaged("the index does not give the checkpoint's lines, the log does") from None


def _check_extends(log: IndexedLog | _Past, old: Checkpoint | None, cp: Checkpoint, out: Path) -> None:
    """Refuse ``cp`` unless it extends ``old``, the directory's checkpoint (same origin, a tree of which the
    old is a prefix)."""
    if old is None:
        return
    where = f"{out / CHECKPOINT_NAME}"
    if old.origin != cp.origin:
        raise VerificationError(f"{where} is of another ledger ({old.origin}, not {cp.origin}): publish elsewhere",
                                code="publish.other_log")
    if old.tree_size > cp.tree_size:
        raise VerificationError(f"{where} is of tree size {old.tree_size}, larger than the checkpoint's "
                                f"{cp.tree_size}: publishing it would roll the log back", code="publish.rollback")
    root = log.tree.root_at(old.tree_size) if old.tree_size else EMPTY_ROOT
    if root != old.root_hash:
        raise VerificationError(f"{where} is of another tree at tree size {old.tree_size} than the ledger's: "
                                "another log of the same origin, or a fork; not replaced", code="publish.fork")


def _files(log: IndexedLog | _Past, cp: Checkpoint, since: int, out: Path, progress: Progress | None
           ) -> Iterator[tuple[str, bytes]]:
    """Every file the directory needs at ``cp``'s tree size that may be new since tree size ``since`` (those
    complete at ``since`` were written then, before its checkpoint), made one at a time. Every tile is checked to
    be part of the tree of ``cp``'s root (:class:`~ledger.storage.tile_check.CheckedTiles`: the index's tiles are
    a cache), and every entry to have its leaf hash in that tile, before it is given. ``progress(done, total)``
    is called after each tile and each item: the work of a publish, whose files may be new or not."""
    size = cp.tree_size
    tiles = CheckedTiles(log.index.db, size, cp.root_hash)
    widths, heads = list(tile_widths(size, since)), log.commitments.heads
    done, total = 0, len(widths) + len(heads)
    for level, index, width in widths:
        done += 1
        if progress is not None:
            progress(done, total)
        hashes = tiles.tile(level, index)
        yield tile_path(level, index, width), hashes
        if level == 0:
            payloads = [log.records.payload(p) for p in range(index * TILE_WIDTH, index * TILE_WIDTH + width)]
            if b"".join(leaf_hash(payload) for payload in payloads) != hashes:
                raise IndexDamaged(f"{entries_path(index, width)}: a record read is not the leaf its tile holds")
            yield entries_path(index, width), encode_entries(payloads)
    for name, tree in ((heads_path(size), heads), (identities_path(size), log.commitments.identities)):
        leaves = list(tree.leaves())
        if len(leaves) != len(tree) or root_hash([leaf_hash(leaf) for leaf in leaves]) != tree.root():
            raise IndexDamaged(f"{name}: the index's leaves are not the checkpoint's")  # e.g. rewritten snapshot rows
        yield name, encode_leaves(leaves)
    for leaf in heads.leaves():
        done += 1
        if progress is not None and (done % 64 == 0 or done == total):
            progress(done, total)
        item, position, _, count = head_of(leaf)
        path = item_path(item, count)
        if position >= since or not (out / path).exists():
            positions = heads.index[item]  # each a record of the item (read through the index: checked next)
            if any(log.records[p].record_hash != tiles.leaf(p) for p in positions):
                raise IndexDamaged(f"{path}: a record the index places is not the leaf the checkpoint's tree holds")
            yield path, encode_positions(positions)
            log.records.forget()  # the item's records, read to check its positions: not needed again
    registry = log.registry_below(size)
    yield registry_path(len(registry)), encode_positions([p for p, _ in registry])


def fetch_bundle(url: str, item: str, trust: Trust, *, timeout: float = 10.0, max_age: int | None = None) -> bytes:
    """The proof bundle of ``item`` from the published log at ``url`` (a directory URL: http, https or file),
    under its checkpoint; as :func:`fetch_bundles` for one item."""
    return fetch_bundles(url, [item], trust, timeout=timeout, max_age=max_age)[item]


def fetch_bundles(url: str, items: Sequence[str], trust: Trust, *, timeout: float = 10.0,
                  max_age: int | None = None) -> dict[str, bytes]:
    """Proof bundles of ``items`` from the published log at ``url`` under its ``checkpoint``, which must open
    under an operator key of ``trust`` and meet its witness policy, if any (``max_age``: witnessed at most that
    many seconds ago; :func:`ledger.witnessed.check_witnesses`), checked before anything else is read; each
    file read once, verified against it (module docstring), and each bundle checked with
    :func:`ledger.bundle.check_bundle` before it is returned. ``timeout``: seconds per request.

    Raises:
        InputError: ``fetch.bad_url`` (not http, https or file).
        FetchError: ``fetch.unavailable`` (network, HTTP status, timeout), ``fetch.too_large``, ``fetch.redirect``
            (a StorageError). NoteFormatError / UnverifiedNoteError / SignatureError: the checkpoint is
            malformed or not signed by a pinned operator key. VerificationError: a file is not what the
            checkpoint commits to (``fetch.tile_mismatch``, ``fetch.entry_mismatch``, ``fetch.leaves_mismatch``,
            ``fetch.positions_mismatch``, ``fetch.registry_mismatch``, ``proof.*``, ``checkpoint.*``), or a
            bundle fails its check (the first finding's code). WitnessError: ``witness.*`` (the witness policy).
            InputError: ``item.unknown``.
    """
    expect(url, str, "url", "a URL (str)")
    expect_each(items, str, "items", "an item id (text)")
    expect(trust, Trust, "trust", "a Trust (Trust.parse)")
    fetch = Fetcher(url, timeout)
    raw = fetch.get(CHECKPOINT_NAME, MAX_CHECKPOINT)
    cp = open_checkpoint(raw, trust.operators)
    check_witnesses(raw, trust, max_age=max_age)
    note = raw.decode("utf-8")  # open_checkpoint accepted it: UTF-8 text
    log = RemoteLog(fetch, cp)
    found = {}
    for item in items:
        try:
            data = bundle_from(log, log.records, item, note)
        except SelfCheckError as exc:
            first = exc.findings[0]
            raise VerificationError(f"the bundle of {item!r} built from {url} fails its check: {first.reason}",
                                    code=first.code) from None
        report = check_bundle(data, trust, max_age=max_age)
        if report.findings:
            first = report.findings[0]
            raise VerificationError(f"the bundle of {item!r} built from {url} fails its check: {first.code}: "
                                    f"{first.reason}", code=first.code)
        found[item] = data
    return found
