"""Event kinds: the kind-specific ``fields`` map of a record body, as frozen, validated value types.

Each kind is a frozen dataclass whose fields declare their reader (type, range, pattern); one generic pair,
:meth:`Event.to_fields` / :func:`event_from_fields`, turns them into the ``fields`` map and back, strictly
(exact key set, every value checked). docs/format.md §4.3 lists every field. Which parties must sign which kind,
and what a kind does to items, is the custody rules' business (:mod:`ledger.custody`), not this module's.

Units: masses in integer millicarats (``*_mct``; 1 ct = 1000 mct); times in ms since the Unix epoch, UTC
(``*_ms``); countries ISO 3166-1 alpha-2.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar, dataclass_transform

from . import _schema as s
from ._codec import Value
from ._grades import read_clarity as _clarity
from ._grades import read_colour as _colour
from .hashing import Digest

__all__ = [
    "EVENT_TYPES",
    "NATURES",
    "REGISTRY_KINDS",
    "RETIRE_REASONS",
    "ROLES",
    "TRANSFER_MODES",
    "Attested",
    "Corrected",
    "Enrolled",
    "Event",
    "Exported",
    "Graded",
    "Grown",
    "Imported",
    "Inscribed",
    "KeyAdded",
    "KeyRevoked",
    "Merged",
    "Mined",
    "Registered",
    "Retired",
    "Set",
    "Split",
    "Transferred",
    "Unset",
    "Verified",
    "event_from_fields",
]

#: Roles the accreditation authority can grant (never self-assigned; DOMAIN.md "Who signs").
ROLES = frozenset({
    "producer", "trader", "manufacturer", "lab", "jeweller", "retailer",
    "kp_authority", "node", "customs", "auditor",
})
#: Nature of a stone, fixed at creation (DOMAIN.md R9).
NATURES = frozenset({"natural", "lab_grown"})
#: ``title`` moves ownership and possession; ``memo`` moves possession only (consignment).
TRANSFER_MODES = frozenset({"title", "memo"})
RETIRE_REASONS = frozenset({"lost", "stolen", "destroyed", "seized"})
GROWTH_METHODS = frozenset({"CVD", "HPHT"})
MAX_MASS_MCT = 10**9  # one million carats: far above any real lot

Reader = Callable[[Value, str], Any]


def _enum(values: frozenset[str]) -> Reader:
    def read(value: Value, where: str) -> str:
        text = s.read_text(value, where)
        if text not in values:
            raise s.fail(where, f"{text!r} is not one of {sorted(values)}")
        return text
    return read


def _optional(reader: Reader) -> Reader:
    def read(value: Value, where: str) -> Any:
        return None if value is None else reader(value, where)
    return read


def _sorted_set(reader: Reader, max_len: int, *, min_len: int = 1) -> Reader:
    def read(value: Value, where: str) -> tuple[Any, ...]:
        items = tuple(reader(v, where) for v in s.read_list(value, where, max_len))
        if len(items) < min_len or list(items) != sorted(set(items)):
            raise s.fail(where, f"must be a sorted list without repeats, at least {min_len} long")
        return items
    return read


def _mass(value: Value, where: str) -> int:
    return s.read_int(value, where, 0, MAX_MASS_MCT)


def _positive_mass(value: Value, where: str) -> int:
    return s.read_int(value, where, 1, MAX_MASS_MCT)


def _key(value: Value, where: str) -> bytes:
    return s.read_bytes(value, where, 32)


def _declared(value: Value, where: str) -> tuple[tuple[str, int], ...]:
    """Declared masses per item: a map {item id: mct}, held as (id, mct) pairs sorted by id."""
    pairs = tuple((s.read_id(k, where), _positive_mass(v, where)) for k, v in s.read_map(value, where).items())
    if [k for k, _ in pairs] != sorted(k for k, _ in pairs):
        raise s.fail(where, "pairs must be sorted by item id")
    return pairs


ID, TEXT, COUNTRY, TIME = s.read_id, s.read_text, s.read_country, s.read_time
DIGEST = s.read_digest


def _f(reader: Reader) -> Any:
    """A dataclass field with its wire reader."""
    return field(metadata={"read": reader})


def _wire(reader: Reader, value: Any) -> Any:
    """A field's value as it appears in the decoded ``fields`` map (a value of the wrong type stays as it is, for
    the reader to refuse by name)."""
    if reader is _declared:
        pairs = isinstance(value, tuple | list) and all(isinstance(p, tuple) and len(p) == 2 for p in value)
        return dict(value) if pairs else value
    return list(value) if isinstance(value, tuple) else value


_T = TypeVar("_T")


@dataclass_transform(frozen_default=True, kw_only_default=True, field_specifiers=(_f,))
def _event(cls: type[_T]) -> type[_T]:
    """Make an event kind a frozen, slotted, keyword-only dataclass (type checkers see it as one), and list its
    fields' (name, reader, error location) once, in declaration order, for :class:`Event`'s generic methods."""
    made: Any = dataclass(frozen=True, slots=True, kw_only=True)(cls)
    made._READERS = tuple((f.name, f.metadata["read"], f"{made.KIND}.{f.name}") for f in dataclasses.fields(made))
    made._NAMES = frozenset(name for name, _, _ in made._READERS)
    return made  # type: ignore[no-any-return]


class Event:
    """Base of every event kind: generic validation and ``fields`` encoding from the declared readers.

    A kind is valid on construction exactly when its ``fields`` map would be read back: each field's wire value
    goes through the same reader as decoding does.
    """

    __slots__ = ()
    KIND: ClassVar[str]
    #: (field name, wire reader, error location) of every field in declaration order; set by ``_event``.
    _READERS: ClassVar[tuple[tuple[str, Reader, str], ...]]
    _NAMES: ClassVar[frozenset[str]]

    def __post_init__(self) -> None:
        for name, reader, where in self._READERS:
            reader(_wire(reader, getattr(self, name)), where)

    def to_fields(self) -> dict[str, object]:
        """The ``fields`` map of docs/format.md §4.3 (before canonical encoding)."""
        return {name: _wire(reader, getattr(self, name)) for name, reader, _ in self._READERS}

    @classmethod
    def from_fields(cls, fields: Mapping[str, Value]) -> Any:
        """Read the ``fields`` map strictly; raises RecordFormatError.

        Each field goes through its reader, in declaration order; the instance is then filled without
        ``__init__``, because ``__post_init__`` would only run the same readers again on the wire form of what
        they just returned. Every reader accepts its own output that way (text, ints and
        bytes come back unchanged, a Digest is 32 bytes, sorted sets and declared masses come back as the same
        items in the same order, None stays None), so that second pass cannot fail.
        """
        s.exact_keys(fields, cls.KIND, cls._NAMES)
        event = object.__new__(cls)
        for name, reader, where in cls._READERS:
            object.__setattr__(event, name, reader(fields[name], where))
        return event


# --- registry kinds (acted and signed by the accreditation authority) ------------------------------------------

@_event
class Enrolled(Event):
    """The authority enrolls ``party`` with ``roles``, ``country`` and its first Ed25519 ``key`` (32 raw bytes).

    ``external_ids``: the party's identifiers elsewhere, as ``scheme:value`` text (e.g. ``LEI:…``,
    ``KP-LICENCE:BW-0042``), sorted, possibly empty.

    ``registry_prev``: record hash of the previous registry record (None for the first), forming the registry's
    own hash chain (DESIGN.md §3). The key's point validity is judged at registry replay.
    """

    KIND: ClassVar[str] = "enrolled"
    party: str = _f(ID)
    name: str = _f(TEXT)
    roles: tuple[str, ...] = _f(_sorted_set(_enum(ROLES), 16))
    country: str = _f(COUNTRY)
    external_ids: tuple[str, ...] = _f(_sorted_set(TEXT, 16, min_len=0))
    key: bytes = _f(_key)
    registry_prev: Digest | None = _f(_optional(DIGEST))


@_event
class KeyAdded(Event):
    """The authority grants an enrolled ``party`` another key (rotation: add the new, then revoke the old)."""

    KIND: ClassVar[str] = "key_added"
    party: str = _f(ID)
    key: bytes = _f(_key)
    registry_prev: Digest | None = _f(_optional(DIGEST))


@_event
class KeyRevoked(Event):
    """The authority revokes one of ``party``'s keys: it signs nothing from the next log position on."""

    KIND: ClassVar[str] = "key_revoked"
    party: str = _f(ID)
    key: bytes = _f(_key)
    reason: str = _f(TEXT)
    registry_prev: Digest | None = _f(_optional(DIGEST))


