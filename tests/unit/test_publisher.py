"""The publisher's rules for order and loss, against a fake paho client (no network, no sleeps).

The fake behaves like paho 2.x in the ways that matter here: ``publish`` returns an info
with ``rc`` and ``mid`` (it does not raise), unacknowledged QoS 1 messages stay in its
queue until ``drop_out_messages``, and the callbacks are called with paho's signatures.
"""

import logging
import threading
import time

import paho.mqtt.client as mqtt
import pytest

from common import protocol
from agent.config import BrokerConfig, OutboxConfig
from agent.outbox import MemoryOutbox, SQLiteOutbox
from agent.publisher import Publisher

AGENT_TOPIC = protocol.agent_topic("pi-1")


class Reason:
    def __init__(self, text="Success"):
        self.text = text
        self.is_failure = text != "Success"

    def __str__(self):
        return self.text


class Info:
    def __init__(self, rc, mid):
        self.rc, self.mid = rc, mid

    def wait_for_publish(self, timeout=None):
        pass


class Sock:
    def __init__(self):
        self.shut = False

    def shutdown(self, how):
        self.shut = True


class FakeClient:
    def __init__(self, client_id):
        self.client_id = client_id
        self.rc = mqtt.MQTT_ERR_SUCCESS
        self.mid = 0
        self.queue = {}  # mid -> (topic, payload, retain): paho's unacknowledged messages
        self.wire = []  # everything publish() accepted, in order
        self.sock = Sock()
        self.will = None

    # configuration the publisher does
    def will_set(self, topic, payload, qos, retain):
        self.will = (topic, payload, qos, retain)

    def reconnect_delay_set(self, lo, hi):
        self.delays = getattr(self, "delays", []) + [lo]

    def username_pw_set(self, user, password):
        self.credentials = (user, password)

    def connect_async(self, host, port, **k):
        self.connects = getattr(self, "connects", []) + [(host, port)]

    def loop_start(self):
        pass

    def loop_stop(self):
        pass

    def disconnect(self):
        pass

    def socket(self):
        return self.sock

    # paho's publishing
    def publish(self, topic, payload, qos, retain):
        self.mid += 1
        if self.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            self.queue[self.mid] = (topic, payload, retain)
            self.wire.append((topic, payload, retain))
        return Info(self.rc, self.mid)

    def drop_out_messages(self):
        dropped = list(self.queue.values())
        self.queue.clear()
        return dropped

    # the broker's side, driven by the test
    def connack(self, reason="Success"):
        self.on_connect(self, None, {}, Reason(reason), None)

    def lose_connection(self):
        self.on_disconnect(self, None, {}, Reason("Unspecified error"), None)

    def ack(self, n=None):
        """Acknowledge the first n of our messages (and any agent status before them)."""
        mids = list(self.queue)
        if n is not None:
            ours = [m for m in mids if self.queue[m][0] != AGENT_TOPIC][:n]
            mids = [m for m in mids if m <= ours[-1]] if ours else []
        for mid in mids:
            del self.queue[mid]
            self.on_publish(self, None, mid, Reason(), None)

    def payloads(self, topic_part="/t"):
        return [p for t, p, _ in self.wire if topic_part in t]


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def outbox(tmp_path):
    box = SQLiteOutbox(tmp_path / "outbox.sqlite3", OutboxConfig())
    yield box
    box.close()


def make(outbox, **kw):
    pub = Publisher("pi-1", BrokerConfig(), outbox=outbox, printers=["p1"], client_factory=FakeClient, **kw)
    return pub, pub.client


def stored(outbox):
    return [p for _, _, p, _ in outbox.peek_batch(10_000)]


def send(pub, *payloads, topic="lab/p1/t"):
    for p in payloads:
        pub.send(topic, p)


def test_connected_messages_go_straight_to_the_broker_and_never_to_disk(outbox):
    pub, client = make(outbox)
    client.connack()
    send(pub, b"a", b"b")
    assert client.payloads() == [b"a", b"b"]
    assert outbox.pending() == 0 and outbox.last_id() == 0  # nothing was ever written


def test_unacknowledged_messages_are_taken_back_in_order_when_the_connection_drops(outbox):
    pub, client = make(outbox)
    client.connack()
    send(pub, b"1", b"2", b"3")
    client.ack(1)  # "1" reached the broker
    client.lose_connection()
    send(pub, b"4")
    assert stored(outbox) == [b"2", b"3", b"4"]
    assert client.queue == {}, "paho must not resend them itself, out of our order"


