"""The accreditation registry: parties, their roles and keys, replayed from registry records.

The registry starts from the accreditation authority's trusted public keys and nothing else. Only records
signed by a trusted authority key change it (roles are granted, never self-assigned: DOMAIN.md "Who signs").
Registry records form their own hash chain through ``registry_prev`` (DESIGN.md §3), so a reader can tell
that it holds the complete registry up to a point. A key's validity is judged by log position: the registry
as replayed up to the record being checked, never the wall clock.

This slice implements ``enrolled``; key rotation and revocation (``key_added``, ``key_revoked``) come next and
will extend :class:`KeyGrant` with the position of revocation.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .errors import KeyFormatError
from .events import Enrolled
from .findings import Finding
from .hashing import Digest
from .keys import PublicKey
from .record import Record

__all__ = ["AUTHORITY", "KeyGrant", "Party", "Registry"]

#: The reserved party id under which the accreditation authority signs and acts.
AUTHORITY = "authority"


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyGrant:
    """A party's Ed25519 key (32 raw bytes), valid from log position ``since`` onwards."""

    key: bytes
    since: int


@dataclass(slots=True, kw_only=True)
class Party:
    """An enrolled party: id, display name, granted roles, ISO 3166-1 alpha-2 country, and its keys."""

    id: str
    name: str
    roles: frozenset[str]
    country: str
    keys: list[KeyGrant] = field(default_factory=list)
    enrolled_at: int = 0


class Registry:
    """Replays registry records; answers "may this key sign for this party, with this role, here?".

    Args:
        authority_keys: the trusted authority public keys (raw 32 bytes), e.g. from a trust file. An empty set
            is accepted but then no registry record can pass (fail closed).
    """

    def __init__(self, authority_keys: Iterable[bytes]) -> None:
        self.authority_keys = frozenset(authority_keys)
        self.parties: dict[str, Party] = {}
        self.head: Digest | None = None
        self.head_time_ms = 0
        self.size = 0

    def check(self, record: Record, position: int) -> list[Finding]:
        """Check one registry record as if at log ``position``; returns its findings (empty if valid).

        Codes: ``registry.not_authority`` (actor or signatures are not the trusted authority),
        ``registry.link_mismatch`` (``registry_prev`` is not the current registry head),
        ``chain.time_backwards``, ``registry.duplicate_party``, ``registry.reserved_id`` and the key codes of
        :class:`~ledger.keys.PublicKey` (``key.*``) for an unsafe key.
        Signatures are verified cryptographically by the caller.
        """
        event = record.body.event
        assert isinstance(event, Enrolled)
        found = self._check_signed_by_authority(record, position, event.party)
        body = record.body
        if body.inputs or body.consumes or body.outputs:
            found.append(Finding(code="record.shape", position=position, item=event.party,
                                 reason="a registry record has no inputs, consumes or outputs"))
        if event.registry_prev != self.head:
            found.append(Finding(code="registry.link_mismatch", position=position, item=event.party,
                                 reason="registry_prev is not the hash of the previous registry record"))
        if record.body.time_ms < self.head_time_ms:
            found.append(Finding(code="chain.time_backwards", position=position, item=event.party,
                                 reason="registry record is older than the registry head"))
        if event.party == AUTHORITY:
            found.append(Finding(code="registry.reserved_id", position=position, item=event.party,
                                 reason=f"{AUTHORITY!r} is reserved for the accreditation authority"))
        elif event.party in self.parties:
            found.append(Finding(code="registry.duplicate_party", position=position, item=event.party,
                                 reason="party is already enrolled"))
        try:
            PublicKey.from_bytes(event.key)
        except KeyFormatError as exc:
            found.append(Finding(code=exc.code, position=position, item=event.party, reason=str(exc)))
        return found

    def commit(self, record: Record, position: int) -> None:
        """Apply a registry record that :meth:`check` passed."""
        event = record.body.event
        assert isinstance(event, Enrolled)
        self.parties[event.party] = Party(
            id=event.party, name=event.name, roles=frozenset(event.roles), country=event.country,
            keys=[KeyGrant(key=event.key, since=position)], enrolled_at=position)
        self.head = record.record_hash
        self.head_time_ms = record.body.time_ms
        self.size += 1

    def _check_signed_by_authority(self, record: Record, position: int, item: str) -> list[Finding]:
        sigs = record.signatures
        if record.body.actor != AUTHORITY or len(sigs) != 1 or sigs[0].party != AUTHORITY:
            return [Finding(code="registry.not_authority", position=position, item=item,
                            reason="registry records are acted and signed by the authority alone")]
        if sigs[0].key not in self.authority_keys:
            return [Finding(code="registry.not_authority", position=position, item=item,
                            reason="signed with a key that is not a trusted authority key")]
        return []

    def key_valid(self, party: str, key: bytes, position: int) -> bool:
        """True if ``key`` is one of ``party``'s keys valid at log ``position`` (the authority: a trusted key)."""
        if party == AUTHORITY:
            return key in self.authority_keys
        p = self.parties.get(party)
        return p is not None and any(g.key == key and g.since < position for g in p.keys)

    def has_role(self, party: str, role: str) -> bool:
        """True if ``party`` is enrolled and was granted ``role``."""
        p = self.parties.get(party)
        return p is not None and role in p.roles
