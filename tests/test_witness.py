"""The witness (C2SP tlog-witness) over real HTTP on 127.0.0.1: every row of add-checkpoint's decision table,
state kept across a restart, split-view and rollback evidence that 'evidence verify' accepts, gathering from
three witnesses under a 2-of-3 policy (one down: published; two down: nothing published), and a short soak
(bench/bench_witness.py runs it for 30 s)."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import importlib.util
import json
import os
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from copies import copy_demo

from ledger import Trust
from ledger.checkpoint import Checkpoint, read_unverified_checkpoint, sign_checkpoint
from ledger.cosignature import cosigner_key, open_cosignatures
from ledger.errors import InputError, StorageError, VerificationError
from ledger.evidence import SplitView, SplitViewClaim, format_evidence, verify_evidence
from ledger.hashing import Digest
from ledger.keys import PrivateKey
from ledger.rollback import Rollback
from ledger.witness import KnownLogs, WitnessServer, WitnessState, origin_hash
from ledger.witness_policy import WitnessPolicy
from ledger.witnessed import check_witnesses
from stonetrail_cli.main import main

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_witness.py"
_spec = importlib.util.spec_from_file_location("bench_witness", BENCH)
assert _spec is not None and _spec.loader is not None
bench = importlib.util.module_from_spec(_spec)
sys.modules["bench_witness"] = bench
_spec.loader.exec_module(bench)
SyntheticLog = bench.SyntheticLog

NAME = "witness.test/w1"
WKEY = PrivateKey.from_seed(hashlib.sha256(b"test witness w1").digest())
COSIGNER = cosigner_key(NAME, WKEY.public_key)


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


class Witness:
    """A witness server on 127.0.0.1 with its state in ``directory``, for the logs ``logs``."""

    def __init__(self, directory: Path, logs: list[SyntheticLog], name: str = NAME, key: PrivateKey = WKEY) -> None:
        self.directory, self.logs, self.name, self.key = directory, logs, name, key
        self.server: WitnessServer | None = None

    def start(self) -> Witness:
        known = KnownLogs.parse("".join(log.log_line() for log in self.logs))
        state = WitnessState(self.directory, name=self.name, key=self.key, logs=known)
        self.server = WitnessServer(state).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    def post(self, body: bytes, path: str = "/add-checkpoint", method: str = "POST") -> tuple[int, str, bytes]:
        assert self.server is not None
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        try:
            conn.request(method, path, body=body)
            response = conn.getresponse()
            return response.status, response.headers.get("Content-Type", ""), response.read()
        finally:
            conn.close()

    def add(self, log: SyntheticLog, old: int, new: int) -> tuple[int, str, bytes]:
        return self.post(log.request(old, new))


@pytest.fixture
def log() -> SyntheticLog:
    return SyntheticLog("log.test/a", 40)


@pytest.fixture
def witness(tmp_path: Path, log: SyntheticLog) -> Iterator[Witness]:
    w = Witness(tmp_path / "state", [log]).start()
    yield w
    w.stop()


def _trust(log: SyntheticLog) -> Trust:
    authority = PrivateKey.from_seed(b"\x01" * 32)
    from ledger.keys import note_verifier_key
    return Trust(operators=(note_verifier_key(log.origin, log.key.public_key),),
                 authorities=(note_verifier_key("authority", authority.public_key),))


# --- the decision table --------------------------------------------------------------------------------------

def test_200_cosigns_and_a_later_checkpoint_needs_a_proof_from_the_size_held(witness: Witness,
                                                                             log: SyntheticLog) -> None:
    status, _, body = witness.add(log, 0, 10)
    assert status == 200 and body.startswith("\u2014 witness.test/w1 ".encode())
    (cosig,) = open_cosignatures(log.note(10) + body.decode(), [COSIGNER])
    assert cosig.timestamp > 0
    status, ctype, body = witness.add(log, 0, 20)  # the witness holds 10
    assert (status, ctype, body) == (409, "text/x.tlog.size", b"10\n")
    assert witness.add(log, 10, 20)[0] == 200
    assert witness.add(log, 20, 20)[0] == 200  # the same checkpoint again: cosigned again


def test_400_for_a_malformed_body_and_an_old_size_above_the_checkpoint(witness: Witness, log: SyntheticLog) -> None:
    note = log.note(5).encode()
    for body in (b"", b"old 1\n", b"old 01\n\n" + note, b"old x\n\n" + note, b"new 0\n\n" + note,
                 b"old 0\nnot base64\n\n" + note, b"old 0\n" + b"AAAA\n" * 1 + b"\n" + note, b"\xff\n\n" + note,
                 b"old 0\n\nnot a note\n"):
        assert witness.post(body)[0] == 400, body[:40]
    assert witness.post(b"old 6\n\n" + note)[0] == 400
    too_long = b"old 1\n" + (Digest(b"\0" * 32).b64() + "\n").encode() * 64 + b"\n" + note
    assert witness.post(too_long)[0] == 400


def test_404_unknown_origin_and_403_untrusted_or_bad_signature(witness: Witness, log: SyntheticLog) -> None:
    other = SyntheticLog("log.test/unknown", 5)
    assert witness.add(other, 0, 5)[0] == 404
    impostor = SyntheticLog(log.origin, 5, key=PrivateKey.from_seed(b"\x07" * 32))
    assert witness.add(impostor, 0, 5)[0] == 403
    note = log.note(5)
    sig_at = note.rindex(" ") + 1
    bad = note[:sig_at] + ("A" if note[sig_at] != "A" else "B") + note[sig_at + 1:]
    assert witness.post(f"old 0\n\n{bad}".encode())[0] == 403
    assert witness.add(log, 0, 5)[0] == 200  # neither changed the state


def test_422_rows(witness: Witness, log: SyntheticLog) -> None:
    cp0 = sign_checkpoint(Checkpoint(origin=log.origin, tree_size=0, root_hash=Digest(b"\1" * 32)), log.origin,
                          log.key)
    assert witness.post(f"old 0\n\n{cp0}".encode())[0] == 422  # size 0, not the empty root
    proof_line = (Digest(b"\0" * 32).b64() + "\n").encode()
    assert witness.post(b"old 0\n" + proof_line + b"\n" + log.note(5).encode())[0] == 422  # a proof from 0
    assert witness.add(log, 0, 8)[0] == 200
    body = log.request(8, 16)
    broken = body.replace(body.split(b"\n")[1], Digest(b"\2" * 32).b64().encode(), 1)
    status, _, why = witness.post(broken)
    assert status == 422 and b"consistency proof" in why
    assert witness.server is not None and not witness.server.state.evidence_files()


def test_a_split_view_is_refused_and_kept_as_evidence_that_verifies(witness: Witness, log: SyntheticLog,
                                                                    tmp_path: Path) -> None:
    assert witness.add(log, 0, 8)[0] == 200
    fork = SyntheticLog(log.origin, 8, key=log.key)
    fork.tree = SyntheticLog("log.test/fork-leaves", 8).tree  # another tree, signed by the same key
    status, _, _ = witness.add(fork, 8, 8)
    assert status == 422
    assert witness.server is not None
    (evidence,) = witness.server.state.evidence_files()
    assert evidence.name.startswith("split_view-")
    proven = verify_evidence(evidence.read_bytes(), _trust(log))
    assert isinstance(proven, SplitView) and proven.a.tree_size == proven.b.tree_size == 8
    (tmp_path / "trust.keys").write_text(_trust(log).format(), encoding="utf-8")
    result = run("evidence", "verify", evidence, "--trust", tmp_path / "trust.keys", "--json")
    assert result.exit_code == 0 and json.loads(result.stdout)["kind"] == "split_view", result.output
    assert witness.add(log, 8, 9)[0] == 200  # the state is the first tree's still


def test_a_rollback_is_refused_409_and_kept_as_evidence_that_verifies(witness: Witness, log: SyntheticLog,
                                                                      tmp_path: Path) -> None:
    assert witness.add(log, 0, 12)[0] == 200
    status, ctype, body = witness.add(log, 0, 7)
    assert (status, ctype, body) == (409, "text/x.tlog.size", b"12\n")
    assert witness.server is not None
    (evidence,) = witness.server.state.evidence_files()
    proven = verify_evidence(evidence.read_bytes(), _trust(log))
    assert isinstance(proven, Rollback)
    assert (proven.larger.tree_size, proven.smaller.tree_size, proven.witness) == (12, 7, COSIGNER)
    (tmp_path / "trust.keys").write_text(_trust(log).format(), encoding="utf-8")
    result = run("evidence", "verify", evidence, "--trust", tmp_path / "trust.keys")
    assert result.exit_code == 1 and "rollback witnessed, no misbehaviour proven" in result.output  # anyone can
    assert "12 records" in result.output  # present an old checkpoint: a growing log signed both
    witness.server.state.clock = lambda: time.time() + 3600  # presented again an hour later
    witness.add(log, 0, 7)
    assert len(witness.server.state.evidence_files()) == 1  # one file per pair of checkpoints


def test_state_survives_a_restart_and_is_served_for_monitors(witness: Witness, log: SyntheticLog) -> None:
    assert witness.add(log, 0, 15)[0] == 200
    witness.stop()
    witness.start()
    assert witness.add(log, 0, 20)[1:] == ("text/x.tlog.size", b"15\n")
    status, _, note = witness.post(b"", f"/{origin_hash(log.origin)}/checkpoint", "GET")
    assert status == 200 and read_unverified_checkpoint(note).tree_size == 15
    assert open_cosignatures(note, [COSIGNER])
    assert witness.post(b"", f"/{'0' * 64}/checkpoint", "GET")[0] == 404
    assert witness.post(b"", "/add-checkpoint", "GET")[0] == 405
    assert witness.post(b"", "/other", "POST")[0] == 404


def test_a_state_directory_serves_one_witness_key(witness: Witness, log: SyntheticLog) -> None:
    from ledger.errors import StorageError
    with pytest.raises(StorageError) as caught:
        WitnessState(witness.directory, name=NAME, key=PrivateKey.from_seed(b"\x09" * 32),
                     logs=KnownLogs.parse(log.log_line()))
    assert caught.value.code == "witness.state_key"


def test_a_body_over_the_cap_is_413(witness: Witness) -> None:
    assert witness.post(b"x" * (200 * 1024))[0] == 413


# --- gathering, through 'stonetrail checkpoint --witness-policy' ---------------------------------------------

@pytest.fixture(scope="module")
def three(demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[Witness], Path]]:
    """Three witnesses of the demo's ledger, and a 2-of-3 policy file naming them."""
    d = tmp_path_factory.mktemp("three")
    trust = Trust.parse((demo / "trust.keys").read_text(encoding="utf-8"))
    logs = f"log {trust.operators[0].text()}\n"
    witnesses = []
    for i in range(3):
        key = PrivateKey.from_seed(hashlib.sha256(f"w{i}".encode()).digest())
        w = Witness(d / f"w{i}", [], name=f"witness.test/w{i}", key=key)
        w.logs_text = logs  # type: ignore[attr-defined]
        known = KnownLogs.parse(logs)
        w.server = WitnessServer(WitnessState(w.directory, name=w.name, key=key, logs=known)).start()
        witnesses.append(w)
    policy = "".join(f"witness w{i} {cosigner_key(w.name, w.key.public_key).text()} {w.url}\n"
                     for i, w in enumerate(witnesses)) + "group two 2 w0 w1 w2\nquorum two\n"
    (d / "policy.txt").write_text(policy, encoding="utf-8")
    yield witnesses, d / "policy.txt"
    for w in witnesses:
        w.stop()


