"""What ``show`` and ``items`` say about the ledger file they read: a replay with a progress bar and its verdict,
a note when a large file has no index, and the words for a file that is damaged or lost records its published
checkpoint covers (docs/format.md §8.1)."""

from __future__ import annotations

import contextlib
import os
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ledger import Finding, Trust
from ledger._beside import published_of, published_places, read_published, short_of
from ledger.checkpoint import Checkpoint, open_checkpoint, read_unverified_checkpoint
from ledger.errors import StoneTrailError, VerificationError
from ledger.pg.url import is_url
from ledger.storage import origin_of

from ._common import _about, _plural
from ._output import progress

if TYPE_CHECKING:
    from ledger.audit import AuditReport
    from ledger.replay import Replay

__all__ = ["RUN_VERIFY", "Broken", "audited", "broken_parts", "damaged", "genuine_published", "incomplete",
           "note_no_index", "replay_file", "rolled_back"]


@dataclass(frozen=True)
class Broken:
    """What of a ledger file cannot be told: ``parts``, the parts of the file that cannot be read (those the
    replay kept, in log order: :attr:`ledger.replay.Replay.damage`), ``count`` of them in all, kept or not; ``lost``,
    the records its published checkpoint covers and it lacks (a ``checkpoint.beyond_log`` finding, position
    None: :func:`rolled_back`). False when nothing is broken."""

    parts: Sequence[Finding] = ()
    count: int = 0
    lost: Sequence[Finding] = ()

    def __bool__(self) -> bool:
        return bool(self.parts or self.lost)

    @property
    def findings(self) -> list[Finding]:
        """Every finding of it, as ``--json`` lists them under "damage": the parts, then what was lost."""
        return [*self.parts, *self.lost]


def replay_file(ledger_file: Path, trust: Trust | None) -> tuple[Replay, str]:
    """LEDGER replayed (with a progress bar on a terminal), and its verdict: ``valid`` (every rule holds
    under ``trust``), ``invalid`` (a finding), or ``unverified`` (no trust given)."""
    from ledger import replay_ledger  # the audit's modules: loaded by the commands that replay, not at start
    with _about(ledger_file), progress("records", "replaying") as bar:
        replay = replay_ledger(ledger_file, trust, progress=bar)
    if trust is not None and replay.framing_ok:
        for note in genuine_published(ledger_file, trust):
            replay = _against(replay, read_unverified_checkpoint(note))
    return replay, "unverified" if trust is None else "invalid" if replay.findings else "valid"


def _against(replay: Replay, published: Checkpoint) -> Replay:
    """``replay`` with a ``checkpoint.root_mismatch`` finding (the code of :func:`ledger.reader.checkpoint_problems`)
    if its file's root at the tree size of ``published``, a checkpoint its operator signed, is not that checkpoint's
    root hash: the file was rewritten after it was signed (the root covers every record, so the registry, heads and
    identity lines, which an audit compares too, are left to 'verify --checkpoint'). A checkpoint of more records
    than the file holds is :func:`rolled_back`'s."""
    size = published.tree_size
    if size > replay.tree.size or replay.tree.root_at(size) == published.root_hash:
        return replay
    finding = Finding(code="checkpoint.root_mismatch", position=None, item=None,
                      reason=f"checkpoint: the file's root at tree size {size} is not the root hash of the checkpoint "
                             "published beside it: the file was rewritten after its operator signed it")
    return replace(replay, findings=(*replay.findings, finding))


def audited(ledger_file: Path, trust: Trust | None) -> AuditReport | None:
    """LEDGER audited in one streaming pass, on every core, listing its items (``check_ledger(inventory=True)``,
    with a progress bar on a terminal; ``trust`` None: no key trusted, for an unverified listing), if every part
    of the file can be read; else None, as soon as a part that cannot be read is met (the caller replays it: the
    replay names those parts, which an audit only counts among its findings). Under ``trust``, the file is
    checked against the checkpoints published for it too, if a pinned operator key signed them
    (:func:`genuine_published`): a file rewritten after its operator signed one is not valid."""
    from ledger import check_ledger  # the audit's modules: loaded by the commands that audit, not at start
    notes = genuine_published(ledger_file, trust) if trust is not None else []
    if notes and trust is not None:  # the operator's word about the log: its witnesses are verify's
        trust = replace(trust, witnesses=None)
    with _about(ledger_file), progress("records", "auditing" if trust is not None else "replaying") as bar:
        report = check_ledger(ledger_file, trust, checkpoints=notes, progress=bar, jobs=os.cpu_count() or 1,
                              inventory=True, until_unreadable=True)
    return None if report.unreadable else report


