"""Event kinds: the kind-specific ``fields`` map of a record body, as frozen, validated value types.

Each class knows its ``KIND`` (the body's ``kind`` text), turns itself into the ``fields`` map
(:meth:`to_fields`) and reads one back strictly (:meth:`from_fields`); docs/format.md lists every field.
Which parties must sign which kind, and what a kind does to items, is the custody rules' business
(:mod:`ledger.custody`), not this module's. Units: masses in integer millicarats (``*_mct``; 1 ct = 1000 mct).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar, TypeAlias

from . import _schema as s
from ._codec import Value
from .hashing import Digest

__all__ = [
    "EVENT_TYPES",
    "NATURES",
    "ROLES",
    "Enrolled",
    "Event",
    "Graded",
    "Mined",
    "Split",
    "Transferred",
    "event_from_fields",
]

#: Roles the accreditation authority can grant (never self-assigned; DOMAIN.md "Who signs").
ROLES = frozenset({
    "producer", "trader", "manufacturer", "lab", "jeweller", "retailer",
    "kp_authority", "node", "customs", "auditor",
})
#: Nature of a stone, fixed at creation (DOMAIN.md R9).
NATURES = frozenset({"natural", "lab_grown"})
MAX_MASS_MCT = 10**9  # one million carats: far above any real lot


def _check(ok: bool, field: str, reason: str) -> None:
    if not ok:
        raise s.fail(field, reason)


@dataclass(frozen=True, slots=True, kw_only=True)
class Enrolled:
    """The authority enrolls ``party`` with ``roles``, ``country`` and Ed25519 ``key`` (32 raw bytes).

    ``registry_prev`` is the record hash of the previous registry record (None for the first), forming the
    registry's own hash chain (DESIGN.md §3). The key's point validity is judged at registry replay, where a
    bad key becomes a finding rather than an unreadable record.
    """

    KIND: ClassVar[str] = "enrolled"
    party: str
    name: str
    roles: tuple[str, ...]
    country: str
    key: bytes
    registry_prev: Digest | None

    def __post_init__(self) -> None:
        s.read_id(self.party, "enrolled.party")
        s.read_text(self.name, "enrolled.name")
        s.read_country(self.country, "enrolled.country")
        s.read_bytes(self.key, "enrolled.key", 32)
        _check(bool(self.roles), "enrolled.roles", "at least one role")
        _check(list(self.roles) == sorted(set(self.roles)), "enrolled.roles", "must be sorted and unique")
        _check(set(self.roles) <= ROLES, "enrolled.roles", f"unknown role in {list(self.roles)}")

    def to_fields(self) -> dict[str, object]:
        """The ``fields`` map of docs/format.md."""
        return {"party": self.party, "name": self.name, "roles": list(self.roles), "country": self.country,
                "key": self.key, "registry_prev": self.registry_prev}

    @classmethod
    def from_fields(cls, f: Mapping[str, Value]) -> Enrolled:
        """Read the ``fields`` map strictly; raises RecordFormatError."""
        s.exact_keys(f, "enrolled", {"party", "name", "roles", "country", "key", "registry_prev"})
        prev = f["registry_prev"]
        return cls(party=s.read_id(f["party"], "enrolled.party"), name=s.read_text(f["name"], "enrolled.name"),
                   roles=tuple(s.read_text(r, "enrolled.roles") for r in s.read_list(f["roles"], "enrolled.roles", 16)),
                   country=s.read_country(f["country"], "enrolled.country"),
                   key=s.read_bytes(f["key"], "enrolled.key", 32),
                   registry_prev=None if prev is None else s.read_digest(prev, "enrolled.registry_prev"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Mined:
    """A producer records a natural rough stone or lot recovered at ``mine`` in ``country`` (a claim the
    ledger can only attest, never prove). The record has exactly one output; nature is ``natural``."""

    KIND: ClassVar[str] = "mined"
    mine: str
    country: str

    def __post_init__(self) -> None:
        s.read_text(self.mine, "mined.mine")
        s.read_country(self.country, "mined.country")

    def to_fields(self) -> dict[str, object]:
        """The ``fields`` map of docs/format.md."""
        return {"mine": self.mine, "country": self.country}

    @classmethod
    def from_fields(cls, f: Mapping[str, Value]) -> Mined:
        """Read the ``fields`` map strictly; raises RecordFormatError."""
        s.exact_keys(f, "mined", {"mine", "country"})
        return cls(mine=s.read_text(f["mine"], "mined.mine"), country=s.read_country(f["country"], "mined.country"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Transferred:
    """The holder (the record's actor) hands its input items to party ``to``; both must sign."""

    KIND: ClassVar[str] = "transferred"
    to: str

    def __post_init__(self) -> None:
        s.read_id(self.to, "transferred.to")

    def to_fields(self) -> dict[str, object]:
        """The ``fields`` map of docs/format.md."""
        return {"to": self.to}

    @classmethod
    def from_fields(cls, f: Mapping[str, Value]) -> Transferred:
        """Read the ``fields`` map strictly; raises RecordFormatError."""
        s.exact_keys(f, "transferred", {"to"})
        return cls(to=s.read_id(f["to"], "transferred.to"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Split:
    """The holder splits its one input (consumed) into the record's outputs, declaring ``loss_mct`` lost
    (cutting, polishing); outputs + loss must not exceed the input's mass (DOMAIN.md R10)."""

    KIND: ClassVar[str] = "split"
    loss_mct: int

    def __post_init__(self) -> None:
        s.read_int(self.loss_mct, "split.loss_mct", 0, MAX_MASS_MCT)

    def to_fields(self) -> dict[str, object]:
        """The ``fields`` map of docs/format.md."""
        return {"loss_mct": self.loss_mct}

    @classmethod
    def from_fields(cls, f: Mapping[str, Value]) -> Split:
        """Read the ``fields`` map strictly; raises RecordFormatError."""
        s.exact_keys(f, "split", {"loss_mct"})
        return cls(loss_mct=s.read_int(f["loss_mct"], "split.loss_mct", 0, MAX_MASS_MCT))


@dataclass(frozen=True, slots=True, kw_only=True)
class Graded:
    """Laboratory ``lab`` grades the holder's one input stone: report number, weighed mass in millicarats,
    colour and clarity grades (as the lab writes them, e.g. ``G``, ``VS1``) and nature."""

    KIND: ClassVar[str] = "graded"
    lab: str
    report: str
    mass_mct: int
    colour: str
    clarity: str
    nature: str

    def __post_init__(self) -> None:
        s.read_id(self.lab, "graded.lab")
        s.read_id(self.report, "graded.report")
        s.read_int(self.mass_mct, "graded.mass_mct", 1, MAX_MASS_MCT)
        s.read_text(self.colour, "graded.colour", max_len=16)
        s.read_text(self.clarity, "graded.clarity", max_len=16)
        _check(self.nature in NATURES, "graded.nature", f"must be one of {sorted(NATURES)}")

    def to_fields(self) -> dict[str, object]:
        """The ``fields`` map of docs/format.md."""
        return {"lab": self.lab, "report": self.report, "mass_mct": self.mass_mct, "colour": self.colour,
                "clarity": self.clarity, "nature": self.nature}

    @classmethod
    def from_fields(cls, f: Mapping[str, Value]) -> Graded:
        """Read the ``fields`` map strictly; raises RecordFormatError."""
        s.exact_keys(f, "graded", {"lab", "report", "mass_mct", "colour", "clarity", "nature"})
        return cls(lab=s.read_id(f["lab"], "graded.lab"), report=s.read_id(f["report"], "graded.report"),
                   mass_mct=s.read_int(f["mass_mct"], "graded.mass_mct", 1, MAX_MASS_MCT),
                   colour=s.read_text(f["colour"], "graded.colour", max_len=16),
                   clarity=s.read_text(f["clarity"], "graded.clarity", max_len=16),
                   nature=s.read_text(f["nature"], "graded.nature"))


Event: TypeAlias = Enrolled | Mined | Transferred | Split | Graded
#: kind text -> event class. New kinds are added here and in the custody transition table.
EVENT_TYPES: dict[str, type[Enrolled] | type[Mined] | type[Transferred] | type[Split] | type[Graded]] = {
    cls.KIND: cls for cls in (Enrolled, Mined, Transferred, Split, Graded)
}


def event_from_fields(kind: str, fields: Mapping[str, Value]) -> Event:
    """Read the ``fields`` map of a record of ``kind``; raises RecordFormatError for an unknown kind."""
    cls = EVENT_TYPES.get(kind)
    if cls is None:
        raise s.fail("kind", f"unknown event kind {kind!r}")
    return cls.from_fields(fields)
