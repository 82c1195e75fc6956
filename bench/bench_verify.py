"""Benchmark of issue 11: the auditor's replay (``stonetrail verify``) against the bare signature bound.

Usage (from the repository root)::

    python bench/bench_verify.py                              # N = 100,000 (the ledger is generated once, cached)
    python bench/bench_verify.py --records 100000,1000000     # both tables and a growth table
    python bench/bench_verify.py --records 2000 --json        # one JSON document on stdout

On a scratch copy of the cached bench ledger (``ledgergen``), in this order, each in a fresh process (its peak
RSS is its own, from ``wait4``: the largest process of its tree, workers included, not their sum):
(a) the bound: the bare Ed25519 verification of the ledger's own signatures, with ``cryptography`` and with
libsodium, on one core and on every core (``verify_figures.py bound``); (d) the library's RFC 9162 tree over
the records' leaf hashes plus 1,000 inclusion proofs, against pymerkle on the same leaves (roots and proofs
compared); (b) ``stonetrail verify LEDGER --trust T --json --jobs J --engine E`` for J in (1, cores) and each
engine, and once more on every core with ``--checkpoint`` (a checkpoint of the ledger signed once and cached
beside it: the audit then also computes the item-head and identity lines, and its peak RSS is judged too);
(e) ``--save-state`` on a copy cut at 99 % of the records, then ``--resume`` on the whole file, against the full
audit; (f) the peak RSS of ``verify`` on a file crafted to fail everywhere: N frames that are not records, each
followed by a damaged span (2 N findings in 15 N bytes), which must stay as bounded as the real ledger's audit
(the audit keeps the first findings and counts the rest). Each figure is printed beside its bound, the ratio,
the issue's acceptance and a verdict; a command the CLI does not offer yet (a usage error) is shown as "not
built yet". ``--figures resume`` (or ``bound``, ``merkle``, ``verify``, ``crafted``, comma-separated) measures
only those rows, e.g. the incremental audit at 10⁶ without the half hour of the others.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import json
import os
import random
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bench_index import secs
from benchkit import Run, print_growth, print_rows, run_process, scratch_copy, space_for

Args = dict[str, Any]
BENCH = Path(__file__).resolve().parent
DEFAULT_WORKDIR = Path(tempfile.gettempdir()) / "stonetrail-bench"
BYTES_PER_RECORD = 500  # a bench ledger's size, for the free-space check (about 497 B a record)
ENGINES = ("cryptography", "libsodium")
PROOFS = 1000
RSS_LIMIT_MB = 300  # the bound on a verify process at 10^6 records
CUT = 0.99  # the incremental audit: state saved at 99 % of the records, the last 1 % audited from it
FIGURES = ("bound", "merkle", "verify", "resume", "crafted")  # the groups --figures chooses from


# --- running figures --------------------------------------------------------------------------------------------

def child(name: str, args: Args, timeout: float | None) -> Args:
    """Figure ``name`` of ``verify_figures.py`` in a fresh process: its result, with ``wall_s``, ``rss_mb`` and
    ``status`` (ok, timeout, error, missing: a package it needs is not installed)."""
    run = run_process([sys.executable, str(BENCH / "verify_figures.py"), name, json.dumps(args)], timeout)
    result = json.loads(run.stdout.strip().splitlines()[-1]) if run.status == 0 else {}
    return _outcome(run, result, "missing" if "missing" in result else "ok", timeout)


def cli_verify(argv: Sequence[str], timeout: float | None) -> Args:
    """A ``stonetrail verify ... --json`` process: its JSON's ``records``, ``root``, ``seconds``, ``level``,
    ``verdict``, the number of findings and a digest of them (to compare runs), with ``wall_s``, ``rss_mb`` and
    ``status``; ``missing`` when the CLI answers with a usage error (an option it does not have yet)."""
    run = run_process([*_stonetrail(), "verify", *argv, "--json"], timeout)
    try:
        out = json.loads(run.stdout)
    except ValueError:
        out = {}
    if run.status == 2 and out.get("error", {}).get("code") == "usage":
        return _outcome(run, {"missing": out["error"]["message"]}, "missing", timeout)
    if run.status not in (0, 1) or "verdict" not in out:
        return _outcome(run, {}, "error", timeout)
    findings = out.get("findings", [])
    digest = hashlib.sha256(json.dumps(findings, sort_keys=True).encode()).hexdigest()
    result = {key: out.get(key) for key in ("records", "root", "seconds", "level", "verdict", "finding_count")}
    return _outcome(run, {**result, "findings": len(findings), "findings_digest": digest}, "ok", timeout)


def _outcome(run: Run, result: Args, status: str, timeout: float | None) -> Args:
    status = "timeout" if run.timed_out else "error" if run.status not in (0, 1) and status == "ok" else status
    error = (run.stderr.strip().splitlines() or [f"exit {run.status}"])[-1] if status == "error" else None
    return {**result, "wall_s": run.wall_s, "rss_mb": run.rss_mb, "status": status, "error": error,
            "timeout_s": timeout}


def _stonetrail() -> list[str]:
    beside = Path(sys.executable).with_name("stonetrail")
    return [str(beside)] if beside.exists() else [sys.executable, "-m", "stonetrail_cli.main"]


def _say(text: str) -> None:
    print(f"  {text}", file=sys.stderr, flush=True)


def measure(path: Path, n: int, opts: argparse.Namespace, note: Path) -> Args:
    """Every figure on the scratch ledger ``path`` of ``n`` records (its trust file and the 99 % copy beside);
    ``note``: the file of the ledger's checkpoint (signed here if it does not exist)."""
    import ledgergen as gen
    from verify_figures import cut_copy
    run_dir, t, cores = path.parent, opts.timeout, opts.cores
    trust = run_dir / "trust.keys"
    trust.write_text(gen.trust().format())
    r: Args = {}
    groups = {"bound": {"bound"}, "merkle": {"merkle", "pymerkle", "hash_floor"},
              "verify": {f"verify_{e}_{j}" for e in ENGINES for j in _jobs(cores)}
              | {"checkpoint", "verify_checkpoint"},
              "resume": {"save_state", "resume"}, "crafted": {"crafted"}}
    wanted: set[str] = set().union(*(groups[g] for g in opts.figures))

    def step(name: str, fn: Callable[[], Args]) -> None:
        if name not in wanted:
            r[name] = {"status": "skipped", "wall_s": None}
            return
        _say(f"{name} ...")
        r[name] = fn()
        _say(f"{name}: {r[name]['status'] if r[name]['status'] != 'ok' else secs(r[name]['wall_s'])}")

    p = str(path)
    step("bound", lambda: child("bound", {"path": p, "cores": cores}, None))
    if r["bound"]["status"] == "skipped":
        r["bound"] = {}
    if "resume" in opts.figures:  # the full audit it is compared with
        wanted.add(f"verify_{_fastest(r['bound'])}_{cores}")
    indices = sorted(random.Random(n).sample(range(n), min(PROOFS, n)))
    step("merkle", lambda: child("merkle", {"path": p, "size": n, "indices": indices}, t))
    step("pymerkle", lambda: child("pymerkle", {"path": p, "size": n, "indices": indices}, t))
    step("hash_floor", lambda: child("hash_floor", {"path": p, "size": n}, t))

    def flags(jobs: int, engine: str) -> list[str]:
        return ["--trust", str(trust), "--jobs", str(jobs), "--engine", engine]

    for engine in ENGINES:
        for jobs in _jobs(cores):
            step(f"verify_{engine}_{jobs}", functools.partial(cli_verify, [p, *flags(jobs, engine)], t))
    common = flags(cores, _fastest(r["bound"]))  # the incremental audit: as the full audit it is compared with
    if not note.exists():
        step("checkpoint", lambda: child("checkpoint", {"path": p, "note": str(note)}, t))
    step("verify_checkpoint", lambda: cli_verify([p, *common, "--checkpoint", str(note)], t))
    cut, state = run_dir / "cut.ledger", run_dir / "audit.state"
    kept = int(n * CUT)
    r["cut"] = {"records": kept, "bytes": None}
    if "resume" in opts.figures:
        state.unlink(missing_ok=True)
        r["cut"]["bytes"] = cut_copy(path, cut, kept)
    step("save_state", lambda: cli_verify([str(cut), *common, "--save-state", str(state)], t))
    step("resume", lambda: cli_verify([p, *common, "--resume", str(state)], t))
    crafted = run_dir / "crafted.ledger"
    step("crafted", lambda: cli_verify([str(write_crafted(crafted, n)), "--trust", str(trust), "--jobs", str(cores)],
                                       t))
    crafted.unlink(missing_ok=True)
    return r


