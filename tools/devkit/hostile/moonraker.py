"""A hostile Moonraker: a websocket that answers the agent's first calls as Moonraker does
(klippy ready, a print under way), then misbehaves.

Behaviours: ``huge_frame`` (at once: a frame announcing 4 GiB, then bytes up to the budget),
``fragments`` (a message in endless continuation frames), ``trickle`` (a frame one byte every
0.3 s), ``flood`` (never answers ``server.info``; notifications without end instead),
``keys`` (status updates with ever new fields of ``print_stats``), ``deep`` (a notification
nested 100,000 deep).
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct

from devkit.hostile.base import StandIn, deep_json, read_exact, read_until

BEHAVIOURS = ("huge_frame", "fragments", "trickle", "flood", "keys", "deep")
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
STATUS = {"print_stats": {"state": "printing", "filename": "hostile.gcode", "print_duration": 10.0},
          "webhooks": {"state": "ready", "state_message": "Printer is ready"},
          "virtual_sdcard": {"progress": 0.1, "is_active": True}}
ANSWERS = {"server.connection.identify": {"connection_id": 1}, "server.info": {"klippy_state": "ready"},
           "printer.info": {"state_message": "Printer is ready"}, "server.history.list": {"jobs": []},
           "printer.objects.subscribe": {"eventtime": 1.0, "status": STATUS}}


def frame(payload: bytes, opcode: int = 0x1, fin: bool = True, length: int | None = None) -> bytes:
    n = len(payload) if length is None else length
    first = (0x80 if fin else 0) | opcode
    if n < 126:
        head = struct.pack(">BB", first, n)
    elif n < 1 << 16:
        head = struct.pack(">BBH", first, 126, n)
    else:
        head = struct.pack(">BBQ", first, 127, n)
    return head + payload


def text(message: dict) -> bytes:
    return frame(json.dumps(message).encode())


class HostileMoonraker(StandIn):
    def __init__(self, behaviour: str, **kwargs):
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {behaviour!r}: one of {', '.join(BEHAVIOURS)}")
        super().__init__(**kwargs)
        self.behaviour = behaviour
        self.url = f"http://{self.host}:{self.port}"

    def serve(self, conn: socket.socket) -> None:
        request = read_until(conn, b"\r\n\r\n")
        key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
                   if line.lower().startswith(b"sec-websocket-key:"))
        accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        if self.behaviour == "huge_frame":
            conn.sendall(frame(b"", length=4 << 30))
            self.flood(conn, b"x" * 65536)
            return
        self._answer_until_subscribed(conn)
        getattr(self, self.behaviour)(conn)

    def _answer_until_subscribed(self, conn: socket.socket) -> None:
        while True:
            call = json.loads(_read_client_frame(conn))
            method = call.get("method")
            if self.behaviour == "flood" and method == "server.info":
                return  # never answered: notifications instead
            conn.sendall(text({"jsonrpc": "2.0", "id": call.get("id"), "result": ANSWERS.get(method, {})}))
            if method == "printer.objects.subscribe":
                return

    def fragments(self, conn):
        conn.sendall(frame(b'{"jsonrpc": "2.0", "method": "notify_status_update", "params": [', fin=False))
        self.flood(conn, frame(b" " * 100, opcode=0x0, fin=False))

    def trickle(self, conn, data=None):
        if data is not None:
            return StandIn.trickle(self, conn, data)
        # A status update, byte by byte: never whole, never silent.
        # (padded: whole, it would take hours)
        return StandIn.trickle(self, conn, frame(json.dumps(
            {"jsonrpc": "2.0", "method": "notify_status_update", "params": [{"print_stats": {}}, 1.0]}).encode()
            + b" " * 100_000))

    def flood(self, conn, chunk=None):
        if chunk is not None:
            return StandIn.flood(self, conn, chunk)
        note = text({"jsonrpc": "2.0", "method": "notify_proc_stat_update", "params": [{"cpu": 1.0}]})
        return StandIn.flood(self, conn, note * 100)

    def keys(self, conn):
        n = 0
        while not self.stopping.wait(0.01):
            fields = {f"field_{n + i}": i for i in range(100)}
            n += 100
            conn.sendall(text({"jsonrpc": "2.0", "method": "notify_status_update",
                               "params": [{"print_stats": fields}, 1.0]}))

    def deep(self, conn):
        conn.sendall(frame(b'{"jsonrpc": "2.0", "method": "notify_status_update", "params": ' + deep_json() + b"}"))
        self.hold(conn)


def _read_client_frame(conn: socket.socket) -> bytes:
    head = read_exact(conn, 2)
    n = head[1] & 0x7F
    if n == 126:
        n = struct.unpack(">H", read_exact(conn, 2))[0]
    elif n == 127:
        n = struct.unpack(">Q", read_exact(conn, 8))[0]
    mask = read_exact(conn, 4) if head[1] & 0x80 else b"\0\0\0\0"
    data = read_exact(conn, n)
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
    if head[0] & 0x0F != 0x1:  # a ping or pong: skip it
        return _read_client_frame(conn)
    return payload

