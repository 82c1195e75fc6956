"""Gathering cosignatures (C2SP tlog-witness, the log's side): send a new checkpoint to every witness of a
C2SP tlog-policy that has a submission URL, in parallel, and keep the valid cosignatures.

Each witness gets ``old <size>``, the consistency proof from that size and the note; the size is first the one
the caller believes the witness holds (the previous published checkpoint's, or 0); on a 409 answer the witness's
size is read from the body and the request is sent once more with a proof from that size (none can be made from
a size above the new checkpoint's: the witness then holds a larger tree, which is reported). A 200 answer's lines
are kept only if they are this witness's key's v1 cosignature of the note and verify
(:func:`ledger.cosignature.open_cosignatures`), with a non-zero timestamp not more than
:data:`ledger.witnessed.CLOCK_SKEW` ahead of the clock; anything else from it is ignored (C2SP tlog-witness: "The
client MUST ignore any cosignatures from unknown keys"). Every witness's answer is reported: cosigned at T, the
HTTP status and body, a timeout, unreachable.

Network I/O only; the proofs come from the caller (:func:`ledger.witness.proofs.ledger_proofs` for a ledger).
Each request is bounded by ``timeout`` seconds in all (a witness that has not answered by then is reported as
a timeout and its late answer dropped).
"""

from __future__ import annotations

import http.client
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final

from ..cosignature import open_cosignatures
from ..errors import StoneTrailError
from ..hashing import Digest
from ..note import add_signatures, note_signatures
from ..witness_policy import Witness, WitnessPolicy
from ..witnessed import CLOCK_SKEW, format_time
from .protocol import SIZE_CONTENT_TYPE, AddCheckpoint, format_add_checkpoint, parse_size

__all__ = ["DEFAULT_TIMEOUT", "Gathered", "WitnessAnswer", "gather"]

#: Seconds each witness has to answer, by default.
DEFAULT_TIMEOUT: Final = 10.0
_MAX_ANSWER: Final = 64 * 1024
_SHOWN: Final = 200

#: old size -> the RFC 9162 consistency proof from it to the new checkpoint; raises StoneTrailError if none.
ProofsFor = Callable[[int], Sequence[Digest]]


@dataclass(frozen=True, slots=True, kw_only=True)
class WitnessAnswer:
    """What one witness answered: ``outcome`` is ``cosigned`` (``line``, ``timestamp``), ``refused`` (an HTTP
    ``status`` other than 200, ``body``), ``invalid`` (200 without a valid cosignature of its key: ``body`` says
    why), ``timeout``, ``unreachable`` or ``no_url`` (the policy gives no URL: not asked). ``old_size``: the old
    size of the last request sent; ``tries``: requests sent (1 or 2)."""

    witness: str
    url: str | None
    outcome: str
    status: int | None = None
    body: str = ""
    timestamp: int | None = None
    line: str | None = None
    old_size: int = 0
    tries: int = 0

    def describe(self) -> str:
        """One line, e.g. "w1: cosigned at 2026-12-01 14:03 UTC"."""
        where = f" ({self.url})" if self.url else ""
        if self.outcome == "cosigned" and self.timestamp is not None:
            return f"{self.witness}: cosigned at {format_time(self.timestamp)} (from size {self.old_size})"
        if self.outcome == "refused":
            return f"{self.witness}{where}: HTTP {self.status}: {self.body.strip()[:_SHOWN]}"
        if self.outcome == "no_url":
            return f"{self.witness}: not asked (the policy gives no URL)"
        return f"{self.witness}{where}: {self.outcome}" + (f": {self.body.strip()[:_SHOWN]}" if self.body else "")

    def to_json(self) -> dict[str, object]:
        return {"witness": self.witness, "url": self.url, "outcome": self.outcome, "status": self.status,
                "body": self.body, "time": self.timestamp, "old_size": self.old_size, "tries": self.tries}


@dataclass(frozen=True, slots=True, kw_only=True)
class Gathered:
    """The ``note`` with every valid cosignature added, each witness's ``answers`` (policy order), and whether
    the ``policy``'s quorum is ``met``."""

    note: str
    answers: tuple[WitnessAnswer, ...]
    policy: WitnessPolicy
    cosigned: tuple[str, ...] = field(default=())

    @property
    def met(self) -> bool:
        return self.policy.satisfied(self.cosigned)


def gather(note: str, policy: WitnessPolicy, proofs_for: ProofsFor, *, old_sizes: Mapping[str, int] | int = 0,
           timeout: float = DEFAULT_TIMEOUT, clock: Callable[[], float] = time.time) -> Gathered:
    """Ask every witness of ``policy`` with a URL to cosign ``note`` (module docstring); ``old_sizes``: the size
    each witness (by name) is believed to hold, or one size for all. Never raises for a witness's failure."""
    answers: dict[str, WitnessAnswer] = {}
    threads = []
    for witness in policy.witnesses:
        if witness.url is None:
            answers[witness.name] = WitnessAnswer(witness=witness.name, url=None, outcome="no_url")
            continue
        old = old_sizes if isinstance(old_sizes, int) else old_sizes.get(witness.name, 0)
        thread = threading.Thread(target=_ask_into, args=(answers, witness, note, proofs_for, old, timeout, clock),
                                  name=f"witness {witness.name}", daemon=True)
        thread.start()
        threads.append((witness, thread))
    deadline = time.monotonic() + 2 * timeout + 1  # two tries at most
    for witness, thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
        answers.setdefault(witness.name, WitnessAnswer(witness=witness.name, url=witness.url, outcome="timeout"))
    ordered = tuple(answers[w.name] for w in policy.witnesses)
    lines = [a.line for a in ordered if a.line is not None]
    return Gathered(note=add_signatures(note, lines) if lines else note, answers=ordered, policy=policy,
                    cosigned=tuple(a.witness for a in ordered if a.line is not None))


