"""Words and numbers for people, shared by the annex and the report: per cents of integer masses, country codes,
natures, and CSV cells a spreadsheet will not run. Pure."""

from __future__ import annotations

__all__ = ["country_words", "csv_cell", "nature_words", "percents", "safe_cell"]


def percents(parts: list[int]) -> list[str]:
    """Each of ``parts`` in per cent of their sum with one decimal, summing to exactly 100.0 (largest remainder:
    the tenths lost to rounding down go to the parts that lost most, earlier parts first on a tie)."""
    whole = sum(parts)
    if not whole:
        return ["0.0" for _ in parts]
    tenths = [part * 1000 // whole for part in parts]
    order = sorted(range(len(parts)), key=lambda i: (-(parts[i] * 1000 % whole), i))
    for i in order[:1000 - sum(tenths)]:
        tenths[i] += 1
    return [f"{t // 10}.{t % 10}" for t in tenths]


def country_words(country: str) -> str:
    """A country code for people: ``XX`` (no recorded origin) is "unknown (XX)"."""
    return f"unknown ({country})" if country == "XX" else country


def nature_words(nature: str) -> str:
    """``natural`` or ``laboratory-grown`` (for ``lab_grown``)."""
    return "laboratory-grown" if nature == "lab_grown" else nature.replace("_", "-")


def csv_cell(value: object) -> str:
    return safe_cell(" ".join(value) if isinstance(value, list) else str(value))


def safe_cell(text: str) -> str:
    """A CSV cell a spreadsheet will not run: one starting with ``=``, ``+``, ``-``, ``@``, tab or CR gets a
    leading apostrophe (OWASP, "CSV injection"); no record text can start so, a ledger's origin can."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text
