"""``stonetrail checkpoint``: sign a checkpoint of a ledger, have witnesses cosign it, publish it
(:func:`ledger.checkpoint_file`, :func:`ledger.publish.publish_checkpoint`).

Registered on the group by :mod:`stonetrail_cli.main`.
"""

from __future__ import annotations

from pathlib import Path

import click

from ledger import checkpoint_file, note_verifier_key
from ledger.checkpoint import read_unverified_checkpoint
from ledger.consistency import format_consistency_proof
from ledger.cosignature import has_cosignature
from ledger.errors import TrustFileError
from ledger.monitor import consistency_proof_for
from ledger.pg.db import is_url
from ledger.publish import Published, check_signer, publish_checkpoint
from ledger.trust import Trust
from ledger.witness_policy import WitnessPolicy

from . import witness as _witness
from ._common import _EXISTING, _LEDGER, _about, _errors, _print_json, _write_new, check_new_file
from ._inputs import _load_trust, _read_checkpoint, _read_text, load_key
from ._output import progress


@click.command("checkpoint", short_help="Sign a checkpoint of a ledger and publish it beside the ledger.")
@click.argument("ledger_file", metavar="LEDGER", type=_LEDGER)
@click.option("--key", "key_file", required=True, type=_EXISTING,
              help="The operator's private key (PEM; made with 'stonetrail keygen --ledger LEDGER').")
@click.option("--name", help="Signer name in the note: the ledger's origin (the default), the one name verifiers "
                             "accept a checkpoint under (docs/adr/0037).")
@click.option("--trust", "trust_file", type=_EXISTING,
              help="Refuse to sign unless --key is the operator key this trust file pins under the signer name.")
@click.option("-o", "--out", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path),
              help="Write the note to this new file (never overwritten), or '-' for stdout, instead of publishing "
                   "it as checkpoint.txt beside LEDGER.")
@click.option("--since", "since_file", type=_EXISTING,
              help="An earlier checkpoint of LEDGER: also write the consistency proof from it (with --proof-out).")
