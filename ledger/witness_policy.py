"""C2SP tlog-policy files: which witnesses a verifier knows and how many of them must cosign a checkpoint.

https://c2sp.org/tlog-policy. Line based; items separated by ASCII spaces and tabs; blank lines and lines whose
first non-blank character is "#" are ignored::

    log <vkey> [<url>]                     a log key (type 0x01); StoneTrail's trust file pins them as "operator"
    witness <name> <vkey> [<url>]          a witness's cosigner key (type 0x04, C2SP tlog-cosignature)
    group <name> all|any|<k> <name>...     witnessed when at least k of its n members are (any: 1, all: n)
    quorum <name>|none                     exactly once: what must witness a checkpoint

Rules enforced at load (each a :class:`PolicyError` with the code named):

- a group or the quorum names only witnesses and groups defined on earlier lines (``witness.unknown_name``);
  names are unique and ``none`` is reserved (``witness.duplicate_name``); a group lists each member once, has at
  least one, and 1 <= k <= n, and, for k >= 2, no witness is reached through two of its members, directly or
  through nested groups, unless all its members are needed down to the witnesses (``witness.group``);
- two log or two witness lines wrapping the same public key are refused, whatever their names, and so is a
  witness key that is also a log key (``witness.duplicate_key``): a key counts once, so one witness can never
  pass for two;
- exactly one quorum line (``witness.no_quorum``: none — an empty file included — so a policy never reads as
  "no requirement" by accident; ``quorum none`` says so explicitly; ``witness.policy_malformed`` for two);
- only tab, newline and bytes 0x20-0x7E, 0x80-0xFF (``witness.policy_malformed``); the text must be UTF-8 here;
  at most :data:`MAX_POLICY_BYTES` bytes and :data:`MAX_ENTRIES` logs, witnesses and groups each (the spec
  recommends supporting at least 32 of each).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Final

from .cosignature import CosignerKey
from .errors import InputError, KeyFormatError, NoteFormatError, expect
from .keys import NoteVerifierKey

__all__ = ["MAX_ENTRIES", "MAX_POLICY_BYTES", "Group", "PolicyError", "Witness", "WitnessPolicy"]

MAX_POLICY_BYTES: Final = 64 * 1024
MAX_ENTRIES: Final = 256
_NONE: Final = "none"
_BAD_BYTES: Final = re.compile(rb"[\x00-\x08\x0b-\x1f\x7f]")
_THRESHOLD: Final = re.compile("[1-9][0-9]{0,3}")


class PolicyError(InputError):
    """A witness policy (C2SP tlog-policy) is malformed or breaks one of its rules (module docstring)."""

    default_code = "witness.policy_malformed"


@dataclass(frozen=True, slots=True, kw_only=True)
class Witness:
    """A witness of the policy: its ``name`` there, its cosigner ``key`` and, for whoever submits checkpoints
    to it, its submission prefix ``url`` (C2SP tlog-witness), if given."""

    name: str
    key: CosignerKey
    url: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Group:
    """``threshold`` of ``members`` (witness or group names) must witness."""

    threshold: int
    members: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class WitnessPolicy:
    """A parsed tlog-policy: ``logs`` (as parsed; the trust file's operator keys are what a verifier pins),
    ``witnesses`` in file order, ``groups`` by name and the ``quorum`` (a witness or group name, or "none")."""

    logs: tuple[NoteVerifierKey, ...] = ()
    witnesses: tuple[Witness, ...] = ()
    groups: Mapping[str, Group] = field(default_factory=dict)
    quorum: str = _NONE

    @property
    def keys(self) -> tuple[CosignerKey, ...]:
        """The witnesses' cosigner keys, in file order."""
        return tuple(w.key for w in self.witnesses)

    @property
    def required(self) -> bool:
        """False only for an explicit ``quorum none``."""
        return self.quorum != _NONE

    def satisfied(self, witnessed: Collection[str]) -> bool:
        """True if the witnesses named in ``witnessed`` (names in this policy) meet the quorum. Each group is
        judged once, in file order (a group names only earlier ones), so a deep or shared nesting costs the
        policy's size, never more."""
        if self.quorum == _NONE:
            return True
        held = set(witnessed)
        for name, group in self.groups.items():  # dicts keep the file's order: members before their groups
            if sum(member in held for member in group.members) >= group.threshold:
                held.add(name)
        return self.quorum in held

    def quorum_time(self, times: Mapping[str, int]) -> int | None:
        """The latest time T such that the witnesses whose cosignature is at T or later meet the quorum
        (``times``: witness name -> its cosignature's timestamp); None if the quorum is not met at all. For a
        1-of-n quorum, the newest cosignature's time; for k of n, the k-th newest."""
        for moment in sorted(set(times.values()), reverse=True):
            if self.satisfied([name for name, when in times.items() if when >= moment]):
                return moment
        return None

    def describe(self) -> str:
        """The quorum in words, e.g. "2 of 3 witnesses (w1, w2, w3)"."""
        return "none" if not self.required else self._words(self.quorum)

    def _words(self, name: str) -> str:
        group = self.groups.get(name)
        if group is None:
            return f"witness {name}"
        members = ", ".join(f"group {m}" if m in self.groups else m for m in group.members)
        return f"{group.threshold} of {len(group.members)} ({members})"

    @classmethod
    def parse(cls, data: str | bytes) -> WitnessPolicy:
        """Parse a tlog-policy file's bytes (or text) strictly (module docstring).

        Raises:
            PolicyError: ``witness.policy_malformed``, ``witness.no_quorum``, ``witness.duplicate_key``,
                ``witness.duplicate_name``, ``witness.unknown_name``, ``witness.group``, ``witness.policy_too_large``;
                the message names the line.
            ArgumentError: ``input.type``.
        """
        expect(data, (str, bytes), "data", "the policy file's bytes or text")
        raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
        if len(raw) > MAX_POLICY_BYTES:
            raise PolicyError(f"a witness policy is at most {MAX_POLICY_BYTES} bytes", code="witness.policy_too_large")
        if bad := _BAD_BYTES.search(raw):
            at = raw.count(b"\n", 0, bad.start()) + 1
            raise PolicyError(f"line {at}: control byte 0x{bad[0][0]:02x}: only tab and newline are allowed "
                              "(a Windows line ending?)")
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise PolicyError("a witness policy must be UTF-8 text") from exc
        builder = _Builder()
        for number, line in enumerate(text.split("\n"), start=1):
            words = [word for word in re.split("[ \t]+", line) if word]  # spaces and tabs only (tlog-policy)
            if words and not words[0].startswith("#"):
                builder.line(number, words)
        return builder.done()


def _is_note_key(text: str) -> bool:
    """True if ``text`` is a checkpoint-signing verifier key (type 0x01)."""
    try:
        NoteVerifierKey.parse(text)
    except (KeyFormatError, NoteFormatError):
        return False
    return True


class _Builder:
    def __init__(self) -> None:
        self.logs: list[NoteVerifierKey] = []
        self.witnesses: dict[str, Witness] = {}
        self.groups: dict[str, Group] = {}
        self.reach: dict[str, frozenset[str]] = {}  # group -> the witnesses it counts, through nested groups
        self.all_of: set[str] = set()  # the groups that need every witness they reach ("all" groups of such)
        self.quorum: str | None = None
        self.number = 0

    def fail(self, why: str, code: str = "witness.policy_malformed") -> PolicyError:
        return PolicyError(f"line {self.number}: {why}", code=code)

    def line(self, number: int, words: list[str]) -> None:
        self.number = number
        handlers: dict[str, Callable[[list[str]], None]] = {
            "log": self._log, "witness": self._witness, "group": self._group, "quorum": self._quorum}
        handler = handlers.get(words[0])
        if handler is None:
            raise self.fail(f"unknown keyword {words[0]!r:.40} (want log, witness, group or quorum)")
        handler(words[1:])

    def _log(self, args: list[str]) -> None:
        if len(args) not in (1, 2):
            raise self.fail("want 'log <vkey> [<url>]'")
        try:
            key = NoteVerifierKey.parse(args[0])
        except (KeyFormatError, NoteFormatError) as exc:
            raise self.fail(f"bad log key: {exc}") from exc
        self._new_key(key.public_key.raw)
        self._count(self.logs)
        self.logs.append(key)

    def _witness(self, args: list[str]) -> None:
        if len(args) not in (2, 3):
            raise self.fail("want 'witness <name> <vkey> [<url>]'")
        name = self._new_name(args[0])
        try:
            key = CosignerKey.parse(args[1])
        except (KeyFormatError, NoteFormatError) as exc:
            hint = " (this is a checkpoint-signing key, as an operator's: 'stonetrail witness keygen' prints a " \
                "witness's cosigner key)" if _is_note_key(args[1]) else ""
            raise self.fail(f"bad witness key (a tlog-cosignature vkey, type 0x04){hint}: {exc}") from exc
        self._new_key(key.public_key.raw)
        self._count(self.witnesses)
        self.witnesses[name] = Witness(name=name, key=key, url=args[2] if len(args) == 3 else None)

    def _group(self, args: list[str]) -> None:
        if len(args) < 3:
            raise self.fail("want 'group <name> all|any|<k> <name>...' with at least one member", "witness.group")
        name, threshold, members = self._new_name(args[0]), args[1], args[2:]
        for member in members:
            self._known(member)
        if len(set(members)) != len(members):
            raise self.fail(f"group {name!r:.40} lists a member twice", "witness.group")
        if threshold in ("all", "any"):
            k = len(members) if threshold == "all" else 1
        elif _THRESHOLD.fullmatch(threshold) and int(threshold) <= len(members):
            k = int(threshold)
        else:
            raise self.fail(f"group {name!r:.40}: threshold {threshold!r:.20} is not all, any or 1..{len(members)}",
                            "witness.group")
        self._one_count(name, members, k)
        self._count(self.groups)
        self.groups[name] = Group(threshold=k, members=tuple(members))

    def _one_count(self, name: str, members: list[str], threshold: int) -> None:
        """Refuse a group that could count one witness twice: one that needs two or more members (k >= 2) and
        reaches a witness through two of them, directly or through nested groups, unless it and every group below
        it need all their members (then it needs every witness it reaches anyway). Under C2SP tlog-policy such a
        witness counts once through each member (an adversarial review: w1 alone met "2 of (any of w1, w2), w1").
        A group of k = 1 counts no two members together; its members were checked when they were defined."""
        every = threshold == len(members) and all(m in self.all_of for m in members if m in self.groups)
        counted: dict[str, str] = {}  # witness -> the member it is counted through
        for member in members:
            for witness in sorted(self.reach.get(member, frozenset({member}))):
                if witness in counted and threshold > 1 and not every:
                    raise self.fail(f"group {name!r:.40} counts witness {witness!r:.40} through two members "
                                    f"({counted[witness]!r:.40} and {member!r:.40}): one witness would pass for two",
                                    "witness.group")
                counted.setdefault(witness, member)
        self.reach[name] = frozenset(counted)
        if every:
            self.all_of.add(name)

    def _quorum(self, args: list[str]) -> None:
        if len(args) != 1:
            raise self.fail("want 'quorum <name>'")
        if self.quorum is not None:
            raise self.fail("a second quorum line (a policy has exactly one)")
        if args[0] != _NONE:
            self._known(args[0])
        self.quorum = args[0]

    def _new_name(self, name: str) -> str:
        if name == _NONE or name in self.witnesses or name in self.groups:
            raise self.fail(f"name {name!r:.40} is reserved or already defined", "witness.duplicate_name")
        return name

    def _known(self, name: str) -> None:
        if name not in self.witnesses and name not in self.groups:
            raise self.fail(f"{name!r:.40} is not a witness or group defined on an earlier line",
                            "witness.unknown_name")

    def _new_key(self, raw: bytes) -> None:
        if any(k.public_key.raw == raw for k in self.logs) or any(
                w.key.public_key.raw == raw for w in self.witnesses.values()):
            raise self.fail("this public key is already in the policy (a key counts once, under one name)",
                            "witness.duplicate_key")

    def _count(self, entries: Collection[object]) -> None:
        if len(entries) >= MAX_ENTRIES:
            raise self.fail(f"over {MAX_ENTRIES} entries of one kind", "witness.policy_too_large")

    def done(self) -> WitnessPolicy:
        if self.quorum is None:
            raise PolicyError("the witness policy has no quorum line: write 'quorum <witness or group>' (or "
                              "'quorum none' to require no cosignature)", code="witness.no_quorum")
        return WitnessPolicy(logs=tuple(self.logs), witnesses=tuple(self.witnesses.values()),
                             groups=dict(self.groups), quorum=self.quorum)
