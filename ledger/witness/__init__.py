"""A C2SP tlog-witness: the server that cosigns checkpoints (:mod:`.protocol`, :mod:`.state`, :mod:`.server`),
and the log's side that gathers cosignatures (:mod:`.gather`, :mod:`.proofs`). docs/format.md §7e."""

from __future__ import annotations

from .gather import Gathered, WitnessAnswer, gather
from .logs import KnownLogs, LogsFileError, origin_hash
from .proofs import ledger_proofs
from .protocol import AddCheckpoint, Answer, RequestError, format_add_checkpoint, parse_add_checkpoint
from .server import WitnessServer
from .state import WitnessState

__all__ = ["AddCheckpoint", "Answer", "Gathered", "KnownLogs", "LogsFileError", "RequestError", "WitnessAnswer",
           "WitnessServer", "WitnessState", "format_add_checkpoint", "gather", "ledger_proofs", "origin_hash",
           "parse_add_checkpoint"]
