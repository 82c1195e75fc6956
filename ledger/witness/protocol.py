"""C2SP tlog-witness ``add-checkpoint``: the request's bytes (format / parse) and the witness's decision table.
Pure: bytes and values in, values out; the state and the HTTP server are :mod:`ledger.witness.state` and
:mod:`ledger.witness.server`.

Request body (https://c2sp.org/tlog-witness, "add-checkpoint"), every line ending in "\\n"::

    old <size>                  ASCII decimal, no leading zero (except "0"): the size the client thinks the
                                witness last cosigned for the checkpoint's origin
    <base64 hash>  (0..63)      RFC 9162 §2.1.4 consistency proof from <size> to the checkpoint's size
    <empty line>
    <signed checkpoint note>    C2SP tlog-checkpoint in a signed note; it may carry several signatures

The decision, in the spec's order (:func:`check_signed` for the first three, then :func:`decide` inside the
state's transaction):

    ======  =====================================================================================================
    400     the body is not the format above, over :data:`MAX_PROOF_LINES` proof lines, or old size > size
    404     the checkpoint's origin is not a known log
    403     no signature by a trusted key of that origin, or one of its signatures does not verify
    409     old size != the size last cosigned for the origin (0 if none); body "<that size>\\n",
            Content-Type ``text/x.tlog.size``
    422     size 0 with a root other than SHA-256(""); old size 0 with a proof; old size == size with another
            root than the one cosigned, or a stonetrail line both carry with another value (a split view,
            :func:`ledger.checkpoint.trees_conflict`), or lines that both add to and leave out some of those
            cosigned; a consistency proof that does not verify
    200     one tlog-cosignature/v1 line (timestamp now, never below the last one given for the origin, never 0);
            the new state is stored (durably) before the answer
    ======  =====================================================================================================

Whatever the status, a validly signed checkpoint that contradicts the one last cosigned is kept as evidence:
the same size with another root (or line) is a split view (:class:`ledger.evidence.SplitViewClaim`, both notes
signed by the log), a smaller size a rollback (:class:`ledger.rollback.RollbackClaim`, which proves no misbehaviour:
anyone can present an old checkpoint).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from ..checkpoint import (
    MAX_TREE_SIZE,
    Checkpoint,
    commitment_kinds,
    note_signatures,
    open_note,
    parse_checkpoint,
    read_unverified_checkpoint,
    trees_conflict,
)
from ..cosignature import cosign, cosigner_key
from ..errors import InputError, KeyFormatError, SignatureError, UnverifiedNoteError, VerificationError
from ..evidence import SplitViewClaim, format_evidence
from ..hashing import Digest
from ..keys import NoteVerifierKey, PrivateKey
from ..merkle import EMPTY_ROOT, verify_consistency
from ..rollback import RollbackClaim
from .logs import KnownLogs

__all__ = ["MAX_BODY_BYTES", "MAX_PROOF_LINES", "MAX_WITNESS_NOTE_BYTES", "SIZE_CONTENT_TYPE", "AddCheckpoint",
           "Answer", "Latest", "RequestError", "Signed", "Verdict", "check_signed", "decide", "format_add_checkpoint",
           "format_size", "parse_add_checkpoint", "parse_size"]

#: Most consistency proof lines in a request (C2SP tlog-witness: "MUST NOT send more than 63").
MAX_PROOF_LINES: Final = 63
#: Largest checkpoint note a witness reads (a StoneTrail checkpoint with 100 signatures is under 12 KiB).
MAX_WITNESS_NOTE_BYTES: Final = 64 * 1024
#: Largest request body: the old size and proof lines (under 3 KiB) and the note.
MAX_BODY_BYTES: Final = 64 * 1024 + MAX_WITNESS_NOTE_BYTES
#: The Content-Type of a 409 answer's body.
SIZE_CONTENT_TYPE: Final = "text/x.tlog.size"
_DECIMAL: Final = re.compile("0|[1-9][0-9]{0,19}")


class RequestError(InputError):
    """An add-checkpoint request body that is not the format (``witness.bad_request``): answered 400."""

    default_code = "witness.bad_request"


@dataclass(frozen=True, slots=True, kw_only=True)
class AddCheckpoint:
    """An add-checkpoint request: ``old_size``, the consistency ``proof`` from it, the signed ``note``."""

    old_size: int
    proof: tuple[Digest, ...]
    note: str


def format_add_checkpoint(request: AddCheckpoint) -> bytes:
    """The request body of ``request`` (module docstring)."""
    proof = "".join(f"{Digest(h).b64()}\n" for h in request.proof)
    return f"old {request.old_size}\n{proof}\n{request.note}".encode()


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """Parse a request body strictly: UTF-8, the old size line, at most 63 canonical base64 hashes of 32 bytes,
    an empty line, a note of at most :data:`MAX_WITNESS_NOTE_BYTES` bytes (its form is checked by
    :func:`check_signed`). Raises RequestError."""
    if not isinstance(body, bytes) or len(body) > MAX_BODY_BYTES:
        raise RequestError(f"a request body is bytes, at most {MAX_BODY_BYTES}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError("the request body is not UTF-8") from exc
    head, blank, note = text.partition("\n\n")
    lines = head.split("\n")
    if not blank or not note or not lines[0].startswith("old "):
        raise RequestError("want 'old <size>', proof lines, an empty line, then the checkpoint")
    if len(note.encode("utf-8")) > MAX_WITNESS_NOTE_BYTES:
        raise RequestError(f"the checkpoint is over {MAX_WITNESS_NOTE_BYTES} bytes")
    old = lines[0][4:]
    if not _DECIMAL.fullmatch(old) or int(old) > MAX_TREE_SIZE:
        raise RequestError(f"bad old size {old!r:.30}: ASCII decimal, no leading zero")
    if len(lines) - 1 > MAX_PROOF_LINES:
        raise RequestError(f"{len(lines) - 1} proof lines: at most {MAX_PROOF_LINES}")
    try:
        proof = tuple(Digest.from_b64(line) for line in lines[1:])
    except InputError as exc:
        raise RequestError(f"a proof line is not the base64 of a 32-byte hash: {exc}") from exc
    return AddCheckpoint(old_size=int(old), proof=proof, note=note)


def format_size(size: int) -> bytes:
    """A 409 answer's body: the size in decimal and a newline."""
    return f"{size}\n".encode("ascii")


