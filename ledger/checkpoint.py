"""C2SP tlog-checkpoint bodies in C2SP signed notes: format / parse, sign / open.

Checkpoint body (https://c2sp.org/tlog-checkpoint, "Note text")::

    <origin>\\n                      non-empty; SHOULD equal the log's key name (not required here)
    <tree size>\\n                   ASCII decimal, no sign, no leading zero (except "0"), < 2**64
    <base64 root hash>\\n            standard padded base64 of the 32-byte RFC 9162 root
    [<extension line>\\n ...]        optional, each non-empty

Signed in a C2SP signed note (:mod:`ledger.note`, re-exported here): one line per signer after a blank line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from .errors import InputError, NoteFormatError, UnverifiedNoteError, VerificationError
from .hashing import Digest
from .keys import NoteVerifierKey, PrivateKey
from .note import (
    CONTROL,
    MAX_NOTE_BYTES,
    MAX_SIGNATURES,
    add_signatures,
    note_signatures,
    open_note,
    quoted,
    sign_note,
)

__all__ = [
    "MAX_NOTE_BYTES",
    "MAX_SIGNATURES",
    "MAX_TREE_SIZE",
    "Checkpoint",
    "add_signatures",
    "commitment_kinds",
    "extension_line",
    "format_checkpoint",
    "format_counted_line",
    "note_signatures",
    "open_checkpoint",
    "open_note",
    "parse_checkpoint",
    "parse_counted_line",
    "read_unverified_checkpoint",
    "sign_checkpoint",
    "sign_note",
    "trees_conflict",
]

#: Largest tree size (RFC 9162 uses uint64).
MAX_TREE_SIZE: Final = 2**64 - 1

_DECIMAL: Final = re.compile("0|[1-9][0-9]{0,19}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    """A log's tree head as a C2SP tlog-checkpoint body. Validated on construction.

    Raises:
        NoteFormatError: ``checkpoint.origin`` (empty, or a newline or control character),
            ``checkpoint.size`` (not an int in 0 .. 2**64-1), ``checkpoint.root`` (not 32 bytes) or
            ``checkpoint.extension`` (empty line, newline or control character).
    """

    origin: str
    tree_size: int
    root_hash: Digest
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not _is_line(self.origin):
            raise NoteFormatError(f"bad checkpoint origin: {self.origin!r:.80}", code="checkpoint.origin")
        size = self.tree_size
        if type(size) is not int or not 0 <= size <= MAX_TREE_SIZE:
            raise NoteFormatError(f"tree size must be an int in 0..2**64-1: {size!r}", code="checkpoint.size")
        if not isinstance(self.root_hash, Digest):
            if not isinstance(self.root_hash, bytes) or len(self.root_hash) != 32:
                raise NoteFormatError("root hash must be 32 bytes", code="checkpoint.root")
            object.__setattr__(self, "root_hash", Digest(self.root_hash))
        if not isinstance(self.extensions, tuple) or not all(_is_line(e) for e in self.extensions):
            raise NoteFormatError("extension lines must be non-empty text lines", code="checkpoint.extension")


def commitment_kinds(cp: Checkpoint) -> dict[str, tuple[str, ...]]:
    """``cp``'s StoneTrail lines (``stonetrail-registry``, ``-heads``, ``-identities``, §7) by their first word."""
    kinds: dict[str, tuple[str, ...]] = {}
    for line in cp.extensions:
        if line.startswith("stonetrail-"):
            kind = line.split(" ", 1)[0]
            kinds[kind] = (*kinds.get(kind, ()), line)
    return kinds


def trees_conflict(a: Checkpoint, b: Checkpoint) -> bool:
    """Whether checkpoints ``a`` and ``b`` of one tree size cannot both be honest (docs/format.md §7b.2): other
    root hashes, or a StoneTrail line that both carry with other values (one tree's records give one of each).
    A line only one of them carries is no conflict: a checkpoint signed before the line was defined and the same
    tree signed again with it are one tree."""
    if a.root_hash != b.root_hash:
        return True
    mine, theirs = commitment_kinds(a), commitment_kinds(b)
    return any(theirs.get(kind, lines) != lines for kind, lines in mine.items())


