"""Origin compositions: {ISO country: millicarats}, inherited by splits, summed by merges (DESIGN.md §3).

A stone taken from a mixed parcel carries every country of the parcel (taint): shares are proportional to mass,
but a country never drops out, even with a share of 0 mct. ``XX`` (ISO 3166-1 user-assigned) marks an unknown
origin, e.g. a recovered stone with no history.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["UNKNOWN", "merge_origins", "split_origin"]

#: The country code of an unknown origin (a provenance gap).
UNKNOWN = "XX"


def split_origin(origin: dict[str, int], masses: list[int]) -> list[dict[str, int]]:
    """Share an origin composition among outputs in proportion to their masses (millicarats).

    Each output's composition sums to its own mass; integer shares use the largest-remainder method with ties
    broken by country code, so the result is deterministic and float-free. Every country of the input appears
    in every output, with a share of at least 0.
    """
    total = sum(origin.values())
    result = []
    for mass in masses:
        exact = {c: m * mass for c, m in origin.items()}
        share = {c: v // total for c, v in exact.items()} if total else dict.fromkeys(origin, 0)
        left = mass - sum(share.values())
        for c in sorted(origin, key=lambda c: (-(exact[c] % total if total else 0), c))[:max(left, 0)]:
            share[c] += 1
        result.append(share)
    return result


def merge_origins(origins: Iterable[dict[str, int]], mass: int) -> dict[str, int]:
    """The composition of a parcel of ``mass`` mct merged from items with ``origins``: their sum, scaled to
    ``mass`` as :func:`split_origin` does (every country kept)."""
    total: dict[str, int] = {}
    for origin in origins:
        for country, share in origin.items():
            total[country] = total.get(country, 0) + share
    return split_origin(total, [mass])[0]
