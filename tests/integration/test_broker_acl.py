"""The shipped broker config, ACL and scripts, started as a real Mosquitto.

deploy/central/setup.sh makes .env, a CA, the broker's certificate and the collector's account;
add-agent.sh adds two agents. The shipped mosquitto.conf runs with only its container paths,
ports and log destination rewritten, TLS listener included. Clients speak MQTT 5, so a refused
publish comes back as a reason code; each refusal is also checked where it matters, at a
subscriber that must receive nothing (what an MQTT 3.1.1 client would see).
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import ssl
import subprocess
import threading
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from common import protocol
from devkit.pipeline import wait_for
from devkit.servers import Mosquitto, free_port

pytestmark = pytest.mark.integration

CENTRAL = Path(__file__).resolve().parents[2] / "deploy" / "central"


# -- the broker, as shipped -----------------------------------------------------------------------

def _run(*args: str, env: dict) -> str:
    done = subprocess.run([str(CENTRAL / args[0]), *args[1:]], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
    return done.stdout


def _recording_mosquitto_passwd(central: Path) -> dict:
    """mosquitto_passwd behind a wrapper that writes down every command line it was given."""
    wrapper = central / "mosquitto_passwd"
    wrapper.write_text('#!/bin/sh\nprintf \'%s\\n\' "$*" >> "$ARGV_LOG"\nexec mosquitto_passwd "$@"\n')
    wrapper.chmod(0o755)
    return {"MOSQUITTO_PASSWD": str(wrapper), "ARGV_LOG": str(central / "argv.log")}


def _shipped_config(central: Path, tls_port: int) -> str:
    """The shipped mosquitto.conf with container paths, ports and log destination rewritten."""
    text = (CENTRAL / "mosquitto" / "mosquitto.conf").read_text()
    for old, new in (("/mosquitto/config/", f"{central}/mosquitto/"), ("/mosquitto/certs/", f"{central}/certs/"),
                     ("/mosquitto/data/", "{dir}/"), ("listener 8883\n", f"listener {tls_port} 127.0.0.1\n"),
                     ("listener 1883\n", "listener {port} 127.0.0.1\n"),
                     ("log_dest stdout\n", "log_dest file {dir}/mosquitto.log\n")):
        assert text.count(old) >= 1, f"the shipped config no longer has {old!r}"
        text = text.replace(old, new)
    return text + "\nuser {user}\n"  # as root, mosquitto would drop to a user without our files


@pytest.fixture(scope="module")
def broker(tmp_path_factory):
    central = tmp_path_factory.mktemp("central")
    (central / "mosquitto").mkdir()
    shutil.copy(CENTRAL / ".env.example", central)
    shutil.copy(CENTRAL / "mosquitto" / "acl", central / "mosquitto")
    env = {**os.environ, "CENTRAL_DIR": str(central), **_recording_mosquitto_passwd(central)}
    _run("setup.sh", env=env)  # writes .env and stops, so the operator can set the host name
    dotenv = central / ".env"
    dotenv.write_text(dotenv.read_text().replace("BROKER_HOSTNAME=mqtt.printfarm.example", "BROKER_HOSTNAME=localhost")
                      .replace("GRAFANA_HOSTNAME=grafana.printfarm.example", "GRAFANA_HOSTNAME=grafana.localhost"))
    _run("setup.sh", env=env)
    _run("add-agent.sh", "pi-north", "north-lab", "p1", "p2", env=env)
    _run("add-agent.sh", "pi-south", "south-lab", "p3", env=env)
    tls_port = free_port()
    server = Mosquitto(central / "run", config_text=_shipped_config(central, tls_port))
    server.start()
    server.tls_port = tls_port
    server.central = central
    server.env = env
    yield server
    server.stop()


def _secret(broker, user: str) -> str:
    if user == "collector":
        line = next(l for l in (broker.central / ".env").read_text().splitlines()
                    if l.startswith("COLLECTOR_MQTT_PASSWORD="))
        return line.split("=", 1)[1]
    return (broker.central / "agents" / user / "mqtt-password").read_text().strip()


# -- clients ---------------------------------------------------------------------------------------

class Client:
    """An MQTT 5 client that records what it is told: CONNACK, PUBACKs, SUBACKs, messages."""

    def __init__(self, broker, user: str | None, password: str | None = None, tls: bool = True,
                 will_topic: str | None = None):
        self.messages: queue.Queue = queue.Queue()
        self.connack: queue.Queue = queue.Queue()
        self.acks: dict[int, queue.Queue] = {}
        self.id = f"t-{uuid.uuid4().hex[:8]}"
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.id, protocol=mqtt.MQTTv5)
        if user:
            self.c.username_pw_set(user, password if password is not None else _secret(broker, user))
        if tls:
            self.c.tls_set(ca_certs=str(broker.central / "certs" / "ca.crt"),
                           cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)
        if will_topic:
            self.c.will_set(will_topic, b"offline", qos=1)  # not retained: tests stay independent
        self.c.on_connect = lambda c, u, f, rc, p: self.connack.put(rc)
        self.c.on_message = lambda c, u, m: self.messages.put((m.topic, m.payload))
        self.c.on_publish = lambda c, u, mid, rc, p: self._ack(mid, rc)
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self._ack(mid, rcs)
        # Over TLS by the name in the broker's certificate (setup.sh made it for "localhost").
        host, port = ("localhost", broker.tls_port) if tls else (broker.host, broker.port)
        self.c.connect(host, port, keepalive=10)
        self.c.loop_start()
        self.reason = self.connack.get(timeout=10)

    def _ack(self, mid, rc):
        self.acks.setdefault(mid, queue.Queue()).put(rc)

    def _wait_ack(self, mid):
        return self.acks.setdefault(mid, queue.Queue()).get(timeout=10)

    def publish(self, topic: str, payload: bytes = b"x", retain: bool = False):
        """Reason code of the PUBACK (QoS 1)."""
        info = self.c.publish(topic, payload, qos=1, retain=retain)
        return self._wait_ack(info.mid)

    def subscribe(self, topic: str):
        result, mid = self.c.subscribe(topic, qos=1)
        return self._wait_ack(mid)[0]

    def received(self) -> list[tuple[str, bytes]]:
        """What the broker has sent this client so far. The positive control of "nothing (more)
        arrived": a SUBACK round trip. The broker answers on this connection in order, after any
        message it routed here before (everything a PUBACK'd publish routed: fewer than the
        20 in flight per client here), and paho hands packets on in order."""
        self.subscribe(f"printfarm/sync/{uuid.uuid4().hex}")
        out = []
        while not self.messages.empty():
            out.append(self.messages.get_nowait())
        return out

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def clients(broker):
    made = []

    def make(user, password=None, tls=True, will_topic=None) -> Client:
        client = Client(broker, user, password, tls, will_topic)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def watcher(clients):
    """The collector's account, subscribed to everything it may read."""
    reader = clients("collector", tls=False)
    assert not reader.reason.is_failure, reader.reason
    assert not reader.subscribe("printfarm/#").is_failure
    return reader


