"""The ``stonetrail`` command as a user drives it: demo, verify, show, checkpoint, keygen, and bad input."""

from __future__ import annotations

import json
import os
import stat
import struct
import zlib
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from copies import copy_demo

from ledger import Trust, check_ledger, checkpoint_file, keyfile, open_checkpoint
from ledger.cosignature import cosign
from ledger.keys import PrivateKey
from ledger.note import add_signatures
from ledger.publish import publish_checkpoint
from ledger.storage import scan
from stonetrail_cli.main import main


def run(*args: str | Path) -> Result:
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "out"
    result = run("demo", out)
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture
def copy(demo_dir: Path, tmp_path: Path) -> Path:
    return copy_demo(demo_dir, tmp_path / "out", "*")


def test_demo_writes_a_valid_ledger(demo_dir: Path) -> None:
    for name in ("demo.ledger", "trust.keys", "checkpoint.txt"):
        assert (demo_dir / name).is_file()
    assert stat.S_IMODE((demo_dir / "keys" / "operator.pem").stat().st_mode) == 0o600
    report = check_ledger(demo_dir / "demo.ledger", Trust.parse((demo_dir / "trust.keys").read_text()))
    assert report.ok and report.stones >= 200 and report.record_count > 600


def test_demo_is_deterministic(demo_dir: Path, tmp_path: Path) -> None:
    assert run("demo", tmp_path / "again").exit_code == 0
    assert (tmp_path / "again" / "demo.ledger").read_bytes() == (demo_dir / "demo.ledger").read_bytes()
    assert run("demo", tmp_path / "other", "--seed", "2").exit_code == 0
    assert (tmp_path / "other" / "demo.ledger").read_bytes() != (demo_dir / "demo.ledger").read_bytes()


def test_demo_refuses_to_overwrite(demo_dir: Path) -> None:
    result = run("demo", demo_dir)
    assert result.exit_code == 3 and "not an empty directory" in result.output


def test_verify_prints_count_and_root(demo_dir: Path) -> None:
    result = run("verify", demo_dir / "demo.ledger", "--trust", demo_dir / "trust.keys",
                 "--checkpoint", demo_dir / "checkpoint.txt")
    assert result.exit_code == 0, result.output
    frames = len(scan(demo_dir / "demo.ledger").frames)
    assert f"records:   {frames}" in result.output
    assert "root hash: " in result.output and "verdict:   valid" in result.output


def test_verify_json(demo_dir: Path) -> None:
    import json

    result = run("verify", demo_dir / "demo.ledger", "--trust", demo_dir / "trust.keys", "--json")
    assert result.exit_code == 0
    assert json.loads(result.output)["valid"] is True


def test_show_traces_a_polished_stone_to_the_mine(demo_dir: Path) -> None:
    result = run("show", demo_dir / "demo.ledger", "R-00001-A", "--trust", demo_dir / "trust.keys")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    kinds = [line.split()[3] for line in lines  # the journey table: record, date, time, event, ...
             if line.split()[:1] != [] and line.split()[0].isdigit() and line.split()[1][:4].isdigit()]
    assert kinds[0] == "mined" and "graded" in kinds and "split" in kinds
    assert "mined at Jwaneng (BW)" in result.output
    assert "\nvalid: " in result.output and "\nverified:" not in result.output  # the word verify's verdict uses


def test_show_unknown_item(demo_dir: Path) -> None:
    result = run("show", demo_dir / "demo.ledger", "NO-SUCH-STONE")
    assert result.exit_code == 2 and "no item" in result.output


def test_checkpoint_verifies_under_the_operator_key(demo_dir: Path, tmp_path: Path) -> None:
    trust = Trust.parse((demo_dir / "trust.keys").read_text())
    cp = open_checkpoint((demo_dir / "checkpoint.txt").read_text(), trust.operators)
    report = check_ledger(demo_dir / "demo.ledger", trust)
    assert (cp.tree_size, cp.root_hash) == (report.record_count, report.root_hash)
    result = run("checkpoint", demo_dir / "demo.ledger", "--key", demo_dir / "keys" / "operator.pem",
                 "-o", tmp_path / "cp.txt")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "cp.txt").read_text() == (demo_dir / "checkpoint.txt").read_text()  # Ed25519 is deterministic


def test_checkpoint_of_another_ledger_is_refused(copy: Path, tmp_path: Path) -> None:
    size = len(scan(copy / "demo.ledger").frames)
    text = (copy / "checkpoint.txt").read_text()
    (copy / "checkpoint.txt").write_text(text.replace(f"\n{size}\n", f"\n{size - 1}\n"))
    result = run("verify", copy / "demo.ledger", "--trust", copy / "trust.keys",
                 "--checkpoint", copy / "checkpoint.txt")
    assert result.exit_code == 1


def test_keygen_prints_a_verifier_key(tmp_path: Path) -> None:
    result = run("keygen", "--name", "example.com/ledger", "-o", tmp_path / "k.pem")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1].startswith("example.com/ledger+")
    assert stat.S_IMODE((tmp_path / "k.pem").stat().st_mode) == 0o600
    again = run("keygen", "--name", "example.com/ledger", "-o", tmp_path / "k.pem")
    assert again.exit_code == 3 and "Traceback" not in again.output


