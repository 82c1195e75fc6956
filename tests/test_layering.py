"""The module DAG of DESIGN.md §4: each module imports only modules above it — imports for type annotations
(under ``TYPE_CHECKING``) included, since a type is a dependency too — and third-party imports stay put."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

LEDGER = Path(__file__).resolve().parents[1] / "ledger"
CLI = Path(__file__).resolve().parents[1] / "cli"

#: Top to bottom. DESIGN.md §4 plus: note (C2SP signed notes, the envelope of checkpoints), _evidence_format (the
#: evidence file's bytes, below evidence, which verifies them);
#: _files (new output files, created exclusively and atomically: every file
#: the library and the CLI write but a ledger's frames), findings (report values), keyfile (private-key files; see
#: docs/adr/0002-key-files-outside-store.md), _schema and events (record layer), trust, heads (the checkpoint's
#: commitment to every item's latest record), identity (its commitment to every claim on an id, report number or
#: inscription), item (one item's replayed state), origin, rules and _kinds (the custody layer split by concern;
#: _kinds types the replay it serves as a protocol),
#: _policy and policy (a policy value and its file format; its checks over a replay), verdicts (a report's two
#: verdicts, integrity and policy), history, demo; consistency
#: and evidence (pure: consistency proofs, fork evidence) with their builders in monitor (after the store);
#: _describe (plain-language record lines), scope (the records an item's provenance needs) and provenance
#: (what they say; both shared by the bundle
#: verifier and the exporter), _bundle_format and bundle (offline proof bundles, pure: bytes, then verification),
#: export (bundles from a ledger file); _text (the two text classes of a record's fields, read by _schema);
#: _bundle_json (a bundle's canonical JSON text); _grades (the lab scales of a grading, read by events);
#: _bundle_summary (a bundle listed, unverified); signer (who may sign a ledger's checkpoint, after registry);
#: publish (the checkpoint published beside a ledger, replaced through _files, after monitor); storage.* (the ledger
#: file's bytes: window, framing, the file store, C2SP tiles) and reader (the log-only read side) below index.* (the
#: persistent index: sql = the SQL both databases speak, maps, state, snapshot, db, indexed = the writer's side,
#: opening = open, catch up, rebuild; reading = the read side over it), backends (the file store and its index
#: behind the writer facade), pg.* (a ledger in PostgreSQL: the same index tables beside the log in one database,
#: docs/adr/0023) and signing (a
#: checkpoint of a file, through the index when it can), all below the writer facade _ledger and copy (a ledger
#: from one store to another); engines (which library runs the Ed25519 equation, docs/adr/0021; above keys, its
#: one user); _ed25519 (point encodings checked without curve arithmetic, under keys); spill (an audit's
#: per-record facts on disk, docs/adr/0022), spilled_of (the item heads' record map on disk, for an audit's
#: checkpoint lines) and spilled (the replay over it);
#: rollback (a witness's rollback evidence, read by evidence); witness.* (a C2SP tlog-witness: the known logs and
#: the add-checkpoint decision table, pure, after evidence; its state, server, the log's gathering of cosignatures
#: and the proofs it sends, after publish).
#: _published_format (a published log's files, pure), _published_dir (its directory), _http_get (bounded GETs),
#: _remote_log (one read over HTTP as a read side) and published (publish a ledger as C2SP tlog-tiles, checked
#: against the signed root by storage.tile_check; fetch a bundle from one; docs/adr/0024).
#: _state_file (an audit state's file: sections, head, digest; below spill, whose sections it holds),
#: _state_prefix (the ledger's bytes below a state) and _state_rows, under audit_state (docs/adr/0031).
#: dossier (a verified bundle for people), annex (customs evidence) and report (the HTML page, jinja2), after bundle.
ORDER = [
    "errors", "_files", "_file_kinds", "_pool", "findings", "kept_findings", "_codec", "_state_file", "engines",
    "_ed25519", "keys", "keyfile", "hashing", "_text", "_schema", "merkle", "compact",
    "note", "checkpoint", "_beside", "cosignature", "witness_policy", "trust", "witnessed",
    "_grades", "events", "record", "_describe", "registry", "signer", "heads", "identity",
    "commitments", "sig_findings",
    "consistency", "rollback", "_evidence_format", "evidence", "witness.logs", "witness.protocol",
    "item", "origin", "rules", "_kinds",
    "custody", "spill", "spilled_of", "spilled", "_policy", "policy", "verdicts", "audit_report", "scope",
    "provenance",
    "_bundle_format",
    "_bundle_json",
    "_bundle_summary", "_bundle_proofs",
    "bundle", "_words", "cutting", "dossier", "annex", "report",
    "storage.window", "storage.header", "storage.framing", "storage.frames", "storage.filestore", "storage.repair",
    "storage.tiles", "storage.tile_check", "storage",
    "_published_format", "_published_dir", "reader",
    "index.sql", "index.maps", "index.state", "index.snapshot", "index.db", "index.logfile", "index.indexed",
    "index.opening",
    "index.heads_check", "index.anchor", "index.reading", "index", "backends",
    "pg.url", "pg.db", "pg.store", "pg.queue", "pg.writer", "pg",
    "signing",
    "_ledger", "copy",
    "monitor", "publish", "witness.state", "witness.server", "witness.gather", "witness.proofs", "witness",
    "chunks", "audit_pass", "_state_prefix", "_state_rows", "audit_state", "audit", "file_records", "replay",
    "export",
    "_http_get", "_remote_log", "published", "history", "history_scan",
    "inventory", "_scenarios", "demo",
]
#: third-party package -> the only ledger modules allowed to import it (dask, distributed: the optional extra, only
#: in stonetrail_cli.cluster)
THIRD_PARTY = {"msgpack": {"_codec"}, "cryptography": {"keys"}, "nacl": {"engines", "keys"}, "click": set(),
               "psycopg": {"pg.db"}, "dask": set(), "distributed": set(), "jinja2": {"report"}}


def _name(path: Path) -> str:
    """The dotted module name of ``path`` below ``ledger/`` ("storage" for a package's ``__init__``)."""
    parts = path.relative_to(LEDGER).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """(project modules as dotted names below ``ledger``, top-level third-party packages) that ``path`` imports.
    ``from . import x`` names the module ``x`` of the package, or the package itself when ``x`` is no module."""
    project, external = set(), set()
    package = path.relative_to(LEDGER).parent.parts if path.is_relative_to(LEDGER) else ()
    modules = set(ORDER)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):  # imports under TYPE_CHECKING count too: a type is a dependency (issue 10)
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = list(package[: len(package) - node.level + 1])
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
                if node.module:
                    project.add(target)
                else:
                    project.update(n if n in modules else target
                                   for n in (".".join([*base, a.name]) for a in node.names))
            elif node.module:
                top, _, rest = node.module.partition(".")
                (project.add(rest) if top == "ledger" and rest else external.add(top))
        elif isinstance(node, ast.Import):
            external.update(a.name.split(".")[0] for a in node.names)
    return project - {""}, external


def _module_paths() -> dict[str, Path]:
    return {_name(p): p for p in LEDGER.rglob("*.py") if p.parent.name != "data" and _name(p) != ""}


def test_every_module_is_placed() -> None:
    assert set(_module_paths()) == set(ORDER), "add new modules to ORDER"


@pytest.mark.parametrize("module", ORDER)
def test_imports_only_upward(module: str) -> None:
    project, external = _imports(_module_paths()[module])
    above = set(ORDER[: ORDER.index(module)]) | {"data"}
    assert project <= above, f"{module} imports {sorted(project - above)} from below or beside it"
    for package, allowed in THIRD_PARTY.items():
        if package in external:
            assert module in allowed, f"{module} imports {package}"


def test_cli_uses_no_codec_crypto_or_hashing() -> None:
    for path in CLI.glob("*.py"):
        _, external = _imports(path)
        assert not external & {"msgpack", "cryptography", "nacl", "hashlib"}, path


def test_pure_core_does_not_load_the_store_or_click() -> None:
    code = ("import sys, ledger.custody, ledger.checkpoint, ledger.trust; "
            "print(sorted(m for m in sys.modules"
            " if m in ('click', 'ledger._ledger') or m.startswith('ledger.storage')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
