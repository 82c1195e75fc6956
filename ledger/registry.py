"""The accreditation registry: parties, their roles and keys, replayed from registry records.

The registry starts from the accreditation authority's trusted public keys and nothing else. Only records
signed by a trusted authority key change it (roles are granted, never self-assigned: DOMAIN.md "Who signs").
Three kinds do (docs/format.md §5.3): ``enrolled`` (a party with its roles and first key), ``key_added`` (another
key for an enrolled party) and ``key_revoked`` (one of its keys stops signing). A key's validity is judged by log
position: the registry as replayed up to the record being checked, never the wall clock. A key granted at
position p and revoked at position r is valid for a record at position q exactly when p < q <= r (no r: p < q);
rotation is ``key_added`` then ``key_revoked`` of the old key, so records signed before it stay valid. A grant
also keeps the ``time_ms`` of the record that made it: a record dated before it cannot be signed with that key
(``sig.before_enrolment``, checked by :mod:`ledger.custody`: a key cannot sign what happened before it existed).

Registry records form their own hash chain through ``registry_prev`` (DESIGN.md §3), and each checkpoint
commits to the chain's head and length in a ``stonetrail-registry`` extension line
(:func:`format_registry_extension`), so a reader can tell that it holds the *complete* registry up to that
checkpoint: a revocation cannot be left out (:func:`verify_registry_chain`).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Final

from .checkpoint import Checkpoint, extension_line, format_counted_line, parse_counted_line
from .errors import InputError, KeyFormatError, NoteFormatError, RuleError, VerificationError
from .events import Enrolled, KeyAdded, KeyRevoked
from .findings import Finding
from .hashing import Digest
from .keys import PublicKey
from .record import Record

__all__ = [
    "AUTHORITY",
    "EMPTY_REGISTRY_HEAD",
    "REGISTRY_EXTENSION",
    "KeyGrant",
    "Party",
    "Registry",
    "checkpoint_registry",
    "format_registry_extension",
    "parse_registry_extension",
    "verify_registry_chain",
]

#: The reserved party id under which the accreditation authority signs and acts.
AUTHORITY = "authority"
#: First token of the checkpoint extension line that commits to the registry (docs/format.md §7).
REGISTRY_EXTENSION: Final = "stonetrail-registry"
#: The head written for an empty registry (size 0): 32 zero bytes, which no record hash is.
EMPTY_REGISTRY_HEAD: Final = Digest(bytes(32))


@dataclass(frozen=True, slots=True, kw_only=True)
class KeyGrant:
    """A party's Ed25519 key (32 raw bytes), granted at log position ``since`` and, if revoked, at
    ``revoked_at``: valid for a record at position q when ``since < q`` and (not revoked or ``q <= revoked_at``).
    ``since_ms``: the ``time_ms`` of the granting record (``enrolled`` or ``key_added``), ms since the epoch, UTC."""

    key: bytes
    since: int
    since_ms: int = 0
    revoked_at: int | None = None

    def valid_at(self, position: int) -> bool:
        """True if this grant may sign a record at log ``position``."""
        return self.since < position and (self.revoked_at is None or position <= self.revoked_at)


@dataclass(slots=True, kw_only=True)
class Party:
    """An enrolled party: id, display name, granted roles, ISO 3166-1 alpha-2 country, and its keys."""

    id: str
    name: str
    roles: frozenset[str]
    country: str
    keys: list[KeyGrant] = field(default_factory=list)
    enrolled_at: int = 0

    def grant(self, key: bytes) -> KeyGrant | None:
        """The grant of ``key`` to this party, revoked or not (None if never granted to it)."""
        return next((g for g in self.keys if g.key == key), None)

    def grant_valid_at(self, key: bytes, position: int) -> KeyGrant | None:
        """The grant of ``key`` to this party if it may sign a record at log ``position``, else None."""
        return next((g for g in self.keys if g.key == key and g.valid_at(position)), None)


class Registry:
    """Replays registry records; answers "may this key sign for this party, with this role, here?".

    Args:
        authority_keys: the trusted authority public keys (raw 32 bytes), e.g. from a trust file. An empty set
            is accepted but then no registry record can pass (fail closed).

    ``head`` / ``size``: record hash of the latest accepted registry record (None before the first) and the
    number of accepted registry records; :meth:`head_at` gives both as they were at an earlier tree size.
    """

    def __init__(self, authority_keys: Iterable[bytes]) -> None:
        self.authority_keys = frozenset(authority_keys)
        self.parties: dict[str, Party] = {}
        self.head: Digest | None = None
        self.head_time_ms = 0
        self.size = 0
        self._owners: dict[bytes, str] = {}  # every key ever granted -> its party (keys are never reused)
        self._history: list[tuple[int, Digest, int]] = []  # (position, head, size) after each accepted record

    def check(self, record: Record, position: int) -> list[Finding]:
        """Check one registry record (``enrolled``, ``key_added``, ``key_revoked``) as if at log ``position``;
        returns its findings (empty if valid). Signatures are verified cryptographically by the caller.

        Codes, common to the three kinds: ``registry.not_authority`` (actor or signatures are not the trusted
        authority), ``record.shape`` (inputs, consumes or outputs), ``registry.link_mismatch``
        (``registry_prev`` is not the current registry head), ``chain.time_backwards``,
        ``registry.reserved_id`` (the party is ``authority``). ``enrolled``: ``registry.duplicate_party``,
        ``registry.duplicate_key`` and the ``key.*`` codes of :class:`~ledger.keys.PublicKey` for an unsafe key.
        ``key_added``: ``registry.unknown_party``, ``registry.duplicate_key``, ``key.*``. ``key_revoked``:
        ``registry.unknown_party``, ``registry.unknown_key`` (not a key of the party, or already revoked).
        """
        event = record.body.event
        assert isinstance(event, Enrolled | KeyAdded | KeyRevoked), f"not a registry record: {record.body.kind}"
        found = self._check_common(record, position, event.party, event.registry_prev)

        def add(code: str, reason: str) -> None:
            found.append(Finding(code=code, position=position, item=event.party, reason=reason))

        if event.party == AUTHORITY:
            add("registry.reserved_id", f"{AUTHORITY!r} is the accreditation authority, whose keys are the "
                                        "trusted keys: it is never enrolled and has no registry keys")
            if isinstance(event, KeyRevoked):
                return found
        elif isinstance(event, Enrolled):
            if event.party in self.parties:
                add("registry.duplicate_party", "party is already enrolled")
        elif event.party not in self.parties:
            add("registry.unknown_party", "party is not enrolled")
            if isinstance(event, KeyRevoked):
                return found
        if isinstance(event, KeyRevoked):
            grant = self.parties[event.party].grant(event.key)
            if grant is None:
                add("registry.unknown_key", "key was never granted to this party")
            elif grant.revoked_at is not None:
                add("registry.unknown_key", f"key was already revoked at position {grant.revoked_at}")
            return found
        owner = self._owners.get(event.key)
        # re-enrolling a party with its own key is reported once, as registry.duplicate_party
        if owner is not None and not (isinstance(event, Enrolled) and owner == event.party):
            add("registry.duplicate_key", f"key is already granted to {owner} (a key is granted once, ever)")
        elif event.key in self.authority_keys:
            add("registry.duplicate_key", "key is a trusted authority key")
        try:
            PublicKey.from_bytes(event.key)
        except KeyFormatError as exc:
            add(exc.code, str(exc))
        return found

    def commit(self, record: Record, position: int) -> None:
        """Apply a registry record that :meth:`check` passed (at the same ``position``)."""
        event = record.body.event
        if isinstance(event, Enrolled | KeyAdded):
            grant = KeyGrant(key=event.key, since=position, since_ms=record.body.time_ms)
            self._owners[event.key] = event.party
        if isinstance(event, Enrolled):
            self.parties[event.party] = Party(id=event.party, name=event.name, roles=frozenset(event.roles),
                                              country=event.country, keys=[grant], enrolled_at=position)
        elif isinstance(event, KeyAdded):
            self.parties[event.party].keys.append(grant)
        elif isinstance(event, KeyRevoked):
            keys = self.parties[event.party].keys
            keys[:] = [replace(g, revoked_at=position) if g.key == event.key else g for g in keys]
        else:
            raise AssertionError(f"not a registry record: {record.body.kind}")
        self.head = record.record_hash
        self.head_time_ms = record.body.time_ms
        self.size += 1
        self._history.append((position, self.head, self.size))

    def head_at(self, tree_size: int) -> tuple[int, Digest | None]:
        """(size, head) of the registry as replayed over the records at positions below ``tree_size``: what a
        checkpoint of that tree size commits to. (0, None) if no registry record was accepted there."""
        index = bisect.bisect_left(self._history, tree_size, key=lambda entry: entry[0])
        if index == 0:
            return 0, None
        _, head, size = self._history[index - 1]
        return size, head

    def _check_common(self, record: Record, position: int, item: str, registry_prev: Digest | None
                      ) -> list[Finding]:
        found = self._check_signed_by_authority(record, position, item)
        body = record.body
        if body.inputs or body.consumes or body.outputs:
            found.append(Finding(code="record.shape", position=position, item=item,
                                 reason="a registry record has no inputs, consumes or outputs"))
        if registry_prev != self.head:  # the chain runs through accepted records only (docs/format.md §5.3)
            last = "no registry record is accepted before it" if self.head is None else \
                f"the last accepted one is {self.head.b64()}"
            found.append(Finding(code="registry.link_mismatch", position=position, item=item,
                                 reason=f"registry_prev is not the hash of the last accepted registry record ({last})"))
        if body.time_ms < self.head_time_ms:
            found.append(Finding(code="chain.time_backwards", position=position, item=item,
                                 reason="registry record is older than the registry head"))
        return found

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
        """True if ``key`` is one of ``party``'s keys valid at log ``position`` (the authority: a trusted key).

        Granted at p, revoked at r: valid for p < position <= r. The answer holds for any position up to the
        replayed one (grants and revocations keep their positions).
        """
        if party == AUTHORITY:
            return key in self.authority_keys
        p = self.parties.get(party)
        return p is not None and p.grant_valid_at(key, position) is not None

    def has_role(self, party: str, role: str) -> bool:
        """True if ``party`` is enrolled and was granted ``role``."""
        p = self.parties.get(party)
        return p is not None and role in p.roles

    def parties_with(self, roles: Iterable[str], country: str) -> list[str]:
        """Ids, sorted, of the enrolled parties of ``country`` that hold one of ``roles`` (e.g. the KP authority
        or customs of a country, who must co-sign where one is enrolled). Revoked keys do not matter here."""
        wanted = frozenset(roles)
        return sorted(p.id for p in self.parties.values() if p.country == country and p.roles & wanted)


# --- the checkpoint's registry commitment (docs/format.md §7) ---------------------------------------------------

def format_registry_extension(size: int, head: Digest | None) -> str:
    """The checkpoint extension line ``stonetrail-registry <size> <base64 head>`` (no newline).

    ``size``: number of accepted registry records; ``head``: record hash of the latest, None iff ``size`` is 0
    (written as :data:`EMPTY_REGISTRY_HEAD`).

    Raises:
        InputError: ``input.range`` (size not an int in 0..2**64-1, or head None with size > 0 or given with
            size 0), ``hash.length`` (head not 32 bytes).
    """
    if (head is None) != (size == 0):
        raise InputError("a registry head is given exactly when the registry size is > 0", code="input.range")
    if head is not None and Digest(head) == EMPTY_REGISTRY_HEAD:
        raise InputError("the all-zero head stands for the empty registry only", code="input.range")
    return format_counted_line(REGISTRY_EXTENSION, size, EMPTY_REGISTRY_HEAD if head is None else head)


def parse_registry_extension(line: str) -> tuple[int, Digest | None]:
    """Parse a ``stonetrail-registry`` line strictly (:func:`~ledger.checkpoint.parse_counted_line`).

    Returns:
        (size, head), head None for the empty registry (size 0 with the all-zero head).
    Raises:
        NoteFormatError: ``checkpoint.extension``.
    """
    size, digest = parse_counted_line(line, REGISTRY_EXTENSION)
    if (size == 0) != (digest == EMPTY_REGISTRY_HEAD):
        raise NoteFormatError(f"bad {REGISTRY_EXTENSION} line (the all-zero head goes with size 0, and only "
                              f"with it): {line!r:.120}", code="checkpoint.extension")
    return size, None if size == 0 else digest


def checkpoint_registry(cp: Checkpoint) -> tuple[int, Digest | None]:
    """The (size, head) a checkpoint commits the registry to: its one ``stonetrail-registry`` extension line.

    Raises:
        VerificationError: ``checkpoint.registry_missing`` (no such line).
        NoteFormatError: ``checkpoint.extension`` (a malformed line, or more than one).
    """
    missing = VerificationError(f"checkpoint has no {REGISTRY_EXTENSION} line: it does not commit to the "
                                "registry", code="checkpoint.registry_missing")
    return parse_registry_extension(extension_line(cp, REGISTRY_EXTENSION, missing))


def verify_registry_chain(records: Sequence[Record], size: int, head: Digest | None) -> None:
    """Show that ``records`` are the *complete* registry a checkpoint commits to as (``size``, ``head``).

    The records must be registry records, in log order, each ``registry_prev`` the record hash of the one
    before (nil for the first), ``size`` of them, the last one's record hash ``head`` (None: no record). Since
    the chain is hash-linked from nil, no record of it (a revocation, say) can be left out. This checks the
    chain only: replay the records through :class:`Registry` to check their content and signatures.

    Raises:
        RuleError: ``registry.gap`` (a record that is not a registry record, or whose ``registry_prev`` is not
            the hash of the record before it), ``registry.head_mismatch`` (wrong count or final head).
    """
    def fail(code: str, item: str | None, reason: str) -> RuleError:
        finding = Finding(code=code, position=None, item=item, reason=reason)
        return RuleError(str(finding), code=code, finding=finding)

    prev: Digest | None = None
    for index, record in enumerate(records):
        event = record.body.event
        if not isinstance(event, Enrolled | KeyAdded | KeyRevoked):
            raise fail("registry.gap", None,
                       f"registry record {index} is a {record.body.kind} record, not a registry record")
        if event.registry_prev != prev:
            raise fail("registry.gap", event.party,
                       f"registry record {index}: registry_prev is not the hash of "
                       + ("the record before it" if index else "nil (the first registry record)"))
        prev = record.record_hash
    if len(records) != size or prev != head:
        raise fail("registry.head_mismatch", None,
                   f"{len(records)} registry records ending at {prev.hex() if prev else 'nil'}, "
                   f"the checkpoint commits to {size} ending at {head.hex() if head else 'nil'}")
