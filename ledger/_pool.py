"""The audit's own worker processes (``check_ledger(jobs=N)``): a process pool whose workers leave an interrupt
(Ctrl-C, SIGINT, sent to the whole process group by a terminal) to the process that started them, and which,
when that process stops on an error or an interrupt, drops its queued work and leaves no worker behind.

Why: with :class:`concurrent.futures.ProcessPoolExecutor` as it is, Ctrl-C reaches every worker too; each printed
a traceback, and the pool's shutdown could wait forever for workers that had died mid-task (a new-user review
hung 3 runs in 36; a second Ctrl-C left the workers running, re-parented to init).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import signal
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from .errors import StorageError

__all__ = ["worker_pool"]


def _leave_interrupts_to_the_parent() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a handler forked from the parent would outlive terminate()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # discards one that came while blocked (from the parent's mask)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _nothing() -> None:
    return None


@contextlib.contextmanager
def worker_pool(jobs: int) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``jobs`` worker processes that ignore SIGINT, started now with SIGINT blocked (a fork start
    method starts them all at the first task: none can be interrupted before it ignores the signal). Left
    normally, it is shut down after its work. Left by an exception (KeyboardInterrupt included), its queued work
    is cancelled, the chunks being worked on are let finish (a second or so), and then every child process started
    since the pool was made and still alive is terminated: a worker the pool was starting when the interrupt came
    is in none of its lists, idles for ever, and the interpreter's exit waited for it. A second interrupt while
    the chunks finish terminates the workers at once. The exception goes on, but a pool broken by a worker that
    died (killed, out of memory) is StorageError ``audit.worker_died``."""
    before = set(multiprocessing.active_children())
    pool = ProcessPoolExecutor(jobs, initializer=_leave_interrupts_to_the_parent)
    try:
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            pool.submit(_nothing)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        yield pool
    except BaseException as exc:
        try:
            pool.shutdown(wait=True, cancel_futures=True)
        finally:
            _terminate([p for p in multiprocessing.active_children() if p not in before])
        if isinstance(exc, BrokenProcessPool):
            raise StorageError(f"a worker process of the audit died ({exc}): was it killed, or out of memory? Run "
                               "again, with fewer --jobs if memory is short", code="audit.worker_died") from exc
        raise
    pool.shutdown(wait=True)


def _terminate(processes: list[multiprocessing.process.BaseProcess]) -> None:
    """Terminate ``processes`` and wait up to 5 s for each to end."""
    for process in processes:
        with contextlib.suppress(Exception):
            process.terminate()
    for process in processes:
        with contextlib.suppress(Exception):
            process.join(5)
