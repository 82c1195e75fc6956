"""C2SP tlog-cosignature/v1 (Ed25519): a witness's timestamped statement about a checkpoint. Pure: no I/O.

https://c2sp.org/tlog-cosignature ("Format", "Ed25519 signed message")::

    cosigner key ID   = SHA-256(<name> || "\\n" || 0x04 || 32-byte Ed25519 public key)[:4]
    verifier key      = <name> "+" hex8(key ID) "+" base64(0x04 || public key)          (signed-note vkey, type 0x04)
    signature line    = "— " <name> " " base64(key ID || timestamp (u64, big-endian) || Ed25519 signature (64))
    signed message    = "cosignature/v1\\n" || "time " <decimal timestamp> "\\n" || <checkpoint note text>

The timestamp is POSIX seconds (at most 2**63 - 1), written without leading zeros. The header line is the
message's domain separation (it can never be a checkpoint's text: an origin line is never followed by "time").
A v1 cosignature states that, as of its time, the checkpoint is the largest consistent tree head the cosigner has
seen for that origin; it says nothing about extension lines (they are signed, but not vouched for).

A note's signature lines are opened as C2SP signed-note prescribes: a line whose (name, key ID) is not a
given cosigner key is ignored (the log's own signature, an unknown witness); a repeat of a (name, key ID) already
checked is ignored; a line of a given cosigner key that does not verify, or is not 72 bytes, rejects the note.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from .errors import InputError, KeyFormatError, NoteFormatError, SignatureError
from .keys import PrivateKey, PublicKey, is_valid_key_name, note_key_id, parse_verifier_key
from .note import note_signatures

__all__ = [
    "COSIGNATURE_ALG",
    "MAX_TIMESTAMP",
    "Cosignature",
    "CosignerKey",
    "cosign",
    "cosigned_message",
    "cosigner_key",
    "has_cosignature",
    "open_cosignatures",
]

#: Signature type byte of an Ed25519 cosigner key (C2SP tlog-cosignature, "Format").
COSIGNATURE_ALG: Final = 0x04
#: Largest timestamp a cosignature may carry (C2SP tlog-cosignature: "MUST NOT exceed 2^63 - 1").
MAX_TIMESTAMP: Final = 2**63 - 1
_HEADER: Final = "cosignature/v1\n"
_SIZE: Final = 8 + 64  # timestamp || Ed25519 signature


@dataclass(frozen=True, slots=True, kw_only=True)
class CosignerKey:
    """A witness's Ed25519 cosigner key under its name: ``name+hex8(key ID)+base64(0x04 || public key)``.

    Raises:
        KeyFormatError: ``witness.bad_vkey`` on construction with a bad name or a key ID that is not
            SHA-256(name || "\\n" || 0x04 || key)[:4].
    """

    name: str
    key_id: bytes
    public_key: PublicKey

    def __post_init__(self) -> None:
        if not is_valid_key_name(self.name) or not isinstance(self.public_key, PublicKey):
            raise KeyFormatError(f"bad cosigner key {self.name!r:.80}", code="witness.bad_vkey")
        if self.key_id != note_key_id(self.name, self.public_key, COSIGNATURE_ALG):
            raise KeyFormatError(f"key ID does not match cosigner key {self.name!r:.80}", code="witness.bad_vkey")

    def text(self) -> str:
        """The verifier-key text (signed-note vkey with signature type 0x04)."""
        raw = bytes([COSIGNATURE_ALG]) + self.public_key.raw
        return f"{self.name}+{self.key_id.hex()}+{base64.b64encode(raw).decode('ascii')}"

    @classmethod
    def parse(cls, text: str) -> CosignerKey:
        """Parse a cosigner verifier key strictly.

        Raises:
            KeyFormatError: ``witness.bad_vkey`` (name, 8 lowercase hex digits, base64, type byte 0x04 — a
                checkpoint-signing key, type 0x01, is not a cosigner key — a 32-byte valid point, key ID).
        """
        name, key_id, public_key = parse_verifier_key(text, COSIGNATURE_ALG, "witness.bad_vkey")
        return cls(name=name, key_id=key_id, public_key=public_key)


def cosigner_key(name: str, public_key: PublicKey) -> CosignerKey:
    """The cosigner key of ``public_key`` under ``name``. Raises KeyFormatError (``note.bad_name``)."""
    return CosignerKey(name=name, key_id=note_key_id(name, public_key, COSIGNATURE_ALG), public_key=public_key)


@dataclass(frozen=True, slots=True, kw_only=True)
class Cosignature:
    """A verified cosignature: who (``key``) and when (``timestamp``, POSIX seconds, as the witness stated it)."""

    key: CosignerKey
    timestamp: int


def cosigned_message(text: str, timestamp: int) -> bytes:
    """The bytes a v1 cosignature signs: header line, time line, then the checkpoint's note text (ending in
    "\\n", no signature lines). Raises NoteFormatError (``witness.bad_timestamp``) for a timestamp outside
    0..2**63-1, or (``note.malformed``) for text that does not end in a newline."""
    if type(timestamp) is not int or not 0 <= timestamp <= MAX_TIMESTAMP:
        raise NoteFormatError(f"cosignature timestamp must be an int in 0..2**63-1: {timestamp!r:.40}",
                              code="witness.bad_timestamp")
    if not isinstance(text, str) or not text.endswith("\n"):
        raise NoteFormatError("a cosigned checkpoint text ends in a newline", code="note.malformed")
    return f"{_HEADER}time {timestamp}\n{text}".encode()


def cosign(text: str, name: str, key: PrivateKey, timestamp: int) -> str:
    """The signature line (ending in "\\n") of ``key``'s v1 cosignature, under ``name``, of the checkpoint whose
    note text is ``text``, at ``timestamp`` (POSIX seconds). Raises as :func:`cosigned_message`, and
    KeyFormatError (``note.bad_name``) for a bad name."""
    signer = cosigner_key(name, key.public_key)
    signature = key.sign(cosigned_message(text, timestamp))
    raw = signer.key_id + timestamp.to_bytes(8, "big") + signature
    return f"\u2014 {name} {base64.b64encode(raw).decode('ascii')}\n"


def open_cosignatures(note: str | bytes, cosigners: Sequence[CosignerKey]) -> list[Cosignature]:
    """The cosignatures of ``cosigners`` on the signed checkpoint ``note``, each verified, in note order;
    other signature lines are ignored (module docstring). The log's own signature is not checked here
    (:func:`ledger.checkpoint.open_checkpoint`).

    Raises:
        NoteFormatError: ``note.malformed`` (as :func:`ledger.checkpoint.open_note`).
        SignatureError: ``witness.bad_cosignature``: a line of a given cosigner key that is not 72 bytes
            (u64 timestamp || 64-byte signature), whose timestamp is over 2**63-1, or whose signature does not
            verify (the specific cause chained): the note is refused, as signed-note refuses a known key's bad
            signature.
    """
    text, lines = note_signatures(note)
    known = {(k.name, k.key_id): k for k in cosigners}
    found: list[Cosignature] = []
    seen: set[tuple[str, bytes]] = set()
    for name, key_id, raw in lines:
        key = known.get((name, key_id))
        if key is None or (name, key_id) in seen:
            continue
        seen.add((name, key_id))
        timestamp = int.from_bytes(raw[:8], "big")
        if len(raw) != _SIZE or timestamp > MAX_TIMESTAMP:
            raise SignatureError(f"the cosignature of {name!r:.80} is not a v1 cosignature (u64 timestamp and "
                                 "64-byte Ed25519 signature)", code="witness.bad_cosignature")
        try:
            key.public_key.verify(raw[8:], cosigned_message(text, timestamp))
        except SignatureError as exc:
            raise SignatureError(f"the cosignature of {name!r:.80} does not verify ({exc.code})",
                                 code="witness.bad_cosignature") from exc
        found.append(Cosignature(key=key, timestamp=timestamp))
    return found


def has_cosignature(note: str | bytes) -> bool:
    """True if ``note`` has a signature line shaped as a witness cosignature (C2SP tlog-cosignature: 8-byte
    timestamp and 64-byte signature, docs/format.md §7e), none verified; False for a note that does not parse."""
    try:
        return any(len(raw) == 72 for _, _, raw in note_signatures(note)[1])
    except InputError:
        return False
