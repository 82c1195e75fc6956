"""The log-only read side: what a ledger file's bytes say, read without an index (DESIGN.md §6).

One place reads a log and one answer says whether a checkpoint belongs to it. :class:`LogPass` reads a file
front to back in bounded memory (:class:`ledger.storage.FrameFile`), decodes each record once and keeps what a
checkpoint commits to: the RFC 9162 tree (§2.1.1) of its frames, its registry records (docs/format.md §7) and its
item heads and identities (:class:`~ledger.commitments.Commitments`, §7c, §7d). :func:`checkpoint_problems`
compares a checkpoint with it, with one set of codes (docs/format.md §10): the audit, the exporter, the
consistency and evidence builders and the checkpoint signers all decide through it. :func:`checkpoint_file`
signs a checkpoint of a file as it is; :func:`check_checkpoint_of` is what a signer runs on the lines it is
about to sign.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from .checkpoint import Checkpoint, sign_checkpoint
from .commitments import Commitments, Committed, line_problems
from .errors import CorruptStoreError, InputError, StoneTrailError, VerificationError
from .events import REGISTRY_KINDS
from .hashing import Digest
from .heads import HeadProof
from .keys import PrivateKey
from .merkle import MerkleTree, leaf_hash
from .record import Record
from .registry import checkpoint_registry, format_registry_extension
from .signer import check_checkpoint_signer, key_owners
from .storage import Frame, FrameFile, StoreProblem
from .storage.framing import TORN
from .trust import Trust

__all__ = [
    "CommittedLines",
    "LogPass",
    "Progress",
    "ReadSide",
    "Roots",
    "Seen",
    "check_checkpoint",
    "check_checkpoint_of",
    "checkpoint_file",
    "checkpoint_problems",
    "sign_log",
]

#: A progress callback: (records read, records in all; the second estimated from the bytes left until the last
#: call, where it is exact).
Progress = Callable[[int, int], None]


class Roots(Protocol):
    """An RFC 9162 tree's ``size`` (records in the file) and its roots at past sizes."""

    @property
    def size(self) -> int: ...

    def root_at(self, size: int) -> Digest: ...


class Tree(Roots, Protocol):
    """An RFC 9162 tree of a log's records: roots and inclusion proofs."""

    def inclusion_proof(self, index: int, size: int | None = None) -> list[Digest]: ...


class Heads(Committed, Protocol):
    """The item heads a checkpoint commits to, as a read side gives them (:class:`~ledger.heads.ItemHeads`)."""

    @property
    def index(self) -> Mapping[str, Sequence[int]]: ...

    def proof(self, item: str) -> HeadProof: ...

    def items_of(self, record: Record) -> frozenset[str]: ...


class Identities(Committed, Protocol):
    """The identity tree a checkpoint commits to (:class:`~ledger.identity.IdentityIndex`)."""

    def proofs(self, identities: Iterable[tuple[str, str]]) -> list[tuple[int, bytes, tuple[Digest, ...]]]: ...


class CommittedLines(Protocol):
    """The trees of a checkpoint's heads and identities lines at its tree size."""

    @property
    def heads(self) -> Committed: ...

    @property
    def identities(self) -> Committed: ...


class Lines(CommittedLines, Protocol):
    """A read side's heads and identities (:class:`~ledger.commitments.Commitments`)."""

    @property
    def heads(self) -> Heads: ...

    @property
    def identities(self) -> Identities: ...


class Seen(Protocol):
    """What :func:`checkpoint_problems` reads of a log at tree size ``at``: a :class:`ReadSide`, or an audit pass
    that kept only the roots and lines of the checkpoints it was given (:mod:`ledger.audit_pass`)."""

    @property
    def origin(self) -> str: ...

    @property
    def at(self) -> int | None: ...

    @property
    def framing_ok(self) -> bool: ...  # its frames are its records 0 .. n - 1: no damage but a torn tail

    @property
    def tree(self) -> Roots: ...

    @property
    def commitments(self) -> CommittedLines: ...

    def registry_below(self, tree_size: int) -> list[tuple[int, Record]]: ...


class ReadSide(Seen, Protocol):
    """What a read side answers about a log at tree size ``at``: :class:`LogPass` after a pass over the file, or
    the persistent index (:class:`ledger.index.reading.IndexedLog`) in O(log n) reads."""

    @property
    def tree(self) -> Tree: ...

    @property
    def commitments(self) -> Lines: ...