# --- creation -------------------------------------------------------------------------------------------------

@_event
class Mined(Event):
    """A producer records natural rough (a stone or lot) recovered at ``mine`` in ``country``: a claim the ledger
    can only attest, never prove. Exactly one output; nature ``natural``; origin {country: mass}."""

    KIND: ClassVar[str] = "mined"
    mine: str = _f(TEXT)
    country: str = _f(COUNTRY)


@_event
class Grown(Event):
    """A producer records a laboratory-grown stone or lot from ``facility`` in ``country`` by ``method`` (CVD or
    HPHT). Exactly one output; nature ``lab_grown``."""

    KIND: ClassVar[str] = "grown"
    facility: str = _f(TEXT)
    country: str = _f(COUNTRY)
    method: str = _f(_enum(GROWTH_METHODS))


@_event
class Registered(Event):
    """A holder registers a stone that has no recorded history (e.g. recovered from old jewellery): origin
    unknown (``XX``), nature as declared. A provenance gap the ledger states rather than hides (DOMAIN.md 5)."""

    KIND: ClassVar[str] = "registered"
    reason: str = _f(TEXT)
    nature: str = _f(_enum(NATURES))


# --- custody and trade ----------------------------------------------------------------------------------------

@_event
class Transferred(Event):
    """The holder hands its inputs to ``to``; both sign. ``mode``: ``title`` (sale: ownership and possession) or
    ``memo`` (consignment: possession only)."""

    KIND: ClassVar[str] = "transferred"
    to: str = _f(ID)
    mode: str = _f(_enum(TRANSFER_MODES))


