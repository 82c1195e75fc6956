"""``stonetrail keygen``: generate an Ed25519 key pair and print its note verifier key.

Registered on the group by :mod:`stonetrail_cli.main`.
"""

from __future__ import annotations

from pathlib import Path

import click

from ledger import note_verifier_key
from ledger.keys import PrivateKey
from ledger.storage import scan

from ._common import _EXISTING, _errors, _save_key


@click.command("keygen", short_help="Generate an Ed25519 key pair.")
@click.option("--name", help="Key name: for an operator key, the origin of the ledger it signs checkpoints for.")
@click.option("--ledger", "ledger_file", type=_EXISTING,
              help="Name the key after this ledger's origin (what its checkpoints are signed as).")
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the private key (PEM, mode 0600; never overwritten).")
@click.option("--json", "as_json", is_flag=True, help="Print the key file and the verifier key as JSON.")
@_errors
def keygen(name: str | None, ledger_file: Path | None, out: Path, as_json: bool) -> None:
    """Generate an Ed25519 key pair; print the public half as a note verifier key (name+key ID+key).

    A verifier pins the printed key in a trust file, after a role word: `operator` for the key that signs
    checkpoints, `authority` for the key that enrolls parties. The name is part of the pinned key: checkpoints
    are signed under the ledger's origin, so an operator key must be named after it (--ledger names it so).

    A party's key (a producer, trader, cutter, lab or customs office: it signs custody records) is made the same
    way, named after the party. No trust file pins it: the authority enrols the party with its raw public key in
    a registry record (in Python, keyfile.load_private_key(FILE).public_key.raw: docs/embedding.md).

    \b
    Examples:
      stonetrail keygen --ledger out/demo.ledger -o operator.pem
      stonetrail keygen --name example.com/authority -o authority.pem
      stonetrail keygen --name trader-antwerp -o trader-antwerp.pem
    """
    if name is not None and ledger_file is not None:
        raise click.UsageError("give --name or --ledger, not both (--ledger names the key after its origin)")
    if name is None and ledger_file is None:
        raise click.UsageError("give --name or --ledger (an operator key is named after its ledger's origin)")
    key = PrivateKey.generate()
    vkey = note_verifier_key(scan(ledger_file).origin if ledger_file is not None else str(name), key.public_key)
    pin = "pin the public key in a trust file as 'operator <key>'"
    use = (f"{pin} (this ledger's checkpoints are signed with it):" if ledger_file is not None else
           f"{pin} or 'authority <key>' (a party's key is enrolled by the authority instead: stonetrail keygen "
           "--help):")
    _save_key(out, key, vkey.text(), as_json, use)


# The name stonetrail_cli.main registers (see stonetrail_cli.consistency).
KEYGEN_COMMAND: click.Command = keygen
