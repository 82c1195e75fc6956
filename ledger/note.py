"""C2SP signed notes: sign, open, and read signature lines (the envelope of every checkpoint, ledger.checkpoint).

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
from typing import Final

from .errors import KeyFormatError, NoteFormatError, StoneTrailError, UnverifiedNoteError
from .keys import NoteVerifierKey, PrivateKey, is_valid_key_name, note_key_id

__all__ = ["CONTROL", "MAX_NOTE_BYTES", "MAX_SIGNATURES", "add_signatures", "note_signatures", "note_signers",
           "open_note", "quoted", "sign_note", "split_note"]

#: Largest signed note accepted or produced, in UTF-8 bytes (checked before any parsing).
MAX_NOTE_BYTES: Final = 1024 * 1024
#: Most signature lines in a note (Go sumdb/note's limit; signed-note requires at least 16).
MAX_SIGNATURES: Final = 100
#: The control characters a note may not hold (all but newline).
CONTROL: Final = re.compile("[\x00-\x09\x0b-\x1f]")

_SIG_PREFIX: Final = "\u2014 "


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
    text, sig_lines = split_note(note)
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
        shown = f"{quoted(name)}+{key_id.hex()}"
        same_name = by_name.get(name)
        if same_name:
            ids = ", ".join(k.key_id.hex() for k in same_name)
            reasons.append(f"signed by {shown}: the trusted key named {quoted(name)} has key ID {ids}, so this "
                           "is another key")
        else:
            reasons.append(f"signed by {shown}: no trusted key is named {quoted(name)}")
    pinned = ", ".join(f"{quoted(k.name)}+{k.key_id.hex()}" for k in trusted[:5])
    more = f" and {len(trusted) - 5} more" if len(trusted) > 5 else ""
    return f"{'; '.join(reasons)} (trusted: {pinned}{more})"


def quoted(name: str) -> str:
    """A key name as printed: as it is if printable and short, else escaped and cut."""
    return name if name.isprintable() and len(name) <= 80 else ascii(name[:80])


def split_note(note: str | bytes) -> tuple[str, list[str]]:
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
    if text == "":
        raise NoteFormatError("note text is empty", code="note.malformed")
    if not isinstance(text, str) or not text.endswith("\n") or CONTROL.search(text):
        hint = (f" (got {text[:60]!r}: a file name? pass the file's text, e.g. Path(name).read_text())"
                if isinstance(text, str) and "\n" not in text and len(text) < 4096 else
                " (it has Windows line endings, CR LF: a signed note's lines end in LF alone, and its signatures "
                "cover those bytes)" if isinstance(text, str) and "\r\n" in text else "")
        raise NoteFormatError(f"note text must end in newline, no control chars{hint}", code="note.malformed")
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
    text, sig_lines = split_note(note)
    return text, [_parse_sig_line(line) for line in sig_lines]


def note_signers(note: str | bytes) -> set[str]:
    """The keys (``name+key ID`` in hex) of ``note``'s Ed25519 signature lines (64-byte signatures: not a
    witness's 72-byte cosignatures, docs/format.md §7e), NOT verified; empty for text that is not a signed note."""
    try:
        return {f"{name}+{key_id.hex()}" for name, key_id, raw in note_signatures(note)[1] if len(raw) == 64}
    except StoneTrailError:
        return set()


def add_signatures(note: str, lines: Sequence[str]) -> str:
    """``note`` with the signature lines ``lines`` (each ``— <name> <base64>\n``) appended after its own, those
    it already holds (the same line) left out: what a log does with the cosignatures a witness returns (C2SP
    tlog-witness, "add-checkpoint"). The lines are not verified here.

    Raises:
        NoteFormatError: ``note.malformed`` (a line that is not one signature line, or the result over the
            caps: :data:`MAX_SIGNATURES` lines, :data:`MAX_NOTE_BYTES` bytes).
    """
    split_note(note)
    held = set(note[note.rfind("\n\n") + 2:].splitlines(keepends=True))
    for line in lines:
        if not isinstance(line, str) or not line.endswith("\n") or "\n" in line[:-1]:
            raise NoteFormatError("a signature line must be one line ending in a newline", code="note.malformed")
        _parse_sig_line(line[:-1])
    more = "".join(dict.fromkeys(line for line in lines if line not in held))
    split_note(note + more)  # the caps
    return note + more
