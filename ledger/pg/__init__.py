"""A ledger in a PostgreSQL database, for many writers at once (issue 12, docs/adr/0023-postgresql-store.md):
:mod:`~ledger.pg.db` (the connection, its errors, its tables) below :mod:`~ledger.pg.store` (the writer's
backend). ``ledger.Ledger.create`` / ``open`` take a ``postgresql://`` URL wherever they take a path."""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .url import is_url
    from .writer import PgBackend

__all__ = ["PgBackend", "is_url"]


def __getattr__(name: str) -> Any:
    """The names above, imported when first used (PEP 562): asking whether a location is a URL
    (:mod:`ledger.pg.url`) loads neither the writer nor the index."""
    if name == "is_url":
        from .url import is_url
        return is_url
    if name == "PgBackend":
        from .writer import PgBackend
        return PgBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
