"""What a checkpoint commits to beyond its tree, from the log's records: the item heads (:mod:`ledger.heads`) and
the identities (:mod:`ledger.identity`), with the one check that a checkpoint's lines are the log's.

Pure: records in log order in, extension lines and verdicts out. The writer (:class:`ledger.Ledger`), the file
signer (:func:`ledger.checkpoint_file`), the exporter and the audit all collect through :class:`Commitments`, so
what is signed and what is checked are computed by one piece of code.
"""

from __future__ import annotations

from typing import Generic, Protocol, TypeVar

from .checkpoint import Checkpoint
from .errors import InputError, StoneTrailError, VerificationError
from .hashing import Digest
from .heads import HEADS_EXTENSION, ItemHeads, checkpoint_heads
from .identity import IDENTITIES_EXTENSION, IdentityIndex, checkpoint_identities
from .record import Record

__all__ = ["Commitments", "Committed", "CommittedOver", "line_problems"]


class Commitments:
    """The item heads and identities of records added in log order (:meth:`add`)."""

    def __init__(self, heads: ItemHeads | None = None) -> None:
        """``heads``: the item heads to collect into (counted, or with their record map on disk: an audit's),
        else new ones."""
        self.heads = ItemHeads() if heads is None else heads
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
            VerificationError / NoteFormatError: the first of :meth:`problems`.
        """
        for problem in self.problems(cp):
            raise problem

    def problems(self, cp: Checkpoint) -> list[StoneTrailError]:
        """Every way ``cp``'s heads and identities lines are not these (:func:`line_problems`)."""
        return line_problems(cp, self.heads, self.identities)


class Committed(Protocol):
    """A tree a checkpoint line commits to: its leaf count, root and line."""

    def __len__(self) -> int: ...

    def root(self) -> Digest: ...

    def extension(self) -> str: ...


_T = TypeVar("_T", bound=Committed)


class CommittedOver(Generic[_T]):
    """A :class:`Committed` that answers from the tree it wraps (a read side's stored or fetched tree): the base
    of the read sides' item-head and identity trees, which read more of ``_tree``."""

    def __init__(self, tree: _T) -> None:
        self._tree = tree

    def __len__(self) -> int:
        return len(self._tree)

    def root(self) -> Digest:
        return self._tree.root()

    def extension(self) -> str:
        return self._tree.extension()


def line_problems(cp: Checkpoint, heads: Committed, identities: Committed) -> list[StoneTrailError]:
    """Every way ``cp``'s heads and identities lines are not ``heads``' and ``identities``': ``checkpoint.
    heads_missing`` / ``checkpoint.heads_mismatch``, ``checkpoint.identities_missing`` /
    ``checkpoint.identities_mismatch`` (VerificationError), ``checkpoint.extension`` (NoteFormatError: a
    malformed line, or two)."""
    lines = ((checkpoint_heads, HEADS_EXTENSION, heads, "name the items' latest records"),
             (checkpoint_identities, IDENTITIES_EXTENSION, identities,
              "list who claimed each item id, report number and inscription"))
    found: list[StoneTrailError] = []
    for read, word, mine, what in lines:
        try:
            claimed = read(cp)
        except (InputError, VerificationError) as exc:
            found.append(exc)
            continue
        if claimed != (len(mine), mine.root()):
            found.append(VerificationError(
                f"the checkpoint's {word} line is not the log's ({mine.extension()}): it does not {what}",
                code=f"checkpoint.{word.removeprefix('stonetrail-')}_mismatch"))
    return found
