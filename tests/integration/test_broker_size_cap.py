"""The broker refuses a packet over the protocol's cap (the harness config, as shipped): the
client that sent it is disconnected and its message never queued, while the collector's
persistent session, offline meanwhile, gets every message of the other agents."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from common import protocol
from devkit.pipeline import wait_for
from tests.integration.collector_helpers import publish_raw

pytestmark = pytest.mark.integration

BIG = b"x" * 200_000
OTHERS = 100


class Session:
    """The collector's persistent QoS 1 session: received messages by topic."""

    def __init__(self, broker):
        self.got: list[tuple[str, int]] = []
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="collector-cap", clean_session=False,
                             protocol=mqtt.MQTTv311)
        self.subscribed = threading.Event()
        self.c.on_connect = lambda c, *a: c.subscribe("printfarm/v1/#", qos=1)
        self.c.on_subscribe = lambda *a: self.subscribed.set()
        self.c.on_message = lambda c, u, m: self.got.append((m.topic, len(m.payload)))
        self.broker = broker

    def connect(self):
        """Connected and subscribed: connected alone, a message sent before the broker has the
        subscription is routed to no one."""
        self.subscribed.clear()
        self.c.connect(self.broker.host, self.broker.port, keepalive=10)
        self.c.loop_start()
        wait_for(self.subscribed.is_set, 10, "the collector session's subscription")

    def disconnect(self):
        self.c.disconnect()
        self.c.loop_stop()


def publish_oversized(broker, topic: str) -> object:
    """Publish BIG at QoS 1 and return how the broker ended the connection."""
    ended, why = threading.Event(), []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_disconnect = lambda c, u, f, rc, p: (why.append(rc), ended.set())
    client.connect(broker.host, broker.port)
    assert client.publish(topic, BIG, qos=1).rc == mqtt.MQTT_ERR_SUCCESS
    wait_for(lambda: client.loop(0.05) is not None and ended.is_set(), 10, "the broker to end the connection")
    return why[0]


def test_an_oversized_message_is_refused_and_every_other_agents_message_arrives(mosquitto):
    session = Session(mosquitto)
    session.connect()
    session.disconnect()  # the collector is down: the broker queues for it
    north = protocol.printer_topic("north", "p1", "telemetry")
    south = [(protocol.printer_topic("south", f"p{i % 5}", "telemetry"), b"m%d" % i) for i in range(OTHERS)]
    # The broker says why before it closes, but it closes while the client is still sending the
    # rest, and on a busy machine the reset can reach the client before the reason does.
    reasons = [str(publish_oversized(mosquitto, north)) for _ in range(4)]
    assert set(reasons) <= {"Packet too large", "Unspecified error"} and "Packet too large" in reasons, reasons
    publish_raw(mosquitto, south + [(north, b"small, after the refusals")])
    session.connect()
    wait_for(lambda: len(session.got) >= OTHERS + 1, 20, "every queued message")
    assert sorted(t for t, size in session.got if t != north) == sorted(t for t, _ in south)
    assert [size for t, size in session.got if t == north] == [len(b"small, after the refusals")]
    session.disconnect()


def test_a_message_at_the_protocols_cap_passes_the_broker(mosquitto):
    session = Session(mosquitto)
    session.connect()
    topic = protocol.printer_topic("a" * protocol.MAX_ID_LEN, "b" * protocol.MAX_ID_LEN, "telemetry")
    publish_raw(mosquitto, [(topic, b"x" * protocol.MAX_PAYLOAD_BYTES)])
    wait_for(lambda: session.got, 10, "the message at the cap")
    assert session.got == [(topic, protocol.MAX_PAYLOAD_BYTES)]
    session.disconnect()
