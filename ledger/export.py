"""Export proof bundles from a ledger file: the I/O side of :mod:`ledger.bundle` (which never touches a file).

:func:`export_bundles` reads the file once (without locking, in bounded memory: :class:`ledger.reader.LogPass`),
checks that the given signed checkpoint is of this file as every reader decides it
(:func:`ledger.reader.checkpoint_problems`: origin, tree size, root hash, registry, heads and identities lines) and
that the registry records it covers are one hash-linked chain, finds each item's scope
among the records below the tree size (:func:`ledger.scope.provenance_scope`, the same function the
verifier uses), and builds each bundle with RFC 9162 inclusion proofs at the checkpoint's tree size and the
item-head proofs (:mod:`ledger.heads`). O(n) in the file: every record below the tree size is decoded once, since
the item-head tree names every item, and only the scopes' records are kept. Through the ledger's index
(:mod:`ledger.index.reading`) the same bundle costs O(log n) reads per record.

**Self-check.** Before a bundle is returned (and so before ``stonetrail proof export`` writes a file), the exporter
checks what its read side supplied — the index is a cache, never an authority: the bundle's bytes read back as
exactly the parts built (:func:`ledger.bundle.encode_bundle`), and every proof in it holds against the checkpoint,
with the verifier's own checks (:func:`ledger.bundle.check_bundle_proofs`): each record's and registry record's
bytes hash to a leaf proven at its index under the checkpoint's root and tree size, each item-head proof against
its ``stonetrail-heads`` line, each identity leaf against its ``stonetrail-identities`` line. A failure raises
:class:`SelfCheckError` (``export.self_check``) and nothing is returned. The records' and the checkpoint's
signatures are not checked again: they are the signers' own bytes, the same the log-only path gives, and the
bundle's verifier checks them under its pinned keys. Beyond that the exporter vouches for nothing: the bundle is
worth what :func:`ledger.bundle.check_bundle` says.

A bundle is current only as of its checkpoint. By default the exporter refuses a checkpoint that misses a record
of the bundle's items the file holds after it (``checkpoint.stale``: a stone sold or reported stolen since
would be proven "live"); ``as_of=True`` (``stonetrail proof export --as-of``) asks for the older view explicitly,
and :func:`export_bundle_as_of` says which later records the bundle leaves out. The bundle format records
nothing of this: an offline verifier knows only the checkpoint it is given (docs/format.md §7a.3).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from ._text import did_you_mean
from .bundle import Bundle, check_bundle_proofs, encode_bundle
from .checkpoint import Checkpoint, open_checkpoint, read_unverified_checkpoint
from .errors import BundleFormatError, InputError, StoneTrailError, VerificationError, expect, expect_each, expect_path
from .findings import Finding
from .index.maps import IndexDamaged
from .index.reading import IndexedLog, Records, indexed_log, through_index
from .pg.db import is_url
from .pg.store import as_file, pg_view
from .reader import LogPass, Progress, ReadSide, check_checkpoint
from .record import Record
from .registry import checkpoint_registry, verify_registry_chain
from .scope import provenance_scope, scope_claims
from .storage import FrameFile
from .trust import Trust

__all__ = ["AsOf", "SelfCheckError", "StaleCheckpointError", "bundle_from", "export_bundle", "export_bundle_as_of",
           "export_bundles"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AsOf:
    """A bundle exported as of its checkpoint (``tree_size`` records), from a file of ``file_size`` records;
    ``later``: the leaf indices after the checkpoint that are records of the bundle's items (the item, its
    ancestors, the articles it was set in), which the bundle leaves out (empty: the bundle is current)."""

    bundle: bytes
    tree_size: int
    file_size: int
    later: tuple[int, ...]


def export_bundle(ledger_path: str | Path, item: str, checkpoint: str, *, trust: Trust | None = None,
                  as_of: bool = False, progress: Progress | None = None) -> bytes:
    """The proof bundle of ``item`` from the ledger file at ``ledger_path`` under the signed ``checkpoint``
    note. As :func:`export_bundles` for one item."""
    return export_bundles(ledger_path, [item], checkpoint, trust=trust, as_of=as_of, progress=progress)[item]


def export_bundle_as_of(ledger_path: str | Path, item: str, checkpoint: str, *,
                        trust: Trust | None = None, progress: Progress | None = None) -> AsOf:
    """The proof bundle of ``item`` as of ``checkpoint`` even if the file holds later records of it, with the
    positions of those records (to warn whoever asked for the older view). Raises as :func:`export_bundles`,
    ``checkpoint.stale`` only for an item the ledger creates after the checkpoint (no bundle under it can hold
    it: ``done.bundle`` is empty)."""
    return _export(ledger_path, [item], checkpoint, trust, progress)[item]


def export_bundles(ledger_path: str | Path, items: Sequence[str], checkpoint: str, *,
                   trust: Trust | None = None, as_of: bool = False, progress: Progress | None = None
                   ) -> dict[str, bytes]:
    """Proof bundles of several ``items`` of one ledger file, reading it once.

    The checkpoint's signature is verified only with ``trust`` (an exporter may hold no pinned key); its content
    is always checked against the file. The checkpoint must cover every record the file holds of each bundle's
    items, unless ``as_of`` (then a bundle may be current only as of an older checkpoint). ``progress``, if given,
    is called with (records read, records in all) while the file is read.

    Raises:
        StaleCheckpointError: ``checkpoint.stale`` (a VerificationError; without ``as_of``: the file holds a
            record of a bundle's item, ancestor or article after the checkpoint; with it too: the file creates the
            item after the checkpoint; sign a new checkpoint).
        NoteFormatError: the checkpoint is malformed. UnverifiedNoteError / SignatureError: with ``trust``, it
            is not signed by a pinned operator key. VerificationError: the first of
            :func:`ledger.reader.checkpoint_problems` (``checkpoint.origin_mismatch``, ``checkpoint.beyond_log``,
            ``checkpoint.root_mismatch``, ``checkpoint.registry_*``, ``checkpoint.heads_*``,
            ``checkpoint.identities_*``). SelfCheckError: ``export.self_check`` (a VerificationError: a bundle
            fails the exporter's own check of it, module docstring; nothing is returned). RuleError:
            ``registry.gap`` (the file's registry records it covers are not one hash-linked chain). InputError:
            ``item.unknown`` (no such item below the tree size). CorruptStoreError: damaged framing.
            StorageError: I/O failure.
    """
    exported = _export(ledger_path, items, checkpoint, trust, progress)
    for item, done in exported.items():
        if done.later and not as_of:
            raise StaleCheckpointError(item, done)
    return {item: done.bundle for item, done in exported.items()}


class StaleCheckpointError(VerificationError):
    """The checkpoint misses records the ledger file holds of a bundle's item or its provenance
    (``checkpoint.stale``): ``item``, and the :class:`AsOf` export it would have given (``done.later``; an
    empty ``done.bundle``: the item is created after the checkpoint, so none); ``message`` replaces the default
    one (a tool saying how to sign a fresh checkpoint)."""

    default_code = "checkpoint.stale"

    def __init__(self, item: str, done: AsOf, message: str | None = None) -> None:
        more = f" and {len(done.later) - 1} more" if len(done.later) > 1 else ""
        default = (f"the checkpoint (tree size {done.tree_size}) is stale for {item!r}: the ledger has "
                   f"{done.file_size} records, and record {done.later[0]}{more} of its provenance came after it, so a "
                   "bundle under it would leave out the item's latest state; sign a new checkpoint, or export as of "
                   "this one explicitly (as_of)") if done.bundle else (
                   f"the checkpoint (tree size {done.tree_size}) predates {item!r}: the ledger creates it at record "
                   f"{done.later[0]}; sign a new checkpoint")
        super().__init__(message or default)
        self.item = item
        self.done = done


class SelfCheckError(VerificationError):
    """A bundle the exporter built fails its own check before it is handed out (``export.self_check``, module
    docstring): a proof, leaf or record its read side (the index, a cache) supplied does not hold against the
    checkpoint, or the bytes do not read back as what was built. ``item``: the bundle's item; ``findings``: every
    finding of the check (:func:`ledger.bundle.check_bundle_proofs`), the first in the message; ``advice`` ends
    the message (what to do: a tool names its command). A file ledger's export raises it only for a bundle built
    from the log itself (one from the index that fails is never used)."""

    default_code = "export.self_check"

    def __init__(self, item: str, findings: Sequence[Finding],
                 advice: str = "audit the ledger (a bundle built from its log failed)") -> None:
        first = findings[0]
        where = f" (record {first.position})" if first.position is not None else ""
        super().__init__(f"the bundle of {item!r} fails the exporter's own check, so it is not exported: {first.code}"
                         f"{where}: {first.reason}; {advice}")
        self.item = item
        self.findings = tuple(findings)


def _export(ledger_path: str | Path, items: Sequence[str], checkpoint: str, trust: Trust | None,
            progress: Progress | None = None) -> dict[str, AsOf]:
    """Each item's bundle under ``checkpoint`` and the file's later records of its scope (:class:`AsOf`)."""
    expect_path(ledger_path, "ledger_path")  # ArgumentError (input.type) naming the argument, before any I/O
    expect_each(items, str, "items", "an item id (text)")
    expect(checkpoint, str, "checkpoint", "signed checkpoint text (str)")
    expect(trust, (Trust, type(None)), "trust", "a Trust (Trust.parse) or None")
    if is_url(ledger_path):  # a database ledger answers from its tables (docs/adr/0023-postgresql-store.md)
        cp = open_checkpoint(checkpoint, trust.operators) if trust else read_unverified_checkpoint(checkpoint)
        try:
            view = pg_view(str(ledger_path), cp.tree_size)
        except KeyError:  # no trees kept at that size (a checkpoint signed elsewhere): the log-only path, over a
            with as_file(ledger_path) as local:  # checked copy of the records
                return _export(local, items, checkpoint, trust, progress)
        with view:
            return _bundles(view, view.records, items, checkpoint, view.later)
    answered = through_index(_indexed(ledger_path, checkpoint, trust),  # O(log n) reads: no pass to report
                             lambda log: (log.tree.size, _from_index(log, items, checkpoint)))
    if answered is not None:
        if progress is not None:
            progress(answered[0], answered[0])
        return answered[1]
    with FrameFile(ledger_path) as file:  # no index that can answer: one pass over the log
        cp = _open(file, checkpoint, trust)
        log = LogPass(file, at=cp.tree_size)
        later = _later(log, cp.tree_size, progress)
        return _bundles(log, Records(file.payload), items, checkpoint,
                        lambda scope: tuple(p for p, named in later if not named.isdisjoint(scope)))


def _from_index(log: IndexedLog, items: Sequence[str], checkpoint: str) -> dict[str, AsOf]:
    """The bundles of ``items`` from the index. A checkpoint that is not the index's, or a bundle that fails its
    own check there (rows a checksum passes, written by someone else, e.g. a stone's positions), is left to the
    log: IndexDamaged, and the caller reads the log, which names the fault if it is the checkpoint's."""
    try:
        return _bundles(log, log.records, items, checkpoint, log.later)
    except VerificationError as exc:  # the checkpoint not the index's, or a bundle failing its own check: the log
        raise IndexDamaged(f"the index does not give the checkpoint's bundles ({exc})") from exc  # says which


def _indexed(ledger_path: str | Path, note: str, trust: Trust | None) -> IndexedLog | None:
    """The ledger's index at ``note``'s tree size, if it can answer (:func:`ledger.index.reading.indexed_log`)."""
    try:
        cp = open_checkpoint(note, trust.operators) if trust else read_unverified_checkpoint(note)
    except StoneTrailError:
        return None  # the log path names the fault, after the file's framing
    return indexed_log(ledger_path, cp.tree_size)


def bundle_from(log: ReadSide, records: Records, item: str, note: str) -> bytes:
    """``item``'s bundle under the signed checkpoint ``note`` (already opened by the caller) from any read side at
    its tree size, with nothing later (a published log read over HTTP, :mod:`ledger.published`): the bytes
    :func:`export_bundle` gives under the same checkpoint. Raises as :func:`export_bundles` (not
    ``checkpoint.stale``)."""
    return _bundles(log, records, [item], note, lambda _: ())[item].bundle


def _bundles(log: ReadSide, records: Records, items: Sequence[str], note: str,
             later: Callable[[Collection[str]], tuple[int, ...]]) -> dict[str, AsOf]:
    """Each item's bundle under the checkpoint ``note`` (of ``log``'s tree size), after checking the checkpoint
    is ``log``'s (:func:`ledger.reader.check_checkpoint`)."""
    cp = read_unverified_checkpoint(note)  # opened (and verified) by the caller
    check_checkpoint(log, cp)
    registry = log.registry_below(cp.tree_size)
    verify_registry_chain([record for _, record in registry], *checkpoint_registry(cp))  # its links
    return {item: _bundle(log, records, item, note, cp, later) for item in items}


def _open(file: FrameFile, note: str, trust: Trust | None) -> Checkpoint:
    """The checkpoint ``note`` (verified with ``trust``). A note that does not open raises after the file's
    framing is read: damage in the file is named first, as every reader names it."""
    try:
        return open_checkpoint(note, trust.operators) if trust else read_unverified_checkpoint(note)
    except StoneTrailError:
        LogPass(file, at=0).drain()
        raise


def _later(log: LogPass, tree_size: int, progress: Progress | None) -> list[tuple[int, frozenset[str]]]:
    """Read ``log`` whole; return its readable records after the checkpoint, each with the items it is a record
    of as far as the checkpoint's records tell (:meth:`ledger.heads.ItemHeads.items_of`: those it names, and for
    a statement those its subject is a record of). Unreadable: no item's record (an audit names it)."""
    heads = log.commitments.heads
    return [(frame.index, heads.items_of(record)) for frame, record in log.records(progress)
            if frame.index >= tree_size and isinstance(record, Record)]


def _bundle(log: ReadSide, records: Records, item: str, note: str, cp: Checkpoint,
            later: Callable[[Collection[str]], tuple[int, ...]]) -> AsOf:
    """``item``'s bundle under ``cp`` (the signed ``note``) from ``log``, read whole and checked."""
    heads, registry = log.commitments.heads, log.registry_below(cp.tree_size)
    scope = provenance_scope(records, item, heads.index)
    if not scope.items:
        if missed := later({item}):  # created after the checkpoint: no bundle under it can hold the item
            raise StaleCheckpointError(item, AsOf(bundle=b"", tree_size=cp.tree_size, file_size=log.tree.size,
                                                  later=missed))
        raise InputError(f"no item {item!r} in the ledger (none of its {log.tree.size} records creates it)"
                         f"{did_you_mean(item, heads.index)}", code="item.unknown")
    positions = sorted({*scope.positions, *(p for p, _ in registry)})
    latest = [(name, heads.proof(name)) for name in scope.items]
    claimed = {(kind, key) for kind, key, _, _ in scope_claims(records, scope)[0]}
    bundle = _self_checked(item, lambda: encode_bundle(
        item, note, [(p, records.payload(p), log.tree.inclusion_proof(p, cp.tree_size)) for p in positions],
        [(name, head.index, head.proof) for name, head in latest], log.commitments.identities.proofs(claimed)),
        records)
    missed = later(scope.items)
    return AsOf(bundle=bundle, tree_size=cp.tree_size, file_size=log.tree.size, later=missed)


def _self_checked(item: str, build: Callable[[], tuple[bytes, Bundle]], records: Records) -> bytes:
    """The bytes of the bundle ``build`` gives (:func:`ledger.bundle.encode_bundle`: the bytes and the parts they
    read back as), once its proofs hold against its checkpoint (:func:`ledger.bundle.check_bundle_proofs`; the
    records decoded from ``records`` are taken as they are where the bundle holds their bytes).

    Raises:
        SelfCheckError: a finding, or the bytes read back as other parts (``bundle.read_back``).
    """
    try:
        data, back = build()
    except BundleFormatError as exc:
        if exc.code != "bundle.read_back":
            raise
        raise SelfCheckError(item, [Finding(code=exc.code, position=None, item=item, reason=str(exc))]) from exc
    if findings := check_bundle_proofs(back, dict(records.items())):
        raise SelfCheckError(item, findings)
    return data
