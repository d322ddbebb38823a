"""A ``requests`` session for untrusted printers: a total deadline per request, a capped reply
body, and redirects that never take the credentials to another host.

- Deadline: ``timeout`` is the whole request — connect, headers and body — not each read. A
  printer trickling one byte every 0.3 s passes any per-read timeout; here the shared watchdog
  shuts the request's socket down when its time is up, and the request fails as a timeout.
- Size: the body is streamed and counted; past ``limits.reply_bytes`` (or a Content-Length
  announcing more) the request fails before more is held. Compression is refused (asked for
  ``identity``): a few KiB of gzip can expand to gigabytes.
- Depth: JSON nested deeper than ``limits.json_depth`` fails before it is decoded.
- Redirects: followed only within the same scheme, host and port (the printer's own origin).
  A redirect elsewhere fails: the API key header and digest answers would go with it.
- ``close()`` cuts the requests in flight, so stopping the agent never waits on a printer.
"""

from __future__ import annotations

import socket
import threading
import time
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from agent.printers.limits import DEFAULT, WATCHDOG, LimitExceeded, Limits, check_json_depth, size_text
from common.text import one_line

MAX_REDIRECTS = 3
CHUNK = 64 * 1024
_current = threading.local()  # the request this thread is making (its deadline, its sockets)


class DeadlineExceeded(requests.Timeout):
    """The whole request took longer than its deadline (however the bytes came)."""


class CrossHostRedirect(LimitExceeded):
    """The printer redirected to another origin; not followed (credentials would go there)."""


class _Request:
    """One request in flight: the sockets it used, cut at once when its deadline passes."""

    def __init__(self) -> None:
        self.expired = False
        self.sockets: list[socket.socket] = []
        self._lock = threading.Lock()

    def add(self, sock) -> None:
        with self._lock:
            self.sockets.append(sock)
            expired = self.expired
        if expired:
            _cut(sock)

    def cut(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self.sockets)
        for sock in sockets:
            _cut(sock)


def _cut(sock) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)  # wakes the reader blocked in recv, in any thread
    except OSError:
        pass


class _Watched:
    """Mixed into urllib3's connections: the socket of every response joins its request."""

    def getresponse(self, *args, **kwargs):
        request = getattr(_current, "request", None)
        if request is not None and self.sock is not None:
            request.add(self.sock)
        return super().getresponse(*args, **kwargs)


class _WatchedHTTPConnection(_Watched, HTTPConnection):
    pass


class _WatchedHTTPSConnection(_Watched, HTTPSConnection):
    pass


class _WatchedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


class _WatchedAdapter(HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {"http": _WatchedHTTPPool, "https": _WatchedHTTPSPool}


class BoundedReply(requests.Response):
    """A reply whose body was read (within the bounds) before anyone asked for it."""

    def __init__(self, reply: requests.Response, body: bytes):
        super().__init__()
        for name in ("status_code", "headers", "url", "reason", "encoding", "history", "request", "elapsed",
                     "cookies"):
            setattr(self, name, getattr(reply, name))
        self.body = body

    @property
    def content(self) -> bytes:
        return self.body


class BoundedSession(requests.Session):
    def __init__(self, timeout: float, limits: Limits = DEFAULT):
        super().__init__()
        self.timeout, self.limits = timeout, limits
        self.headers["Accept-Encoding"] = "identity"
        adapter = _WatchedAdapter()
        self.mount("http://", adapter)
        self.mount("https://", adapter)
        self._inflight: set[_Request] = set()
        self._lock = threading.Lock()

    def request(self, method, url, **kwargs):
        request = _Request()
        token = WATCHDOG.arm(time.monotonic() + self.timeout, request.cut)
        with self._lock:
            self._inflight.add(request)
        _current.request = request
        try:
            return self._fetch(method, url, kwargs)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            if request.expired:
                raise DeadlineExceeded(f"no complete answer within {self.timeout:g} s") from None
            if isinstance(exc, requests.RequestException):
                raise
            raise requests.ConnectionError(f"connection lost ({type(exc).__name__})") from None
        finally:
            WATCHDOG.disarm(token)
            _current.request = None
            with self._lock:
                self._inflight.discard(request)

    def close(self) -> None:
        with self._lock:
            inflight = list(self._inflight)
        for request in inflight:
            request.cut()
        super().close()

    def _fetch(self, method: str, url: str, kwargs: dict) -> BoundedReply:
        kwargs.update(stream=True, allow_redirects=False)
        kwargs.setdefault("timeout", self.timeout)
        origin = _origin(url)
        for _ in range(MAX_REDIRECTS + 1):
            reply = super().request(method, url, **kwargs)
            if not reply.is_redirect:
                return self._read(reply, url)
            reply.close()
            target = urljoin(url, reply.headers["location"])
            if _origin(target) != origin:
                raise CrossHostRedirect(f"redirected to another host ({one_line(_origin(target), 80)}): not "
                                        "followed, the credentials are only for the printer's own address")
            url = target
        raise requests.TooManyRedirects(f"more than {MAX_REDIRECTS} redirects")

    def _read(self, reply: requests.Response, url: str) -> BoundedReply:
        cap, path = self.limits.reply_bytes, urlsplit(url).path or "/"
        try:
            announced = reply.headers.get("Content-Length", "")
            if announced.isdigit() and int(announced) > cap:
                raise LimitExceeded(f"the reply to {path} announces {size_text(int(announced))}, over "
                                    f"{size_text(cap)} (limits.reply_bytes)")
            if reply.headers.get("Content-Encoding", "identity").lower() not in ("identity", ""):
                raise LimitExceeded(f"the reply to {path} is compressed although identity was asked for")
            chunks, total = [], 0
            for chunk in reply.raw.stream(CHUNK, decode_content=False):
                total += len(chunk)
                if total > cap:
                    raise LimitExceeded(f"the reply to {path} is over {size_text(cap)} (limits.reply_bytes)")
                chunks.append(chunk)
        except BaseException:
            reply.close()  # a half-read connection is not reused
            raise
        reply.raw.release_conn()
        body = b"".join(chunks)
        check_json_depth(body, self.limits.json_depth, f"the reply to {path}")
        return BoundedReply(reply, body)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or {"http": 80, "https": 443}.get(parts.scheme)
    return f"{parts.scheme}://{parts.hostname}:{port}"
