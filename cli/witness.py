"""``stonetrail witness``: run a C2SP tlog-witness (``serve``) and make its key (``keygen``); and the gathering
of cosignatures that ``stonetrail checkpoint --witness-policy`` does before it publishes (:func:`gather_for`).

Registered on the group by :mod:`stonetrail_cli.main`. No protocol or rules here: :mod:`ledger.witness` decides.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
from pathlib import Path

import click

from ledger.checkpoint import read_unverified_checkpoint
from ledger.cosignature import cosigner_key
from ledger.errors import InputError, StorageError
from ledger.keys import PrivateKey
from ledger.pg.db import is_url
from ledger.publish import published_checkpoint
from ledger.witness import Gathered, KnownLogs, WitnessServer, WitnessState, gather, ledger_proofs
from ledger.witness_policy import WitnessPolicy
from ledger.witnessed import WitnessError

from ._common import _EXISTING, _about, _errors, _save_key
from ._inputs import _read_bytes, load_key
from ._output import JSON_OUTPUT

_LISTEN_HELP = "HOST:PORT to listen on ([::1]:PORT for IPv6); port 0 picks a free port (printed)."


@click.group(short_help="Run a witness that cosigns checkpoints (C2SP tlog-witness).")
def witness() -> None:
    """A witness: it cosigns a log's checkpoint only if it is consistent with every checkpoint of that log it
    cosigned before (C2SP tlog-witness), so a log cannot show two histories to witnessed verifiers.

    \b
    Examples:
      stonetrail witness keygen --name witness.example/w1 -o w1.pem
      stonetrail witness serve --key w1.pem --name witness.example/w1 --logs logs.txt --state w1-state \\
          --listen 127.0.0.1:7380
    """


@witness.command("keygen", short_help="Generate a witness's Ed25519 cosigner key.")
@click.option("--name", required=True, help="The witness's name (what its cosignature lines carry).")
@click.option("-o", "--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Where to write the private key (PEM, mode 0600; never overwritten).")
@click.option("--json", "as_json", is_flag=True, help="Print the key file and the cosigner key as JSON.")
@_errors
def keygen(name: str, out: Path, as_json: bool) -> None:
    """Generate a witness key; print its cosigner verifier key, name+key ID+base64(0x04 || key) (C2SP
    tlog-cosignature), for 'witness NAME KEY URL' lines of a witness policy (C2SP tlog-policy).

    \b
    Example:
      stonetrail witness keygen --name witness.example/w1 -o w1.pem
    """
    key = PrivateKey.generate()
    _save_key(out, key, cosigner_key(name, key.public_key).text(), as_json,
              "the witness's cosigner key, for 'witness <name> <key> <url>' lines of a witness policy:")


@witness.command("serve", short_help="Serve a witness over HTTP.")
@click.option("--key", "key_file", required=True, type=_EXISTING, help="The witness's private key (witness keygen).")
@click.option("--name", required=True, help="The witness's name: the one its key was made for.")
@click.option("--logs", "logs_file", required=True, type=_EXISTING,
              help="The logs it witnesses: 'log <vkey>' lines (the operator key a trust file pins); the origin is "
                   "the key's name.")
@click.option("--state", "state_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Its state directory (made if missing): witness.db, and evidence/ of split views and rollbacks.")
@click.option("--listen", default="127.0.0.1:0", show_default=True, help=_LISTEN_HELP)
@click.option("--prefix", default="", callback=lambda _c, _p, v: _url_path(v),
              help="Submission prefix, a URL path such as /w1: POST PREFIX/add-checkpoint (default: none).")
@click.option("--monitoring-prefix", callback=lambda _c, _p, v: _url_path(v),
              help="GET PREFIX/<sha256 hex of origin>/checkpoint (default: --prefix).")
@click.option("--timeout", default=10.0, show_default=True, type=click.FloatRange(0.1, 600),
              help="Seconds a connection may stay silent before it is closed.")
@click.option("--check", is_flag=True, help="Check the key, logs and state (made if missing, as when serving), bind "
                                           "the address, then exit.")
@click.option("--quiet", is_flag=True, help="Do not log each request on stderr.")
@click.option("--json", "as_json", is_flag=True, help="Print what is served (address, key, logs) as JSON.")
@_errors
def serve(key_file: Path, name: str, logs_file: Path, state_dir: Path, listen: str, prefix: str,
          monitoring_prefix: str | None, timeout: float, check: bool, quiet: bool, as_json: bool) -> None:
    """Cosign the checkpoints of the logs in --logs that are consistent with what it cosigned before, and keep
    evidence of those that are not (docs/format.md §7e).

    POST PREFIX/add-checkpoint answers per C2SP tlog-witness: 200 with a tlog-cosignature/v1 line, 400, 403,
    404, 409 (body: the size it holds, text/x.tlog.size) or 422; the new state is on disk before the answer.
    GET PREFIX/<sha256 hex of origin>/checkpoint gives the last checkpoint cosigned, with its cosignature.
    A validly signed checkpoint of a size it cosigned with another root is refused and kept as split-view
    evidence in STATE/evidence/, one of a smaller size as rollback evidence: 'stonetrail evidence verify' checks
    both offline. Runs until stopped with Ctrl-C or SIGTERM, then says so on stderr and exits 0 (a stop asked
    for); prints the address first (with --json: one JSON line {"url", "port", "verifier_key", "logs", "state"}).

    \b
    Examples:
      stonetrail witness serve --key w1.pem --name witness.example/w1 --logs logs.txt --state w1-state
      stonetrail witness serve --key w1.pem --name witness.example/w1 --logs logs.txt --state w1-state \\
          --listen 0.0.0.0:7380 --check
    """
    host, port = _address(listen)
    key = load_key(key_file)
    with _about(logs_file, f"logs file {logs_file}"):
        logs = KnownLogs.parse(_read_bytes(logs_file, "logs file"))
    with _about(state_dir):
        state = WitnessState(state_dir, name=name, key=key, logs=logs)
    try:
        server = WitnessServer(state, host=host, port=port, prefix=prefix, monitoring_prefix=monitoring_prefix,
                               timeout=timeout, log=None if quiet else _log)
    except OSError as exc:  # the address in use, or not this machine's: an I/O error (exit 3), not a usage one
        state.close()
        raise StorageError(f"cannot listen on {listen}: {exc.strerror or exc}", code="witness.listen") from exc
    info = {"url": server.url, "port": server.port, "verifier_key": state.vkey, "logs": sorted(logs.keys),
            "state": str(state_dir)}
    how = _stop_on_sigterm(server)  # before the address is printed: from then on Ctrl-C or SIGTERM is a stop
    try:
        if as_json:
            click.echo(json.dumps(info))
        else:
            click.echo(f"witness {state.vkey}\n  logs: {', '.join(sorted(logs.keys))}\n  state: {state_dir}\n"
                       f"  {'would listen' if check else 'listening'} on {server.url} (POST {server.prefix}/"
                       f"add-checkpoint, GET {server.monitoring_prefix}/<sha256 of origin>/checkpoint)")
        sys.stdout.flush()
        if check:
            return
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.state.close()
    if not check:  # a new user's review: it ended without a word
        _log(f"witness stopped ({how[0]}); its state is kept in {state_dir}")


def _stop_on_sigterm(server: WitnessServer) -> list[str]:
    """Make SIGTERM stop ``server`` as Ctrl-C does (exit 0: a stop asked for), in the main thread; returns a
    one-item list naming what stopped it ("Ctrl-C" until SIGTERM comes)."""
    how = ["Ctrl-C"]

    def terminated(*_: object) -> None:
        how[0] = "SIGTERM"
        threading.Thread(target=server.shutdown, daemon=True).start()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, terminated)
    return how


def _url_path(prefix: str | None) -> str | None:
    """A --prefix as given, if it is a URL path (empty, or starting with '/'); checked before any state is made."""
    if prefix and not prefix.startswith("/"):
        raise click.BadParameter(f"a URL path starts with '/': got {prefix[:80]!r} (try '/{prefix[:80]}')")
    return prefix


def _log(line: str) -> None:
    click.echo(line, err=True)


def _address(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port.isdigit() or not port.isascii() or int(port) > 65535:
        raise click.UsageError(f"--listen wants HOST:PORT (e.g. 127.0.0.1:7380, [::1]:0), got {listen!r}")
    return host, int(port)


# --- stonetrail checkpoint --witness-policy ----------------------------------------------------------------------

def gather_for(ledger_file: Path | str, note: str, policy: WitnessPolicy, timeout: float) -> Gathered:
    """Send ``note`` (just signed, of ``ledger_file``) to the witnesses of the tlog-policy ``policy`` and
    gather their cosignatures, each witness first asked from the size of the checkpoint published beside the
    ledger (0 if none); print each answer (not with --json). Raises WitnessError (``witness.quorum``, exit 1)
    when the quorum is not met: the caller then publishes nothing; with --json the error carries each answer
    (``witnesses``)."""
    gathered = gather(note, policy, ledger_proofs(ledger_file, note), old_sizes=_published_size(ledger_file, note),
                      timeout=timeout)
    if not JSON_OUTPUT.get():
        for answer in gathered.answers:
            click.echo(f"witness {answer.describe()}", err=not gathered.met)
    if not gathered.met:
        said = "; ".join(a.describe() for a in gathered.answers)
        error = WitnessError(f"the witness policy's quorum ({policy.describe()}) is not met: nothing published "
                             f"({said})", code="witness.quorum")
        error.details = {"witnesses": [a.to_json() for a in gathered.answers]}  # type: ignore[attr-defined]
        raise error
    return gathered


def _published_size(ledger_file: Path | str, note: str) -> int:
    """The tree size of the checkpoint published beside a ledger file, if it is of the same origin and not
    larger than ``note``'s; else 0."""
    if is_url(ledger_file):
        return 0
    path = published_checkpoint(ledger_file)
    try:
        old = read_unverified_checkpoint(path.read_bytes())
    except (OSError, InputError):
        return 0
    new = read_unverified_checkpoint(note)
    return old.tree_size if old.origin == new.origin and old.tree_size <= new.tree_size else 0


# Typed name for stonetrail_cli.main to register.
WITNESS_GROUP: click.Group = witness
