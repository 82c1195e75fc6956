"""Benchmark of issue 10: a ledger that stays instant at a million records (the persistent index).

Usage (from the repository root)::

    python bench/bench_index.py                             # N = 1,000,000 (generation cached in --workdir)
    python bench/bench_index.py --records 20000             # a quick run on today's code
    python bench/bench_index.py --records 100000,1000000    # both tables and a growth table
    python bench/bench_index.py --records 20000 --json      # one JSON document on stdout

Every figure runs in a fresh child process (its peak RSS is its own, from ``wait4``) on a scratch copy of the
cached bench ledger (``ledgergen``), and is printed beside a bound measured in the same run and the issue's
acceptance bound: the index build against one strict decode pass of the log (read streaming,
:func:`benchkit.payloads`); ``Ledger.open`` in the library against that pass and as a process against a process
that only imports the library; ``record_event`` and ``append_batch`` throughput against the raw Ed25519 cost
(``cryptography``: sign and verify) of the same signatures; a checkpoint after 1,000 new records against
decoding those records; a one-stone export against verifying its bundle; the CLI processes against
``stonetrail --version``; an inclusion proof from the index against :class:`ledger.merkle.MerkleTree` over the
same leaves in memory. A figure that runs past ``--timeout`` is killed and shown as "> T s"; an index function
the library does not have yet is shown as "not built yet".
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchkit import Run, print_growth, print_rows, run_process, scratch_copy, space_for

Args = dict[str, Any]
BENCH = Path(__file__).resolve().parent
DEFAULT_WORKDIR = Path(tempfile.gettempdir()) / "stonetrail-bench"
BYTES_PER_RECORD = 500  # a bench ledger's size, for the free-space check (about 497 B a record)


# --- the parent: one ledger size ----------------------------------------------------------------------------------

def child(name: str, args: Args, timeout: float | None) -> Args:
    """Run figure ``name`` in a fresh process: its result, with the process's ``wall_s``, ``rss_mb`` and
    ``status`` (ok, timeout, error, missing: the index API is not built yet)."""
    run = run_process([sys.executable, str(BENCH / "index_figures.py"), name, json.dumps(args)], timeout)
    return _outcome(run, json.loads(run.stdout.strip().splitlines()[-1]) if run.status == 0 else {}, timeout)


def process(argv: Sequence[str], timeout: float | None) -> Args:
    """A CLI process, measured as a figure: ``wall_s``, ``rss_mb``, ``status``."""
    return _outcome(run_process(argv, timeout), {}, timeout)


def _outcome(run: Run, result: Args, timeout: float | None) -> Args:
    status = "timeout" if run.timed_out else "error" if run.status else "missing" if "missing" in result else "ok"
    error = (run.stderr.strip().splitlines() or [f"exit {run.status}"])[-1] if status == "error" else None
    return {**result, "wall_s": run.wall_s, "rss_mb": run.rss_mb, "status": status, "error": error,
            "timeout_s": timeout}


def _say(text: str) -> None:
    print(f"  {text}", file=sys.stderr, flush=True)


def _stonetrail() -> list[str]:
    beside = Path(sys.executable).with_name("stonetrail")
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "stonetrail_cli.main"]


def _after_writer(path: Path, result: Args) -> None:
    """A writer killed at the timeout may leave a torn tail: move it aside (``ledger.repair``) so that the next
    figures can run, and say so in the figure's ``repair``."""
    if result["status"] == "timeout":
        from ledger import repair
        from ledger.errors import StoneTrailError
        try:
            result["repair"] = repair(path).to_json()
        except StoneTrailError as exc:
            result["repair"] = {"error": str(exc)}


