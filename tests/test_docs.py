"""docs/format.md's worked example must still produce the bytes and hashes the document states."""

from __future__ import annotations

import base64
import contextlib
import io
import re
from pathlib import Path

FORMAT = Path(__file__).resolve().parents[1] / "docs" / "format.md"


def test_worked_example_matches_the_document() -> None:
    text = FORMAT.read_text(encoding="utf-8")
    example = text[text.index("## 12. Worked example"):]
    code = re.search(r"```python\n(.*?)```", example, re.S)
    assert code is not None
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code.group(1), str(FORMAT), "exec"), {})
    printed = out.getvalue()
    stated = re.findall(r"record hash\s+([0-9a-f]{64})", example)
    assert len(stated) == 2
    for value in stated:
        assert value in printed
    root = re.search(r"`([0-9a-f]{64})`\. Signed checkpoint", example)
    assert root is not None
    checkpoint_b64 = re.search(r"```\nexample.com/ledger\n2\n(\S+)\n", example)
    assert checkpoint_b64 is not None and checkpoint_b64.group(1) in printed
    note = re.search(r"```\n(example.com/ledger\n2\n.*?\n)```", example, re.S)  # the whole signed note, both lines
    assert note is not None and "stonetrail-heads" in note.group(1) and note.group(1) in printed
    leaf = re.search(r"leaf hash  ([0-9a-f]{64})", text[text.index("## 7c. Item heads"):])
    assert leaf is not None and f"stonetrail-heads 1 {base64.b64encode(bytes.fromhex(leaf.group(1))).decode()}" \
        in printed  # §7c's leaf example is the root of the example's one-item tree