def test_outbox_is_replayed_oldest_first_before_anything_newer(outbox):
    pub, client = make(outbox)
    send(pub, b"1", b"2", b"3")  # never connected yet
    client.connack()
    send(pub, b"4")  # arrives before the worker replayed: must wait its turn
    assert client.payloads() == []
    pub.pump()
    assert client.payloads() == [b"1", b"2", b"3", b"4"]
    client.ack()
    pub.pump()
    assert outbox.pending() == 0
    send(pub, b"5")
    assert client.payloads()[-1] == b"5" and outbox.pending() == 0


def test_replayed_messages_leave_the_outbox_only_after_the_broker_acknowledged_them(outbox):
    pub, client = make(outbox, window=2)  # removal in batches of window // 2 = 1
    send(pub, b"1", b"2", b"3")
    client.connack()
    pub.pump()
    client.ack(1)
    pub.pump()
    assert stored(outbox) == [b"2", b"3"]
    client.lose_connection()  # 2 and 3 were sent but not acknowledged
    client.connack()
    pub.pump()
    client.ack()
    pub.pump()
    assert client.payloads() == [b"1", b"2", b"3", b"2", b"3"]
    assert outbox.pending() == 0


def test_acknowledged_replays_are_deleted_half_a_window_per_transaction(outbox):
    pub, client = make(outbox, window=10)
    send(pub, *[b"%d" % i for i in range(10)])
    client.connack()
    pub.pump()
    client.ack(4)
    pub.pump()
    assert outbox.pending() == 10, "4 < half a window: not worth a write yet"
    client.ack(1)
    pub.pump()
    assert outbox.pending() == 5
    client.ack()
    pub.pump()
    assert outbox.pending() == 0, "caught up: the rest goes at once"


def test_live_messages_sent_during_a_replay_follow_the_replayed_ones_after_a_drop(outbox):
    pub, client = make(outbox)
    send(pub, b"1", b"2")
    client.connack()
    pub.pump()  # 1 and 2 handed over, not acknowledged
    send(pub, b"3")  # nothing left to hand over: goes straight to paho, not to disk
    assert outbox.last_id() == 2
    client.lose_connection()
    assert stored(outbox) == [b"1", b"2", b"3"]


def test_replay_hands_over_one_window_at_a_time(outbox):
    pub, client = make(outbox, window=5)
    send(pub, *[b"%d" % i for i in range(12)])
    client.connack()
    pub.pump()
    assert len(client.payloads()) == 5
    pub.pump()
    assert len(client.payloads()) == 5, "no more until acknowledgements come back"
    client.ack()
    pub.pump()
    assert len(client.payloads()) == 10 and outbox.pending() == 7


def test_a_publish_paho_refuses_by_return_code_is_kept_in_the_outbox(outbox):
    pub, client = make(outbox)
    client.connack()
    client.rc = mqtt.MQTT_ERR_QUEUE_SIZE
    send(pub, b"1")
    assert stored(outbox) == [b"1"]
    client.rc = mqtt.MQTT_ERR_SUCCESS
    send(pub, b"2")
    assert stored(outbox) == [b"1", b"2"], "must not overtake the refused one"
    pub.pump()
    assert client.payloads() == [b"1", b"2"]


def test_retained_status_is_republished_after_a_reconnect_once_the_backlog_is_handed_over(outbox):
    pub, client = make(outbox)
    client.connack()
    pub.send("lab/p1/status", b"idle", retain=True)
    client.ack()
    client.lose_connection()
    send(pub, b"t1")
    client.connack()
    pub.pump()
    after = [(t, p, r) for t, p, r in client.wire if t != AGENT_TOPIC]
    assert after == [("lab/p1/status", b"idle", True), ("lab/p1/t", b"t1", False),
                     ("lab/p1/status", b"idle", True)]
    pub.pump()
    assert len(client.wire) == len(after) + 2, "republished once per reconnect, not every pump"


def test_connecting_announces_online_with_the_drop_count_and_sets_an_offline_will():
    box = MemoryOutbox(max_messages=3)
    pub, client = make(box)
    assert client.will[0] == AGENT_TOPIC and b'"offline"' in client.will[1] and client.will[3] is True
    send(pub, *[b"%d" % i for i in range(5)])  # 2 dropped while away
    client.connack()
    topic, payload, retain = client.wire[0]
    status = protocol.decode(protocol.parse_topic(topic), payload, 2_000_000_000_000)
    assert (status.state, status.dropped, retain) == ("online", 2, True)


