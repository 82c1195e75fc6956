"""``stonetrail verify --cluster ADDRESS``: an audit's chunks checked on a Dask cluster (issue 11 item 5).

The optional extra ``stonetrail[dask]`` (dask + distributed) is imported here only, when ``--cluster`` is given.
The chunks (:func:`ledger.chunks.check_chunk`) are submitted through ``distributed.Client(ADDRESS)
.get_executor()``, a :class:`concurrent.futures.Executor`, to :func:`ledger.check_ledger`, which applies the
rules in log order with the workers' facts, as with its own process pool. A worker reads the ledger by the path
this process was given, so that path must name the same file on every worker (a shared file system), and each
worker needs stonetrail installed (it runs :mod:`ledger.chunks` and :func:`_origin_of`); before any work each
worker is asked to open the ledger and name its origin.

Errors (docs/format.md §10; mapped to exit codes in :mod:`stonetrail_cli._common`): ``cluster.unavailable``
(dask is not installed; exit 2), ``cluster.address`` (not a scheduler address; exit 2), ``cluster.unreachable``
(no scheduler answers within :data:`CONNECT_SECONDS`, or it has no worker; exit 3), ``cluster.unreadable`` (a
worker cannot read the ledger at that path, or reads another ledger there; exit 3), ``cluster.failed`` (the
cluster lost a chunk's work: a worker died; exit 3).
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from concurrent.futures import Executor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ledger.errors import InputError, StorageError
from ledger.storage import FrameFile

from ._common import _about

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["CONNECT_SECONDS", "Workers", "on_cluster"]

#: How long to wait for the scheduler to answer, and then for its first worker.
CONNECT_SECONDS = 10


@dataclass(frozen=True, slots=True)
class Workers:
    """Who checks an audit's chunks, for :func:`ledger.check_ledger`: ``executor`` (None: its own process pool),
    ``jobs`` (chunks in flight: the pool's processes) and ``path`` (the ledger's path as the workers open it)."""

    executor: Executor | None
    jobs: int
    path: Path


@contextmanager
def on_cluster(address: str | None, ledger_file: Path, jobs: int | None) -> Iterator[Workers]:
    """The workers of an audit of ``ledger_file``.

    ``address`` None: this machine's process pool of ``jobs`` (default: the cores). Else the executor of a client
    of the Dask scheduler at ``address`` (``tcp://HOST:PORT``) with ``jobs`` chunks in flight (default: the
    cluster's worker threads) and the ledger's absolute path, after every worker has opened the ledger by that
    path; the client is closed on leaving.

    Raises InputError (``cluster.unavailable``, ``cluster.address``), StorageError (``cluster.unreachable``,
    ``cluster.unreadable``; ``cluster.failed`` for work the cluster lost inside the block).
    """
    if address is None:
        yield Workers(None, jobs or os.cpu_count() or 1, ledger_file)
        return
    client = _connect(address)
    try:
        path = Path(os.path.abspath(ledger_file))  # as the workers name it: not relative to their directory
        with _about(ledger_file):
            threads = _check_workers(client, address, path)
        with _lost_work(address):
            executor = client.get_executor(pure=False)  # type: ignore[no-untyped-call]  # (distributed's)
            yield Workers(executor, jobs or threads, path)  # pure=False: each chunk read anew, never a cached one
    finally:
        client.close(timeout=CONNECT_SECONDS)  # type: ignore[no-untyped-call]


def _connect(address: str) -> Client:
    """A client of the scheduler at ``address``; raises as :func:`on_cluster`."""
    try:
        from distributed import Client  # the optional extra: imported only for --cluster
    except ImportError:
        raise InputError("--cluster needs dask, which is not installed: pip install 'stonetrail[dask]'",
                         code="cluster.unavailable") from None
    failure: InputError | StorageError
    try:
        return Client(address, timeout=CONNECT_SECONDS, set_as_default=False)  # type: ignore[no-untyped-call]
    except ValueError as exc:
        failure = InputError(f"--cluster {address}: not a Dask scheduler address ({exc}); want tcp://HOST:PORT",
                             code="cluster.address")
    except OSError as exc:
        failure = StorageError(f"no Dask scheduler answers at {address} within {CONNECT_SECONDS} s ({exc})",
                               code="cluster.unreachable")
    gc.collect()  # the half-made client closes now, while its event loop runs, not noisily at exit
    raise failure


def _check_workers(client: Client, address: str, path: Path) -> int:
    """The cluster's worker threads, after each worker has opened the ledger at ``path`` and found this ledger
    there. Raises StorageError (``cluster.unreachable``: no worker; ``cluster.unreadable``), and as FrameFile for
    the ledger here."""
    try:
        client.wait_for_workers(1, timeout=CONNECT_SECONDS)
    except TimeoutError:
        raise StorageError(f"the Dask scheduler at {address} has no worker (waited {CONNECT_SECONDS} s)",
                           code="cluster.unreachable") from None
    with FrameFile(path) as file:
        origin = file.origin
    for worker, seen in client.run(_origin_of, str(path), on_error="return").items():
        if isinstance(seen, BaseException) or seen != origin:
            what = (f"cannot read the ledger ({seen})" if isinstance(seen, BaseException)
                    else f"finds ledger {seen!r} there")
            raise StorageError(f"worker {worker} {what}: with --cluster, the ledger ({path}) must be at a path every "
                               "worker shares", code="cluster.unreadable")
    return max(1, sum(client.nthreads().values()))  # type: ignore[no-untyped-call]


def _origin_of(path: str) -> str:
    """The origin of the ledger at ``path`` as a worker reads it (run on each worker). Raises as FrameFile."""
    with FrameFile(path) as file:
        return file.origin


@contextmanager
def _lost_work(address: str) -> Iterator[None]:
    """Turn the cluster's loss of a chunk (a worker that died running it) into ``cluster.failed``."""
    from distributed import KilledWorker

    try:
        yield
    except KilledWorker as exc:
        raise StorageError(f"the Dask cluster at {address} lost the audit's work: {exc}", code="cluster.failed") \
            from None