def _not_authorised(reason) -> bool:
    return reason.is_failure and reason.value == 0x87


# -- the tests ---------------------------------------------------------------------------------------

def test_an_agent_publishes_its_own_printers_and_its_status_over_tls(clients, watcher):
    north = clients("pi-north")
    assert not north.reason.is_failure, north.reason
    mine = ["printfarm/v1/north-lab/p1/telemetry", "printfarm/v1/north-lab/p2/status",
            "printfarm/v1/north-lab/p1/event", "printfarm/v1/north-lab/p1/info", "printfarm/v1/agent/pi-north/status"]
    for topic in mine:
        assert not north.publish(topic).is_failure, topic
    assert sorted(t for t, _ in watcher.received()) == sorted(mine)


def test_an_agent_cannot_publish_another_agents_printers_or_status(clients, watcher):
    south = clients("pi-south")
    for topic in ("printfarm/v1/north-lab/p1/telemetry", "printfarm/v1/south-lab/p1/telemetry",
                  "printfarm/v1/north-lab/p1/info",
                  "printfarm/v1/agent/pi-north/status", "printfarm/v1/north-lab/p3/status",
                  "printfarm/v1/south-lab/p3", "printfarm/v1/south-lab/p3/a/b",
                  "printfarm/collector/collector/status"):
        assert _not_authorised(south.publish(topic)), topic
    assert not south.publish("printfarm/v1/south-lab/p3/telemetry").is_failure
    # The refused ones never reached a subscriber; the allowed one, sent last, did.
    assert [t for t, _ in watcher.received()] == ["printfarm/v1/south-lab/p3/telemetry"]


