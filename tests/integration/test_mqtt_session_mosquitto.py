"""The collector's MQTT codec and session against a real Mosquitto 2.0: the broker accepts the
bytes we send and we decode what it sends; a persistent session redelivers exactly what was
not acknowledged; $share splits the stream on MQTT 3.1.1; TLS with a client certificate and a
password connects, and a wrong password is refused without ending the loop."""

from __future__ import annotations

import select
import socket
import threading

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from common.tls import TLSConfig
from devkit.pipeline import wait_for
from server.config import MqttConfig
from server.mqtt import Subscriber, codec, transport
from server.mqtt.codec import ConnAck, Decoder, PingResp, Publish, SubAck
from common.protocol import MAX_PACKET_BYTES
from devkit.servers import Mosquitto
from devkit.servers.mosquitto import MOSQUITTO_CONFIG
from tests.integration.collector_helpers import BROKER_CONF, broker as start_broker, publish_raw
from tests.integration.test_agent_tls import PASSWORD, USER, tls_broker  # noqa: F401 - a fixture

pytestmark = pytest.mark.integration


@pytest.fixture
def mosquitto(tmp_path):
    running = start_broker(tmp_path)
    yield running
    running.stop()


class RawClient:
    """Our codec over a plain blocking socket: the broker's answers, packet by packet."""

    def __init__(self, broker, client_id: str, clean: bool = False):
        self.sock = socket.create_connection((broker.host, broker.port), timeout=5)
        self.decoder, self.pending = Decoder(), []
        self.sock.sendall(codec.connect(client_id, 30, clean_session=clean))
        self.connack = self.next()

    def next(self):
        while not self.pending:
            data = self.sock.recv(65536)
            assert data, "the broker closed the connection"
            self.pending += self.decoder.feed(data)
        return self.pending.pop(0)

    def take(self, n: int) -> list:
        return [self.next() for _ in range(n)]

    def close(self, clean: bool = True) -> None:
        if clean:
            self.sock.sendall(codec.DISCONNECT)
        self.sock.close()


def test_connect_subscribe_receive_acknowledge_ping_and_disconnect(mosquitto):
    client = RawClient(mosquitto, "raw-1")
    assert client.connack == ConnAck(session_present=False, return_code=0)
    client.sock.sendall(codec.subscribe(1, [("t/#", 1), ("q0/#", 0)]))
    assert client.next() == SubAck(1, (1, 0))
    publish_raw(mosquitto, [("t/a", b"one"), ("q0/b", b"two")])
    first, second = client.take(2)
    assert (first.topic, first.payload, first.qos, first.dup) == ("t/a", b"one", 1, False) and first.packet_id
    assert second == Publish("q0/b", b"two", 0, 0)  # granted QoS 0: no packet identifier
    client.sock.sendall(codec.pubacks([first.packet_id]) + codec.PINGREQ)
    assert client.next() == PingResp()
    client.sock.sendall(codec.DISCONNECT)
    assert client.sock.recv(10) == b""  # the broker closes after a DISCONNECT


def test_a_persistent_session_redelivers_exactly_the_unacknowledged_messages(mosquitto):
    client = RawClient(mosquitto, "raw-2")
    client.sock.sendall(codec.subscribe(1, [("t/#", 1)]))
    assert client.next() == SubAck(1, (1,))
    client.close()
    publish_raw(mosquitto, [("t/x", b"1"), ("t/x", b"2"), ("t/x", b"3")])  # queued while away

    client = RawClient(mosquitto, "raw-2")
    assert client.connack.session_present
    got = client.take(3)
    assert [p.payload for p in got] == [b"1", b"2", b"3"]
    client.sock.sendall(codec.pubacks([got[0].packet_id]))
    client.sock.sendall(codec.PINGREQ)
    assert client.next() == PingResp()  # the PUBACK went before it: the broker has it
    client.close(clean=False)  # as a SIGKILL would

    client = RawClient(mosquitto, "raw-2")
    again = client.take(2)
    assert [(p.payload, p.packet_id, p.dup) for p in again] == [(b"2", got[1].packet_id, True),
                                                               (b"3", got[2].packet_id, True)]
    client.sock.sendall(codec.pubacks([p.packet_id for p in again]))
    client.close()
    publish_raw(mosquitto, [("t/x", b"4")])
    client = RawClient(mosquitto, "raw-2")
    assert client.next().payload == b"4"  # and nothing acknowledged came back before it
    client.close()


def test_a_shared_subscription_on_mqtt_3_1_1_splits_the_stream(mosquitto):
    members = [RawClient(mosquitto, f"member-{i}", clean=True) for i in range(2)]
    for member in members:
        member.sock.sendall(codec.subscribe(1, [("$share/farm/t/#", 1)]))
        assert member.next() == SubAck(1, (1,))
    publish_raw(mosquitto, [("t/x", str(i).encode()) for i in range(20)])
    received: dict[int, list[bytes]] = {0: [], 1: []}
    while sum(map(len, received.values())) < 20:
        readable, _, _ = select.select([m.sock for m in members], [], [], 5)
        assert readable, f"only {received} arrived"
        for i, member in enumerate(members):
            if member.sock in readable:
                received[i] += [p.payload for p in member.decoder.feed(member.sock.recv(65536))]
    assert sorted(received[0] + received[1], key=int) == [str(i).encode() for i in range(20)]
    assert received[0] and received[1], "the broker should hand each member a share"


