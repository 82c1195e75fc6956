"""Attacks on the issue 11 audit by whoever controls the ledger file or the audit state file: each test names an
input on which a way of running ``verify`` (workers, --resume, a lower --level) must not say what a full audit
(--jobs 1, every level) does not say (adversarial review of issue 11: R1 a file replaced between a worker's read
and the main process's, R2 a file rewritten below a saved state, R3 a state that does not decode, R4 a lower level
worded as a full verdict)."""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import zlib
from collections.abc import Callable
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from ledger import Record, Trust, check_ledger
from ledger._codec import pack_local, unpack_local
from ledger.errors import InputError, StoneTrailError, VerificationError
from ledger.storage import scan
from stonetrail_cli.main import main


def _trust(demo: Path) -> Trust:
    return Trust.parse((demo / "trust.keys").read_text())


def _with_payload(src: Path, dst: Path, index: int, payload: bytes) -> None:
    """``dst``: ``src`` with record ``index``'s frame holding ``payload`` (its magic kept, length and CRC new)."""
    data, frame = src.read_bytes(), scan(src).frames[index]
    head = data[frame.offset:frame.offset + 4] + struct.pack(">II", len(payload), zlib.crc32(payload))
    dst.write_bytes(data[:frame.offset] + head + payload + data[frame.end:])


def _bad_signature(payload: bytes) -> bytes:
    """``payload`` with one byte of its first signature's S changed: same length, still < L, does not verify."""
    sig = Record.from_bytes(payload).signatures[0].sig
    assert payload.count(sig) == 1
    return payload.replace(sig, sig[:40] + bytes([sig[40] ^ 1]) + sig[41:])


class _Swap(Executor):
    """Runs each chunk at once; when the chunk ending at record ``end`` is submitted, calls ``swap`` (the file's
    owner replacing it during the audit) just before its worker reads it (``before``) or just after."""

    def __init__(self, end: int, swap: Callable[[], None], *, before: bool) -> None:
        self.end, self.swap, self.before = end, swap, before

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        done: Future[Any] = Future()
        last = args[0].first + args[0].count == self.end
        if last and self.before:
            self.swap()
        done.set_result(fn(*args, **kwargs))
        if last and not self.before:
            self.swap()
        return done


@pytest.mark.parametrize("before", [True, False], ids=["before-the-workers-read", "after-the-workers-read"])
def test_a_file_replaced_during_a_parallel_audit_gets_the_verdict_of_the_bytes_read(
        demo: Path, tmp_path: Path, before: bool) -> None:
    """R1: every fact of a record (its leaf hash, signature verdicts, custody) is of the bytes one worker read, so
    the report is the full audit of the honest file or of the forged one, whole (or a refusal): never the forged
    record's root with a valid verdict, or the honest root with an invalid one."""
    honest, forged, audited = tmp_path / "honest.ledger", tmp_path / "forged.ledger", tmp_path / "audited.ledger"
    shutil.copy(demo / "demo.ledger", honest)
    last = len(scan(honest).frames) - 1
    _with_payload(honest, forged, last, _bad_signature(scan(honest).frames[last].payload))
    expected = {(r.root_hash, r.verdict) for r in (check_ledger(honest, _trust(demo)), check_ledger(forged, _trust(demo)))}
    assert {verdict for _, verdict in expected} == {"valid", "invalid"}
    shutil.copy(honest, audited)
    swap = _Swap(last + 1, lambda: os.replace(forged, audited), before=before)
    try:
        report = check_ledger(audited, _trust(demo), executor=swap, chunk_records=100)
    except StoneTrailError as exc:  # refusing (the file changed during the audit) is right too
        assert exc.code == "store.changed"
        return
    assert (report.root_hash, report.verdict) in expected
    assert report.verdict == ("invalid" if before else "valid")


def test_a_resumed_audit_of_a_file_rewritten_below_the_state_is_never_valid(demo: Path, tmp_path: Path) -> None:
    trust, full = _trust(demo), demo / "demo.ledger"
    frames = scan(full).frames
    prefix = tmp_path / "prefix.ledger"
    prefix.write_bytes(full.read_bytes()[: frames[499].end])
    check_ledger(prefix, trust, save_state=tmp_path / "a.state")
    rewritten = tmp_path / "rewritten.ledger"
    _with_payload(full, rewritten, 100, _bad_signature(frames[100].payload))
    want = check_ledger(rewritten, trust)
    assert want.verdict == "invalid"
    try:
        got = check_ledger(rewritten, trust, resume=tmp_path / "a.state")
    except VerificationError as exc:  # refusing the state for this file is right too
        assert exc.code == "audit.log_rewritten"
        return
    assert (got.verdict, got.root_hash, got.findings) == (want.verdict, want.root_hash, want.findings)


def test_a_state_whose_rows_do_not_decode_is_refused_as_damaged(demo: Path, tmp_path: Path) -> None:
    trust, full = _trust(demo), demo / "demo.ledger"
    prefix = tmp_path / "prefix.ledger"
    prefix.write_bytes(full.read_bytes()[: scan(full).frames[599].end])
    check_ledger(prefix, trust, save_state=tmp_path / "a.state")
    line, _, rest = (tmp_path / "a.state").read_bytes().partition(b"\n")
    body = unpack_local(rest[32:])
    keys, values = body["tables"]["items"]
    body["tables"]["items"] = (keys, [b"\x00not an item"] * len(values))
    payload = pack_local(body)
    (tmp_path / "b.state").write_bytes(line + b"\n" + hashlib.sha256(payload).digest() + payload)
    with pytest.raises(InputError) as refused:
        check_ledger(full, trust, resume=tmp_path / "b.state")
    assert refused.value.code == "audit.state_damaged"


@pytest.mark.parametrize("level", ["structure", "hashes"])
def test_a_lower_level_says_what_it_checked_not_every_rule(demo: Path, tmp_path: Path, level: str) -> None:
    forged = tmp_path / "forged.ledger"
    last = len(scan(demo / "demo.ledger").frames) - 1
    _with_payload(demo / "demo.ledger", forged, last, _bad_signature(scan(demo / "demo.ledger").frames[last].payload))
    out = CliRunner().invoke(main, ["verify", str(forged), "--trust", str(demo / "trust.keys"), "--level", level,
                                    "--jobs", "1"]).output
    assert level in out and "NOT a full audit" in out
    assert "every record passes every rule" not in out
