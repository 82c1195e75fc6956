"""Checkpoints that match their ledger (issue 9): the operator key is the one pinned under the ledger's origin, and
is checked before anything is signed; the published checkpoint.txt is replaced only by one of a ledger that
extends it, the old one kept under its tree size."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ledger import Ledger, Transferred, Trust, checkpoint_file, keyfile, note_verifier_key, open_checkpoint
from ledger.errors import InputError, StorageError
from ledger.publish import publish_checkpoint
from ledger.storage import FileStore
from stonetrail_cli.main import main
from world import ORIGIN, World, key

OPERATOR = key("operator")
AUTHORITY_KEY = key("authority")
TRUST = Trust(operators=(note_verifier_key(ORIGIN, OPERATOR.public_key),),
              authorities=(note_verifier_key("authority", AUTHORITY_KEY.public_key),))


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


@dataclass(frozen=True)
class Dir:
    """A directory with a ledger (stone S0 mined; ``grow()`` appends its sale), its published checkpoint.txt,
    the trust file, the operator's, a trader's and the authority's key files."""

    path: Path
    ledger: Path
    sale: bytes

    def grow(self) -> None:
        with FileStore.open(self.ledger, writable=True) as store:
            store.append(self.sale)


@pytest.fixture
def d(tmp_path: Path) -> Dir:
    w = World()
    w.enrol_all()
    s0 = w.mine("S0")
    assert w.add(s0) == []
    sale = w.make(Transferred(to="trader-b", mode="title"), "producer-a", inputs=["S0"], place="BW")
    with Ledger.create(tmp_path / "s.ledger", ORIGIN, {AUTHORITY_KEY.public_key.raw}) as led:
        led.append_batch(w.records)
        (tmp_path / "checkpoint.txt").write_text(led.checkpoint(OPERATOR))
    (tmp_path / "trust.keys").write_text(TRUST.format())
    for name, k in (("operator", OPERATOR), ("trader", key("trader-b")), ("authority", AUTHORITY_KEY)):
        keyfile.save_private_key(tmp_path / f"{name}.pem", k)
    return Dir(tmp_path, tmp_path / "s.ledger", sale.raw)


# --- which key signs ------------------------------------------------------------------------------------------------


def test_a_traders_or_the_authoritys_key_is_refused_before_signing(d: Dir) -> None:
    for who, whose in (("trader", "party 'trader-b'"), ("authority", "the authority's key")):
        for trust in ((), ("--trust", d.path / "trust.keys")):
            result = run("checkpoint", d.ledger, "--key", d.path / f"{who}.pem", *trust, "-o", d.path / "cp.txt")
            assert result.exit_code == 2 and "[checkpoint.party_key]" in result.output, result.output
            assert whose in result.output and not (d.path / "cp.txt").exists()
    with pytest.raises(InputError) as err:
        checkpoint_file(d.ledger, key("trader-b"))
    assert err.value.code == "checkpoint.party_key"
    signed = run("checkpoint", d.ledger, "--key", d.path / "operator.pem", "-o", d.path / "cp.txt")  # the neighbour
    assert signed.exit_code == 0, signed.output
    assert f"pins 'operator {TRUST.operators[0].text()}'" in signed.output  # without --trust: what to pin


def test_a_key_pinned_under_another_name_is_refused_naming_the_expected_line(d: Dir) -> None:
    """The README's old example: keygen --name example.com/ledger, pinned as operator, then a checkpoint of a ledger
    of another origin: every verifier would refuse it. Now checkpoint --trust refuses it first, naming the line."""
    made = run("keygen", "--name", "example.com/ledger", "-o", d.path / "mine.pem")
    pinned = made.output.splitlines()[-1]
    (d.path / "mine.keys").write_text(f"operator {pinned}\nauthority {TRUST.authorities[0].text()}\n")
    result = run("checkpoint", d.ledger, "--key", d.path / "mine.pem", "--trust", d.path / "mine.keys",
                 "-o", d.path / "cp.txt")
    assert result.exit_code == 2 and "[trust.not_operator]" in result.output, result.output
    mine = keyfile.load_private_key(d.path / "mine.pem")
    expected = note_verifier_key(ORIGIN, mine.public_key).text()
    assert "pinned as operator under the name 'example.com/ledger'" in result.output
    assert f"'operator {expected}'" in result.output and not (d.path / "cp.txt").exists()
    other = run("checkpoint", d.ledger, "--key", d.path / "mine.pem", "--trust", d.path / "trust.keys",
                "-o", d.path / "cp.txt")
    assert other.exit_code == 2 and "[trust.not_operator]" in other.output  # another key pinned under the origin
    assert f"the operator key pinned for '{ORIGIN}' is {ORIGIN}+{TRUST.operators[0].key_id.hex()}, not this key" \
        in other.output


