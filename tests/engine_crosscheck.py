"""A pytest plugin that checks, on every signature the test suite verifies in its own process, that every signature
engine gives the same outcome (nothing, or the same error code) — docs/adr/0021-libsodium-engine.md.

Run it over the whole suite (slower: each signature is verified once per engine)::

    PYTHONPATH=tests .venv/bin/pytest -q -p engine_crosscheck

The session fails if any signature got two outcomes; the summary says how many were compared. The tests that
replace an engine on purpose (tests/test_engines.py) are the only expected failures, so the plugin skips them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from ledger.errors import SignatureError
from ledger.keys import ENGINES, PublicKey, signature_engine

_REAL = PublicKey.verify
_SEEN: Counter[str] = Counter()
_DISAGREEMENTS: list[str] = []


def _code(key: PublicKey, signature: bytes, message: bytes) -> tuple[str, SignatureError | None]:
    try:
        _REAL(key, signature, message)
    except SignatureError as exc:
        return exc.code, exc
    return "ok", None


def _verify_with_every_engine(self: PublicKey, signature: bytes, message: bytes) -> None:
    outcomes = {}
    for name in ENGINES:
        with signature_engine(name):
            outcomes[name] = _code(self, signature, message)
    codes = {name: code for name, (code, _) in outcomes.items()}
    _SEEN[codes[ENGINES[0]]] += 1
    if len(set(codes.values())) > 1:
        _DISAGREEMENTS.append(f"{self!r} {bytes(signature).hex()[:16]}…: {codes}")
    error = outcomes[ENGINES[0]][1]
    if error is not None:
        raise error


def pytest_sessionstart(session: pytest.Session) -> None:
    PublicKey.verify = _verify_with_every_engine  # type: ignore[method-assign]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items[:] = [item for item in items if "test_engines.py" not in item.nodeid]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    terminalreporter.write_line(f"engine cross-check: {sum(_SEEN.values())} signatures, outcomes {dict(_SEEN)}, "
                                f"{len(_DISAGREEMENTS)} disagreements")
    for line in _DISAGREEMENTS[:20]:
        terminalreporter.write_line(f"  DISAGREE {line}")


def pytest_sessionfinish(session: pytest.Session) -> None:
    if _DISAGREEMENTS:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
