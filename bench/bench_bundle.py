"""Benchmark: proof-bundle size and export / verify time for a 40-record stone in a ledger of N records.

Usage (from the repository root)::

    python bench/bench_bundle.py                       # N = 1,000,000 (generation takes minutes; cached)
    python bench/bench_bundle.py --records 20000       # a quick run
    python bench/bench_bundle.py --self-check          # audit a small generated ledger, check determinism

The ledger comes from ``ledgergen`` (a valid, deterministic ledger; see its docstring) and is cached in
``--workdir`` keyed on N and a hash of the generator and the formats. Each measured phase runs in a fresh
process, so that its peak RSS is its own.

Per the project's rule (speed is measured here, never by timed assertions in tests), every time is also printed
as a ratio to a bound measured in the same run on the same machine, so the ratios compare across machines:

* checkpoint and export: against one full :func:`ledger.storage.scan` of the file (the cost of reading it once),
  timed just before and just after, in the same process;
* verification: against verifying the bundle's signatures alone (``Record.verify_signature``: the library's
  pre-checks, then Ed25519), timed in each round right after the verification;
* generation: against N x (one two-signature ``Record.create``), on one core (the generator uses ``--jobs``).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import hashlib
import json
import multiprocessing
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ledgergen as gen

from ledger import check_ledger, checkpoint_file
from ledger.bundle import check_bundle, read_bundle, verify_bundle
from ledger.events import REGISTRY_KINDS
from ledger.export import export_bundle
from ledger.index import discard_index
from ledger.record import Record
from ledger.storage import scan

DEFAULT_RECORDS = 1_000_000
DEFAULT_WORKDIR = Path(tempfile.gettempdir()) / "stonetrail-bench"


# --- phases (each runs in a fresh process; returns timings and its own peak RSS) --------------------------------

def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _median_time(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def phase_bounds(path: str, scans: int) -> dict[str, Any]:
    """The reference costs: a full scan of the file (median of ``scans``) and a two-signature Record.create."""
    t_scan = _median_time(lambda: scan(path), scans)
    result = scan(path)
    sample = [Record.from_bytes(f.payload) for f in result.frames[-2000:]]
    del result
    two = [r for r in sample if len(r.signatures) == 2][:300]
    signers = {p: gen.key(p) for p in {s.party for r in two for s in r.signatures}}
    start = time.perf_counter()
    for r in two:
        Record.create(r.body, [(s.party, signers[s.party]) for s in r.signatures])
    t_create = (time.perf_counter() - start) / len(two)
    return {"scan_s": t_scan, "scans": scans, "create_s": t_create, "rss_mib": _rss_mib()}


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def _scan_around(path: str, work: Callable[[], Any]) -> tuple[float, float, Any]:
    """(seconds of ``work``, mean seconds of a full scan just before and just after it, its value): the bound is
    measured next to the measurement, so that a change of machine load between phases cancels out."""
    def full_scan() -> None:
        scan(path)  # dropped at once: the phase's peak RSS is its work's, not the bound's

    before, _ = _timed(full_scan)
    elapsed, value = _timed(work)
    after, _ = _timed(full_scan)
    return elapsed, (before + after) / 2, value


def phase_checkpoint(path: str) -> dict[str, Any]:
    """checkpoint_file, between two full scans."""
    elapsed, scan_s, note = _scan_around(path, lambda: checkpoint_file(path, gen.key("operator")))
    return {"checkpoint_s": elapsed, "scan_s": scan_s, "note": note, "rss_mib": _rss_mib()}


def phase_export(path: str, note: str, out: str) -> dict[str, Any]:
    """export_bundle as a writer calls it (no pinned keys: the exporter vouches for nothing), between two scans."""
    elapsed, scan_s, data = _scan_around(path, lambda: export_bundle(path, gen.TARGET, note))
    Path(out).write_bytes(data)
    return {"export_s": elapsed, "scan_s": scan_s, "bundle_bytes": len(data), "rss_mib": _rss_mib()}


def phase_verify(bundle: str, repeat: int) -> dict[str, Any]:
    """check_bundle once (the verdict; cold caches), then ``repeat`` rounds of verify_bundle (the raising tier),
    each followed by the bound: verifying the bundle's signatures alone (same keys, same pre-checks)."""
    data, trust = Path(bundle).read_bytes(), gen.trust()
    first, report = _timed(lambda: check_bundle(data, trust))
    pairs = [(r, sg) for e in read_bundle(data).entries for r in [Record.from_bytes(e.leaf)] for sg in r.signatures]

    def signatures() -> None:
        for record, sig in pairs:
            record.verify_signature(sig)

    rounds = [(_timed(lambda: verify_bundle(data, trust))[0], _timed(signatures)[0]) for _ in range(repeat)]
    verify = [v for v, _ in rounds]
    return {"verify_s": statistics.median(verify), "verify_min_s": min(verify), "verify_max_s": max(verify),
            "sigs_s": statistics.median(b for _, b in rounds), "check_s": first, "ok": report.ok,
            "findings": [str(f) for f in report.findings[:5]], **bundle_counts(data), "rss_mib": _rss_mib()}