def _is_line(value: object) -> bool:
    """A non-empty line of note text: str, encodable as UTF-8, no newline or other control character."""
    if not isinstance(value, str) or not value or "\n" in value or CONTROL.search(value):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def format_checkpoint(cp: Checkpoint) -> str:
    """The checkpoint body: origin, tree size, base64 root and extension lines, each ending in "\\n"."""
    lines = [cp.origin, str(cp.tree_size), cp.root_hash.b64(), *cp.extensions]
    return "".join(line + "\n" for line in lines)


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint body strictly: valid only if :func:`format_checkpoint` gives back ``text``.

    The size is ASCII digits only (no "+", "-", "_", spaces, non-ASCII digits, or leading zero).

    Raises:
        NoteFormatError: ``checkpoint.*`` codes as for :class:`Checkpoint`, or ``checkpoint.malformed``.
    """
    if not isinstance(text, str) or len(text) > MAX_NOTE_BYTES or not text.endswith("\n"):
        raise NoteFormatError("checkpoint body must be text ending in a newline", code="checkpoint.malformed")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteFormatError(f"checkpoint has {len(lines)} lines, want >= 3", code="checkpoint.malformed")
    origin, size_text, root_text, *extensions = lines
    if not _DECIMAL.fullmatch(size_text) or int(size_text) > MAX_TREE_SIZE:
        raise NoteFormatError(f"bad tree size: {size_text!r:.40}", code="checkpoint.size")
    try:
        root = Digest.from_b64(root_text)
    except InputError as exc:
        raise NoteFormatError(f"bad root hash: {root_text!r:.60}", code="checkpoint.root") from exc
    cp = Checkpoint(origin=origin, tree_size=int(size_text), root_hash=root, extensions=tuple(extensions))
    if format_checkpoint(cp) != text:  # belt and braces: the one encoding
        raise NoteFormatError("checkpoint body is not in canonical form", code="checkpoint.malformed")
    return cp


def format_counted_line(keyword: str, count: int, digest: Digest) -> str:
    """A StoneTrail extension line ``<keyword> <count> <base64 digest>`` (no newline): a count of things and
    the 32-byte hash that commits to them (docs/format.md §7).

    Raises:
        InputError: ``input.range`` (count not an int in 0..2**64-1), ``hash.length`` (digest not 32 bytes).
    """
    if type(count) is not int or not 0 <= count <= MAX_TREE_SIZE:
        raise InputError(f"{keyword} count must be an int in 0..2**64-1: {count!r}", code="input.range")
    return f"{keyword} {count} {Digest(digest).b64()}"


def parse_counted_line(line: str, keyword: str) -> tuple[int, Digest]:
    """Parse a ``<keyword> <count> <base64 digest>`` line strictly: valid only if :func:`format_counted_line`
    gives back ``line`` (decimal without sign or leading zero, canonical padded base64 of 32 bytes, single
    spaces).

    Raises:
        NoteFormatError: ``checkpoint.extension``.
    """
    def bad(why: str) -> NoteFormatError:
        return NoteFormatError(f"bad {keyword} line ({why}): {line!r:.120}", code="checkpoint.extension")

    parts = line.split(" ") if isinstance(line, str) else []
    if len(parts) != 3 or parts[0] != keyword:
        raise bad(f"want '{keyword} <count> <base64 hash>'")
    if not _DECIMAL.fullmatch(parts[1]) or int(parts[1]) > MAX_TREE_SIZE:
        raise bad("count")
    try:
        return int(parts[1]), Digest.from_b64(parts[2])
    except InputError as exc:
        raise bad("hash") from exc


def extension_line(cp: Checkpoint, keyword: str, missing: VerificationError) -> str:
    """The one extension line of ``cp`` whose first word is ``keyword``; other lines are ignored (C2SP
    tlog-checkpoint).

    Raises:
        ``missing`` when there is no such line; NoteFormatError ``checkpoint.extension`` when there are several.
    """
    lines = [e for e in cp.extensions if e.split(" ", 1)[0] == keyword]
    if not lines:
        raise missing
    if len(lines) > 1:
        raise NoteFormatError(f"checkpoint has {len(lines)} {keyword} lines", code="checkpoint.extension")
    return lines[0]


def read_unverified_checkpoint(note: str | bytes) -> Checkpoint:
    """The checkpoint in a signed note, its signatures NOT verified: suspect until :func:`open_checkpoint` says
    otherwise. For display, and for matching a checkpoint against a file by someone who holds no trusted key.

    The note's layout and signature lines are checked as in :func:`open_note`, the body as in
    :func:`parse_checkpoint`.

    Raises:
        NoteFormatError: ``note.malformed`` or a ``checkpoint.*`` code.
    """
    return parse_checkpoint(note_signatures(note)[0])


def sign_checkpoint(cp: Checkpoint, signer_name: str, key: PrivateKey) -> str:
    """The signed note of :func:`format_checkpoint` (cp) by one key (C2SP tlog-checkpoint, "Signatures")."""
    return sign_note(format_checkpoint(cp), [(signer_name, key)])


def open_checkpoint(
    note: str | bytes, verifiers: Sequence[NoteVerifierKey], *, origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint (:func:`open_note`), then parse its text (:func:`parse_checkpoint`).

    A signature by one of ``verifiers`` *named after the checkpoint's origin line* must verify: a log's
    checkpoints are signed under its origin (C2SP tlog-checkpoint: the origin is the log's key name), so a key
    pinned for one ledger never vouches for another's (docs/adr/0037; an adversarial review: with two operators
    pinned, either could sign the other's checkpoints). If ``origin`` is given, the checkpoint's origin line must
    equal it.

    Raises:
        everything :func:`open_note` and :func:`parse_checkpoint` raise, and
        VerificationError: ``checkpoint.origin_mismatch``. An UnverifiedNoteError (``note.unverified``) says why
        no signature is trusted (:func:`open_note`) and, when the body's origin line is not ``origin``, that the
        checkpoint is another ledger's; also when the only pinned keys that signed are named otherwise.
    """
    return open_checkpoint_signers(note, verifiers, origin=origin)[0]


