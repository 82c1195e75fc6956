"""Append-only over time (DESIGN.md §1.4): consistency proofs between two signed checkpoints of one ledger.

A later checkpoint extends an earlier one when the earlier tree is a prefix of the later tree: RFC 9162
§2.1.4 consistency proof, with both sizes and both roots taken from the *signed* checkpoints. The proof file
repeats the two sizes only so that a proof cannot silently be applied to the wrong pair of checkpoints; they
are compared with the checkpoints and never used in place of them.

Consistency-proof file, version 1 (UTF-8 text, each line ending in "\\n"; docs/format.md §7b §1)::

    stonetrail/v1/consistency-proof
    old <old tree size>                 ASCII decimal, "0" or [1-9][0-9]*, < 2**64
    new <new tree size>                 the same
    <base64 hash>                       zero or more lines: PROOF(old, D[new]) of RFC 9162 §2.1.4.1, in order

Valid only if :func:`format_consistency_proof` gives back the same text (no blank, extra or trailing line;
canonical padded base64 of exactly 32 bytes).

Size 0: the core verifier (:func:`ledger.merkle.verify_consistency`) refuses consistency from size 0
(DESIGN.md §2). At the checkpoint level, a checkpoint of size 0 commits to nothing but the empty tree, which is
a prefix of every tree, so :func:`verify_checkpoint_consistency` accepts old size 0 without calling the core
verifier, provided the old root is MTH({}) = SHA-256("") and the proof has no hash (both signatures, the
origin and the registry line are still checked). Refusing it would only make a ledger's first checkpoint a
dead end for its monitors; but it proves nothing, and the result says so: its verdict is
:data:`NOTHING_TO_COMPARE`, never "consistent" (docs/adr/0010). Equal sizes compare the roots and lines
(:data:`SAME_TREE`); only a proof between two non-empty trees of different sizes shows that one extends the
other (:data:`EXTENDS`).

Fault split: a malformed proof file is :class:`ProofFormatError` (InputError, ``consistency.malformed``);
two checkpoints that contradict each other raise :class:`ConsistencyError` (``consistency.*``); a proof file
that does not fit them (made for another pair, or damaged) raises ``consistency.size_mismatch`` or a
:class:`~ledger.errors.ProofError` (``proof.*``): the codes of :data:`PROOF_MISMATCH`, which say that the pair
was not *shown* consistent, not that it is inconsistent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from .checkpoint import MAX_TREE_SIZE, Checkpoint, open_checkpoint
from .errors import InputError, ProofError, StoneTrailError, VerificationError
from .hashing import Digest
from .heads import checkpoint_heads
from .identity import checkpoint_identities
from .merkle import EMPTY_ROOT, verify_consistency
from .registry import checkpoint_registry
from .trust import Trust
from .witnessed import Witnessed, check_witnesses

__all__ = [
    "EXTENDS",
    "MAX_PROOF_HASHES",
    "NOTHING_TO_COMPARE",
    "PROOF_HEADER",
    "PROOF_MISMATCH",
    "SAME_TREE",
    "Consistency",
    "ConsistencyError",
    "ConsistencyProof",
    "ProofFormatError",
    "SplitViewError",
    "format_consistency_proof",
    "parse_consistency_proof",
    "verify_checkpoint_consistency",
]

#: First line of a consistency-proof file.
PROOF_HEADER: Final = "stonetrail/v1/consistency-proof"
#: Most hashes in a consistency proof: RFC 9162 proofs for sizes below 2**64 have at most 64 + 1 + 63.
MAX_PROOF_HASHES: Final = 128
#: The longest valid file: header, two size lines of 20 digits, MAX_PROOF_HASHES lines of 44 base64 characters.
_MAX_PROOF_TEXT: Final = len(PROOF_HEADER) + 1 + 2 * len("old 18446744073709551615\n") + MAX_PROOF_HASHES * 45
_DECIMAL: Final = re.compile("0|[1-9][0-9]{0,19}")

#: Verdicts of :class:`Consistency`: what a successful :func:`verify_checkpoint_consistency` compared.
EXTENDS: Final = "extends"  # 0 < old size < new size: the RFC 9162 proof shows the old tree is a prefix of the new
SAME_TREE: Final = "same_tree"  # old size = new size > 0: the same root hash and lines
NOTHING_TO_COMPARE: Final = "nothing_to_compare"  # old size 0: the empty tree is a prefix of every tree
#: The codes of a failed :func:`verify_checkpoint_consistency` that are about the proof file, not the checkpoints:
#: it is for other tree sizes, or its hashes do not lead to the two signed roots (a proof made for another pair
#: of checkpoints of these sizes, a damaged one, or one offered for checkpoints that no proof can join). The pair
#: is then not shown consistent; only the other ``consistency.*`` codes show it inconsistent (docs/format.md §7b.1).
PROOF_MISMATCH: Final = frozenset({"consistency.size_mismatch", "proof.wrong_length", "proof.hash_length",
                                   "proof.root_mismatch"})


class ConsistencyError(VerificationError):
    """Two signed checkpoints are not shown to be one append-only log (codes ``consistency.*``)."""

    default_code = "consistency.failed"


class SplitViewError(ConsistencyError):
    """A split view (``consistency.split_view``): two signed checkpoints of one tree size with different root
    hashes; or (the builders) a signed checkpoint that does not match a ledger file at its own tree size, so the
    operator signed a tree that this file is not."""

    default_code = "consistency.split_view"


class ProofFormatError(InputError):
    """A consistency-proof file is malformed (``consistency.malformed``)."""

    default_code = "consistency.malformed"


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsistencyProof:
    """PROOF(old_size, D[new_size]) (RFC 9162 §2.1.4.1) with the two sizes it was built for.

    The sizes say which pair of checkpoints the proof is for; a verifier compares them with the signed
    checkpoints and never trusts them. Validated on construction.

    Raises:
        ProofFormatError: a size not an int in 0..2**64-1, or more than :data:`MAX_PROOF_HASHES` hashes or a
            hash that is not 32 bytes (``consistency.malformed``).
    """

    old_size: int
    new_size: int
    hashes: tuple[Digest, ...]

    def __post_init__(self) -> None:
        for name, size in (("old size", self.old_size), ("new size", self.new_size)):
            if type(size) is not int or not 0 <= size <= MAX_TREE_SIZE:
                raise ProofFormatError(f"{name} must be an int in 0..2**64-1, got {size!r}")
        if not isinstance(self.hashes, tuple) or len(self.hashes) > MAX_PROOF_HASHES:
            raise ProofFormatError(f"hashes must be a tuple of at most {MAX_PROOF_HASHES} digests")
        for i, h in enumerate(self.hashes):
            if not isinstance(h, bytes) or len(h) != 32:
                raise ProofFormatError(f"proof hash {i} is not 32 bytes")
        object.__setattr__(self, "hashes", tuple(Digest(h) for h in self.hashes))


@dataclass(frozen=True, slots=True, kw_only=True)
class Consistency:
    """What :func:`verify_checkpoint_consistency` established: the two verified checkpoints and its
    :attr:`verdict`. Only :data:`EXTENDS` and :data:`SAME_TREE` compared any record; :data:`NOTHING_TO_COMPARE`
    (old tree size 0) says that the new checkpoint is validly signed and nothing more (docs/format.md §7b.1)."""

    old: Checkpoint
    new: Checkpoint
    witnessed: Witnessed | None = None  # the witness policy's verdict on the new checkpoint

    @property
    def verdict(self) -> str:
        """:data:`NOTHING_TO_COMPARE`, :data:`SAME_TREE` or :data:`EXTENDS`, from the two tree sizes."""
        if self.old.tree_size == 0:
            return NOTHING_TO_COMPARE
        return SAME_TREE if self.old.tree_size == self.new.tree_size else EXTENDS

    def describe(self) -> str:
        """One plain sentence: the verdict and what was checked (the word "consistent" only if something was)."""
        old, new, origin = self.old.tree_size, self.new.tree_size, self.new.origin
        if self.verdict == NOTHING_TO_COMPARE:
            return (f"nothing to compare: {origin}: the old checkpoint has tree size 0 (the empty tree, a prefix of "
                    f"every tree), so no record was compared; the new checkpoint ({new} records) is validly signed "
                    "by a pinned operator key")
        if self.verdict == SAME_TREE:
            return (f"consistent (same tree): {origin}: both checkpoints sign the same tree of {new} records (equal "
                    "root hashes and registry lines, and heads lines where both carry one): nothing was appended "
                    "or changed in between (both signed by a pinned operator key)")
        return (f"consistent: {origin}: the checkpoint of {new} records extends the one of {old}: the consistency "
                f"proof shows its first {old} records unchanged (both signed by a pinned operator key)")

    def to_json(self) -> dict[str, object]:
        """``verdict`` (one of the three), ``origin``, ``old_tree_size``, ``new_tree_size``, ``old_root`` and
        ``new_root`` (standard base64), ``summary`` (:meth:`describe`). A failed check has no such value: the
        CLI renders it as ``{"verdict": "not_consistent" or "not_shown_consistent", "code", "reason"}``
        (docs/format.md §7b.3)."""
        return {"verdict": self.verdict, "origin": self.new.origin, "old_tree_size": self.old.tree_size,
                "new_tree_size": self.new.tree_size, "old_root": self.old.root_hash.b64(),
                "new_root": self.new.root_hash.b64(), "summary": self.describe(),
                "witnessed": self.witnessed.to_json() if self.witnessed else None}


def format_consistency_proof(proof: ConsistencyProof) -> str:
    """The consistency-proof file text of ``proof`` (module docstring)."""
    lines = [PROOF_HEADER, f"old {proof.old_size}", f"new {proof.new_size}", *(h.b64() for h in proof.hashes)]
    return "".join(line + "\n" for line in lines)


def parse_consistency_proof(data: str | bytes) -> ConsistencyProof:
    """Parse a consistency-proof file strictly: valid only if :func:`format_consistency_proof` gives it back.

    The text is bounded before it is split. Structure only: whether the sizes match the checkpoints and the
    hashes prove anything is :func:`verify_checkpoint_consistency`'s job.

    Raises:
        ProofFormatError: ``consistency.malformed`` (too long, not UTF-8, wrong header, a size that is not
            canonical decimal below 2**64, a line that is not canonical base64 of 32 bytes, too many hashes).
    """
    text = _proof_text(data)
    lines = text[:-1].split("\n") if text.endswith("\n") else []
    if len(lines) < 3 or lines[0] != PROOF_HEADER:
        raise ProofFormatError(f"not a consistency proof: want {PROOF_HEADER!r}, 'old <size>', 'new <size>' lines")
    old_size, new_size = _size_line(lines[1], "old"), _size_line(lines[2], "new")
    if len(lines) - 3 > MAX_PROOF_HASHES:
        raise ProofFormatError(f"{len(lines) - 3} proof hashes, at most {MAX_PROOF_HASHES}")
    hashes = []
    for number, line in enumerate(lines[3:], start=4):
        try:
            hashes.append(Digest.from_b64(line))
        except InputError as exc:
            raise ProofFormatError(f"line {number}: not canonical base64 of a 32-byte hash: {line[:60]!r}") from exc
    proof = ConsistencyProof(old_size=old_size, new_size=new_size, hashes=tuple(hashes))
    if format_consistency_proof(proof) != text:  # belt and braces: the one encoding
        raise ProofFormatError("consistency proof is not in canonical form")
    return proof


def _proof_text(data: str | bytes) -> str:
    if isinstance(data, bytes | bytearray):
        if len(data) > _MAX_PROOF_TEXT:
            raise ProofFormatError(f"consistency proof over {_MAX_PROOF_TEXT} bytes")
        try:
            data = bytes(data).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ProofFormatError("consistency proof is not UTF-8 text") from exc
    if not isinstance(data, str) or len(data) > _MAX_PROOF_TEXT:
        raise ProofFormatError(f"consistency proof must be text of at most {_MAX_PROOF_TEXT} characters")
    return data


def _size_line(line: str, word: str) -> int:
    head, _, digits = line.partition(" ")
    if head != word or not _DECIMAL.fullmatch(digits) or int(digits) > MAX_TREE_SIZE:
        raise ProofFormatError(f"want '{word} <size>' (decimal, no sign or leading zero, < 2**64): {line[:60]!r}")
    return int(digits)


def verify_checkpoint_consistency(
    old_note: str | bytes, new_note: str | bytes, proof: ConsistencyProof | str | bytes, trust: Trust
) -> Consistency:
    """Verify that the checkpoint ``new_note`` extends the checkpoint ``old_note`` (RFC 9162 §2.1.4.2).

    In order: both notes open under ``trust.operators`` (C2SP signed-note); same origin; new tree size >= old
    tree size; for equal tree sizes, equal root hashes (a split view else, whatever the lines say); the registry
    lines (``stonetrail-registry``, docs/format.md §7) do not shrink, and name the same head at the same registry
    size; the heads lines (``stonetrail-heads``, §7c), where both carry one, count no fewer items, and are the
    same for the same tree; the proof's sizes are the checkpoints' sizes; then the proof, with sizes and roots
    from the checkpoints; last, the new checkpoint meets the trust file's witness policy, if it has one
    (:func:`ledger.witnessed.check_witnesses`). Old size 0: see the module docstring. ``proof`` may be a parsed
    :class:`ConsistencyProof` or the file's text or bytes.

    Returns:
        Both verified checkpoints and the verdict (:class:`Consistency`): :data:`NOTHING_TO_COMPARE` for old size
        0, which proves nothing about the new tree's records; :data:`SAME_TREE`; or :data:`EXTENDS`.
    Raises:
        ProofFormatError: ``consistency.malformed`` (proof text).
        NoteFormatError, KeyFormatError, SignatureError, UnverifiedNoteError: as
            :func:`~ledger.checkpoint.open_checkpoint`; VerificationError ``checkpoint.registry_missing``.
        SplitViewError: ``consistency.split_view`` (one tree size, two root hashes).
        ConsistencyError: ``consistency.origin_mismatch``, ``consistency.rollback`` (new tree smaller than the
            old one), ``consistency.registry_rollback`` (the new registry line counts fewer registry records),
            ``consistency.registry_mismatch`` (same registry size, other head; or same tree, other registry
            line), ``consistency.heads_rollback`` (the new heads line counts fewer items),
            ``consistency.heads_mismatch`` (same tree, other heads line), likewise
            ``consistency.identities_rollback`` / ``consistency.identities_mismatch``,
            ``consistency.size_mismatch`` (proof sizes are not the checkpoints' sizes),
            ``consistency.empty_root`` (a size-0 checkpoint whose root is not SHA-256("")).
        ProofError: ``proof.wrong_length``, ``proof.hash_length``, ``proof.root_mismatch``: the proof does not
            lead to the two signed roots; the message names them (base64).
        WitnessError: ``witness.quorum``, ``witness.future``; SignatureError ``witness.bad_cosignature``.
    """
    if not isinstance(proof, ConsistencyProof):
        proof = parse_consistency_proof(proof)
    old, new = _open(old_note, trust, "old"), _open(new_note, trust, "new")
    if old.origin != new.origin:
        raise ConsistencyError(f"the checkpoints are of two ledgers: {old.origin!r:.80} and {new.origin!r:.80}",
                               code="consistency.origin_mismatch")
    if new.tree_size < old.tree_size:
        raise ConsistencyError(f"rollback: the new checkpoint has {new.tree_size} records, the old one "
                               f"{old.tree_size}", code="consistency.rollback")
    if 0 < old.tree_size == new.tree_size and old.root_hash != new.root_hash:  # the roots first: the finding
        raise SplitViewError(f"split view: both checkpoints are of tree size {old.tree_size} but sign different "
                             f"root hashes ({old.root_hash.b64()} and {new.root_hash.b64()}): the operator signed "
                             "two different logs")
    _check_registry_lines(old, new)
    _check_heads_lines(old, new)
    _check_proof(old, new, proof)
    try:
        witnessed = check_witnesses(new_note, trust)
    except StoneTrailError as exc:
        exc.about("the new checkpoint")
        raise
    return Consistency(old=old, new=new, witnessed=witnessed)


def _check_proof(old: Checkpoint, new: Checkpoint, proof: ConsistencyProof) -> None:
    """The proof against the two signed checkpoints; a refusal says that the proof file does not belong to them
    (:data:`PROOF_MISMATCH`), naming the sizes or roots (base64) it was checked against."""
    if (proof.old_size, proof.new_size) != (old.tree_size, new.tree_size):
        raise ConsistencyError(f"the proof file does not belong to these checkpoints: it is for tree sizes "
                               f"{proof.old_size} -> {proof.new_size}, they have {old.tree_size} -> {new.tree_size}",
                               code="consistency.size_mismatch")
    for which, cp in (("an old", old), ("a new", new)):  # an adversarial review: a new one of size 0 went unchecked
        if cp.tree_size == 0 and cp.root_hash != EMPTY_ROOT:
            raise ConsistencyError(f"{which} checkpoint of size 0 must carry SHA-256(\"\") as its root, got "
                                   f"{cp.root_hash.b64()}", code="consistency.empty_root")
    try:
        if old.tree_size == 0:
            _check_from_empty(proof)
        else:
            verify_consistency(old.tree_size, new.tree_size, old.root_hash, new.root_hash, proof.hashes)
    except ProofError as exc:
        why = "its hashes do not lead to their root hashes" if exc.code == "proof.root_mismatch" else str(exc)
        raise ProofError(f"the proof file does not belong to these checkpoints: {why} (tree size {old.tree_size}, "
                         f"root {old.root_hash.b64()}; tree size {new.tree_size}, root {new.root_hash.b64()}): it "
                         "was made for another pair of checkpoints of these sizes, or damaged, or the new "
                         "checkpoint does not extend the old one", code=exc.code) from None


def _open(note: str | bytes, trust: Trust, which: str) -> Checkpoint:
    """:func:`~ledger.checkpoint.open_checkpoint`, its errors saying which checkpoint they are about."""
    try:
        return open_checkpoint(note, trust.operators)
    except StoneTrailError as exc:
        exc.about(f"the {which} checkpoint")
        raise


def _check_registry_lines(old: Checkpoint, new: Checkpoint) -> None:
    """Registry records are leaves, so an append-only log's registry only grows (docs/format.md §7)."""
    (old_size, old_head), (new_size, new_head) = checkpoint_registry(old), checkpoint_registry(new)
    if new_size < old_size:
        raise ConsistencyError(f"registry rollback: the new checkpoint commits to {new_size} registry records, "
                               f"the old one to {old_size}", code="consistency.registry_rollback")
    same_tree = old.tree_size == new.tree_size
    if (new_size == old_size or same_tree) and (new_size, new_head) != (old_size, old_head):
        raise ConsistencyError(f"the checkpoints commit to different registries ({old_size} and {new_size} "
                               "records, different heads)", code="consistency.registry_mismatch")


def _check_heads_lines(old: Checkpoint, new: Checkpoint) -> None:
    """An item (an identity), once named, stays in the item-head (identity) tree, and one tree has one heads
    (identities) line (docs/format.md §7c, §7d). Which records became heads or claims in between only an audit of
    the file can tell. A checkpoint without such a line (made before it existed) is not compared on it."""
    lines = ((checkpoint_heads, "heads", "the latest records of {} items"),
             (checkpoint_identities, "identities", "the claims on {} identities"))
    for read, name, what in lines:
        try:
            (old_count, old_root), (new_count, new_root) = read(old), read(new)
        except VerificationError as exc:
            if exc.code == f"checkpoint.{name}_missing":
                continue
            raise
        if new_count < old_count:
            raise ConsistencyError(f"{name} rollback: the new checkpoint commits to {what.format(new_count)}, the "
                                   f"old one to {what.format(old_count)}", code=f"consistency.{name}_rollback")
        if old.tree_size == new.tree_size and (old_count, old_root) != (new_count, new_root):
            raise ConsistencyError(f"the checkpoints of one tree have different {name} lines",
                                   code=f"consistency.{name}_mismatch")


def _check_from_empty(proof: ConsistencyProof) -> None:
    if proof.hashes:
        raise ProofError(f"wrong proof length: got {len(proof.hashes)} hashes, want 0 (from size 0)",
                         code="proof.wrong_length")