def bundle_counts(data: bytes) -> dict[str, int]:
    """Records (ancestry and registry), signatures, inclusion-proof hashes (all, distinct), item-head proofs
    (heads, their hashes) and identity proofs (leaves, their bytes and hashes) in a bundle."""
    bundle = read_bundle(data)
    entries = bundle.entries
    records = [Record.from_bytes(e.leaf) for e in entries]
    hashes = [h for e in entries for h in e.proof]
    return {"records": len(records), "registry": sum(r.body.kind in REGISTRY_KINDS for r in records),
            "signatures": sum(len(r.signatures) for r in records), "leaf_bytes": sum(len(e.leaf) for e in entries),
            "proof_hashes": len(hashes), "distinct_proof_hashes": len(set(hashes)), "heads": len(bundle.heads),
            "head_hashes": sum(len(h.proof) for h in bundle.heads), "identities": len(bundle.identities),
            "identity_bytes": sum(len(e.leaf) + 32 * len(e.proof) for e in bundle.identities)}


def run_phase(fn: Callable[..., dict[str, Any]], *args: object) -> dict[str, Any]:
    """Run ``fn(*args)`` in a fresh (spawned) process and return its result."""
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
        return pool.submit(fn, *args).result()


# --- the cached ledger -------------------------------------------------------------------------------------------

