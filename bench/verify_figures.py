"""The figures of ``bench_verify.py`` that run inside Python, each in a fresh child process:
``python bench/verify_figures.py NAME ARGS`` prints one JSON object (its measurements) on stdout; ``ARGS`` is a
JSON object (the ledger's ``path`` and the figure's parameters).

- ``bound``: the bare Ed25519 verification of every signature of the ledger (the message a record's signatures
  sign, ``Record.signed_message()``, under the key each signature names), with each engine: ``cryptography``
  (``Ed25519PublicKey.verify``) and libsodium (PyNaCl's binding ``crypto_sign_open``), on one core and on every
  core (a fork process pool sharing the signatures). No pre-check, registry or custody rule: RFC 8032 §5.1.7 alone.
- ``merkle``: :class:`ledger.merkle.MerkleTree` over the leaf hashes of the ledger's records (RFC 9162 §2.1.1)
  plus inclusion proofs (§2.1.3.1) of the given leaves; ``pymerkle``: the same with pymerkle's ``InmemoryTree``,
  which hashes the same way when its security mode is on (its default: leaf prefix 0x00, node prefix 0x01, as
  RFC 9162 §2.1.1). Both hash the same record bytes in the timed part; roots and proofs are compared.

:func:`cut_copy` (called by the parent, not timed) writes a ledger's first records to a new file.
Only the standard library and :mod:`benchkit` are imported at module level.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import sys
import time
from array import array
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchkit import payloads, run_figure

Args = dict[str, Any]
ENGINES = ("cryptography", "libsodium")
FIGURES: dict[str, Callable[[Args], Args]] = {}
CHUNKS_PER_CORE = 8  # pool tasks per worker: enough to even out a slow core, few enough to cost nothing


def figure(fn: Callable[[Args], Args]) -> Callable[[Args], Args]:
    FIGURES[fn.__name__.removeprefix("fig_")] = fn
    return fn


# --- the signature bound ----------------------------------------------------------------------------------------

class Signatures:
    """Every signature of a ledger in flat arrays (no object per signature, so 10^6 records fit in ~200 MB):
    signature i is ``sigs[64 i : 64 i + 64]`` by key ``keys[key_of[i]]`` over message ``message_of[i]``
    (``messages`` holds each record's signed message once, ``width`` bytes each: TAG_RECORD_SIG || body hash)."""

    def __init__(self, path: str) -> None:
        from ledger.record import Record
        sigs, messages, key_of, message_of = bytearray(), bytearray(), array("H"), array("I")
        index: dict[bytes, int] = {}
        self.width = self.records = 0
        for payload in payloads(path):
            record = Record.from_bytes(payload)
            message = record.signed_message()
            self.width = len(message)
            messages += message
            for sig in record.signatures:
                key_of.append(index.setdefault(sig.key, len(index)))
                message_of.append(self.records)
                sigs += sig.sig
            self.records += 1
        self.sigs, self.messages, self.key_of, self.message_of = bytes(sigs), bytes(messages), key_of, message_of
        self.keys = list(index)

    def __len__(self) -> int:
        return len(self.key_of)

    def verify(self, engine: str, start: int, end: int) -> int:
        """Verify signatures ``start .. end - 1`` with ``engine``; the number verified. Raises the engine's error
        on a bad signature (the bench ledgers have none)."""
        sigs, messages, key_of, message_of, w = self.sigs, self.messages, self.key_of, self.message_of, self.width
        if engine == "cryptography":
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
            keys = [Ed25519PublicKey.from_public_bytes(k) for k in self.keys]
            for i in range(start, end):
                m = message_of[i] * w
                keys[key_of[i]].verify(sigs[64 * i:64 * i + 64], messages[m:m + w])
        else:
            from nacl.bindings import crypto_sign_open
            raw = self.keys
            for i in range(start, end):
                m = message_of[i] * w
                crypto_sign_open(sigs[64 * i:64 * i + 64] + messages[m:m + w], raw[key_of[i]])
        return end - start


_SHARED: Signatures | None = None  # what the pool's forked workers read (set before the pool forks)


def _verify_chunk(task: tuple[str, int, int]) -> int:
    assert _SHARED is not None
    return _SHARED.verify(*task)


def _chunks(total: int, engine: str, parts: int) -> list[tuple[str, int, int]]:
    step = -(-total // parts)
    return [(engine, lo, min(lo + step, total)) for lo in range(0, total, step)]


@figure
def fig_bound(a: Args) -> Args:
    """Seconds to verify every signature with each engine on one core (``one``) and on ``a["cores"]`` forked
    processes (``all``: the pool is started before the clock, the signatures are shared copy-on-write)."""
    global _SHARED
    start = time.perf_counter()
    _SHARED = sigs = Signatures(a["path"])
    out: Args = {"records": sigs.records, "signatures": len(sigs), "keys": len(sigs.keys),
                 "extract_s": time.perf_counter() - start}
    cores = a["cores"]
    with multiprocessing.get_context("fork").Pool(cores) as pool:
        for engine in a.get("engines", ENGINES):
            one_s, done = _timed(lambda e=engine: sigs.verify(e, 0, len(sigs)))
            tasks = _chunks(len(sigs), engine, cores * CHUNKS_PER_CORE)
            all_s, counts = _timed(lambda t=tasks: pool.map(_verify_chunk, t))
            assert done == sum(counts) == len(sigs)
            out[engine] = {"one_s": one_s, "all_s": all_s, "cores": cores}
    return out


# --- Merkle: the library's tree and pymerkle's on the same leaves ----------------------------------------------

def _leaves(path: str, size: int) -> list[bytes]:
    leaves = []
    for payload in payloads(path):
        if len(leaves) == size:
            break
        leaves.append(payload)
    return leaves


def _proofs_digest(paths: Sequence[Sequence[bytes]]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(len(path).to_bytes(1, "big") + b"".join(bytes(h) for h in path))
    return digest.hexdigest()


@figure
def fig_merkle(a: Args) -> Args:
    """:meth:`ledger.merkle.MerkleTree.of_leaves` of the first ``a["size"]`` records, its root and an
    inclusion proof of each of ``a["indices"]`` (0-based): seconds of the build and of the proofs."""
    from ledger.merkle import MerkleTree
    leaves, n = _leaves(a["path"], a["size"]), a["size"]
    build_s, tree = _timed(lambda: MerkleTree.of_leaves(leaves))
    proofs_s, paths = _timed(lambda: [tree.inclusion_proof(i, n) for i in a["indices"]])
    return {"s": build_s + proofs_s, "build_s": build_s, "proofs_s": proofs_s, "leaves": n,
            "root": bytes(tree.root_at(n)).hex(), "proofs": _proofs_digest(paths)}


@figure
def fig_hash_floor(a: Args) -> Args:
    """The floor of any tree in this interpreter: ``hashlib.sha256`` alone over the same leaves (0x00 || leaf) and
    the interior nodes of their RFC 9162 tree (0x01 || left || right, an odd node carried up), in list
    comprehensions with no type checks, no proofs and no objects kept: seconds."""
    leaves, sha256 = _leaves(a["path"], a["size"]), hashlib.sha256

    def hash_all() -> bytes:
        level = [sha256(b"\x00" + leaf).digest() for leaf in leaves]
        while len(level) > 1:
            carried = [level[-1]] if len(level) % 2 else []
            level = [sha256(b"\x01" + level[i] + level[i + 1]).digest() for i in range(0, len(level) - 1, 2)]
            level += carried
        return level[0]

    seconds, root = _timed(hash_all)
    return {"s": seconds, "root": root.hex()}


@figure
def fig_pymerkle(a: Args) -> Args:
    """The same with pymerkle's ``InmemoryTree("sha256")`` (1-based indices; a proof's path starts with the leaf's
    own hash, then the RFC 9162 siblings); ``{"missing": ...}`` where pymerkle is not installed."""
    try:
        import pymerkle
    except ImportError:
        return {"missing": "pymerkle (pip install -r bench/requirements.txt)"}
    leaves, n = _leaves(a["path"], a["size"]), a["size"]

    def build() -> Any:
        tree = pymerkle.InmemoryTree(algorithm="sha256")  # security mode on: RFC 9162 prefixes
        for leaf in leaves:
            tree.append_entry(leaf)
        return tree

    build_s, tree = _timed(build)
    proofs_s, proofs = _timed(lambda: [tree.prove_inclusion(i + 1, n) for i in a["indices"]])
    return {"s": build_s + proofs_s, "build_s": build_s, "proofs_s": proofs_s, "leaves": n,
            "version": pymerkle.__version__, "root": tree.get_root(n).hex(),
            "proofs": _proofs_digest([p.path[1:] for p in proofs])}


# --- a checkpoint of the ledger, for the audit that checks one ------------------------------------------------

@figure
def fig_checkpoint(a: Args) -> Args:
    """Sign a checkpoint of the ledger at ``a["path"]`` with the generator's operator key
    (:func:`ledger.checkpoint_file`, no index) and write its note to ``a["note"]``: seconds."""
    import ledgergen as gen

    from ledger import checkpoint_file
    seconds, note = _timed(lambda: checkpoint_file(a["path"], gen.key("operator")))
    Path(a["note"]).write_text(note)
    return {"s": seconds}


# --- the truncated copy -----------------------------------------------------------------------------------------

def cut_copy(source: Path, target: Path, records: int) -> int:
    """Write the first ``records`` records of the ledger ``source`` to ``target``: the file's bytes up to the end
    of frame ``records - 1`` (found by :class:`ledger.storage.FrameFile`, docs/format.md §8), that frame made the
    end of its batch (magic ``STR1``) if it was inside one, as a writer that had appended these records alone
    would have left it. Returns the byte length written."""
    from ledger.storage import BATCH_MAGIC, FRAME_MAGIC, FrameFile
    with FrameFile(source) as file:
        last = next(f for f in file.frames() if f.index == records - 1)
    with open(source, "rb") as src, open(target, "wb") as out:
        left = last.end
        while left:
            chunk = src.read(min(left, 1 << 20))
            out.write(chunk)
            left -= len(chunk)
        src.seek(last.offset)
        if src.read(len(BATCH_MAGIC)) == BATCH_MAGIC:
            out.seek(last.offset)
            out.write(FRAME_MAGIC)
    return last.end


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


if __name__ == "__main__":
    sys.exit(run_figure(FIGURES, sys.argv[1:]))
