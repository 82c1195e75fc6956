"""The witness's HTTP server (C2SP tlog-witness): ``POST <prefix>/add-checkpoint`` and
``GET <monitoring prefix>/<origin hash>/checkpoint``, on the standard library's ThreadingHTTPServer.

Limits: a request body needs a Content-Length (411 without: no chunked bodies) of at most
:data:`~ledger.witness.protocol.MAX_BODY_BYTES` (413 over it); every socket read and write times out after
``timeout`` seconds (the connection is then closed); at most ``max_connections`` connections are served at once
(more are closed at once). Another method on ``add-checkpoint`` is 405; any other path 404. HTTP/1.1 keep-alive.
A failure of the state's database is 500 and cosigns nothing. The decisions are :mod:`ledger.witness.state`'s.
"""

from __future__ import annotations

import contextlib
import re
import socket
import sys
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final

from ..errors import InputError, StoneTrailError
from .protocol import MAX_BODY_BYTES, Answer
from .state import WitnessState

__all__ = ["DEFAULT_TIMEOUT", "WitnessServer"]

#: Seconds a connection may stay silent mid-request (or idle between keep-alive requests).
DEFAULT_TIMEOUT: Final = 10.0
_HASH_PATH: Final = re.compile("/([0-9a-f]{64})/checkpoint")


class WitnessServer(ThreadingHTTPServer):
    """Serve ``state`` on ``(host, port)`` (port 0: a free port, then in :attr:`port`). ``log``: called with one
    line per request (None: quiet). Use :meth:`serve_forever` (or :meth:`start` for a background thread) and
    :meth:`stop`."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128  # connections the kernel holds while all slots are busy (socketserver's default: 5)

    def __init__(self, state: WitnessState, *, host: str = "127.0.0.1", port: int = 0, prefix: str = "",
                 monitoring_prefix: str | None = None, timeout: float = DEFAULT_TIMEOUT, max_connections: int = 64,
                 log: Callable[[str], None] | None = None) -> None:
        for given in (prefix, monitoring_prefix or ""):
            if given and not given.startswith("/"):
                raise InputError(f"a URL path prefix starts with '/': got {given[:80]!r}", code="input.value")
        self.state, self.prefix, self.log = state, prefix.rstrip("/"), log
        self.monitoring_prefix = self.prefix if monitoring_prefix is None else monitoring_prefix.rstrip("/")
        self.timeout_s = timeout
        self._slots = threading.BoundedSemaphore(max_connections)
        self._thread: threading.Thread | None = None
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        super().__init__((host, port), _Handler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        """The submission prefix as a URL, e.g. ``http://127.0.0.1:8080``."""
        host = str(self.server_address[0])
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}{self.prefix}"

    def start(self) -> WitnessServer:
        """Serve in a background thread; return self."""
        self._thread = threading.Thread(target=self.serve_forever, name="witness", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving (a request being answered finishes) and close the socket and the state's connections."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=30)
        self.server_close()
        self.state.close()

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            self.shutdown_request(request)  # too many connections: close this one at once
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client gone mid-answer (cut at the timeout, reset, closed) is a line of the log, not a traceback;
        anything else is reported as :mod:`socketserver` does."""
        if isinstance(sys.exc_info()[1], ConnectionError | TimeoutError):
            if self.log is not None:
                self.log(f"{client_address[0]} connection lost: {type(sys.exc_info()[1]).__name__}")
            return
        super().handle_error(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()

    def __enter__(self) -> WitnessServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: WitnessServer

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.timeout_s)  # every read and write of this connection
        with contextlib.suppress(OSError):  # headers and body go out as written: no 40 ms Nagle/delayed-ACK stall
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle_one_request(self) -> None:
        """One request (or the wait for it on a kept-alive connection) within the timeout in all: a client that
        sends a byte at a time is cut off when it runs out, not only one that stops (per-read timeout)."""
        timer = threading.Timer(self.server.timeout_s, self._cut)
        timer.daemon = True
        timer.start()
        try:
            super().handle_one_request()
        finally:
            timer.cancel()

    def _cut(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def do_POST(self) -> None:
        if self.path != f"{self.server.prefix}/add-checkpoint":
            self._send(Answer.text(404, "not found"))
            return
        body = self._body()
        if body is None:
            return
        try:
            answer = self.server.state.add_checkpoint(body)
        except StoneTrailError as exc:
            answer = Answer.text(500, f"the witness failed: {exc} [{exc.code}]")
        self._send(answer)

    def do_GET(self) -> None:
        prefix = self.server.monitoring_prefix
        match = _HASH_PATH.fullmatch(self.path[len(prefix):]) if self.path.startswith(prefix) else None
        if self.path == f"{self.server.prefix}/add-checkpoint":
            self._send(Answer.text(405, "add-checkpoint takes POST"), allow=True)
            return
        origin = self.server.state.logs.by_hash().get(match.group(1)) if match else None
        try:
            latest = self.server.state.latest(origin) if origin is not None else None
        except StoneTrailError as exc:
            self._send(Answer.text(500, f"the witness failed: {exc} [{exc.code}]"))
            return
        if latest is None:
            self._send(Answer.text(404, "no checkpoint cosigned for this origin" if match else "not found"))
            return
        self._send(Answer(status=200, body=latest.note.encode("utf-8")))

    def _other(self) -> None:
        on_add = self.path == f"{self.server.prefix}/add-checkpoint"
        self._send(Answer.text(405, "add-checkpoint takes POST") if on_add else Answer.text(404, "not found"),
                   allow=on_add)

    do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _other

    def _body(self) -> bytes | None:
        """The request body, or None after answering 411 / 413 / 400 (the connection then closes)."""
        length = self.headers.get("Content-Length")
        if self.headers.get("Transfer-Encoding") is not None or length is None:
            self.close_connection = True
            self._send(Answer.text(411, "send the body with a Content-Length"))
            return None
        if not length.isdigit() or not length.isascii() or len(length) > 12:
            self.close_connection = True
            self._send(Answer.text(400, "bad Content-Length"))
            return None
        if int(length) > MAX_BODY_BYTES:
            self.close_connection = True
            self._send(Answer.text(413, f"a request body is at most {MAX_BODY_BYTES} bytes"))
            return None
        try:
            body = self.rfile.read(int(length))
        except OSError:  # the socket timed out, or the client went away
            body = b""
        if len(body) != int(length):
            self.close_connection = True
            return None
        return body

    def _send(self, answer: Answer, *, allow: bool = False) -> None:
        self.send_response(answer.status)
        self.send_header("Content-Type", answer.content_type)
        self.send_header("Content-Length", str(len(answer.body)))
        if allow:
            self.send_header("Allow", "POST")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer.body)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.log is not None:
            self.server.log(f"{self.address_string()} {format % args}")
