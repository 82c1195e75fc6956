"""Identities: the checkpoint's commitment to every claim on an item id, report number or inscription
(docs/format.md §7d; ADR 0010).

One item id names one item (``item.duplicate_id``), and one grading report number or laser inscription belongs
to one stone that is not consumed (``identity.duplicate_report`` / ``identity.duplicate_inscription``; DOMAIN.md
R11). These rules are about the whole ledger, and a proof bundle holds one item's provenance; so a checkpoint
commits, in a third extension line signed with the rest of the note, to every claim on every identifier below
its tree size::

    stonetrail-identities <identity count> <base64 identity root>

The identity root is the RFC 9162 root hash (§2.1.1) of the *identity tree*: one leaf per identity — a kind
(``item``, ``report``, ``inscription``) and a key (the identifier's :func:`ledger._text.fold`, so that ids a
reader would confuse are one identity) — sorted by the UTF-8 bytes of kind, NUL, key; with leaf input::

    TAG_IDENTITY || canonical-msgpack([kind, key, [[position, item, until], ...]])

one *claim* per record that names the identifier, in log order: for ``item``, each output of a readable custody
record; for ``report`` (``inscription``), each ``graded`` (``inscribed``) record, ``item`` being the stone it
names. ``until`` is the position of the first later record that consumes the stone or grades (inscribes) it
with another key — from there on its claim stands in nobody's way — or nil. The claims are read from the
records' bytes alone, whether or not the records obey the rules.

Who holds an identity follows from its claims (:func:`refused_claims`), as the full replay decides it
(:meth:`ledger.custody.CustodyState.assign_identity`): the first claim holds it; a later claim by another item
is refused while the holder's claim stands (for ``item``: always). A bundle proves each identity its
provenance claims with the leaf's inclusion proof *and its neighbours'*: the leaves just before and after it
have other keys, so the sorted tree holds no second leaf for that key (an unsorted tree is the operator's lie,
which an audit of the checkpoint names: ``checkpoint.identities_mismatch``). Pure: records in, values out.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableMapping, MutableSet, Sequence
from dataclasses import dataclass
from typing import Final

from ._codec import decode, encode
from ._text import fold
from .checkpoint import Checkpoint, extension_line, format_counted_line, parse_counted_line
from .errors import DecodeError, InputError, VerificationError
from .events import Graded, Inscribed
from .findings import Finding
from .hashing import TAG_IDENTITY, Digest
from .merkle import MerkleTree, leaf_hash, verify_inclusion
from .record import Record

__all__ = ["IDENTITIES_EXTENSION", "KINDS", "Claim", "IdentityIndex", "IdentityLeaf", "checkpoint_identities",
           "claims_of", "identity_findings", "proven_leaf", "refused_claims"]

#: First word of the checkpoint extension line that commits to every identity's claims.
IDENTITIES_EXTENSION: Final = "stonetrail-identities"
#: Identity kind -> the finding code of a refused claim.
KINDS: Final = {"item": "item.duplicate_id", "report": "identity.duplicate_report",
                "inscription": "identity.duplicate_inscription"}


@dataclass(frozen=True, slots=True)
class Claim:
    """One record's claim on an identity: its leaf index ``position``, the ``item`` it claims for, and the
    position ``until`` which the claim stands (None: to the end)."""

    position: int
    item: str
    until: int | None = None


@dataclass(frozen=True, slots=True)
class IdentityLeaf:
    """One leaf of the identity tree: an identity (``kind``, folded ``key``) and every claim on it."""

    kind: str
    key: str
    claims: tuple[Claim, ...]

    @property
    def sort_key(self) -> bytes:
        """The tree's order: UTF-8 of kind, NUL, key."""
        return sort_key(self.kind, self.key)

    def to_bytes(self) -> bytes:
        """The leaf input: TAG_IDENTITY || canonical-msgpack([kind, key, [[position, item, until], ...]])."""
        return TAG_IDENTITY + encode([self.kind, self.key, [[c.position, c.item, c.until] for c in self.claims]])

    @classmethod
    def from_bytes(cls, data: bytes) -> IdentityLeaf:
        """Parse a leaf input strictly (canonical msgpack, the shape above, claims in increasing position).

        Raises:
            InputError: ``identity.malformed``.
        """
        def bad(why: str) -> InputError:
            return InputError(f"identity leaf: {why}", code="identity.malformed")

        if not data.startswith(TAG_IDENTITY):
            raise bad("no identity tag")
        try:
            value = decode(data[len(TAG_IDENTITY):])
        except DecodeError as exc:
            raise bad(str(exc)) from exc
        if not (isinstance(value, list) and len(value) == 3 and value[0] in KINDS and isinstance(value[1], str)
                and isinstance(value[2], list) and value[2]):
            raise bad("not [kind, key, [claim, ...]]")
        claims = tuple(_claim(c, bad) for c in value[2])
        if any(b.position < a.position for a, b in itertools.pairwise(claims)):
            raise bad("claims out of log order")
        return cls(value[0], value[1], claims)


