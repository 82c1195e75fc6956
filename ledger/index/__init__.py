"""The persistent index beside a ledger file: derived from the log, rebuildable from it at any time, checked
against it on open and never trusted for what is signed (DESIGN.md §6, docs/adr/0018-sqlite-index.md).

Layers, bottom up: :mod:`~ledger.index.sql` (the SQL SQLite and PostgreSQL share), :mod:`~ledger.index.maps` (a
mapping kept in one checksummed table), :mod:`~ledger.index.state` (the custody replay's dictionaries as such
tables), :mod:`~ledger.index.snapshot` (the checkpoint's sorted trees at a signed size), :mod:`~ledger.index.db`
(the file, its schema, frames, tiles, registry), :mod:`~ledger.index.indexed` (check, apply, commit: the writer's
side), :mod:`~ledger.index.opening` (open, catch up, rebuild), :mod:`~ledger.index.heads_check` and
:mod:`~ledger.index.anchor` (the tree, registry and item heads checked against the log before a checkpoint is
signed from them) and :mod:`~ledger.index.reading` (the read side over the index, for export, show and checkpoint
signing).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..storage import FileStore
from .db import index_path
from .indexed import LogFile
from .opening import Progress, build_index, discard_index
from .reading import IndexedLog, indexed_log

__all__ = ["IndexedLog", "discard_index", "index_path", "indexed_log", "rebuild_index"]


def rebuild_index(ledger_path: str | Path, authority_keys: Iterable[bytes], *,
                  progress: Progress | None = None, checked: bool = False) -> None:
    """Build the index of the ledger at ``ledger_path`` anew from its log, holding the writer lock meanwhile
    (``progress(records done, records in all)`` as records are applied). The log's custody records are taken as
    the writer checked them when it appended them (docs/adr/0020-trusted-rebuild.md); ``checked`` checks each
    again, signatures included, as the writer checks a new one (~4x slower: an audit's worth of work).

    Raises:
        LockedError: a writer holds the ledger. CorruptStoreError: damage in the log; InvalidLedgerError (a
        CorruptStoreError): a record that breaks a rule (run an audit). StorageError: the index cannot be written.
    """
    with FileStore.open(ledger_path, writable=True, survey=False) as store:
        build_index(LogFile.open(store.path, store.origin), authority_keys, progress=progress,
                    checked=checked).close()