class LogPass:
    """One pass over the ledger file ``file`` (:meth:`records`, once): every frame's leaf in ``tree`` (RFC 9162
    §2.1.1, over the readable frames: the log's tree when ``framing_ok``), its readable registry-kind records in
    ``registry`` (leaf index, record), and the :class:`~ledger.commitments.Commitments` of its readable records
    below tree size ``at`` (None: all of them; ``at`` is then the number of records read).

    No rule is applied: the operator vouches for bytes, not validity, so for a ledger written through
    :class:`ledger.Ledger` these give the lines :meth:`ledger.Ledger.checkpoint` writes. An unreadable record
    is an audit's finding; it is no registry record and no item's record.
    """

    def __init__(self, file: FrameFile, *, at: int | None = None) -> None:
        self.file, self.origin, self.at = file, file.origin, at
        self.tree = MerkleTree()
        self.registry: list[tuple[int, Record]] = []
        self.commitments = Commitments()

    @property
    def problems(self) -> list[StoreProblem]:
        """The file's damaged spans (whole once :meth:`records` is exhausted)."""
        return self.file.survey.problems

    @property
    def framing_ok(self) -> bool:
        """True if the frames read are the log's first records (after :meth:`records`; :func:`framed_whole`)."""
        return framed_whole(self.problems)

    def records(self, progress: Progress | None = None, *, strict: bool = True
                ) -> Iterator[tuple[Frame, Record | InputError]]:
        """Each valid frame in order with its record, or the InputError that decoding it strictly raised, once
        it is added to ``tree``, ``registry`` and ``commitments``. ``progress(done, total)`` after each one.

        Raises:
            CorruptStoreError: ``strict`` and a damaged frame (the code of the first: ``store.*``).
            StorageError: I/O failure.
        """
        survey, done, total = self.file.survey, 0, 0
        for frame in self.file.frames():
            if strict and survey.problems:
                raise _damaged(survey.problems[0])
            yield frame, self._add(frame)
            done += 1
            if progress is not None:
                total = max(done, done * (survey.size - survey.start) // (frame.end - survey.start))
                progress(done, total)
        if strict and survey.problems:
            raise _damaged(survey.problems[0])
        if self.at is None:
            self.at = self.tree.size
        if progress is not None and total != done:
            progress(done, done)

    def _add(self, frame: Frame) -> Record | InputError:
        self.tree.append(leaf_hash(frame.payload))
        try:
            record = Record.from_bytes(frame.payload)
        except InputError as exc:
            return exc
        if record.body.kind in REGISTRY_KINDS:
            self.registry.append((frame.index, record))
        if self.at is None or frame.index < self.at:
            self.commitments.add(frame.index, record)
        return record

    def registry_below(self, tree_size: int) -> list[tuple[int, Record]]:
        """The registry-kind records (leaf index, record) below ``tree_size``."""
        return [(position, record) for position, record in self.registry if position < tree_size]


    def drain(self, progress: Progress | None = None, *, strict: bool = True) -> LogPass:
        """Read every record (:meth:`records`); return self."""
        for _ in self.records(progress, strict=strict):
            pass
        return self


def framed_whole(problems: Sequence[StoreProblem]) -> bool:
    """True if the valid frames of a file whose damaged spans are ``problems`` are its records 0 .. n - 1 in
    order: no damage, or only a torn tail (a crash's, always the last problem). The tree of any checkpoint of n
    records or fewer is then known, and a larger one's records are missing (``checkpoint.beyond_log``)."""
    return all(p.code == TORN for p in problems)


def _damaged(problem: StoreProblem) -> CorruptStoreError:
    return CorruptStoreError(f"{problem.reason}; run 'stonetrail verify' for every finding", code=problem.code)


def registry_line(log: Seen, tree_size: int) -> tuple[int, Digest | None]:
    """(size, head) of ``log``'s registry below ``tree_size``: what a checkpoint of that size commits to."""
    below = log.registry_below(tree_size)
    return len(below), below[-1][1].record_hash if below else None


def checkpoint_problems(log: Seen, cp: Checkpoint) -> list[StoneTrailError]:
    """Every way ``cp`` is not the checkpoint of ``log`` (read whole, ``log.at`` = ``cp.tree_size``) at its tree
    size; empty: it is. The one answer of the read side (docs/format.md §7, §7c, §7d, §10):

    - ``checkpoint.origin_mismatch``: another ledger's (nothing else is compared);
    - ``checkpoint.unchecked``: the file's framing is damaged (other than a torn tail; the audit passes only the
      damage below ``cp.tree_size``), so its tree is unknown;
    - ``checkpoint.beyond_log``: its tree size is over the file's records (a rollback of the file, or another's);
    - ``checkpoint.root_mismatch``: the file's root at its tree size (RFC 9162 §2.1.1) is not its root hash;
    - ``checkpoint.registry_missing`` / ``checkpoint.registry_mismatch``: its registry line is not the file's
      registry-kind records below its tree size (count, last record's hash);
    - ``checkpoint.heads_*``, ``checkpoint.identities_*``: :meth:`ledger.commitments.Commitments.problems`;
    - ``checkpoint.extension`` (NoteFormatError): a malformed or repeated extension line.

    The root, registry, heads and identities lines are all compared, so a finding says which of them differ.
    Raises ValueError if ``log`` was not read for ``cp``'s tree size.
    """
    if cp.origin != log.origin:
        return [VerificationError(f"a checkpoint of another ledger ({cp.origin}, not {log.origin})",
                                  code="checkpoint.origin_mismatch")]
    if not log.framing_ok:
        return [VerificationError("the ledger's framing is damaged (not only a torn tail), so its tree cannot be "
                                  "compared",
                                  code="checkpoint.unchecked")]
    if cp.tree_size > log.tree.size:
        return [VerificationError(f"checkpoint tree size {cp.tree_size} > {log.tree.size} records in the file: "
                                  "the file lost records it covers, or it is another file's",
                                  code="checkpoint.beyond_log")]
    if log.at != cp.tree_size:
        raise ValueError(f"the log was read for tree size {log.at}, not {cp.tree_size}")
    found: list[StoneTrailError] = []
    if log.tree.root_at(cp.tree_size) != cp.root_hash:
        found.append(VerificationError(f"the file's root at tree size {cp.tree_size} is not the checkpoint's root "
                                       "hash: the checkpoint is of another tree", code="checkpoint.root_mismatch"))
    found += _registry_problems(log, cp)
    lines = log.commitments
    return found + line_problems(cp, lines.heads, lines.identities)


def _registry_problems(log: Seen, cp: Checkpoint) -> list[StoneTrailError]:
    try:
        claimed = checkpoint_registry(cp)
    except (InputError, VerificationError) as exc:
        return [exc]
    actual = registry_line(log, cp.tree_size)
    if claimed == actual:
        return []

    def show(size: int, head: Digest | None) -> str:
        return f"{size} records, head {head.b64() if head else 'none'}"

    return [VerificationError(f"the checkpoint commits to a registry of {show(*claimed)}; the file's registry at "
                              f"tree size {cp.tree_size} has {show(*actual)}", code="checkpoint.registry_mismatch")]


def check_checkpoint(log: ReadSide, cp: Checkpoint) -> None:
    """Raise the first of :func:`checkpoint_problems` (VerificationError, NoteFormatError), if any."""
    for problem in checkpoint_problems(log, cp):
        raise problem


def check_checkpoint_of(path: str | Path, cp: Checkpoint, progress: Progress | None = None) -> None:
    """Check that ``cp`` (a checkpoint a writer is about to sign, or one it was given) is the ledger file at
    ``path``'s at its tree size: origin, tree size, root hash, registry, heads and identities lines
    (:func:`checkpoint_problems`). Reads the file once, without locking.

    Raises:
        VerificationError / NoteFormatError: the first of :func:`checkpoint_problems`.
        CorruptStoreError: damaged framing. InputError: ``store.not_a_ledger``. StorageError: I/O failure.
    """
    with FrameFile(path) as file:
        log = LogPass(file, at=cp.tree_size)
        if cp.origin == file.origin:
            log.drain(progress)
        check_checkpoint(log, cp)


def checkpoint_file(path: str | Path, key: PrivateKey, name: str | None = None, *, trust: Trust | None = None,
                    progress: Progress | None = None) -> str:
    """Sign a C2SP checkpoint of the ledger file at ``path`` as it is now (reads it once, without locking).

    Before signing, ``key`` is refused if the file's registry gives it to a party or the authority, and with
    ``trust`` unless (``name``, ``key``) is a pinned operator key (:func:`ledger.signer.check_checkpoint_signer`).

    The operator vouches for the log's bytes, not for its records' validity (that is an audit's job); but a
    file with damaged framing is refused, since its tree would be ambiguous. The registry, heads and identities
    lines are the file's readable records' (:class:`LogPass`), without checking their rules; what is signed is
    checked by :func:`checkpoint_problems` first. ``progress``: as :meth:`LogPass.records`.

    Returns:
        The signed note text (origin, tree size, base64 root hash, registry, heads and identities lines;
        signature line by ``name``, default origin).
    Raises:
        CorruptStoreError: the file has a torn tail or a damaged frame. StorageError: I/O failure.
        InputError: ``checkpoint.party_key``, ``trust.not_operator`` (the key is not the operator's).
    """
    with FrameFile(path) as file:
        log = LogPass(file).drain(progress)
    return sign_log(log, key, name, trust=trust)


def sign_log(log: ReadSide, key: PrivateKey, name: str | None = None, *, trust: Trust | None = None) -> str:
    """Sign a C2SP checkpoint of all of ``log`` (a read side over the whole file): its tree size, root hash
    (RFC 9162 §2.1.1), registry, heads and identities lines, after the signer checks of :func:`checkpoint_file`
    and :func:`checkpoint_problems` on what is about to be signed. Raises as :func:`checkpoint_file`."""
    size = log.tree.size
    registry = log.registry_below(size)
    check_checkpoint_signer(log.origin, name or log.origin, key.public_key,
                            owners=key_owners(record for _, record in registry), trust=trust)
    lines = log.commitments
    cp = Checkpoint(origin=log.origin, tree_size=size, root_hash=log.tree.root_at(size),
                    extensions=(format_registry_extension(*registry_line(log, size)), lines.heads.extension(),
                                lines.identities.extension()))
    check_checkpoint(log, cp)
    return sign_checkpoint(cp, name or log.origin, key)
