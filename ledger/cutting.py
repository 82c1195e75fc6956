"""Where a stone was cut: the country of origin after cutting of each part of an item, for customs (issue 14).

A **cut** is a ``split`` that declares a loss: cutting and polishing always lose weight (DOMAIN.md R10,
"polished lighter than rough"), while sorting a parcel (rough or polished) into lots or single stones loses
none. The country of origin of goods that were cut is the country of their *first* cut (the substantial
transformation of rough into polished); re-sorting, merging or re-splitting polished goods later does not move
it. Goods never cut keep their country of mining (or of growth) as their origin.

An item's **lines** are the paths from each root of its provenance (``mined``, ``grown``, ``registered``) through
the splits and merges to it. Each line has one mining country (its root's) and one origin (its first cut's place,
or none). A merged parcel of parts cut in two countries has two origins; a US entry line per country of mining
lists the origins of the lines from that country. Pure: the edges and roots come from a verified bundle.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["Cut", "Line", "line_key", "lines_of"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Cut:
    """The first cut of a line: the ``split`` record at ``position``, in ``place``, that made ``child``."""

    position: int
    place: str
    child: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Line:
    """One kind of line to the item: from a root in ``mining`` (a country code, XX unknown), first cut by ``cut``
    (None: never cut)."""

    mining: str
    cut: Cut | None

    @property
    def origin(self) -> str:
        """The country of origin after cutting: the first cut's place, else the country of mining."""
        return self.cut.place if self.cut is not None else self.mining


def lines_of(item: str, edges: Iterable[tuple[int, str, str, Sequence[str], str, int]],
             roots: Mapping[str, str]) -> tuple[Line, ...]:
    """The distinct lines to ``item``, sorted: ``edges`` are (position, kind, place, parents, child, declared loss
    in mct) for the ``split`` and ``merged`` records of its provenance (others are ignored), ``roots`` the
    country of each root item. One pass in log order (a record's parents were made before it), each node's lines
    kept once, so a shared or deep ancestry costs its size, never a recursion."""
    lines: dict[str, set[Line]] = {node: {Line(mining=country, cut=None)} for node, country in roots.items()}
    for position, kind, place, parents, child, loss in sorted(edges, key=lambda edge: edge[0]):
        if kind not in ("split", "merged"):
            continue
        this = Cut(position=position, place=place, child=child) if kind == "split" and loss > 0 else None
        into = lines.setdefault(child, set())
        for parent in parents:
            into.update(Line(mining=line.mining, cut=line.cut or this) for line in lines.get(parent, ()))
    return tuple(sorted(lines.get(item, ()), key=line_key))


def line_key(line: Line) -> tuple[str, str, int]:
    """Lines in order: by country of mining, then origin, then the cut's position (never cut first)."""
    return line.mining, line.origin, line.cut.position if line.cut else -1