def write_crafted(path: Path, n: int) -> Path:
    """A ledger file of ``n`` frames holding a byte that is not a record (``record.tag``), each followed by two
    stray bytes (a damaged span, ``store.bad_magic``): 2 ``n`` findings in 15 ``n`` bytes."""
    from ledger.storage.frames import pack_batch
    from ledger.storage.header import pack_header
    frame, _ = pack_batch([b"\x00"])
    with path.open("wb") as f:
        f.write(pack_header("bench.crafted.example/ledger"))
        for done in range(0, n, 10_000):
            f.write((frame + b"XX") * min(10_000, n - done))
    return path


def _jobs(cores: int) -> list[int]:
    return sorted({1, cores})


def _fastest(bound: Args) -> str:
    """The engine whose one-core bound is the lowest (libsodium when the bound did not run)."""
    measured = [e for e in ENGINES if e in bound]
    return min(measured, key=lambda e: bound[e]["one_s"]) if measured else ENGINES[-1]


def run_size(n: int, opts: argparse.Namespace) -> Args | None:
    """Generate (or reuse) the bench ledger of ``n`` records, copy it, measure; None if the disk is too small."""
    import bench_bundle
    import ledgergen as gen
    cached = opts.workdir / f"bench-{n}-{gen.format_hash()}.ledger"
    need = BYTES_PER_RECORD * n * (2 if cached.exists() else 3)  # the cache (if new), its copy, the 99 % copy
    if not space_for(opts.workdir, need):
        _say(f"skipping N = {n:,}: about {need / 1e9:.1f} GB of free disk needed in {opts.workdir}")
        return None
    _say(f"N = {n:,}: ledger in {opts.workdir}")
    with contextlib.redirect_stdout(sys.stderr):
        source, meta = bench_bundle.ensure_ledger(opts.workdir, n, opts.jobs)
    path = scratch_copy(source, opts.workdir / f"verify-run-{n}")
    return {"records": n, "ledger": source.name, "bytes": meta["bytes"], "sha256": meta["sha256"],
            "cores": opts.cores, "figures": measure(path, n, opts, source.with_suffix(".checkpoint"))}