@_event
class Exported(Event):
    """The holder ships its inputs under Kimberley Process certificate ``kp_certificate`` from the record's place
    to ``to_country`` for ``consignee``. ``certificate_mct``: total mass on the certificate; ``issued_ms`` /
    ``expires_ms``: its validity; ``declared``: mass declared per item. ``kp_authority``: the exporting country's
    KP authority, who co-signs where one is enrolled (DOMAIN.md R7)."""

    KIND: ClassVar[str] = "exported"
    kp_certificate: str = _f(ID)
    to_country: str = _f(COUNTRY)
    consignee: str = _f(ID)
    certificate_mct: int = _f(_positive_mass)
    issued_ms: int = _f(TIME)
    expires_ms: int = _f(TIME)
    declared: tuple[tuple[str, int], ...] = _f(_declared)
    kp_authority: str | None = _f(_optional(ID))


@_event
class Imported(Event):
    """The consignee takes in exported items under the same certificate at the record's place (it becomes holder
    and owner). ``customs``: the importing country's customs, who co-signs where one is enrolled; ``basis``: a
    named legal exemption (industrial, personal use, temporary import for a fair; DOMAIN.md R12) or None."""

    KIND: ClassVar[str] = "imported"
    kp_certificate: str = _f(ID)
    from_country: str = _f(COUNTRY)
    declared: tuple[tuple[str, int], ...] = _f(_declared)
    customs: str | None = _f(_optional(ID))
    basis: str | None = _f(_optional(TEXT))


