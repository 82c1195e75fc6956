"""Bounded HTTP(S) and file:// GETs below a directory URL: what :mod:`ledger._remote_log` reads a published log
with (docs/format.md §8.5). Each answer within a timeout in all (headers included) and a size cap (after gzip,
which C2SP tlog-tiles lets a server send unasked); redirects only within the same scheme and host. Failures raise
:class:`FetchError` (``fetch.unavailable``, ``fetch.too_large``, ``fetch.redirect``); a URL of another scheme is an
InputError (``fetch.bad_url``).
"""

from __future__ import annotations

import contextlib
import threading
import time
import urllib.error
import urllib.request
import zlib
from typing import IO, Any
from urllib.parse import urljoin, urlsplit

from .errors import InputError, StorageError

__all__ = ["FetchError", "Fetcher"]

_CHUNK = 1 << 16  # bytes read at a time


class FetchError(StorageError):
    """A published log could not be read: ``fetch.unavailable`` (network, HTTP status, timeout),
    ``fetch.too_large`` (a file over its cap), ``fetch.redirect`` (a redirect to another host or scheme)."""

    default_code = "fetch.unavailable"


class _SameHost(urllib.request.HTTPRedirectHandler):
    """Follow a redirect only to the same scheme and host (and port)."""

    def redirect_request(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str,
                         headers: Any, newurl: str) -> urllib.request.Request | None:
        old, new = urlsplit(req.full_url), urlsplit(newurl)
        if (old.scheme, old.netloc) != (new.scheme, new.netloc):
            raise FetchError(f"{req.full_url} redirects to another host ({newurl}); refused", code="fetch.redirect")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class Fetcher:
    """GETs files below ``url`` (a directory URL: http, https or file), each within ``timeout`` seconds and
    at most its cap in bytes; ``read``: the paths fetched, in order."""

    def __init__(self, url: str, timeout: float) -> None:
        scheme = url.split("://", 1)[0].lower() if "://" in url else ""
        if scheme not in ("http", "https", "file"):
            raise InputError(f"not a published log's URL: {url!r:.120} (want http://, https:// or file://)",
                             code="fetch.bad_url")
        self.base = url if url.endswith("/") else url + "/"
        self.timeout = timeout
        self.read: list[str] = []
        self._opener = urllib.request.build_opener(_SameHost)

    def get(self, path: str, cap: int) -> bytes:
        """The bytes at ``path``, within ``timeout`` seconds in all, headers included: the request runs in a
        thread of its own, closed and given up at the deadline (a server that sends slowly, or never ends its
        headers, is cut off). Raises FetchError as the class docstring."""
        url = urljoin(self.base, path)
        self.read.append(path)
        outcome: list[bytes | BaseException] = []
        held: list[IO[bytes]] = []
        worker = threading.Thread(target=self._get, args=(url, cap, outcome, held), daemon=True)
        worker.start()
        worker.join(self.timeout)
        if worker.is_alive() or not outcome:
            for response in held:
                with contextlib.suppress(Exception):
                    response.close()  # the reader then fails at once; the thread ends
            raise FetchError(f"cannot read {url}: no whole answer within {self.timeout} s")
        if isinstance(outcome[0], BaseException):
            raise outcome[0]
        return outcome[0]

    def _get(self, url: str, cap: int, outcome: list[bytes | BaseException], held: list[IO[bytes]]) -> None:
        try:
            outcome.append(self._open(url, cap, held))
        except BaseException as exc:  # handed to the caller's thread
            outcome.append(exc)

    def _open(self, url: str, cap: int, held: list[IO[bytes]]) -> bytes:
        try:
            with self._opener.open(urllib.request.Request(url, headers={"Accept-Encoding": "identity"}),
                                   timeout=self.timeout) as response:
                held.append(response)
                declared = response.headers.get("Content-Length")
                gzipped = (response.headers.get("Content-Encoding") or "").strip().lower() == "gzip"
                if declared is not None and declared.isdigit() and int(declared) > cap and not gzipped:
                    raise _too_large(url, cap)
                data = self._read(response, url, cap, gzipped)
        except FetchError:
            raise
        except (urllib.error.URLError, OSError, ValueError, zlib.error) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise FetchError(f"cannot read {url}: {reason}") from exc
        if len(data) > cap:
            raise _too_large(url, cap)
        return data

    def _read(self, response: IO[bytes], url: str, cap: int, gzipped: bool) -> bytes:
        """The body, at most ``cap`` + 1 bytes (decompressed: C2SP tlog-tiles lets a log send ``Content-Encoding:
        gzip`` unasked), read within ``timeout`` seconds in all (a server that sends slowly is cut off)."""
        deadline = time.monotonic() + self.timeout
        inflate = zlib.decompressobj(wbits=31) if gzipped else None
        parts, size = [], 0
        while size <= cap:
            if time.monotonic() > deadline:
                raise FetchError(f"cannot read {url}: more than {self.timeout} s")
            read1 = getattr(response, "read1", None)  # what has arrived, not a whole chunk's wait
            raw = read1(_CHUNK) if read1 is not None else response.read(_CHUNK)
            chunk = raw if inflate is None else (inflate.decompress(raw, cap + 1 - size) if raw else inflate.flush())
            parts.append(chunk)
            size += len(chunk)
            if not raw:
                break
        return b"".join(parts)


def _too_large(url: str, cap: int) -> FetchError:
    return FetchError(f"{url} is over the {cap} bytes such a file may hold; refused", code="fetch.too_large")
