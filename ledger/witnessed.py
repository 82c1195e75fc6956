"""Has a checkpoint been witnessed enough, and how recently? The trust file's witness policy applied to a note.

A checkpoint a verifier relies on (a bundle's, ``verify --checkpoint``'s, the newer one of a consistency proof)
must carry cosignatures (C2SP tlog-cosignature/v1) meeting the quorum of the trust file's witness policy (C2SP
tlog-policy): each counted once, by the policy witness whose key made it (duplicate keys are refused when the
policy is loaded, so one key under two names cannot count twice); cosignatures by keys outside the policy are
ignored. Its **witnessed time** is the latest time T at which witnesses meeting the quorum had all cosigned
(:meth:`ledger.witness_policy.WitnessPolicy.quorum_time`): for 2 of 3, the second newest cosignature's time.
That is what ``--max-age`` compares with the clock, since a v1 cosignature states that as of its time the
checkpoint was the largest consistent one its witness had seen. A trust file without witness lines requires no
cosignature: the result says so (``required`` False), and a freshness bound cannot be met (``witness.no_time``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from .cosignature import open_cosignatures
from .errors import VerificationError
from .trust import Trust
from .witness_policy import WitnessPolicy

__all__ = ["CLOCK_SKEW", "WitnessError", "Witnessed", "check_witnesses", "format_time", "witness_status"]

#: How far ahead of the verifier's clock a cosignature's time may be (seconds) before it is refused
#: (``witness.future``; C2SP tlog-cosignature: "verifiers MAY reject cosignatures with timestamps in the future").
CLOCK_SKEW: Final = 600


class WitnessError(VerificationError):
    """A checkpoint does not meet the witness policy: ``witness.quorum`` (too few cosignatures),
    ``witness.stale`` (witnessed longer ago than allowed), ``witness.future`` (a cosignature dated ahead of the
    clock), ``witness.no_time`` (a freshness bound, but no witness policy to give a time)."""

    default_code = "witness.quorum"


@dataclass(frozen=True, slots=True, kw_only=True)
class Witnessed:
    """The witness policy's verdict on one checkpoint: ``times`` (policy witness name -> timestamp of its valid
    cosignature), the ``policy`` (None: the trust file has none), ``quorum_time`` (None: quorum not met)."""

    policy: WitnessPolicy | None
    times: dict[str, int] = field(default_factory=dict)
    quorum_time: int | None = None

    @property
    def required(self) -> bool:
        """True if the trust file's policy requires cosignatures."""
        return self.policy is not None and self.policy.required

    @property
    def met(self) -> bool:
        """True if the quorum is met (always, when none is required)."""
        return not self.required or self.quorum_time is not None

    def describe(self) -> str:
        """One line, e.g. "witnessed 2026-12-01 14:03 UTC by 2 of 3 witnesses (quorum 2 of 3 (a, b, c))"."""
        if self.policy is None:
            return "not witnessed: the trust file names no witness policy, so no cosignature was required"
        count = f"{len(self.times)} of {len(self.policy.witnesses)} witnesses"
        if not self.required:
            return f"cosigned by {count}; the witness policy requires none (quorum none)"
        if self.quorum_time is None:
            return f"NOT witnessed enough: cosigned by {count}, the policy requires {self.policy.describe()}"
        return (f"witnessed {format_time(self.quorum_time)} by {count} (quorum {self.policy.describe()})")

    def to_json(self) -> dict[str, object]:
        """``required``, ``met``, ``quorum`` (words), ``witnessed_at`` (ISO 8601 UTC or None) and
        ``cosignatures`` ([{"witness", "key", "time"}], time in POSIX seconds)."""
        keys = {w.name: w.key.text() for w in self.policy.witnesses} if self.policy else {}
        return {"required": self.required, "met": self.met,
                "quorum": self.policy.describe() if self.policy else None,
                "witnessed_at": _iso(self.quorum_time) if self.quorum_time is not None else None,
                "cosignatures": [{"witness": name, "key": keys[name], "time": when}
                                 for name, when in sorted(self.times.items())]}


