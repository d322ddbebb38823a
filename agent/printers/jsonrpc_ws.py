"""JSON-RPC 2.0 over one websocket (agent/printers/websocket.py), used from one thread at a time.

Every wait is bounded by a deadline for the whole of it: connecting and each call by
``timeout`` (however many frames arrive meanwhile), each receive by its ``wait``; a frame that
is still arriving when the time is up counts as nothing received. Notifications that arrive
while a call waits for its answer are kept, in order, for ``receive`` — at most
``limits.held_messages`` of them and ``limits.held_bytes`` together. Frames are decoded with
msgspec (a few µs for a status update) after a check of their JSON depth.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any, Callable

import msgspec

from agent.printers.limits import DEFAULT, LimitExceeded, Limits, check_json_depth, size_text
from agent.printers.websocket import PING, PONG, Closed, Timeout, WebSocket

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode

__all__ = ["Closed", "RpcError", "RpcSocket", "Timeout"]


class RpcError(Exception):
    """The server answered a call with a JSON-RPC error."""

    def __init__(self, method: str, error: Any):
        message = error.get("message") if isinstance(error, dict) else error
        super().__init__(f"{method}: {message}")
        self.code = error.get("code") if isinstance(error, dict) else None


class RpcSocket:
    def __init__(self, url: str, headers: dict[str, str], timeout: float,
                 connect: Callable[..., Any] = WebSocket, limits: Limits = DEFAULT):
        self.timeout, self.limits = timeout, limits
        self.ws = connect(url, headers, timeout, limits)
        self.pending: deque[tuple[int, dict, float]] = deque()  # (bytes, message, when it arrived)
        # When the message receive() returned last arrived (time.monotonic()): a notification
        # held during a call is handed on later than it came, and a clock sample must know.
        self.arrived: float | None = None
        self._held_bytes = 0
        self._next_id = 0

    def call(self, method: str, params: dict | None = None) -> Any:
        """Send one request and wait (at most ``timeout`` in all) for its answer."""
        self._next_id += 1
        request_id = self._next_id
        deadline = time.monotonic() + self.timeout
        self.ws.send_text(_encode({"jsonrpc": "2.0", "method": method, "params": params or {}, "id": request_id}))
        while True:
            read = self._read(deadline)
            if read is None:
                raise Timeout(f"{method}: no answer within {self.timeout:g} s")
            size, message = read
            if message.get("id") != request_id:
                self._hold(size, message)
            elif "error" in message:
                raise RpcError(method, message["error"])
            else:
                return message.get("result")

    def receive(self, wait: float) -> dict | None:
        """The next message; an empty dict for a ping or pong; None if no whole message came
        within ``wait``."""
        if self.pending:
            size, message, self.arrived = self.pending.popleft()
            self._held_bytes -= size
            return message
        read = self._read(time.monotonic() + wait)
        self.arrived = time.monotonic()
        return None if read is None else read[1]

    def drop_pending(self, method: str) -> None:
        """Forget the kept notifications of ``method`` (superseded by a call's answer)."""
        self.pending = deque(item for item in self.pending if item[1].get("method") != method)
        self._held_bytes = sum(item[0] for item in self.pending)

    def ping(self) -> None:
        self.ws.ping()

    def close(self) -> None:
        self.ws.close()  # wakes a reader in another thread, too

    def _hold(self, size: int, message: dict) -> None:
        if len(self.pending) >= self.limits.held_messages:
            raise LimitExceeded(f"more than {self.limits.held_messages} notifications while waiting for an "
                                "answer (limits.held_messages)")
        if self._held_bytes + size > self.limits.held_bytes:
            raise LimitExceeded(f"over {size_text(self.limits.held_bytes)} of notifications while waiting "
                                "for an answer (limits.held_bytes)")
        self.pending.append((size, message, time.monotonic()))
        self._held_bytes += size

    def _read(self, deadline: float) -> tuple[int, dict] | None:
        received = self.ws.recv_message(deadline)
        if received is None:
            return None
        opcode, data = received
        if opcode in (PING, PONG):
            return 0, {}  # the server is alive
        check_json_depth(data, self.limits.json_depth, "a websocket message")
        message = _decode(data)
        return len(data), message if isinstance(message, dict) else {}
