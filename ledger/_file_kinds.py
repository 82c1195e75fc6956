"""What a file given in the wrong place is, from its first bytes: the project's own formats (docs/format.md §7,
§7b.1, §8, §9.1), so that an error names what the user gave instead of what it is not."""

from __future__ import annotations

import re

__all__ = ["BINARY_KINDS", "binary_kind", "text_kind"]

#: The start of the project's binary files, and what a file that starts so is.
BINARY_KINDS = ((b"stonetrail/v1/bundle\n", "a proof bundle"), (b"stonetrail/v1/evidence\n", "an evidence file"),
                (b"STNTRAIL", "a ledger file"), (b"stonetrail-audit-state ", "an audit state file"),
                (b"SQLite format 3\x00", "a ledger's index (an SQLite file)"))

#: What a text file of the project's other kinds is, by a line only that kind has: a checkpoint by its signature
#: lines, or by its first three lines (origin, tree size, root: all a read of a file's first bytes may see).
_TEXT_KINDS = ((re.compile(r"^(operator|authority) \S+\+[0-9a-f]{8}\+", re.MULTILINE), "a trust file"),
               (re.compile(r"^-----BEGIN [A-Z ]*PRIVATE KEY-----", re.MULTILINE), "a private key file"),
               (re.compile(r"\Astonetrail/v1/consistency-proof\n"), "a consistency proof"),
               (re.compile(r"\n\n(\u2014 \S+ \S+\n)+\Z"), "a checkpoint"),
               (re.compile(r"\A[!-~]+\n[0-9]+\n[A-Za-z0-9+/]{43}=\n"), "a checkpoint"),
               (re.compile(r'<meta name="generator" content="StoneTrail">'),
                "a provenance report page, HTML written by 'stonetrail proof report'"))


def binary_kind(data: bytes) -> str | None:
    """What the binary file starting with ``data`` is (``"a proof bundle"``, ``"an evidence file"``, ``"a ledger
    file"``, an audit state, a ledger's index), if it is one of the project's kinds; None otherwise."""
    return next((what for tag, what in BINARY_KINDS if data.startswith(tag)), None)


def text_kind(text: str) -> str | None:
    """What the text file ``text`` (or its start) is, if it is one of the project's kinds (``"a trust file"``, ``"a
    private key file"``, ``"a consistency proof"``, ``"a checkpoint"``: a signed note; a provenance report page);
    None otherwise."""
    return next((kind for pattern, kind in _TEXT_KINDS if pattern.search(text)), None)