def measure(path: Path, n: int, item: str, opts: argparse.Namespace) -> Args:
    """Every figure on the scratch ledger ``path`` of ``n`` records, in an order where each finds what it needs
    (an index for open and proofs; a checkpoint for the exports)."""
    import ledgergen as gen
    q, t, run_dir = opts.quick, opts.timeout, path.parent
    r: Args = {}

    def step(name: str, fn: Callable[[], Args]) -> None:
        _say(f"{name} ...")
        r[name] = fn()
        shown = r[name]["status"] if r[name]["status"] != "ok" else f"{r[name]['wall_s']:.2f} s"
        _say(f"{name}: {shown}")

    p = str(path)
    step("noop", lambda: child("noop", {}, t))
    step("decode", lambda: child("decode", {"path": p}, None))
    keys = [k.hex() for k in gen.trust().authority_keys]
    step("build", lambda: child("build", {"path": p, "keys": keys}, max(t, 3 * r["decode"].get("s", t))))
    step("open", lambda: child("open", {"path": p, "keys": keys}, t))
    proofs = {"path": p, "size": n, "indices": sorted(random.Random(n).sample(range(n), 50 if q else 1000))}
    step("proofs", lambda: child("proofs", proofs, t))
    step("proofs_bound", lambda: child("proofs_bound", proofs, None))
    counts = {"single": 20, "batch100": 1, "batch1000": 1} if q else {"single": 200, "batch100": 10, "batch1000": 3}
    step("append", lambda: child("append", {"path": p, **counts}, t))
    _after_writer(path, r["append"])
    notes = run_dir / "ledger-checkpoint.txt", run_dir / "file-checkpoint.txt"
    step("checkpoint", lambda: child("checkpoint", {"path": p, "new": opts.new, "note": str(notes[0])}, t))
    _after_writer(path, r["checkpoint"])
    step("checkpoint_file", lambda: child("checkpoint_file", {"path": p, "note": str(notes[1])}, t))
    note = next((str(file) for file in reversed(notes) if file.exists()), None)  # the newest
    out = run_dir / "export.stproof"
    skipped = {"status": "no checkpoint", "wall_s": None, "rss_mb": None}
    step("export", lambda: child("export", {"path": p, "item": item, "note": note, "out": str(out),
                                             "repeat": 1 if q else 5}, t) if note else skipped)
    step("cli_version", lambda: process([*_stonetrail(), "--version"], t))
    cli_out = run_dir / "cli.stproof"
    cli_export = [*_stonetrail(), "proof", "export", p, item, "--checkpoint", str(note), "-o", str(cli_out)]
    step("cli_export", lambda: process(cli_export, t) if note else skipped)
    r["cli_export"]["ok"] = _verifies(cli_out)
    step("cli_show", lambda: process([*_stonetrail(), "show", p, item], t))
    trust = run_dir / "trust.keys"
    trust.write_text(gen.trust().format(), encoding="utf-8")
    step("cli_show_trust", lambda: process([*_stonetrail(), "show", p, item, "--trust", str(trust)], t))
    bare = run_dir / "no-index.ledger"  # the same file under a name with no index beside it (a hard link)
    bare.unlink(missing_ok=True)
    os.link(p, bare)
    try:
        step("cli_show_bare", lambda: process([*_stonetrail(), "show", str(bare), item], t))
        step("cli_show_trust_bare", lambda: process([*_stonetrail(), "show", str(bare), item, "--trust", str(trust)],
                                                    t))
    finally:
        bare.unlink()
    return r


def _verifies(bundle: Path) -> bool | None:
    if not bundle.exists():
        return None
    import ledgergen as gen

    from ledger.bundle import check_bundle
    return check_bundle(bundle.read_bytes(), gen.trust()).ok


def run_size(n: int, opts: argparse.Namespace) -> Args | None:
    """Generate (or reuse) the bench ledger of ``n`` records, copy it, measure; None if the disk is too small."""
    import bench_bundle
    import ledgergen as gen
    cached = opts.workdir / f"bench-{n}-{gen.format_hash()}.ledger"
    need = BYTES_PER_RECORD * n * (2 if cached.exists() else 3)  # the cache (if new), its copy, the index
    if not space_for(opts.workdir, need):
        _say(f"skipping N = {n:,}: about {need / 1e9:.1f} GB of free disk needed in {opts.workdir}")
        return None
    _say(f"N = {n:,}: ledger in {opts.workdir}")
    with contextlib.redirect_stdout(sys.stderr):
        source, meta = bench_bundle.ensure_ledger(opts.workdir, n, opts.jobs)
    path = scratch_copy(source, opts.workdir / f"index-run-{n}")
    results = measure(path, n, meta["target"], opts)
    return {"records": n, "ledger": source.name, "bytes": meta["bytes"], "sha256": meta["sha256"],
            "target": meta["target"], "figures": results}


# --- the report ---------------------------------------------------------------------------------------------------

RSS_LIMIT_MB = 300  # the bound for every command but the full audit


