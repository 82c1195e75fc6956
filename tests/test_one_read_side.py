"""One read side (issue 10 item 1): the audit, the exporter, the consistency builder and the checkpoint signers
decide whether a checkpoint is a ledger file's in one place (ledger.reader.checkpoint_problems), so the same
mismatched checkpoint gets the same code from each, library and CLI (docs/format.md §10)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from unittest.mock import patch

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger import Ledger, Transferred, Trust, keyfile, note_verifier_key
from ledger.audit import check_ledger
from ledger.checkpoint import Checkpoint, format_counted_line, read_unverified_checkpoint, sign_checkpoint
from ledger.errors import StoneTrailError
from ledger.export import export_bundle
from ledger.hashing import Digest
from ledger.heads import HEADS_EXTENSION
from ledger.identity import IDENTITIES_EXTENSION
from ledger.monitor import consistency_proof_for, fork_evidence
from ledger.reader import check_checkpoint_of, checkpoint_file
from ledger.registry import REGISTRY_EXTENSION
from ledger.storage import BATCH_MAGIC, FRAME_MAGIC, Frame, window
from ledger.storage.frames import pack_batch
from ledger.storage.framing import Survey, survey
from ledger.storage.header import pack_header
from stonetrail_cli.main import main
from world import OPERATOR, ORIGIN, TRUST, World, key

OTHER = Digest(b"\x02" * 32)
#: The operator key pinned for this ledger and, under its own name, for another one: a genuine checkpoint of the
#: other ledger opens (ADR 0037: a checkpoint opens only under a key named after its origin) and is then refused
#: as another ledger's.
BOTH = Trust(operators=(*TRUST.operators, note_verifier_key("other.example/ledger", OPERATOR.public_key)),
             authorities=TRUST.authorities)


def _signed(cp: Checkpoint) -> str:
    """``cp`` with a genuine signature: the operator's, under its origin's name."""
    return sign_checkpoint(cp, cp.origin, OPERATOR)


@dataclass(frozen=True)
class Log:
    path: Path
    cp: Checkpoint  # the file's true checkpoint


@pytest.fixture(scope="module")
def log(tmp_path_factory: pytest.TempPathFactory) -> Log:
    """Enrolments, S0 mined and sold, S1 mined: a ledger of a few records and its checkpoint."""
    directory = tmp_path_factory.mktemp("one")
    w = World()
    w.enrol_all()
    w.add(w.mine("S0"))
    w.add(w.make(Transferred(to="trader-b", mode="title"), "producer-a", inputs=["S0"], place="BW"))
    w.add(w.mine("S1"))
    path = directory / "l.ledger"
    with Ledger.create(path, ORIGIN, {key("authority").public_key.raw}) as led:
        led.append_batch(w.records)
        note = led.checkpoint(OPERATOR)
    (directory / "trust.keys").write_text(BOTH.format())
    keyfile.save_private_key(directory / "operator.pem", OPERATOR)
    return Log(path, read_unverified_checkpoint(note))


def _line(cp: Checkpoint, word: str, line: str) -> Checkpoint:
    return replace(cp, extensions=tuple(line if e.split(" ")[0] == word else e for e in cp.extensions))


#: code -> the true checkpoint changed in one way
MISMATCHES: dict[str, Callable[[Checkpoint], Checkpoint]] = {
    "checkpoint.origin_mismatch": lambda cp: replace(cp, origin="other.example/ledger"),
    "checkpoint.beyond_log": lambda cp: replace(cp, tree_size=cp.tree_size + 1),
    "checkpoint.root_mismatch": lambda cp: replace(cp, root_hash=OTHER),
    "checkpoint.registry_mismatch": lambda cp: _line(cp, REGISTRY_EXTENSION,
                                                     format_counted_line(REGISTRY_EXTENSION, 3, OTHER)),
    "checkpoint.heads_mismatch": lambda cp: _line(cp, HEADS_EXTENSION, format_counted_line(HEADS_EXTENSION, 2, OTHER)),
    "checkpoint.identities_mismatch": lambda cp: _line(cp, IDENTITIES_EXTENSION,
                                                       format_counted_line(IDENTITIES_EXTENSION, 2, OTHER)),
    "checkpoint.registry_missing": lambda cp: replace(cp, extensions=cp.extensions[1:]),
}


def _raised(fn: Callable[[], object]) -> str:
    with pytest.raises(StoneTrailError) as info:
        fn()
    return info.value.code


def test_the_true_checkpoint_belongs_everywhere(log: Log) -> None:
    note = sign_checkpoint(log.cp, ORIGIN, OPERATOR)
    report = check_ledger(log.path, TRUST, checkpoint=note)
    assert report.ok and report.checkpoint == log.cp
    assert export_bundle(log.path, "S0", note, trust=TRUST)
    assert consistency_proof_for(log.path, note).new_size == log.cp.tree_size
    check_checkpoint_of(log.path, log.cp)
    assert read_unverified_checkpoint(checkpoint_file(log.path, OPERATOR)) == log.cp  # what the signer signs


@pytest.mark.parametrize("code", MISMATCHES)
def test_every_reader_gives_one_code_for_one_mismatch(log: Log, code: str) -> None:
    cp = MISMATCHES[code](log.cp)
    note = _signed(cp)  # a genuine signature: only the content is wrong
    found = {
        "audit": [f.code for f in check_ledger(log.path, BOTH, checkpoint=note).findings],
        "export": [_raised(lambda: export_bundle(log.path, "S0", note, trust=BOTH))],
        "consistency": [_raised(lambda: consistency_proof_for(log.path, note))],
        "fork evidence": [_raised(lambda: fork_evidence(log.path, note))],
        "signing": [_raised(lambda: check_checkpoint_of(log.path, cp))],
    }
    assert found == {reader: [code] for reader in found}


@pytest.mark.parametrize("code", MISMATCHES)
def test_every_command_prints_that_code(log: Log, code: str, tmp_path: Path) -> None:
    directory = log.path.parent
    given = tmp_path / "cp.txt"
    given.write_text(_signed(MISMATCHES[code](log.cp)))
    commands = {
        "verify": ["verify", log.path, "--trust", directory / "trust.keys", "--checkpoint", given],
        "proof export": ["proof", "export", log.path, "S0", "--checkpoint", given, "-o", tmp_path / "b.stproof"],
        "checkpoint --since": ["checkpoint", log.path, "--key", directory / "operator.pem", "--since", given,
                               "--proof-out", tmp_path / "p.txt", "-o", tmp_path / "new.txt"],
    }
    for name, args in commands.items():
        result = CliRunner().invoke(main, [str(a) for a in args])
        assert result.exit_code == 1 and f"{code}" in result.output, (name, result.output)
    assert not list(tmp_path.glob("*.stproof")) and not (tmp_path / "new.txt").exists()


# --- the streaming frame reader ------------------------------------------------------------------------------------

_PIECES = st.one_of(
    st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=4).map(lambda ps: pack_batch(ps)[0]),
    st.binary(max_size=30),  # damage: random bytes, a cut frame, zeros
    st.sampled_from([FRAME_MAGIC, BATCH_MAGIC, b"\0" * 16, FRAME_MAGIC + b"\0\0\0\x05"]),
)


@given(st.lists(_PIECES, max_size=12), st.integers(1, 64), st.integers(0, 64), st.integers(0, 200))
@settings(max_examples=300, deadline=None)
def test_a_small_window_reads_what_the_whole_file_says(pieces: list[bytes], width: int, back: int,
                                                       hold: int) -> None:
    """Read through a window of a few bytes, going back a few, holding few batch bytes: the same frames (indices,
    offsets, payloads), problems and end as a survey of the whole file in memory."""
    data = pack_header(ORIGIN) + b"".join(pieces)
    whole: list[Frame] = []
    origin, offsets, problems, end = survey(data, whole)
    with patch.object(window, "WINDOW", width), patch.object(window, "BACK", back):
        stream = Survey(lambda offset, n: data[offset : offset + n], len(data), hold=hold)
        frames = list(stream.frames())
    assert (stream.origin, frames, stream.problems, stream.end) == (origin, whole, problems, end)
    assert list(stream.offsets) == list(offsets) == [f.offset for f in frames]


def _damaged_copy(log: Log, tmp_path: Path, how: str) -> Path:
    """A copy of the log with a torn tail appended (a crash's), or with a byte of its first record's payload
    flipped (damage inside the log)."""
    data = bytearray(log.path.read_bytes())
    if how == "torn":
        data += FRAME_MAGIC + b"\x00\x00\x01\x00abc"  # a frame header promising 256 bytes, and 3 of them
    elif how == "appended":
        data += b"note to self: ship the parcel on Monday\n" * 5  # bytes another program appended
    else:
        data[survey(bytes(data))[1][0] + 20] ^= 0xFF  # inside the first frame's payload
    copy = tmp_path / "damaged.ledger"
    copy.write_bytes(bytes(data))
    return copy


@pytest.mark.parametrize(("how", "grow", "codes"), [
    ("torn", 0, ["store.torn_tail"]),  # the frames before a torn tail are the records it signed: checked
    ("torn", 1, ["store.torn_tail", "checkpoint.beyond_log"]),  # a record it covers was torn off
    ("flipped", 0, ["store.checksum_mismatch", "checkpoint.unchecked"]),  # positions unsure: the tree unknown
    # a new user's review: bytes appended after the records a checkpoint covers left it unchecked
    ("appended", 0, ["store.bad_magic"]),
    ("appended", 1, ["store.bad_magic", "checkpoint.unchecked"]),  # a record it covers may be in those bytes
])
def test_a_checkpoint_is_checked_against_the_records_before_a_torn_tail(log: Log, tmp_path: Path, how: str,
                                                                         grow: int, codes: list[str]) -> None:
    path = _damaged_copy(log, tmp_path, how)
    cp = replace(log.cp, tree_size=log.cp.tree_size + grow)
    report = check_ledger(path, TRUST, checkpoint=sign_checkpoint(cp, ORIGIN, OPERATOR))
    found = [f.code for f in report.findings if f.code.startswith(("store.", "checkpoint."))]
    assert not report.ok and sorted(found) == sorted(codes)
    assert report.checkpoints[0].matches == (len(codes) == 1)


@pytest.mark.parametrize("code", [c for c in MISMATCHES if c != "checkpoint.beyond_log"])
def test_a_checkpoint_before_appended_bytes_is_still_refused_for_each_mismatch(log: Log, tmp_path: Path,
                                                                               code: str) -> None:
    """Checked against the records before the damage, a checkpoint that is not theirs is still named so."""
    path = _damaged_copy(log, tmp_path, "appended")
    report = check_ledger(path, BOTH, checkpoint=_signed(MISMATCHES[code](log.cp)))
    assert code in {f.code for f in report.findings} and not report.checkpoints[0].matches