def _copy(demo: Path, to: Path) -> Path:
    return copy_demo(demo, to, "*")


def test_a_checkpoint_gets_cosigned_by_the_quorum(demo: Path, three: tuple[list[Witness], Path],
                                                   tmp_path: Path) -> None:
    _, policy = three
    d = _copy(demo, tmp_path / "d")
    result = run("checkpoint", d / "demo.ledger", "--key", d / "keys" / "operator.pem", "--trust", d / "trust.keys",
                 "--witness-policy", policy, "--json")
    assert result.exit_code == 0, result.output
    answers = json.loads(result.stdout)["witnesses"]
    assert [a["outcome"] for a in answers] == ["cosigned"] * 3
    note = (d / "checkpoint.txt").read_text(encoding="utf-8")
    trust = Trust.parse((d / "trust.keys").read_text(encoding="utf-8"))
    status = check_witnesses(note, trust.with_witnesses(WitnessPolicy.parse(policy.read_text(encoding="utf-8"))))
    assert len(status.times) >= 2 and status.met
    verified = run("verify", d / "demo.ledger", "--trust", d / "trust.keys", "--checkpoint", d / "checkpoint.txt")
    assert verified.exit_code == 0, verified.output
    first = (d / "checkpoint.txt").read_bytes()
    time.sleep(1.1)  # cosignatures of a later second: other bytes for the same tree
    again = run("checkpoint", d / "demo.ledger", "--key", d / "keys" / "operator.pem", "--trust", d / "trust.keys",
                "--witness-policy", policy)
    assert again.exit_code == 0, again.output  # the same tree witnessed again replaces the published one
    kept = {k.read_bytes() for k in d.glob(f"checkpoint-{status_size(first)}-*.txt")}
    assert (d / "checkpoint.txt").read_bytes() != first and first in kept  # the earlier cosignatures are kept