def wait_until_subscribed(mosquitto, got: list) -> None:
    """Publish a probe until it comes back: only then is the subscription in place."""
    probe = "printfarm/v1/lab/probe/status"
    for _ in range(40):
        publish_raw(mosquitto, [(probe, b"probe")])
        try:
            wait_for(lambda: any(topic == probe for topic, _ in got), 0.5, "the probe")
            return
        except AssertionError:
            continue
    raise AssertionError("the subscription never took effect")


@pytest.fixture
def uncapped(tmp_path):
    """The harness's broker without its max_packet_size, as Mosquitto is by default."""
    cap = f"max_packet_size {MAX_PACKET_BYTES}\n"
    assert cap in MOSQUITTO_CONFIG
    running = Mosquitto(tmp_path / "uncapped", config_text=MOSQUITTO_CONFIG.replace(cap, ""),
                        extra_conf=BROKER_CONF).start()
    yield running
    running.stop()


def test_a_message_over_the_decoders_limit_is_delivered_cut_and_acknowledged_not_fatal(uncapped):
    """A broker without max_packet_size passes a 2 MiB message on: the session hands it over cut
    at 1 MiB (ingest rejects it as too_large), acknowledges it and reads on, on one connection."""
    mosquitto = uncapped
    got, connects = [], []

    def open_socket(cfg, timeout):
        connects.append(1)
        return transport.open_socket(cfg, timeout)

    cfg = MqttConfig(host=mosquitto.host, port=mosquitto.port, client_id="collector-big")
    sub = Subscriber(cfg, lambda topic, payload: got.append((topic, len(payload))), open_socket=open_socket)
    thread = threading.Thread(target=sub.run, daemon=True)
    thread.start()
    try:
        wait_until_subscribed(mosquitto, got)
        topic = "printfarm/v1/lab/p1/telemetry"
        publish_raw(mosquitto, [(topic, b"x" * (2 << 20)), (topic, b"{}")])
        mine = lambda: [entry for entry in got if entry[0] == topic]  # noqa: E731
        wait_for(lambda: len(mine()) == 2, 20, "both messages")
        assert mine() == [(topic, codec.MAX_PACKET - 2 - len(topic) - 2), (topic, 2)]
        assert len(connects) == 1, "the big message must not cost the connection"
    finally:
        sub.stop()
        thread.join(10)
        sub.close()
    again = RawClient(mosquitto, "collector-big")
    again.sock.sendall(codec.PINGREQ)
    assert again.next() == PingResp(), "both were acknowledged: nothing comes back before the PINGRESP"
    again.close()


# -- the whole session over TLS (the broker and its PKI: test_agent_tls.py) -----------------------

def tls_config(tmp_path, broker, pki, password: str) -> MqttConfig:
    secret = tmp_path / "password"
    secret.write_text(password)
    return MqttConfig(host=broker.host, port=broker.port, client_id="collector-tls", username=USER,
                      password_file=str(secret), keepalive=10,
                      tls=TLSConfig(ca=str(pki["ca"]), cert=str(pki["cert"]), key=str(pki["key"])))


def tls_publish(broker, pki, topic: str, payload: bytes) -> None:
    done = threading.Event()
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv311)
    client.tls_set(ca_certs=str(pki["ca"]), certfile=str(pki["cert"]), keyfile=str(pki["key"]))
    client.username_pw_set(USER, PASSWORD)
    client.on_publish = lambda *args: done.set()
    client.connect(broker.host, broker.port, 30)
    client.loop_start()
    client.publish(topic, payload, qos=1)
    assert done.wait(10), "the broker did not confirm the publish"
    client.loop_stop()
    client.disconnect()


def test_the_session_over_tls_with_client_certificate_and_password(tmp_path, tls_broker):
    broker, pki = tls_broker, tls_broker.pki
    got = []
    sub = Subscriber(tls_config(tmp_path, broker, pki, PASSWORD), lambda topic, payload: got.append((topic, payload)))
    thread = threading.Thread(target=sub.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: sub.connected, 10, "the collector to connect over TLS")
        wait_for(lambda: b"SUBACK" in (broker.dir / "mosquitto.log").read_bytes(), 10, "the subscription")
        tls_publish(broker, pki, "printfarm/v1/lab/p1/telemetry", b"{}")
        wait_for(lambda: got, 10, "the message over TLS")
        assert got == [("printfarm/v1/lab/p1/telemetry", b"{}")]
    finally:
        sub.stop()
        thread.join(10)
        sub.close()


def test_a_wrong_password_is_refused_logged_and_retried_not_fatal(tmp_path, tls_broker, caplog):
    broker, pki = tls_broker, tls_broker.pki
    sub = Subscriber(tls_config(tmp_path, broker, pki, "wrong"), lambda topic, payload: None)
    thread = threading.Thread(target=sub.run, daemon=True)
    thread.start()
    try:
        wait_for(lambda: "refused the connection" in caplog.text, 10, "the refusal to be logged")
        assert thread.is_alive() and not sub.connected
    finally:
        sub.stop()
        thread.join(10)
        sub.close()
