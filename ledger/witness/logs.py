"""The logs a witness knows: which origins it cosigns for, and the keys that must sign their checkpoints.

File format (UTF-8 text; the ``log`` lines of a C2SP tlog-policy, https://c2sp.org/tlog-policy)::

    # comment lines and blank lines are ignored
    log <vkey> [<url>]        a log's checkpoint-signing key: C2SP signed-note verifier key, type 0x01

The **origin** a key signs for is its key name: a StoneTrail operator key is named after the ledger's origin
(``stonetrail keygen --ledger``), as C2SP tlog-checkpoint recommends ("the origin SHOULD be the key name"). Several
``log`` lines with one name are several trusted keys of one origin (a key rotation): a checkpoint needs a valid
signature by one of them. The URL, if any, is ignored here. Refused (``witness.logs``, naming the line): any
other keyword, a malformed key, one public key twice, no log at all, over :data:`MAX_LOGS` lines, over
:data:`MAX_LOGS_BYTES` bytes, control bytes other than tab and newline.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from ..errors import InputError, KeyFormatError, NoteFormatError, expect
from ..keys import NoteVerifierKey

__all__ = ["MAX_LOGS", "MAX_LOGS_BYTES", "KnownLogs", "LogsFileError", "origin_hash"]

MAX_LOGS_BYTES: Final = 1024 * 1024
MAX_LOGS: Final = 10_000


class LogsFileError(InputError):
    """A witness's logs file is malformed (``witness.logs``; module docstring)."""

    default_code = "witness.logs"


def origin_hash(origin: str) -> str:
    """The lowercase hex SHA-256 of a log's origin line: its name in a witness's monitoring URLs (C2SP
    tlog-witness, "Monitor Retrieval Mechanism")."""
    return hashlib.sha256(origin.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class KnownLogs:
    """origin -> the verifier keys trusted to sign its checkpoints (at least one each)."""

    keys: Mapping[str, tuple[NoteVerifierKey, ...]]

    def keys_for(self, origin: str) -> tuple[NoteVerifierKey, ...]:
        """The trusted keys of ``origin``; () for an origin this witness does not know."""
        return self.keys.get(origin, ())

    def by_hash(self) -> dict[str, str]:
        """:func:`origin_hash` -> origin, for every known origin."""
        return {origin_hash(origin): origin for origin in self.keys}

    @classmethod
    def parse(cls, data: str | bytes) -> KnownLogs:
        """Parse a logs file strictly (module docstring). Raises LogsFileError; ArgumentError (``input.type``)."""
        expect(data, (str, bytes), "data", "the logs file's bytes or text")
        raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
        if len(raw) > MAX_LOGS_BYTES:
            raise LogsFileError(f"a logs file is at most {MAX_LOGS_BYTES} bytes")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise LogsFileError("a logs file must be UTF-8 text") from exc
        keys: dict[str, list[NoteVerifierKey]] = {}
        seen: set[bytes] = set()
        for number, line in enumerate(text.split("\n"), start=1):
            key = _log_line(number, line)
            if key is None:
                continue
            if key.public_key.raw in seen:
                raise LogsFileError(f"line {number}: this public key is already a log key of the file")
            if len(seen) >= MAX_LOGS:
                raise LogsFileError(f"line {number}: over {MAX_LOGS} log keys")
            seen.add(key.public_key.raw)
            keys.setdefault(key.name, []).append(key)
        if not keys:
            raise LogsFileError("the logs file names no log: add 'log <vkey>' lines (the operator key a trust "
                                "file pins)")
        return cls({origin: tuple(found) for origin, found in keys.items()})


def _log_line(number: int, line: str) -> NoteVerifierKey | None:
    if any((c < " " and c != "\t") or c == "\x7f" for c in line):
        raise LogsFileError(f"line {number}: a control character (only tab and newline are allowed)")
    words = line.replace("\t", " ").split()
    if not words or words[0].startswith("#"):
        return None
    if words[0] != "log" or len(words) not in (2, 3):
        raise LogsFileError(f"line {number}: want 'log <vkey> [<url>]'")
    try:
        return NoteVerifierKey.parse(words[1])
    except (KeyFormatError, NoteFormatError) as exc:
        raise LogsFileError(f"line {number}: bad log key (a signed-note verifier key, type 0x01): {exc}") from exc
