"""The audit's replay whose per-record facts are in a :class:`~ledger.spill.Spill` (issue 11,
docs/adr/0022-spilled-record-facts.md): :class:`SpilledState` runs the custody rules of
:class:`~ledger.custody.CustodyState` unchanged, its ``signers``, ``times`` and ``bodies`` mappings and the
items' chains read from the spill.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import Any

from .custody import CustodyState, Signatures
from .hashing import Digest
from .item import Item
from .record import Record
from .spill import Spill, bloom_bits, entry_fields

__all__ = ["SpilledState"]

_CODES = 4096  # sets of signers whose stored form is kept at hand


class _Facts(MutableMapping[Digest, Any]):
    """A record's ``parties`` (``time``: its time_ms) as the replay's mapping from record hash, read from the
    spill. Written by :meth:`SpilledState.note`, never through this mapping."""

    def __init__(self, spill: Spill, time: bool) -> None:
        self._spill, self._time = spill, time
        self._parties: dict[bytes, frozenset[str]] = {}  # a few sets of parties sign every record: one object each

    def get(self, key: Digest, default: Any = None) -> Any:
        found = self._spill.record(key)
        if found is None:
            return default
        if self._time:
            return found[0]
        parties = self._parties.get(found[1])
        if parties is None:
            parties = frozenset(found[1].decode("latin-1").split("\x00")) if found[1] else frozenset()
            if len(self._parties) < _CODES:
                self._parties[found[1]] = parties
        return parties

    def __getitem__(self, key: Digest) -> Any:
        value = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: Digest, value: Any) -> None:
        raise TypeError("a spilled replay keeps a record's facts through SpilledState.note")

    def __delitem__(self, key: Digest) -> None:
        raise TypeError("the spill is append-only: a record's facts are never removed")

    def __iter__(self) -> Iterator[Digest]:
        return (Digest(h) for h in self._spill.hashes("records"))

    def __len__(self) -> int:
        return sum(1 for _ in self)


class _Bodies(MutableMapping[Digest, int]):
    """The replay's body hash -> first position, read from the spill (written by :meth:`SpilledState.note`)."""

    def __init__(self, spill: Spill) -> None:
        self._spill = spill

    def get(self, key: Digest, default: Any = None) -> Any:
        first = self._spill.first_body(key)
        return default if first is None else first

    def __getitem__(self, key: Digest) -> int:
        first = self._spill.first_body(key)
        if first is None:
            raise KeyError(key)
        return first

    def __setitem__(self, key: Digest, value: int) -> None:
        raise TypeError("a spilled replay keeps a body's first position through SpilledState.note")

    def __delitem__(self, key: Digest) -> None:
        raise TypeError("the spill is append-only: a body's first position is never removed")

    def __iter__(self) -> Iterator[Digest]:
        return (Digest(h) for h in self._spill.hashes("bodies"))

    def __len__(self) -> int:
        return sum(1 for _ in self._spill.hashes("bodies"))


class _Touched(Mapping[int, list[str]]):
    """Position -> the ids of the items the replay applied that record to, in the order the items were created
    (``rank``), as :func:`ledger.policy.check_policy_records` lists them; from the spill's facts."""

    def __init__(self, spill: Spill, rank: Mapping[str, int]) -> None:
        self._spill, self._rank = spill, rank

    def __getitem__(self, position: int) -> list[str]:
        entry = self._spill.entry(position) if isinstance(position, int) else b""
        items = entry_fields(entry)[2] if entry else b""
        if not items:
            raise KeyError(position)
        return sorted(items.decode("latin-1").split("\x00")[:-1], key=self._rank.__getitem__)

    def __contains__(self, position: object) -> bool:
        return isinstance(position, int) and bool(self.get(position))

    def __iter__(self) -> Iterator[int]:
        return (p for p in self._spill.positions() if p in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


class SpilledState(CustodyState):
    """A full replay (:class:`~ledger.custody.CustodyState`: the same rules, the same findings) whose per-record
    facts are in a :class:`Spill`: what stays in memory is the items, the registry and the identity claims. An
    item's ``history`` holds its first position only (its creation: what a policy reads of it) and its ``hashes``
    nothing: the rest is in the spill (:meth:`touched`, :meth:`on_chain`). Call :meth:`close` when done (it
    deletes the database)."""

    def __init__(self, origin: str, authority_keys: Iterable[bytes], *, signatures: Signatures | None = None,
                 file_bytes: int = 0) -> None:
        super().__init__(origin, authority_keys, signatures=signatures)
        self.spill = Spill(bloom_bits(file_bytes))
        self.signers, self.times, self.bodies = _Facts(self.spill, False), _Facts(self.spill, True), _Bodies(self.spill)
        self._codes: dict[frozenset[str], bytes] = {}

    def note(self, record: Record, position: int) -> None:
        self.spill.settle()
        parties = frozenset(s.party for s in record.signatures)
        code = self._codes.get(parties)
        if code is None:
            code = "\x00".join(sorted(parties)).encode("ascii")
            if len(self._codes) < _CODES:
                self._codes[parties] = code
        self.spill.note(record.record_hash, position, record.body.time_ms, code)
        self.spill.add_body(record.body_hash, position)

    def chained(self, item: Item, record: Record, position: int) -> None:
        if not item.history:
            item.history.append(position)
        self.spill.chain(position, item.id)

    def on_chain(self, item: Item, record_hash: Digest) -> bool:
        found = self.spill.record(record_hash)
        return found is not None and b"\x00" + item.id.encode("ascii") + b"\x00" in b"\x00" + found[2]

    def touched(self) -> Mapping[int, list[str]]:
        """Position -> the ids of the items applied there, in the order the items were created (once the replay
        is done)."""
        return _Touched(self.spill, {item: rank for rank, item in enumerate(self.items)})

    def close(self) -> None:
        """Delete the spill's database."""
        self.spill.close()