@click.option("--proof-out", type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the consistency proof from --since to the new checkpoint.")
@click.option("--witness-policy", "policy_file", type=_EXISTING,
              help="A witness policy (C2SP tlog-policy; docs/format.md §7e): lines 'witness NAME KEY URL', 'group "
                   "NAME K MEMBER...', 'quorum NAME'. Have its witnesses cosign the checkpoint first, and publish "
                   "nothing unless its quorum is met. Default: the --trust file's witness lines, if any.")
@click.option("--witness-timeout", default=10.0, show_default=True, type=click.FloatRange(0.1, 600),
              help="Seconds each witness has to answer.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the note, where it was written and the files kept as JSON.")
@_errors
def checkpoint(ledger_file: Path | str, key_file: Path, name: str | None, trust_file: Path | None,
               out: Path | None, since_file: Path | None, proof_out: Path | None, policy_file: Path | None,
               witness_timeout: float, as_json: bool) -> None:
    """Sign a C2SP checkpoint of LEDGER as it is now: origin, tree size and root hash, plus three lines that
    commit to the registry, to every item's latest record and to every claim on an item id, report number or
    inscription (docs/format.md §7); publish it as checkpoint.txt
    beside LEDGER (the checkpoint 'proof export' uses), keeping the one it replaces as checkpoint-<tree size>.txt
    (checkpoint-<tree size>-<16 hex of its SHA-256>.txt when both are of the same tree size).
    A published checkpoint is replaced only by one of a ledger that extends it, and, without --trust, only by
    one signed by a key that signed it (checkpoint.other_signer, exit 1: verifiers pinning that key would refuse
    the new one; with --trust, the new key is checked against the pinned one instead).

    The operator vouches for the log's bytes, not for its records' validity: a ledger with a record that breaks
    a rule is signed all the same (a framing that is damaged is refused). Audit it first ('stonetrail verify')
    when that matters; the bundles of a stone with such a record then fail 'proof verify'.

    The note is signed under the ledger's origin, the one name verifiers accept. Their trust file must pin
    this key under that name as 'operator'. With --trust, that is checked before signing, and a refusal names
    the line that was expected; without it, only a key the ledger's registry gives to a party or the authority
    is refused (a trader's key is never the operator's): any other key signs, even one no verifier pins, so the
    line verifiers must pin is printed (pass --trust to be refused instead).
    With --since OLD and --proof-out, also write the RFC 9162 consistency proof from OLD to the new checkpoint
    (checked by 'stonetrail consistency'); nothing is written if LEDGER does not extend OLD. --json prints
    {"tree_size", "note", "file" (null with -o -), "kept", "unchanged", "consistency_proof", "pin"} ("pin": the
    trust-file line verifiers need, when --trust was not given).

    With --witness-policy (or witness lines in the --trust file: the policy its verifiers will apply), the
    signed checkpoint is first sent to every witness of that policy with a URL
    (C2SP tlog-witness), in parallel, with a consistency proof from the size it last cosigned; each answer is
    printed (cosigned at T, HTTP status and body, timeout, unreachable) and the valid cosignatures are added to
    the note. If they do not meet the policy's quorum nothing is written and the exit code is 1
    (witness.quorum). --json adds "witnesses": [{"witness", "url", "outcome", "status", "body", "time", ...}].

    LEDGER is a ledger file or a postgresql:// URL (docs/format.md §8.4; a database has no folder to publish in:
    give -o).

    \b
    Examples:
      stonetrail checkpoint out/demo.ledger --key out/keys/operator.pem --trust out/trust.keys
      stonetrail checkpoint out/demo.ledger --key out/keys/operator.pem -o cp.txt
      stonetrail checkpoint out/demo.ledger --key out/keys/operator.pem --since cp.txt --proof-out cp.proof -o cp2.txt
      stonetrail checkpoint out/demo.ledger --key out/keys/operator.pem --witness-policy witnesses.txt
    """
    if (since_file is None) != (proof_out is None):
        raise click.UsageError("--since and --proof-out go together")
    if is_url(ledger_file) and out is None:
        raise click.UsageError("a database ledger has no folder to publish checkpoint.txt in: use -o FILE or -o -")
    file_out = None if out == Path("-") else out
    for target in (file_out, proof_out):
        if target is not None:
            check_new_file(target)  # never overwritten (old checkpoints are evidence)
    if file_out is not None and proof_out is not None and file_out.resolve() == proof_out.resolve():
        raise click.UsageError("-o and --proof-out name the same file")
    key = load_key(key_file)
    trust = _load_trust(trust_file) if trust_file is not None else None
    since = _read_checkpoint(since_file, "--since checkpoint") if since_file is not None else None
    with progress("records") as bar:
        note = checkpoint_file(ledger_file, key, name, trust=trust, progress=bar)
    signed = read_unverified_checkpoint(note)
    if name is not None and name != signed.origin:  # ADR 0037: no verifier would accept it
        raise click.UsageError(f"--name {name}: a checkpoint is signed under its ledger's origin, {signed.origin}; "
                               "verifiers refuse one signed under another name (docs/adr/0037): drop --name")
    if signed.tree_size == 0:  # a review: signed without a word
        click.echo(f"stonetrail: warning: {ledger_file} holds no record yet: this checkpoint is of the empty log (tree "
                   "size 0) and commits to nothing; sign one again after appending records", err=True)
    if out is None and trust is None:
        check_signer(ledger_file, note)  # before witnesses cosign a checkpoint that would not be published
    policy = _witness_policy(policy_file, trust)
    gathered = None if policy is None else _witness.gather_for(ledger_file, note, policy, witness_timeout)
    note = note if gathered is None else gathered.note
    proof = None if since is None else consistency_proof_for(ledger_file, since, note, trust=trust)
    extra = [] if proof is None or proof_out is None else [(proof_out, format_consistency_proof(proof))]
    to_stdout = out is not None and file_out is None
    done = publish_checkpoint(ledger_file, note, also=[(p, t.encode()) for p, t in extra],
                              pinned=trust is not None) if out is None else None
    if done is not None and done.kept is not None and not has_cosignature(note) \
            and has_cosignature(done.kept.read_bytes()):  # a new user's review: replaced without a word
        click.echo(f"stonetrail: warning: {done.path} had witness cosignatures and this checkpoint has none "
                   f"(the old one is kept as {done.kept}): clients whose trust file requires witnesses refuse "
                   "bundles under it, and 'publish' refuses it; gather cosignatures with --witness-policy", err=True)
    if out is not None:
        _write_new(*([] if file_out is None else [(file_out, note)]), *extra)  # all or nothing
    signer = None if trust is not None else \
        note_verifier_key(signed.origin, key.public_key)
    if as_json:
        _print_json({"tree_size": signed.tree_size, "note": note,
                     "file": str(done.path) if done else str(file_out) if file_out else None,
                     "kept": str(done.kept) if done and done.kept else None, "unchanged": bool(done and done.unchanged),
                     "consistency_proof": str(proof_out) if extra else None,
                     "pin": f"operator {signer.text()}" if signer else None,
                     **({"witnesses": [a.to_json() for a in gathered.answers]} if gathered else {})})
        return
    if done is not None:
        _print_published(done)
    else:
        click.echo(note if to_stdout else f"wrote {file_out}", nl=not to_stdout)
    if proof is not None and proof_out is not None:
        click.echo(f"wrote {proof_out} (consistency proof {proof.old_size} -> {proof.new_size})", err=to_stdout)
    if signer is not None:
        click.echo(f"not checked against a trust file: verifiers accept it only if theirs pins 'operator "
                   f"{signer.text()}'", err=True)


def _witness_policy(policy_file: Path | None, trust: Trust | None) -> WitnessPolicy | None:
    """The witness policy a new checkpoint must meet: --witness-policy, else the trust file's witness lines (the
    ones its verifiers will apply); None when neither names one, or it requires no cosignature."""
    if policy_file is not None and trust is not None and trust.witnesses is not None:
        raise TrustFileError("the trust file has witness lines already: give the witness policy once",
                             code="trust.policy_twice")
    if policy_file is not None:
        with _about(policy_file, f"witness policy {policy_file}"):
            policy: WitnessPolicy | None = WitnessPolicy.parse(_read_text(policy_file, "witness policy"))
    else:
        policy = trust.witnesses if trust is not None else None
    return policy if policy is not None and policy.required else None


def _print_published(done: Published) -> None:
    if done.cosigned:
        click.echo(f"{done.path} is already this checkpoint (tree size {done.tree_size}) with witness cosignatures "
                   "this one lacks: kept as it is, nothing written")
        return
    if done.unchanged:
        click.echo(f"{done.path} is already this checkpoint (tree size {done.tree_size}); nothing written")
        return
    kept = f"; the previous one is kept as {done.kept}" if done.kept else ""
    click.echo(f"wrote {done.path} (tree size {done.tree_size}){kept}")


# The name stonetrail_cli.main registers (see stonetrail_cli.consistency).
CHECKPOINT_COMMAND: click.Command = checkpoint
