"""``stonetrail copy`` from file to file (``ledger.copy_ledger``): a backup beside the ledger, in the folder of the
checkpoint published for it, is a plain copy (a new user's review: it was refused as a rollback of the published
log, and left the partial copy's index files behind); a copy that fails leaves nothing behind."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ledger import Ledger, Trust, check_ledger, copy_ledger
from ledger.errors import CorruptStoreError, NoteFormatError, StorageError, VerificationError
from ledger.storage import FileStore, scan
from stonetrail_cli.main import main


def run(*args: object) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def _folder(demo: Path, tmp_path: Path) -> Path:
    for name in ("demo.ledger", "trust.keys", "checkpoint.txt"):
        shutil.copy(demo / name, tmp_path / name)
    return tmp_path / "demo.ledger"


def test_a_backup_beside_the_ledger_and_its_published_checkpoint_is_copied_whole(demo: Path, tmp_path: Path) -> None:
    ledger = _folder(demo, tmp_path)
    result = run("copy", ledger, tmp_path / "backup.ledger", "--trust", tmp_path / "trust.keys")
    assert result.exit_code == 0, result.output
    assert "keep backups in another folder" in result.stderr  # it falls short of the next checkpoint published
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup.ledger", "backup.ledger.index", "checkpoint.txt",
                                                         "demo.ledger", "trust.keys"]
    trust = Trust.parse((tmp_path / "trust.keys").read_text())
    report = check_ledger(tmp_path / "backup.ledger", trust, checkpoint=(tmp_path / "checkpoint.txt").read_text())
    assert report.findings == () and report.record_count == 704  # the records whole: the checkpoint's root is theirs
    assert report.root_hash == check_ledger(ledger, trust).root_hash


def test_a_copy_that_fails_leaves_no_partial_file_behind(demo: Path, tmp_path: Path) -> None:
    ledger = _folder(demo, tmp_path)
    data = bytearray(ledger.read_bytes())
    data[len(data) // 2] ^= 1  # a record in the middle fails its CRC: the copy stops there
    ledger.write_bytes(bytes(data))
    trust = Trust.parse((tmp_path / "trust.keys").read_text())
    with pytest.raises(CorruptStoreError):
        copy_ledger(ledger, tmp_path / "backup.ledger", trust.authority_keys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.txt", "demo.ledger", "trust.keys"]


def test_a_new_ledger_beside_a_published_checkpoint_of_its_origin_is_refused_before_any_file(demo: Path,
                                                                                              tmp_path: Path) -> None:
    """Creating one would fork the published log: refused with ``checkpoint.beyond_log``, no file left; another
    origin in the same folder is created. A writer opening a ledger short of that checkpoint is refused and leaves
    no index -wal or -shm file open."""
    ledger = _folder(demo, tmp_path)
    origin = check_ledger(ledger, None).origin
    trust = tmp_path / "trust.keys"
    refused = run("init", tmp_path / "new.ledger", "--origin", origin, "--trust", trust)
    assert refused.exit_code == 1 and "[checkpoint.beyond_log]" in refused.stderr and "would fork" in refused.stderr
    assert not list(tmp_path.glob("new.ledger*"))
    assert run("init", tmp_path / "other.ledger", "--origin", "other.example/ledger", "--trust", trust).exit_code == 0
    frames = scan(ledger).frames
    short = tmp_path / "short" / "demo.ledger"
    short.parent.mkdir()
    shutil.copy(tmp_path / "checkpoint.txt", short.parent / "checkpoint.txt")
    with FileStore.create(short, origin) as store:
        store.append_batch([f.payload for f in frames[:700]])
    with pytest.raises(VerificationError) as err:
        Ledger.open(short, Trust.parse(trust.read_text()).authority_keys)
    assert err.value.code == "checkpoint.beyond_log"
    assert sorted(p.name for p in short.parent.iterdir()) == ["checkpoint.txt", "demo.ledger", "demo.ledger.index"]


def test_a_copy_never_replaces_a_file_that_appears_at_its_name(demo: Path, tmp_path: Path) -> None:
    """A breaker's review: a ledger made at the target's name while the copy ran was replaced by the copy."""
    ledger = _folder(demo, tmp_path)
    target = tmp_path / "backup.ledger"
    trust = Trust.parse((tmp_path / "trust.keys").read_text())

    def meanwhile(done: int, total: int) -> None:
        if not target.exists():
            target.write_bytes(b"another program's file\n")

    with pytest.raises(StorageError) as err:
        copy_ledger(ledger, target, trust.authority_keys, progress=meanwhile)
    assert err.value.code == "store.exists" and target.read_bytes() == b"another program's file\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["backup.ledger", "checkpoint.txt", "demo.ledger",
                                                         "trust.keys"]


def test_a_copy_the_published_checkpoint_beside_it_does_not_lead_to_is_refused(demo: Path, tmp_path: Path) -> None:
    """A ledger of fewer records, or rewritten (two records swapped), copied beside the checkpoint published for
    its origin would fork the published log there: refused, nothing left behind."""
    ledger = _folder(demo, tmp_path)
    trust = Trust.parse((tmp_path / "trust.keys").read_text())
    read = scan(ledger)
    payloads = [f.payload for f in read.frames]
    for name, kept, code in (("short", payloads[:700], "checkpoint.beyond_log"),
                             ("swapped", [*payloads[:694], payloads[695], payloads[694], *payloads[696:]],
                              "checkpoint.root_mismatch")):
        source = tmp_path / "sources" / f"{name}.ledger"
        source.parent.mkdir(exist_ok=True)
        with FileStore.create(source, read.origin) as store:
            store.append_batch(kept)
        with pytest.raises(VerificationError) as err:
            copy_ledger(source, tmp_path / f"{name}.ledger", trust.authority_keys)
        assert err.value.code == code and "would fork the published log" in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.txt", "demo.ledger", "sources", "trust.keys"]


def test_a_copy_never_replaces_an_index_file_and_refuses_beside_a_checkpoint_it_cannot_read(demo: Path,
                                                                                           tmp_path: Path) -> None:
    ledger = _folder(demo, tmp_path)
    trust = Trust.parse((tmp_path / "trust.keys").read_text())
    (tmp_path / "backup.ledger.index").write_text("my notes\n")
    with pytest.raises(StorageError) as err:
        copy_ledger(ledger, tmp_path / "backup.ledger", trust.authority_keys)
    assert err.value.code == "store.exists" and "backup.ledger.index" in str(err.value)
    assert (tmp_path / "backup.ledger.index").read_text() == "my notes\n" and not (tmp_path / "backup.ledger").exists()
    (tmp_path / "checkpoint.txt").write_bytes((tmp_path / "checkpoint.txt").read_bytes().replace(b"\n", b"\r\n"))
    with pytest.raises(NoteFormatError) as unreadable:  # a checkpoint it cannot read could not tell a fork
        copy_ledger(ledger, tmp_path / "other.ledger", trust.authority_keys)
    assert unreadable.value.code == "checkpoint.unreadable" and not (tmp_path / "other.ledger").exists()
