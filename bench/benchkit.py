"""Helpers shared by the benchmarks: measure one process (wall time, its own peak RSS, a timeout), read a ledger
file's payloads streaming, and give a run its own copy of a cached ledger.

The streaming reader is the benchmarks' bound, not the library's reader: it parses the frames of
docs/format.md §8 with nothing else (header, then magic, length, CRC32 and payload per frame), so a slow or
memory-hungry library read never makes its own bound look cheaper. It refuses damage instead of reporting it:
the bench ledgers are undamaged.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import struct
import subprocess
import tempfile
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.storage import BATCH_MAGIC, FRAME_MAGIC, MAGIC

__all__ = ["Run", "payloads", "run_process", "scratch_copy", "space_for"]

_HEAD = struct.Struct(">8sHH")  # magic, version, origin length; then the origin and a CRC32
_FRAME = struct.Struct(">4sII")  # magic, payload length, payload CRC32
MB = 1_000_000  # bytes: the acceptance bounds are in MB


@dataclass(frozen=True, slots=True)
class Run:
    """One finished (or killed) process: ``wall_s`` from start to exit (seconds), ``rss_mb`` its own peak
    resident set (MB, ``ru_maxrss`` of that process alone, from ``wait4``), ``status`` its exit code (None when
    it was killed at the timeout), its stdout and stderr."""

    wall_s: float
    rss_mb: float
    status: int | None
    stdout: str
    stderr: str

    @property
    def timed_out(self) -> bool:
        return self.status is None


def run_process(argv: Sequence[str], timeout: float | None) -> Run:
    """Run ``argv`` (stdin empty, output to temporary files) and wait for it; after ``timeout`` seconds (None:
    no limit) kill its process group. The peak RSS is the child's own: ``os.wait4`` returns the usage of that one
    child, as ``getrusage(RUSAGE_CHILDREN)`` would in a parent that had no other."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        killed = threading.Event()
        start = time.perf_counter()
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                start_new_session=True)
        timer = threading.Timer(timeout, _kill, (proc.pid, killed)) if timeout is not None else None
        if timer is not None:
            timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            if timer is not None:
                timer.cancel()
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
        out.seek(0)
        err.seek(0)
        return Run(wall_s=wall, rss_mb=usage.ru_maxrss * 1024 / MB,  # Linux: ru_maxrss in KiB
                   status=None if killed.is_set() else proc.returncode,
                   stdout=out.read().decode(errors="replace"), stderr=err.read().decode(errors="replace"))


def _kill(pid: int, killed: threading.Event) -> None:
    killed.set()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)  # the child leads its own session: only it and what it started


def payloads(path: str | Path) -> Iterator[bytes]:
    """Every record payload of the ledger file at ``path``, in order, read through a 1 MiB buffer (memory
    independent of the file size), each frame's CRC32 checked. Raises ValueError on any damage."""
    with open(path, "rb", buffering=1 << 20) as fh:
        magic, _, origin_len = _HEAD.unpack(fh.read(_HEAD.size))
        if magic != MAGIC:
            raise ValueError(f"{path} is not a ledger file")
        fh.read(origin_len + 4)
        offset = _HEAD.size + origin_len + 4
        while header := fh.read(_FRAME.size):
            magic, length, crc = _FRAME.unpack(header)
            payload = fh.read(length)
            if magic not in (FRAME_MAGIC, BATCH_MAGIC) or len(payload) != length or zlib.crc32(payload) != crc:
                raise ValueError(f"{path}: damaged frame at offset {offset}")
            offset += _FRAME.size + length
            yield payload


def scratch_copy(source: Path, directory: Path) -> Path:
    """A fresh copy of the ledger ``source`` in the emptied ``directory`` (so that whatever a run appends, and
    the index files it leaves beside the copy, never touch the cached ledger)."""
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    target = directory / "bench.ledger"
    shutil.copyfile(source, target)
    return target


def space_for(directory: Path, needed: int) -> bool:
    """Whether the file system of ``directory`` (or of its nearest existing parent) has ``needed`` bytes free."""
    existing = directory
    while not existing.exists():
        existing = existing.parent
    return shutil.disk_usage(existing).free >= needed


def verdict(row: dict[str, Any], bound: bool) -> str:
    """A table row's verdict: ``bound`` for a bound row, else ok / FAIL (with what missed) / - (not judged)."""
    if bound:
        return "bound"
    if row["ok"] is False and row.get("misses"):
        return "FAIL: " + ", ".join(row["misses"])
    return {True: "ok", False: "FAIL"}.get(row["ok"], "-")


def print_rows(rows: Sequence[dict[str, Any]], is_bound: Callable[[dict[str, Any]], bool], *, label: int,
               bound: int) -> None:
    """The figure table: each row's value beside its same-run bound, ratio (none for a figure in MB),
    acceptance, peak RSS ("+": the figure was killed) and verdict; ``label`` and ``bound``: column widths."""
    line = f"{{:<{label}}} {{:>14}}  {{:<{bound}}} {{:>7}}  {{:<15}} {{:>8}}  {{}}"
    print(line.format("figure", "value", "bound (measured in this run)", "ratio", "acceptance", "RSS MB", "verdict"))
    print("-" * (label + bound + 60))
    for row in rows:
        ratio = "" if row["ratio"] is None or row.get("unit") == "MB" else f"{row['ratio']:.2f}"
        rss = "" if row["rss_mb"] is None else f"{row['rss_mb']:,.0f}" + ("+" if row["value"] is None else "")
        print(line.format(row["label"], row["shown"], row["bound_text"], ratio, row["accept"], rss,
                          verdict(row, is_bound(row))))
        if row["error"]:
            print(f"{'':<{label}} error: {row['error']}")


def print_growth(runs: Sequence[dict[str, Any]], *, label: int) -> None:
    """Each figure at every N, and its growth from the smallest N to the largest."""
    first, last = runs[0], runs[-1]
    print()
    print(f"growth from N = {first['records']:,} to {last['records']:,} (x{last['records'] / first['records']:g})")
    print(f"{'figure':<{label}}" + "".join(f" {'N = ' + format(r['records'], ','):>16}" for r in runs)
          + f"  {'ratio':>8}")
    for i, row in enumerate(first["rows"]):
        cells = [r["rows"][i] for r in runs]
        a, b = cells[0]["value"], cells[-1]["value"]
        grown = f"{b / a:.2f}" if a and b else ""
        print(f"{row['label']:<{label}}" + "".join(f" {c['shown']:>16}" for c in cells) + f"  {grown:>8}")


def run_figure(figures: dict[str, Callable[[dict[str, Any]], dict[str, Any]]], argv: list[str]) -> int:
    """A figures module's command line: ``NAME JSON-ARGS`` -> the figure's result as one JSON line."""
    name, args = argv
    print(json.dumps(figures[name](json.loads(args))))
    return 0
