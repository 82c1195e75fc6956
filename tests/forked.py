"""A forked child process that talks with its parent through two pipes, line by line: no new interpreter, so
a child costs a fork, not an import of the library (tests/crashkit.py, tests/test_crash.py)."""

from __future__ import annotations

import os
import select
import signal
from collections.abc import Callable
from typing import NoReturn

TIMEOUT_S = 60.0  # a child silent for this long is stuck: the test fails rather than hangs


class Channel:
    """The child's end: ``say`` sends one line or several (one write, atomic up to PIPE_BUF bytes), ``hear``
    blocks for the parent's next line."""

    def __init__(self, out_fd: int, in_fd: int) -> None:
        self.out_fd, self._in_fd, self._buffer = out_fd, in_fd, b""

    def say(self, text: str) -> None:
        data = text.encode() if text.endswith("\n") else (text + "\n").encode()
        while data:
            data = data[os.write(self.out_fd, data):]

    def hear(self) -> str:
        while b"\n" not in self._buffer:
            chunk = os.read(self._in_fd, 4096)
            if not chunk:
                raise EOFError("the parent closed the channel")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()


class Child:
    """A forked process running ``body(channel)``; it ends with status 0 when ``body`` returns, 1 after saying
    ``E <error>`` when it raises. Never a new interpreter: the child shares the parent's imported modules."""

    def __init__(self, body: Callable[[Channel], object]) -> None:
        up_read, up_write = os.pipe()
        down_read, down_write = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(up_read)
            os.close(down_write)
            _run_child(body, Channel(up_write, down_read))
        os.close(up_write)
        os.close(down_read)
        self._read_fd, self._write_fd, self._buffer, self._seen, self._ended = up_read, down_write, b"", 0, False
        self.lines: list[str] = []  # every whole line heard from the child, in order
        self.status: int | None = None  # os.waitstatus_to_exitcode once it ended (negative: a signal)

    def tell(self, text: str) -> None:
        os.write(self._write_fd, (text + "\n").encode())

    def _read(self, timeout: float) -> bool:
        """Read once what the child wrote, waiting up to ``timeout`` s; False if nothing came in time or it
        ended. A line cut short by a kill is dropped. Raises AssertionError if the child is silent for
        :data:`TIMEOUT_S` (``timeout`` that long)."""
        if not select.select([self._read_fd], [], [], timeout)[0]:
            assert timeout < TIMEOUT_S, f"child {self.pid} said nothing for {TIMEOUT_S} s; it said {self.lines[-3:]}"
            return False
        chunk = os.read(self._read_fd, 65536)
        *whole, self._buffer = (self._buffer + chunk).split(b"\n")
        self.lines += [line.decode() for line in whole]
        self._ended = not chunk
        return bool(chunk)

    def poll(self) -> None:
        """Take in every line the child has written so far, without waiting."""
        while not self._ended and self._read(0):
            pass

    def next_line(self) -> str | None:
        """The child's next line not yet returned; None once it ended (closed its end of the pipe)."""
        while self._seen == len(self.lines):
            if self._ended or not self._read(TIMEOUT_S):
                return None
        self._seen += 1
        return self.lines[self._seen - 1]

    def wait_for(self, prefix: str) -> str | None:
        """Read lines up to the first one starting with ``prefix`` and return it; None if the child ended first."""
        while (line := self.next_line()) is not None:
            if line.startswith(prefix):
                return line
        return None

    def alive(self) -> bool:
        return self.status is None and os.waitpid(self.pid, os.WNOHANG) == (0, 0)

    def kill(self) -> None:
        """SIGKILL the child, unless it was reaped already."""
        if self.status is None:
            os.kill(self.pid, signal.SIGKILL)

    def join(self) -> int:
        """Read the rest of the child's lines, reap it and close the pipes; its exit code (-9: SIGKILL)."""
        while self.next_line() is not None:
            pass
        self.status = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        os.close(self._read_fd)
        os.close(self._write_fd)
        return self.status

    def errors(self) -> list[str]:
        return [line[2:] for line in self.lines if line.startswith("E ")]


def _run_child(body: Callable[[Channel], object], channel: Channel) -> NoReturn:
    status = 0
    try:
        body(channel)
    except BaseException as exc:  # everything goes back to the parent, which fails the test with it
        status = 1
        channel.say(f"E {type(exc).__name__}: {exc}".replace("\n", " ")[:3000])
    finally:
        os._exit(status)  # never back into the parent's code (pytest), no interpreter shutdown
