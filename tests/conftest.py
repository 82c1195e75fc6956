"""Fixtures shared by the test files.

PostgreSQL (issue 12): `postgres_url` gives a test a fresh, empty database of its own, as a libpq URL
(postgresql://USER@HOST:PORT/DB), on one server per session, found in this order:
- the URL in STONETRAIL_TEST_POSTGRES, of a role allowed to create databases, on PostgreSQL 13 or newer (CI sets it:
  .ci/run starts a throw-away server with .ci/postgres);
- otherwise, when CI is set, the test fails: CI must run the PostgreSQL tests;
- otherwise a private server started with `.ci/postgres start DIR --no-install` for the session and stopped at its
  end; when that is impossible (no server binaries, psycopg not installed), the test skips, saying why.
Each test that uses it is marked `@pytest.mark.postgres`.
"""

from __future__ import annotations

import importlib.util
import itertools
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn
from urllib.parse import urlsplit

import pytest

from ledger import build_demo

POSTGRES_ENV = "STONETRAIL_TEST_POSTGRES"
_SERVER_SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "postgres"
# Databases of this session: stonetrail_test_<session>_<n>, so that a test can tell them from other sessions'.
_DATABASE_PREFIX = f"stonetrail_test_{uuid.uuid4().hex[:8]}_"
_database_numbers = itertools.count(1)


def pytest_configure(config: pytest.Config) -> None:
    """In CI, a missing psycopg fails the run (the test files would otherwise skip on importing it)."""
    if os.environ.get("CI") and importlib.util.find_spec("psycopg") is None:
        raise pytest.UsageError("CI: psycopg is not installed (pip install -e '.[dev]'); the PostgreSQL tests need it")


def _unavailable(reason: str) -> NoReturn:
    """Fails in CI, skips elsewhere: only a developer's machine without a server may skip the PostgreSQL tests."""
    if os.environ.get("CI"):
        pytest.fail(f"CI: no PostgreSQL server for the tests: {reason}", pytrace=False)
    pytest.skip(f"no PostgreSQL server for the tests: {reason} (or set {POSTGRES_ENV} to a server's URL)")


def _start_private_server(directory: str) -> str:
    """Starts a throw-away server in `directory` with .ci/postgres (which bounds its waits); returns its URL."""
    started = subprocess.run(
        [str(_SERVER_SCRIPT), "start", directory, "--no-install"], capture_output=True, text=True, check=False
    )
    if started.returncode != 0:
        shutil.rmtree(directory, ignore_errors=True)  # .ci/postgres leaves no server; an early refusal leaves DIR
        _unavailable(started.stderr.strip().splitlines()[-1] if started.stderr.strip() else "`.ci/postgres` failed")
    return started.stdout.strip()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """The libpq URL of the session's PostgreSQL server (a role allowed to create databases); see the module."""
    if importlib.util.find_spec("psycopg") is None:
        _unavailable("psycopg is not installed (pip install -e '.[postgres]')")
    url = os.environ.get(POSTGRES_ENV)
    if url:
        if urlsplit(url).scheme not in ("postgresql", "postgres"):
            pytest.fail(f"{POSTGRES_ENV} must be a postgresql:// URL, got {url!r}", pytrace=False)
        yield url
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI: {POSTGRES_ENV} is unset (.ci/run starts the server and sets it)", pytrace=False)
    directory = tempfile.mkdtemp(prefix="stonetrail-pg-")
    url = _start_private_server(directory)
    try:
        yield url
    finally:
        subprocess.run([str(_SERVER_SCRIPT), "stop", directory], check=False)


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database for one test (CREATE DATABASE from template0), dropped after it even if a connection
    is still open (DROP DATABASE ... WITH (FORCE), PostgreSQL 13+). Its name is stonetrail_test_<session>_<n>."""
    import psycopg
    from psycopg import sql

    name = f"{_DATABASE_PREFIX}{next(_database_numbers)}"
    with psycopg.connect(postgres_server, autocommit=True, connect_timeout=30) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))
    try:
        yield urlsplit(postgres_server)._replace(path=f"/{name}").geturl()
    finally:
        with psycopg.connect(postgres_server, autocommit=True, connect_timeout=30) as admin:
            for attempt in range(50):  # a process the role cannot end (an autovacuum worker) ends by itself
                try:
                    admin.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
                    break
                except psycopg.errors.InsufficientPrivilege:
                    if attempt == 49:
                        raise
                    time.sleep(0.1)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo ledger's folder (``build_demo``), built once per test module; tests copy what they change."""
    out = tmp_path_factory.mktemp("demo") / "d"
    build_demo(out)
    return out
