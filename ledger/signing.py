"""Signing a checkpoint of a ledger file as it is (``stonetrail checkpoint``): through the ledger's persistent
index when it covers the file and its tree is the log's (O(new work): the records since this signer's last
checkpoint through the index, :mod:`ledger.index.anchor`), else through one pass over the log
(:func:`ledger.reader.checkpoint_file`). Both sign the same bytes (tests/test_index.py).
"""

from __future__ import annotations

from pathlib import Path

from .heads import HEADS_EXTENSION
from .index.anchor import anchor_text, check_tree, keep_anchor_beside
from .index.maps import IndexDamaged
from .index.reading import IndexedLog, indexed_log, through_index
from .index.snapshot import tree_line
from .keys import PrivateKey, note_verifier_key
from .note import sign_note
from .pg.db import is_url
from .pg.store import pg_view
from .reader import Progress, sign_log
from .reader import checkpoint_file as checkpoint_log
from .trust import Trust

__all__ = ["checkpoint_file"]


def checkpoint_file(path: str | Path, key: PrivateKey, name: str | None = None, *, trust: Trust | None = None,
                    progress: Progress | None = None) -> str:
    """Sign a C2SP checkpoint of the ledger file at ``path`` (or the database ledger at a ``postgresql://`` URL)
    as it is now, without locking
    (:func:`ledger.reader.checkpoint_file` says what is checked and raised). ``progress(done, total)``: as the
    log is read (from the index's anchor on, when the index answers)."""
    if is_url(path):  # a database ledger answers from its tables (docs/adr/0023-postgresql-store.md)
        with pg_view(str(path)) as view:
            signed: tuple[int, str] | None = (view.tree.size, sign_log(view, key, name, trust=trust))
    else:
        through = through_index(indexed_log(path), lambda log: _sign(log, key, name, trust, progress))
        signed = None if through is None else through[:2]
        if through is not None:
            keep_anchor_beside(path, through[2])
    if signed is None:
        return checkpoint_log(path, key, name, trust=trust, progress=progress)
    if progress is not None:
        progress(signed[0], signed[0])
    return signed[1]


def _sign(log: IndexedLog, key: PrivateKey, name: str | None, trust: Trust | None, progress: Progress | None
          ) -> tuple[int, str, str]:
    """(tree size, :func:`~ledger.reader.sign_log` of ``log``, the anchor to keep) once its tree is the log's
    (:func:`ledger.index.anchor.check_tree`, from the anchor this signer left: IndexDamaged otherwise, and the
    caller reads the log)."""
    signer = name or log.origin
    checked = check_tree(log.index, note_verifier_key(signer, key.public_key), progress)
    heads = tree_line(HEADS_EXTENSION, checked.trees[0])
    if log.commitments.heads.extension() != heads or log.tree.root_at(log.tree.size) != checked.root:
        raise IndexDamaged(f"{log.index.db.path}: its trees are not the ones the log's records give")
    note = sign_log(log, key, name, trust=trust)
    return log.tree.size, note, sign_note(anchor_text(log.index, checked.prefix, checked.root, heads),
                                          [(signer, key)])