def secs(value: float) -> str:
    """Seconds in the unit that fits: us, ms or s."""
    return f"{value * 1e6:.0f} us" if value < 1e-3 else f"{value * 1e3:.1f} ms" if value < 1 else f"{value:.2f} s"


def _row(key: str, label: str, fig: Args, value: float | None, bound: float | None, bound_text: str, accept: str,
         *, rate: bool = False, limit_s: float | None = None, ratio_max: float | None = None,
         ratio_min: float | None = None, holds: bool = True) -> Args:
    """One table row: the figure ``value`` (seconds, or records/s if ``rate``), its ``bound`` and their ratio,
    the acceptance text and verdict (``ok``; None when there is no acceptance bound or nothing was measured),
    the figure process's peak RSS (MB), whose bound applies to every judged row. ``holds``: the figure's own
    check (a bundle verifies, proofs agree)."""
    status = fig["status"]
    measured = status == "ok" and value is not None
    ratio = value / bound if measured and value is not None and bound else None
    row = {"key": key, "label": label, "value": value if measured else None, "unit": "rec/s" if rate else "s",
           "bound": bound, "bound_text": bound_text, "ratio": ratio, "accept": accept, "ok": None,
           "rss_mb": fig["rss_mb"] if measured or status == "timeout" else None, "error": fig.get("error")}
    if not measured:
        timeout = fig.get("timeout_s") or 0
        row["shown"] = {"missing": "not built yet", "timeout": f"> {timeout:g} s"}.get(status, status)
        if accept and (status == "error" or (status == "timeout" and limit_s is not None and timeout >= limit_s)):
            row["ok"] = False
        return row
    assert value is not None
    row["shown"] = f"{value:,.0f} rec/s" if rate else secs(value)
    if accept:
        misses = {"check": not holds, "RSS": fig["rss_mb"] > RSS_LIMIT_MB,
                  "time": limit_s is not None and value > limit_s,
                  "ratio": (ratio_max is not None and (ratio is None or ratio > ratio_max))
                  or (ratio_min is not None and (ratio is None or ratio < ratio_min))}
        row["misses"] = [what for what, missed in misses.items() if missed]
        row["ok"] = not row["misses"]
    return row


