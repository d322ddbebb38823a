"""A hostile OctoPrint or PrusaLink: every path gets the same behaviour.

Behaviours: ``endless`` (a 200 with no length, then JSON without end), ``huge_length`` (a
Content-Length of 4 GiB, then as much as the budget), ``trickle_headers`` (the status line, one
byte every 0.3 s), ``trickle_body`` (headers at once, then the body byte by byte), ``deep``
(JSON nested 100,000 deep), ``redirect`` (302 to ``target``, another host).
"""

from __future__ import annotations

import socket
import threading

from devkit.hostile.base import StandIn, deep_json, read_until

BEHAVIOURS = ("endless", "huge_length", "trickle_headers", "trickle_body", "deep", "redirect")


class HostileHTTP(StandIn):
    def __init__(self, behaviour: str, target: str | None = None, **kwargs):
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {behaviour!r}: one of {', '.join(BEHAVIOURS)}")
        super().__init__(**kwargs)
        self.behaviour, self.target = behaviour, target
        self.url = f"http://{self.host}:{self.port}"

    def serve(self, conn: socket.socket) -> None:
        while not self.stopping.is_set():
            request = read_until(conn, b"\r\n\r\n")
            path = request.split(b" ", 2)[1].decode() if request.count(b" ") >= 2 else "/"
            getattr(self, self.behaviour)(conn, path)

    def endless(self, conn, path):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n"
                     b'{"state": "Operational", "junk": "')
        self.flood(conn, b"x" * 65536)

    def huge_length(self, conn, path):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4294967296\r\n\r\n"
                     b'{"junk": "')
        self.flood(conn, b"x" * 65536)

    def trickle_headers(self, conn, path):
        self.trickle(conn, b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 1000)

    def trickle_body(self, conn, path):
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n")
        self.trickle(conn, b'{"state": "Operational", "junk": "' + b"x" * 1000)

    def deep(self, conn, path):
        body = deep_json()
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
                     + body)

    def redirect(self, conn, path):
        conn.sendall(f"HTTP/1.1 302 Found\r\nLocation: {self.target}{path}\r\nContent-Length: 0\r\n\r\n".encode())


class Recorder(StandIn):
    """Another host (127.0.0.2 by default): answers 401 to anything and keeps the headers."""

    host = "127.0.0.2"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.url = f"http://{self.host}:{self.port}"
        self.requests: list[bytes] = []
        self._seen = threading.Lock()

    def serve(self, conn: socket.socket) -> None:
        request = read_until(conn, b"\r\n\r\n")
        with self._seen:
            self.requests.append(request)
        conn.sendall(b"HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