def test_an_agent_receives_nothing_it_subscribes_to(clients, watcher):
    north = clients("pi-north")
    north.subscribe("printfarm/#")  # Mosquitto grants wildcards and checks each delivery
    south = clients("pi-south")
    assert not south.publish("printfarm/v1/south-lab/p3/telemetry").is_failure
    assert [t for t, _ in watcher.received()] == ["printfarm/v1/south-lab/p3/telemetry"]
    assert north.received() == []


def _vanish(client: Client) -> None:
    """Drop the connection without DISCONNECT, as a Pi losing power: the broker sends the will."""
    client.c.loop_stop()
    client.c.socket().close()


def test_an_agents_last_will_is_delivered_only_on_its_own_status(clients, watcher, broker):
    vanished = [clients("pi-north", will_topic="printfarm/v1/agent/pi-south/status"),
                clients("pi-north", will_topic="printfarm/v1/agent/pi-north/status")]
    for client in vanished:
        _vanish(client)
    # The broker logs each loss as it handles it, will included: then both wills are decided.
    log = broker.dir / "mosquitto.log"

    def lost(client) -> bool:
        return any(client.id in line and "New client" not in line for line in log.read_text().splitlines())

    wait_for(lambda: all(map(lost, vanished)), 10, "the broker to handle both losses")
    assert [t for t, _ in watcher.received()] == ["printfarm/v1/agent/pi-north/status"]


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "plain"])
def test_anonymous_clients_and_wrong_passwords_are_refused(clients, tls):
    assert clients(None, tls=tls).reason.is_failure
    assert clients("pi-north", password="guess", tls=tls).reason.is_failure
    assert clients("nobody", password="guess", tls=tls).reason.is_failure


def test_the_tls_listener_refuses_a_client_that_does_not_trust_its_certificate(broker):
    client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.username_pw_set("pi-north", _secret(broker, "pi-north"))
    client.tls_set(cert_reqs=ssl.CERT_REQUIRED, tls_version=ssl.PROTOCOL_TLS_CLIENT)  # system CAs only
    with pytest.raises(ssl.SSLError):
        client.connect("localhost", broker.tls_port)


def test_the_collector_reads_everything_but_publishes_only_its_status(clients, watcher):
    north = clients("pi-north")
    north.publish("printfarm/v1/north-lab/p1/telemetry")
    collector = clients("collector", tls=False)
    assert _not_authorised(collector.publish("printfarm/v1/north-lab/p1/telemetry"))
    assert _not_authorised(collector.publish("printfarm/v1/agent/pi-north/status"))
    assert _not_authorised(collector.publish("elsewhere/topic"))
    assert not collector.publish("printfarm/collector/collector/status").is_failure
    assert [t for t, _ in watcher.received()] == ["printfarm/v1/north-lab/p1/telemetry",
                                                  "printfarm/collector/collector/status"]


def test_re_adding_an_agent_replaces_its_acl_entry_after_a_reload(clients, watcher, broker):
    _run("add-agent.sh", "pi-north", "north-lab", "p1", env=broker.env)
    broker._signal(signal.SIGHUP)  # mosquitto re-reads its password and ACL files
    try:
        north = clients("pi-north")
        assert _not_authorised(north.publish("printfarm/v1/north-lab/p2/telemetry"))
        assert not north.publish("printfarm/v1/north-lab/p1/telemetry").is_failure
        assert [t for t, _ in watcher.received()] == ["printfarm/v1/north-lab/p1/telemetry"]
    finally:
        _run("add-agent.sh", "pi-north", "north-lab", "p1", "p2", env=broker.env)
        broker._signal(signal.SIGHUP)