def rows(run: Args, opts: argparse.Namespace) -> list[Args]:
    """The table of one run: every figure beside its bound (measured in the same run) and its acceptance bound."""
    f, n = run["figures"], run["records"]
    decode = f["decode"].get("s")
    per_record = decode / n if decode else None
    new = per_record * opts.new if per_record else None
    noop, version = f["noop"]["wall_s"], f["cli_version"]["wall_s"]
    indexed = "" if f["open"].get("index") else " (no index yet)"
    out = [_row("decode", "bound: strict decode pass", f["decode"], decode, None,
                f"{n:,} records, {per_record * 1e6:.1f} us each" if per_record else "", "")]
    out.append(_row("build", "index build from scratch", f["build"], f["build"].get("s"), decode,
                    f"decode pass {secs(decode or 0)}", "<= 2 x bound", ratio_max=2))
    out.append(_row("open", "Ledger.open, in library" + indexed, f["open"], f["open"].get("s"), decode,
                    f"decode pass {secs(decode or 0)}", "<= 1 s", limit_s=1))
    out.append(_row("open_process", "Ledger.open, process" + indexed, f["open"], f["open"]["wall_s"], noop,
                    f"process importing ledger {secs(noop)}", "<= 1 s", limit_s=1))
    append = f["append"]
    for mode, label, accept in (("single", "record_event, one at a time", ""),
                                ("batch100", "append_batch of 100", ">= 0.5 x bound"),
                                ("batch1000", "append_batch of 1,000", ">= 0.5 x bound")):
        m = append.get(mode, {})
        value, raw = (m["records"] / m["s"], m["records"] / m["raw_s"]) if m else (None, None)
        text = f"raw Ed25519 sign+verify {raw:,.0f} rec/s" if raw else "raw Ed25519 sign+verify"
        out.append(_row(mode, label, append, value, raw, text, accept, rate=True, ratio_min=0.5 if accept else None))
    first = f["checkpoint"].get("first_s")
    for key, label in (("checkpoint", "Ledger.checkpoint"), ("checkpoint_file", "checkpoint_file")):
        text = f"decoding {opts.new:,} records {secs(new or 0)}"
        if key == "checkpoint" and first is not None:
            text += f"; the one before {secs(first)}"
        out.append(_row(key, f"{label} after {opts.new:,} new", f[key], f[key].get("s"), new, text, "<= 2 s",
                        limit_s=2))
    exp = f["export"]
    out.append(_row("export", "export_bundle (library)", exp, exp.get("s"), exp.get("verify_s"),
                    f"verify_bundle of it {secs(exp.get('verify_s') or 0)}; verifies: {exp.get('ok')}; cold "
                    f"{secs(exp.get('first_s') or 0)}",
                    "<= 20 ms", limit_s=0.02, holds=exp.get("ok") is True))
    cli = f["cli_export"]
    out.append(_row("cli_export", "stonetrail proof export (process)", cli, cli["wall_s"], version,
                    f"stonetrail --version {secs(version)}; verifies: {cli.get('ok')}", "<= 1 s", limit_s=1,
                    holds=cli.get("ok") is True))
    pr, bound = f["proofs"], f["proofs_bound"]
    agree = None if "digest" not in pr else pr["digest"] == bound.get("digest") and pr["root"] == bound.get("root")
    same = "-" if agree is None else agree
    out.append(_row("proof", "inclusion proof (index)", pr, pr.get("s"), bound.get("s"),
                    f"MerkleTree in memory {secs(bound.get('s') or 0)}; same: {same}", "<= 1 ms", limit_s=1e-3,
                    holds=agree is True))
    out.append(_row("show", "stonetrail show ITEM (process)", f["cli_show"], f["cli_show"]["wall_s"], version,
                    f"stonetrail --version {secs(version)}", "<= 1 s", limit_s=1))
    audited = f["cli_show_trust"]  # a whole audit first: its time is the audit's, its memory is judged
    out.append(_row("show_trust", "stonetrail show ITEM --trust (process)", audited, audited["wall_s"], None,
                    "the whole ledger audited first (as verify), the history read through the index",
                    f"RSS <= {RSS_LIMIT_MB} MB"))
    for key, label, how in (
            ("cli_show_bare", "stonetrail show ITEM, no index (process)",
             "items rebuilt by a pass as the audit's, no key trusted; two reads of the file (ADR 0034)"),
            ("cli_show_trust_bare", "stonetrail show ITEM --trust, no index",
             "the whole ledger audited first, then two reads of the file (ADR 0033)")):
        out.append(_row(key, label, f[key], f[key]["wall_s"], None, how, f"RSS <= {RSS_LIMIT_MB} MB"))
    return out


def print_table(run: Args, opts: argparse.Namespace) -> None:
    print()
    print(f"StoneTrail index benchmark: N = {run['records']:,} records ({run['bytes']:,} B), target "
          f"{run['target']}; ledger sha256 {run['sha256'][:16]}...; Python {sys.version.split()[0]}, "
          f"{os.cpu_count()} CPUs; timeout {opts.timeout:g} s a figure{'; quick' if opts.quick else ''}")
    print_rows(run["rows"], lambda row: row["key"] == "decode", label=38, bound=52)
    judged = [r for r in run["rows"] if r["accept"]]
    met = sum(r["ok"] is True for r in judged)
    print(f"acceptance met: {met} of {len(judged)} rows (RSS <= {RSS_LIMIT_MB} MB in each; N+: when killed); "
          f"not built yet: {sum(r['shown'] == 'not built yet' for r in run['rows'])}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", default="1000000", help="ledger size N, or several: 100000,1000000")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="where ledgers are cached")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="generator worker processes")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds per figure (the index build: at least 3 decode passes)")
    parser.add_argument("--new", type=int, default=1000, help="records appended before the checkpoint figure")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout instead of tables")
    opts = parser.parse_args(argv)
    sizes = [int(s.replace("_", "")) for s in opts.records.split(",")]
    if any(n < 500 for n in sizes):
        parser.error("--records: each N must be >= 500")
    runs = [run for n in sizes if (run := run_size(n, opts)) is not None]
    for run in runs:
        run["rows"] = rows(run, opts)
    if opts.json:
        print(json.dumps({"python": sys.version.split()[0], "cpus": os.cpu_count(), "timeout_s": opts.timeout,
                          "quick": opts.quick, "runs": runs}, indent=1))
        return 0
    for run in runs:
        print_table(run, opts)
    if len(runs) > 1:
        print_growth(runs, label=38)
    return 0


if __name__ == "__main__":
    sys.exit(main())
