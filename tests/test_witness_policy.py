"""Witness policies (C2SP tlog-policy), cosignatures (C2SP tlog-cosignature/v1) and the quorum a verifier
requires of a checkpoint: every rule refused with its named code, the untouched input accepted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ledger.bundle import check_bundle
from ledger.checkpoint import MAX_SIGNATURES, add_signatures, format_checkpoint, read_unverified_checkpoint
from ledger.cosignature import CosignerKey, cosign, cosigner_key, open_cosignatures
from ledger.errors import NoteFormatError, SignatureError
from ledger.export import export_bundle
from ledger.keys import PrivateKey, note_verifier_key
from ledger.trust import Trust
from ledger.witness_policy import PolicyError, WitnessPolicy
from ledger.witnessed import WitnessError, check_witnesses, witness_status
from stonetrail_cli.main import main

NOW = 1_796_000_000  # 2026-11-30
SEEDS = [bytes([i]) * 32 for i in range(1, 40)]
ITEM = "R-00001-A"


def witness(i: int) -> tuple[str, PrivateKey, CosignerKey]:
    key = PrivateKey.from_seed(SEEDS[i])
    name = f"witness{i}.example"
    return name, key, cosigner_key(name, key.public_key)


def policy_text(count: int = 3, quorum: str = "2") -> str:
    lines = [f"witness w{i} {witness(i)[2].text()} http://127.0.0.1:1/w{i}" for i in range(count)]
    names = " ".join(f"w{i}" for i in range(count))
    return "\n".join([*lines, f"group all-w {quorum} {names}", "quorum all-w"]) + "\n"


def cosigned(note: str, who: list[int], when: int = NOW) -> str:
    text = format_checkpoint(read_unverified_checkpoint(note))
    return add_signatures(note, [cosign(text, witness(i)[0], witness(i)[1], when) for i in who])


@pytest.fixture(scope="module")
def signed(demo: Path) -> tuple[Trust, str, Path]:
    return Trust.parse((demo / "trust.keys").read_text()), (demo / "checkpoint.txt").read_text(), demo


# --- the policy file ----------------------------------------------------------------------------------------

def test_the_spec_example_policy_with_nested_groups_is_read_and_evaluated() -> None:
    keys = [witness(i)[2].text() for i in range(6)]
    policy = WitnessPolicy.parse(
        "# example\n"
        + "".join(f"witness X{i} {keys[i]}\n" for i in range(3))
        + "group X-witnesses 2 X0 X1 X2\n\n"
        + "".join(f"  witness\tY{i} {keys[3 + i]}\n" for i in range(3))
        + "group Y-witnesses any Y0 Y1 Y2\ngroup X-and-Y all X-witnesses Y-witnesses\nquorum X-and-Y\n")
    assert policy.satisfied({"X0", "X2", "Y1"})
    assert not policy.satisfied({"X0", "Y1", "Y2"})  # one X only
    assert not policy.satisfied({"X0", "X1"})  # no Y
    assert policy.quorum_time({"X0": 30, "X1": 20, "X2": 10, "Y0": 25}) == 20


@pytest.mark.parametrize(("text", "code"), [
    ("", "witness.no_quorum"),
    ("# only a comment\n\n", "witness.no_quorum"),
    ("witness a {w0}\n", "witness.no_quorum"),
    ("witness a {w0}\nquorum a\nquorum a\n", "witness.policy_malformed"),
    ("witness a {w0}\nwitness b {w0}\nquorum a\n", "witness.duplicate_key"),
    ("witness a {w0}\nwitness a {w1}\nquorum a\n", "witness.duplicate_name"),
    ("witness none {w0}\nquorum none\n", "witness.duplicate_name"),
    ("quorum a\nwitness a {w0}\n", "witness.unknown_name"),
    ("witness a {w0}\ngroup g 2 a\nquorum g\n", "witness.group"),
    ("witness a {w0}\ngroup g 0 a\nquorum g\n", "witness.group"),
    ("witness a {w0}\ngroup g any a a\nquorum g\n", "witness.group"),
    ("witness a {w0}\ngroup g any\nquorum g\n", "witness.group"),
    # an adversarial review: w1 alone met "2 of (any of w1, w2), w1": one witness reached through two members
    ("witness a {w0}\nwitness b {w1}\ngroup g any a b\ngroup q 2 g a\nquorum q\n", "witness.group"),
    ("witness a {w0}\nwitness b {w1}\ngroup g any a b\ngroup h any b\ngroup q all g h\nquorum q\n", "witness.group"),
    ("witness a {w0}\r\nquorum a\r\n", "witness.policy_malformed"),
    ("witness a {w0}\nquorum a extra\n", "witness.policy_malformed"),
    ("witnesses a {w0}\nquorum a\n", "witness.policy_malformed"),
    ("witness a {log}\nquorum a\n", "witness.policy_malformed"),  # a checkpoint key (0x01) is no cosigner key
])
def test_each_policy_rule_is_refused_at_load_with_its_code(text: str, code: str) -> None:
    log = note_verifier_key("log.example", PrivateKey.from_seed(SEEDS[30]).public_key).text()
    with pytest.raises(PolicyError) as caught:
        WitnessPolicy.parse(text.format(w0=witness(0)[2].text(), w1=witness(1)[2].text(), log=log))
    assert caught.value.code == code


def test_one_key_under_two_names_is_refused_even_across_a_log_and_a_witness_line() -> None:
    key = PrivateKey.from_seed(SEEDS[5])
    log = note_verifier_key("log.example", key.public_key).text()
    with pytest.raises(PolicyError) as caught:
        WitnessPolicy.parse(f"log {log}\nwitness a {cosigner_key('w.example', key.public_key).text()}\nquorum a\n")
    assert caught.value.code == "witness.duplicate_key"
    renamed = cosigner_key("other.example", witness(0)[1].public_key).text()
    with pytest.raises(PolicyError, match="counts once"):
        WitnessPolicy.parse(f"witness a {witness(0)[2].text()}\nwitness b {renamed}\nquorum a\n")


def test_quorum_none_is_accepted_only_when_written(signed: tuple[Trust, str, Path]) -> None:
    trust, note, _ = signed
    policy = WitnessPolicy.parse(f"witness a {witness(0)[2].text()}\nquorum none\n")
    assert not policy.required
    assert check_witnesses(note, trust.with_witnesses(policy), now=NOW).met


def test_the_trust_file_embeds_a_policy_and_refuses_an_operator_as_witness(signed: tuple[Trust, str, Path]) -> None:
    trust, _, demo = signed
    text = (demo / "trust.keys").read_text()
    embedded = Trust.parse(text + policy_text())
    assert embedded.witnesses is not None and len(embedded.witnesses.witnesses) == 3
    assert Trust.parse(embedded.format()) == embedded
    operator = trust.operators[0].public_key
    as_witness = cosigner_key("me.example", operator).text()
    with pytest.raises(PolicyError) as caught:
        Trust.parse(text + f"witness me {as_witness}\nquorum me\n")
    assert caught.value.code == "witness.duplicate_key"
    with pytest.raises(PolicyError) as caught:
        Trust.parse(text + f"witness a {witness(0)[2].text()}\n")  # witnesses, but no quorum
    assert caught.value.code == "witness.no_quorum"


# --- cosignatures and the quorum ------------------------------------------------------------------------------

def test_two_of_three_cosignatures_meet_the_quorum_and_one_does_not(signed: tuple[Trust, str, Path]) -> None:
    trust, note, _ = signed
    trust = trust.with_witnesses(WitnessPolicy.parse(policy_text()))
    status = check_witnesses(cosigned(note, [0, 2]), trust, now=NOW)
    assert status.met and status.quorum_time == NOW and set(status.times) == {"w0", "w2"}
    assert "by 2 of 3 witnesses" in status.describe()
    with pytest.raises(WitnessError) as caught:
        check_witnesses(cosigned(note, [1]), trust, now=NOW)
    assert caught.value.code == "witness.quorum"
    with pytest.raises(WitnessError):
        check_witnesses(note, trust, now=NOW)  # the operator's signature alone


def test_a_witness_counts_once_and_unknown_cosigners_are_ignored(signed: tuple[Trust, str, Path]) -> None:
    trust, note, _ = signed
    trust = trust.with_witnesses(WitnessPolicy.parse(policy_text()))
    text = format_checkpoint(read_unverified_checkpoint(note))
    name, key, _ = witness(0)
    twice = add_signatures(note, [cosign(text, name, key, NOW), cosign(text, name, key, NOW - 5),
                                  cosign(text, "alias.example", key, NOW)])  # the same key, another name
    assert witness_status(twice, trust).times == {"w0": NOW}
    with pytest.raises(WitnessError):
        check_witnesses(twice, trust, now=NOW)
    strangers = cosigned(note, [7, 8, 9])  # valid cosignatures, by keys outside the policy
    assert witness_status(strangers, trust).times == {}


def test_a_policy_witness_bad_cosignature_refuses_the_note(signed: tuple[Trust, str, Path]) -> None:
    trust, note, _ = signed
    trust = trust.with_witnesses(WitnessPolicy.parse(policy_text()))
    good = cosigned(note, [0, 1])
    line = good.rstrip("\n").split("\n")[-1]
    name, b64 = line[2:].split(" ")
    flipped = b64[:20] + ("A" if b64[20] != "A" else "B") + b64[21:]
    with pytest.raises(SignatureError) as caught:
        witness_status(good.replace(b64, flipped), trust)
    assert caught.value.code == "witness.bad_cosignature"
    other_time = cosign(format_checkpoint(read_unverified_checkpoint(note)), *witness(1)[:2], NOW)
    raw_line = other_time.split(" ")[2]
    import base64
    raw = base64.b64decode(raw_line)
    moved = base64.b64encode(raw[:4] + (NOW + 1).to_bytes(8, "big") + raw[12:]).decode()
    with pytest.raises(SignatureError):  # the timestamp is signed: changing it breaks the cosignature
        witness_status(good.replace(b64, moved), trust)
    assert name == witness(1)[0]


def test_sixteen_signature_lines_are_accepted_and_the_cap_refused(signed: tuple[Trust, str, Path]) -> None:
    trust, note, _ = signed
    trust = trust.with_witnesses(WitnessPolicy.parse(policy_text(15, "all")))
    sixteen = cosigned(note, list(range(15)))
    assert len(sixteen.split("\n\n", 1)[1].splitlines()) == 16
    assert check_witnesses(sixteen, trust, now=NOW).met
    text = format_checkpoint(read_unverified_checkpoint(note))
    name, key, _ = witness(0)
    lines = [cosign(text, f"{name}{i}", key, NOW) for i in range(MAX_SIGNATURES)]
    with pytest.raises(NoteFormatError) as caught:
        add_signatures(note, lines)
    assert caught.value.code == "note.malformed"
    over = note + "".join(lines)
    with pytest.raises(NoteFormatError):
        open_cosignatures(over, [witness(0)[2]])


def test_freshness_is_the_time_the_quorum_was_met(signed: tuple[Trust, str, Path]) -> None:
    trust, note, _ = signed
    trust = trust.with_witnesses(WitnessPolicy.parse(policy_text()))
    text = format_checkpoint(read_unverified_checkpoint(note))
    note = add_signatures(note, [cosign(text, *witness(0)[:2], NOW - 7200), cosign(text, *witness(1)[:2], NOW - 60)])
    assert check_witnesses(note, trust, now=NOW, max_age=3 * 3600).quorum_time == NOW - 7200
    with pytest.raises(WitnessError) as caught:
        check_witnesses(note, trust, now=NOW, max_age=3600)  # one witness is fresh, but the quorum is two
    assert caught.value.code == "witness.stale"
    with pytest.raises(WitnessError) as caught:
        check_witnesses(note, trust, now=NOW - 9000)  # cosigned "in the future" of this clock
    assert caught.value.code == "witness.future"
    with pytest.raises(WitnessError) as caught:
        check_witnesses(note, Trust.parse(trust.format().split("witness ")[0]), now=NOW, max_age=3600)
    assert caught.value.code == "witness.no_time"


# --- bundles and the CLI ------------------------------------------------------------------------------------

def test_a_bundle_carries_its_cosignatures_and_fails_the_quorum_with_a_named_code(
        signed: tuple[Trust, str, Path], tmp_path: Path) -> None:
    trust, note, demo = signed
    policy = tmp_path / "witnesses.policy"
    policy.write_text(policy_text())
    strict = trust.with_witnesses(WitnessPolicy.parse(policy_text()))
    good = export_bundle(demo / "demo.ledger", ITEM, cosigned(note, [0, 1]), trust=trust)
    weak = export_bundle(demo / "demo.ledger", ITEM, cosigned(note, [2]), trust=trust)
    report = check_bundle(good, strict, now=NOW)
    assert report.ok and report.witnessed is not None and report.witnessed.met
    assert [c["witness"] for c in report.to_json()["witnessed"]["cosignatures"]] == ["w0", "w1"]  # type: ignore
    weak_report = check_bundle(weak, strict, now=NOW)
    assert [f.code for f in weak_report.findings] == ["witness.quorum"]
    assert check_bundle(weak, trust).ok  # without a witness policy nothing is required
    stale = check_bundle(good, strict, max_age=3600, now=NOW + 7200)
    assert [f.code for f in stale.findings] == ["witness.stale"]

    runner = CliRunner()
    (tmp_path / "good.stproof").write_bytes(good)
    (tmp_path / "weak.stproof").write_bytes(weak)
    ok = runner.invoke(main, ["proof", "verify", str(tmp_path / "good.stproof"), "--trust", str(demo / "trust.keys"),
                              "--witness-policy", str(policy)])
    assert ok.exit_code == 0, ok.output
    assert "witnesses:  witnessed 2026-11-30" in ok.output and "by 2 of 3 witnesses" in ok.output
    old = runner.invoke(main, ["proof", "verify", str(tmp_path / "good.stproof"), "--trust",
                               str(demo / "trust.keys"), "--witness-policy", str(policy), "--max-age", "1h"])
    assert old.exit_code == 1 and "witness.stale" in old.output
    failed = runner.invoke(main, ["proof", "verify", str(tmp_path / "weak.stproof"), "--trust",
                                  str(demo / "trust.keys"), "--witness-policy", str(policy), "--json"])
    assert failed.exit_code == 1
    assert [f["code"] for f in json.loads(failed.output)["findings"]] == ["witness.quorum"]
    unused = runner.invoke(main, ["verify", str(demo / "demo.ledger"), "--trust", str(demo / "trust.keys"),
                                  "--witness-policy", str(policy)])  # no checkpoint to check: refused, not ignored
    assert unused.exit_code == 2 and "--checkpoint" in unused.output, unused.output
    bad_age = runner.invoke(main, ["proof", "verify", str(tmp_path / "good.stproof"), "--trust",
                                   str(demo / "trust.keys"), "--max-age", "soon"])
    assert bad_age.exit_code == 2 and "Traceback" not in bad_age.output
    empty = tmp_path / "empty.policy"
    empty.write_text("# nobody\n")
    refused = runner.invoke(main, ["proof", "verify", str(tmp_path / "good.stproof"), "--trust",
                                   str(demo / "trust.keys"), "--witness-policy", str(empty)])
    assert refused.exit_code == 2 and "no quorum line" in refused.output


def test_consistency_and_an_audit_require_the_quorum_of_the_checkpoint_they_rely_on(
        signed: tuple[Trust, str, Path]) -> None:
    from ledger.audit import check_ledger
    from ledger.consistency import verify_checkpoint_consistency
    from ledger.monitor import consistency_proof_for

    trust, note, demo = signed
    strict = trust.with_witnesses(WitnessPolicy.parse(policy_text()))
    proof = consistency_proof_for(demo / "demo.ledger", note, note)
    witnessed = cosigned(note, [1, 2])
    result = verify_checkpoint_consistency(note, witnessed, proof, strict)
    assert result.witnessed is not None and result.witnessed.met
    assert result.to_json()["witnessed"]["met"] is True  # type: ignore[index]
    with pytest.raises(WitnessError) as caught:
        verify_checkpoint_consistency(witnessed, note, proof, strict)  # the new one has no cosignature
    assert caught.value.code == "witness.quorum" and "the new checkpoint" in str(caught.value)
    assert check_ledger(demo / "demo.ledger", strict, checkpoints=[witnessed]).ok
    audit = check_ledger(demo / "demo.ledger", strict, checkpoints=[cosigned(note, [0])])
    assert [f.code for f in audit.findings] == ["witness.quorum"]


# --- vectors ----------------------------------------------------------------------------------------------------

SHARED = Path(__file__).resolve().parents[2] / "shared" / "vectors" / "c2sp-format-examples"
OURS = Path(__file__).resolve().parent / "vectors"


def test_the_cosigned_message_is_the_c2sp_example_byte_for_byte() -> None:
    from ledger.checkpoint import note_signatures
    from ledger.cosignature import cosigned_message

    note = (SHARED / "cosigned-checkpoint.example.txt").read_text()
    text, lines = note_signatures(note)
    name, _, raw = lines[1]
    assert name == "witness.example.com/w1" and len(raw) == 72
    timestamp = int.from_bytes(raw[:8], "big")
    assert cosigned_message(text, timestamp) == (SHARED / "cosignature-v1-signed-message.example.txt").read_bytes()


def test_the_vector_cosigned_checkpoint_meets_the_vector_policy() -> None:
    trust = Trust.parse((OURS / "trust.keys").read_text())
    policy = WitnessPolicy.parse((OURS / "witness.policy").read_bytes())
    note = (OURS / "cosigned-checkpoint.txt").read_text()
    status = check_witnesses(note, trust.with_witnesses(policy), now=1_796_000_000)
    assert status.times == {"w1": 1_796_000_000, "w2": 1_796_000_000}
    assert status.describe().startswith("witnessed 2026-11-30 00:53 UTC by 2 of 3 witnesses")
    assert (OURS / "checkpoint.txt").read_text() in note  # the operator's note, cosignatures appended


def test_the_bundle_json_rendering_carries_the_cosignatures(signed: tuple[Trust, str, Path]) -> None:
    from ledger.bundle import bundle_from_json, bundle_to_json

    trust, note, demo = signed
    data = export_bundle(demo / "demo.ledger", ITEM, cosigned(note, [0, 2], NOW), trust=trust)
    rendered = bundle_to_json(data)
    assert rendered["cosignatures"] == [{"name": witness(i)[0], "key_id": witness(i)[2].key_id.hex(), "time": NOW}
                                        for i in (0, 2)]
    assert bundle_from_json(rendered) == data
    with pytest.raises(Exception, match="cosignatures not what the checkpoint says"):
        bundle_from_json({**rendered, "cosignatures": []})


def test_fetch_requires_the_quorum_of_the_published_checkpoint(signed: tuple[Trust, str, Path],
                                                               tmp_path: Path) -> None:
    from ledger.published import fetch_bundle, publish_log

    trust, note, demo = signed
    strict = trust.with_witnesses(WitnessPolicy.parse(policy_text()))
    weak, good = tmp_path / "weak", tmp_path / "good"
    publish_log(demo / "demo.ledger", weak, cosigned(note, [1]))
    publish_log(demo / "demo.ledger", good, cosigned(note, [0, 1]))
    with pytest.raises(WitnessError) as caught:
        fetch_bundle(weak.as_uri() + "/", ITEM, strict)
    assert caught.value.code == "witness.quorum"
    assert check_bundle(fetch_bundle(good.as_uri() + "/", ITEM, strict), strict).ok
    with pytest.raises(WitnessError) as caught:
        fetch_bundle(good.as_uri() + "/", ITEM, strict, max_age=60)  # cosigned at NOW, days ago
    assert caught.value.code == "witness.stale"


# --- found by an adversarial review ------------------------------------------------------------------------------

def test_a_deeply_shared_nesting_of_groups_is_judged_in_the_policys_size() -> None:
    """200 groups, each naming the two before it: judged once each (it was exponential: 34 groups took 17 s)."""
    lines = [f"witness w0 {witness(0)[2].text()}", f"witness w1 {witness(1)[2].text()}",
             "group g0 all w0", "group g1 all w0 w1"]
    lines += [f"group g{k} all g{k - 1} g{k - 2}" for k in range(2, 200)]
    policy = WitnessPolicy.parse("\n".join([*lines, "quorum g199"]) + "\n")
    assert policy.satisfied({"w0", "w1"}) and not policy.satisfied({"w0"})
    assert len(policy.describe()) < 100


def test_a_cosignature_dated_past_year_9999_or_ahead_of_the_clock_is_not_counted(
        signed: tuple[Trust, str, Path]) -> None:
    trust, note, _ = signed
    trust = trust.with_witnesses(WitnessPolicy.parse(policy_text()))
    text = format_checkpoint(read_unverified_checkpoint(note))
    for far in (2**40, 2**63 - 1, NOW + 3600):
        lines = [cosign(text, *witness(0)[:2], NOW), cosign(text, *witness(1)[:2], NOW),
                 cosign(text, *witness(2)[:2], far)]
        status = check_witnesses(add_signatures(note, lines), trust, now=NOW)  # two good ones meet 2 of 3
        assert status.met and set(status.times) == {"w0", "w1"}
        assert witness_status(add_signatures(note, lines), trust).describe()  # no crash describing any time
        with pytest.raises(WitnessError) as caught:
            check_witnesses(add_signatures(note, lines[1:]), trust, now=NOW)
        assert caught.value.code == "witness.future"


def test_a_group_of_one_member_needed_may_share_witnesses_between_its_members() -> None:
    """An adversarial review: `group g3 1 g1 g2`, g1 = all of w0 w1, g2 = all of w0 w2, was refused, yet each of
    its members needs two distinct witnesses: a group that needs one member counts no two together."""
    keys = {f"w{i}": witness(i)[2].text() for i in range(3)}
    text = "".join(f"witness {name} {k}\n" for name, k in keys.items())
    policy = WitnessPolicy.parse(text + "group g1 all w0 w1\ngroup g2 all w0 w2\ngroup g3 1 g1 g2\nquorum g3\n")
    assert policy.satisfied({"w0", "w2"}) and not policy.satisfied({"w0"})
    with pytest.raises(PolicyError) as twice:  # needing both, w0 would still count once only: refused
        WitnessPolicy.parse(text + "group g1 any w0 w1\ngroup g2 any w0 w2\ngroup g3 2 g1 g2\nquorum g3\n")
    assert twice.value.code == "witness.group"
