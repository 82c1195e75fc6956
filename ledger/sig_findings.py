"""The ``sig.*`` findings of a record's signatures: each checked under the key it names (DESIGN.md §2), with no
registry (whether the key may sign for its party at that position is a custody rule: :mod:`ledger.custody`).
"""

from __future__ import annotations

from collections.abc import Iterable

from .errors import KeyFormatError, SignatureError
from .findings import Finding
from .record import Record, Signature, verify_signature

__all__ = ["message_findings", "signature_findings"]


def signature_findings(record: Record, position: int) -> list[Finding]:
    """The finding of each signature of ``record`` (at log ``position``) that does not verify under its key
    (``sig.*``: :meth:`ledger.keys.PublicKey.verify`, DESIGN.md §2), in the record's order; empty: all verify."""
    return message_findings(record.signatures, record.signed_message(), position)


def message_findings(signatures: Iterable[Signature], message: bytes, position: int) -> list[Finding]:
    """As :func:`signature_findings`, for a record's ``signatures`` over its signed ``message``
    (:func:`ledger.record.signed_parts`)."""
    found = []
    for sig in signatures:
        try:
            verify_signature(sig, message)
        except (SignatureError, KeyFormatError) as exc:
            found.append(Finding(code=exc.code, position=position, item=sig.party,
                                 reason=f"signature by {sig.party}: {exc}"))
    return found
