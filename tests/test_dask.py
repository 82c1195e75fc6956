"""The audit on a Dask cluster (issue 11 item 5): a local cluster of two worker processes, started here, checks the
chunks — through the library (``executor=client.get_executor()``) and through ``stonetrail verify --cluster`` —
and the report is the one-process report, on the demo with its checkpoint, on every rule-breaking vector ledger
and on a forged signature; and ``--cluster`` fails in one line with its code when it cannot work.

dask is in the ``dev`` extra CI installs: its absence fails this module (no skip)."""

from __future__ import annotations

import base64
import fcntl
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from distributed import Client, LocalCluster, get_task_stream

from ledger import Trust, build_demo, check_ledger
from ledger.storage import FileStore, scan
from stonetrail_cli import cluster as cli_cluster
from stonetrail_cli.main import main

VECTORS = Path(__file__).resolve().parent / "vectors"
TRUST = Trust.parse((VECTORS / "trust.keys").read_text(encoding="utf-8"))
RULES = json.loads((VECTORS / "negative-ledger.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def client() -> Iterator[Client]:
    """A client of a local cluster of 2 single-threaded worker processes; both shut down after the module."""
    with LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
                      host="127.0.0.1") as cluster, Client(cluster, set_as_default=False) as c:
        yield c
        c.close(timeout=30)
        cluster.close(timeout=30)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dask") / "d"
    build_demo(out)
    return out


@pytest.fixture(scope="module")
def bad_ledgers(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """ledger.bin followed by each rule-breaking vector's records, and by a record with a forged signature."""
    out = tmp_path_factory.mktemp("bad")
    last = bytearray(scan(VECTORS / "ledger.bin").frames[-1].payload)
    last[-40] ^= 0x01  # inside its signature
    appended = [[base64.b64decode(b) for b in v["records_b64"]] for v in RULES] + [[bytes(last)]]
    paths = []
    for n, payloads in enumerate(appended):
        path = out / f"bad-{n}.bin"
        shutil.copy(VECTORS / "ledger.bin", path)
        with FileStore.open(path, writable=True) as store:
            for payload in payloads:
                store.append(payload)
        paths.append(path)
    return paths


class _Counting(Executor):
    """An executor that hands every call to ``inner`` and counts them: the chunks did go to the cluster."""

    def __init__(self, inner: Executor) -> None:
        self.inner, self.calls = inner, 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.calls += 1
        return self.inner.submit(fn, *args, **kwargs)


def _report(path: Path, trust: Trust, **how: Any) -> tuple[Any, ...]:
    r = check_ledger(path, trust, **how)
    return (r.record_count, r.root_hash, r.findings, r.checkpoint, r.items, r.stones, r.parties, r.verdict)


def test_the_library_on_the_cluster_reports_as_one_process(client: Client, demo: Path,
                                                           bad_ledgers: list[Path]) -> None:
    trust = Trust.parse((demo / "trust.keys").read_text())
    note = (demo / "checkpoint.txt").read_text()
    cases = [(demo / "demo.ledger", trust, {"checkpoint": note}, 100)] + [(p, TRUST, {}, 3) for p in bad_ledgers]
    for path, pinned, how, chunk in cases:
        executor = _Counting(client.get_executor())
        want = _report(path, pinned, **how)
        assert _report(path, pinned, executor=executor, chunk_records=chunk, **how) == want, path
        assert executor.calls >= 2, path
    assert _report(demo / "demo.ledger", trust, checkpoint=note)[-1] == "valid"
    codes = [{f.code for f in check_ledger(p, TRUST).findings} for p in bad_ledgers]
    assert [v["want_code"] in c for v, c in zip(RULES, codes, strict=False)] == [True] * len(RULES)
    assert any(code.startswith("sig.") for code in codes[-1])


def _verify(*args: str | Path) -> tuple[int, dict[str, Any]]:
    result = CliRunner().invoke(main, ["verify", *map(str, args), "--json"])
    out = json.loads(result.stdout)
    out.pop("seconds", None)
    return result.exit_code, out


def test_verify_cluster_prints_the_one_process_report(client: Client, demo: Path, bad_ledgers: list[Path]) -> None:
    address = client.scheduler.address
    demo_args = (demo / "demo.ledger", "--trust", demo / "trust.keys", "--checkpoint", demo / "checkpoint.txt")
    cases = [(demo_args, "100")] + [((p, "--trust", VECTORS / "trust.keys"), "3") for p in bad_ledgers]
    for args, chunk in cases:
        want = _verify(*args, "--jobs", "1")
        with get_task_stream(client) as stream:
            assert _verify(*args, "--cluster", address, "--chunk-records", chunk) == want, args
        assert sum(t["key"].startswith("check_chunk") for t in stream.data) >= 2, args
    assert _verify(*demo_args, "--jobs", "1")[1]["verdict"] == "valid"
    assert all(_verify(p, "--trust", VECTORS / "trust.keys", "--jobs", "1")[0] == 1 for p in bad_ledgers)


def _error(*args: str | Path) -> tuple[int, str]:
    """The exit code and the one line on stderr of a verify that fails."""
    result = CliRunner().invoke(main, ["verify", *map(str, args)])
    assert result.stdout == "" and len(result.stderr.splitlines()) == 1, result.stderr
    return result.exit_code, result.stderr


def test_verify_cluster_says_why_it_cannot_work(client: Client, demo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = (demo / "demo.ledger", "--trust", demo / "trust.keys")
    fd = os.open(demo / "demo.ledger", os.O_RDONLY)
    high = fcntl.fcntl(fd, fcntl.F_DUPFD, 900)  # a path only this process has: /proc/self/fd/N is another file
    try:
        code, line = _error(f"/proc/self/fd/{high}", "--trust", demo / "trust.keys", "--cluster",
                            client.scheduler.address)
    finally:
        os.close(high)
        os.close(fd)
    assert code == 3 and "[cluster.unreadable]" in line and "path every worker shares" in line
    monkeypatch.setattr(cli_cluster, "CONNECT_SECONDS", 1)
    code, line = _error(*ledger, "--cluster", f"tcp://127.0.0.1:{_closed_port()}")
    assert code == 3 and "[cluster.unreachable]" in line
    code, line = _error(*ledger, "--cluster", "tcp://127.0.0.1:notaport")
    assert code == 2 and "[cluster.address]" in line
    monkeypatch.setitem(sys.modules, "distributed", None)  # as if the extra were not installed
    code, line = _error(*ledger, "--cluster", client.scheduler.address)
    assert code == 2 and "[cluster.unavailable]" in line and "pip install 'stonetrail[dask]'" in line


def _closed_port() -> int:
    """A local TCP port nothing listens on."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
