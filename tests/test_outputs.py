"""Every file the CLI and the library write is new (never over an existing name, a ledger least of all), never
written through a symbolic link, and appears only whole (ledger._files): the data-loss attacks of issue 8."""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ledger import Ledger, Transferred, Trust, checkpoint_file, export_bundle, keyfile, note_verifier_key
from ledger._files import Replaced, replace_file, write_file, write_files
from ledger.consistency import ConsistencyProof, format_consistency_proof
from ledger.errors import StorageError
from ledger.storage import FileStore
from stonetrail_cli.main import main
from world import ORIGIN, World, key

OPERATOR = key("operator")
TRUST = Trust(operators=(note_verifier_key(ORIGIN, OPERATOR.public_key),),
              authorities=(note_verifier_key("authority", key("authority").public_key),))


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


@dataclass(frozen=True)
class Files:
    """A directory with a clean ledger (stone S0) and a forked one (S0 sold twice), their checkpoints, a checkpoint
    of a third ledger (b.txt) that splits from the clean one, the trust file and the operator key."""

    dir: Path
    clean: Path
    forked: Path


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Files:
    d = tmp_path_factory.mktemp("outputs")
    w = World()
    w.enrol_all()
    shared = list(w.records)
    s0 = w.mine("S0")
    assert w.add(s0) == []
    s1 = w.mine("S1")
    t1 = w.make(Transferred(to="trader-b", mode="title"), "producer-a", inputs=["S0"], place="BW")
    t2 = w.make(Transferred(to="trader-e", mode="title"), "producer-a", inputs=["S0"], place="BW")
    authority = {w.keys["authority"].public_key.raw}
    notes = {}
    for name, records in (("clean", [*shared, s0]), ("b", [*shared, s1]), ("forked", [*shared, s0, t1])):
        with Ledger.create(d / f"{name}.ledger", ORIGIN, authority) as led:
            led.append_batch(records)
            notes[name] = led.checkpoint(OPERATOR)
    with FileStore.open(d / "forked.ledger", writable=True) as store:
        store.append(t2.raw)  # a second successor of S0's mining record: a chain fork
    (d / "clean.txt").write_text(notes["clean"])
    (d / "b.txt").write_text(notes["b"])  # a split view: the same size as clean.txt, another root
    (d / "same-size.proof").write_text(format_consistency_proof(ConsistencyProof(
        old_size=len(shared) + 1, new_size=len(shared) + 1, hashes=())))
    (d / "forked.txt").write_text(checkpoint_file(d / "forked.ledger", OPERATOR))
    (d / "trust.keys").write_text(TRUST.format())
    keyfile.save_private_key(d / "operator.pem", OPERATOR)
    return Files(d, d / "clean.ledger", d / "forked.ledger")