def test_drops_while_connected_are_published_as_an_agent_status():
    box = MemoryOutbox(max_messages=3)
    pub, client = make(box)
    client.connack()
    client.rc = mqtt.MQTT_ERR_QUEUE_SIZE
    send(pub, *[b"%d" % i for i in range(5)])
    client.rc = mqtt.MQTT_ERR_SUCCESS
    pub.pump()
    statuses = [p for t, p, _ in client.wire if t == AGENT_TOPIC]
    assert b'"dropped":2' in statuses[-1]


def test_the_wait_for_an_acknowledgement_comes_from_the_broker_config(outbox):
    clock = Clock()
    pub = Publisher("pi-1", BrokerConfig(servers=["n1:1", "n2:2"], ack_timeout=2), outbox=outbox,
                    client_factory=FakeClient, monotonic=clock)
    client = pub.client
    pub.start()
    client.connack()
    send(pub, b"1")
    clock.now += 2.5
    pub.pump()
    assert client.sock.shut  # a cluster node holding publishes while it has no stream leader
    pub.stop()


def test_a_broker_that_stops_acknowledging_has_its_connection_dropped(outbox):
    clock = Clock()
    pub, client = make(outbox, monotonic=clock, ack_timeout=10)
    client.connack()
    send(pub, b"1")
    clock.now += 9
    pub.pump()
    assert not client.sock.shut
    clock.now += 2
    pub.pump()
    assert client.sock.shut


def test_the_worker_wakes_when_the_oldest_publish_reaches_ack_timeout(outbox):
    # Not a tick later: on a cluster every second past ack_timeout delays the move to a node
    # that stores again (docs/scaling.md, node-loss recovery).
    clock = Clock()
    pub, client = make(outbox, monotonic=clock, ack_timeout=1)
    pub.tick = 5.0
    client.connack()
    assert pub._until_next_duty() == 5.0  # nothing in flight
    send(pub, b"1")
    clock.now += 0.75
    assert abs(pub._until_next_duty() - 0.25) < 1e-6


def test_the_worker_drops_a_silent_connection_at_ack_timeout_not_at_its_next_tick(outbox):
    pub, client = make(outbox, ack_timeout=1)
    pub.tick = 60.0  # a tick far beyond ack_timeout: only the deadline can end the worker's wait
    pub.start()
    client.connack()
    send(pub, b"1")  # never acknowledged
    deadline = time.monotonic() + 20  # generous: a loaded machine; the old worker took 60 s
    while not client.sock.shut and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.sock.shut
    pub.stop()


def test_a_connection_not_answered_within_ack_timeout_is_closed_and_the_next_node_tried(outbox, caplog):
    # A NATS node whose session stream has no leader holds a CONNECT 4 s per JetStream request.
    clock = Clock()
    pub = Publisher("pi-1", BrokerConfig(servers=["n1:1", "n2:2"], ack_timeout=1), outbox=outbox,
                    client_factory=FakeClient, monotonic=clock)
    client = pub.client
    pub.start()
    client.on_pre_connect(client, None)  # paho starts an attempt: TCP up, CONNECT sent
    clock.now += 0.5
    pub.pump()
    assert not client.sock.shut
    clock.now += 0.6
    pub.pump()
    assert client.sock.shut
    client.lose_connection()
    assert client.connects[-1] == ("n2", 2)
    assert "did not answer the connection within ack_timeout (1 s)" in caplog.text
    for _ in range(6):  # rounds of nodes that take the connection and hold it: no doubling
        client.on_pre_connect(client, None)
        clock.now += 1.1
        pub.pump()
        client.lose_connection()
    assert client.delays[-1] == BrokerConfig().reconnect_min
    client.on_pre_connect(client, None)
    client.connack()  # answered in time: nothing to close
    client.sock.shut = False
    clock.now += 5
    pub.pump()
    assert not client.sock.shut
    pub.stop()


def test_stop_keeps_unacknowledged_messages_for_the_next_start(tmp_path):
    path = tmp_path / "outbox.sqlite3"
    pub, client = make(SQLiteOutbox(path, OutboxConfig()))
    client.connack()
    send(pub, b"1", b"2")
    client.ack(1)
    pub.stop()
    again = SQLiteOutbox(path, OutboxConfig())
    assert stored(again) == [b"2"]
    again.close()