def status_size(note: bytes) -> int:
    return int(note.decode().split("\n")[1])


def test_one_witness_down_still_meets_the_quorum_two_down_publishes_nothing(
        demo: Path, three: tuple[list[Witness], Path], tmp_path: Path) -> None:
    witnesses, policy = three
    d = _copy(demo, tmp_path / "d")
    port = witnesses[2].server.port if witnesses[2].server else 0
    witnesses[2].stop()
    result = run("checkpoint", d / "demo.ledger", "--key", d / "keys" / "operator.pem", "--trust", d / "trust.keys",
                 "--witness-policy", policy, "--witness-timeout", "3")
    assert result.exit_code == 0, result.output
    assert "w2" in result.output and "unreachable" in result.output
    assert len(open_cosignatures((d / "checkpoint.txt").read_text(encoding="utf-8"),
                                 [cosigner_key(w.name, w.key.public_key) for w in witnesses])) == 2
    e = _copy(demo, tmp_path / "e")
    before = (e / "checkpoint.txt").read_bytes()
    witnesses[1].stop()
    result = run("checkpoint", e / "demo.ledger", "--key", e / "keys" / "operator.pem", "--trust", e / "trust.keys",
                 "--witness-policy", policy, "--witness-timeout", "3")
    assert result.exit_code == 1 and "[witness.quorum]" in result.output, result.output
    assert (e / "checkpoint.txt").read_bytes() == before and not list(e.glob("checkpoint-*.txt"))
    for i in (1, 2):  # back up for the other tests of the module, on the same ports
        w = witnesses[i]
        state = WitnessState(w.directory, name=w.name, key=w.key, logs=KnownLogs.parse(w.logs_text))  # type: ignore[attr-defined]
        w.server = WitnessServer(state, port=port if i == 2 else 0).start()
    del port