@_event
class Verified(Event):
    """A G7-style verification ``node`` attests that the holder's input comes from ``countries`` (DOMAIN.md R3)."""

    KIND: ClassVar[str] = "verified"
    node: str = _f(ID)
    countries: tuple[str, ...] = _f(_sorted_set(COUNTRY, 64))


@_event
class Split(Event):
    """The holder splits its one input (consumed) into the outputs, declaring ``loss_mct`` lost; outputs + loss
    must not exceed the input (DOMAIN.md R10). Outputs inherit nature and origin (taint)."""

    KIND: ClassVar[str] = "split"
    loss_mct: int = _f(_mass)


@_event
class Merged(Event):
    """The holder merges two or more inputs (consumed) into one parcel; output + ``loss_mct`` must not exceed
    the inputs. The parcel's origin is the sum of theirs (DESIGN.md §3)."""

    KIND: ClassVar[str] = "merged"
    loss_mct: int = _f(_mass)


@_event
class Graded(Event):
    """Laboratory ``lab`` grades the holder's stone: report number, weighed mass, colour grade (a letter D..Z, e.g.
    ``G``, or a fancy colour, e.g. ``Fancy Intense Yellow``), clarity grade (FL..I3, e.g. ``VS1``) and nature.
    A grade off these scales is ``record.grading_scale``. No cut grade: the record has no cut field."""

    KIND: ClassVar[str] = "graded"
    lab: str = _f(ID)
    report: str = _f(ID)
    mass_mct: int = _f(_positive_mass)
    colour: str = _f(_colour)
    clarity: str = _f(_clarity)
    nature: str = _f(_enum(NATURES))


@_event
class Inscribed(Event):
    """Laboratory ``lab`` laser-inscribes ``inscription`` on the holder's stone (one inscription per live stone)."""

    KIND: ClassVar[str] = "inscribed"
    lab: str = _f(ID)
    inscription: str = _f(ID)


@_event
class Set(Event):
    """The holder sets its input stones into one new article (the output): they are locked until ``unset``."""

    KIND: ClassVar[str] = "set"
    description: str = _f(TEXT)


@_event
class Unset(Event):
    """The holder takes the stones out of an article (consumed): they are free again."""

    KIND: ClassVar[str] = "unset"
    reason: str = _f(TEXT)


@_event
class Retired(Event):
    """The inputs leave the trade: ``lost``, ``stolen``, ``destroyed`` or ``seized`` (by customs). A retired item
    admits no later record (DOMAIN.md fraud 7)."""

    KIND: ClassVar[str] = "retired"
    reason: str = _f(_enum(RETIRE_REASONS))


# --- statements about records ---------------------------------------------------------------------------------

@_event
class Attested(Event):
    """An auditor states ``statement`` about the record whose hash is ``subject`` (e.g. grandfathered stock)."""

    KIND: ClassVar[str] = "attested"
    subject: Digest = _f(DIGEST)
    statement: str = _f(TEXT)


@_event
class Corrected(Event):
    """A signer of record ``subject`` states a correction to it; records are never edited."""

    KIND: ClassVar[str] = "corrected"
    subject: Digest = _f(DIGEST)
    statement: str = _f(TEXT)


EVENT_TYPES: dict[str, type[Any]] = {cls.KIND: cls for cls in (
    Enrolled, KeyAdded, KeyRevoked, Mined, Grown, Registered, Transferred, Exported, Imported, Verified, Split,
    Merged, Graded, Inscribed, Set, Unset, Retired, Attested, Corrected)}
#: Kinds that change the registry (acted and signed by the authority).
REGISTRY_KINDS = frozenset({"enrolled", "key_added", "key_revoked"})


def event_from_fields(kind: str, fields: Mapping[str, Value]) -> Event:
    """Read the ``fields`` map of a record of ``kind``; raises RecordFormatError for an unknown kind."""
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        raise s.fail("kind", f"unknown event kind {kind!r}")
    event: Event = cls.from_fields(fields)
    return event
