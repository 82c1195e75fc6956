"""Storage: the bytes of a ledger and what is derived from them (DESIGN.md §6).

Layers, bottom up: :mod:`~ledger.storage.window`, :mod:`~ledger.storage.header` (the file's header) and
:mod:`~ledger.storage.framing` (its frames, read in bounded memory; neither does I/O of its own),
:mod:`~ledger.storage.frames` (frames packed for an append and read back without a survey),
:mod:`~ledger.storage.filestore` (the append-only file: append, fsync, lock, scan), :mod:`~ledger.storage.repair`
(a torn tail moved aside) and :mod:`~ledger.storage.tiles` (the Merkle node hashes as C2SP tlog-tiles). The log
is the truth; everything else is derived from it and rebuildable.
"""

from .filestore import (
    BATCH_MAGIC,
    FORMAT_VERSION,
    FRAME_MAGIC,
    MAGIC,
    MAX_RECORD_SIZE,
    FileStore,
    Frame,
    FrameFile,
    ScanResult,
    StoreProblem,
    origin_of,
    scan,
)
from .repair import Repaired, repair

__all__ = ["BATCH_MAGIC", "FORMAT_VERSION", "FRAME_MAGIC", "MAGIC", "MAX_RECORD_SIZE", "FileStore", "Frame",
           "FrameFile", "Repaired", "ScanResult", "StoreProblem", "origin_of", "repair", "scan"]