def _claim(value: object, bad: Callable[[str], InputError]) -> Claim:
    if not (isinstance(value, list) and len(value) == 3 and type(value[0]) is int and value[0] >= 0
            and isinstance(value[1], str) and (value[2] is None or (type(value[2]) is int and value[2] > value[0]))):
        raise bad("a claim is not [position, item, until > position or nil]")
    return Claim(value[0], value[1], value[2])


def sort_key(kind: str, key: str) -> bytes:
    """The identity tree's order of (kind, key): UTF-8 of kind, NUL, key."""
    return kind.encode("utf-8") + b"\x00" + key.encode("utf-8")


def claims_of(record: Record) -> list[tuple[str, str, str]]:
    """The (kind, folded key, item) claims ``record`` makes: each output id (custody kinds), the report number of
    a ``graded`` or the inscription of an ``inscribed`` record on the stone it names."""
    body, event = record.body, record.body.event
    found = [("item", fold(o.id), o.id) for o in body.outputs]
    if isinstance(event, Graded | Inscribed) and body.inputs:
        kind, value = ("report", event.report) if isinstance(event, Graded) else ("inscription", event.inscription)
        found.append((kind, fold(value), body.inputs[0][0]))
    return found


def refused_claims(kind: str, claims: Sequence[Claim]) -> list[Claim]:
    """The claims the rules refuse (as :meth:`ledger.custody.CustodyState.assign_identity` and the output-id
    check do): for ``item`` every claim after the first; otherwise a claim by another item while the holder's
    claim stands (its ``until`` is None or later)."""
    refused: list[Claim] = []
    holder: Claim | None = None
    for claim in claims:
        standing = holder is not None and (holder.until is None or holder.until > claim.position)
        if holder is not None and (kind == "item" or (standing and holder.item != claim.item)):
            refused.append(claim)
        else:
            holder = claim
    return refused


@dataclass(slots=True)
class Standing:
    """A stone's standing report and inscription claims: ``head``, the record that last moved it as the replay
    moves it (followed through hash links), and per kind the key and the indices of its claims in that key's list."""

    head: Digest
    claims: dict[str, tuple[str, list[int]]]


