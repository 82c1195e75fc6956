"""Trust files: the public keys a verifier pins, and nothing else it needs to believe.

Format (UTF-8 text, one entry a line; docs/format.md "Trust file")::

    # comment lines and blank lines are ignored
    operator <note verifier key>     signs checkpoints (C2SP signed-note verifier key: name+hexid+base64)
    authority <note verifier key>    enrolls parties and grants roles
    witness <name> <cosigner key> [<url>]     \
    group <name> all|any|<k> <name>...         } a witness policy, C2SP tlog-policy (ledger.witness_policy)
    quorum <name>|none                        /

A trust file needs at least one operator and one authority key: verifying against no keys fails closed. Its
witness lines, if any, are one tlog-policy (with exactly one quorum line); a trust file without them requires
no cosignature, and says so wherever a verdict is printed. A witness key may not be an operator or authority
key (``witness.duplicate_key``): the operator cannot witness itself.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .errors import KeyFormatError, NoteFormatError, TrustFileError, expect
from .keys import NoteVerifierKey, PublicKey
from .witness_policy import PolicyError, WitnessPolicy

__all__ = ["ROLE_WORDS", "Trust"]

ROLE_WORDS = ("operator", "authority")
POLICY_WORDS = ("witness", "group", "quorum")
MAX_TRUST_FILE = 64 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Trust:
    """Pinned keys: ``operators`` sign checkpoints, ``authorities`` sign registry records; ``witnesses``: the
    witness policy a checkpoint must meet (None: no cosignature is required).

    Raises:
        TrustFileError: ``trust.incomplete`` (no operator or no authority key).
        PolicyError: ``witness.duplicate_key`` (a witness key that is an operator or authority key).
    """

    operators: tuple[NoteVerifierKey, ...]
    authorities: tuple[NoteVerifierKey, ...]
    witnesses: WitnessPolicy | None = None

    def __post_init__(self) -> None:
        if not self.operators or not self.authorities:
            raise TrustFileError("a trust file needs at least one operator and one authority key",
                                 code="trust.incomplete")
        pinned = {k.public_key.raw for k in (*self.operators, *self.authorities)}
        if self.witnesses is not None and any(k.public_key.raw in pinned for k in self.witnesses.keys):
            raise PolicyError("a witness key is also an operator or authority key: the operator cannot witness "
                              "its own checkpoints", code="witness.duplicate_key")

    def with_witnesses(self, policy: WitnessPolicy) -> Trust:
        """These keys with ``policy`` as the witness policy (a policy file given beside the trust file).

        Raises:
            TrustFileError: ``trust.policy_twice`` (the trust file names a witness policy already).
            PolicyError: as the constructor.
        """
        if self.witnesses is not None:
            raise TrustFileError("the trust file has witness lines already: give the witness policy once",
                                 code="trust.policy_twice")
        return replace(self, witnesses=policy)

    @property
    def authority_keys(self) -> frozenset[bytes]:
        """The authority public keys as raw 32-byte strings."""
        return frozenset(k.public_key.raw for k in self.authorities)

    def swapped_for(self, origin: str) -> bool:
        """True if the operator and authority lines look swapped for the ledger ``origin``: an authority key is
        named after the origin, the name its operator signs checkpoints under (C2SP signed-note key name), and no
        operator key is. Used for a hint only; verification never guesses roles."""
        return (any(k.name == origin for k in self.authorities)
                and not any(k.name == origin for k in self.operators))

    def is_operator(self, key: PublicKey) -> bool:
        """True if ``key`` is one of the pinned operator keys."""
        return any(k.public_key == key for k in self.operators)

    @classmethod
    def parse(cls, text: str) -> Trust:
        """Parse trust-file text strictly.

        Raises:
            PolicyError: a witness line breaks a C2SP tlog-policy rule (:class:`ledger.witness_policy.WitnessPolicy`;
                e.g. ``witness.no_quorum``, ``witness.duplicate_key``), or a witness key is a pinned key.
            TrustFileError: unknown role word, malformed line or key (the message names the line), file too
                large, or no operator or no authority key (``trust.incomplete``).
            ArgumentError: ``input.type`` (``text`` is not a str: decode the file's bytes as UTF-8 first).
        """
        expect(text, str, "text", "the trust file's text (str, decoded from UTF-8)")
        if len(text) > MAX_TRUST_FILE:
            raise TrustFileError(f"trust file over {MAX_TRUST_FILE} characters")
        found: dict[str, list[NoteVerifierKey]] = {word: [] for word in ROLE_WORDS}
        policy_lines: list[str] = []  # the witness policy's lines, the others blank: its line numbers are ours
        for number, line in enumerate(text.split("\n"), start=1):
            stripped = line.strip()
            parts = stripped.split()
            policy_lines.append(line.rstrip("\r") if parts and parts[0] in POLICY_WORDS else "")  # CRLF as elsewhere
            if not stripped or stripped.startswith("#") or parts[0] in POLICY_WORDS:
                continue
            if len(parts) != 2 or parts[0] not in found:
                raise TrustFileError(f"line {number}: expected '<operator|authority> <verifier key>' or a witness "
                                     "policy line (witness, group, quorum)")
            try:
                found[parts[0]].append(NoteVerifierKey.parse(parts[1]))
            except (KeyFormatError, NoteFormatError) as exc:
                raise TrustFileError(f"line {number}: {exc}", code=exc.code) from exc
        policy = WitnessPolicy.parse("\n".join(policy_lines)) if any(policy_lines) else None
        return cls(operators=tuple(found["operator"]), authorities=tuple(found["authority"]), witnesses=policy)

    def format(self) -> str:
        """The trust file text, with a header comment."""
        lines = ["# StoneTrail trust file: the public keys a verifier pins (docs/format.md)."]
        lines += [f"operator {k.text()}" for k in self.operators]
        lines += [f"authority {k.text()}" for k in self.authorities]
        if self.witnesses is not None:
            lines += [" ".join(["witness", w.name, w.key.text(), *([w.url] if w.url else [])])
                      for w in self.witnesses.witnesses]
            lines += [" ".join(["group", name, str(g.threshold), *g.members])
                      for name, g in self.witnesses.groups.items()]
            lines.append(f"quorum {self.witnesses.quorum}")
        return "\n".join(lines) + "\n"
