"""The figures of ``bench_index.py``, each run in a fresh child process: ``python bench/index_figures.py NAME
ARGS`` prints one JSON object (its measurements) on stdout. ``ARGS`` is a JSON object (the ledger's ``path`` and
the figure's parameters). The index functions are looked up by name (``ledger.index.rebuild_index``,
``ledger.index.indexed_log``); a figure whose function is missing returns ``{"missing": name}``.

Only the standard library is imported at module level, so that a process figure (``open``, ``noop``) costs what
a program opening a ledger costs: Python, the library's imports, the call.
"""

from __future__ import annotations

import hashlib
import importlib
import itertools
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from benchkit import payloads, run_figure

if TYPE_CHECKING:
    from ledger import Ledger
    from ledger.keys import PrivateKey
    from ledger.record import Record

Args = dict[str, Any]
STONES = 32  # filler stones F-0000000 .. F-0000031 take the new transfers in turn (they exist for N >= 500)
FIGURES: dict[str, Callable[[Args], Args]] = {}


def figure(fn: Callable[[Args], Args]) -> Callable[[Args], Args]:
    FIGURES[fn.__name__.removeprefix("fig_")] = fn
    return fn


def _index_api(name: str) -> Callable[..., Any] | None:
    """``ledger.index.<name>``, or None while the persistent index does not provide it."""
    try:
        module = importlib.import_module("ledger.index")
    except ImportError:
        return None
    found = getattr(module, name, None)
    return found if callable(found) else None


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


@figure
def fig_noop(a: Args) -> Args:
    """The bound of a process figure: start Python, import the writer, exit."""
    importlib.import_module("ledger._ledger")
    return {}


@figure
def fig_decode(a: Args) -> Args:
    """The bound of the build: one strict decode pass (``Record.from_bytes`` of every payload, read streaming)."""
    from ledger.record import Record

    def decode() -> int:
        count = 0
        for payload in payloads(a["path"]):
            Record.from_bytes(payload)
            count += 1
        return count

    seconds, count = _timed(decode)
    return {"s": seconds, "records": count}


@figure
def fig_build(a: Args) -> Args:
    if (rebuild := _index_api("rebuild_index")) is None:
        return {"missing": "ledger.index.rebuild_index"}
    return {"s": _timed(lambda: rebuild(a["path"], [bytes.fromhex(k) for k in a["keys"]]))[0]}


@figure
def fig_open(a: Args) -> Args:
    from ledger import Ledger
    seconds, ledger = _timed(lambda: Ledger.open(a["path"], [bytes.fromhex(k) for k in a["keys"]]))
    size = ledger.size
    ledger.close()
    return {"s": seconds, "size": size, "index": _index_api("indexed_log") is not None}


def _time_proofs(tree: Any, indices: Sequence[int], size: int) -> Args:
    """Mean seconds of ``tree.inclusion_proof(i, size)`` over ``indices``, a digest of every proof and the root."""
    digest, times = hashlib.sha256(), []
    for i in indices:
        start = time.perf_counter()
        proof = tree.inclusion_proof(i, size)
        times.append(time.perf_counter() - start)
        digest.update(b"".join(bytes(h) for h in proof))
    return {"s": sum(times) / len(times), "first_s": times[0], "digest": digest.hexdigest(),
            "root": bytes(tree.root_at(size)).hex()}


@figure
def fig_proofs(a: Args) -> Args:
    if (open_index := _index_api("indexed_log")) is None:
        return {"missing": "ledger.index.indexed_log"}
    view = open_index(a["path"])
    try:
        return _time_proofs(view.tree, a["indices"], a["size"])
    finally:
        if callable(close := getattr(view, "close", None)):
            close()


@figure
def fig_proofs_bound(a: Args) -> Args:
    """The bound of an inclusion proof: ledger.merkle.MerkleTree over the same leaves, in memory."""
    from ledger.merkle import MerkleTree
    tree = MerkleTree.of_leaves(itertools.islice(payloads(a["path"]), a["size"]))
    return _time_proofs(tree, a["indices"], a["size"])


class _Transfers:
    """Title transfers of the filler stones (:data:`STONES` of them, in turn), each from its holder to another
    trader, dated a minute apart after the ledger's last record (the generator's clock), chained through the
    stones' latest records as they are made, so that a batch may name a stone several times."""

    def __init__(self, ledger: Ledger) -> None:
        import ledgergen as gen
        self.ledger, self.gen = ledger, gen
        self.time_ms = gen.START_MS + ledger.size * gen.STEP_MS
        self.turn = 0
        self.stones: dict[str, tuple[str, str, Any]] = {}  # id -> (holder, place, latest record hash)
        self.keys: dict[str, PrivateKey] = {}

    def _next(self) -> tuple[str, str, str, str, Any]:
        item = f"F-{self.turn % STONES:07d}"
        if item not in self.stones:
            state = self.ledger.item(item)
            self.stones[item] = (state.holder, state.country, dict(self.ledger.inputs(item))[item])
        holder, place, head = self.stones[item]
        traders = self.gen.TRADERS
        start = traders.index(holder) + 1 if holder in traders else 0
        to = traders[(start + self.turn % (len(traders) - 1)) % len(traders)]  # never the holder
        self.turn += 1
        self.time_ms += self.gen.STEP_MS
        return item, holder, to, place, head

    def _signers(self, *parties: str) -> list[tuple[str, PrivateKey]]:
        for party in parties:
            if party not in self.keys:  # (setdefault would derive the key every time)
                self.keys[party] = self.gen.key(party)
        return [(p, self.keys[p]) for p in sorted(parties)]

    def _moved(self, item: str, to: str, record: Record) -> Record:
        self.stones[item] = (to, self.stones[item][1], record.record_hash)
        return record

    def build(self) -> Record:
        from ledger.events import Transferred
        from ledger.record import Body, Record
        item, holder, to, place, head = self._next()
        event = Transferred(to=to, mode="title")
        body = Body(origin=self.ledger.origin, kind=event.KIND, time_ms=self.time_ms, place=place, actor=holder,
                    event=event, inputs=((item, head),))
        return self._moved(item, to, Record.create(body, self._signers(holder, to)))

    def record_event(self) -> Record:
        from ledger.events import Transferred
        item, holder, to, place, _ = self._next()
        record = self.ledger.record_event(Transferred(to=to, mode="title"), actor=holder, place=place,
                                          time_ms=self.time_ms, signers=dict(self._signers(holder, to)),
                                          inputs=[item])
        return self._moved(item, to, record)


