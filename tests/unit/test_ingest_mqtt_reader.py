"""The collector's MQTT session against a scripted broker on a socket pair: what goes on the
wire, every message delivered in order however the stream is cut, acknowledgements only when
due, keep-alive, and reconnecting after whatever ends a connection."""

from __future__ import annotations

import queue
import socket
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.config import MqttConfig
from server.mqtt import Acknowledgements, Subscriber
from server.mqtt import session as session_mod
from tests.unit.mqtt_packets import publish_packet as publish

CONNACK = b"\x20\x02\x00\x00"
CONNACK_SESSION_PRESENT = b"\x20\x02\x01\x00"


def puback(packet_id: int) -> bytes:
    return b"\x40\x02" + packet_id.to_bytes(2, "big")


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Broker:
    """Hands the subscriber one end of a socket pair per connection attempt; the test speaks
    MQTT on the other end, byte by byte."""

    def __init__(self):
        self.connections: queue.Queue[socket.socket] = queue.Queue()
        self.peer: socket.socket | None = None

    def open_socket(self, cfg, timeout):
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        theirs.settimeout(5)
        self.connections.put(theirs)
        return ours

    def accept(self, connack: bytes = CONNACK, nudge=lambda: None) -> bytes:
        """Take the next connection (calling ``nudge`` while none comes), read its CONNECT, answer."""
        for _ in range(100):
            try:
                self.peer = self.connections.get(timeout=0.05)
                break
            except queue.Empty:
                nudge()
        else:
            raise AssertionError("the subscriber did not connect")
        connect = self.read_packet()
        self.peer.sendall(connack)
        return connect

    def read_exact(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.peer.recv(n - len(data))
            assert chunk, f"connection closed after {data!r}"
            data += chunk
        return data

    def read_packet(self) -> bytes:
        head = self.read_exact(2)
        length, shift, more = head[1] & 0x7F, 7, head[1] & 0x80
        while more:
            byte = self.read_exact(1)[0]
            length |= (byte & 0x7F) << shift
            shift, more = shift + 7, byte & 0x80
            head += bytes([byte])
        return head + self.read_exact(length)

    def send(self, data: bytes) -> None:
        self.peer.sendall(data)


class Running:
    """A Subscriber on its own thread, as in the collector."""

    def __init__(self, cfg=None, track=None, handle=None, flush=lambda: None, end_of_burst=lambda: None):
        self.broker, self.clock, self.got = Broker(), Clock(), []
        self.delivered = threading.Condition()
        self.acks = Acknowledgements()
        self.sub = Subscriber(cfg or MqttConfig(client_id="c1", keepalive=30), handle or self._handle,
                              track=track, flush=flush, end_of_burst=end_of_burst, acknowledgements=self.acks,
                              open_socket=self.broker.open_socket, clock=self.clock)
        self.thread = threading.Thread(target=self.sub.run, daemon=True)
        self.thread.start()

    def _handle(self, topic, payload):
        with self.delivered:
            self.got.append((topic, payload))
            self.delivered.notify_all()

    def wait_delivered(self, n: int) -> None:
        with self.delivered:
            assert self.delivered.wait_for(lambda: len(self.got) >= n, 5), f"{len(self.got)} of {n} delivered"

    def connected(self) -> "Running":
        """Accept the first connection and read its SUBSCRIBE."""
        self.broker.accept()
        self.broker.read_packet()
        return self

    def tick(self, seconds: float) -> None:
        """Move the clock on and let the loop look at it."""
        self.clock.now += seconds
        self.acks.wake()

    def tick_until_ping(self, step: float = 4.0) -> float:
        """Move the clock on in steps until a PINGREQ arrives; the clock's time then."""
        self.broker.peer.settimeout(0.1)
        try:
            for _ in range(40):
                self.tick(step)
                try:
                    assert self.broker.read_packet() == b"\xc0\x00"
                    return self.clock.now
                except TimeoutError:
                    continue
            raise AssertionError("no PINGREQ")
        finally:
            self.broker.peer.settimeout(5)

    def reconnect(self, connack: bytes = CONNACK) -> bytes:
        """The next connection, moving the clock past the backoff until it comes."""
        return self.broker.accept(connack, nudge=lambda: self.tick(session_mod.RECONNECT_MAX))

    def stop(self) -> None:
        self.sub.stop()
        self.thread.join(5)
        assert not self.thread.is_alive()
        self.sub.close()


@pytest.fixture
def running():
    made = []

    def start(**kw) -> Running:
        made.append(Running(**kw))
        return made[-1]

    yield start
    for r in made:
        if r.thread.is_alive():
            r.stop()


def test_connect_and_subscribe_on_the_wire(running):
    r = running(cfg=MqttConfig(client_id="collector-a", keepalive=30, share_group="farm"))
    connect = r.broker.accept()
    assert connect == b"\x10\x17\x00\x04MQTT\x04\x00\x00\x1e\x00\x0bcollector-a"  # clean session off
    filt = b"$share/farm/printfarm/v1/+/+/+"
    assert r.broker.read_packet() == b"\x82" + bytes([5 + len(filt)]) + b"\x00\x01\x00" + bytes([len(filt)]) + filt + b"\x01"


messages = st.lists(st.tuples(
    st.text(min_size=1, max_size=40),
    st.binary(max_size=400) | st.integers(16_380, 16_400).map(lambda n: bytes(range(256)) * (n // 256) + b"x" * (n % 256)),
    st.sampled_from([0, 1]),
    st.booleans(),  # a PINGRESP after it
), min_size=1, max_size=30)


@settings(max_examples=60, deadline=None)
@given(msgs=messages, cuts=st.lists(st.integers(1, 3000), max_size=20))
def test_every_message_in_order_however_the_stream_is_cut_and_each_qos1_acknowledged_once(msgs, cuts):
    r = Running().connected()
    try:
        stream = b"".join(publish(t, p, q, n) + (b"\xd0\x00" if ping else b"")
                          for n, (t, p, q, ping) in enumerate(msgs, start=1))
        pos = 0
        for cut in cuts + [len(stream)]:
            r.broker.send(stream[pos:pos + cut])
            pos += cut
        r.wait_delivered(len(msgs))
        assert r.got == [(t, p) for t, p, _, _ in msgs]
        expected = [n for n, m in enumerate(msgs, start=1) if m[2] == 1]
        assert r.broker.read_exact(4 * len(expected)) == b"".join(puback(n) for n in expected)
    finally:
        r.stop()


def test_with_track_nothing_is_acknowledged_until_the_writer_says_durable(running):
    tracked = []
    r = running(track=tracked.extend).connected()
    r.broker.send(publish("a/b", b"1", 1, 7) + publish("a/b", b"2", 1, 8) + publish("a/b", b"q0", 0, 0))
    r.wait_delivered(3)
    assert len(tracked) == 2
    r.broker.peer.settimeout(0.2)
    with pytest.raises(TimeoutError):
        r.broker.peer.recv(4)  # not durable yet: no PUBACK
    r.broker.peer.settimeout(5)
    r.acks.acknowledge(tracked)
    assert r.broker.read_exact(8) == puback(7) + puback(8)  # positive control: now they come


def test_a_burst_ends_after_its_messages_and_before_their_tokens_are_tracked(running):
    calls, changed = [], threading.Condition()

    def note(*call):
        with changed:
            calls.append(call)
            changed.notify_all()

    r = running(handle=lambda topic, payload: note("handle", payload), end_of_burst=lambda: note("end"),
                track=lambda tokens: note("track", tokens))
    r.connected()
    r.broker.send(publish("a/b", b"1", 1, 7) + publish("a/b", b"2", 1, 8))
    with changed:
        assert changed.wait_for(lambda: any(c[0] == "track" for c in calls), 5)
    kinds = [c[0] for c in calls]
    assert kinds[kinds.index("handle"):] == ["handle", "handle", "end", "track"]  # (CONNACK's burst ends too)


def test_tokens_of_an_earlier_connection_are_not_acknowledged_on_the_new_one(running):
    tracked = []
    r = running(track=tracked.extend).connected()
    r.broker.send(publish("a/b", b"1", 1, 5))
    r.wait_delivered(1)
    r.broker.peer.close()  # connection lost; the broker will redeliver id 5 itself
    r.reconnect(CONNACK_SESSION_PRESENT)
    r.broker.read_packet()
    r.broker.send(publish("a/b", b"1", 1, 6))
    r.wait_delivered(2)
    r.acks.acknowledge(tracked)  # the old token for 5 and the new one for 6
    assert r.broker.read_exact(4) == puback(6)
    r.stop()
    assert r.broker.peer.recv(10) == b"\xe0\x00"  # a clean DISCONNECT, and no PUBACK for 5


def test_a_handler_that_raises_does_not_stop_the_loop_and_the_message_is_still_acknowledged(running):
    seen = []

    def handle(topic, payload):
        seen.append(payload)
        if payload == b"boom":
            raise ValueError("bug")

    r = running(handle=handle).connected()
    r.broker.send(publish("a/b", b"boom", 1, 7) + publish("a/b", b"ok", 1, 8))
    assert r.broker.read_exact(8) == puback(7) + puback(8)
    assert seen == [b"boom", b"ok"]


@pytest.mark.parametrize("ending", ["close", "malformed", "qos2"])
def test_whatever_ends_a_connection_the_subscriber_connects_again(running, ending):
    r = running().connected()
    if ending == "close":
        r.broker.peer.close()
    elif ending == "malformed":
        r.broker.send(b"\x32\x01\x00")  # a PUBLISH too short to hold its topic
    else:
        r.broker.send(publish("a/b", b"x", 2, 9))  # we subscribed at QoS 1
    if ending != "close":
        assert r.broker.peer.recv(10) == b""  # we closed it
    r.reconnect()
    assert r.broker.read_packet()[:1] == b"\x82"
    assert r.sub.connected


def test_a_refused_connection_is_retried_with_backoff(running, caplog):
    r = running()
    r.broker.accept(b"\x20\x02\x00\x05")  # not authorised
    assert r.broker.peer.recv(10) == b""
    r.reconnect()
    assert r.broker.read_packet()[:1] == b"\x82"
    assert "not authorised" in caplog.text


def test_a_pingreq_goes_out_when_nothing_else_did_and_silence_after_it_ends_the_connection(running):
    r = running().connected()  # keepalive 30 s
    assert r.tick_until_ping() >= 1000 + 0.75 * 30  # not before 3/4 of the keepalive
    r.tick(31)  # no answer at all within the keepalive
    assert r.broker.peer.recv(10) == b""
    r.reconnect()  # and it connects again


def test_any_bytes_after_a_pingreq_keep_the_connection(running):
    r = running().connected()
    r.tick_until_ping()
    r.broker.send(publish("a/b", b"x", 0, 0))  # a backlog may precede the PINGRESP
    r.wait_delivered(1)
    r.tick(31)
    r.broker.send(publish("a/b", b"y", 0, 0))
    r.wait_delivered(2)
    assert r.sub.connected


def test_the_writer_is_asked_to_flush_once_the_socket_goes_quiet(running):
    flushed = threading.Event()
    r = running(track=lambda tokens: None, flush=flushed.set).connected()
    r.broker.send(publish("a/b", b"1", 1, 3))
    r.wait_delivered(1)
    assert not flushed.is_set()
    r.tick(2 * session_mod.IDLE_FLUSH)
    assert flushed.wait(5)


def test_a_refused_subscription_is_logged(running, caplog):
    r = running().connected()
    r.broker.send(b"\x90\x03\x00\x01\x80")
    r.broker.send(publish("a/b", b"x", 0, 0))
    r.wait_delivered(1)
    assert "refused the subscription" in caplog.text


def test_stop_then_close_sends_the_due_acknowledgements_and_a_disconnect(running):
    tracked = []
    r = running(track=tracked.extend).connected()
    r.broker.send(publish("a/b", b"1", 1, 4))
    r.wait_delivered(1)
    r.sub.stop()
    r.thread.join(5)
    r.acks.acknowledge(tracked)  # the writer's last flush, after the loop ended
    r.sub.close()
    assert r.broker.read_exact(6) == puback(4) + b"\xe0\x00"


def test_tls_verifies_the_broker_and_insecure_skips_only_the_host_name():
    import ssl

    from common.tls import TLSConfig
    from server.mqtt import transport

    strict, lax = transport.tls_context(TLSConfig()), transport.tls_context(TLSConfig(insecure=True))
    assert strict.verify_mode == lax.verify_mode == ssl.CERT_REQUIRED
    assert strict.check_hostname and not lax.check_hostname


def test_ready_only_once_the_broker_answered_the_subscription(running):
    """What waits for the collector (its health, the tests' fixtures) waits for SUBACK: a message
    published between CONNACK and SUBACK would not reach a new session."""
    r = running().connected()  # CONNACK sent, SUBSCRIBE read, no SUBACK yet
    assert r.sub.connected and not r.sub.ready
    r.broker.send(b"\x90\x03\x00\x01\x01")  # granted QoS 1
    r.broker.send(publish("a/b", b"x", 0, 0))  # behind the SUBACK: read after it
    r.wait_delivered(1)
    assert r.sub.ready
    r.broker.peer.close()
    r.reconnect()
    r.broker.read_packet()
    assert not r.sub.ready  # a new connection: not until its own SUBACK
