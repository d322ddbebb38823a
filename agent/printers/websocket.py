"""A small websocket client (RFC 6455) that holds a printer to the agent's bounds.

Why our own and not ``websocket-client``: that library reads a frame whole, whatever size its
header announces, and restarts its timeout at every received byte. Here:

- a frame's announced length is checked before its payload is read: one message (all its
  fragments) may be at most ``limits.message_bytes``, in at most ``limits.fragments`` frames;
- ``recv_message(deadline)`` waits until a *whole* message is in, or the deadline: a peer that
  trickles a frame byte by byte gets nothing through, so silence checks see it as silent;
- ``close()`` from another thread wakes a reader at once (shutdown of the socket).

Only what Moonraker needs: text frames out (masked, as a client must), text/binary in, ping,
pong and close; no extensions (nothing is asked for, so a server may not use any).
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import ssl
import struct
import time
from urllib.parse import urlsplit

from agent.printers.limits import DEFAULT, LimitExceeded, Limits, size_text

CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
HANDSHAKE_BYTES = 16 * 1024  # the server's handshake answer (status line and headers)
RECV = 64 * 1024


class Closed(ConnectionError):
    """The server closed the websocket, or the connection was lost."""


class Timeout(TimeoutError):
    """No (whole) answer within the time given."""


class ProtocolError(ValueError):
    """The server broke the websocket protocol."""


class HandshakeRefused(Exception):
    def __init__(self, status: int):
        super().__init__(f"websocket handshake refused: HTTP {status}")
        self.status_code = status


class WebSocket:
    def __init__(self, url: str, headers: dict[str, str], timeout: float, limits: Limits = DEFAULT):
        self.limits = limits
        self.buffer = bytearray()
        self._fragments: list[bytes] = []
        self._fragment_bytes = 0
        self._fragment_opcode = TEXT
        deadline = time.monotonic() + timeout
        parts = urlsplit(url)
        secure = parts.scheme == "wss"
        port = parts.port or (443 if secure else 80)
        self.sock = socket.create_connection((parts.hostname, port), timeout)
        try:
            if secure:
                self.sock = ssl.create_default_context().wrap_socket(self.sock, server_hostname=parts.hostname)
            self._handshake(parts, port, headers, deadline)
        except BaseException:
            self.sock.close()
            raise

    # -- what RpcSocket uses --------------------------------------------------------------------
    def send_text(self, text: bytes) -> None:
        self._send_frame(TEXT, text)

    def ping(self) -> None:
        self._send_frame(PING, b"")

    def recv_message(self, deadline: float) -> tuple[int, bytes] | None:
        """The next whole message as (opcode, payload): TEXT or BINARY, or PING/PONG with an
        empty payload (the server is alive). None if no whole message came by ``deadline``
        (monotonic); a partial frame stays buffered for the next call. Raises ``Closed``."""
        while True:
            frame = self._next_frame(deadline)
            if frame is None:
                return None
            fin, opcode, payload = frame
            if opcode == CLOSE:
                raise Closed("the server closed the websocket")
            if opcode == PING:
                self._send_frame(PONG, payload)
                return PING, b""
            if opcode == PONG:
                return PONG, b""
            message = self._assemble(fin, opcode, payload)
            if message is not None:
                return message

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes a reader in another thread
        except OSError:
            pass
        self.sock.close()

    # -- frames -----------------------------------------------------------------------------------
    def _next_frame(self, deadline: float) -> tuple[bool, int, bytes] | None:
        if not self._fill(2, deadline):
            return None
        first, second = self.buffer[0], self.buffer[1]
        fin, opcode, masked, length = bool(first & 0x80), first & 0x0F, bool(second & 0x80), second & 0x7F
        if first & 0x70:
            raise ProtocolError("a frame uses an extension nobody agreed on")
        head = 2 + {126: 2, 127: 8}.get(length, 0) + (4 if masked else 0)
        if not self._fill(head, deadline):
            return None
        if length == 126:
            length = struct.unpack_from(">H", self.buffer, 2)[0]
        elif length == 127:
            length = struct.unpack_from(">Q", self.buffer, 2)[0]
        self._check_size(opcode, length)
        if not self._fill(head + length, deadline):
            return None
        payload = bytes(self.buffer[head:head + length])
        if masked:  # servers must not mask, but reading it costs nothing
            payload = _mask(payload, bytes(self.buffer[head - 4:head]))
        del self.buffer[:head + length]
        return fin, opcode, payload

    def _check_size(self, opcode: int, length: int) -> None:
        if opcode >= CLOSE:
            if length > 125:
                raise ProtocolError(f"a control frame of {length} bytes (at most 125 allowed)")
            return
        total = self._fragment_bytes + length if opcode == CONTINUATION else length
        if total > self.limits.message_bytes:
            raise LimitExceeded(f"a websocket message of {size_text(total)} announced, over "
                                f"{size_text(self.limits.message_bytes)} (limits.message_bytes)")

    def _assemble(self, fin: bool, opcode: int, payload: bytes) -> tuple[int, bytes] | None:
        if opcode in (TEXT, BINARY):
            if self._fragments:
                raise ProtocolError("a new message began inside a fragmented one")
            if fin:
                return opcode, payload
            self._fragment_opcode = opcode
        elif opcode != CONTINUATION or not self._fragments:
            raise ProtocolError(f"unexpected frame (opcode {opcode})")
        self._fragments.append(payload)
        self._fragment_bytes += len(payload)
        if len(self._fragments) > self.limits.fragments:
            raise LimitExceeded(f"a websocket message in more than {self.limits.fragments} fragments "
                                "(limits.fragments)")
        if not fin:
            return None
        message = b"".join(self._fragments)
        self._fragments, self._fragment_bytes = [], 0
        return self._fragment_opcode, message

    def _fill(self, n: int, deadline: float) -> bool:
        """Read until ``n`` bytes are buffered (True) or the deadline passes (False)."""
        while len(self.buffer) < n:
            wait = deadline - time.monotonic()
            if wait <= 0:
                return False
            self.sock.settimeout(wait)
            try:
                data = self.sock.recv(RECV)
            except (socket.timeout, TimeoutError):
                return False
            except OSError as exc:
                raise Closed(f"connection lost ({exc})") from None
            if not data:
                raise Closed("connection lost")
            self.buffer += data
        return True

    def _send_frame(self, opcode: int, payload: bytes) -> None:
        key = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack(">BB", 0x80 | opcode, 0x80 | n)
        elif n < 1 << 16:
            head = struct.pack(">BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack(">BBQ", 0x80 | opcode, 0x80 | 127, n)
        try:
            self.sock.sendall(head + key + _mask(payload, key))
        except OSError as exc:
            raise Closed(f"connection lost ({exc})") from None

    # -- the opening handshake --------------------------------------------------------------------
    def _handshake(self, parts, port: int, headers: dict[str, str], deadline: float) -> None:
        key = base64.b64encode(os.urandom(16)).decode()
        host = parts.hostname if port in (80, 443) else f"{parts.hostname}:{port}"
        lines = [f"GET {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1", f"Host: {host}",
                 "Upgrade: websocket", "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                 "Sec-WebSocket-Version: 13", *(f"{k}: {v}" for k, v in headers.items())]
        self.sock.settimeout(max(deadline - time.monotonic(), 0.001))
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while b"\r\n\r\n" not in self.buffer:
            if len(self.buffer) > HANDSHAKE_BYTES:
                raise LimitExceeded(f"a websocket handshake answer over {size_text(HANDSHAKE_BYTES)}")
            if not self._fill(len(self.buffer) + 1, deadline):
                raise Timeout("no websocket handshake answer within the timeout")
        end = self.buffer.index(b"\r\n\r\n") + 4
        head, self.buffer = bytes(self.buffer[:end]), self.buffer[end:]
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        fields = status_line.split(" ", 2)
        status = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0
        if status != 101:
            raise HandshakeRefused(status)
        answer = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in header_lines)}
        expected = base64.b64encode(hashlib.sha1(key.encode() + _GUID).digest()).decode()
        if answer.get("sec-websocket-accept") != expected:
            raise ProtocolError("the server's handshake answer is not a websocket's")


def _mask(data: bytes, key: bytes) -> bytes:
    n = len(data)
    if not n:
        return b""
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")
