"""``stonetrail publish`` (a ledger as a C2SP tlog-tiles directory) and ``stonetrail proof fetch`` (one item's
bundle from such a directory over HTTP): one library call each, :func:`ledger.published.publish_log` and
:func:`ledger.published.fetch_bundle`. Registered by :mod:`stonetrail_cli.main` (``publish``) and on the
``proof`` group (``fetch``).
"""

from __future__ import annotations

import re
from pathlib import Path

import click

from ledger.bundle import summarize_bundle
from ledger.published import fetch_bundle, publish_log

from ._common import (
    _EXISTING,
    _PUBLISHED_LEDGER,
    MAX_AGE,
    WITNESS_POLICY,
    _errors,
    _max_age,
    _plural,
    _print_json,
    _write_new,
    check_new_file,
    refuse_stdout,
)
from ._inputs import _load_trust, _read_checkpoint
from ._output import progress
from .proof_export import SUFFIX, _published_checkpoint

__all__ = ["FETCH_COMMAND", "PUBLISH_COMMAND"]


@click.command("publish", short_help="Publish a ledger as a static C2SP tlog-tiles directory.")
@click.argument("ledger_file", metavar="LEDGER", type=_PUBLISHED_LEDGER)
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.option("--checkpoint", "checkpoint_path", type=_EXISTING,
              help="The signed checkpoint to publish (default: checkpoint.txt next to LEDGER, the newest one "
                   "'stonetrail checkpoint' published), copied byte for byte, witness cosignatures included.")
@click.option("--trust", "trust_file", type=_EXISTING,
              help="Also refuse a checkpoint that no operator key pinned in this trust file signed, or that does "
                   "not meet its witness policy.")
@WITNESS_POLICY
@click.option("--allow-unwitnessed", is_flag=True,
              help="Publish a checkpoint without witness cosignatures over one that has some (refused otherwise: "
                   "clients that require witnesses would refuse the log).")
@click.option("--recheck", is_flag=True,
              help="Also compare every file DIR already holds with what LEDGER gives, not only the new ones (a pass "
                   "over the log's records; a file altered or damaged since is refused: publish.conflict).")
@click.option("--json", "as_json", is_flag=True, help="Print what was written as JSON.")
@_errors
def publish_command(ledger_file: Path, directory: Path, checkpoint_path: Path | None, trust_file: Path | None,
                    witness_policy: Path | None, allow_unwitnessed: bool, recheck: bool, as_json: bool) -> None:
    """Write (or bring up to date) DIR so that any static HTTP server serves LEDGER as a transparency log
    (C2SP tlog-tiles) from which anyone builds a stone's proof bundle ('stonetrail proof fetch').

    \b
    DIR holds (docs/format.md §8.5):
      checkpoint                     the signed checkpoint (written last, atomically)
      tile/<L>/<N>[.p/<W>]           the Merkle tree's hashes at its tree size
      tile/entries/<N>[.p/<W>]       the records, 256 to a bundle
      heads/<size>, identities/<size> the item-head and identity trees' leaves (§7c, §7d)
      item/<sha256 of id>/<count>    the positions of an item's records
      registry/<count>               the positions of the registry records

    The checkpoint must be LEDGER's and extend the one DIR holds (refused otherwise: publish.other_log,
    publish.rollback, publish.fork). Only new files are written; a file DIR already has must hold the same bytes
    (publish.conflict; files published before are compared too with --recheck); nothing but 'checkpoint' is ever
    replaced. Reads LEDGER's index: if it cannot answer, run 'stonetrail index LEDGER --trust FILE' first.
    --json prints {"directory", "tree_size", "previous", "written", "unchanged"}.

    Serve DIR with any static HTTP server, e.g. 'python3 -m http.server --bind 127.0.0.1 --directory site 8000'
    (--bind: on this machine only; drop it to serve others), and fetch a stone's bundle from it with
    'stonetrail proof fetch http://HOST:8000/ STONE --trust FILE'.

    \b
    Examples:
      stonetrail publish out/demo.ledger site
      stonetrail proof fetch site R-00001-A --trust out/trust.keys -o fetched.stproof
    """
    if witness_policy is not None and trust_file is None:
        raise click.UsageError("--witness-policy needs --trust (the operator keys the checkpoint is checked under)")
    note = _read_checkpoint(checkpoint_path) if checkpoint_path else _published_checkpoint(ledger_file)
    trust = _load_trust(trust_file, witness_policy) if trust_file else None
    with progress("files", "publishing") as bar:
        done = publish_log(ledger_file, directory, note, trust=trust, allow_unwitnessed=allow_unwitnessed,
                           recheck=recheck, progress=bar)
    if as_json:
        _print_json({"directory": str(done.directory), "tree_size": done.tree_size, "previous": done.previous,
                     "written": len(done.written), "unchanged": done.unchanged})
        return
    since = f" (was {done.previous})" if done.previous is not None else ""
    click.echo(f"published {directory} at tree size {done.tree_size}{since}: {_plural(len(done.written), 'new file')}"
               + ("; checkpoint unchanged" if done.unchanged else "; checkpoint written"))
    if done.ledger_size > done.tree_size:
        click.echo(f"note: {ledger_file} holds {done.ledger_size} records, the checkpoint covers {done.tree_size}: "
                   "sign a new one ('stonetrail checkpoint') and publish again to serve the rest", err=True)