def format_time(timestamp: int) -> str:
    """POSIX seconds as "YYYY-MM-DD HH:MM UTC" (a time past year 9999 as its number of seconds)."""
    return _format(timestamp, "%Y-%m-%d %H:%M UTC")


def _iso(timestamp: int) -> str:
    return _format(timestamp, "%Y-%m-%dT%H:%M:%SZ")


def _format(timestamp: int, pattern: str) -> str:
    try:
        return datetime.fromtimestamp(timestamp, UTC).strftime(pattern)
    except (OverflowError, OSError, ValueError):  # a cosignature may state any time up to 2**63 - 1
        return f"POSIX time {timestamp}"


def witness_status(note: str | bytes, trust: Trust) -> Witnessed:
    """The witness policy of ``trust`` applied to the signed checkpoint ``note`` (its operator signature is
    checked elsewhere: :func:`ledger.checkpoint.open_checkpoint`). Never raises for a quorum not met.

    Raises:
        NoteFormatError: ``note.malformed``. SignatureError: ``witness.bad_cosignature`` (a policy witness's
            line that does not verify: the note is refused, C2SP signed-note).
    """
    policy = trust.witnesses
    if policy is None:
        return Witnessed(policy=None)
    names = {w.key: w.name for w in policy.witnesses}
    times = {names[c.key]: c.timestamp for c in open_cosignatures(note, policy.keys)}
    return Witnessed(policy=policy, times=times, quorum_time=policy.quorum_time(times) if policy.required else None)


def check_witnesses(note: str | bytes, trust: Trust, *, max_age: int | None = None,
                    now: int | None = None) -> Witnessed:
    """:func:`witness_status`, required to meet the quorum and, with ``max_age`` (seconds), to have been
    witnessed at most that long before ``now`` (POSIX seconds; default: the clock).

    Raises:
        WitnessError: ``witness.quorum``, ``witness.future`` (the quorum is met only if a cosignature dated
            more than :data:`CLOCK_SKEW` seconds ahead of ``now`` is counted; such a one is never counted),
            ``witness.stale``, ``witness.no_time`` (``max_age``
            but no policy requiring cosignatures).
        and as :func:`witness_status`.
    """
    status = witness_status(note, trust)
    clock = int(time.time()) if now is None else now
    stated = status.times
    ahead = sorted(name for name, when in stated.items() if when > clock + CLOCK_SKEW)
    if ahead and status.policy is not None:  # not counted: a witness's clock ahead cannot make a checkpoint fresh
        times = {name: when for name, when in stated.items() if name not in ahead}
        status = Witnessed(policy=status.policy, times=times,
                           quorum_time=status.policy.quorum_time(times) if status.policy.required else None)
        if not status.met:
            raise WitnessError(f"the cosignature of witness {ahead[0]} is dated {format_time(stated[ahead[0]])}, "
                               f"ahead of this clock ({format_time(clock)}), so it is not counted, and the others "
                               f"do not meet the quorum: {status.describe()}", code="witness.future")
    if not status.met:
        raise WitnessError(f"the checkpoint does not meet the witness policy: {status.describe()}")
    if max_age is None:
        return status
    if status.quorum_time is None:
        raise WitnessError("a freshness bound needs a witness policy: a checkpoint alone carries no time; "
                           f"{status.describe()}", code="witness.no_time")
    age = clock - status.quorum_time
    if age > max_age:
        raise WitnessError(f"the checkpoint was last witnessed {format_time(status.quorum_time)}, {_span(age)} ago: "
                           f"older than the {_span(max_age)} allowed", code="witness.stale")
    return status


def _span(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}{_span(seconds % size) if seconds % size and unit != 'm' else ''}"
    return f"{seconds}s"
