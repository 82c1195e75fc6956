"""Whether a ledger location is a PostgreSQL URL, and a URL without its password: the two things every command
asks of a location before it opens anything (no database driver, no index imported here)."""

from __future__ import annotations

import re

__all__ = ["is_url", "redact"]

_URL = re.compile(r"^postgres(ql)?://", re.IGNORECASE)
_PASSWORD = re.compile(r"(://[^:/@]*:)[^@]*@")
_QUERY_PASSWORD = re.compile(r"([?&]password=)[^&]*", re.IGNORECASE)


def is_url(location: object) -> bool:
    """True if ``location`` is a ``postgresql://`` (or ``postgres://``) URL rather than a file path."""
    return isinstance(location, str) and bool(_URL.match(location))


def redact(url: str) -> str:
    """``url`` without its password (for messages): in the authority (``user:PASSWORD@``) and as a query
    parameter (``?password=…``)."""
    return _QUERY_PASSWORD.sub(r"\1***", _PASSWORD.sub(r"\1***@", url))