def genuine_published(ledger_file: Path | str, trust: Trust) -> list[str]:
    """The texts of the checkpoints published for the ledger file (``checkpoint.txt`` beside it, and beside a
    link's target: :func:`ledger._beside.published_places`, docs/format.md §8.1) that are of the file's origin and
    that a key ``trust`` pins as an operator's signed: what the operator signed about the log, which the file must
    match (root, registry, heads and identity lines at its tree size). One that is another ledger's or unreadable
    is passed over (:func:`rolled_back` warns of that); one that no pinned key signed too, with a note on stderr
    that the file is not checked against it."""
    if is_url(ledger_file):
        return []
    try:
        origin = origin_of(ledger_file)
    except StoneTrailError:  # the audit names a file it cannot read (a FIFO is not opened)
        return []
    notes = []
    for place in published_places(ledger_file):
        try:
            data = read_published(place)
            note = data.decode("utf-8-sig") if data is not None else None  # as published_at reads it
            if note is None or read_unverified_checkpoint(note).origin != origin:
                continue
            open_checkpoint(note, trust.operators, origin=origin)
            if note not in notes:  # the same one in both places: checked once
                notes.append(note)
        except VerificationError as exc:
            click.echo(f"stonetrail: note: {place} is not signed by an operator key the trust file pins ({exc.code}): "
                       f"{ledger_file} is not checked against it", err=True)
        except (UnicodeDecodeError, StoneTrailError):  # not a checkpoint: rolled_back says so
            pass
    return notes


#: What an invalid listing tells to run for every finding.
RUN_VERIFY = "(run 'stonetrail verify LEDGER --trust FILE')"

#: A ledger file this large (about 16,000 records) read without an index takes long enough to say why.
_SLOW_WITHOUT_INDEX = 8 << 20


def note_no_index(ledger_file: Path | str) -> None:
    """Say on stderr that a large ledger file is read whole for want of an index that covers it, and how to make
    the next read instant (a reader never builds the index itself: that needs the writer lock and --trust)."""
    from ledger.index.db import index_path
    with contextlib.suppress(OSError):
        if not is_url(ledger_file) and os.path.getsize(ledger_file) >= _SLOW_WITHOUT_INDEX:
            index = index_path(Path(ledger_file))
            none = "has no index that covers it" if not index.exists() else \
                f"has an index, {index.name}, that does not cover it (another file's, behind it or damaged)"
            click.echo(f"stonetrail: note: {ledger_file} {none}: reading the whole log (run 'stonetrail index "
                       f"{shlex.quote(str(ledger_file))} --trust FILE' once to make this instant)", err=True)


def rolled_back(ledger_file: Path | str, origin: str, records: int) -> list[Finding]:
    """A ``checkpoint.beyond_log`` finding (position None) if the checkpoint published beside the ledger file
    (``checkpoint.txt``, :func:`ledger._beside.published_of`) covers more than its ``records``: records its operator
    signed are missing, so what the file tells may be incomplete (docs/format.md §8.1); else none."""
    if is_url(ledger_file):
        return []
    try:
        published_of(ledger_file, origin, strict=True)
    except StoneTrailError as exc:  # it bounds nothing: say so, rather than pass it over in silence
        click.echo(f"stonetrail: warning: {exc} [{exc.code}]", err=True)
    short = short_of(ledger_file, origin, records)
    return [] if short is None else [Finding(code="checkpoint.beyond_log", position=None, item=None, reason=short)]


def broken_parts(ledger_file: Path | str, replay: Replay) -> Broken:
    """What of the replayed file cannot be read (:attr:`ledger.replay.Replay.damage`), then records its published
    checkpoint covers that are missing (:func:`rolled_back`), if the damage leaves the count of records sure (none,
    or a torn tail: then repair would refuse to cut it, ``repair.rollback``, and the records must be recovered)."""
    parts = replay.damage
    sure = all(f.code == "store.torn_tail" for f in parts)  # positions are sure below a torn tail
    return Broken(parts, replay.unreadable, rolled_back(ledger_file, replay.origin, len(replay.records)) if sure
                  else ())


def incomplete(broken: Broken) -> str:
    """Why a listing from a file with ``broken`` parts may be incomplete, in a few words."""
    lost = "the file lost records its published checkpoint covers (checkpoint.beyond_log)"
    if not broken.parts:
        return lost
    first = broken.parts[0]
    said = f"{_plural(broken.count, 'part')} of the file cannot be read (first: record {first.position}, {first.code})"
    return f"{said}, and {lost}" if broken.lost else said


def damaged(ledger_file: Path | str, broken: Broken) -> tuple[str, str]:
    """What is damaged in the file (the first part of ``broken`` that cannot be read,
    :attr:`ledger.replay.Replay.damage`, and records of the published checkpoint missing, :func:`rolled_back`), and
    what to run."""
    first = broken.parts[0] if broken.parts else None
    said = []
    if first is not None:
        more = f" ({_plural(broken.count - 1, 'more damaged part')})" if broken.count > 1 else ""
        said.append(f"{ledger_file} is damaged at record {first.position}: "
                    f"{first.reason.removeprefix(f'record {first.position}: ')} [{first.code}]{more}")
    said += [f"{f.reason} [{f.code}]" for f in broken.lost[:1]]
    if broken.lost:
        return "; and ".join(said), "; recover them (a backup, a mirror) before trusting what it says"
    torn = first is not None and first.code == "store.torn_tail"  # its reason already says to run stonetrail repair
    return said[0], "" if torn else "; run 'stonetrail verify' to see every finding"
