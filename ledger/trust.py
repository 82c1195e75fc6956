"""Trust files: the public keys a verifier pins, and nothing else it needs to believe.

Format (UTF-8 text, one entry a line; docs/format.md "Trust file")::

    # comment lines and blank lines are ignored
    operator <note verifier key>     signs checkpoints (C2SP signed-note verifier key: name+hexid+base64)
    authority <note verifier key>    enrolls parties and grants roles

A trust file needs at least one operator and one authority key: verifying against no keys fails closed.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import KeyFormatError, NoteFormatError, TrustFileError, expect
from .keys import NoteVerifierKey, PublicKey

__all__ = ["ROLE_WORDS", "Trust"]

ROLE_WORDS = ("operator", "authority")
MAX_TRUST_FILE = 64 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Trust:
    """Pinned keys: ``operators`` sign checkpoints, ``authorities`` sign registry records."""

    operators: tuple[NoteVerifierKey, ...]
    authorities: tuple[NoteVerifierKey, ...]

    def __post_init__(self) -> None:
        if not self.operators or not self.authorities:
            raise TrustFileError("a trust file needs at least one operator and one authority key",
                                 code="trust.incomplete")

    @property
    def authority_keys(self) -> frozenset[bytes]:
        """The authority public keys as raw 32-byte strings."""
        return frozenset(k.public_key.raw for k in self.authorities)

    def is_operator(self, key: PublicKey) -> bool:
        """True if ``key`` is one of the pinned operator keys."""
        return any(k.public_key == key for k in self.operators)

    @classmethod
    def parse(cls, text: str) -> Trust:
        """Parse trust-file text strictly.

        Raises:
            TrustFileError: unknown role word, malformed line or key (the message names the line), file too
                large, or no operator or no authority key (``trust.incomplete``).
            ArgumentError: ``input.type`` (``text`` is not a str: decode the file's bytes as UTF-8 first).
        """
        expect(text, str, "text", "the trust file's text (str, decoded from UTF-8)")
        if len(text) > MAX_TRUST_FILE:
            raise TrustFileError(f"trust file over {MAX_TRUST_FILE} characters")
        found: dict[str, list[NoteVerifierKey]] = {word: [] for word in ROLE_WORDS}
        for number, line in enumerate(text.split("\n"), start=1):
            stripped = line.strip()
            if not stripped or stripped.startswith("#"):
                continue
            parts = stripped.split()
            if len(parts) != 2 or parts[0] not in found:
                raise TrustFileError(f"line {number}: expected '<operator|authority> <verifier key>'")
            try:
                found[parts[0]].append(NoteVerifierKey.parse(parts[1]))
            except (KeyFormatError, NoteFormatError) as exc:
                raise TrustFileError(f"line {number}: {exc}", code=exc.code) from exc
        return cls(operators=tuple(found["operator"]), authorities=tuple(found["authority"]))

    def format(self) -> str:
        """The trust file text, with a header comment."""
        lines = ["# StoneTrail trust file: the public keys a verifier pins (docs/format.md)."]
        lines += [f"operator {k.text()}" for k in self.operators]
        lines += [f"authority {k.text()}" for k in self.authorities]
        return "\n".join(lines) + "\n"