# --- soak ----------------------------------------------------------------------------------------------------

def test_soak_racing_clients_lose_no_update(tmp_path: Path) -> None:
    seconds = float(os.environ.get("STONETRAIL_WITNESS_SOAK_SECONDS", "3"))  # bench/bench_witness.py: 30
    figures = bench.soak(tmp_path, seconds=seconds, clients=8, logs=3, size=20_000)
    assert figures["cosignatures"] > 0 and figures["requests"] > figures["cosignatures"]


# --- found by an adversarial review ------------------------------------------------------------------------------

def test_one_tree_with_other_stonetrail_lines_is_refused_and_kept_as_evidence(witness: Witness, log: SyntheticLog,
                                                                            tmp_path: Path) -> None:
    """A log asked the quorum to cosign two heads lines for one tree ("stone live" and "stone stolen"): both got
    200. The StoneTrail lines of one tree are one, so the second is a split view of the commitments. A line the
    cosigned checkpoint lacks (signed before it was defined) is added, not contradicted; left out again, the
    lines cosigned are still the ones the next checkpoint is compared with."""
    assert witness.add(log, 0, 8)[0] == 200
    root, mine, other = log.tree.root_at(8), Digest(bytes([2]) * 32).b64(), Digest(bytes([3]) * 32).b64()

    def signed(*lines: str) -> str:
        return sign_checkpoint(Checkpoint(origin=log.origin, tree_size=8, root_hash=root, extensions=lines),
                               log.origin, log.key)
    assert witness.post(f"old 8\n\n{signed(f'stonetrail-heads 1 {mine}')}".encode())[0] == 200  # a line added
    assert witness.post(f"old 8\n\n{log.note(8)}".encode())[0] == 200  # and left out: the same tree
    status, _, why = witness.post(f"old 8\n\n{signed(f'stonetrail-heads 1 {other}')}".encode())
    assert status == 422 and b"stonetrail lines" in why
    assert witness.server is not None
    (evidence,) = witness.server.state.evidence_files()
    proven = verify_evidence(evidence.read_bytes(), _trust(log))
    assert isinstance(proven, SplitView) and "two different stonetrail lines" in " ".join(proven.describe())
    both = signed(f"stonetrail-heads 1 {mine}", f"stonetrail-registry 0 {mine}")
    assert witness.post(f"old 8\n\n{both}".encode())[0] == 200  # heads as cosigned, registry added
    status, _, why = witness.post(f"old 8\n\n{signed(f'stonetrail-identities 0 {mine}')}".encode())
    assert status == 422 and b"add lines to those cosigned, or leave some out, not both" in why


