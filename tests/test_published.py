"""A ledger published as C2SP tlog-tiles (`stonetrail publish`, `ledger.published.publish_log`) and one stone's
bundle fetched from it over real HTTP (`stonetrail proof fetch`, `fetch_bundle`): docs/format.md §8.5."""

from __future__ import annotations

import base64
import contextlib
import functools
import gzip
import json
import os
import re
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from copies import copy_demo

from ledger import Ledger, build_demo
from ledger._published_format import encode_entries
from ledger.checkpoint import Checkpoint, sign_checkpoint
from ledger.errors import StoneTrailError
from ledger.events import Mined
from ledger.export import export_bundles
from ledger.hashing import Digest
from ledger.index.reading import indexed_log
from ledger.keyfile import load_private_key
from ledger.keys import PrivateKey
from ledger.note import sign_note
from ledger.published import FetchError, fetch_bundle, fetch_bundles, publish_log
from ledger.record import Output
from ledger.trust import Trust
from stonetrail_cli.main import main

NEW_RECORDS = 1000


class _Handler(SimpleHTTPRequestHandler):
    """Serves the directory; records each path asked for; answers ``server.overrides[path]`` = (status,
    headers, body) instead of the file where given."""

    def do_GET(self) -> None:
        path = self.path.lstrip("/")
        server: Any = self.server
        server.seen.append(path)
        if path in server.overrides:
            status, headers, body = server.overrides[path]
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
            return
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


