"""The custody transition table: for each event kind, who acts, who co-signs, and what it takes and makes.

One row per kind (STYLE.md, h11's state machine as one table). :mod:`ledger.custody` applies it; docs/format.md
§5.2 prints it. Item states: ``live`` (free to act on), ``in_transit`` (exported, awaiting import), ``locked``
(set in an article), ``consumed`` (split, merged or unset: dead) and ``retired`` (lost, stolen, destroyed,
seized: dead).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["ANY", "RULES", "STATES", "Rule"]

STATES = ("live", "in_transit", "locked", "consumed", "retired")
ANY: frozenset[str] = frozenset()  # no particular role: any enrolled party
_MANY = 1000
_MAKERS = frozenset({"producer", "trader", "manufacturer"})
_SETTERS = frozenset({"jeweller", "manufacturer", "retailer"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Rule:
    """One row of the transition table.

    ``actor_roles``: roles of which the actor needs one (``ANY``: any enrolled party). ``inputs`` / ``outputs``:
    allowed (min, max) counts. ``input_state``: the state every input must be in. ``holder_acts``: the actor
    must hold every input; ``owner_acts``: and own it (a party holding goods on memo cannot ship, cut, merge,
    set or retire them: that would pass ownership without the owner's signature). ``consumes``: ``"none"``,
    ``"all"`` inputs, or ``"article"`` (the one article input). ``output_types``: item types the outputs may
    have. ``cosigner``: the event field naming a second party who must sign, holding ``cosigner_role``
    (``ANY``: any enrolled party); with ``cosigner_if_enrolled`` the field may be None unless a party with that
    role is enrolled for the record's place (country), and a party it names must be enrolled for that country.
    """

    actor_roles: frozenset[str]
    inputs: tuple[int, int]
    outputs: tuple[int, int] = (0, 0)
    input_state: str = "live"
    holder_acts: bool = True
    owner_acts: bool = False
    consumes: str = "none"
    output_types: frozenset[str] = frozenset()
    cosigner: str | None = None
    cosigner_role: frozenset[str] = ANY
    cosigner_if_enrolled: bool = False

    def cosigner_of(self, event: object) -> str | None:
        """The party ``event`` names as this kind's co-signer (None if the kind has none, or names none)."""
        value = getattr(event, self.cosigner) if self.cosigner else None
        return None if value is None else str(value)


def _roles(*names: str) -> frozenset[str]:
    return frozenset(names)


ROUGH = frozenset({"lot", "stone"})
#: kind -> rule. Registry kinds (enrolled, key_added, key_revoked) are checked by ledger.registry.
RULES: dict[str, Rule] = {
    "mined": Rule(actor_roles=_roles("producer"), inputs=(0, 0), outputs=(1, 1), output_types=ROUGH),
    "grown": Rule(actor_roles=_roles("producer"), inputs=(0, 0), outputs=(1, 1), output_types=ROUGH),
    "registered": Rule(actor_roles=ANY, inputs=(0, 0), outputs=(1, 1), output_types=frozenset({"stone"})),
    "transferred": Rule(actor_roles=ANY, inputs=(1, _MANY), cosigner="to"),
    "exported": Rule(actor_roles=ANY, inputs=(1, _MANY), owner_acts=True, cosigner="kp_authority",
                     cosigner_role=_roles("kp_authority"), cosigner_if_enrolled=True),
    "imported": Rule(actor_roles=ANY, inputs=(1, _MANY), input_state="in_transit", holder_acts=False,
                     cosigner="customs", cosigner_role=_roles("customs"), cosigner_if_enrolled=True),
    "verified": Rule(actor_roles=ANY, inputs=(1, 1), cosigner="node", cosigner_role=_roles("node")),
    "split": Rule(actor_roles=_MAKERS, inputs=(1, 1), owner_acts=True, outputs=(1, _MANY), consumes="all",
                  output_types=ROUGH),
    "merged": Rule(actor_roles=_MAKERS, inputs=(2, _MANY), owner_acts=True, outputs=(1, 1), consumes="all",
                   output_types=frozenset({"lot"})),
    "graded": Rule(actor_roles=ANY, inputs=(1, 1), cosigner="lab", cosigner_role=_roles("lab")),
    "inscribed": Rule(actor_roles=ANY, inputs=(1, 1), cosigner="lab", cosigner_role=_roles("lab")),
    "set": Rule(actor_roles=_SETTERS, inputs=(1, _MANY), owner_acts=True, outputs=(1, 1),
                output_types=frozenset({"article"})),
    "unset": Rule(actor_roles=_SETTERS, inputs=(2, _MANY), owner_acts=True, input_state="locked",
                  consumes="article"),
    "retired": Rule(actor_roles=ANY, inputs=(1, _MANY), owner_acts=True),
    "attested": Rule(actor_roles=_roles("auditor"), inputs=(0, 0)),
    "corrected": Rule(actor_roles=ANY, inputs=(0, 0)),
}