# --- the report ---------------------------------------------------------------------------------------------------

def _row(key: str, label: str, fig: Args, value: float | None, bound_text: str, *, unit: str = "s",
         ratio: float | None = None, accept: str = "", passes: Callable[[float], bool] | None = None,
         holds: bool = True) -> Args:
    """One table row: ``value`` (seconds, or a speed-up ``x`` for ``unit="x"``), the text of its bound, the ratio
    the acceptance judges (``passes``) and whether the figure's own check ``holds`` (same root, same findings).
    ``ok`` is None when there is no acceptance bound or nothing was measured."""
    status = fig.get("status", "ok")
    measured = status == "ok" and value is not None
    row = {"key": key, "label": label, "value": value if measured else None, "unit": unit, "bound_text": bound_text,
           "ratio": ratio if measured else None, "accept": accept, "ok": None, "misses": [],
           "rss_mb": fig.get("rss_mb") if status in ("ok", "timeout") else None, "error": fig.get("error")}
    if not measured:
        row["shown"] = {"missing": "not built yet", "timeout": f"> {fig.get('timeout_s') or 0:g} s"}.get(status, status)
        row["ok"] = False if accept and status in ("error", "timeout") else None
        return row
    assert value is not None
    row["shown"] = {"x": f"{value:.2f} x", "MB": f"{value:,.0f} MB"}.get(unit) or secs(value)
    if accept and passes is not None:
        misses = {"RSS" if unit == "MB" else "ratio": ratio is None or not passes(ratio), "check": not holds}
        row["misses"] = [what for what, missed in misses.items() if missed]
        row["ok"] = not row["misses"]
    return row


def _same(a: Args, b: Args) -> bool:
    return all(a.get(k) == b.get(k) for k in ("records", "root", "verdict", "findings_digest"))


def _root_matches(fig: Args, merkle: Args) -> bool | None:
    """Whether a verify run's root is the Merkle figure's (either in hex or in standard base64)."""
    import base64
    if "root" not in merkle or not fig.get("root"):
        return None
    root = bytes.fromhex(merkle["root"])
    return fig["root"] in (root.hex(), base64.b64encode(root).decode())


def _clean(fig: Args, n: int, merkle: Args) -> bool:
    return fig.get("verdict") == "valid" and fig.get("findings") == 0 and fig.get("records") == n \
        and _root_matches(fig, merkle) is not False