@click.command("fetch", short_help="Build one item's proof bundle from a published log over HTTP.")
@click.argument("url")
@click.argument("item")
@click.option("--trust", "trust_file", required=True, type=_EXISTING,
              help="Trust file: the published checkpoint must be signed by one of its operator keys, and the "
                   "bundle must verify under it.")
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path),
              help=f"Where to write the bundle (default: ./ITEM{SUFFIX}; never overwritten).")
@click.option("--timeout", type=click.FloatRange(min=0.1), default=10.0, show_default=True,
              help="Seconds each request may take.")
@WITNESS_POLICY
@MAX_AGE
@click.option("--json", "as_json", is_flag=True, help="Print the file written and what it holds as JSON.")
@_errors
def fetch_command(url: str, item: str, trust_file: Path, out: Path | None, timeout: float,
                  witness_policy: Path | None, max_age: str | None, as_json: bool) -> None:
    """Build ITEM's proof bundle from the log 'stonetrail publish' wrote, served at URL (http, https or file):
    the checkpoint (signed by a pinned operator key), then only the tiles, records and trees the item needs,
    each verified against the checkpoint. The bundle is the one 'proof export' gives under the same checkpoint,
    byte for byte, and is verified ('proof verify') before it is written: one that fails is never written.
    With a witness policy (in the trust file or --witness-policy), the published checkpoint must carry
    cosignatures meeting its quorum (witness.quorum), and --max-age bounds how long ago it was witnessed.

    Exit 1 for data that is not what the checkpoint commits to (fetch.tile_mismatch, fetch.entry_mismatch,
    fetch.leaves_mismatch, fetch.positions_mismatch, fetch.registry_mismatch, proof.*) or a bundle that fails,
    2 for an unknown item (item.unknown), 3 when the server cannot be read (fetch.unavailable, fetch.too_large,
    fetch.redirect: a redirect to another host). --json prints {"file", "item", "records", "bytes",
    "tree_size"}.

    URL is the published directory's URL (http://, https://, file://) or a local directory. A server started
    with 'python3 -m http.server --bind 127.0.0.1 --directory site 8000' is read as http://HOST:8000/.

    \b
    Examples:
      stonetrail publish out/demo.ledger site
      stonetrail proof fetch site R-00001-A --trust out/trust.keys -o fetched.stproof
      stonetrail proof verify fetched.stproof --trust out/trust.keys
    """
    if "://" not in url:  # a local directory: read it as a file:// URL
        local = Path(url)
        if local.is_file():
            raise click.UsageError(f"{url} is a file, not a published directory (to build a bundle from a ledger "
                                   "file, use 'stonetrail proof export')")
        if not local.exists() and re.fullmatch(r"[A-Za-z0-9.-]+:[0-9]{1,5}(/.*)?", url):
            raise click.UsageError(f"no directory {url}: did you mean http://{url}?")
        url = local.resolve().as_uri() + "/"
    refuse_stdout(out, "a bundle is a binary file, never printed")
    out = out or Path.cwd() / f"{item}{SUFFIX}"
    check_new_file(out)
    trust = _load_trust(trust_file, witness_policy)
    data = fetch_bundle(url, item, trust, timeout=timeout, max_age=_max_age(max_age, trust))
    _write_new((out, data))
    summary = summarize_bundle(data)
    size = summary.checkpoint.tree_size if summary.checkpoint else "?"
    if as_json:
        _print_json({"file": str(out), "item": item, "records": len(summary.lines), "bytes": len(data),
                     "tree_size": size})
        return
    click.echo(f"wrote {out} ({_plural(len(summary.lines), 'record')}, {len(data)} bytes; verified, proven against "
               f"the checkpoint of tree size {size} at {url})")


PUBLISH_COMMAND = publish_command
FETCH_COMMAND = fetch_command