def test_a_larger_tree_with_fewer_lines_advances_and_size_0_has_one_set_of_lines(witness: Witness,
                                                                                log: SyntheticLog) -> None:
    """Keeping the cosigned note with the most lines is for one tree only: a larger tree always becomes the state.
    And the empty tree is one tree too: two sets of lines for it are not both cosigned."""
    def signed(size: int, *lines: str) -> str:
        return sign_checkpoint(Checkpoint(origin=log.origin, tree_size=size, root_hash=log.tree.root_at(size),
                                          extensions=lines), log.origin, log.key)
    line = f"stonetrail-heads 0 {Digest(bytes(32)).b64()}"
    assert witness.post(f"old 0\n\n{signed(0, line)}".encode())[0] == 200
    status, _, why = witness.post(f"old 0\n\n{signed(0, line.replace('heads 0', 'heads 1'))}".encode())
    assert status == 422 and b"stonetrail lines" in why
    assert witness.post(f"old 0\n\n{signed(5)}".encode())[0] == 200  # a larger tree, no line: the state now
    assert witness.add(log, 5, 9)[0] == 200 and witness.add(log, 0, 3)[0] == 409


def test_a_checkpoint_without_a_line_the_other_carries_is_no_split_view(log: SyntheticLog) -> None:
    """An honest log that signed a tree before its heads line was defined, and signs it again with it: evidence
    made of the two proves nothing (it would accuse an honest operator)."""
    cp = read_unverified_checkpoint(log.note(8))
    with_line = sign_checkpoint(Checkpoint(origin=log.origin, tree_size=8, root_hash=cp.root_hash,
                                           extensions=(f"stonetrail-heads 1 {Digest(bytes(32)).b64()}",)),
                                log.origin, log.key)
    with pytest.raises(VerificationError) as refused:
        verify_evidence(format_evidence(SplitViewClaim(note_a=log.note(8), note_b=with_line)), _trust(log))
    assert refused.value.code == "evidence.consistent"


