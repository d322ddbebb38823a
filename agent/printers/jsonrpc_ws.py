"""JSON-RPC 2.0 over one websocket (``websocket-client``), used from one thread at a time.

Every wait is bounded: connecting and each call by ``timeout``, each receive by its ``wait``.
Notifications that arrive while a call waits for its answer are kept, in order, for
``receive``. Frames are decoded with msgspec (a few µs for a status update).
"""

from __future__ import annotations

from collections import deque
from typing import Any, Callable

import msgspec
import websocket

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


class RpcError(Exception):
    """The server answered a call with a JSON-RPC error."""

    def __init__(self, method: str, error: Any):
        message = error.get("message") if isinstance(error, dict) else error
        super().__init__(f"{method}: {message}")
        self.code = error.get("code") if isinstance(error, dict) else None


Closed = websocket.WebSocketConnectionClosedException
Timeout = websocket.WebSocketTimeoutException


def _connect(url: str, headers: dict[str, str], timeout: float) -> websocket.WebSocket:
    return websocket.create_connection(url, timeout=timeout, header=headers, enable_multithread=True)


class RpcSocket:
    def __init__(self, url: str, headers: dict[str, str], timeout: float,
                 connect: Callable[[str, dict[str, str], float], Any] = _connect):
        self.timeout = timeout
        self.ws = connect(url, headers, timeout)
        self.pending: deque[dict] = deque()
        self._next_id = 0

    def call(self, method: str, params: dict | None = None) -> Any:
        """Send one request and wait (at most ``timeout``) for its answer."""
        self._next_id += 1
        request_id = self._next_id
        self.ws.send(_encode({"jsonrpc": "2.0", "method": method, "params": params or {}, "id": request_id}))
        while True:
            message = self._read(self.timeout)
            if message is None:
                raise Timeout(f"{method}: no answer within {self.timeout:g} s")
            if message.get("id") != request_id:
                self.pending.append(message)
            elif "error" in message:
                raise RpcError(method, message["error"])
            else:
                return message.get("result")

    def receive(self, wait: float) -> dict | None:
        """The next message; an empty dict for a pong; None if nothing came within ``wait``."""
        if self.pending:
            return self.pending.popleft()
        return self._read(wait)

    def drop_pending(self, method: str) -> None:
        """Forget the kept notifications of ``method`` (superseded by a call's answer)."""
        self.pending = deque(m for m in self.pending if m.get("method") != method)

    def ping(self) -> None:
        self.ws.ping()

    def close(self) -> None:
        self.ws.abort()  # wakes a reader in another thread, too
        self.ws.shutdown()

    def _read(self, wait: float) -> dict | None:
        self.ws.settimeout(wait)
        try:
            opcode, frame = self.ws.recv_data_frame(True)
        except Timeout:
            return None
        if opcode == websocket.ABNF.OPCODE_CLOSE:
            raise Closed("the server closed the websocket")
        if opcode not in (websocket.ABNF.OPCODE_TEXT, websocket.ABNF.OPCODE_BINARY):
            return {}  # ping, pong: the server is alive
        message = _decode(frame.data)
        return message if isinstance(message, dict) else {}
