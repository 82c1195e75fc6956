"""Records: the signed envelope of one custody event, and its canonical bytes.

Wire format (normative text in docs/format.md, "Records")::

    record bytes = RECORD_TAG || canonical-msgpack({"body": bin(body bytes), "sigs": [signature, ...]})
    body bytes   = canonical-msgpack({"v": 1, "origin": str, "kind": str, "time_ms": int, "place": CC,
                                      "actor": party id, "inputs": [[item id, bin32 prev record hash], ...],
                                      "consumes": [item id, ...], "outputs": [{"id", "type", "mass_mct"}, ...],
                                      "fields": {kind-specific, see ledger.events}})
    signature    = {"party": party id, "key": bin32 Ed25519 public key, "sig": bin64}
    body hash    = SHA-256(TAG_RECORD_BODY || body bytes)
    signed bytes = TAG_RECORD_SIG || body hash
    record hash  = SHA-256(0x00 || record bytes)   (= the RFC 9162 leaf hash; what ``inputs`` link to)

``inputs`` are sorted by item id and unique; ``consumes`` is a sorted subset of the input ids; outputs are
sorted by id; signatures are sorted by party and unique. A decoded :class:`Record` keeps the bytes it was read
from; its hashes are always computed from those bytes (STYLE.md: hash the bytes you received).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache

from . import _schema as s
from ._codec import Value, decode, encode
from .errors import DecodeError, RecordFormatError, expect
from .events import Event, event_from_fields
from .hashing import TAG_RECORD_BODY, TAG_RECORD_SIG, Digest, tagged_hash
from .keys import PrivateKey, PublicKey
from .merkle import leaf_hash

__all__ = ["FORMAT_VERSION", "ITEM_TYPES", "RECORD_TAG", "Body", "Output", "Record", "Signature", "signed_parts",
           "verify_signature"]

#: Prefix of every record's bytes: domain-separates record leaves from anything else a log could hold.
RECORD_TAG = b"stonetrail/v1/record\n"
FORMAT_VERSION = 1
#: Kinds of item (DESIGN.md §3): a lot (mass, not individually identified), a stone, an article (jewellery).
ITEM_TYPES = frozenset({"lot", "stone", "article"})
MAX_RECORD_SIZE = 1024 * 1024
_MAX_LIST = 1000
_RECORD_KEYS = frozenset({"body", "sigs"})
_BODY_KEYS = frozenset({"v", "origin", "kind", "time_ms", "place", "actor", "inputs", "consumes", "outputs", "fields"})
_OUTPUT_KEYS = frozenset({"id", "type", "mass_mct"})
_SIGNATURE_KEYS = frozenset({"party", "key", "sig"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Output:
    """A new item a record produces: ledger-unique ``id``, ``type`` in :data:`ITEM_TYPES`, mass in millicarats."""

    id: str
    type: str
    mass_mct: int

    def __post_init__(self) -> None:
        s.read_id(self.id, "outputs.id")
        self._check_type_and_mass()

    def _check_type_and_mass(self) -> None:
        if not isinstance(self.type, str) or self.type not in ITEM_TYPES:
            raise s.fail("outputs.type", f"must be one of {sorted(ITEM_TYPES)}")
        s.read_int(self.mass_mct, "outputs.mass_mct", 1, 10**9)


@dataclass(frozen=True, slots=True, kw_only=True)
class Body:
    """The signed content of a record.

    ``time_ms``: milliseconds since the Unix epoch, UTC, from 2000-01-01 (``record.time_range``). ``place``: ISO
    3166-1 alpha-2 country where the event happened. ``actor``: the party that performs the event (for custody
    kinds, the holder of every input).
    ``inputs``: (item id, record hash of that item's previous record) for every existing item touched.
    """

    origin: str
    kind: str
    time_ms: int
    place: str
    actor: str
    event: Event
    inputs: tuple[tuple[str, Digest], ...] = ()
    consumes: tuple[str, ...] = ()
    outputs: tuple[Output, ...] = ()

    def __post_init__(self) -> None:
        expect(self.event, Event, "event", "an event of ledger.events")
        s.read_text(self.origin, "origin")
        s.read_time(self.time_ms, "time_ms")
        s.read_country(self.place, "place")
        s.read_id(self.actor, "actor")
        self._check_relations(read_inputs=True)

    def _check_relations(self, *, read_inputs: bool) -> None:
        """The checks after the scalar fields, in order; ``read_inputs=False`` skips re-reading each input (id and
        digest), for :meth:`from_value`, which read them with stricter readers (``_read_input``) already."""
        if self.kind != self.event.KIND:
            raise s.fail("kind", f"{self.kind!r} does not match event {self.event.KIND!r}")
        ids = [item for item, _ in self.inputs]
        _sorted_unique(ids, "inputs")
        if read_inputs:
            for item, prev in self.inputs:
                s.read_id(item, "inputs.id")
                Digest(prev)
        _sorted_unique(list(self.consumes), "consumes")
        # With no consumes the test passes, and set(ids) cannot raise: _sorted_unique(ids) just built it.
        if self.consumes and not set(self.consumes) <= set(ids):
            raise s.fail("consumes", "every consumed item must be an input")
        _sorted_unique([o.id for o in self.outputs], "outputs")

    def named_items(self) -> frozenset[str]:
        """Ids of the items this record names: its inputs and its outputs (the records of an item)."""
        return frozenset([*(item for item, _ in self.inputs), *(o.id for o in self.outputs)])

    def to_value(self) -> dict[str, object]:
        """The body map of docs/format.md (before canonical encoding)."""
        return {
            "v": FORMAT_VERSION, "origin": self.origin, "kind": self.kind, "time_ms": self.time_ms,
            "place": self.place, "actor": self.actor,
            "inputs": [[item, prev] for item, prev in self.inputs], "consumes": list(self.consumes),
            "outputs": [{"id": o.id, "type": o.type, "mass_mct": o.mass_mct} for o in self.outputs],
            "fields": self.event.to_fields(),
        }

    @classmethod
    def from_value(cls, value: Value) -> Body:
        """Read a decoded body map strictly; raises RecordFormatError."""
        b = s.read_map(value, "body")
        version = b.get("v")
        if version != FORMAT_VERSION or isinstance(version, bool):
            raise RecordFormatError(f"unsupported record format version {version!r:.80}", code="record.version")
        s.exact_keys(b, "body", _BODY_KEYS)
        kind = s.read_text(b["kind"], "kind")
        # Every field is read here, in the order the constructor's keyword arguments were once evaluated; the
        # instance is then built without __init__, and only the part of __post_init__ that these reads do not
        # already cover runs (origin, time_ms, place, actor and each input were read with the same or stricter
        # readers, under the same field names, so re-reading them could not fail).
        origin = s.read_text(b["origin"], "origin")
        time_ms = s.read_time(b["time_ms"], "time_ms")
        place = s.read_country(b["place"], "place")
        actor = s.read_id(b["actor"], "actor")
        event = event_from_fields(kind, s.read_map(b["fields"], "fields"))
        inputs = tuple([_read_input(v) for v in s.read_list(b["inputs"], "inputs", _MAX_LIST)])
        consumes = tuple([s.read_id(v, "consumes") for v in s.read_list(b["consumes"], "consumes", _MAX_LIST)])
        outputs = tuple([_read_output(v) for v in s.read_list(b["outputs"], "outputs", _MAX_LIST)])
        body = object.__new__(cls)
        _set(body, "origin", origin)
        _set(body, "kind", kind)
        _set(body, "time_ms", time_ms)
        _set(body, "place", place)
        _set(body, "actor", actor)
        _set(body, "event", event)
        _set(body, "inputs", inputs)
        _set(body, "consumes", consumes)
        _set(body, "outputs", outputs)
        body._check_relations(read_inputs=False)
        return body


@dataclass(frozen=True, slots=True, kw_only=True)
class Signature:
    """One party's Ed25519 signature over ``TAG_RECORD_SIG || body hash``, with the key it claims to use."""

    party: str
    key: bytes
    sig: bytes

    def __post_init__(self) -> None:
        s.read_id(self.party, "sigs.party")
        s.read_bytes(self.key, "sigs.key", 32)
        s.read_bytes(self.sig, "sigs.sig", 64)


@dataclass(frozen=True, kw_only=True)
class Record:
    """A record as stored: the exact ``raw`` bytes plus their decoded parts.

    Build one with :meth:`create` (signs) or :meth:`from_bytes` (parses); never construct it by hand.
    ``record_hash`` is the RFC 9162 leaf hash of ``raw`` and is what later records link to.
    """

    raw: bytes
    body: Body
    body_bytes: bytes
    signatures: tuple[Signature, ...]

    @cached_property
    def record_hash(self) -> Digest:
        """SHA-256(0x00 || record bytes): the record's Merkle leaf hash and its id in hash links."""
        return leaf_hash(self.raw)

    @cached_property
    def body_hash(self) -> Digest:
        """SHA-256(TAG_RECORD_BODY || body bytes)."""
        return tagged_hash(TAG_RECORD_BODY, self.body_bytes)

    def signed_message(self) -> bytes:
        """The bytes every signature of this record signs: TAG_RECORD_SIG || body hash."""
        return TAG_RECORD_SIG + self.body_hash

    @classmethod
    def create(cls, body: Body, signers: Sequence[tuple[str, PrivateKey]]) -> Record:
        """Encode ``body`` and sign it as each (party id, private key) in ``signers``.

        Raises:
            RecordFormatError: no signers, or one party named twice.
        """
        if not signers:
            raise RecordFormatError("a record needs at least one signature", code="record.unsigned")
        body_bytes = encode(body.to_value())
        message = TAG_RECORD_SIG + tagged_hash(TAG_RECORD_BODY, body_bytes)
        sigs = sorted((Signature(party=p, key=k.public_key.raw, sig=k.sign(message)) for p, k in signers),
                      key=lambda sg: sg.party)
        _sorted_unique([sg.party for sg in sigs], "sigs")
        envelope = {"body": body_bytes, "sigs": [{"party": sg.party, "key": sg.key, "sig": sg.sig} for sg in sigs]}
        return cls.from_bytes(RECORD_TAG + encode(envelope))

    @classmethod
    def from_bytes(cls, raw: bytes) -> Record:
        """Parse record bytes strictly (tag, canonical envelope, canonical body, schema).

        Signatures are parsed, not verified: that needs the registry (:mod:`ledger.custody`).

        Raises:
            RecordFormatError: code ``record.tag``, ``record.too_large``, ``record.malformed``, ``record.version``
                or ``record.unsigned``; DecodeError codes are re-raised as RecordFormatError with the same code.
        """
        env, body_bytes = _envelope(raw)
        try:
            body = Body.from_value(decode(body_bytes))
        except DecodeError as exc:
            raise RecordFormatError(str(exc), code=exc.code) from exc
        return cls(raw=bytes(raw), body=body, body_bytes=body_bytes, signatures=_signatures(env))

    def verify_signature(self, sig: Signature) -> None:
        """Verify one of this record's signatures with the key it names (no registry check here).

        Raises:
            KeyFormatError: the named key is not a valid Ed25519 point.
            SignatureError: malformed or wrong signature (ledger.keys pre-checks, then RFC 8032 verify).
        """
        verify_signature(sig, self.signed_message())


def signed_parts(raw: bytes) -> tuple[bytes, tuple[Signature, ...]]:
    """The message every signature of the record ``raw`` signs (TAG_RECORD_SIG || body hash) and its signatures,
    read from the envelope alone: the body is hashed, not decoded. For a signature check whose caller decodes
    the record itself (:mod:`ledger.chunks`): every record :meth:`Record.from_bytes` accepts is accepted here,
    with the same message and signatures (the same steps, less the body's).

    Raises:
        RecordFormatError: as :meth:`Record.from_bytes` for a bad tag, envelope or signature list.
    """
    env, body_bytes = _envelope(raw)
    return TAG_RECORD_SIG + tagged_hash(TAG_RECORD_BODY, body_bytes), _signatures(env)


def verify_signature(sig: Signature, message: bytes) -> None:
    """Verify ``sig`` over ``message`` with the key it names (no registry check). Raises as
    :meth:`Record.verify_signature`."""
    _public_key(sig.key).verify(sig.sig, message)


def _envelope(raw: bytes) -> tuple[Mapping[str, Value], bytes]:
    """The record's envelope map and its body bytes (docs/format.md §2): size cap, tag, canonical envelope with
    exactly its keys, body a bin. Raises RecordFormatError (DecodeError codes kept)."""
    if len(raw) > MAX_RECORD_SIZE:
        raise RecordFormatError(f"record is {len(raw)} bytes, cap {MAX_RECORD_SIZE}", code="record.too_large")
    if not raw.startswith(RECORD_TAG):
        raise RecordFormatError("missing the record tag", code="record.tag")
    try:
        env = s.read_map(decode(raw[len(RECORD_TAG):]), "record")
    except DecodeError as exc:
        raise RecordFormatError(str(exc), code=exc.code) from exc
    s.exact_keys(env, "record", _RECORD_KEYS)
    body_bytes = env["body"]
    if not isinstance(body_bytes, bytes):
        raise s.fail("body", "expected bin")
    return env, body_bytes


def _signatures(env: Mapping[str, Value]) -> tuple[Signature, ...]:
    """The envelope's signatures: 1 to 16, each well formed, sorted by party and unique. Raises
    RecordFormatError."""
    sigs = tuple([_read_signature(v) for v in s.read_list(env["sigs"], "sigs", 16)])
    if not sigs:
        raise RecordFormatError("a record needs at least one signature", code="record.unsigned")
    _sorted_unique([sg.party for sg in sigs], "sigs")
    return sigs


@lru_cache(maxsize=4096)
def _public_key(raw: bytes) -> PublicKey:
    """Validated keys, cached: a ledger's few hundred parties sign millions of records."""
    return PublicKey.from_bytes(raw)


#: Sets a field of a frozen dataclass. The readers below build instances with ``object.__new__`` and this, not
#: ``__init__``, when they have already applied every check ``__post_init__`` would run (to the values they are
#: storing, under the same field names, in the same order) and then run the rest themselves; they must set
#: every field (tests/test_record_oracle.py compares them with instances built by ``__init__``).
_set = object.__setattr__


def _sorted_unique(ids: list[str], field_name: str) -> None:
    if not ids:  # the check below cannot fail (or raise) on an empty list
        return
    if ids != sorted(ids) or len(set(ids)) != len(ids):
        raise s.fail(field_name, "must be sorted and unique")


def _read_input(value: Value) -> tuple[str, Digest]:
    pair = s.read_list(value, "inputs", 2)
    if len(pair) != 2:
        raise s.fail("inputs", "each input is [item id, previous record hash]")
    return s.read_id(pair[0], "inputs.id"), s.read_digest(pair[1], "inputs.prev")


def _read_output(value: Value) -> Output:
    o = s.read_map(value, "outputs")
    s.exact_keys(o, "outputs", _OUTPUT_KEYS)
    # Output.__post_init__ would re-read the id just read here, then run _check_type_and_mass.
    output = object.__new__(Output)
    _set(output, "id", s.read_id(o["id"], "outputs.id"))
    _set(output, "type", s.read_text(o["type"], "outputs.type"))
    _set(output, "mass_mct", s.read_int(o["mass_mct"], "outputs.mass_mct"))
    output._check_type_and_mass()
    return output


def _read_signature(value: Value) -> Signature:
    m = s.read_map(value, "sigs")
    s.exact_keys(m, "sigs", _SIGNATURE_KEYS)
    # These are Signature.__post_init__'s three reads, in its order: it would only repeat them.
    sig = object.__new__(Signature)
    _set(sig, "party", s.read_id(m["party"], "sigs.party"))
    _set(sig, "key", s.read_bytes(m["key"], "sigs.key", 32))
    _set(sig, "sig", s.read_bytes(m["sig"], "sigs.sig", 64))
    return sig
