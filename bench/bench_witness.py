"""Soak and throughput of ``stonetrail witness serve`` (ledger.witness): CLIENTS threads, for SECONDS, each
submitting growing checkpoints of several synthetic logs (two clients per log, racing), over HTTP on 127.0.0.1.

Checked afterwards, from the answers and the witness's stored state: every log's stored checkpoint is the largest
one cosigned; the cosigned checkpoints of a log chain (each accepted request's old size is the size cosigned just
before it, so none was checked against a state another request was replacing: no lost update), one root per size,
timestamps never going back. Prints requests/s (all answers) and cosignatures/s.

    python bench/bench_witness.py                 # 30 s, 8 clients, 4 logs
    python bench/bench_witness.py --seconds 3 --json
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import http.client
import json
import multiprocessing
import os
import random
import sqlite3
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.checkpoint import Checkpoint, read_unverified_checkpoint, sign_checkpoint
from ledger.cosignature import cosigner_key, open_cosignatures
from ledger.hashing import Digest
from ledger.keys import PrivateKey, note_verifier_key
from ledger.merkle import MerkleTree
from ledger.witness import AddCheckpoint, KnownLogs, WitnessServer, WitnessState, format_add_checkpoint


def _key(name: str) -> PrivateKey:
    return PrivateKey.from_seed(hashlib.sha256(f"bench witness {name}".encode()).digest())


class SyntheticLog:
    """A log of ``size`` leaves (leaf i = SHA-256 of "<origin> i"), its key, its signed checkpoints."""

    def __init__(self, origin: str, size: int, key: PrivateKey | None = None) -> None:
        self.origin, self.key = origin, key or _key(origin)
        self.tree = MerkleTree()
        self.tree.extend(Digest(hashlib.sha256(f"{origin} {i}".encode()).digest()) for i in range(size))
        self._notes: dict[int, str] = {}
        self._lock = threading.Lock()

    def note(self, size: int) -> str:
        with self._lock:
            if size not in self._notes:
                cp = Checkpoint(origin=self.origin, tree_size=size, root_hash=self.tree.root_at(size))
                self._notes[size] = sign_checkpoint(cp, self.origin, self.key)
            return self._notes[size]

    def request(self, old: int, new: int) -> bytes:
        proof = tuple(self.tree.consistency_proof(old, new)) if old else ()
        return format_add_checkpoint(AddCheckpoint(old_size=old, proof=proof, note=self.note(new)))

    def log_line(self) -> str:
        return f"log {note_verifier_key(self.origin, self.key.public_key).text()}\n"


@dataclass
class Tally:
    requests: int = 0
    cosigned: list[tuple[str, int, int, bytes, int]] = field(default_factory=list)  # origin, old, new, root, time
    errors: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _client(port: int, log: SyntheticLog, until: float, tally: Tally, seed: int, witness_key: object) -> None:
    rng, believed = random.Random(seed), 0
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        while time.monotonic() < until:
            new = min(log.tree.size, believed + rng.randint(0, 5))
            conn.request("POST", "/add-checkpoint", body=log.request(believed, new))
            response = conn.getresponse()
            body = response.read()
            with tally.lock:
                tally.requests += 1
            if response.status == 409:
                believed = int(body)
            elif response.status == 200:
                note = log.note(new) + body.decode()
                (cosig,) = open_cosignatures(note, [witness_key])  # type: ignore[list-item]
                root = read_unverified_checkpoint(log.note(new)).root_hash
                with tally.lock:
                    tally.cosigned.append((log.origin, believed, new, bytes(root), cosig.timestamp))
                believed = new
            else:
                with tally.lock:
                    tally.errors.append(f"{response.status} {body[:200]!r}")
                return
    finally:
        conn.close()


def _serve(directory: str, name: str, clients: int, ports: Any) -> None:
    """The witness in a process of its own (``--separate``): its port on ``ports``, then serve until killed."""
    state = WitnessState(Path(directory) / "state", name=name, key=_key("witness"),
                         logs=KnownLogs.parse((Path(directory) / "logs.txt").read_bytes()))
    server = WitnessServer(state, max_connections=clients + 8)
    ports.put(server.port)
    server.serve_forever()


def soak(directory: Path, *, seconds: float, clients: int = 8, logs: int = 4, size: int = 100_000,
         separate: bool = False) -> dict[str, object]:
    """Run the soak in ``directory`` (the witness's state goes there); return the figures and check the
    invariants (AssertionError naming the first broken one). ``separate``: the witness runs in a process of its
    own (its own core and interpreter lock), the clients in this one."""
    synthetic = [SyntheticLog(f"bench.example/log{i}", size) for i in range(logs)]
    (directory / "logs.txt").write_text("".join(log.log_line() for log in synthetic), encoding="utf-8")
    key, name = _key("witness"), "bench.example/witness"
    known = KnownLogs.parse((directory / "logs.txt").read_bytes())
    tally = Tally()
    with contextlib.ExitStack() as stack:
        if separate:
            ports: Any = multiprocessing.Queue()
            child = multiprocessing.Process(target=_serve, args=(str(directory), name, clients, ports), daemon=True)
            child.start()
            stack.callback(child.join, 10)
            stack.callback(child.terminate)
            port = int(ports.get(timeout=30))
        else:
            server = stack.enter_context(WitnessServer(WitnessState(directory / "state", name=name, key=key,
                                                                    logs=known), max_connections=clients + 8).start())
            port = server.port
        until = time.monotonic() + seconds
        threads = [threading.Thread(target=_client, args=(port, synthetic[i % logs], until, tally, i,
                                                          cosigner_key(name, key.public_key)))
                   for i in range(clients)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(seconds + 60)
        elapsed = time.monotonic() - started
    cpu = os.times()
    stored = WitnessState(directory / "state", name=name, key=key, logs=known).all_latest()
    _check(tally, stored)
    return {"seconds": round(elapsed, 2), "clients": clients, "logs": logs, "requests": tally.requests,
            "cosignatures": len(tally.cosigned), "requests_per_s": round(tally.requests / elapsed, 1),
            "cosignatures_per_s": round(len(tally.cosigned) / elapsed, 1),
            "cpu_seconds": {"this_process": round(cpu.user + cpu.system, 1),
                            "witness_process": round(cpu.children_user + cpu.children_system, 1) if separate else None},
            "largest": {o: latest.checkpoint.tree_size for o, latest in sorted(stored.items())}}


def _check(tally: Tally, stored: dict[str, object]) -> None:
    assert not tally.errors, tally.errors[:3]
    by_origin: dict[str, list[tuple[str, int, int, bytes, int]]] = {}
    for entry in tally.cosigned:
        by_origin.setdefault(entry[0], []).append(entry)
    for origin, entries in by_origin.items():
        roots: dict[int, bytes] = {}
        for _, _, new, root, _ in entries:
            assert roots.setdefault(new, root) == root, f"{origin}: two roots for size {new}"
        chain = sorted(entries, key=lambda e: (e[2], e[1], e[4]))  # by new size; re-cosigns of one size in order
        held, last_time = 0, 0
        for _, old, new, _, when in chain:
            assert old == held, f"{origin}: a cosignature from old size {old} while the witness held {held}"
            assert when >= last_time, f"{origin}: a later cosignature dated before an earlier one"
            held, last_time = new, when
        latest = stored[origin]
        assert latest.checkpoint.tree_size == held, f"{origin}: stored {latest.checkpoint.tree_size}, cosigned {held}"  # type: ignore[attr-defined]


def bounds(directory: Path, seconds: float = 3.0) -> dict[str, float]:
    """What one request cannot beat, measured in the same run: durable SQLite commits per second (WAL,
    synchronous=FULL, one row replaced per transaction, one thread: the witness's one fsync per cosignature), and
    Ed25519 verify-and-sign pairs per second on one core (a log signature checked, a cosignature made)."""
    db = sqlite3.connect(directory / "bound.db", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)")
    commits, until = 0, time.monotonic() + seconds
    while time.monotonic() < until:
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT OR REPLACE INTO t VALUES (1, ?)", (commits.to_bytes(8, "big") * 64,))
        db.execute("COMMIT")
        commits += 1
    db.close()
    log, witness = _key("bound log"), _key("bound witness")
    message = b"bound.example/log\n100\n" + bytes(44) + b"\n"
    signature = log.sign(message)
    pairs, until = 0, time.monotonic() + seconds
    while time.monotonic() < until:
        log.public_key.verify(signature, message)
        witness.sign(message)
        pairs += 1
    return {"durable_commits_per_s": round(commits / seconds, 1), "verify_sign_per_s": round(pairs / seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--logs", type=int, default=4)
    parser.add_argument("--separate", action="store_true",
                        help="run the witness in a process of its own (the clients keep this one)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        figures = soak(Path(work), seconds=args.seconds, clients=args.clients, logs=args.logs,
                       separate=args.separate)
        figures["bounds"] = bounds(Path(work))
    if args.json:
        print(json.dumps(figures, indent=2))
    else:
        where = "witness in its own process" if args.separate else "witness and clients in one process"
        print(f"witness soak ({where}): {figures['clients']} clients, {figures['logs']} logs, {figures['seconds']} s: "
              f"{figures['requests']} requests ({figures['requests_per_s']}/s), {figures['cosignatures']} "
              f"cosignatures ({figures['cosignatures_per_s']}/s); invariants hold; CPU seconds "
              f"{figures['cpu_seconds']}")
        bound = figures["bounds"]
        assert isinstance(bound, dict)
        print(f"bounds, same run: {bound['durable_commits_per_s']} durable SQLite commits/s (one thread, the "
              f"witness's one fsync per cosignature), {bound['verify_sign_per_s']} Ed25519 verify+sign/s (one core)")
    sys.exit(0)


if __name__ == "__main__":
    main()
