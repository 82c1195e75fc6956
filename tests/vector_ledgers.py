"""The conformance vectors' ledger (tests/vectors/ledger.bin) with bytes appended as an insider operator can,
for the tests that audit it in several ways (parallel, incremental, engines, cluster)."""

from __future__ import annotations

import shutil
from pathlib import Path

from ledger import Trust
from ledger.storage import FileStore

VECTORS = Path(__file__).resolve().parent / "vectors"
TRUST = Trust.parse((VECTORS / "trust.keys").read_text(encoding="utf-8"))


def insider(tmp_path: Path, name: str, payloads: list[bytes]) -> Path:
    """ledger.bin copied to ``tmp_path / name`` with ``payloads`` appended as the operator can: any bytes, no rule
    checked."""
    path = tmp_path / name
    shutil.copy(VECTORS / "ledger.bin", path)
    with FileStore.open(path, writable=True) as store:
        for payload in payloads:
            store.append(payload)
    return path