def open_checkpoint_signers(note: str | bytes, verifiers: Sequence[NoteVerifierKey], *, origin: str | None = None
                            ) -> tuple[Checkpoint, tuple[str, ...]]:
    """:func:`open_checkpoint`, and the names of the keys whose signatures verified, one a key (evidence and
    rollback claims name them). Raises as :func:`open_checkpoint`."""
    try:
        text, signed_by = open_note(note, verifiers)
    except UnverifiedNoteError as exc:
        _name_another_ledger(exc, note, origin)
        raise
    cp = parse_checkpoint(text)
    signers = tuple(key for key in signed_by if key.name == cp.origin)
    if not signers:
        names = ", ".join(sorted({f"{key.name}+{key.key_id.hex()}" for key in signed_by}))
        refused = UnverifiedNoteError(f"no signature by a trusted key named after its origin {quoted(cp.origin)} "
                                      f"verified: it is signed by {names}, pinned for another name; a ledger's "
                                      "checkpoints are signed under its origin", code="note.unverified")
        _name_another_ledger(refused, note, origin)
        raise refused
    if origin is not None and cp.origin != origin:
        raise VerificationError(f"a checkpoint of another ledger ({quoted(cp.origin)}, not {quoted(origin)})",
                                code="checkpoint.origin_mismatch")
    return cp, tuple(key.name for key in signers)


def _name_another_ledger(exc: UnverifiedNoteError, note: str | bytes, origin: str | None) -> None:
    """Prefix ``exc`` with "a checkpoint of another ledger" when ``note``'s (unverified) origin line is not
    ``origin``: the likeliest reason no key of that ledger's operator signed it."""
    if origin is None:
        return
    try:
        claimed = read_unverified_checkpoint(note).origin
    except InputError:
        return
    if claimed != origin:
        exc.about(f"a checkpoint of another ledger ({quoted(claimed)}, not {quoted(origin)})")
