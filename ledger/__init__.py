"""StoneTrail: signed, hash-linked custody records for individual diamonds, verifiable offline.

The public API is re-exported here; module layering (each imports only those above it) is in DESIGN.md §4 and
enforced by tests/test_layering.py. Names are imported lazily (PEP 562), so ``import ledger.custody`` or a
verifier's import path loads only the modules it needs (never the store)::

    errors -> _codec -> keys -> hashing -> merkle -> checkpoint -> record -> registry -> custody -> policy
           -> provenance -> bundle -> store -> _ledger -> audit -> export -> history -> demo
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from . import keyfile
    from ._bundle_json import bundle_from_json_text, bundle_to_json_text
    from ._ledger import Ledger
    from .audit import AuditReport, check_ledger, verify_ledger
    from .bundle import BundleReport, build_bundle, bundle_from_json, bundle_to_json, check_bundle, verify_bundle
    from .checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
    from .copy import copy_ledger
    from .demo import DemoSummary, build_demo
    from .events import (
        Attested,
        Corrected,
        Enrolled,
        Exported,
        Graded,
        Grown,
        Imported,
        Inscribed,
        KeyAdded,
        KeyRevoked,
        Merged,
        Mined,
        Registered,
        Retired,
        Set,
        Split,
        Transferred,
        Unset,
        Verified,
    )
    from .export import export_bundle, export_bundle_as_of, export_bundles
    from .findings import Finding
    from .hashing import Digest
    from .history import HistoryRow, format_ct, item_history, origin_summary
    from .keys import NoteVerifierKey, PrivateKey, PublicKey, note_verifier_key
    from .policy import Policy, PolicyError, check_policy
    from .provenance import Provenance
    from .publish import publish_checkpoint
    from .record import Body, Output, Record, Signature
    from .registry import AUTHORITY
    from .replay import Replay, replay_ledger
    from .signing import checkpoint_file
    from .storage import Repaired, repair
    from .trust import Trust

__version__ = "0.1.0"

#: public name -> submodule that defines it
_EXPORTS = {
    "AUTHORITY": "registry",
    "Attested": "events",
    "AuditReport": "audit",
    "Body": "record",
    "BundleReport": "bundle",
    "Checkpoint": "checkpoint",
    "Corrected": "events",
    "DemoSummary": "demo",
    "Digest": "hashing",
    "Enrolled": "events",
    "Exported": "events",
    "Finding": "findings",
    "Graded": "events",
    "Grown": "events",
    "HistoryRow": "history",
    "Imported": "events",
    "Inscribed": "events",
    "KeyAdded": "events",
    "KeyRevoked": "events",
    "Ledger": "_ledger",
    "Merged": "events",
    "Mined": "events",
    "NoteVerifierKey": "keys",
    "Output": "record",
    "Policy": "policy",
    "PolicyError": "policy",
    "PrivateKey": "keys",
    "Provenance": "provenance",
    "PublicKey": "keys",
    "Record": "record",
    "Registered": "events",
    "Repaired": "storage",
    "Replay": "replay",
    "Retired": "events",
    "Set": "events",
    "Signature": "record",
    "Split": "events",
    "Transferred": "events",
    "Trust": "trust",
    "Unset": "events",
    "Verified": "events",
    "build_bundle": "bundle",
    "build_demo": "demo",
    "bundle_from_json": "bundle",
    "bundle_from_json_text": "_bundle_json",
    "bundle_to_json": "bundle",
    "bundle_to_json_text": "_bundle_json",
    "check_bundle": "bundle",
    "check_ledger": "audit",
    "copy_ledger": "copy",
    "check_policy": "policy",
    "checkpoint_file": "signing",
    "export_bundle": "export",
    "export_bundle_as_of": "export",
    "export_bundles": "export",
    "format_ct": "history",
    "item_history": "history",
    "keyfile": "keyfile",
    "note_verifier_key": "keys",
    "open_checkpoint": "checkpoint",
    "origin_summary": "history",
    "publish_checkpoint": "publish",
    "repair": "storage",
    "replay_ledger": "replay",
    "sign_checkpoint": "checkpoint",
    "verify_bundle": "bundle",
    "verify_ledger": "audit",
}

__all__ = [
    "AUTHORITY",
    "Attested",
    "AuditReport",
    "Body",
    "BundleReport",
    "Checkpoint",
    "Corrected",
    "DemoSummary",
    "Digest",
    "Enrolled",
    "Exported",
    "Finding",
    "Graded",
    "Grown",
    "HistoryRow",
    "Imported",
    "Inscribed",
    "KeyAdded",
    "KeyRevoked",
    "Ledger",
    "Merged",
    "Mined",
    "NoteVerifierKey",
    "Output",
    "Policy",
    "PolicyError",
    "PrivateKey",
    "Provenance",
    "PublicKey",
    "Record",
    "Registered",
    "Repaired",
    "Replay",
    "Retired",
    "Set",
    "Signature",
    "Split",
    "Transferred",
    "Trust",
    "Unset",
    "Verified",
    "build_bundle",
    "build_demo",
    "bundle_from_json",
    "bundle_from_json_text",
    "bundle_to_json",
    "bundle_to_json_text",
    "check_bundle",
    "check_ledger",
    "check_policy",
    "checkpoint_file",
    "copy_ledger",
    "export_bundle",
    "export_bundle_as_of",
    "export_bundles",
    "format_ct",
    "item_history",
    "keyfile",
    "note_verifier_key",
    "open_checkpoint",
    "origin_summary",
    "publish_checkpoint",
    "repair",
    "replay_ledger",
    "sign_checkpoint",
    "verify_bundle",
    "verify_ledger",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'ledger' has no attribute {name!r}")
    imported = import_module(f".{module}", __name__)
    value = imported if module == name else getattr(imported, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
