"""Who may sign a ledger's checkpoint: a key that verifiers would not accept as the operator of the ledger's
origin is refused before anything is signed (docs/format.md §7, "Signing a checkpoint").

Verifiers open a checkpoint with the operator keys pinned in their trust file, each a (name, key) pair whose
4-byte key ID hashes both (C2SP signed-note): a checkpoint signed under a name the trust file does not pin with
this key is refused by every verifier (``note.unverified``). StoneTrail signs under the ledger's origin, so an
operator key is made and pinned under that name (``stonetrail keygen --ledger LEDGER``).

Without a trust file the signer cannot know the operator's key; it can still refuse a key the ledger's own
registry gives to a party or to the authority (a trader's key is never the operator's). With one, the
(name, key) pair must be a pinned operator key, and the refusal names the pinned line that was expected.
Pure: registry records and keys in, an error or nothing out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .errors import InputError
from .events import Enrolled, KeyAdded
from .keys import NoteVerifierKey, PublicKey, note_verifier_key
from .record import Record
from .registry import AUTHORITY
from .trust import Trust

__all__ = ["check_checkpoint_signer", "key_owners"]


def key_owners(registry: Iterable[Record]) -> dict[bytes, str]:
    """Raw 32-byte public key -> the party it belongs to in these registry records: enrolled or added for a
    party, or ``authority`` for a key that signs them. The first claim of a key wins; nothing is checked."""
    owners: dict[bytes, str] = {}
    for record in registry:
        for signature in record.signatures:
            owners.setdefault(signature.key, signature.party)
        event = record.body.event
        if isinstance(event, Enrolled | KeyAdded):
            owners.setdefault(event.key, event.party)
    return owners


def check_checkpoint_signer(origin: str, name: str, key: PublicKey, *, owners: Mapping[bytes, str],
                            trust: Trust | None) -> None:
    """Refuse to sign a checkpoint of the ledger ``origin`` as ``name`` with ``key`` unless verifiers could accept it.

    Raises:
        InputError: ``checkpoint.party_key``: ``owners`` (:func:`key_owners` of the ledger's registry) give
            ``key`` to a party or to the authority. ``trust.not_operator``: with ``trust``, (``name``, ``key``)
            is not a pinned operator key; the message says which pinned line was expected and why it is not
            there (the key pinned under another name, another key pinned under this name, the authority's key).
    """
    owner = owners.get(key.raw)
    if owner is not None:
        whose = "the authority's key" if owner == AUTHORITY else f"the key of party {owner!r}"
        raise InputError(f"this key is {whose} in the registry of {origin!r}, not its operator's: a checkpoint is "
                         "signed with the operator key that verifiers pin", code="checkpoint.party_key")
    if trust is None:
        return
    vkey = note_verifier_key(name, key)
    if vkey not in trust.operators:
        raise InputError(_not_pinned(origin, vkey, trust), code="trust.not_operator")


def _not_pinned(origin: str, vkey: NoteVerifierKey, trust: Trust) -> str:
    """Why (``vkey``'s name, key) is not a pinned operator, and the pinned line a verifier would need."""
    signs_as = (f"checkpoints of {origin!r} are signed under its origin" if vkey.name == origin
                else f"this checkpoint of {origin!r} would be signed as {vkey.name!r}")
    expected = f"expected the trust file to pin 'operator {vkey.text()}'"
    by_key = [k.name for k in trust.operators if k.public_key == vkey.public_key]
    by_name = [f"{k.name}+{k.key_id.hex()}" for k in trust.operators if k.name == vkey.name]
    if by_key:
        return (f"this key is pinned as operator under the name {by_key[0]!r}, but {signs_as}: every verifier would "
                f"refuse it (note.unverified); {expected} (make an operator key named after the ledger's origin: "
                "'stonetrail keygen --ledger LEDGER')")
    if by_name:
        return (f"the operator key pinned for {vkey.name!r} is {', '.join(by_name)}, not this key "
                f"({vkey.name}+{vkey.key_id.hex()}): sign with the key file of the pinned key")
    pinned = ", ".join(f"{k.name}+{k.key_id.hex()}" for k in trust.operators)
    if any(k.public_key == vkey.public_key for k in trust.authorities):  # a new user's review: "the authority's key"
        return (f"the trust file pins this key as authority, not as operator (its operator line pins {pinned}): are "
                f"its operator and authority lines swapped? {signs_as}: {expected}")
    return f"this key is not an operator key pinned in the trust file (it pins {pinned}); {signs_as}: {expected}"