def parse_size(body: bytes) -> int:
    """The size in a 409 answer's body (strictly "<decimal>\\n"). Raises RequestError."""
    text = body.decode("ascii", "replace")
    if not text.endswith("\n") or not _DECIMAL.fullmatch(text[:-1]) or int(text[:-1]) > MAX_TREE_SIZE:
        raise RequestError(f"not a tree size line: {text[:30]!r}")
    return int(text[:-1])


@dataclass(frozen=True, slots=True, kw_only=True)
class Latest:
    """What a witness last cosigned for an origin: ``checkpoint``, ``note`` (its text, the verified log
    signatures and the cosignature line) and ``timestamp`` (the cosignature's, POSIX seconds)."""

    checkpoint: Checkpoint
    note: str
    timestamp: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """An HTTP answer: ``status``, ``body``, ``content_type``."""

    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"

    @classmethod
    def text(cls, status: int, why: str) -> Answer:
        return cls(status=status, body=(why.rstrip("\n") + "\n").encode("utf-8"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Signed:
    """A request whose checkpoint is validly signed by a trusted key of its origin: ``checkpoint``, and
    ``note``: its text with the verified log signature lines only."""

    request: AddCheckpoint
    checkpoint: Checkpoint
    note: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """:func:`decide`'s outcome: the ``answer``; ``latest``: the new state to store (200 only);
    ``evidence``: (kind, evidence bytes, what it is of) to keep, if the checkpoint contradicts the state: what it
    is of is the two checkpoints' texts without their signature lines (nor the time received), so that one
    contradiction is kept once, however often it is sent and whatever lines are added to it."""

    answer: Answer
    latest: Latest | None = None
    evidence: tuple[str, bytes, bytes] | None = None


def check_signed(request: AddCheckpoint, logs: KnownLogs) -> Signed | Answer:
    """The checks that need no state: the note's form (400), its origin (404), its signatures (403)."""
    try:
        cp = read_unverified_checkpoint(request.note)
    except InputError as exc:
        return Answer.text(400, f"not a signed checkpoint: {exc}")
    keys = logs.keys_for(cp.origin)
    if not keys:
        return Answer.text(404, f"unknown log origin {cp.origin!r:.100}")
    try:
        text, verified = open_note(request.note, keys)
    except (SignatureError, UnverifiedNoteError, KeyFormatError) as exc:
        return Answer.text(403, f"not signed by a key trusted for {cp.origin!r:.100}: {exc}")
    return Signed(request=request, checkpoint=parse_checkpoint(text), note=text + "\n" + _lines(request.note, verified))


def _lines(note: str, verified: Sequence[NoteVerifierKey]) -> str:
    """The signature lines of ``note`` by the verified keys (the first line of each)."""
    wanted = {(k.name, k.key_id) for k in verified}
    kept: list[str] = []
    lines = note[note.rfind("\n\n") + 2:].splitlines(keepends=True)
    for (name, key_id, _), line in zip(note_signatures(note)[1], lines, strict=True):
        if (name, key_id) in wanted:
            wanted.discard((name, key_id))
            kept.append(line)
    return "".join(kept)


def decide(signed: Signed, latest: Latest | None, *, name: str, key: PrivateKey, now: int,
           received: int | None = None) -> Verdict:
    """The state-dependent rows of the table (module docstring) for ``signed``, given what was ``latest``
    cosigned for its origin (None: nothing); on success the cosignature of ``key`` under ``name`` dated
    max(``now``, the last timestamp, 1). ``received``: the time to record in rollback evidence (default ``now``).
    """
    cp, request = signed.checkpoint, signed.request
    held = latest.checkpoint.tree_size if latest else 0
    witness = cosigner_key(name, key.public_key).text()
    evidence = _evidence(signed, latest, witness, now if received is None else received)
    if request.old_size > cp.tree_size:  # 400, after the evidence: a smaller tree is kept whatever "old" says
        return Verdict(answer=Answer.text(400, f"old size {request.old_size} > checkpoint size {cp.tree_size}"),
                       evidence=evidence)
    if request.old_size != held:
        return Verdict(answer=Answer(status=409, body=format_size(held), content_type=SIZE_CONTENT_TYPE),
                       evidence=evidence)
    refusal = _inconsistent(cp, request, latest)
    if refusal is not None:
        return Verdict(answer=Answer.text(422, refusal), evidence=evidence)
    timestamp = max(now, latest.timestamp if latest else 0, 1)
    line = cosign(_text(signed.note), name, key, timestamp)
    kept = Latest(checkpoint=cp, note=signed.note + line, timestamp=timestamp)
    if latest is not None and cp.tree_size == latest.checkpoint.tree_size and \
            commitment_kinds(cp).keys() < commitment_kinds(latest.checkpoint).keys():
        # the same tree without some of the lines cosigned: keep those, to compare the next ones with
        kept = Latest(checkpoint=latest.checkpoint, note=latest.note, timestamp=timestamp)
    return Verdict(answer=Answer(status=200, body=line.encode("utf-8")), latest=kept)


def _inconsistent(cp: Checkpoint, request: AddCheckpoint, latest: Latest | None) -> str | None:
    """Why the checkpoint is not consistent with the state (422), or None."""
    if cp.tree_size == 0 and cp.root_hash != EMPTY_ROOT:
        return "a checkpoint of size 0 must have the empty tree's root"
    if request.old_size == 0 and request.proof:
        return "a consistency proof from size 0 must be empty"
    if latest is not None and cp.tree_size == latest.checkpoint.tree_size:  # size 0 too: one empty tree
        held = latest.checkpoint
        if cp.root_hash != held.root_hash:
            return f"size {cp.tree_size} was cosigned with another root hash"
        if trees_conflict(cp, held):
            return f"size {cp.tree_size} was cosigned with other stonetrail lines (one tree's records give one of each)"
        if not (_fewer_lines(cp, held) or _fewer_lines(held, cp)):
            return (f"size {cp.tree_size} was cosigned with other kinds of stonetrail lines: a checkpoint of it may "
                    "add lines to those cosigned, or leave some out, not both")
    if request.old_size == 0:
        return None
    assert latest is not None  # old size == the size held > 0
    try:
        verify_consistency(latest.checkpoint.tree_size, cp.tree_size, latest.checkpoint.root_hash, cp.root_hash,
                           request.proof)
    except (InputError, VerificationError) as exc:
        return f"the consistency proof from size {request.old_size} does not verify: {exc}"
    return None


def _fewer_lines(cp: Checkpoint, than: Checkpoint) -> bool:
    """Whether ``cp`` carries only kinds of StoneTrail lines that ``than`` carries (docs/format.md §7)."""
    return commitment_kinds(cp).keys() <= commitment_kinds(than).keys()


def _evidence(signed: Signed, latest: Latest | None, witness: str,
              received: int) -> tuple[str, bytes, bytes] | None:
    """Split-view or rollback evidence if ``signed`` contradicts ``latest`` (:class:`Verdict`)."""
    if latest is None:
        return None
    old, new = latest.checkpoint, signed.checkpoint
    of = (_text(latest.note) + "\n" + _text(signed.note)).encode("utf-8")
    if new.tree_size == old.tree_size and trees_conflict(new, old):
        return "split_view", format_evidence(SplitViewClaim(note_a=latest.note, note_b=signed.request.note)), of
    if new.tree_size < old.tree_size:
        return "rollback", format_evidence(RollbackClaim(cosigned=latest.note, witness=witness, presented=signed.note,
                                                         received=received)), of
    return None


def _text(note: str) -> str:
    """A signed note's text, without its signature lines."""
    return note[:note.rfind("\n\n") + 1]