def test_keygen_for_a_ledger_names_the_key_after_its_origin_and_its_checkpoints_verify(d: Dir) -> None:
    made = run("keygen", "--ledger", d.ledger, "-o", d.path / "op2.pem")
    assert made.exit_code == 0 and made.output.splitlines()[-1].startswith(f"{ORIGIN}+")
    (d.path / "op2.keys").write_text(f"operator {made.output.splitlines()[-1]}\n"
                                     f"authority {TRUST.authorities[0].text()}\n")
    signed = run("checkpoint", d.ledger, "--key", d.path / "op2.pem", "--trust", d.path / "op2.keys",
                 "-o", d.path / "cp.txt")
    assert signed.exit_code == 0, signed.output
    verified = run("verify", d.ledger, "--trust", d.path / "op2.keys", "--checkpoint", d.path / "cp.txt")
    assert verified.exit_code == 0, verified.output
    for args in ((), ("--name", "x", "--ledger", d.ledger)):
        assert run("keygen", *args, "-o", d.path / "k.pem").exit_code == 2
    assert not (d.path / "k.pem").exists()


def test_a_verifier_says_why_it_refuses_a_checkpoint_signed_under_another_name(d: Dir) -> None:
    note = checkpoint_file(d.ledger, OPERATOR, "example.com/ledger")  # an unpinned name
    (d.path / "cp.txt").write_text(note)
    result = run("verify", d.ledger, "--trust", d.path / "trust.keys", "--checkpoint", d.path / "cp.txt")
    assert result.exit_code == 1 and "note.unverified" in result.output
    assert "signed by example.com/ledger+" in result.output and "no trusted key is named example.com/ledger" \
        in result.output


# --- the published checkpoint -------------------------------------------------------------------------------------


def test_checkpoint_publishes_beside_the_ledger_keeping_the_old_one(d: Dir) -> None:
    old = (d.path / "checkpoint.txt").read_text()
    same = run("checkpoint", d.ledger, "--key", d.path / "operator.pem", "--trust", d.path / "trust.keys")
    assert same.exit_code == 0 and "is already this checkpoint" in same.output, same.output
    d.grow()
    size = open_checkpoint(old, TRUST.operators).tree_size
    result = run("checkpoint", d.ledger, "--key", d.path / "operator.pem", "--trust", d.path / "trust.keys")
    assert result.exit_code == 0, result.output
    assert f"kept as {d.path / f'checkpoint-{size}.txt'}" in result.output
    assert (d.path / f"checkpoint-{size}.txt").read_text() == old
    assert open_checkpoint((d.path / "checkpoint.txt").read_text(), TRUST.operators).tree_size == size + 1
    stdout = run("checkpoint", d.ledger, "--key", d.path / "operator.pem", "-o", "-")
    assert stdout.exit_code == 0 and stdout.output.startswith(f"{ORIGIN}\n{size + 1}\n")


def _checkpoint_of(directory: Path, origin: str, stone: str, *, sold: bool) -> str:
    """A checkpoint of a ledger built as the fixture's is (same keys and times), of ``origin``, mining ``stone``,
    with its sale or not."""
    w = World(origin=origin)
    w.enrol_all()
    w.add(w.mine(stone))
    if sold:
        w.add(w.make(Transferred(to="trader-b", mode="title"), "producer-a", inputs=[stone], place="BW"))
    with Ledger.create(directory / "o.ledger", origin, {AUTHORITY_KEY.public_key.raw}) as led:
        led.append_batch(w.records)
        return led.checkpoint(OPERATOR)


@pytest.mark.parametrize(("origin", "stone", "sold", "code"), [
    ("other.example/ledger", "S0", False, "checkpoint.origin_mismatch"),  # another ledger's, in the same directory
    (ORIGIN, "S0", True, "checkpoint.beyond_log"),  # of a longer log: the ledger lost a record
    (ORIGIN, "S9", False, "checkpoint.root_mismatch"),  # of another tree of the same size
])
def test_a_published_checkpoint_the_ledger_does_not_extend_is_not_replaced(
        d: Dir, tmp_path_factory: pytest.TempPathFactory, origin: str, stone: str, sold: bool, code: str) -> None:
    note = _checkpoint_of(tmp_path_factory.mktemp("other"), origin, stone, sold=sold)
    (d.path / "checkpoint.txt").write_text(note)
    result = run("checkpoint", d.ledger, "--key", d.path / "operator.pem")
    assert result.exit_code == 1 and f"[{code}]" in result.output, result.output
    assert "checkpoint.txt is not replaced" in result.output
    assert (d.path / "checkpoint.txt").read_text() == note and not list(d.path.glob("checkpoint-*.txt"))


def test_publish_never_writes_through_a_symbolic_link(d: Dir) -> None:
    victim = d.path / "victim.txt"
    victim.write_text("a file the user keeps")
    (d.path / "checkpoint.txt").unlink()
    (d.path / "checkpoint.txt").symlink_to(victim)
    with pytest.raises(StorageError) as err:
        publish_checkpoint(d.ledger, checkpoint_file(d.ledger, OPERATOR))
    assert err.value.code == "store.exists" and victim.read_text() == "a file the user keeps"
