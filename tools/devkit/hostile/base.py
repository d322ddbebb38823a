"""A threaded TCP server on a free loopback port, one thread per connection, stopped at once."""

from __future__ import annotations

import socket
import socketserver
import threading
import time

TRICKLE = 0.3  # seconds between trickled bytes
BUDGET = 64 * 1024 * 1024  # bytes an endless stream sends at most: 64 times the default caps
DEEP = 100_000  # nesting of the "deeply nested" JSON


def deep_json(depth: int = DEEP) -> bytes:
    return b'{"print":' + b"[" * depth + b"]" * depth + b"}"


class StandIn:
    """Subclasses implement ``serve(conn)``; ``self.stopping`` is set by ``stop()``."""

    host = "127.0.0.1"

    def __init__(self, host: str | None = None, budget: int = BUDGET):
        self.host = host or self.host
        self.budget = budget
        self.stopping = threading.Event()
        self.connections = 0
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                with outer._lock:
                    outer.connections += 1
                    outer._conns.add(self.request)
                try:
                    outer.serve(self.request)
                except OSError:
                    pass  # the client went away: that is its right
                finally:
                    with outer._lock:
                        outer._conns.discard(self.request)

        self.server = socketserver.ThreadingTCPServer((self.host, 0), Handler, bind_and_activate=True)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]

    def start(self):
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True,
                         name=f"{type(self).__name__}:{self.port}").start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()
        with self._lock:
            for conn in self._conns:
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def serve(self, conn: socket.socket) -> None:
        raise NotImplementedError

    # -- helpers for the behaviours ---------------------------------------------------------
    def trickle(self, conn: socket.socket, data: bytes) -> None:
        """One byte every TRICKLE seconds, until stopped (``data`` repeats)."""
        i = 0
        while not self.stopping.wait(TRICKLE):
            conn.sendall(data[i % len(data):i % len(data) + 1])
            i += 1

    def flood(self, conn: socket.socket, chunk: bytes) -> None:
        """``chunk`` again and again, as fast as the client takes it, up to the budget."""
        sent = 0
        while sent < self.budget and not self.stopping.is_set():
            conn.sendall(chunk)
            sent += len(chunk)
        self.hold(conn)

    def hold(self, conn: socket.socket) -> None:
        """Keep the connection open, saying nothing, until stopped."""
        while not self.stopping.wait(0.5):
            pass


def read_until(conn: socket.socket, marker: bytes, limit: int = 65536) -> bytes:
    data = b""
    while marker not in data:
        chunk = conn.recv(4096)
        if not chunk or len(data) > limit:
            raise OSError("the client went away")
        data += chunk
    return data


def now() -> float:
    return time.monotonic()


def read_exact(conn, n: int) -> bytes:
    """Exactly ``n`` bytes from a socket, or OSError when the client goes away first."""
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise OSError("the client went away")
        data += chunk
    return data