def ensure_ledger(workdir: Path, records: int, jobs: int) -> tuple[Path, dict[str, Any]]:
    """The cached ledger of ``records`` records (generated if missing) and its metadata."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / f"bench-{records}-{gen.format_hash()}.ledger"
    meta_path = path.with_suffix(".json")
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        if meta.get("bytes") == path.stat().st_size:
            return path, {**meta, "cached": True}
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    start = time.perf_counter()
    gen.generate(tmp, records, workers=jobs, progress=lambda line: print(f"  {line}", flush=True))
    elapsed = time.perf_counter() - start
    digest = hashlib.sha256()
    with tmp.open("rb") as fh:
        while chunk := fh.read(1 << 24):
            digest.update(chunk)
    meta = {"records": records, "format": gen.format_hash(), "generation_s": elapsed, "jobs": jobs,
            "bytes": tmp.stat().st_size, "sha256": digest.hexdigest(), "target": gen.TARGET,
            "generation_rss_children_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}
    os.replace(tmp, path)
    discard_index(tmp)  # the generator's writer left an index under the temporary name: the ledger's own is built
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    return path, {**meta, "cached": False}


# --- the report --------------------------------------------------------------------------------------------------

def _row(name: str, value: str, bound: str = "", ratio: float | None = None) -> str:
    shown = "" if ratio is None else f"{ratio:10.2f}"
    return f"{name:<27} {value:>15}  {bound:<50}{shown}"


def report(meta: dict[str, Any], bounds: dict[str, Any], cp: dict[str, Any], exp: dict[str, Any],
           ver: dict[str, Any], reps: int) -> None:
    n, scan_s = meta["records"], bounds["scan_s"]
    print()
    print(f"StoneTrail proof-bundle benchmark: N = {n:,} records; target {meta['target']} "
          f"({gen.TARGET_STEPS} ancestry records, {len(gen.PARTIES)} registry records)")
    print(f"ledger sha256 {meta['sha256'][:16]}...; Python {sys.version.split()[0]}; {os.cpu_count()} CPUs")
    print(_row("metric", "value", "bound (measured in this run)") + "     ratio")
    print("-" * 96)
    gen_bound = n * bounds["create_s"]
    cached = " (cached)" if meta["cached"] else ""
    print(_row("generation" + cached, f"{meta['generation_s']:.1f} s",
               f"N x Record.create {bounds['create_s'] * 1e6:.0f} us = {gen_bound:.0f} s; {meta['jobs']} jobs",
               meta["generation_s"] / gen_bound))
    print(_row("ledger file", f"{meta['bytes']:,} B", f"{meta['bytes'] / n:.0f} B/record"))
    print(_row("full scan (bound)", f"{scan_s:.2f} s", f"median of {bounds['scans']}; "
               f"{scan_s / n * 1e6:.2f} us/record"))
    for name, r, key in (("checkpoint_file", cp, "checkpoint_s"), ("export_bundle", exp, "export_s")):
        print(_row(name, f"{r[key]:.2f} s", f"a full scan just before/after = {r['scan_s']:.2f} s",
                   r[key] / r["scan_s"]))
    print(_row("bundle size", f"{exp['bundle_bytes']:,} B",
               f"{ver['records']} records ({ver['registry']} registry): {ver['leaf_bytes']:,} B"))
    print(_row("", "", f"{ver['proof_hashes']} proof hashes ({ver['distinct_proof_hashes']} distinct): "
               f"{32 * ver['proof_hashes']:,} B"))
    print(_row("", "", f"{ver['heads']} item-head proof(s), {ver['head_hashes']} hashes: "
               f"{32 * ver['head_hashes']:,} B"))
    print(_row("", "", f"{ver['identities']} identity leaves with proofs: {ver['identity_bytes']:,} B"))
    sigs = ver["signatures"]
    print(_row(f"verify_bundle (median/{reps})", f"{ver['verify_s'] * 1e3:.1f} ms",
               f"its {sigs} sigs alone = {ver['sigs_s'] * 1e3:.1f} ms ({ver['sigs_s'] / sigs * 1e6:.0f} us each)",
               ver["verify_s"] / ver["sigs_s"]))
    print(_row("check_bundle (first)", f"{ver['check_s'] * 1e3:.1f} ms", f"ok = {ver['ok']}; verify_bundle "
               f"min {ver['verify_min_s'] * 1e3:.1f} ms, max {ver['verify_max_s'] * 1e3:.1f} ms",
               ver["check_s"] / ver["sigs_s"]))
    for finding in ver["findings"]:
        print(f"  finding: {finding}")
    print("-" * 96)
    phases = [("bounds", bounds), ("checkpoint", cp), ("export", exp), ("verify", ver)]
    shown = ", ".join(f"{name} {r['rss_mib']:,.0f}" for name, r in phases)
    workers = "" if meta["cached"] else f"; generation workers {meta['generation_rss_children_mib']:,.0f}"
    print(f"peak RSS (MiB), one process per phase: {shown}; main {_rss_mib():,.0f}{workers}")


# --- self-check ----------------------------------------------------------------------------------------------------

def self_check(workdir: Path, records: int) -> int:
    """Generate a small ledger with 1 and with 2 worker processes: same bytes; audit it; check the target's
    ancestry; export its bundle and verify it."""
    from ledger.history import item_history
    from ledger.replay import replay_ledger

    root = workdir / "self-check"
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    paths = [root / f"jobs{j}.ledger" for j in (1, 2)]
    for j, path in zip((1, 2), paths, strict=True):
        gen.generate(path, records, workers=j)
    same = paths[0].read_bytes() == paths[1].read_bytes()
    print(f"byte-identical with 1 and 2 worker processes: {same}")
    audit = check_ledger(paths[1], gen.trust())
    print(f"check_ledger: ok = {audit.ok}, {audit.record_count} records, {audit.items} items, "
          f"{audit.parties} parties, {len(audit.findings)} findings")
    for finding in audit.findings[:10]:
        print(f"  {finding}")
    rows = item_history(replay_ledger(paths[1], gen.trust()), gen.TARGET)
    positions = [r.position for r in rows]
    print(f"{gen.TARGET}: {len(rows)} ancestry records at positions {positions[0]} .. {positions[-1]}")
    note = checkpoint_file(paths[1], gen.key("operator"))
    data = export_bundle(paths[1], gen.TARGET, note, trust=gen.trust())
    bundle = check_bundle(data, gen.trust())
    counts = bundle_counts(data)
    print(f"bundle: {len(data):,} bytes, {counts}; check_bundle ok = {bundle.ok}")
    for finding in bundle.findings[:10]:
        print(f"  {finding}")
    ok = (same and audit.ok and len(rows) == gen.TARGET_STEPS and bundle.ok
          and counts["records"] == gen.TARGET_STEPS + len(gen.PARTIES))
    print("self-check " + ("passed" if ok else "FAILED"))
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=DEFAULT_RECORDS, help="ledger size N (>= 500)")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="where the ledger is cached")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="generator worker processes")
    parser.add_argument("--repeat", type=int, default=7, help="verification runs (the median is reported)")
    parser.add_argument("--scans", type=int, default=3, help="full scans for the bound (median)")
    parser.add_argument("--self-check", action="store_true", help="audit a small ledger (N default 3000)")
    args = parser.parse_args(argv)
    if args.self_check:
        return self_check(args.workdir, args.records if args.records != DEFAULT_RECORDS else 3000)
    print(f"ledger of {args.records:,} records in {args.workdir}", flush=True)
    path, meta = ensure_ledger(args.workdir, args.records, args.jobs)
    print(f"  {'reused' if meta['cached'] else 'generated'} {path.name}; measuring bounds", flush=True)
    bounds = run_phase(phase_bounds, str(path), args.scans)
    print("  checkpoint_file", flush=True)
    cp = run_phase(phase_checkpoint, str(path))
    bundle = path.with_suffix(".stproof")
    print("  export", flush=True)
    exp = run_phase(phase_export, str(path), cp["note"], str(bundle))
    print("  verify", flush=True)
    ver = run_phase(phase_verify, str(bundle), args.repeat)
    report(meta, bounds, cp, exp, ver, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
