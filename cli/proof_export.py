"""``stonetrail proof export``: write one item's proof bundle from a ledger (:func:`ledger.export.export_bundle`),
registered on the ``proof`` group by :mod:`stonetrail_cli.proof` and imported only when it runs: verifying a
bundle offline never loads the ledger's reader, index or exporter."""

from __future__ import annotations

import shlex
from pathlib import Path

import click

from ledger.bundle import summarize_bundle
from ledger.checkpoint import read_unverified_checkpoint
from ledger.errors import InputError
from ledger.export import SelfCheckError, StaleCheckpointError, export_bundle, export_bundle_as_of
from ledger.pg.db import is_url
from ledger.publish import published_checkpoint, published_of
from ledger.trust import Trust

from ._common import (
    _EXISTING,
    _LEDGER,
    LedgerFirst,
    _about,
    _errors,
    _plural,
    _print_json,
    _write_new,
    check_new_file,
    refuse_stdout,
)
from ._inputs import _load_trust, _read_checkpoint
from ._output import progress

__all__ = ["EXPORT_COMMAND", "SUFFIX"]

SUFFIX = ".stproof"


@click.command("export", cls=LedgerFirst, short_help="Write the proof bundle of one item.")
@click.argument("ledger_file", metavar="LEDGER", type=_LEDGER)
@click.argument("item")
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path),
              help=f"Where to write the bundle (default: ./ITEM{SUFFIX}; never overwritten).")
@click.option("--checkpoint", "checkpoint_path", type=_EXISTING,
              help="The signed checkpoint to prove against (default: checkpoint.txt next to LEDGER, the newest one "
                   "'stonetrail checkpoint' published); refused if LEDGER has later records of the item.")
@click.option("--as-of", "as_of_path", type=_EXISTING,
              help="Prove against this older checkpoint even if LEDGER has later records of the item (a bundle "
                   "current only as of that checkpoint; the records it leaves out are printed).")
@click.option("--trust", "trust_file", type=_EXISTING,
              help="Also refuse a checkpoint that no operator key pinned in this trust file signed.")
@click.option("--json", "as_json", is_flag=True, help="Print the file written and what it holds as JSON.")
@_errors
def export(ledger_file: Path | str, item: str, out: Path | None, checkpoint_path: Path | None, as_of_path: Path | None,
           trust_file: Path | None, as_json: bool) -> None:
    """Write ITEM's proof bundle from LEDGER: its records and its ancestors' back to the mine, the registry, and
    the signed checkpoint they are proven against (which must be of LEDGER: same origin and root, and registry
    and item-heads lines that are the file's; sign one with 'stonetrail checkpoint').

    The checkpoint must cover LEDGER's latest record of ITEM and of everything in its provenance, so that the
    bundle shows the stone as it is now (sold, stolen, set): a stale one is refused (exit 1, checkpoint.stale)
    with the command that signs a fresh one. --as-of exports under an older checkpoint on purpose; the bundle
    is then current only as of that checkpoint's tree size, which 'proof verify' prints. --json prints {"file",
    "item", "records", "bytes", "tree_size", "later": the positions of the later records an --as-of bundle
    leaves out}.

    LEDGER is a ledger file or a postgresql:// URL (docs/format.md §8.4; a database has no checkpoint.txt
    beside it: name one with --checkpoint).

    \b
    Examples:
      stonetrail proof export out/demo.ledger PARCEL-DXB-01-S1 -o parcel.stproof
      stonetrail proof export out/demo.ledger P-LESEDI-01 -o lesedi-then.stproof --as-of out/checkpoint.txt
    """
    if checkpoint_path is not None and as_of_path is not None:
        raise click.UsageError("--checkpoint and --as-of exclude each other (--as-of also names the checkpoint)")
    refuse_stdout(out, "a bundle is a binary file, never printed")
    out = out or Path.cwd() / f"{item}{SUFFIX}"
    check_new_file(out)  # fail before the export's work; a bundle is never overwritten
    given = as_of_path or checkpoint_path
    if given is None and is_url(ledger_file):
        raise click.UsageError("a database ledger has no checkpoint.txt beside it: name the checkpoint with "
                               "--checkpoint")
    note = _read_checkpoint(given) if given is not None else _published_checkpoint(ledger_file)
    trust = _load_trust(trust_file) if trust_file else None
    try:
        with _about(ledger_file, codes=("store.",)):  # damage in the ledger: its file named
            if as_of_path is None:
                data = _export_current(ledger_file, item, note, trust, given)
            else:
                with progress("records") as bar:
                    exported = export_bundle_as_of(ledger_file, item, note, trust=trust, progress=bar)
                data = exported.bundle
    except SelfCheckError as exc:  # nothing is written; say which command audits what the bundle was built from
        raise SelfCheckError(item, exc.findings, f"run 'stonetrail verify {shlex.quote(str(ledger_file))} --trust "
                                                 "TRUST' (the bundle was built from the ledger's records, not from its "
                                                 "index)") from None
    _write_new((out, data))
    summary = summarize_bundle(data)
    size = summary.checkpoint.tree_size if summary.checkpoint else "?"
    if as_json:
        _print_json({"file": str(out), "item": item, "records": len(summary.lines), "bytes": len(data),
                     "tree_size": size, "later": list(exported.later) if as_of_path is not None else []})
        return
    click.echo(f"wrote {out} ({_plural(len(summary.lines), 'record')}, {len(data)} bytes; proven against the "
               f"checkpoint of tree size {size})")
    if as_of_path is not None and exported.later:
        click.echo(f"warning: as of tree size {exported.tree_size} only: {ledger_file} has "
                   f"{_plural(len(exported.later), 'later record')} of {item}'s provenance "
                   f"({_positions(exported.later)}) that this bundle leaves out; its verifier sees only the "
                   "checkpoint", err=True)


