"""Signature verification once per exact bytes, for tests and benchmarks that replay the same records again and
again (the differential fuzzer's bundles, the crash harness's trials)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ledger import Record
from ledger.errors import KeyFormatError, SignatureError, StoneTrailError
from ledger.record import Signature


@contextmanager
def signatures_verified_once() -> Iterator[None]:
    """Verify each (key, signature, signed message) once per run: the audit and every bundle of a ledger verify
    the same registry and custody signatures again and again. Test-only, and it cannot change a verdict: the key
    is the exact bytes verified (the key and signature bytes and the full signed message), and the cached
    outcome is what the real verification returned for them (nothing, or the very exception it raised)."""
    real = Record.verify_signature
    seen: dict[tuple[bytes, bytes, bytes], StoneTrailError | None] = {}

    def verify(self: Record, sig: Signature) -> None:
        k = (sig.key, sig.sig, self.signed_message())
        if k not in seen:
            try:
                real(self, sig)
                seen[k] = None
            except (SignatureError, KeyFormatError) as exc:
                seen[k] = exc
        if (error := seen[k]) is not None:
            raise error

    Record.verify_signature = verify  # type: ignore[method-assign]
    try:
        yield
    finally:
        Record.verify_signature = real  # type: ignore[method-assign]
