"""A ledger in a PostgreSQL database, for many writers at once (issue 12, docs/adr/0023-postgresql-store.md):
:mod:`~ledger.pg.db` (the connection, its errors, its tables) below :mod:`~ledger.pg.store` (the writer's
backend). ``ledger.Ledger.create`` / ``open`` take a ``postgresql://`` URL wherever they take a path."""

from .db import is_url
from .writer import PgBackend

__all__ = ["PgBackend", "is_url"]