@contextmanager
def serving(directory: Path, overrides: dict[str, tuple[int, dict[str, str], bytes]] | None = None
            ) -> Iterator[tuple[Any, str]]:
    """A real HTTP server on 127.0.0.1 (a free port) serving ``directory``, shut down after."""
    server: Any = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(directory)))
    server.seen, server.overrides = [], overrides or {}
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server, f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@contextlib.contextmanager
def python_http_server(directory: Path) -> Iterator[str]:
    """``python -m http.server`` serving ``directory`` on 127.0.0.1 (a free port, read from the line it prints),
    stopped after; its URL."""
    server = subprocess.Popen([sys.executable, "-u", "-m", "http.server", "0", "--bind", "127.0.0.1", "--directory",
                               str(directory)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert server.stdout is not None
        ready, _, _ = select.select([server.stdout], [], [], 20)  # bounded: 20 s to start
        line = server.stdout.readline() if ready else ""
        found = re.search(r"port (\d+)", line)
        assert found, f"python -m http.server did not start: {line!r}"
        yield f"http://127.0.0.1:{found[1]}/"
    finally:
        server.terminate()
        server.wait(10)


def cli(*args: str | Path) -> Any:
    return CliRunner().invoke(main, [str(a) for a in args])


def stones(demo: Path) -> list[str]:
    """Story 1's polished stones: the demo writes a bundle for each."""
    return sorted(p.stem for p in (demo / "proofs").glob("*.stproof"))


@pytest.fixture(scope="module")
def site(demo: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo published (read-only for the tests that use it)."""
    out = tmp_path_factory.mktemp("site") / "log"
    publish_log(demo / "demo.ledger", out, (demo / "checkpoint.txt").read_text())
    return out


@pytest.fixture(scope="module")
def trust(demo: Path) -> Trust:
    return Trust.parse((demo / "trust.keys").read_text())


def test_a_publish_reports_its_progress_to_the_end(demo: Path, tmp_path: Path) -> None:
    """A new user's review: publishing 10^5 records ran half a minute with nothing on the terminal."""
    calls: list[tuple[int, int]] = []
    publish_log(demo / "demo.ledger", tmp_path / "log", (demo / "checkpoint.txt").read_text(),
                progress=lambda done, total: calls.append((done, total)))
    total = calls[-1][1]
    assert {t for _, t in calls} == {total} and calls[-1][0] == total > 0  # one total, reached
    assert [done for done, _ in calls] == sorted({done for done, _ in calls})  # counting up, each once


def test_fetch_gives_the_exported_bundle_of_every_polished_stone(demo: Path, site: Path, trust: Trust,
                                                                 tmp_path: Path) -> None:
    note = (demo / "checkpoint.txt").read_text()
    names = stones(demo)
    assert len(names) == 220
    exported = export_bundles(demo / "demo.ledger", names, note)
    with python_http_server(site) as url:  # the acceptance's own server: `python -m http.server` on loopback
        fetched = fetch_bundles(url, names, trust)  # each checked with check_bundle before it is returned
        assert [n for n in names if fetched[n] != exported[n]] == []
        for name in (names[0], names[len(names) // 2], names[-1]):  # the command, then `proof verify`
            out = tmp_path / f"{name}.stproof"
            done = cli("proof", "fetch", url, name, "--trust", demo / "trust.keys", "-o", out)
            assert done.exit_code == 0, done.output
            assert out.read_bytes() == exported[name]
            verified = cli("proof", "verify", out, "--trust", demo / "trust.keys")
            assert verified.exit_code == 0 and "valid" in verified.output, verified.output


def _expected_code(path: str) -> tuple[str, ...]:
    """The codes a flipped byte in ``path`` may be refused with."""
    if path.startswith("tile/entries/"):
        return ("fetch.entry_mismatch",)
    if path.startswith("tile/"):
        return ("fetch.tile_mismatch",)
    if path.startswith(("heads/", "identities/")):
        return ("fetch.leaves_mismatch",)
    if path.startswith("item/"):
        return ("fetch.positions_mismatch",)
    if path.startswith("registry/"):
        return ("fetch.registry_mismatch", "fetch.positions_mismatch")
    return ("note.", "sig.", "checkpoint.")  # the checkpoint: it no longer opens


def test_a_flipped_byte_in_any_file_the_fetch_reads_is_refused(demo: Path, site: Path, trust: Trust,
                                                               tmp_path: Path) -> None:
    copy = tmp_path / "log"
    shutil.copytree(site, copy)
    stone = "R-00001-A"
    with serving(copy) as (server, url):
        good = fetch_bundle(url, stone, trust)
        read = sorted(set(server.seen))
        kinds = {p.split("/")[0] if not p.startswith("tile/") else "/".join(p.split("/")[:2]) for p in read}
        assert {"checkpoint", "heads", "identities", "item", "registry", "tile/0", "tile/1", "tile/entries"} <= kinds
        for path in read:
            original = (copy / path).read_bytes()
            for offset in sorted({0, len(original) // 2, len(original) - 1}):
                flipped = bytearray(original)
                flipped[offset] ^= 0x01
                (copy / path).write_bytes(bytes(flipped))
                with pytest.raises(StoneTrailError) as refused:
                    fetch_bundle(url, stone, trust)
                assert refused.value.code.startswith(_expected_code(path)), (path, offset, refused.value)
            (copy / path).write_bytes(original)
        assert fetch_bundle(url, stone, trust) == good


@pytest.fixture(scope="module")
def grown(demo: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A copy of the demo published, then NEW_RECORDS records appended and published again: the directory's
    files before (path -> bytes), and both checkpoints."""
    base = tmp_path_factory.mktemp("grown")
    copy_demo(demo, base)
    site = base / "log"
    old_note = (base / "checkpoint.txt").read_text()
    publish_log(base / "demo.ledger", site, old_note)
    before = {str(p.relative_to(site)): p.read_bytes() for p in site.rglob("*") if p.is_file()}
    trust = Trust.parse((base / "trust.keys").read_text())
    producer = load_private_key(demo / "keys" / "producer-jwaneng.pem")
    now = int(time.time() * 1000) - 60_000
    with Ledger.open(base / "demo.ledger", trust.authority_keys) as ledger:
        for i in range(NEW_RECORDS):
            ledger.record_event(Mined(mine="Jwaneng", country="BW"), actor="producer-jwaneng", place="BW",
                                time_ms=now + i, signers={"producer-jwaneng": producer},
                                outputs=[Output(id=f"NEW-{i:04d}", type="stone", mass_mct=1000)])
        new_note = ledger.checkpoint(load_private_key(demo / "keys" / "operator.pem"))
    done = publish_log(base / "demo.ledger", site, new_note)
    return {"base": base, "site": site, "before": before, "old": old_note, "new": new_note, "done": done,
            "trust": trust}


def test_publishing_again_rewrites_only_partial_tiles_and_the_checkpoint(grown: dict[str, Any]) -> None:
    site, before, done = grown["site"], grown["before"], grown["done"]
    assert (done.previous, done.tree_size) == (704, 704 + NEW_RECORDS)
    changed = [path for path, data in before.items() if (site / path).read_bytes() != data]
    assert changed == ["checkpoint"]  # partial tiles of a new width are new files: old ones are kept as they are
    assert all(".p/" in path or path == "checkpoint" for path in changed)
    assert all(path not in before for path in done.written)
    assert {"tile/0/002", "tile/0/006.p/168", "tile/1/000.p/6", "tile/entries/006.p/168"} <= set(done.written)
    assert "tile/0/002.p/192" in before and (site / "tile/0/002.p/192").exists()  # pruned nothing
    assert (site / "checkpoint").read_text() == grown["new"]
    again = publish_log(grown["base"] / "demo.ledger", site, grown["new"])
    assert (again.written, again.unchanged) == ((), True)
    with serving(site) as (_, url):  # an old stone and a new one, as the exporter gives them
        names = ["R-00001-A", f"NEW-{NEW_RECORDS - 1:04d}"]
        assert fetch_bundles(url, names, grown["trust"]) == export_bundles(grown["base"] / "demo.ledger", names,
                                                                           grown["new"])


def test_a_checkpoint_that_does_not_extend_the_directory_is_refused(grown: dict[str, Any]) -> None:
    with pytest.raises(StoneTrailError) as refused:
        publish_log(grown["base"] / "demo.ledger", grown["site"], grown["old"])
    assert refused.value.code == "publish.rollback"
    assert (grown["site"] / "checkpoint").read_text() == grown["new"]


def test_a_directory_holding_another_ledgers_log_is_refused(demo: Path, site: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    build_demo(other, seed=2)  # same origin, other keys: another tree
    copy = tmp_path / "log"
    shutil.copytree(site, copy)
    done = cli("publish", other / "demo.ledger", copy)
    assert done.exit_code == 1 and "[publish.fork]" in done.output, done.output
    note = sign_checkpoint(Checkpoint(origin="elsewhere.example/log", tree_size=1, root_hash=Digest(bytes(32))),
                           "elsewhere.example/log", load_private_key(demo / "keys" / "operator.pem"))
    (copy / "checkpoint").write_text(note)
    with pytest.raises(StoneTrailError) as refused:
        publish_log(demo / "demo.ledger", copy, (demo / "checkpoint.txt").read_text())
    assert refused.value.code == "publish.other_log"
    fresh = tmp_path / "fresh"  # a file of another log where this one's would go: never replaced
    (fresh / "tile" / "0").mkdir(parents=True)
    (fresh / "tile" / "0" / "000").write_bytes(bytes(8192))
    with pytest.raises(StoneTrailError) as refused:
        publish_log(demo / "demo.ledger", fresh, (demo / "checkpoint.txt").read_text())
    assert refused.value.code == "publish.conflict" and not (fresh / "checkpoint").exists()


def test_publish_without_an_index_says_how_to_build_one(demo: Path, tmp_path: Path) -> None:
    shutil.copy(demo / "demo.ledger", tmp_path / "demo.ledger")
    shutil.copy(demo / "checkpoint.txt", tmp_path / "checkpoint.txt")
    done = cli("publish", tmp_path / "demo.ledger", tmp_path / "site" / "v1" / "log")
    assert done.exit_code == 3 and "[publish.no_index]" in done.output and "stonetrail index" in done.output
    assert "Traceback" not in done.output
    # a new user's review: a refusal left the folder, holding the lock file; a later one: and the parents it made
    assert not (tmp_path / "site").exists()


def test_publish_refuses_a_fifo_given_as_the_ledger_without_waiting(demo: Path, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "f.ledger")
    done = cli("publish", tmp_path / "f.ledger", tmp_path / "log", "--checkpoint", demo / "checkpoint.txt")
    assert done.exit_code == 2 and "[store.not_a_file]" in done.output and not (tmp_path / "log").exists()


def test_a_checkpoint_of_another_ledger_is_named_so_and_leaves_no_folder(demo: Path, tmp_path: Path) -> None:
    """A new user's review: it was "the index cannot answer at tree size N" (build it), and a folder was left."""
    (tmp_path / "other").mkdir()
    cli("init", tmp_path / "other" / "o.ledger", "--origin", "other.example/log", "--trust", demo / "trust.keys")
    cli("keygen", "--name", "other.example/log", "-o", tmp_path / "o.pem")
    cli("checkpoint", tmp_path / "other" / "o.ledger", "--key", tmp_path / "o.pem", "-o", tmp_path / "o.txt")
    done = cli("publish", demo / "demo.ledger", tmp_path / "log", "--checkpoint", tmp_path / "o.txt")
    assert done.exit_code == 1 and "[checkpoint.origin_mismatch]" in done.output, done.output
    assert not (tmp_path / "log").exists()


def test_an_entry_over_65535_bytes_is_refused() -> None:
    assert encode_entries([b"x" * 65535]) == b"\xff\xff" + b"x" * 65535
    with pytest.raises(StoneTrailError) as refused:
        encode_entries([b"x" * 65536])
    assert refused.value.code == "publish.entry_too_large"


def test_an_unknown_item_is_named(demo: Path, site: Path, trust: Trust, tmp_path: Path) -> None:
    with serving(site) as (_, url):
        with pytest.raises(StoneTrailError) as refused:
            fetch_bundle(url, "NO-SUCH-STONE", trust)
        assert refused.value.code == "item.unknown"
        done = cli("proof", "fetch", url, "NO-SUCH-STONE", "--trust", demo / "trust.keys", "-o", tmp_path / "x")
        assert done.exit_code == 2 and "[item.unknown]" in done.output and not (tmp_path / "x").exists()


def test_an_unreachable_url_is_one_line_and_exit_3(demo: Path, tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = cli("proof", "fetch", f"http://127.0.0.1:{port}/", "R-00001-A", "--trust", demo / "trust.keys",
               "-o", tmp_path / "x", "--timeout", "2")
    assert done.exit_code == 3 and "[fetch.unavailable]" in done.output, done.output
    assert len(done.output.strip().splitlines()) == 1 and "Traceback" not in done.output


@pytest.mark.parametrize(("path", "headers", "size"), [
    ("checkpoint", {"Content-Length": str(2 << 20)}, 2 << 20),  # refused from its header
    ("tile/1/000.p/2", {}, 8193),  # no length given: refused after reading one byte over the cap
])
def test_a_too_large_file_is_refused(demo: Path, site: Path, trust: Trust, path: str, headers: dict[str, str],
                                     size: int) -> None:
    with serving(site, {path: (200, headers, bytes(size))}) as (_, url), pytest.raises(StoneTrailError) as refused:
        fetch_bundle(url, "R-00001-A", trust)
    assert refused.value.code == "fetch.too_large"


def test_a_redirect_to_another_host_is_refused(site: Path, trust: Trust) -> None:
    away = {"checkpoint": (302, {"Location": "http://localhost:1/checkpoint"}, b"")}
    with serving(site, away) as (_, url), pytest.raises(StoneTrailError) as refused:
        fetch_bundle(url, "R-00001-A", trust)
    assert refused.value.code == "fetch.redirect"


def test_gzip_sent_unasked_is_read_within_the_cap(demo: Path, site: Path, trust: Trust) -> None:
    """C2SP tlog-tiles lets a log send Content-Encoding: gzip without negotiation; a bomb is cut at the cap."""
    zipped = {path: (200, {"Content-Encoding": "gzip"}, gzip.compress((site / path).read_bytes()))
              for path in ("checkpoint", "tile/entries/000", "tile/0/000")}
    with serving(site, zipped) as (server, url):
        assert fetch_bundle(url, "R-00001-A", trust) == (demo / "proofs" / "R-00001-A.stproof").read_bytes()
        assert {"checkpoint", "tile/entries/000"} <= set(server.seen)
    bomb = {"tile/1/000.p/2": (200, {"Content-Encoding": "gzip"}, gzip.compress(bytes(1 << 20)))}
    with serving(site, bomb) as (_, url), pytest.raises(StoneTrailError) as refused:
        fetch_bundle(url, "R-00001-A", trust)
    assert refused.value.code == "fetch.too_large"


def test_a_cosigned_checkpoint_is_published_byte_for_byte(demo: Path, trust: Trust, tmp_path: Path) -> None:
    """A witness's cosignature line (C2SP tlog-cosignature: key id, timestamp, signature) stays in the note, and
    the fetched bundle is the one exported under that same note."""
    cosignature = base64.b64encode(bytes(range(4)) + bytes(8) + bytes(64)).decode()
    note = (demo / "checkpoint.txt").read_text() + f"— witness.example/w1 {cosignature}\n"
    publish_log(demo / "demo.ledger", tmp_path / "log", note)
    assert (tmp_path / "log" / "checkpoint").read_text() == note
    with serving(tmp_path / "log") as (_, url):
        assert fetch_bundle(url, "R-00001-A", trust) == export_bundles(demo / "demo.ledger", ["R-00001-A"],
                                                                       note)["R-00001-A"]


def test_a_checkpoint_by_another_key_replaces_the_directorys_only_under_trust(demo: Path, trust: Trust,
                                                                             tmp_path: Path) -> None:
    """Without --trust, publish cannot tell an operator key from any other: a checkpoint signed by a key that did
    not sign the directory's (which every client pinning the operator would refuse) does not replace it."""
    note, out = (demo / "checkpoint.txt").read_text(), tmp_path / "log"
    publish_log(demo / "demo.ledger", out, note)
    origin = note.splitlines()[0]
    other = sign_note(note[:note.rindex("\n\n") + 1], [(origin, PrivateKey.from_seed(bytes([7]) * 32))])
    with pytest.raises(StoneTrailError) as refused:
        publish_log(demo / "demo.ledger", out, other)
    assert refused.value.code == "publish.other_signer" and (out / "checkpoint").read_text() == note
    with pytest.raises(StoneTrailError) as unpinned:
        publish_log(demo / "demo.ledger", out, other, trust=trust)
    assert unpinned.value.code == "note.unverified" and (out / "checkpoint").read_text() == note
    assert publish_log(demo / "demo.ledger", out, note).unchanged  # the operator's own: as before
    result = cli("publish", demo / "demo.ledger", out, "--checkpoint", _write(tmp_path / "other.txt", other))
    assert result.exit_code == 1 and "[publish.other_signer]" in result.output, result.output


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_a_checkpoint_older_than_the_index_kept_trees_for_is_published_from_the_log(
        demo: Path, trust: Trust, tmp_path: Path) -> None:
    """A new-user trial: with witnesses down, the operator re-published the last witnessed checkpoint, but the index
    no longer kept that size's item-head and identity trees (it keeps the last two signed), and publish asked for
    an index that was already there. The trees at that size now come from one pass over the log."""
    copy_demo(demo, tmp_path)
    old_note = (tmp_path / "checkpoint.txt").read_text()
    producer = load_private_key(demo / "keys" / "producer-jwaneng.pem")
    now = int(time.time() * 1000) - 60_000
    with Ledger.open(tmp_path / "demo.ledger", trust.authority_keys) as ledger:
        for i in range(3):  # three later checkpoints: the index keeps the trees of the last two only
            ledger.record_event(Mined(mine="Jwaneng", country="BW"), actor="producer-jwaneng", place="BW",
                                time_ms=now + i, signers={"producer-jwaneng": producer},
                                outputs=[Output(id=f"LATE-{i}", type="stone", mass_mct=1000)])
            ledger.checkpoint(load_private_key(demo / "keys" / "operator.pem"))
    assert indexed_log(tmp_path / "demo.ledger", 704) is None  # the index cannot answer at that size
    done = publish_log(tmp_path / "demo.ledger", tmp_path / "site", old_note)
    assert done.tree_size == 704
    url = (tmp_path / "site").as_uri() + "/"
    assert fetch_bundles(url, ["R-00001-A"], trust) == export_bundles(tmp_path / "demo.ledger", ["R-00001-A"],
                                                                      old_note, as_of=True)


def test_a_server_that_answers_a_byte_at_a_time_is_given_up_at_the_timeout(trust: Trust) -> None:
    """An adversarial review: a server dripping its status line and headers, or its body, kept 'proof fetch
    --timeout 3' waiting for over 90 s; the timeout now bounds each whole answer."""
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.5)

    def drip() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                for byte in b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000:
                    if stop.wait(0.2):
                        break
                    try:
                        conn.sendall(bytes([byte]))
                    except OSError:
                        break

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    try:
        start = time.monotonic()
        with pytest.raises(FetchError) as caught:
            fetch_bundle(f"http://127.0.0.1:{listener.getsockname()[1]}/", "R-00001-A", trust, timeout=1.0)
        assert caught.value.code == "fetch.unavailable" and time.monotonic() - start < 5
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def test_two_publishers_of_one_directory_are_one_at_a_time(demo: Path, tmp_path: Path) -> None:
    import fcntl
    out = tmp_path / "site"
    out.mkdir()
    with open(out / ".publish.lock", "w") as held:  # another publish is running
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(StoneTrailError) as caught:
            publish_log(demo / "demo.ledger", out, (demo / "checkpoint.txt").read_text())
        assert caught.value.code == "publish.locked" and not (out / "checkpoint").exists()
    assert publish_log(demo / "demo.ledger", out, (demo / "checkpoint.txt").read_text()).written


def test_recheck_finds_a_file_altered_since_it_was_published(demo: Path, site: Path, tmp_path: Path) -> None:
    """Publishing again compares only the new files; with --recheck every file DIR holds is compared with what
    the ledger gives, so one altered since (here a full tile, which a plain publish never reads again) is named,
    and nothing is replaced."""
    copy = tmp_path / "log"
    shutil.copytree(site, copy)
    tile = copy / "tile" / "0" / "000"
    tile.write_bytes(bytes(len(tile.read_bytes())))
    again = cli("publish", demo / "demo.ledger", copy, "--json")
    assert again.exit_code == 0 and json.loads(again.output)["written"] == 0, again.output
    rechecked = cli("publish", demo / "demo.ledger", copy, "--recheck")
    assert rechecked.exit_code == 1 and "[publish.conflict]" in rechecked.output, rechecked.output
    assert "tile/0/000 holds other bytes" in rechecked.output and tile.read_bytes() == bytes(8192)
    clean = tmp_path / "clean"
    shutil.copytree(site, clean)
    assert cli("publish", demo / "demo.ledger", clean, "--recheck").exit_code == 0


def test_a_stored_tree_whose_leaves_are_not_the_checkpoints_is_never_published(tmp_path: Path) -> None:
    """A review rewrote a stone's leaf in the item-head tree the index keeps at the checkpoint's size, and its
    positions to match, hiding its latest record (checksums computed again; the tree's line left as it was):
    publish wrote a heads file that does not hash to the signed heads line, which every client then refused.
    Now the leaves are checked against the line's root and nothing is written."""
    import sqlite3
    from contextlib import closing

    from test_index_heads import STATEMENTS, _hide_last, _put_snapshot_pairs, _snapshot_pairs, signed_trade

    from ledger.heads import Head, ItemHeads, head_leaf
    from ledger.index.db import index_path

    path, records, note = signed_trade(tmp_path)
    positions = ItemHeads.of(enumerate(records)).index
    item = min(i for i, at in positions.items() if len(at) >= 2 and records[at[-1]].body.kind not in STATEMENTS)
    at = list(positions[item])
    with closing(sqlite3.connect(index_path(path))) as db:
        _hide_last(db, records, item)
        size, pairs = _snapshot_pairs(db)
        for pair in pairs:
            if bytes(pair[0]) == item.encode():
                pair[1] = head_leaf(item, Head(at[-2], records[at[-2]].record_hash, len(at) - 1))
        _put_snapshot_pairs(db, size, pairs)
        db.commit()
    with pytest.raises(StoneTrailError) as refused:
        publish_log(path, tmp_path / "site", note)
    assert refused.value.code == "publish.no_index" and not (tmp_path / "site" / "checkpoint").exists()


def test_a_directory_holding_other_files_is_never_published_into(demo: Path, tmp_path: Path) -> None:
    """Everything in the directory is served with the log: publishing into a ledger's output folder would serve
    its private keys (a new-user review did it). A directory holding only a published log's files (here those of a
    publish interrupted before its checkpoint) is published into."""
    folder = copy_demo(demo, tmp_path / "out", "*")
    note = (demo / "checkpoint.txt").read_text()
    before = sorted(p.name for p in folder.iterdir())
    done = cli("publish", folder / "demo.ledger", folder)
    assert done.exit_code == 2 and "[publish.not_a_log]" in done.output and "demo.ledger" in done.output, done.output
    assert sorted(p.name for p in folder.iterdir()) == before
    site = tmp_path / "site"
    publish_log(demo / "demo.ledger", site, note)
    (site / "checkpoint").unlink()  # as if interrupted before its last write
    assert publish_log(demo / "demo.ledger", site, note).written == ()
    assert (site / "checkpoint").read_text() == note


def test_publishing_a_database_ledger_says_to_copy_it_to_a_file_first(tmp_path: Path) -> None:
    """A new user's review: `publish postgresql://…` was refused with the reason `index` and `repair` give."""
    done = cli("publish", "postgresql://stonetrail@127.0.0.1:5432/node", tmp_path / "site")
    assert done.exit_code == 2 and "copy the database ledger to a file first ('stonetrail copy" in done.output
    assert "nothing to build or repair" not in done.output and not (tmp_path / "site").exists()