def test_a_rollback_whose_old_size_is_above_it_is_kept_as_evidence_too(witness: Witness, log: SyntheticLog) -> None:
    assert witness.add(log, 0, 12)[0] == 200
    status, _, _ = witness.post(f"old 12\n\n{log.note(7)}".encode())
    assert status == 400
    assert witness.server is not None
    (evidence,) = witness.server.state.evidence_files()
    assert isinstance(verify_evidence(evidence.read_bytes(), _trust(log)), Rollback)


def test_a_client_sending_a_byte_at_a_time_is_cut_off_at_the_timeout(tmp_path: Path, log: SyntheticLog) -> None:
    known = KnownLogs.parse(log.log_line())
    server = WitnessServer(WitnessState(tmp_path / "s", name=NAME, key=WKEY, logs=known), timeout=1.0).start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as slow:
            slow.sendall(b"POST /add-checkpoint HTTP/1.1\r\nContent-Length: 100\r\n\r\n")
            start, closed = time.monotonic(), False
            while time.monotonic() - start < 5 and not closed:  # bounded: 5 s at most
                try:
                    slow.sendall(b"o")
                    time.sleep(0.2)  # each byte well within the per-read timeout
                except OSError:
                    closed = True
            closed = closed or slow.recv(1) == b""
            assert closed and time.monotonic() - start < 4
    finally:
        server.stop()


def test_a_request_line_cut_at_the_timeout_is_a_log_line_not_a_traceback(tmp_path: Path, log: SyntheticLog,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    known, lines = KnownLogs.parse(log.log_line()), []
    server = WitnessServer(WitnessState(tmp_path / "s", name=NAME, key=WKEY, logs=known), timeout=0.5,
                           log=lines.append).start()
    try:
        # cut off: the answer to a request line that never finished
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as slow, contextlib.suppress(OSError):
            for byte in b"POST /add-checkpoint HTTP/1.1\r\n":
                slow.sendall(bytes([byte]))
                time.sleep(0.1)
        time.sleep(0.3)
    finally:
        server.stop()
    assert "Traceback" not in capsys.readouterr().err
    with pytest.raises(InputError):
        WitnessServer(WitnessState(tmp_path / "t", name=NAME, key=WKEY, logs=known), prefix="noslash")


def test_a_witness_url_that_answers_no_http_is_unreachable_not_a_crash() -> None:
    """A bad status line or an endless header line is the witness's fault: named, within the timeout."""
    from ledger.witness.gather import _post
    for answer in (b"garbage\r\n\r\n", b"HTTP/1.1 200 OK\r\nX: " + b"a" * 70_000 + b"\r\n\r\n"):
        server = socket.socket()
        server.bind(("127.0.0.1", 0))
        server.listen(1)

        def reply(sock: socket.socket = server, data: bytes = answer) -> None:
            conn, _ = sock.accept()
            with conn:
                conn.recv(65536)
                conn.sendall(data)
        thread = threading.Thread(target=reply, daemon=True)
        thread.start()
        status, _, why = _post(f"http://127.0.0.1:{server.getsockname()[1]}", b"old 0\n\n", 5)
        thread.join(5)
        server.close()
        assert status == "unreachable" and b"not an HTTP answer" in why


def test_a_state_file_that_is_empty_or_not_a_witnesss_is_refused_not_made_anew(tmp_path: Path,
                                                                              log: SyntheticLog) -> None:
    """An emptied or wrongly restored witness.db would forget every size cosigned: the witness could then cosign
    a split view. A new directory, or one the witness made, opens."""
    known = KnownLogs.parse(log.log_line())
    WitnessState(tmp_path / "new", name=NAME, key=WKEY, logs=known)
    WitnessState(tmp_path / "new", name=NAME, key=WKEY, logs=known)  # its own state, again
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "witness.db").write_bytes(b"")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    with contextlib.closing(sqlite3.connect(foreign / "witness.db")) as db:
        db.execute("CREATE TABLE t (x)")
        db.commit()
    for directory in (tmp_path / "empty", foreign):
        with pytest.raises(StorageError) as refused:
            WitnessState(directory, name=NAME, key=WKEY, logs=known)
        assert refused.value.code == "witness.state" and "never made anew" in str(refused.value)