@pytest.fixture
def writer_lock(files: Files) -> Iterator[None]:
    """Another process holds the writer lock on the forked ledger while the test runs."""
    code = ("import sys; from ledger.storage import FileStore; s = FileStore.open(sys.argv[1], writable=True); "
            "print('locked', flush=True); sys.stdin.read()")
    child = subprocess.Popen([sys.executable, "-c", code, str(files.forked)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None and child.stdout.readline() == "locked\n"
    yield
    child.communicate("", timeout=30)


def _no_leftovers(directory: Path) -> None:
    assert not [p.name for p in directory.iterdir() if p.name.endswith(".tmp")]


@pytest.mark.parametrize("locked", [False, True])
def test_fork_evidence_onto_its_own_ledger_is_refused(files: Files, locked: bool,
                                                      request: pytest.FixtureRequest) -> None:
    if locked:
        request.getfixturevalue("writer_lock")
    before = files.forked.read_bytes()
    result = run("evidence", "fork", files.forked, "--checkpoint", files.dir / "forked.txt", "-o", files.forked)
    assert result.exit_code == 3 and "[store.exists]" in result.output, result.output
    assert files.forked.read_bytes() == before
    _no_leftovers(files.dir)
    out = files.dir / f"fork-{locked}.ev"  # the neighbour: a new file is written
    assert run("evidence", "fork", files.forked, "--checkpoint", files.dir / "forked.txt", "-o", out).exit_code == 0
    assert out.read_bytes().startswith(b"stonetrail/v1/evidence\n")


def _commands(files: Files, out: Path) -> dict[str, list[str | Path]]:
    d = files.dir
    return {
        "evidence fork": ["evidence", "fork", files.forked, "--checkpoint", d / "forked.txt", "-o", out],
        "consistency": ["consistency", d / "clean.txt", d / "b.txt", "--proof", d / "same-size.proof", "--trust",
                        d / "trust.keys", "--evidence-out", out],
        "checkpoint": ["checkpoint", files.clean, "--key", d / "operator.pem", "-o", out],
        "proof export": ["proof", "export", files.clean, "S0", "--checkpoint", d / "clean.txt", "-o", out],
        "keygen": ["keygen", "--name", "example.com/k", "-o", out],
    }


@pytest.mark.parametrize("command", ["evidence fork", "consistency", "checkpoint", "proof export", "keygen"])
def test_no_output_is_written_through_a_symbolic_link(files: Files, command: str, tmp_path: Path) -> None:
    victim, link, dangling = tmp_path / "victim.txt", tmp_path / "out", tmp_path / "dangling"
    victim.write_bytes(b"a file the user keeps")
    link.symlink_to(victim)
    dangling.symlink_to(tmp_path / "created-through-the-link")
    for out in (link, dangling):
        result = run(*_commands(files, out)[command])
        assert result.exit_code == 3 and "symbolic link" in result.output, result.output
        assert ("[key.exists]" if command == "keygen" else "[store.exists]") in result.output
    assert victim.read_bytes() == b"a file the user keeps" and not (tmp_path / "created-through-the-link").exists()
    _no_leftovers(tmp_path)
    fresh = run(*_commands(files, tmp_path / "fresh")[command])  # the neighbour: a new name is written
    assert fresh.exit_code in (0, 1) and (tmp_path / "fresh").stat().st_size > 0, fresh.output


def test_a_failed_bundle_write_leaves_nothing_and_the_retry_succeeds(files: Files, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    out, real_write = tmp_path / "S0.stproof", os.write

    def half_then_disk_full(fd: int, data: bytes) -> int:
        if len(data) < 1000:
            return real_write(fd, data)
        real_write(fd, bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    args = ["proof", "export", files.clean, "S0", "--checkpoint", files.dir / "clean.txt", "-o", out]
    monkeypatch.setattr(os, "write", half_then_disk_full)
    failed = run(*args)
    monkeypatch.undo()
    assert failed.exit_code == 3 and "[store.io]" in failed.output and "No space left" in failed.output
    assert list(tmp_path.iterdir()) == []  # no truncated bundle, no temporary file
    retry = run(*args)
    assert retry.exit_code == 0, retry.output
    assert out.read_bytes() == export_bundle(files.clean, "S0", (files.dir / "clean.txt").read_text())  # whole


# --- the helper -----------------------------------------------------------------------------------------------


def test_write_file_is_new_whole_and_private_when_asked(tmp_path: Path) -> None:
    old_umask = os.umask(0)  # even a permissive umask must not widen a private file's mode
    try:
        public = write_file(tmp_path / "a.txt", b"public")
        private = write_file(tmp_path / "k.pem", b"secret", private=True)
    finally:
        os.umask(old_umask)
    assert public.read_bytes() == b"public" and stat.S_IMODE(public.stat().st_mode) == 0o644
    assert private.read_bytes() == b"secret" and stat.S_IMODE(private.stat().st_mode) == 0o600
    for existing in (public, tmp_path):  # a file, a directory
        with pytest.raises(StorageError) as err:
            write_file(existing, b"other")
        assert err.value.code == "store.exists"
    assert public.read_bytes() == b"public"
    _no_leftovers(tmp_path)


def test_write_files_writes_all_or_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "second").write_bytes(b"kept")
    with pytest.raises(StorageError) as err:
        write_files([(tmp_path / "first", b"1"), (tmp_path / "second", b"2")])
    assert err.value.code == "store.exists"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["second"] and (tmp_path / "second").read_bytes() == b"kept"

    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "Input/output error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(StorageError) as io:
        write_files([(tmp_path / "first", b"1"), (tmp_path / "third", b"3")])
    assert io.value.code == "store.io" and sorted(p.name for p in tmp_path.iterdir()) == ["second"]


def test_a_file_system_without_hard_links_gets_the_same_guarantees(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    def no_link(src: object, dst: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")  # as on FAT

    monkeypatch.setattr(os, "link", no_link)
    target = write_file(tmp_path / "bundle.stproof", b"whole", private=True)
    assert target.read_bytes() == b"whole" and stat.S_IMODE(target.stat().st_mode) == 0o600
    (tmp_path / "link").symlink_to(tmp_path / "victim")
    for existing in (target, tmp_path / "link"):
        with pytest.raises(StorageError) as err:
            write_file(existing, b"other")
        assert err.value.code == "store.exists"
    assert target.read_bytes() == b"whole" and not (tmp_path / "victim").exists()
    _no_leftovers(tmp_path)


# --- replacing the published checkpoint (ledger._files.replace_file) -----------------------------------------------


def _kept_as(name: str) -> Callable[[bytes], Path]:
    def keep(old: bytes) -> Path:
        return Path(name)
    return keep


def test_replace_keeps_the_old_bytes_under_their_name_then_renames(tmp_path: Path) -> None:
    target = tmp_path / "checkpoint.txt"
    assert replace_file(target, b"first", _kept_as(str(tmp_path / "never"))) == Replaced(kept=None, unchanged=False)
    old_inode = target.stat().st_ino
    done = replace_file(target, b"second", lambda old: tmp_path / f"kept-{old.decode()}.txt")
    assert done == Replaced(kept=tmp_path / "kept-first.txt", unchanged=False)
    assert target.read_bytes() == b"second" and (tmp_path / "kept-first.txt").read_bytes() == b"first"
    assert (tmp_path / "kept-first.txt").stat().st_ino == old_inode  # the old file itself, linked, not a copy
    same = replace_file(target, b"second", _kept_as(str(tmp_path / "never")))
    assert same == Replaced(kept=None, unchanged=True) and not (tmp_path / "never").exists()
    _no_leftovers(tmp_path)


def test_an_interrupt_after_the_replacement_leaves_the_files_written_with_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An adversarial review: SIGTERM (raised as an interrupt) while the directories were synced, after the
    checkpoint was replaced, removed the consistency proof written with it. Before the replacement: nothing."""
    import ledger._files as files

    target, proof = tmp_path / "checkpoint.txt", tmp_path / "p.txt"
    target.write_bytes(b"first")

    def interrupted(paths: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(files, "_sync_directories", interrupted)
    with pytest.raises(KeyboardInterrupt):
        replace_file(target, b"second", lambda old: tmp_path / "kept.txt", also=[(proof, b"proof")])
    assert target.read_bytes() == b"second" and proof.read_bytes() == b"proof"  # the replacement stands, whole
    monkeypatch.setattr(files, "_swap", lambda *args: (_ for _ in ()).throw(KeyboardInterrupt()))
    with pytest.raises(KeyboardInterrupt):
        replace_file(target, b"third", lambda old: tmp_path / "kept2.txt", also=[(tmp_path / "q.txt", b"q")])
    assert target.read_bytes() == b"second" and not (tmp_path / "q.txt").exists()  # before it: none


def test_replace_never_goes_through_a_symbolic_link_or_over_a_directory(tmp_path: Path) -> None:
    victim, link = tmp_path / "victim.txt", tmp_path / "checkpoint.txt"
    victim.write_bytes(b"a file the user keeps")
    link.symlink_to(victim)
    with pytest.raises(StorageError) as err:
        replace_file(link, b"new", _kept_as(str(tmp_path / "kept.txt")))
    assert err.value.code == "store.exists" and "symbolic link" in str(err.value)
    assert link.is_symlink() and victim.read_bytes() == b"a file the user keeps"
    (tmp_path / "dir").mkdir()
    with pytest.raises(StorageError) as directory:
        replace_file(tmp_path / "dir", b"new", _kept_as(str(tmp_path / "kept.txt")))
    assert directory.value.code == "store.not_a_file"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.txt", "dir", "victim.txt"]


def test_replace_refuses_a_kept_name_with_other_bytes_and_a_refusing_keep(tmp_path: Path) -> None:
    target, kept = tmp_path / "checkpoint.txt", tmp_path / "checkpoint-1.txt"
    target.write_bytes(b"old")
    kept.write_bytes(b"something else")
    with pytest.raises(StorageError) as err:
        replace_file(target, b"new", _kept_as(str(kept)))
    assert err.value.code == "store.exists" and target.read_bytes() == b"old"
    assert kept.read_bytes() == b"something else"

    def refuse(old: bytes) -> Path:
        raise StorageError("not this one", code="store.io")

    with pytest.raises(StorageError):
        replace_file(target, b"new", refuse, also=[(tmp_path / "proof.txt", b"p")])
    assert target.read_bytes() == b"old" and not (tmp_path / "proof.txt").exists()
    kept.write_bytes(b"old")  # the old bytes are already kept under that name: it is reused
    done = replace_file(target, b"new", _kept_as(str(kept)), also=[(tmp_path / "proof.txt", b"p")])
    assert done.kept == kept and target.read_bytes() == b"new" and (tmp_path / "proof.txt").read_bytes() == b"p"
    _no_leftovers(tmp_path)


def test_replace_without_hard_links_copies_the_old_bytes_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_link(src: object, dst: object, **kwargs: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")  # as on FAT

    target = tmp_path / "checkpoint.txt"
    target.write_bytes(b"old")
    monkeypatch.setattr(os, "link", no_link)
    done = replace_file(target, b"new", _kept_as(str(tmp_path / "checkpoint-3.txt")))
    assert done.kept == tmp_path / "checkpoint-3.txt" and done.kept.read_bytes() == b"old"
    assert target.read_bytes() == b"new"
    _no_leftovers(tmp_path)
