"""Copies of the demo's files for a test to change, each ledger with an index of its own."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from ledger import Trust
from ledger.index import rebuild_index


def copy_demo(demo: Path, to: Path, names: Iterable[str] = ("demo.ledger", "trust.keys", "checkpoint.txt")) -> Path:
    """Copy the demo's files ``names`` (a folder: all of it) into the folder ``to`` (made if missing); the copied
    ledger's index is built anew for it (an index copied with its ledger is another file's, docs/format.md §8.2:
    a writer would rebuild it, a reader would not use it). Returns ``to``."""
    if names == "*":
        shutil.copytree(demo, to)
    else:
        to.mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copy(demo / name, to / name)
    rebuild_index(to / "demo.ledger", Trust.parse((demo / "trust.keys").read_text()).authority_keys)
    return to