def test_a_refused_login_is_logged_once_naming_the_keys_and_never_the_password(tmp_path, caplog, monkeypatch):
    monkeypatch.setenv("MQTT_PW", "hunter2-secret")
    broker = BrokerConfig(username="pi-1", password_env="MQTT_PW")
    pub = Publisher("pi-1", broker, outbox=MemoryOutbox(), client_factory=FakeClient)
    caplog.set_level(logging.DEBUG)
    for _ in range(3):
        pub.client.connack("Not authorized")
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    text = errors[0].getMessage()
    assert "Not authorized" in text and "username" in text and "password_file" in text and "retrying" in text
    assert "hunter2" not in caplog.text
    assert not pub.connected


def test_a_disconnect_while_a_sender_holds_the_lock_is_finished_by_the_worker(outbox):
    # paho may call on_disconnect holding its own lock, which a sender holding ours waits for:
    # on_disconnect must not wait for ever, and the messages must still come back in order.
    pub, client = make(outbox)
    pub.lock_wait = 0.01
    client.connack()
    client.ack()
    send(pub, b"1")
    held, release = threading.Event(), threading.Event()

    def sender_inside_paho():
        with pub._lock:
            held.set()
            release.wait(5)

    thread = threading.Thread(target=sender_inside_paho)
    thread.start()
    held.wait(5)
    client.lose_connection()
    assert not pub.connected
    release.set()
    thread.join(5)
    send(pub, b"2")
    pub.pump()
    assert stored(outbox) == [b"1", b"2"] and client.queue == {}


def test_a_message_over_the_protocols_cap_is_not_sent_nor_kept_and_logged_once(outbox, caplog):
    pub, client = make(outbox)
    client.connack()
    big = b"x" * (protocol.MAX_PAYLOAD_BYTES + 1)
    send(pub, big, big)
    client.lose_connection()
    send(pub, big)
    assert client.payloads() == [] and stored(outbox) == []
    assert len([r for r in caplog.records if "over the protocol's cap" in r.getMessage()]) == 1
    send(pub, b"x" * protocol.MAX_PAYLOAD_BYTES)  # at the cap: kept for the broker as usual
    assert stored(outbox) == [b"x" * protocol.MAX_PAYLOAD_BYTES]


def test_with_several_brokers_the_agent_moves_to_the_next_on_a_loss_and_replays_in_order(outbox):
    broker = BrokerConfig(servers=["n1:1883", "n2:1884", "[::1]:1885"])
    pub = Publisher("pi-1", broker, outbox=outbox, printers=["p1"], client_factory=FakeClient)
    client = pub.client
    pub.start()
    client.connack()
    send(pub, b"1", b"2")
    client.ack(1)
    client.lose_connection()  # "2" unacknowledged: back to the outbox
    client.on_connect_fail(client, None)  # n2 does not answer either
    assert client.connects == [("n1", 1883), ("n2", 1884), ("::1", 1885)]
    client.connack()
    send(pub, b"3")
    pub.pump()
    assert client.payloads()[-2:] == [b"2", b"3"]  # the replay first, then the live message
    pub.stop()


def test_with_several_brokers_the_backoff_grows_per_round_of_the_list_not_per_address(outbox):
    broker = BrokerConfig(servers=["n1:1", "n2:2", "n3:3"], reconnect_min=0.5, reconnect_max=3)
    pub = Publisher("pi-1", broker, outbox=outbox, client_factory=FakeClient)
    client = pub.client
    pub.start()
    client.connack()
    client.delays = []
    client.lose_connection()
    for _ in range(7):  # nobody answers: two full rounds and a bit
        client.on_connect_fail(client, None)
    assert client.delays == [0.5, 0.5, 0.5, 1.0, 1.0, 1.0, 2.0, 2.0]
    client.connack()
    client.lose_connection()
    assert client.delays[-1] == 0.5  # a new loss starts from the shortest wait again
    pub.stop()


def test_one_broker_is_never_switched(outbox):
    pub = Publisher("pi-1", BrokerConfig(host="b", port=1), outbox=outbox, client_factory=FakeClient)
    pub.start()
    pub.client.connack()
    pub.client.lose_connection()
    assert pub.client.connects == [("b", 1)]
    pub.stop()


@pytest.mark.parametrize("text", ["n1:x", "a b:1", "", "h:70000", "user@h:1"])
def test_a_broker_address_that_is_not_host_port_is_a_config_error_naming_it(text):
    with pytest.raises(Exception) as err:
        BrokerConfig(servers=["ok:1", text])
    assert "servers[1]" in str(err.value) and "host:port" in str(err.value)