def _positions(positions: tuple[int, ...]) -> str:
    """"record 7" or "records 7, 9, 12": leaf indices as printed (the first few)."""
    return f"record{'s' if len(positions) > 1 else ''} {_some([str(p) for p in positions])}"


def _published_checkpoint(ledger_file: Path | str) -> str:
    """The text of the checkpoint published beside ``ledger_file`` (its ``checkpoint.txt``)."""
    path = published_checkpoint(ledger_file)
    if not path.exists():
        raise InputError(f"no checkpoint next to {ledger_file} ({path}): sign one with 'stonetrail checkpoint "
                         f"{shlex.quote(str(ledger_file))} --key OPERATOR.pem --trust TRUST', or pass --checkpoint",
                         code="checkpoint.missing")
    return _read_checkpoint(path)


def _export_current(ledger_file: Path | str, item: str, note: str, trust: Trust | None, given: Path | None) -> bytes:
    """:func:`export_bundle` under ``note``; a stale checkpoint's refusal says how to sign a fresh one."""
    try:
        with progress("records") as bar:
            return export_bundle(ledger_file, item, note, trust=trust, progress=bar)
    except StaleCheckpointError as exc:
        done, published = exc.done, published_checkpoint(ledger_file)
        where = given or published
        sign = f"'stonetrail checkpoint {shlex.quote(str(ledger_file))} --key OPERATOR.pem --trust TRUST" + (
            " -o NEW.txt'" if is_url(ledger_file) else f"' (it replaces {published})")
        origin = read_unverified_checkpoint(note).origin
        newer = None if given is None or is_url(ledger_file) else published_of(ledger_file, origin)
        if newer is not None and newer.tree_size > done.tree_size:  # the published one may cover it already
            sign = f"{sign}, or leave out --checkpoint to export under {published} (tree size {newer.tree_size})"
        raise StaleCheckpointError(item, done, (
            f"{where} (tree size {done.tree_size}) is not the latest checkpoint for {item}: {ledger_file} has "
            f"{_plural(len(done.later), 'later record')} of its provenance ({_positions(done.later)}); sign a fresh "
            f"one with {sign} and export again, or export as of this one on purpose with '--as-of {where}'"
        ) if done.bundle else (
            f"{where} (tree size {done.tree_size}) predates {item}: {ledger_file} creates it at record "
            f"{done.later[0]}; sign a fresh checkpoint with {sign} and export again")) from None


def _some(names: list[str], most: int = 6) -> str:
    """Up to ``most`` names, then how many more."""
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


# The name stonetrail_cli.proof registers.
EXPORT_COMMAND: click.Command = export