class IdentityIndex:
    """Every identity's claims, collected from records in log order (:meth:`add`), and the identity tree.

    A standing claim ends at a record that consumes the stone or claims another key of its kind *and links to the
    stone's head* (its last record so followed): a replay applies such a record. A record whose link is another
    (a fork, or a broken link) may not be applied by the replay (ADR 0003), so from then on the stone's claims
    stand for good: the index is never laxer than the replay's rule, only stricter on a faulty log.
    """

    def __init__(self) -> None:
        self._claims: MutableMapping[tuple[str, str], list[Claim]] = {}
        self._holder: MutableMapping[tuple[str, str], int] = {}  # identity -> index of the claim that holds it
        self._standing: MutableMapping[str, Standing] = {}  # stone -> its standing report / inscription claims
        self._frozen: MutableSet[str] = set()  # stones whose chain broke while they held a claim: nothing ends
        self._tree: tuple[list[IdentityLeaf], dict[tuple[str, str], int], MerkleTree] | None = None

    def use(self, *, claims: MutableMapping[tuple[str, str], list[Claim]],
            holder: MutableMapping[tuple[str, str], int], standing: MutableMapping[str, Standing],
            frozen: MutableSet[str]) -> None:
        """Keep the index in these mappings instead of dictionaries (the persistent index's tables,
        :mod:`ledger.index.state`); they hold the index of the records added so far."""
        self._claims, self._holder, self._standing, self._frozen = claims, holder, standing, frozen
        self._tree = None

    def add(self, position: int, record: Record) -> None:
        """Add ``record`` at leaf index ``position`` (after every record added so far)."""
        for item, link in record.body.inputs:
            standing = self._standing.get(item)
            if standing is None:
                continue
            if link != standing.head:  # not the stone's head: the replay may not apply it
                self._frozen.add(item)
                del self._standing[item]
            elif item in record.body.consumes:
                self._end(position, item, standing, list(standing.claims))
                del self._standing[item]
            else:
                standing.head = record.record_hash
        for kind, key, item in claims_of(record):
            claims = self._claims.setdefault((kind, key), [])
            if self._refuses(kind, key, Claim(position, item)) is None:
                self._holder[(kind, key)] = len(claims)
            if kind != "item" and item not in self._frozen:
                standing = self._standing.setdefault(item, Standing(record.record_hash, {}))
                if standing.claims.get(kind, (key,))[0] != key:
                    self._end(position, item, standing, [kind])
                standing.claims.setdefault(kind, (key, []))[1].append(len(claims))
            claims.append(Claim(position, item))
        self._tree = None

    def refused(self, position: int, record: Record) -> list[tuple[str, str, str, str]]:
        """(kind, key, item, holder) of each claim of ``record``, as the next record at ``position``, that the
        rules refuse (:func:`refused_claims`, decided on the claims so far): the one rule of who holds an
        identity, shared by the writer, the full replay and the checkpoint's identity tree. Changes nothing."""
        found, made = [], []
        for kind, key, item in claims_of(record):
            holder = self._refuses(kind, key, Claim(position, item))
            if holder is None and kind == "item" and (kind, key) in made:
                holder = next(i for k, ky, i in claims_of(record) if (k, ky) == (kind, key))  # twice in one record
            if holder is not None:
                found.append((kind, key, item, holder))
            made.append((kind, key))
        return found

    def _refuses(self, kind: str, key: str, claim: Claim) -> str | None:
        """The item that holds (kind, key) against ``claim`` (None: the claim holds it)."""
        at = self._holder.get((kind, key))
        if at is None:
            return None
        holder = self._claims[(kind, key)][at]
        standing = holder.until is None or holder.until > claim.position
        return holder.item if kind == "item" or (standing and holder.item != claim.item) else None

    def _end(self, position: int, item: str, standing: Standing, kinds: list[str]) -> None:
        """End ``item``'s standing claims of ``kinds`` at ``position``."""
        for kind in kinds:
            key, slots = standing.claims.pop(kind)
            claims = self._claims[(kind, key)]
            for slot in slots:
                claims[slot] = Claim(claims[slot].position, item, position)

    def __len__(self) -> int:
        return len(self._claims)

    def _built(self) -> tuple[list[IdentityLeaf], dict[tuple[str, str], int], MerkleTree]:
        if self._tree is None:
            leaves = sorted((IdentityLeaf(k, key, tuple(c)) for (k, key), c in self._claims.items()),
                            key=lambda leaf: leaf.sort_key)
            ranks = {(leaf.kind, leaf.key): rank for rank, leaf in enumerate(leaves)}
            self._tree = (leaves, ranks, MerkleTree.of_leaves(leaf.to_bytes() for leaf in leaves))
        return self._tree

    def leaves(self) -> Iterator[bytes]:
        """Every leaf input of the identity tree, in tree order."""
        return (leaf.to_bytes() for leaf in self._built()[0])

    def root(self) -> Digest:
        """RFC 9162 root hash of the identity tree (of the empty tree: SHA-256 of nothing)."""
        return self._built()[2].root()

    def extension(self) -> str:
        """The checkpoint extension line ``stonetrail-identities <identity count> <base64 root>``."""
        return format_counted_line(IDENTITIES_EXTENSION, len(self), self.root())

    def proofs(self, identities: Iterable[tuple[str, str]]) -> list[tuple[int, bytes, tuple[Digest, ...]]]:
        """(index, leaf input, inclusion proof) of each identity and of its neighbours in the tree, sorted by
        index, each once. KeyError if an identity has no leaf."""
        leaves, ranks, tree = self._built()
        wanted: set[int] = set()
        for identity in identities:
            rank = ranks[identity]
            wanted.update(r for r in (rank - 1, rank, rank + 1) if 0 <= r < len(leaves))
        return [(r, leaves[r].to_bytes(), tuple(tree.inclusion_proof(r))) for r in sorted(wanted)]