def _ask_into(answers: dict[str, WitnessAnswer], witness: Witness, note: str, proofs_for: ProofsFor, old: int,
              timeout: float, clock: Callable[[], float]) -> None:
    answer = _ask(witness, note, proofs_for, old, timeout, clock)
    answers.setdefault(witness.name, answer)  # a late answer (after the caller gave up) is dropped


def _ask(witness: Witness, note: str, proofs_for: ProofsFor, old: int, timeout: float,
         clock: Callable[[], float]) -> WitnessAnswer:
    url = str(witness.url)
    base = WitnessAnswer(witness=witness.name, url=url, outcome="refused")
    for tries in (1, 2):
        try:
            proof = tuple(proofs_for(old))
        except StoneTrailError as exc:
            return _with(base, outcome="invalid", old_size=old, tries=tries - 1,
                         body=f"no consistency proof from size {old}: {exc}")
        status, content_type, body = _post(url, format_add_checkpoint(AddCheckpoint(old_size=old, proof=proof,
                                                                                     note=note)), timeout)
        base = _with(base, old_size=old, tries=tries)
        if status in ("timeout", "unreachable"):
            return _with(base, outcome=str(status), body=body.decode("utf-8", "replace"))
        if status == 409 and tries == 1 and content_type.split(";")[0].strip() == SIZE_CONTENT_TYPE:
            try:
                old = parse_size(body)
                continue
            except StoneTrailError:
                pass
        if status != 200:
            return _with(base, outcome="refused", status=int(status), body=body.decode("utf-8", "replace"))
        return _cosignature(base, witness, note, body, clock)
    raise AssertionError("unreachable")


def _cosignature(base: WitnessAnswer, witness: Witness, note: str, body: bytes,
                 clock: Callable[[], float]) -> WitnessAnswer:
    """The witness's valid cosignature line in a 200 answer's ``body``, or why there is none."""
    try:
        lines = body.decode("utf-8").splitlines(keepends=True)
        mine = [line for line in lines if _is_of(line, witness)]
        found = open_cosignatures(add_signatures(note, mine), [witness.key]) if mine else []
    except (UnicodeDecodeError, StoneTrailError) as exc:
        return _with(base, outcome="invalid", status=200, body=f"not a valid cosignature: {exc}")
    if not found:
        named = sorted({line[2:].split(" ", 1)[0] for line in lines if line.startswith("\u2014 ")})
        hint = (f" (it signed as {', '.join(named)[:200]}, the policy names {witness.key.name}: is it serving under "
                "another name, or with another key?)") if named else ""
        return _with(base, outcome="invalid", status=200, body=f"no cosignature by this witness's key{hint}")
    stamp = found[0].timestamp
    if stamp == 0 or stamp > clock() + CLOCK_SKEW:
        return _with(base, outcome="invalid", status=200, body=f"a cosignature dated {stamp} (0, or in the future)")
    line = next(line for line in mine if _stamp(line) == stamp)
    return _with(base, outcome="cosigned", status=200, timestamp=stamp, line=line)


def _is_of(line: str, witness: Witness) -> bool:
    try:
        _, sigs = note_signatures("x\n\n" + line if line.endswith("\n") else "")
    except StoneTrailError:
        return False
    return [(n, k) for n, k, _ in sigs] == [(witness.key.name, witness.key.key_id)]


def _stamp(line: str) -> int:
    _, sigs = note_signatures("x\n\n" + line)
    return int.from_bytes(sigs[0][2][:8], "big")


def _with(answer: WitnessAnswer, **changes: object) -> WitnessAnswer:
    return replace(answer, **changes)  # type: ignore[arg-type]


def _post(url: str, body: bytes, timeout: float) -> tuple[int | str, str, bytes]:
    """(HTTP status, or "timeout" / "unreachable"; Content-Type; at most 64 KiB of body) of POSTing ``body`` to
    ``url``/add-checkpoint. Only http and https URLs are used."""
    if not url.startswith(("http://", "https://")):
        return "unreachable", "", f"not an http(s) URL: {url[:100]}".encode()
    request = urllib.request.Request(url.rstrip("/") + "/add-checkpoint", data=body, method="POST",
                                     headers={"Content-Type": "text/plain; charset=utf-8"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.headers.get("Content-Type", ""), response.read(_MAX_ANSWER)
    except urllib.error.HTTPError as exc:
        with exc:
            return int(exc.code), exc.headers.get("Content-Type", ""), exc.read(_MAX_ANSWER)
    except TimeoutError as exc:
        return "timeout", "", str(exc).encode()
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        kind = "timeout" if isinstance(reason, TimeoutError) else "unreachable"
        return kind, "", str(reason).encode()
    except (http.client.HTTPException, ValueError) as exc:  # not HTTP: a bad status line, a header too long
        return "unreachable", "", f"not an HTTP answer ({type(exc).__name__}: {str(exc)[:200]})".encode()
