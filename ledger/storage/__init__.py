"""Storage: the bytes of a ledger and what is derived from them (DESIGN.md §6).

Layers, bottom up: :mod:`~ledger.storage.framing` (the file's header and frames, no I/O),
:mod:`~ledger.storage.filestore` (the append-only file: append, fsync, lock, scan, repair). The log is the truth;
everything else here is derived from it and rebuildable.
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
    Repaired,
    ScanResult,
    StoreProblem,
    repair,
    scan,
)

__all__ = ["BATCH_MAGIC", "FORMAT_VERSION", "FRAME_MAGIC", "MAGIC", "MAX_RECORD_SIZE", "FileStore", "Frame",
           "FrameFile", "Repaired", "ScanResult", "StoreProblem", "repair", "scan"]