def checkpoint_identities(cp: Checkpoint) -> tuple[int, Digest]:
    """The (identity count, identity root) of ``cp``'s one ``stonetrail-identities`` line.

    Raises:
        VerificationError: ``checkpoint.identities_missing``. NoteFormatError: ``checkpoint.extension``.
    """
    missing = VerificationError(f"checkpoint has no {IDENTITIES_EXTENSION} line: it does not commit to who "
                                "claimed each item id, report number and inscription",
                                code="checkpoint.identities_missing")
    return parse_counted_line(extension_line(cp, IDENTITIES_EXTENSION, missing), IDENTITIES_EXTENSION)


def proven_leaf(index: int, leaf: bytes, proof: Sequence[Digest], count: int, root: Digest) -> IdentityLeaf:
    """The leaf input ``leaf``, parsed, once its RFC 9162 inclusion proof (§2.1.3.2) leads from ``index`` to
    ``root`` of a tree of ``count`` leaves (both from a signed checkpoint, never from the proof).

    Raises:
        ProofError: the proof does not verify. InputError: ``identity.malformed``.
    """
    verify_inclusion(leaf_hash(leaf), index, count, proof, root)
    return IdentityLeaf.from_bytes(leaf)


def identity_findings(claims: Iterable[tuple[str, str, str, int]], leaves: Mapping[int, IdentityLeaf],
                      count: int) -> list[Finding]:
    """Judge a bundle's own ``claims`` — (kind, folded key, item, position) — against the proven ``leaves`` of
    the identity tree of ``count`` leaves (:func:`proven_leaf`).

    Each claim needs its identity's leaf with both neighbours proven and in order (``identity.unproven``: else
    the tree could hold a second leaf for the key), the claim listed in it (``identity.claim_missing``: the
    checkpoint does not commit to this record's claim), and not refused by :func:`refused_claims` (the rule's
    own code, as a full replay names it: ``item.duplicate_id``, ``identity.duplicate_report``,
    ``identity.duplicate_inscription``).
    """
    ranks = {(leaf.kind, leaf.key): index for index, leaf in leaves.items()}
    found = []
    for kind, key, item, position in claims:
        index = ranks.get((kind, key))
        leaf = leaves[index] if index is not None else None
        if index is None or leaf is None or not _alone(leaves, index, count):
            found.append(Finding(code="identity.unproven", position=position, item=item, reason=(
                f"no proof that {kind} {key!r} has one leaf in the checkpoint's identity tree (its leaf and "
                "both neighbours, in order)")))
            continue
        mine = [c for c in leaf.claims if (c.position, c.item) == (position, item)]
        if not mine:
            found.append(Finding(code="identity.claim_missing", position=position, item=item, reason=(
                f"the checkpoint's identity tree does not list this record's claim on {kind} {key!r}")))
        elif mine[0] in refused_claims(kind, leaf.claims):
            others = sorted({c.item for c in leaf.claims if c.item != item and c.position < position})
            found.append(Finding(code=KINDS[kind], position=position, item=item, reason=(
                f"{kind} {key!r} (ignoring case and look-alikes) is already held by {', '.join(others)}")))
    return found


def _alone(leaves: Mapping[int, IdentityLeaf], index: int, count: int) -> bool:
    """The leaf at ``index`` has proven neighbours (where the tree has them) with a smaller and a larger key."""
    key = leaves[index].sort_key
    before, after = leaves.get(index - 1), leaves.get(index + 1)
    return ((index == 0 or (before is not None and before.sort_key < key))
            and (index == count - 1 or (after is not None and after.sort_key > key)))