def test_an_oversized_message_is_refused_at_the_broker_and_the_others_arrive(broker, clients, watcher):
    north = clients("pi-north")
    ended = threading.Event()
    north.c.on_disconnect = lambda c, u, f, rc, p: ended.set()
    north.c.publish("printfarm/v1/north-lab/p1/telemetry", b"x" * (4 * protocol.MAX_PAYLOAD_BYTES), qos=1)
    assert ended.wait(10), "the broker kept the connection of a client sending an oversized packet"
    south = clients("pi-south")
    for i in range(20):
        assert not south.publish("printfarm/v1/south-lab/p3/telemetry", b"%d" % i).is_failure
    got = watcher.received()
    assert [p for t, p in got] == [b"%d" % i for i in range(20)]  # and nothing of north's


def test_the_shipped_broker_caps_packets_just_above_the_protocols_payload_cap():
    text = (CENTRAL / "mosquitto" / "mosquitto.conf").read_text()
    settings = dict(line.split(None, 1) for line in text.splitlines() if line and not line.startswith("#")
                    and " " in line)
    assert int(settings["max_packet_size"]) == protocol.MAX_PACKET_BYTES
    longest_topic = len(protocol.printer_topic("a" * protocol.MAX_ID_LEN, "b" * protocol.MAX_ID_LEN, "telemetry"))
    assert protocol.MAX_PAYLOAD_BYTES + longest_topic + 9 < protocol.MAX_PACKET_BYTES <= protocol.MAX_PAYLOAD_BYTES + 1024


def test_setup_issues_grafana_a_certificate_for_its_name_from_the_stacks_ca(broker):
    """compose.yaml serves Grafana over HTTPS with certs/grafana.*: a TLS server with them is
    trusted through the CA for GRAFANA_HOSTNAME, and for no other name."""
    certs = broker.central / "certs"
    server_side = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_side.load_cert_chain(certs / "grafana.crt", certs / "grafana.key")
    assert oct((certs / "grafana.key").stat().st_mode & 0o777) == "0o600"
    for name, trusted in (("grafana.localhost", True), ("localhost", False)):
        client_side = ssl.create_default_context(cafile=str(certs / "ca.crt"))
        incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        server = server_side.wrap_bio(incoming, outgoing, server_side=True)
        c_in, c_out = ssl.MemoryBIO(), ssl.MemoryBIO()
        client = client_side.wrap_bio(c_in, c_out, server_hostname=name)
        try:
            for _ in range(10):  # the handshake, both ends in memory
                for end in (client, server):
                    try:
                        end.do_handshake()
                    except ssl.SSLWantReadError:
                        pass
                incoming.write(c_out.read())
                c_in.write(outgoing.read())
            ok = bool(client.getpeercert())  # the handshake completed, the name checked
        except ssl.SSLCertVerificationError:
            ok = False
        assert ok is trusted, name


def test_no_password_ever_went_through_a_command_line(broker):
    command_lines = (broker.central / "argv.log").read_text()
    users = ["collector", "pi-north", "pi-south"]
    assert all(user in command_lines for user in users)  # the wrapper saw every account being made
    assert not [user for user in users if _secret(broker, user) in command_lines]


def test_the_shipped_broker_does_not_drop_a_backlog_past_1000_messages():
    text = (CENTRAL / "mosquitto" / "mosquitto.conf").read_text()
    settings = dict(line.split(None, 1) for line in text.splitlines() if line and not line.startswith("#")
                    and " " in line)
    assert settings["max_queued_messages"] == "0" and int(settings["max_queued_bytes"]) >= 1 << 28
    assert settings["allow_anonymous"] == "false"