def rows(run: Args) -> list[Args]:
    """The table of one run: the bounds, every verify figure beside its bound, and the issue's acceptance lines."""
    f, n, cores = run["figures"], run["records"], run["cores"]
    bound, fastest = f["bound"], _fastest(f["bound"])
    sigs = bound.get("signatures")
    out = []
    for engine in ENGINES:
        b = bound.get(engine, {})
        for mode, label in (("one", "1 core"), ("all", f"{cores} cores")):
            text = f"{sigs:,} signatures, {b[mode + '_s'] / sigs * 1e6:.0f} us each" if b and sigs else ""
            out.append(_row(f"bound_{engine}_{mode}", f"bound: Ed25519 {engine}, {label}",
                            bound or {"status": "skipped"}, b.get(f"{mode}_s"), text))
    verify = {(e, j): f[f"verify_{e}_{j}"] for e in ENGINES for j in _jobs(cores)}
    for (engine, jobs), fig in verify.items():
        b = bound.get(engine, {}).get("one_s" if jobs == 1 else "all_s")
        judged = jobs == 1 and engine == fastest
        out.append(_row(f"verify_{engine}_{jobs}", f"verify --jobs {jobs} --engine {engine}", fig, fig["wall_s"],
                        _verify_text(fig, b),
                        ratio=fig["wall_s"] / b if b else None, accept="<= 1.2 x bound" if judged else "",
                        passes=(lambda r: r <= 1.2) if judged else None, holds=_clean(fig, n, f["merkle"])))
    out += _acceptance(f, n, cores, verify, fastest)
    return out


def _verify_text(fig: Args, bound_s: float | None) -> str:
    text = f"bound {secs(bound_s)}" if bound_s else "bound -"
    return text + (f"; {fig['verdict']}, {fig['findings']} findings" if fig["status"] == "ok" else "")


def _speedup(slow: Args, fast: Args) -> tuple[Args, float | None]:
    """A figure standing for ``slow / fast`` (the worse status of the two) and that speed-up."""
    for fig in (slow, fast):
        if fig["status"] != "ok":
            return fig, None
    return {"status": "ok", "rss_mb": max(slow["rss_mb"], fast["rss_mb"])}, slow["wall_s"] / fast["wall_s"]


def _acceptance(f: Args, n: int, cores: int, verify: dict[tuple[str, int], Args], fastest: str) -> list[Args]:
    out = []
    if cores > 1:
        want = 0.85 * cores  # the 1.7 x on 2 cores
        for engine in ENGINES:
            fig, up = _speedup(verify[engine, 1], verify[engine, cores])
            out.append(_row(f"jobs_{engine}", f"--jobs {cores} vs --jobs 1, {engine}", fig, up,
                            f"--jobs 1 / --jobs {cores}", unit="x", ratio=up, accept=f">= {want:g} x",
                            passes=lambda r: r >= want))
    fig, up = _speedup(verify["cryptography", 1], verify["libsodium", 1])
    out.append(_row("engines", "libsodium vs cryptography, --jobs 1", fig, up, "cryptography / libsodium",
                    unit="x", ratio=up, accept=">= 1.6 x", passes=lambda r: r >= 1.6))
    ran = [v["rss_mb"] for v in verify.values() if v["status"] in ("ok", "timeout")]
    none = "skipped" if all(v["status"] == "skipped" for v in verify.values()) else "missing"
    peak = {"status": "ok", "rss_mb": max(ran)} if ran else {"status": none}
    out.append(_row("rss", "peak RSS of the verify processes", peak, peak.get("rss_mb"),
                    f"largest of {len(ran)} verify processes (killed ones too)", unit="MB", ratio=peak.get("rss_mb"),
                    accept=f"<= {RSS_LIMIT_MB} MB", passes=lambda r: r <= RSS_LIMIT_MB))
    checked = f.get("verify_checkpoint", {"status": "skipped", "wall_s": None})
    without = verify[fastest, cores]
    text = f"{secs(checked['wall_s'])}, {checked['verdict']}; without it {secs(without['wall_s'])}, " \
        f"{without['rss_mb']:,.0f} MB" if checked["status"] == without["status"] == "ok" else ""
    out.append(_row("rss_checkpoint", f"peak RSS of verify --checkpoint --jobs {cores}", checked,
                    checked.get("rss_mb"), text, unit="MB", ratio=checked.get("rss_mb"),
                    accept=f"<= {RSS_LIMIT_MB} MB", passes=lambda r: r <= RSS_LIMIT_MB,
                    holds=checked.get("verdict") == "valid"))
    full, save, resume = verify[fastest, cores], f["save_state"], f["resume"]
    out.append(_row("save_state", f"verify --save-state at {CUT:.0%}", save, save["wall_s"],
                    f"{f['cut']['records']:,} records" + (f"; {save['verdict']}" if save["status"] == "ok" else "")))
    ok = full["status"] == "ok"
    same = f"; same result: {_same(resume, full)}" if resume["status"] == "ok" else ""
    out.append(_row("resume", f"verify --resume, last {1 - CUT:.0%}", resume, resume["wall_s"],
                    f"full audit {secs(full['wall_s'])}{same}" if ok else "full audit -",
                    ratio=resume["wall_s"] / full["wall_s"] if ok and resume["wall_s"] else None,
                    accept="<= 0.03 x full",
                    passes=lambda r: r <= 0.03, holds=ok and _same(resume, full)))
    mine, theirs = f["merkle"], f["pymerkle"]
    same = mine.get("root") == theirs.get("root") and mine.get("proofs") == theirs.get("proofs")
    up = theirs["s"] / mine["s"] if "s" in theirs and "s" in mine else None
    text = f"pymerkle {theirs['version']} {secs(theirs['s'])}; same: {same}" if up else \
        f"pymerkle: {theirs.get('missing') or theirs['status']}"
    floor = f.get("hash_floor", {})
    if up and "s" in floor:  # what no tree in this interpreter can beat: hashlib alone, same leaves and nodes
        text += f"; hashlib alone {secs(floor['s'])} = {theirs['s'] / floor['s']:.1f} x pymerkle"
    fig = mine if theirs["status"] in ("ok", "missing") else theirs  # no pymerkle: the figure alone, not judged
    out.append(_row("merkle", f"Merkle build + {min(PROOFS, n):,} proofs", fig, mine.get("s"), text,
                    ratio=up, accept=">= 10 x faster" if up or theirs["status"] != "missing" else "",
                    passes=lambda r: r >= 10, holds=same))
    crafted = f.get("crafted", {"status": "skipped", "wall_s": None})
    text = f"{crafted['findings']:,} findings listed, {crafted['finding_count']:,} in all; {secs(crafted['wall_s'])}" \
        if crafted["status"] == "ok" else ""
    out.append(_row("rss_crafted", f"peak RSS, {n:,} frames failing + {n:,} spans", crafted, crafted.get("rss_mb"),
                    text, unit="MB", ratio=crafted.get("rss_mb"), accept=f"<= {RSS_LIMIT_MB} MB",
                    passes=lambda r: r <= RSS_LIMIT_MB,
                    holds=crafted.get("verdict") == "invalid" and crafted.get("finding_count") == 2 * n))
    return out


