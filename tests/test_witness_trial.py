"""The new-user trial of witnesses, publishing and fetching (issue 13): each mistake a user made, or a surprise,
and what the tool now does about it."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from copies import copy_demo

from ledger.checkpoint import add_signatures, format_checkpoint, read_unverified_checkpoint
from ledger.cosignature import cosign, cosigner_key
from ledger.errors import InputError
from ledger.keyfile import load_private_key
from ledger.keys import PrivateKey
from ledger.trust import Trust
from ledger.witness import KnownLogs, WitnessState
from stonetrail_cli.main import main

NOW = 1_796_000_000


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


def witness_key(i: int) -> PrivateKey:
    return PrivateKey.from_seed(bytes([40 + i]) * 32)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def policy_lines(port: int) -> str:
    return "".join(f"witness w{i} {cosigner_key(f'w{i}.example', witness_key(i).public_key).text()} "
                   f"http://127.0.0.1:{port}/w{i}\n" for i in range(3)) + "group g 2 w0 w1 w2\nquorum g\n"


@pytest.fixture
def d(demo: Path, tmp_path: Path) -> Path:
    return copy_demo(demo, tmp_path / "d", "*")


def test_checkpoint_gathers_for_the_trust_files_own_witness_lines(d: Path) -> None:
    trust = d / "trust-w.keys"
    trust.write_text((d / "trust.keys").read_text() + policy_lines(closed_port()))
    before = (d / "checkpoint.txt").read_bytes()
    result = run("checkpoint", d / "demo.ledger", "--key", d / "keys" / "operator.pem", "--trust", trust,
                 "--witness-timeout", "2", "--json")
    assert result.exit_code == 1, result.output
    error = json.loads(result.stdout)["error"]
    assert error["code"] == "witness.quorum" and [w["witness"] for w in error["witnesses"]] == ["w0", "w1", "w2"]
    assert (d / "checkpoint.txt").read_bytes() == before  # nothing published
    policy = d / "p.txt"
    policy.write_text(policy_lines(closed_port()))
    twice = run("checkpoint", d / "demo.ledger", "--key", d / "keys" / "operator.pem", "--trust", trust,
                "--witness-policy", policy)
    assert twice.exit_code == 2 and "trust.policy_twice" in twice.output


def test_max_age_without_a_policy_is_a_usage_error(d: Path) -> None:
    result = run("proof", "verify", d / "proofs" / "R-00001-A.stproof", "--trust", d / "trust.keys",
                 "--max-age", "1h")
    assert result.exit_code == 2 and "--max-age needs a witness policy" in result.output


def test_a_trust_file_with_windows_line_endings_keeps_working_with_witness_lines(d: Path) -> None:
    text = ((d / "trust.keys").read_text() + policy_lines(1)).replace("\n", "\r\n")
    assert Trust.parse(text).witnesses is not None


def test_an_operator_key_given_as_a_witness_key_is_named_as_such(d: Path) -> None:
    operator = Trust.parse((d / "trust.keys").read_text()).operators[0].text()
    with pytest.raises(InputError, match="checkpoint-signing key"):
        Trust.parse((d / "trust.keys").read_text() + f"witness w {operator}\nquorum w\n")


def test_a_witness_refuses_to_serve_with_a_key_of_a_log_it_witnesses(d: Path) -> None:
    operator = Trust.parse((d / "trust.keys").read_text()).operators[0]
    with pytest.raises(InputError) as caught:
        WitnessState(d / "state", name="w.example", key=load_private_key(d / "keys" / "operator.pem"),
                     logs=KnownLogs.parse(f"log {operator.text()}\n"))
    assert caught.value.code == "witness.key_is_log"


def test_publish_refuses_to_drop_the_witnesses_and_applies_the_trust_files_policy(d: Path) -> None:
    note = (d / "checkpoint.txt").read_text()
    text = format_checkpoint(read_unverified_checkpoint(note))
    witnessed = add_signatures(note, [cosign(text, f"w{i}.example", witness_key(i), NOW) for i in (0, 1)])
    (d / "witnessed.txt").write_text(witnessed)
    assert run("publish", d / "demo.ledger", d / "site", "--checkpoint", d / "witnessed.txt").exit_code == 0
    plain = run("publish", d / "demo.ledger", d / "site", "--checkpoint", d / "checkpoint.txt")
    assert plain.exit_code == 1 and "publish.unwitnessed" in plain.output
    assert (d / "site" / "checkpoint").read_text() == witnessed
    allowed = run("publish", d / "demo.ledger", d / "site", "--checkpoint", d / "checkpoint.txt",
                  "--allow-unwitnessed")
    assert allowed.exit_code == 0, allowed.output
    policy = d / "p.txt"
    policy.write_text(policy_lines(1))
    weak = run("publish", d / "demo.ledger", d / "site2", "--trust", d / "trust.keys", "--witness-policy", policy)
    assert weak.exit_code == 1 and "witness.quorum" in weak.output and not (d / "site2" / "checkpoint").exists()
    strong = run("publish", d / "demo.ledger", d / "site2", "--checkpoint", d / "witnessed.txt", "--trust",
                 d / "trust.keys", "--witness-policy", policy)
    assert strong.exit_code == 0, strong.output
    not_a_ledger = run("publish", d / "trust.keys", d / "site3")
    assert not_a_ledger.exit_code == 2 and "store.not_a_ledger" in not_a_ledger.output


def test_fetch_names_a_url_mistake_as_a_usage_error(d: Path) -> None:
    for url, said in (("htp://127.0.0.1:1/", "fetch.bad_url"), (str(d / "demo.ledger"), "use 'stonetrail proof "
                      "export'"), ("127.0.0.1:8123", "did you mean http://127.0.0.1:8123?")):
        result = run("proof", "fetch", url, "R-00001-A", "--trust", d / "trust.keys", "-o", d / "x.stproof")
        assert result.exit_code == 2 and said in result.output and "Traceback" not in result.output, url


def test_a_checkpoint_not_witnessed_enough_is_said_to_be_genuine_not_forged(d: Path) -> None:
    policy = d / "p.txt"
    policy.write_text(policy_lines(1))
    result = run("proof", "verify", d / "proofs" / "R-00001-A.stproof", "--trust", d / "trust.keys",
                 "--witness-policy", policy)
    assert result.exit_code == 1 and "nothing was found forged" in result.output


def test_verify_says_how_a_checkpoint_was_witnessed(d: Path) -> None:
    """verify with a witness policy said nothing of the cosignatures it checked (a new user's review); it now
    says when and by how many, in text and JSON, and after witness.quorum its hint does not ask for a bundle."""
    note = (d / "checkpoint.txt").read_text()
    text = format_checkpoint(read_unverified_checkpoint(note))
    (d / "witnessed.txt").write_text(add_signatures(note, [cosign(text, f"w{i}.example", witness_key(i), NOW)
                                                           for i in (0, 1)]))
    policy = d / "p.txt"
    policy.write_text(policy_lines(1))
    args = ("verify", d / "demo.ledger", "--trust", d / "trust.keys", "--witness-policy", policy)
    told = run(*args, "--checkpoint", d / "witnessed.txt")
    assert told.exit_code == 0 and "witnesses: witnessed " in told.output and "by 2 of 3 witnesses" in told.output
    data = json.loads(run(*args, "--checkpoint", d / "witnessed.txt", "--json").output)
    assert data["checkpoints"][0]["witnessed"].startswith("witnessed ")
    unwitnessed = run(*args, "--checkpoint", d / "checkpoint.txt")
    assert unwitnessed.exit_code == 1 and "nothing was found forged" in unwitnessed.output
    assert "ask for a bundle" not in unwitnessed.output and "--witness-policy" in unwitnessed.output