def test_every_help_has_an_example() -> None:
    for command in ("demo", "verify", "show", "checkpoint", "keygen"):
        result = run(command, "--help")
        assert result.exit_code == 0 and "Example" in result.output, command


# --- damaged and forged input ------------------------------------------------------------------------------

def _frame_spans(path: Path) -> list[tuple[int, int]]:
    """(payload start, payload end) of every frame."""
    return [(f.offset + 12, f.offset + 12 + len(f.payload)) for f in scan(path).frames]


def _flip(path: Path, offset: int, *, fix_crc: tuple[int, int] | None = None) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    if fix_crc:  # recompute the frame checksum: only record-level checks can catch the change now
        start, end = fix_crc
        data[start - 4:start] = struct.pack(">I", zlib.crc32(data[start:end]))
    path.write_bytes(bytes(data))


def test_flipped_bytes_are_named_with_position(copy: Path) -> None:
    ledger, trust = copy / "demo.ledger", Trust.parse((copy / "trust.keys").read_text())
    original = ledger.read_bytes()
    spans = _frame_spans(ledger)
    for index in range(0, len(spans), len(spans) // 8):
        start, end = spans[index]
        for offset in (start, (start + end) // 2, end - 1):
            for fix in (None, (start, end)):
                _flip(ledger, offset, fix_crc=fix)
                report = check_ledger(ledger, trust)
                assert not report.ok, (index, offset, fix)
                assert report.findings[0].position == index, (index, offset, report.findings[0])
                ledger.write_bytes(original)


def test_verify_cli_reports_a_flip(copy: Path) -> None:
    ledger = copy / "demo.ledger"
    start, end = _frame_spans(ledger)[100]
    _flip(ledger, start + 30, fix_crc=(start, end))
    result = run("verify", ledger, "--trust", copy / "trust.keys")
    assert result.exit_code == 1
    assert "record 100" in result.output and "Traceback" not in result.output


def test_cut_file_names_a_torn_tail(copy: Path) -> None:
    ledger = copy / "demo.ledger"
    start, end = _frame_spans(ledger)[-1]
    with open(ledger, "r+b") as fh:
        fh.truncate((start + end) // 2)
    result = run("verify", ledger, "--trust", copy / "trust.keys")
    assert result.exit_code == 1
    assert "store.torn_tail" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize("content", ["", "operator nonsense\n", "rogue x+y+z\n", "\xff"])
def test_bad_trust_file_is_a_usage_error(demo_dir: Path, tmp_path: Path, content: str) -> None:
    trust = tmp_path / "trust.keys"
    trust.write_text(content, encoding="latin-1")
    result = run("verify", demo_dir / "demo.ledger", "--trust", trust)
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_wrong_authority_key_fails_every_enrolment(demo_dir: Path, tmp_path: Path) -> None:
    from ledger import PrivateKey, note_verifier_key

    trust = Trust.parse((demo_dir / "trust.keys").read_text())
    fake = Trust(operators=trust.operators,
                 authorities=(note_verifier_key("impostor", PrivateKey.generate().public_key),))
    (tmp_path / "t.keys").write_text(fake.format())
    result = run("verify", demo_dir / "demo.ledger", "--trust", tmp_path / "t.keys")
    assert result.exit_code == 1 and "registry.not_authority" in result.output


def test_not_a_ledger_is_malformed_input(tmp_path: Path, demo_dir: Path) -> None:
    junk = tmp_path / "junk.ledger"
    junk.write_bytes(b"junk" + os.urandom(100))
    result = run("verify", junk, "--trust", demo_dir / "trust.keys")
    assert result.exit_code == 2 and "Traceback" not in result.output and "[store.not_a_ledger]" in result.output


def test_missing_file_is_a_usage_error(demo_dir: Path) -> None:
    result = run("verify", "/nonexistent/x.ledger", "--trust", demo_dir / "trust.keys")
    assert result.exit_code == 2


def test_show_on_a_damaged_ledger_is_not_verified(copy: Path) -> None:
    ledger = copy / "demo.ledger"
    start, end = _frame_spans(ledger)[300]
    _flip(ledger, (start + end) // 2)
    result = run("show", ledger, "R-00001-A", "--trust", copy / "trust.keys")
    assert result.exit_code == 1 and "INVALID" in result.output and "\nvalid:" not in result.output


def test_checkpoint_refuses_a_key_that_is_not_the_pinned_operator(demo_dir: Path) -> None:
    result = run("checkpoint", demo_dir / "demo.ledger", "--key", demo_dir / "keys" / "trader-antwerp.pem",
                 "--trust", demo_dir / "trust.keys")
    assert result.exit_code == 2 and "[checkpoint.party_key]" in result.output  # the registry gives it to a trader


def test_verify_reports_the_checkpoint_it_checked(demo_dir: Path) -> None:
    result = run("verify", demo_dir / "demo.ledger", "--trust", demo_dir / "trust.keys",
                 "--checkpoint", demo_dir / "checkpoint.txt")
    size = len(scan(demo_dir / "demo.ledger").frames)
    assert f"checkpoint: signed by the operator, tree size {size}, matches the whole log" in result.output


def test_verify_reports_each_checkpoint_given(copy: Path, tmp_path: Path) -> None:
    frames, data = scan(copy / "demo.ledger").frames, (copy / "demo.ledger").read_bytes()
    cut, other = tmp_path / "cut.ledger", tmp_path / "other.ledger"  # the first 300 records; 299 and record 300
    cut.write_bytes(data[:frames[300].offset])
    other.write_bytes(data[:frames[299].offset] + data[frames[300].offset:frames[301].offset])
    for ledger, out in ((cut, "early.txt"), (other, "forked.txt")):
        signed = run("checkpoint", ledger, "--key", copy / "keys" / "operator.pem", "-o", tmp_path / out)
        assert signed.exit_code == 0, signed.output
    run("keygen", "--name", "demo.stonetrail.example/ledger", "-o", tmp_path / "k.pem")
    run("checkpoint", copy / "demo.ledger", "--key", tmp_path / "k.pem", "-o", tmp_path / "unpinned.txt")
    notes = [tmp_path / "early.txt", tmp_path / "forked.txt", copy / "checkpoint.txt", tmp_path / "unpinned.txt"]
    args = ["verify", copy / "demo.ledger", "--trust", copy / "trust.keys"]
    for note in notes:
        args += ["--checkpoint", note]
    text, as_json = run(*args), run(*args, "--json")
    assert text.exit_code == as_json.exit_code == 1
    assert [line for line in text.output.splitlines() if line.startswith("checkpoint:")] == [
        f"checkpoint: {notes[0]}: tree size 300, matches the first 300 records",
        f"checkpoint: {notes[1]}: tree size 300, does not match (checkpoint.root_mismatch, checkpoint.heads_mismatch)",
        f"checkpoint: {notes[2]}: tree size {len(frames)}, matches the whole log",
        f"checkpoint: {notes[3]}: not accepted under the pinned keys (note.unverified)"]
    report = json.loads(as_json.output)
    assert report["checkpoint"]["tree_size"] == len(frames)
    assert [(c["tree_size"], c["matches"], c["codes"]) for c in report["checkpoints"]] == [
        (300, True, []), (300, False, ["checkpoint.root_mismatch", "checkpoint.heads_mismatch"]),
        (len(frames), True, []), (None, False, ["note.unverified"])]


def test_verify_hints_at_the_key_of_a_checkpoint_no_pinned_key_signed(copy: Path, tmp_path: Path) -> None:
    run("keygen", "--name", "demo.stonetrail.example/ledger", "-o", tmp_path / "k.pem")
    run("checkpoint", copy / "demo.ledger", "--key", tmp_path / "k.pem", "-o", tmp_path / "unpinned.txt")
    verify = ["verify", copy / "demo.ledger", "--trust", copy / "trust.keys", "--checkpoint"]
    result = run(*verify, tmp_path / "unpinned.txt")
    assert result.exit_code == 1 and "not signed by the operator key your trust file pins" in result.output
    assert "another ledger's" not in result.output  # the root matches: only the signer is wrong
    run("keygen", "--name", "other.example/log", "-o", tmp_path / "o.pem")
    (tmp_path / "o").mkdir()
    run("init", tmp_path / "o" / "o.ledger", "--origin", "other.example/log", "--trust", copy / "trust.keys")
    run("checkpoint", tmp_path / "o" / "o.ledger", "--key", tmp_path / "o.pem", "-o", tmp_path / "other.txt")
    other = run(*verify, tmp_path / "other.txt")  # another ledger's, by its own key: the origin says which
    assert other.exit_code == 1 and "the checkpoint is another ledger's (its origin line" in other.output
    assert "signed with another key" not in other.output
    (tmp_path / "empty.txt").write_text("")
    empty = run(*verify, tmp_path / "empty.txt")
    assert empty.exit_code == 2 and "note text is empty" in empty.output and "read_text" not in empty.output


@pytest.mark.parametrize("args", [["verify"], ["verify", "x.ledger", "--trust", "y"], ["bogus"],
                                  ["demo", "out", "--seed", "x"], ["show"]])
def test_usage_errors_are_one_line(args: list[str]) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert len(result.output.strip().splitlines()) == 1 and result.output.startswith("stonetrail: error:")


def test_trust_file_with_bom_and_crlf_is_accepted(demo_dir: Path, tmp_path: Path) -> None:
    text = (demo_dir / "trust.keys").read_text()
    (tmp_path / "t.keys").write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    assert run("verify", demo_dir / "demo.ledger", "--trust", tmp_path / "t.keys").exit_code == 0


def test_demo_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "trust.keys").write_text("mine")
    result = run("demo", tmp_path)
    assert result.exit_code == 3 and (tmp_path / "trust.keys").read_text() == "mine"


def test_an_empty_ledger_does_not_pass(demo_dir: Path, tmp_path: Path) -> None:
    from ledger.storage import FileStore

    FileStore.create(tmp_path / "empty.ledger", "demo.stonetrail.example/ledger").close()
    result = run("verify", tmp_path / "empty.ledger", "--trust", demo_dir / "trust.keys")
    assert result.exit_code == 1 and "ledger.empty" in result.output
    assert "hint:      a new ledger holds no record" in result.output  # what to do next, after `init`


def test_a_checkpoint_of_an_empty_ledger_is_signed_with_a_warning(demo_dir: Path, tmp_path: Path) -> None:
    """A review: the checkpoint of a ledger that holds no record was signed without a word."""
    run("keygen", "--name", "empty.example/log", "-o", tmp_path / "k.pem")
    (tmp_path / "l").mkdir()
    run("init", tmp_path / "l" / "e.ledger", "--origin", "empty.example/log", "--trust", demo_dir / "trust.keys")
    result = run("checkpoint", tmp_path / "l" / "e.ledger", "--key", tmp_path / "k.pem", "-o", tmp_path / "c.txt")
    assert result.exit_code == 0 and (tmp_path / "c.txt").read_text().splitlines()[1] == "0"
    assert "holds no record yet: this checkpoint is of the empty log (tree size 0)" in result.output


def test_show_walks_a_deep_lineage_without_recursion(tmp_path: Path) -> None:
    from ledger import Ledger, Split
    from ledger.record import Output
    from world import World

    w = World()
    with Ledger.create(tmp_path / "deep.ledger", w.origin, {w.keys["authority"].public_key.raw}) as ledger:
        w.state = ledger.state  # the builder reads heads from the ledger being written
        ledger.append(w.enrol("producer-a", ["producer"]))
        ledger.append(w.mine("D-0", mass_mct=5_000))
        for i in range(1, 1_200):
            ledger.append(w.make(Split(loss_mct=0), "producer-a", inputs=[f"D-{i - 1}"], consumes=[f"D-{i - 1}"],
                                 outputs=[Output(id=f"D-{i}", type="stone", mass_mct=5_000)]))
    result = run("show", tmp_path / "deep.ledger", "D-1199")
    assert result.exit_code == 0, result.output[-500:]
    assert "mined at Jwaneng" in result.output


def test_deny_origin_ru_flags_exactly_the_laundered_goods(tmp_path: Path) -> None:
    from ledger import Policy, build_demo

    summary = build_demo(tmp_path / "demo")
    trust = Trust.parse(summary.trust_path.read_text())
    report = check_ledger(summary.ledger_path, trust, policy=Policy(deny_origin=frozenset({"RU"})))
    assert report.ok  # integrity holds: laundering is legal to record, and only a policy refuses it
    flagged = {f.item for f in report.policy_findings}
    assert {f.code for f in report.policy_findings} == {"policy.denied_origin"}
    assert flagged == set(summary.laundered) == {"LOT-RU-UDACHNY", "PARCEL-DXB-01", "PARCEL-DXB-01-S1",
                                                 "PARCEL-DXB-01-S2"}
    result = run("verify", summary.ledger_path, "--trust", summary.trust_path, "--deny-origin", "RU")
    assert result.exit_code == 1 and "NOT COMPLIANT" in result.output


def test_other_demo_frauds_are_caught_by_their_policies(demo_dir: Path) -> None:
    result = run("verify", demo_dir / "demo.ledger", "--trust", demo_dir / "trust.keys",
                 "--regrade-tolerance-ct", "0.005", "--require-known-origin", "--json")
    import json

    findings = json.loads(result.output)["policy_findings"]
    assert {(f["code"], f["item"]) for f in findings} == {("policy.regrade_mismatch", "R-KAROWE-0002-A"),
                                                          ("policy.unknown_origin", "ESTATE-0001")}


def test_demo_writes_a_proof_bundle_per_polished_stone(demo_dir: Path) -> None:
    from ledger.bundle import verify_bundle

    bundles = sorted((demo_dir / "proofs").glob("*.stproof"))
    assert len(bundles) == 220 and bundles[0].name == "R-00001-A.stproof"
    trust = Trust.parse((demo_dir / "trust.keys").read_text())
    provenance = verify_bundle(bundles[0].read_bytes(), trust)
    assert dict(provenance.origin) == {"BW": provenance.path[-1].mass_mct} and provenance.article == "RING-0001"
    result = run("proof", "verify", bundles[0], "--trust", demo_dir / "trust.keys", "--deny-origin", "RU")
    assert result.exit_code == 0 and "attested by producer-jwaneng" in result.output, result.output


def test_checkpoint_never_overwrites(copy: Path) -> None:
    before = (copy / "demo.ledger").read_bytes()
    result = run("checkpoint", copy / "demo.ledger", "--key", copy / "keys" / "operator.pem",
                 "-o", copy / "demo.ledger")
    assert result.exit_code == 3 and "exists" in result.output
    assert (copy / "demo.ledger").read_bytes() == before


def test_signing_again_keeps_the_witnessed_checkpoint_it_would_replace(copy: Path) -> None:
    """A cosigned checkpoint.txt is not swapped for the same checkpoint without its cosignatures (a witnessed
    bundle export would then fail the witness policy); one with another cosignature too replaces it, kept."""
    published = copy / "checkpoint.txt"
    note = published.read_text()
    text = note[:note.rindex("\n\n") + 1]
    witness = [PrivateKey.from_seed(bytes([n]) * 32) for n in (1, 2)]
    once = add_signatures(note, [cosign(text, "witness.example/w1", witness[0], 1_760_000_000)])
    published.write_text(once)
    sign = ("checkpoint", copy / "demo.ledger", "--key", copy / "keys" / "operator.pem")
    again = run(*sign)
    assert again.exit_code == 0 and "witness cosignatures this one lacks: kept" in again.output, again.output
    assert published.read_text() == once and not list(copy.glob("checkpoint-*.txt"))
    assert json.loads(run(*sign, "--json").output)["unchanged"] is True
    twice = add_signatures(once, [cosign(text, "witness.example/w2", witness[1], 1_760_000_000)])
    done = publish_checkpoint(copy / "demo.ledger", twice)  # more cosignatures: it replaces the published one
    assert not done.unchanged and published.read_text() == twice and done.kept and done.kept.read_text() == once


def test_a_checkpoint_by_another_key_replaces_the_published_one_only_under_trust(copy: Path) -> None:
    """A new user signed with a fresh key (keygen --ledger) and no --trust: it replaced the pinned checkpoint.txt,
    and every bundle exported under it then failed proof verify (note.unverified). Now it is refused, the
    published one kept; -o writes it elsewhere; with --trust the key is checked against the pinned one."""
    published = copy / "checkpoint.txt"
    before = published.read_text()
    assert run("keygen", "--ledger", copy / "demo.ledger", "-o", copy / "fresh.pem").exit_code == 0
    sign = ("checkpoint", copy / "demo.ledger", "--key", copy / "fresh.pem")
    refused = run(*sign, "--json")
    assert refused.exit_code == 1 and json.loads(refused.stdout)["error"]["code"] == "checkpoint.other_signer"
    assert published.read_text() == before and not list(copy.glob("checkpoint-*.txt"))
    assert run(*sign, "-o", copy / "elsewhere.txt").exit_code == 0 and published.read_text() == before
    pinned = run(*sign, "--trust", copy / "trust.keys")
    assert pinned.exit_code == 2 and "operator" in pinned.output and published.read_text() == before, pinned.output
    assert run("checkpoint", copy / "demo.ledger", "--key", copy / "keys" / "operator.pem").exit_code == 0


def test_a_proof_bundle_given_as_a_ledger_is_named(demo_dir: Path) -> None:
    result = run("verify", demo_dir / "proofs" / "R-00001-A.stproof", "--trust", demo_dir / "trust.keys")
    assert result.exit_code == 2 and "it is a proof bundle" in result.output


@pytest.mark.parametrize(("name", "said"), [
    ("trust.keys", "it is a trust file (a command's --trust takes it)"),
    ("checkpoint.txt", "it is a checkpoint (a command's --checkpoint takes it)"),
    ("keys/operator.pem", "it is a private key file")])
def test_a_text_file_given_as_a_ledger_is_named(demo_dir: Path, name: str, said: str) -> None:
    """A new user's review: a trust file given as the ledger got "it does not start with STNTRAIL", where a proof
    bundle is named."""
    result = run("show", demo_dir / name, "R-00001-A")
    assert result.exit_code == 2 and f"not a StoneTrail ledger file: {said}" in result.output


def test_an_index_or_audit_state_given_as_a_ledger_and_others_given_in_the_wrong_place_are_named(
        demo_dir: Path, tmp_path: Path) -> None:
    """A new user's review: the index beside a ledger, or an audit state, given as the ledger got "it does not start
    with STNTRAIL"; a checkpoint given to proof verify "missing the bundle tag"; a trust file given as a policy
    "line 1: expected 'key = value'"."""
    trust, ledger = demo_dir / "trust.keys", demo_dir / "demo.ledger"
    state = tmp_path / "a.state"
    assert run("verify", ledger, "--trust", trust, "--save-state", state).exit_code == 0
    cases = [(["verify", demo_dir / "demo.ledger.index", "--trust", trust], 2,
              "it is a ledger's index (an SQLite file) (give the ledger file beside it"),
             (["show", state, "R-00001-A"], 2, "it is an audit state file (verify --resume takes it)"),
             (["proof", "verify", demo_dir / "checkpoint.txt", "--trust", trust], 2,
              "(it is a checkpoint: a bundle holds one; 'stonetrail proof export' writes bundles)"),
             (["verify", ledger, "--trust", trust, "--policy", trust], 2,
              "it is a trust file, not a policy file")]
    for args, exit_code, said in cases:
        result = run(*args)
        assert result.exit_code == exit_code and said in result.output, (args, result.output)


@pytest.mark.parametrize("command", [["show"], ["proof", "export"]], ids=" ".join)
def test_an_item_given_before_its_ledger_is_named_as_such(demo_dir: Path, command: list[str]) -> None:
    """A new user's review: 'show R-00001-A demo.ledger' said only that the file 'R-00001-A' does not exist."""
    result = run(*command, "R-00001-A", demo_dir / "demo.ledger")
    assert result.exit_code == 2 and "did you mean" in result.output and "(LEDGER comes first)" in result.output
    missing = run(*command, demo_dir / "no.ledger", "R-00001-A")  # no file at all: as before
    assert missing.exit_code == 2 and "does not exist" in missing.output
    value = run(*command, "--trust", demo_dir / "no.keys", demo_dir / "demo.ledger", "R-00001-A")  # an option's
    assert value.exit_code == 2 and "does not exist" in value.output and "comes first" not in value.output


def test_an_option_value_before_the_ledger_is_no_argument(demo_dir: Path, tmp_path: Path) -> None:
    """A breaker's review: 'proof export -o new.stproof LEDGER ITEM' was taken for swapped arguments."""
    result = run("proof", "export", "-o", tmp_path / "new.stproof", demo_dir / "demo.ledger", "R-00001-A")
    assert result.exit_code == 0 and (tmp_path / "new.stproof").exists(), result.output


def test_resume_from_a_file_that_is_no_audit_state_names_what_it_is(demo_dir: Path) -> None:
    result = run("verify", demo_dir / "demo.ledger", "--trust", demo_dir / "trust.keys", "--resume",
                 demo_dir / "proofs" / "R-00001-A.stproof")
    assert result.exit_code == 2 and "not an audit state file: it is a proof bundle" in result.output


def test_a_malformed_checkpoint_is_a_usage_error(demo_dir: Path) -> None:
    result = run("verify", demo_dir / "demo.ledger", "--trust", demo_dir / "trust.keys",
                 "--checkpoint", demo_dir / "trust.keys")
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1


@pytest.mark.parametrize("group", ["proof", "evidence"])
def test_a_bare_command_group_teaches_as_a_usage_error(group: str) -> None:
    result = run(group)  # its help on stderr, exit 2 (tests/test_new_user.py: trial 15)
    assert result.exit_code == 2 and "Usage:" in result.stderr and result.stdout == ""


def test_show_suggests_the_item_id_in_its_case(demo_dir: Path) -> None:
    result = run("show", demo_dir / "demo.ledger", "r-00001-a")
    assert result.exit_code == 2 and "did you mean 'R-00001-A'" in result.output


def test_a_policy_that_switches_nothing_on_is_a_usage_error(demo_dir: Path) -> None:
    result = run("verify", demo_dir / "demo.ledger", "--trust", demo_dir / "trust.keys", "--import-threshold-ct", "0.5")
    assert result.exit_code == 2 and "policy.inactive" in result.output


# --- inputs and outputs a new user gets wrong -----------------------------------------------------------------

def test_checkpoint_writes_both_files_or_neither(demo_dir: Path, tmp_path: Path) -> None:
    not_a_dir = tmp_path / "a-file"
    not_a_dir.write_text("x")  # --proof-out inside it cannot be created, even by root
    key = demo_dir / "keys" / "operator.pem"
    result = run("checkpoint", demo_dir / "demo.ledger", "--key", key, "--since", demo_dir / "checkpoint.txt",
                 "--proof-out", not_a_dir / "p.txt", "-o", tmp_path / "new.txt")
    assert result.exit_code == 3 and "Traceback" not in result.output
    assert not (tmp_path / "new.txt").exists()  # the checkpoint was not left behind alone
    same = run("checkpoint", demo_dir / "demo.ledger", "--key", key, "--since", demo_dir / "checkpoint.txt",
               "--proof-out", tmp_path / "x.txt", "-o", tmp_path / "x.txt")
    assert same.exit_code == 2 and "same file" in same.output and not (tmp_path / "x.txt").exists()


def test_a_huge_text_input_is_refused_without_loading_it(demo_dir: Path, tmp_path: Path) -> None:
    huge = tmp_path / "huge.keys"
    with huge.open("wb") as fh:
        fh.truncate(64 * 1024 * 1024)  # sparse: 64 MiB of zeros
    result = run("verify", demo_dir / "demo.ledger", "--trust", huge)
    assert result.exit_code == 2 and "[input.too_large]" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_errors_name_the_file_they_are_about(demo_dir: Path, tmp_path: Path) -> None:
    wrong = run("verify", demo_dir / "demo.ledger", "--trust", demo_dir / "trust.keys",
                "--checkpoint", demo_dir / "trust.keys")
    assert wrong.exit_code == 2 and f"checkpoint {demo_dir / 'trust.keys'}:" in wrong.output
    other = tmp_path / "other.keys"
    other.write_text((demo_dir / "trust.keys").read_text().replace("operator", "#operator", 1)
                     + "operator " + (demo_dir / "trust.keys").read_text().split("authority ", 1)[1].split()[0] + "\n")
    proof = tmp_path / "p.txt"
    proof.write_text("stonetrail/v1/consistency-proof\nold 704\nnew 704\n")
    unverified = run("consistency", demo_dir / "checkpoint.txt", demo_dir / "checkpoint.txt", "--proof", proof,
                     "--trust", other)
    assert unverified.exit_code == 1 and "the old checkpoint:" in unverified.output
    ledger_as_bundle = run("proof", "verify", demo_dir / "demo.ledger", "--trust", demo_dir / "trust.keys")
    assert ledger_as_bundle.exit_code == 2 and "it is a ledger file: use 'stonetrail verify'" in ledger_as_bundle.output


def test_a_named_pipe_or_device_is_refused_not_waited_on(demo_dir: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    trust, ledger = demo_dir / "trust.keys", demo_dir / "demo.ledger"
    for args in (("verify", fifo, "--trust", trust), ("verify", ledger, "--trust", fifo),
                 ("proof", "verify", fifo, "--trust", trust),
                 ("verify", ledger, "--trust", trust, "--checkpoint", fifo), ("verify", "/dev/zero", "--trust", trust)):
        result = run(*args)
        assert result.exit_code == 2 and "not a regular file" in result.output, (args, result.output)
        assert len(result.output.strip().splitlines()) == 1


def test_verify_without_a_checkpoint_names_the_one_published_beside_the_ledger(demo_dir: Path) -> None:
    """An audit assumes nothing, so it does not read checkpoint.txt by itself; it says that one is there to pass
    (a review: a removed record went unseen by a verify run without --checkpoint)."""
    result = run("verify", demo_dir / "demo.ledger", "--trust", demo_dir / "trust.keys")
    assert result.exit_code == 0 and "none given" in result.output
    assert f"{demo_dir / 'checkpoint.txt'} is published beside it: pass it with --checkpoint" in result.output


def test_a_damaged_ledgers_export_names_the_ledger(copy: Path, tmp_path: Path) -> None:
    """A new user's review: ``proof export`` of a damaged ledger said "record 100: payload CRC32 does not match"
    without naming the file (``--json``: "file": null)."""
    ledger = copy / "demo.ledger"
    start, _ = _frame_spans(ledger)[100]
    _flip(ledger, start + 30)
    result = run("proof", "export", ledger, "R-00001-A", "-o", tmp_path / "x.stproof", "--json")
    error = json.loads(result.output)["error"]
    assert result.exit_code == 3 and error["file"] == str(ledger) and error["message"].startswith(f"{ledger}: ")
    assert error["code"] == "store.checksum_mismatch" and not (tmp_path / "x.stproof").exists()


def test_verify_warns_of_a_file_short_of_its_published_checkpoint(copy: Path) -> None:
    """A new user's review: a ledger cut short beside its checkpoint.txt was invalid for show and items, and
    verify said only "valid". Its verdict stays the file's (an audit assumes nothing), with a warning naming what
    is missing and the option that checks it."""
    ledger = copy / "demo.ledger"
    whole = copy / "whole.ledger"
    ledger.rename(whole)
    ledger.write_bytes(whole.read_bytes()[:scan(whole).frames[700].offset])  # the first 700 records
    result = run("verify", ledger, "--trust", copy / "trust.keys")
    assert result.exit_code == 0 and "fewer than the 704 of the checkpoint published beside it" in result.output
    assert f"pass --checkpoint {copy / 'checkpoint.txt'}" in result.output
    as_json = json.loads(run("verify", ledger, "--trust", copy / "trust.keys", "--json").stdout)
    assert as_json["verdict"] == "valid" and len(as_json["warnings"]) == 1  # a script sees it too (a review)
    assert "fewer than the 704" in as_json["warnings"][0]
    checked = run("verify", ledger, "--trust", copy / "trust.keys", "--checkpoint", copy / "checkpoint.txt")
    assert checked.exit_code == 1 and "checkpoint.beyond_log" in checked.output
    assert "fewer than the" not in run("verify", whole, "--trust", copy / "trust.keys").output
    assert json.loads(run("verify", whole, "--trust", copy / "trust.keys", "--json").stdout)["warnings"] == []


def test_verify_warns_of_a_file_that_does_not_match_its_published_checkpoint(copy: Path) -> None:
    """Adversarial reviews: a file rewritten since its published checkpoint (at the same length, or longer) verified
    valid with no warning, while show --trust called it invalid. The checkpoint, signed by the pinned operator, is
    compared in the same pass (not judged: the verdict is the file's), and the warning says what differs."""
    from dataclasses import replace

    from ledger.checkpoint import read_unverified_checkpoint, sign_checkpoint
    from ledger.hashing import Digest

    published = read_unverified_checkpoint((copy / "checkpoint.txt").read_text())
    key = keyfile.load_private_key(copy / "keys" / "operator.pem")
    for size in (704, 700):  # what the operator signed for this length, or for a prefix of the file
        other = replace(published, tree_size=size, root_hash=Digest(bytes(32)))
        (copy / "checkpoint.txt").write_text(sign_checkpoint(other, published.origin, key))
        result = run("verify", copy / "demo.ledger", "--trust", copy / "trust.keys", "--json")
        warnings = json.loads(result.stdout)["warnings"]
        assert result.exit_code == 0 and len(warnings) == 1, result.output
        assert f"does not match the checkpoint its operator published beside it ({copy / 'checkpoint.txt'}, tree " \
            f"size {size}: " in warnings[0] and "checkpoint.root_mismatch" in warnings[0]
    unsigned = replace(published, root_hash=Digest(bytes(32)))  # signed by no pinned key: no warning
    (copy / "checkpoint.txt").write_text(sign_checkpoint(unsigned, published.origin,
                                                         keyfile.load_private_key(copy / "keys" / "authority.pem")))
    quiet = run("verify", copy / "demo.ledger", "--trust", copy / "trust.keys", "--json")
    assert quiet.exit_code == 0 and json.loads(quiet.stdout)["warnings"] == []


def test_one_damaged_span_is_counted_as_one_record(copy: Path) -> None:
    """A new user's review: "1 damaged span of the file counted as one record each"."""
    ledger = copy / "demo.ledger"
    start, _ = _frame_spans(ledger)[100]
    _flip(ledger, start + 30)
    result = run("verify", ledger, "--trust", copy / "trust.keys")
    assert result.exit_code == 1 and "1 damaged span of the file counted as one record (" in result.output


def test_a_trust_file_with_its_operator_and_authority_lines_swapped_is_named_so(demo_dir: Path, tmp_path: Path) -> None:
    """A new user's review: with the two lines' roles swapped, verify asked "is this the right trust file?", init
    said to make a new operator key, and checkpoint called the operator key "the authority's key"."""
    lines = (demo_dir / "trust.keys").read_text().splitlines()
    swapped = [("authority" + line[8:]) if line.startswith("operator ") else
               ("operator" + line[9:]) if line.startswith("authority ") else line for line in lines]
    (tmp_path / "swapped.keys").write_text("\n".join(swapped) + "\n")
    asked = "are its operator and authority lines swapped?"
    verify = run("verify", demo_dir / "demo.ledger", "--trust", tmp_path / "swapped.keys",
                 "--checkpoint", demo_dir / "checkpoint.txt")
    assert verify.exit_code == 1 and asked in verify.output
    assert asked not in run("verify", demo_dir / "demo.ledger", "--trust", demo_dir / "trust.keys",
                            "--checkpoint", tmp_path / "swapped.keys").output  # the right trust file: no such hint
    (tmp_path / "l").mkdir()
    init = run("init", tmp_path / "l" / "n.ledger", "--origin", "demo.stonetrail.example/ledger",
               "--trust", tmp_path / "swapped.keys")
    assert init.exit_code == 0 and asked in init.output
    signed = run("checkpoint", tmp_path / "l" / "n.ledger", "--key", demo_dir / "keys" / "operator.pem",
                 "--trust", tmp_path / "swapped.keys", "-o", tmp_path / "c.txt")
    assert signed.exit_code == 2 and asked in signed.output and "[trust.not_operator]" in signed.output
    assert "the authority's key" not in signed.output


def test_a_missing_folder_and_a_wrong_file_for_a_bundle_are_named(demo_dir: Path, tmp_path: Path) -> None:
    """A new user's review: writing into a folder that does not exist said only "No such file or directory", and
    an empty file or a report page given as a bundle only "missing the bundle tag"."""
    out = tmp_path / "no such" / "x.stproof"
    export = run("proof", "export", demo_dir / "demo.ledger", "R-00001-A", "-o", out)
    assert export.exit_code == 3 and f"no folder {out.parent} (create it first) [store.io]" in export.output
    (tmp_path / "empty.stproof").write_bytes(b"")
    empty = run("proof", "verify", tmp_path / "empty.stproof", "--trust", demo_dir / "trust.keys")
    assert empty.exit_code == 2 and "(it is an empty file) [bundle.tag]" in empty.output
    page = run("proof", "report", demo_dir / "proofs" / "R-00001-A.stproof", "--trust", demo_dir / "trust.keys",
               "-o", tmp_path / "r.html")
    assert page.exit_code == 0, page.output
    html = run("proof", "verify", tmp_path / "r.html", "--trust", demo_dir / "trust.keys")
    assert html.exit_code == 2 and "it is a provenance report page" in html.output


def test_an_operator_key_pinned_for_another_ledger_never_vouches_for_this_ones_checkpoint(demo_dir: Path,
                                                                                         tmp_path: Path) -> None:
    """An adversarial review: with two operator keys pinned (two ledgers), either could sign a checkpoint in the
    other's name (checkpoint --name), and verify, proof verify --origin, consistency and evidence accepted it. A
    checkpoint is accepted only under a pinned key named after its origin line."""
    made = run("keygen", "--name", "other.example/ledger", "-o", tmp_path / "other.pem", "--json")
    other = json.loads(made.output)["verifier_key"]
    (tmp_path / "two.keys").write_text((demo_dir / "trust.keys").read_text() + f"operator {other}\n")
    refused = run("checkpoint", demo_dir / "demo.ledger", "--key", tmp_path / "other.pem",
                  "--name", "other.example/ledger", "-o", tmp_path / "cp.txt")
    assert refused.exit_code == 2 and "docs/adr/0037" in refused.output  # the tool makes none; the library can
    (tmp_path / "cp.txt").write_text(checkpoint_file(demo_dir / "demo.ledger",
                                                     keyfile.load_private_key(tmp_path / "other.pem"),
                                                     "other.example/ledger"))
    audit = run("verify", demo_dir / "demo.ledger", "--trust", tmp_path / "two.keys",
                "--checkpoint", tmp_path / "cp.txt")
    assert audit.exit_code == 1 and "note.unverified" in audit.output and "named after its origin" in audit.output
    run("proof", "export", demo_dir / "demo.ledger", "R-00001-A", "--as-of", tmp_path / "cp.txt",
        "-o", tmp_path / "b.stproof")
    bundle = run("proof", "verify", tmp_path / "b.stproof", "--trust", tmp_path / "two.keys",
                 "--origin", "demo.stonetrail.example/ledger")
    assert bundle.exit_code == 1 and "note.unverified" in bundle.output
    genuine = run("verify", demo_dir / "demo.ledger", "--trust", tmp_path / "two.keys",
                  "--checkpoint", demo_dir / "checkpoint.txt")
    assert genuine.exit_code == 0, genuine.output  # the ledger's own operator's checkpoint, under the same trust file
