"""The collector's fast PUBLISH reader must deliver exactly what paho would, however the byte
stream is cut into reads, and acknowledge every QoS 1 message once."""

from __future__ import annotations

import socket
import struct

import paho.mqtt.client as mqtt
from hypothesis import given, settings
from hypothesis import strategies as st

from server import mqtt as collector_mqtt
from server.config import MqttConfig

PINGRESP = b"\xd0\x00"


def publish_packet(topic: str, payload: bytes, qos: int, mid: int) -> bytes:
    t = topic.encode()
    body = struct.pack("!H", len(t)) + t + (struct.pack("!H", mid) if qos else b"") + payload
    n, length = len(body), bytearray()
    while True:
        byte, n = n % 128, n // 128
        length.append(byte | (128 if n else 0))
        if not n:
            break
    return bytes([0x30 | (qos << 1)]) + bytes(length) + body


def connected_subscriber(handle):
    sub = collector_mqtt.Subscriber(MqttConfig(), handle)
    ours, theirs = socket.socketpair()
    ours.setblocking(False)
    sub.client._sock = ours
    sub.client._state = mqtt._ConnectionState.MQTT_CS_CONNECTED
    return sub, theirs


def read_acks(sock: socket.socket) -> list[int]:
    sock.setblocking(False)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except BlockingIOError:
        pass
    assert len(data) % 4 == 0
    acks = []
    for i in range(0, len(data), 4):
        kind, length, mid = struct.unpack("!BBH", data[i:i + 4])
        assert (kind, length) == (0x40, 2)
        acks.append(mid)
    return acks


messages = st.lists(st.tuples(
    st.text(min_size=1, max_size=40).filter(lambda t: "\x00" not in t),
    st.binary(max_size=400) | st.binary(min_size=16_380, max_size=16_400),
    st.sampled_from([0, 1]),
    st.booleans(),  # a PINGRESP after it
), min_size=1, max_size=30)


@settings(max_examples=150, deadline=None)
@given(msgs=messages, cuts=st.lists(st.integers(1, 3000), max_size=20))
def test_fast_reader_delivers_every_message_in_order_however_the_stream_is_cut(msgs, cuts):
    got = []
    sub, peer = connected_subscriber(lambda topic, payload: got.append((topic, payload)))
    try:
        stream = b""
        for n, (topic, payload, qos, ping) in enumerate(msgs, start=1):
            stream += publish_packet(topic, payload, qos, n) + (PINGRESP if ping else b"")
        pos = 0
        for cut in cuts + [len(stream)]:
            piece = stream[pos:pos + cut]
            pos += len(piece)
            if piece:
                peer.sendall(piece)
                assert sub._read_burst() == 0
        assert got == [(topic, payload) for topic, payload, _, _ in msgs]
        assert read_acks(peer) == [n for n, m in enumerate(msgs, start=1) if m[2] == 1]
    finally:
        peer.close()
        sub.client._sock.close()


def test_a_handler_that_raises_does_not_stop_the_loop_and_the_message_is_still_acknowledged():
    seen = []

    def handle(topic, payload):
        seen.append(payload)
        if payload == b"boom":
            raise ValueError("bug")

    sub, peer = connected_subscriber(handle)
    peer.sendall(publish_packet("a/b", b"boom", 1, 7) + publish_packet("a/b", b"ok", 1, 8))
    sub._read_burst()
    assert seen == [b"boom", b"ok"]
    assert read_acks(peer) == [7, 8]


def test_ids_of_an_earlier_connection_are_not_acknowledged_on_the_new_one():
    sub, peer = connected_subscriber(lambda t, p: None)
    sub._generation = 2
    sub.acknowledge([(1, 5), (2, 6)])
    sub._send_acks()
    assert read_acks(peer) == [6]


def test_the_broker_closing_the_connection_is_reported_not_spun_on():
    sub, peer = connected_subscriber(lambda t, p: None)
    peer.sendall(publish_packet("a/b", b"x", 0, 0))
    peer.close()
    assert sub._read_burst() != 0  # connection lost, reported by paho


def test_a_malformed_publish_is_left_to_paho_which_drops_the_connection():
    sub, peer = connected_subscriber(lambda t, p: None)
    peer.sendall(b"\x32\x01\x00")  # a PUBLISH too short to hold a topic length
    assert sub._read_burst() != 0


def test_a_connection_reset_by_the_broker_is_a_lost_connection_not_a_dead_loop(monkeypatch):
    sub, peer = connected_subscriber(lambda t, p: None)

    def reset(self, bufsize):
        raise ConnectionResetError(104, "Connection reset by peer")

    monkeypatch.setattr(mqtt.Client, "_sock_recv", reset)
    assert sub._read_burst() != 0  # reported as a lost connection; nothing raised
