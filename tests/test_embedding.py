"""docs/embedding.md must run: its Python blocks are executed in order, in one namespace, in a fresh directory."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "embedding.md"


def test_the_embedding_guide_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 5
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    for number, block in enumerate(blocks, start=1):
        exec(compile(block, f"{GUIDE}#block{number}", "exec"), namespace)
    written = set(os.listdir(tmp_path))  # the guide wrote its files here, not beside the repository
    assert {"stones.ledger", "trust.keys", "checkpoint.txt", "operator.pem"} <= written