def print_table(run: Args, opts: argparse.Namespace) -> None:
    print()
    print(f"StoneTrail verify benchmark: N = {run['records']:,} records ({run['bytes']:,} B); ledger sha256 "
          f"{run['sha256'][:16]}...; Python {sys.version.split()[0]}, {run['cores']} cores; timeout "
          f"{opts.timeout:g} s a figure")
    print_rows(run["rows"], lambda row: row["key"].startswith("bound_"), label=40, bound=56)
    judged = [r for r in run["rows"] if r["accept"] and r.get("shown") != "skipped"]
    skipped = sum(r.get("shown") == "skipped" for r in run["rows"])
    print(f"acceptance met: {sum(r['ok'] is True for r in judged)} of {len(judged)} lines; not built yet: "
          f"{sum(r['shown'] == 'not built yet' for r in run['rows'])}" + (f"; {skipped} rows skipped (--figures)"
                                                                        if skipped else ""))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", default="100000", help="ledger size N, or several: 100000,1000000")
    parser.add_argument("--workdir", type=Path, default=DEFAULT_WORKDIR, help="where ledgers are cached")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="generator worker processes")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="'all cores': bound and --jobs")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds a figure may take")
    parser.add_argument("--json", action="store_true", help="one JSON document on stdout instead of tables")
    parser.add_argument("--figures", default=",".join(FIGURES),
                        help=f"which figures, comma-separated, of {', '.join(FIGURES)} (default: all; resume also "
                             "runs the full audit it is compared with)")
    opts = parser.parse_args(argv)
    opts.figures = [g.strip() for g in opts.figures.split(",") if g.strip()]
    if not opts.figures or set(opts.figures) - set(FIGURES):
        parser.error(f"--figures: a comma-separated list of {', '.join(FIGURES)}")
    sizes = [int(s.replace("_", "")) for s in opts.records.split(",")]
    if any(n < 500 for n in sizes):
        parser.error("--records: each N must be >= 500")
    runs = [run for n in sizes if (run := run_size(n, opts)) is not None]
    for run in runs:
        run["rows"] = rows(run)
    if opts.json:
        print(json.dumps({"python": sys.version.split()[0], "cores": opts.cores, "runs": runs}, indent=1))
        return 0
    for run in runs:
        print_table(run, opts)
    if len(runs) > 1:
        print_growth(runs, label=40)
    return 0


if __name__ == "__main__":
    sys.exit(main())
