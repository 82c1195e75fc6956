"""What a checkpoint commits to beyond its tree, from the log's records: the item heads (:mod:`ledger.heads`) and
the identities (:mod:`ledger.identity`), with the one check that a checkpoint's lines are the log's.

Pure: records in log order in, extension lines and verdicts out. The writer (:class:`ledger.Ledger`), the file
signer (:func:`ledger.checkpoint_file`), the exporter and the audit all collect through :class:`Commitments`, so
what is signed and what is checked are computed by one piece of code.
"""

from __future__ import annotations

from .checkpoint import Checkpoint
from .errors import VerificationError
from .heads import HEADS_EXTENSION, ItemHeads, checkpoint_heads
from .identity import IDENTITIES_EXTENSION, IdentityIndex, checkpoint_identities
from .record import Record

__all__ = ["Commitments"]


class Commitments:
    """The item heads and identities of records added in log order (:meth:`add`)."""

    def __init__(self) -> None:
        self.heads = ItemHeads()
        self.identities = IdentityIndex()

    def add(self, position: int, record: Record) -> frozenset[str]:
        """Add ``record`` at leaf index ``position`` (after every record added so far); return the items it is a
        record of (:meth:`ledger.heads.ItemHeads.add`)."""
        self.identities.add(position, record)
        return self.heads.add(position, record)

    def extensions(self) -> tuple[str, str]:
        """The checkpoint's ``stonetrail-heads`` and ``stonetrail-identities`` lines (docs/format.md §7c, §7d)."""
        return self.heads.extension(), self.identities.extension()

    def check(self, cp: Checkpoint) -> None:
        """Check that ``cp``'s heads and identities lines are these (``cp`` of the same records).

        Raises:
            VerificationError: ``checkpoint.heads_missing`` / ``checkpoint.heads_mismatch``,
                ``checkpoint.identities_missing`` / ``checkpoint.identities_mismatch``.
            NoteFormatError: ``checkpoint.extension`` (a malformed line, or two).
        """
        if checkpoint_heads(cp) != (len(self.heads), self.heads.root()):
            raise VerificationError(f"the checkpoint's {HEADS_EXTENSION} line is not the log's "
                                    f"({self.heads.extension()}): it does not name the items' latest records",
                                    code="checkpoint.heads_mismatch")
        if checkpoint_identities(cp) != (len(self.identities), self.identities.root()):
            raise VerificationError(f"the checkpoint's {IDENTITIES_EXTENSION} line is not the log's "
                                    f"({self.identities.extension()}): it does not list who claimed each item id, "
                                    "report number and inscription", code="checkpoint.identities_mismatch")
