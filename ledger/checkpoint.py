"""C2SP tlog-checkpoint bodies in C2SP signed notes: format / parse, sign / open.

Checkpoint body (https://c2sp.org/tlog-checkpoint, "Note text")::

    <origin>\\n                      non-empty; SHOULD equal the log's key name (not required here)
    <tree size>\\n                   ASCII decimal, no sign, no leading zero (except "0"), < 2**64
    <base64 root hash>\\n            standard padded base64 of the 32-byte RFC 9162 root
    [<extension line>\\n ...]        optional, each non-empty

Signed note (https://c2sp.org/signed-note, "Format"; golang.org/x/mod/sumdb/note ``Sign``/``Open``)::

    <text ending in \\n>\\n
    — <key name> <base64(4-byte key ID || 64-byte Ed25519 signature over the text)>\\n   (one per signer)

The note is valid UTF-8 with no control character except newline; the text is everything up to and including
the newline before the *last* blank line. Signature lines start with U+2014 EM DASH and a space.

Opening (signed-note, "Signatures"): a signature whose (key name, key ID) is not a given verifier key is
ignored (a witness cosignature, a rotated key); a repeat of an already checked (name, ID) is ignored, as
in Go; a known key whose signature fails rejects the whole note; no verified signature rejects the note.
Zero verifier keys therefore always fail. Stricter than Go: every base64 field must re-encode to the same
text, so no bit of the note can change without the note being refused.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from .errors import InputError, KeyFormatError, NoteFormatError, UnverifiedNoteError, VerificationError
from .hashing import Digest
from .keys import NoteVerifierKey, PrivateKey, is_valid_key_name, note_key_id

__all__ = [
    "MAX_NOTE_BYTES",
    "MAX_SIGNATURES",
    "MAX_TREE_SIZE",
    "Checkpoint",
    "add_signatures",
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
]

#: Largest signed note accepted or produced, in UTF-8 bytes (checked before any parsing).
MAX_NOTE_BYTES: Final = 1024 * 1024
#: Most signature lines in a note (Go sumdb/note's limit; signed-note requires at least 16).
MAX_SIGNATURES: Final = 100
#: Largest tree size (RFC 9162 uses uint64).
MAX_TREE_SIZE: Final = 2**64 - 1

_SIG_PREFIX: Final = "\u2014 "
_CONTROL: Final = re.compile("[\x00-\x09\x0b-\x1f]")
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


def _is_line(value: object) -> bool:
    """A non-empty line of note text: str, encodable as UTF-8, no newline or other control character."""
    if not isinstance(value, str) or not value or "\n" in value or _CONTROL.search(value):
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


def sign_note(text: str, signers: Sequence[tuple[str, PrivateKey]]) -> str:
    """Sign ``text`` with each (key name, key) in order; the result opens with :func:`open_note`.

    Raises:
        NoteFormatError: ``note.malformed`` (text not ending in "\\n", control characters, no signers, a
            repeated signer, over the caps) or ``note.bad_name``.
    """
    _check_text(text)
    if not 0 < len(signers) <= MAX_SIGNATURES:
        raise NoteFormatError(f"need 1..{MAX_SIGNATURES} signers, got {len(signers)}", code="note.malformed")
    message = text.encode("utf-8")
    lines: list[str] = []
    seen: set[tuple[str, bytes]] = set()
    for name, key in signers:
        if not is_valid_key_name(name):
            raise NoteFormatError(f"invalid key name: {name!r:.80}", code="note.bad_name")
        key_id = note_key_id(name, key.public_key)
        if (name, key_id) in seen:
            raise NoteFormatError(f"signer {name}+{key_id.hex()} given twice", code="note.malformed")
        seen.add((name, key_id))
        lines.append(f"{_SIG_PREFIX}{name} {_b64(key_id + key.sign(message))}\n")
    note = text + "\n" + "".join(lines)
    if len(note.encode("utf-8")) > MAX_NOTE_BYTES:
        raise NoteFormatError(f"signed note over {MAX_NOTE_BYTES} bytes", code="note.malformed")
    return note


def open_note(note: str | bytes, verifiers: Sequence[NoteVerifierKey]) -> tuple[str, list[NoteVerifierKey]]:
    """Verify a signed note; return its text and the verifier keys whose signatures verified.

    ``note`` may be text or its UTF-8 bytes. The caller must trust the text only after this returns.

    Raises:
        NoteFormatError: ``note.malformed`` (caps, UTF-8, control characters, layout, base64, key names).
        KeyFormatError: ``note.ambiguous_vkey`` if two different verifier keys share a (name, key ID).
        SignatureError: a known key's signature fails (the code says why, e.g. ``sig.invalid``).
        UnverifiedNoteError: ``note.unverified`` if no signature by a given key verified (always so for
            an empty ``verifiers``).
    """
    text, sig_lines = _split_note(note)
    known = _verifier_map(verifiers)
    message = text.encode("utf-8")
    verified: list[NoteVerifierKey] = []
    seen: set[tuple[str, bytes]] = set()
    signers = [_parse_sig_line(line) for line in sig_lines]
    for name, key_id, signature in signers:
        vkey = known.get((name, key_id))
        if vkey is None or (name, key_id) in seen:
            continue  # unknown key (e.g. a witness cosignature), or a repeat: ignored
        seen.add((name, key_id))
        vkey.public_key.verify(signature, message)
        verified.append(vkey)
    if not verified:
        why = _why_unverified([(name, key_id) for name, key_id, _ in signers], list(known.values()))
        raise UnverifiedNoteError(f"no signature by a trusted key verified: {why}", code="note.unverified")
    return text, verified


def _why_unverified(signers: Sequence[tuple[str, bytes]], trusted: Sequence[NoteVerifierKey]) -> str:
    """Why none of ``signers`` (name, key ID) is a trusted key, for the first few of them: no trusted key of
    that name, or one of that name with another key ID (another key); with the trusted keys listed."""
    if not trusted:
        return "no trusted key was given"
    by_name: dict[str, list[NoteVerifierKey]] = {}
    for vkey in trusted:
        by_name.setdefault(vkey.name, []).append(vkey)
    reasons = []
    for name, key_id in list(dict.fromkeys(signers))[:3]:
        shown = f"{_quoted(name)}+{key_id.hex()}"
        same_name = by_name.get(name)
        if same_name:
            ids = ", ".join(k.key_id.hex() for k in same_name)
            reasons.append(f"signed by {shown}: the trusted key named {_quoted(name)} has key ID {ids}, so this "
                           "is another key")
        else:
            reasons.append(f"signed by {shown}: no trusted key is named {_quoted(name)}")
    pinned = ", ".join(f"{_quoted(k.name)}+{k.key_id.hex()}" for k in trusted[:5])
    more = f" and {len(trusted) - 5} more" if len(trusted) > 5 else ""
    return f"{'; '.join(reasons)} (trusted: {pinned}{more})"


def _quoted(name: str) -> str:
    """A key name as printed: as it is if printable and short, else escaped and cut."""
    return name if name.isprintable() and len(name) <= 80 else ascii(name[:80])


def _split_note(note: str | bytes) -> tuple[str, list[str]]:
    if isinstance(note, bytes):
        if len(note) > MAX_NOTE_BYTES:
            raise NoteFormatError(f"note over {MAX_NOTE_BYTES} bytes", code="note.malformed")
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise NoteFormatError("note is not valid UTF-8", code="note.malformed") from exc
    if not isinstance(note, str) or len(note) > MAX_NOTE_BYTES:
        raise NoteFormatError(f"note must be text of at most {MAX_NOTE_BYTES} bytes", code="note.malformed")
    _check_text(note)
    if len(note.encode("utf-8")) > MAX_NOTE_BYTES:
        raise NoteFormatError(f"note over {MAX_NOTE_BYTES} bytes", code="note.malformed")
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteFormatError("note has no blank line before its signatures", code="note.malformed")
    text, sigs = note[: split + 1], note[split + 2 :]
    if not sigs.endswith("\n"):
        raise NoteFormatError("note has no signature lines ending in newline", code="note.malformed")
    lines = sigs[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteFormatError(f"note has over {MAX_SIGNATURES} signatures", code="note.malformed")
    return text, lines


def _check_text(text: str) -> None:
    """Valid UTF-8, ends in "\\n", no control character but "\\n" (signed-note, "Format")."""
    if not isinstance(text, str) or not text.endswith("\n") or _CONTROL.search(text):
        raise NoteFormatError("note text must end in newline, no control chars", code="note.malformed")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise NoteFormatError("note text is not valid Unicode", code="note.malformed") from exc


def _parse_sig_line(line: str) -> tuple[str, bytes, bytes]:
    """``— <name> <base64(key ID || signature)>`` -> (name, 4-byte key ID, signature of >= 1 byte)."""
    if not line.startswith(_SIG_PREFIX):
        raise NoteFormatError(f"bad signature line: {line[:60]!r}", code="note.malformed")
    name, _, b64 = line[len(_SIG_PREFIX) :].partition(" ")
    try:
        raw = base64.b64decode(b64.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raw = b""
    if not is_valid_key_name(name) or len(raw) < 5 or _b64(raw) != b64:
        raise NoteFormatError(f"bad signature line: {line[:60]!r}", code="note.malformed")
    return name, raw[:4], raw[4:]


def _verifier_map(verifiers: Sequence[NoteVerifierKey]) -> dict[tuple[str, bytes], NoteVerifierKey]:
    known: dict[tuple[str, bytes], NoteVerifierKey] = {}
    for vkey in verifiers:
        if not isinstance(vkey, NoteVerifierKey):
            raise KeyFormatError(f"not a NoteVerifierKey: {type(vkey).__name__}", code="note.bad_vkey")
        other = known.setdefault((vkey.name, vkey.key_id), vkey)
        if other != vkey:
            raise KeyFormatError(f"two keys for {vkey.name}+{vkey.key_id.hex()}", code="note.ambiguous_vkey")
    return known


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def note_signatures(note: str | bytes) -> tuple[str, list[tuple[str, bytes, bytes]]]:
    """The text of a signed note and its signature lines as (key name, 4-byte key ID, signature bytes), in
    order, NOT verified; layout, caps and every line checked as in :func:`open_note` (C2SP signed-note).

    Raises:
        NoteFormatError: ``note.malformed``.
    """
    text, sig_lines = _split_note(note)
    return text, [_parse_sig_line(line) for line in sig_lines]


def add_signatures(note: str, lines: Sequence[str]) -> str:
    """``note`` with the signature lines ``lines`` (each ``— <name> <base64>\n``) appended after its own, those
    it already holds (the same line) left out: what a log does with the cosignatures a witness returns (C2SP
    tlog-witness, "add-checkpoint"). The lines are not verified here.

    Raises:
        NoteFormatError: ``note.malformed`` (a line that is not one signature line, or the result over the
            caps: :data:`MAX_SIGNATURES` lines, :data:`MAX_NOTE_BYTES` bytes).
    """
    _split_note(note)
    held = set(note[note.rfind("\n\n") + 2:].splitlines(keepends=True))
    for line in lines:
        if not isinstance(line, str) or not line.endswith("\n") or "\n" in line[:-1]:
            raise NoteFormatError("a signature line must be one line ending in a newline", code="note.malformed")
        _parse_sig_line(line[:-1])
    more = "".join(dict.fromkeys(line for line in lines if line not in held))
    _split_note(note + more)  # the caps
    return note + more


def read_unverified_checkpoint(note: str | bytes) -> Checkpoint:
    """The checkpoint in a signed note, its signatures NOT verified: suspect until :func:`open_checkpoint` says
    otherwise. For display, and for matching a checkpoint against a file by someone who holds no trusted key.

    The note's layout and signature lines are checked as in :func:`open_note`, the body as in
    :func:`parse_checkpoint`.

    Raises:
        NoteFormatError: ``note.malformed`` or a ``checkpoint.*`` code.
    """
    text, sig_lines = _split_note(note)
    for line in sig_lines:
        _parse_sig_line(line)
    return parse_checkpoint(text)


def sign_checkpoint(cp: Checkpoint, signer_name: str, key: PrivateKey) -> str:
    """The signed note of :func:`format_checkpoint` (cp) by one key (C2SP tlog-checkpoint, "Signatures")."""
    return sign_note(format_checkpoint(cp), [(signer_name, key)])


def open_checkpoint(
    note: str | bytes, verifiers: Sequence[NoteVerifierKey], *, origin: str | None = None
) -> Checkpoint:
    """Verify a signed checkpoint (:func:`open_note`), then parse its text (:func:`parse_checkpoint`).

    At least one signature by ``verifiers`` must verify; the key name need not equal the origin. If ``origin``
    is given, the checkpoint's origin line must equal it.

    Raises:
        everything :func:`open_note` and :func:`parse_checkpoint` raise, and
        VerificationError: ``checkpoint.origin_mismatch``. An UnverifiedNoteError (``note.unverified``) says why
        no signature is trusted (:func:`open_note`) and, when the body's origin line is not ``origin``, that the
        checkpoint is another ledger's.
    """
    try:
        text, _ = open_note(note, verifiers)
    except UnverifiedNoteError as exc:
        _name_another_ledger(exc, note, origin)
        raise
    cp = parse_checkpoint(text)
    if origin is not None and cp.origin != origin:
        raise VerificationError(f"a checkpoint of another ledger ({_quoted(cp.origin)}, not {_quoted(origin)})",
                                code="checkpoint.origin_mismatch")
    return cp


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
        exc.about(f"a checkpoint of another ledger ({_quoted(claimed)}, not {_quoted(origin)})")