def _writer(path: str) -> Ledger:
    """The bench ledger opened for appending. Its records are dated a minute apart from 2025 (10^7 of them
    reach 2044), so the writer's clock is set after them: ``record.time_future`` is not what is measured."""
    import ledgergen as gen

    from ledger import Ledger
    clock = gen.START_MS + 10**9 * gen.STEP_MS
    return Ledger.open(path, gen.trust().authority_keys, now_ms=lambda: clock)


def _raw_ed25519(records: Iterable[Record], keys: dict[str, PrivateKey]) -> float:
    """Seconds to sign and verify every signature of ``records`` again with bare ``cryptography`` Ed25519."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    raw = {party: Ed25519PrivateKey.from_private_bytes(key.seed()) for party, key in keys.items()}
    work = [(raw[s.party], raw[s.party].public_key(), r.signed_message()) for r in records for s in r.signatures]
    start = time.perf_counter()
    for private, public, message in work:
        public.verify(private.sign(message), message)
    return time.perf_counter() - start


@figure
def fig_append(a: Args) -> Args:
    """``record_event`` one at a time, then ``append_batch`` of 100 and of 1,000 (records built and signed in
    the timed loop); after each mode, the raw Ed25519 cost of the same signatures."""
    ledger = _writer(a["path"])
    make, out = _Transfers(ledger), {}
    for mode, size, count in (("single", 1, a["single"]), ("batch100", 100, a["batch100"]),
                              ("batch1000", 1000, a["batch1000"])):
        made: list[Record] = []
        start = time.perf_counter()
        for _ in range(count):
            if mode == "single":
                made.append(make.record_event())
            else:
                batch = [make.build() for _ in range(size)]
                ledger.append_batch(batch)
                made.extend(batch)
        seconds = time.perf_counter() - start
        out[mode] = {"records": len(made), "s": seconds, "raw_s": _raw_ed25519(made, make.keys),
                     "signatures": sum(len(r.signatures) for r in made)}
    ledger.close()
    return out


@figure
def fig_checkpoint(a: Args) -> Args:
    """``Ledger.checkpoint`` right after ``a["new"]`` records were appended (in one batch) since the previous
    checkpoint (signed first, untimed: ``first_s``, a walk of every item when the index has no snapshot yet)."""
    import ledgergen as gen
    ledger = _writer(a["path"])
    first_s, _ = _timed(lambda: ledger.checkpoint(gen.key("operator")))
    make = _Transfers(ledger)
    ledger.append_batch([make.build() for _ in range(a["new"])])
    seconds, note = _timed(lambda: ledger.checkpoint(gen.key("operator")))
    Path(a["note"]).write_text(note)
    size = ledger.size
    ledger.close()
    return {"s": seconds, "size": size, "first_s": first_s}


@figure
def fig_checkpoint_file(a: Args) -> Args:
    import ledgergen as gen

    from ledger import checkpoint_file
    seconds, note = _timed(lambda: checkpoint_file(a["path"], gen.key("operator")))
    Path(a["note"]).write_text(note)
    return {"s": seconds}


@figure
def fig_export(a: Args) -> Args:
    """``ledger.export_bundle`` once cold (``first_s``: the index's pages still on the disk after the figures
    before wrote and evicted them), then up to ``a["repeat"]`` more times (their median is the figure), then as
    many rounds of ``verify_bundle`` of its bundle (the bound), and the bundle's verdict."""
    import ledgergen as gen

    from ledger import export_bundle
    from ledger.bundle import check_bundle, verify_bundle
    note, trust = Path(a["note"]).read_text(), gen.trust()
    runs = _repeat(lambda: export_bundle(a["path"], a["item"], note), a["repeat"] + 1)
    data = runs[0][1]
    verify = [s for s, _ in _repeat(lambda: verify_bundle(data, trust), a["repeat"])]
    Path(a["out"]).write_bytes(data)
    return {"s": _median(s for s, _ in runs[1:] or runs), "first_s": runs[0][0], "runs": len(runs), "bytes": len(data),
            "verify_s": _median(verify), "ok": check_bundle(data, trust).ok}


def _repeat(fn: Callable[[], Any], times: int, budget_s: float = 2.0) -> list[tuple[float, Any]]:
    """(seconds, value) of up to ``times`` calls of ``fn``, fewer once they took ``budget_s`` in all (a slow
    figure needs no median to be read)."""
    runs = [_timed(fn)]
    while len(runs) < times and sum(s for s, _ in runs) < budget_s:
        runs.append(_timed(fn))
    return runs


def _median(values: Iterable[float]) -> float:
    ordered = sorted(values)
    return ordered[len(ordered) // 2]


if __name__ == "__main__":
    sys.exit(run_figure(FIGURES, sys.argv[1:]))
