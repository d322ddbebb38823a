"""MQTT 3.1.1 packets for a subscribe-only client, with no I/O in it (sans-IO).

Bytes read from the broker go into ``Decoder.feed`` and come out as packets (``Publish``,
``ConnAck``, ``SubAck``, ``PingResp``); what the client sends is built as bytes by the
functions below. The caller owns the socket, the clock and the session's rules
(server/mqtt/session.py). Section numbers are those of the MQTT 3.1.1 specification
(OASIS Standard, 29 October 2014).

Only what a QoS 0/1 subscriber needs is here: CONNECT, SUBSCRIBE, PUBACK (many in one byte
string), PINGREQ and DISCONNECT out; CONNACK, SUBACK, PUBLISH at QoS 0 or 1 and PINGRESP in.
Anything else from the broker - QoS 2 included, which we never ask for - is a
``ProtocolError``: the caller closes the connection, as the specification asks (4.8).
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence

import msgspec

PROTOCOL_LEVEL = 4  # 3.1.2.2: MQTT 3.1.1
MAX_REMAINING_LENGTH = 268_435_455  # 2.2.3: four bytes of seven bits
MAX_PACKET = 1 << 20  # what we buffer of one packet at most (docs/scaling.md: cap it at the broker too)
SUBACK_FAILURE = 0x80  # 3.9.3

PINGREQ = b"\xc0\x00"  # 3.12
DISCONNECT = b"\xe0\x00"  # 3.14

CONNACK_REFUSALS = {  # 3.2.2.3
    1: "unacceptable protocol version",
    2: "client identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorised",
}


class ProtocolError(Exception):
    """The broker sent something malformed or unexpected: close the connection (4.8)."""


# -- packets from the broker -------------------------------------------------------------------
# msgspec Structs: built in C, ~60 ns each, which matters at 100,000 PUBLISH packets a second.

class Publish(msgspec.Struct, frozen=True, gc=False):
    topic: str
    payload: bytes
    qos: int
    packet_id: int  # 0 at QoS 0
    retain: bool = False
    dup: bool = False
    truncated: bool = False  # longer than the decoder's max_packet: the payload is cut there


class ConnAck(msgspec.Struct, frozen=True, gc=False):
    session_present: bool
    return_code: int

    @property
    def refusal(self) -> str | None:
        """Why the broker refused the connection; None when it accepted it."""
        if self.return_code == 0:
            return None
        return CONNACK_REFUSALS.get(self.return_code, f"return code {self.return_code}")


class SubAck(msgspec.Struct, frozen=True, gc=False):
    packet_id: int
    granted: tuple[int, ...]  # per topic filter: the QoS granted, or SUBACK_FAILURE


class PingResp(msgspec.Struct, frozen=True, gc=False):
    pass


Packet = Publish | ConnAck | SubAck | PingResp
_PINGRESP = PingResp()


# -- packets to the broker ---------------------------------------------------------------------

def remaining_length(n: int) -> bytes:
    """2.2.3: seven bits per byte, least significant first, high bit = more bytes follow."""
    if not 0 <= n <= MAX_REMAINING_LENGTH:
        raise ValueError(f"remaining length {n} is outside 0..{MAX_REMAINING_LENGTH}")
    out = bytearray()
    while n > 0x7F:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def connect(client_id: str, keepalive: int, *, clean_session: bool = False,
            username: str | None = None, password: bytes | None = None) -> bytes:
    """3.1: CONNECT without a will (the collector has none)."""
    if password is not None and username is None:
        raise ValueError("a password needs a user name (3.1.2.9)")
    if not 0 <= keepalive <= 0xFFFF:
        raise ValueError(f"keepalive {keepalive} is outside 0..65535 s")
    flags = (0x80 if username is not None else 0) | (0x40 if password is not None else 0)
    flags |= 0x02 if clean_session else 0
    body = _string("MQTT") + bytes([PROTOCOL_LEVEL, flags]) + keepalive.to_bytes(2, "big") + _string(client_id)
    if username is not None:
        body += _string(username)
    if password is not None:
        body += _binary(password)
    return _packet(0x10, body)


def subscribe(packet_id: int, filters: Sequence[tuple[str, int]]) -> bytes:
    """3.8: SUBSCRIBE at QoS 0 or 1. QoS 2 is refused here: we acknowledge with PUBACK only."""
    if not filters:
        raise ValueError("SUBSCRIBE needs at least one topic filter (3.8.3)")
    _check_packet_id(packet_id)
    body = packet_id.to_bytes(2, "big")
    for topic_filter, qos in filters:
        if qos not in (0, 1):
            raise ValueError(f"QoS {qos} for {topic_filter!r}: this client subscribes at QoS 0 or 1 only")
        body += _string(topic_filter) + bytes([qos])
    return _packet(0x82, body)  # 3.8.1: flags 0010


def pubacks(packet_ids: Iterable[int]) -> bytes:
    """3.4: one PUBACK per id, as one byte string (the broker reads a stream: one write for all)."""
    ids = list(packet_ids)
    if ids and not (1 <= min(ids) and max(ids) <= 0xFFFF):
        raise ValueError("packet identifiers are 1..65535 (2.3.1)")
    # A PUBACK is 0x40, remaining length 2, the 16-bit packet identifier: one 32-bit word.
    return struct.pack(f"!{len(ids)}I", *[0x40020000 | pid for pid in ids])


def _packet(first_byte: int, body: bytes) -> bytes:
    return bytes([first_byte]) + remaining_length(len(body)) + body


def _string(text: str) -> bytes:
    """1.5.3: a two-byte length, then UTF-8 without U+0000."""
    if "\x00" in text:
        raise ValueError(f"{text!r}: MQTT strings must not contain U+0000 (1.5.3)")
    return _binary(text.encode())


def _binary(data: bytes) -> bytes:
    if len(data) > 0xFFFF:
        raise ValueError(f"{len(data)} bytes: MQTT strings and binary fields hold at most 65,535")
    return len(data).to_bytes(2, "big") + data


def _check_packet_id(packet_id: int) -> None:
    if not 1 <= packet_id <= 0xFFFF:
        raise ValueError(f"packet identifier {packet_id} is outside 1..65535 (2.3.1)")


# -- reading -----------------------------------------------------------------------------------

class Decoder:
    """Bytes in, complete packets out, however the stream is cut into reads.

    A packet cut off at the end of a read waits for the next ``feed``. A malformed or
    unexpected packet raises ``ProtocolError``; the packets before it in the same ``feed``
    are dropped with it (the broker redelivers the unacknowledged ones to the session).

    No more than ``max_packet`` bytes of a packet are kept. A longer PUBLISH comes out with
    its payload cut there (``truncated``) and the rest is skipped as it arrives, so one huge
    message can neither fill the memory nor, by closing the connection, come back for ever:
    the caller rejects it and acknowledges it like any other.
    """

    def __init__(self, max_packet: int = MAX_PACKET, fast: bool = True):
        self.max_packet = max_packet
        self.fast = fast  # False: every packet the general way (tests prove both give the same)
        self._rest = b""
        self._skip = 0  # bytes of a truncated PUBLISH still to come and be dropped

    def feed(self, data: bytes) -> list[Packet]:
        if self._skip:
            dropped = min(self._skip, len(data))
            self._skip -= dropped
            data = data[dropped:]
        buf = self._rest + data if self._rest else data
        packets: list[Packet] = []
        pos, end = 0, len(buf)
        while end - pos >= 2:
            if self.fast and buf[pos] == 0x32:
                fast_pos = self._publishes(buf, pos, packets)
                if fast_pos != pos:
                    pos = fast_pos
                    continue
            head = _fixed_header(buf, pos, end)
            if head is None:
                break  # remaining length cut off
            start, length = head
            first = buf[pos]
            if length > self.max_packet:
                if not self._oversized(first, buf, start, length, packets):
                    break  # not enough of it yet
                pos = min(start + length, end)
                continue
            stop = start + length
            if stop > end:
                break  # body cut off
            if first >> 4 == 3:
                packets.append(_publish(first, buf, start, stop))
            else:
                packets.append(_control(first, buf[start:stop]))
            pos = stop
        self._rest = buf[pos:]
        return packets

    def _publishes(self, buf: bytes, pos: int, packets: list[Packet]) -> int:
        """The fast path: the run of plain QoS 1 PUBLISH packets (no DUP or RETAIN, a remaining
        length of one or two bytes, within max_packet) from ``pos``, appended to ``packets``;
        returns where it stopped. Anything else, a packet cut off or a malformed one, is left
        to the general path, which decodes or refuses it as ever.

        A drain is made of these, one per message: the checks of _fixed_header and _publish,
        written out in one loop (tests/unit/test_mqtt_codec.py proves both paths equal).
        """
        end, limit, add = len(buf), self.max_packet, packets.append
        while end - pos >= 3 and buf[pos] == 0x32:  # 3.3.1: PUBLISH, QoS 1, DUP 0, RETAIN 0
            length, start = buf[pos + 1], pos + 2
            if length > 0x7F:
                if buf[start] > 0x7F:
                    break  # three or four length bytes
                length = (length & 0x7F) | buf[start] << 7
                start += 1
            stop = start + length
            if stop > end or length > limit or length < 4:
                break  # cut off, over the limit, or too short for a topic and a packet identifier
            topic_end = start + 2 + (buf[start] << 8 | buf[start + 1])
            if topic_end + 2 > stop:
                break
            packet_id = buf[topic_end] << 8 | buf[topic_end + 1]
            if not packet_id:
                break
            try:
                topic = buf[start + 2:topic_end].decode()
            except UnicodeDecodeError:
                break
            add(Publish(topic, buf[topic_end + 2:stop], 1, packet_id))
            pos = stop
        return pos

    def _oversized(self, first: int, buf: bytes, start: int, length: int, packets: list[Packet]) -> bool:
        """A packet over max_packet: a PUBLISH cut there once that much is here; else an error."""
        if first >> 4 != 3:
            raise ProtocolError(f"a {length}-byte control packet is over our limit of {self.max_packet}")
        cut = start + self.max_packet
        if cut > len(buf):
            return False
        packets.append(_publish(first, buf, start, cut, truncated=True))
        self._skip = max(0, start + length - len(buf))
        return True

    def pending(self) -> int:
        """Bytes of a packet not yet complete."""
        return len(self._rest)


def _fixed_header(buf: bytes, pos: int, end: int) -> tuple[int, int] | None:
    """(where the body starts, remaining length), or None when the length bytes are cut off."""
    i, length, shift = pos + 1, 0, 0
    while True:
        if shift > 21:
            raise ProtocolError("remaining length longer than four bytes (2.2.3)")
        if i >= end:
            return None
        byte = buf[i]
        i += 1
        length |= (byte & 0x7F) << shift
        if byte < 0x80:
            return i, length
        shift += 7


def _publish(first: int, buf: bytes, start: int, stop: int, truncated: bool = False) -> Publish:
    """3.3: the hot path. Topic, packet identifier at QoS 1, payload = the rest."""
    qos = (first >> 1) & 3
    if qos > 1:
        raise ProtocolError("PUBLISH at QoS 3 is malformed (3.3.1.2)" if qos == 3 else
                            "PUBLISH at QoS 2, but we subscribed at QoS 1 at most (3.8.4)")
    if stop - start < 2:
        raise ProtocolError("PUBLISH too short to hold a topic (3.3.2.1)")
    topic_end = start + 2 + (buf[start] << 8 | buf[start + 1])
    payload_at = topic_end + 2 if qos else topic_end
    if payload_at > stop:
        raise ProtocolError("PUBLISH shorter than its topic and packet identifier (3.3.2)")
    packet_id = buf[topic_end] << 8 | buf[topic_end + 1] if qos else 0
    if qos and not packet_id:
        raise ProtocolError("QoS 1 PUBLISH with packet identifier 0 (2.3.1)")
    try:
        topic = buf[start + 2:topic_end].decode()
    except UnicodeDecodeError:
        raise ProtocolError("PUBLISH topic is not UTF-8 (1.5.3)") from None
    # Topic syntax (empty, wildcards, U+0000) is left to ingest, which rejects and counts it.
    return Publish(topic, buf[payload_at:stop], qos, packet_id, bool(first & 0x01), bool(first & 0x08), truncated)


def _control(first: int, body: bytes) -> Packet:
    kind = first >> 4
    if kind == 2 and first == 0x20 and len(body) == 2 and not body[0] & 0xFE:  # 3.2
        return ConnAck(bool(body[0] & 0x01), body[1])
    if kind == 9 and first == 0x90 and len(body) >= 3:  # 3.9
        granted = tuple(body[2:])
        if all(code in (0, 1, 2, SUBACK_FAILURE) for code in granted):
            return SubAck(body[0] << 8 | body[1], granted)
    if first == 0xD0 and not body:  # 3.13
        return _PINGRESP
    raise ProtocolError(f"unexpected or malformed packet from the broker: type {kind}, flags {first & 0x0F:#x}, "
                        f"{len(body)} bytes")
