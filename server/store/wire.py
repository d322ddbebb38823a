"""POST /write on one keep-alive HTTP/1.1 connection, by hand.

The collector's writer sends a request per database per batch; with a database per organisation
that is ten or more requests where there was one (docs/organisations.md). Through urllib3 a request
costs ~370 µs of CPU, through http.client ~180 µs; the request and its answer (InfluxDB's 204, or
a short error) are simple enough to write and read here in a fraction of that. Plain ``http://``
only: ``https://`` goes through urllib3 as before (server/store/influx.py).
"""

from __future__ import annotations

import socket


class WireError(OSError):
    """The connection failed or the answer was not HTTP."""


class Answer:
    """What influx.py reads of an answer: status, headers (lower-case names), body."""

    __slots__ = ("status", "headers", "data")

    def __init__(self, status: int, headers: dict[str, str], data: bytes):
        self.status, self.headers, self.data = status, headers, data


class WriteConnection:
    def __init__(self, host: str, port: int, connect_timeout: float, read_timeout: float,
                 headers: dict[str, str]):
        self.address = (host, port)
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        host_header = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self._head = f"Host: {host_header}\r\nContent-Type: text/plain\r\n{extra}"
        self._sock: socket.socket | None = None
        self._buffer = b""

    def post(self, target: str, body: bytes) -> Answer:
        """POST ``body`` to ``target`` (path and query). A kept-alive connection the server has
        closed meanwhile is opened again once: a write is idempotent (a point overwrites itself)."""
        request = f"POST {target} HTTP/1.1\r\n{self._head}Content-Length: {len(body)}\r\n\r\n".encode() + body
        reused = self._sock is not None
        try:
            return self._exchange(request)
        except TimeoutError:
            self.close()  # slow, not stale: the caller retries later
            raise
        except OSError:  # WireError too
            self.close()
            if not reused:
                raise
        try:
            return self._exchange(request)
        except OSError:
            self.close()
            raise

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock, self._buffer = None, b""

    def _exchange(self, request: bytes) -> Answer:
        if self._sock is None:
            self._sock = socket.create_connection(self.address, timeout=self.connect_timeout)
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock.settimeout(self.read_timeout)
        self._sock.sendall(request)
        status, headers = self._head_of_answer()
        data = self._body(headers)
        if headers.get("connection", "").lower() == "close":
            self.close()
        return Answer(status, headers, data)

    def _head_of_answer(self) -> tuple[int, dict[str, str]]:
        while b"\r\n\r\n" not in self._buffer:
            self._fill()
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise WireError(f"not an HTTP answer: {lines[0][:80]!r}")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return int(parts[1]), headers

    def _body(self, headers: dict[str, str]) -> bytes:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            return self._chunked()
        return self._take(int(headers.get("content-length") or 0))

    def _chunked(self) -> bytes:
        out = b""
        while True:
            while b"\r\n" not in self._buffer:
                self._fill()
            size_line, self._buffer = self._buffer.split(b"\r\n", 1)
            size = int(size_line.split(b";")[0], 16)
            out += self._take(size + 2)[:size]  # each chunk ends with CRLF
            if size == 0:
                return out

    def _take(self, n: int) -> bytes:
        while len(self._buffer) < n:
            self._fill()
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def _fill(self) -> None:
        more = self._sock.recv(65536)
        if not more:
            raise WireError("the server closed the connection")
        self._buffer += more
