"""A hostile Bambu printer: its MQTT broker over TLS (a certificate for the serial from a test
CA, as a real printer's), accepting the agent's access code, answering the subscription, then
misbehaving.

Behaviours: ``huge_packet`` (a PUBLISH announcing 255 MiB, then bytes up to the budget),
``deep`` (a report nested 100,000 deep, again every second).
"""

from __future__ import annotations

import socket
import ssl
import struct
from pathlib import Path

from devkit.hostile.base import StandIn, deep_json, read_exact
from devkit.pki import make_ca, issue

BEHAVIOURS = ("huge_packet", "deep")
MAX_REMAINING = 268_435_455  # MQTT's largest remaining length (255 MiB)


def remaining_length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish(topic: str, payload: bytes, announce: int | None = None) -> bytes:
    body = struct.pack(">H", len(topic)) + topic.encode() + payload
    return b"\x30" + remaining_length(len(body) if announce is None else announce) + body


class HostileBambu(StandIn):
    def __init__(self, behaviour: str, directory: Path, serial: str = "00M000000000666", **kwargs):
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"unknown behaviour {behaviour!r}: one of {', '.join(BEHAVIOURS)}")
        super().__init__(**kwargs)
        self.behaviour, self.serial = behaviour, serial
        directory.mkdir(parents=True, exist_ok=True)
        ca = make_ca("hostile BBL CA")
        self.ca_path = ca.write(directory / "hostile-ca.crt")
        cert = issue(ca, serial)
        cert_path = cert.write(directory / "hostile.crt", directory / "hostile.key")
        self.access_code_file = directory / "hostile.code"
        self.access_code_file.write_text("12345678\n")
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert_path, directory / "hostile.key")

    def table(self) -> dict:
        """The agent's [[printers]] keys for this printer (besides id and interval)."""
        return {"type": "bambu", "host": self.host, "port": self.port, "serial": self.serial,
                "access_code_file": str(self.access_code_file), "ca_file": str(self.ca_path)}

    def serve(self, raw: socket.socket) -> None:
        conn = self.context.wrap_socket(raw, server_side=True)
        _read_packet(conn)  # CONNECT
        conn.sendall(b"\x20\x02\x00\x00")  # CONNACK: accepted
        packet_type, body = _read_packet(conn)
        if packet_type == 0x8:  # SUBSCRIBE: SUBACK with its packet id, QoS 0
            conn.sendall(b"\x90\x03" + body[:2] + b"\x00")
        topic = f"device/{self.serial}/report"
        if self.behaviour == "huge_packet":
            conn.sendall(publish(topic, b"", announce=MAX_REMAINING))
            self.flood(conn, b"x" * 65536)
            return
        while not self.stopping.is_set():
            conn.sendall(publish(topic, deep_json()))
            self.stopping.wait(1.0)


def _read_packet(conn) -> tuple[int, bytes]:
    first = read_exact(conn, 1)[0]
    n, shift = 0, 0
    while True:
        byte = read_exact(conn, 1)[0]
        n |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    return first >> 4, read_exact(conn, n)

