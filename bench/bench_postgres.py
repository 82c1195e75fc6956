"""Benchmark of issue 12: many writer processes appending to one PostgreSQL ledger.

    python bench/bench_postgres.py                          # 1, 2, 4 and 8 writers x 2,000 records each
    python bench/bench_postgres.py --writers 8 --records 500
    python bench/bench_postgres.py --url postgresql://USER@HOST:PORT/DB   # a server of yours (a role that may
                                                                          # create databases); else a private one

Each writer process builds its records first (stones of its own, each mined then sold on: 1 and 2 signatures),
then, once every writer is ready, appends them one call at a time (``Ledger.append``: one transaction each) and
times each call from the call to its return (the acknowledgement). Sustained records/s over the whole run and
p50/p99 acknowledgement latency are printed beside two bounds measured in the same run on the same records: the
bare Ed25519 checks of their signatures on every core (``cryptography``, the engine the writer uses), and one
writer appending the same records to a ledger file. After each run every record is counted and the ledger is
copied to a file and audited (0 findings, or the row says so).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

from ledger import Ledger, Mined, Output, Record, check_ledger, copy_ledger  # noqa: E402
from ledger.events import Transferred  # noqa: E402
from world import ORIGIN, TRUST, World  # noqa: E402

SERVER = ROOT / ".ci" / "postgres"


def _enrolled() -> tuple[World, list[Record]]:
    world, records = World(), []
    for party, roles in (("producer-a", ("producer",)), ("trader-b", ("trader",))):
        records.append(world.enrol(party, roles))
        world.add(records[-1])
    return world, records


def _records(writer: int, count: int) -> list[Record]:
    """``count`` records of writer ``writer``'s own stones: each mined, then sold to trader-b."""
    world, out = World(), []
    for n in range(count // 2):
        item = f"W{writer}-{n:06d}"
        mined = world.make(Mined(mine="Jwaneng", country="BW"), "producer-a", place="BW",
                           outputs=[Output(id=item, type="stone", mass_mct=1_000)])
        out += [mined, world.make(Transferred(to="trader-b", mode="title"), "producer-a", inputs=[item], place="BW",
                                  prev={item: mined.record_hash})]
    return out


def _writer(location: str, writer: int, count: int, batch: int, ready: Any, go: Any, out: Any) -> None:
    records = _records(writer, count)
    latencies = []
    with Ledger.open(location, TRUST.authority_keys) as ledger:
        ready.release()
        go.wait()
        for at in range(0, len(records), batch):
            start = time.perf_counter()
            ledger.append_batch(records[at:at + batch])
            latencies += [time.perf_counter() - start] * len(records[at:at + batch])
    out.put((writer, latencies))


def _verify_chunk(records: list[bytes]) -> int:
    checked = 0
    for raw in records:
        record = Record.from_bytes(raw)
        for sig in record.signatures:
            record.verify_signature(sig)
            checked += 1
    return checked


def sig_bound(records: list[Record]) -> float:
    """Seconds to check every signature of ``records`` on every core (process pool)."""
    cores = os.cpu_count() or 1
    raws = [r.raw for r in records]
    chunks = [raws[i::cores * 4] for i in range(cores * 4)]
    with ProcessPoolExecutor(cores) as pool:
        list(pool.map(_verify_chunk, chunks[:1]))  # warm the workers
        start = time.perf_counter()
        assert sum(pool.map(_verify_chunk, chunks)) >= len(records)
        return time.perf_counter() - start


def file_bound(records: list[Record], directory: Path) -> float:
    """Seconds for one writer to append ``records`` one at a time to a new ledger file (after the enrolments)."""
    _, enrolments = _enrolled()
    path = directory / "bound.ledger"
    with Ledger.create(path, ORIGIN, TRUST.authority_keys) as ledger:
        ledger.append_batch(enrolments)
        start = time.perf_counter()
        for record in records:
            ledger.append(record)
        return time.perf_counter() - start


def fresh_database(server: str, name: str) -> str:
    import psycopg
    from psycopg import sql
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    from urllib.parse import urlsplit
    return urlsplit(server)._replace(path=f"/{name}").geturl()


def run(server: str, writers: int, per_writer: int, batch: int, directory: Path) -> dict[str, Any]:
    url = fresh_database(server, f"bench_{writers}_{batch}")
    _, enrolments = _enrolled()
    with Ledger.create(url, ORIGIN, TRUST.authority_keys) as ledger:
        ledger.append_batch(enrolments)
    context = multiprocessing.get_context("spawn")
    ready, go, out = context.Semaphore(0), context.Event(), context.Queue()
    procs = [context.Process(target=_writer, args=(url, w, per_writer, batch, ready, go, out)) for w in range(writers)]
    for p in procs:
        p.start()
    for _ in procs:
        ready.acquire()
    start = time.perf_counter()
    go.set()
    results = [out.get() for _ in procs]
    wall = time.perf_counter() - start
    for p in procs:
        p.join()
    latencies = sorted(s for _, lat in results for s in lat)
    total = len(latencies)
    with Ledger.open(url, TRUST.authority_keys) as ledger:
        stored = ledger.size - len(enrolments)
    copy = directory / f"copy-{writers}-{batch}.ledger"
    copy_ledger(url, copy, TRUST.authority_keys)
    report = check_ledger(copy, TRUST)
    return {"writers": writers, "records": total, "stored": stored, "wall_s": wall, "rate": total / wall,
            "p50_ms": statistics.median(latencies) * 1e3, "p99_ms": latencies[int(0.99 * (total - 1))] * 1e3,
            "audit": "0 findings" if report.ok and not report.findings else f"{len(report.findings)} findings"}


def _median_s(fn: Any, times: int = 7) -> float:
    fn()  # warm
    runs = []
    for _ in range(times):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def reads_at_scale(server: str, records: int, directory: Path) -> None:
    """The bench ledger of ``records`` records (bench/ledgergen.py, cached) copied into a database: one-stone
    export through the library and ``stonetrail show`` as a process, beside the same on the ledger file with
    its index."""
    sys.path.insert(0, str(BENCH))
    import bench_bundle
    import ledgergen as gen

    from ledger import export_bundle
    from ledger.bundle import check_bundle

    source, meta = bench_bundle.ensure_ledger(Path(tempfile.gettempdir()) / "stonetrail-bench", records, 2)
    path = directory / "scale.ledger"
    shutil.copy(source, path)
    trust, item = gen.trust(), meta["target"]
    url = fresh_database(server, "bench_scale")
    start = time.perf_counter()
    copy_ledger(path, url, trust.authority_keys)
    copied = time.perf_counter() - start
    with Ledger.open(url, trust.authority_keys) as ledger:
        note = ledger.checkpoint(gen.key("operator"))
    with Ledger.open(path, trust.authority_keys) as ledger:  # the file's index, and the same checkpoint
        assert ledger.checkpoint(gen.key("operator")) == note
    print(f"reads at {records:,} records (copied into the database in {copied:.0f} s; target {item}):")
    for label, location in (("PostgreSQL", url), ("ledger file + index", str(path))):
        bundle = export_bundle(location, item, note)
        seconds = _median_s(lambda loc=location: export_bundle(loc, item, note))
        show = _median_s(lambda loc=location: subprocess.run(
            [str(Path(sys.executable).parent / "stonetrail"), "show", loc, item], capture_output=True, check=True), 3)
        print(f"  {label:<20} export_bundle {seconds * 1e3:7.1f} ms (median of 7; verifies: "
              f"{check_bundle(bundle, trust).ok})   stonetrail show {show * 1e3:6.0f} ms (process)")
    print("acceptance (issue 12): one-stone export from PostgreSQL at 10^6 records <= 50 ms through the library")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", default="1,2,4,8", help="writer process counts, e.g. 1,2,4,8")
    parser.add_argument("--records", type=int, default=2000, help="records per writer (even)")
    parser.add_argument("--batch", default="1,50",
                        help="records per append, one run each: one transaction, whose latency each of its records "
                             "gets (default 1,50: one at a time, and as a trader's system sends a day's records)")
    parser.add_argument("--reads", type=int, default=0, metavar="N",
                        help="also copy the bench ledger of N records into a database and time export and show")
    parser.add_argument("--url", help="a PostgreSQL server's URL (a role that may create databases)")
    opts = parser.parse_args()
    counts = [int(n) for n in opts.writers.split(",")]
    batches = [int(n) for n in opts.batch.split(",")]
    directory = Path(tempfile.mkdtemp(prefix="stonetrail-bench-pg-"))
    server, private = opts.url, None
    try:
        if server is None:
            private = Path(tempfile.mkdtemp(prefix="stonetrail-pg-"))  # DIR itself, as tests/conftest.py does
            server = subprocess.run([str(SERVER), "start", str(private)], capture_output=True, text=True,
                                    check=True).stdout.strip()
        most = max(counts) * opts.records
        sample = [r for w in range(max(counts)) for r in _records(w, opts.records)][:most]
        sig_s = sig_bound(sample)
        file_s = file_bound(sample[:opts.records], directory)
        print(f"StoneTrail PostgreSQL benchmark: {opts.records:,} records per writer; Python "
              f"{sys.version.split()[0]}, {os.cpu_count()} CPUs")
        print(f"bound: Ed25519 checks of {len(sample):,} records on {os.cpu_count()} cores: "
              f"{len(sample) / sig_s:,.0f} records/s")
        print(f"bound: one writer appending {opts.records:,} records to a ledger file: "
              f"{opts.records / file_s:,.0f} records/s")
        line = "{:>7} {:>6} {:>9} {:>9} {:>12} {:>9} {:>9} {:>12}  {}"
        print(line.format("writers", "batch", "records", "stored", "records/s", "p50 ms", "p99 ms", "vs sig bound",
                          "audit of a copy"))
        for batch in batches:
            for n in counts:
                r = run(server, n, opts.records, batch, directory)
                print(line.format(n, batch, f"{r['records']:,}", f"{r['stored']:,}", f"{r['rate']:,.0f}",
                                  f"{r['p50_ms']:.1f}", f"{r['p99_ms']:.1f}", f"{r['rate'] * sig_s / len(sample):.2f}",
                                  r["audit"]), flush=True)
        print("acceptance (issue 12): 8 writers >= 1,000 records/s; every record stored; 0 findings")
        if opts.reads:
            reads_at_scale(server, opts.reads, directory)
        return 0
    finally:
        if private is not None:
            subprocess.run([str(SERVER), "stop", str(private)], check=False, capture_output=True)
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
