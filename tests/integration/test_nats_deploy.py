"""The shipped NATS node configuration (deploy/cluster/nats-node.conf) as it is, on loopback: TLS,
an agent account confined to its own printers, and a collector account that can run the
collector's JetStream consumer. Only addresses, certificate paths and passwords are swapped in."""

from __future__ import annotations

import re
import ssl
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import requests
from paho.mqtt.enums import CallbackAPIVersion

from common import protocol
from devkit.pipeline import DB, RunningCollector, wait_for, write_inventory
from devkit.pki import make_pki
from devkit.servers.ports import free_ports
from devkit.servers.process import Server, find_binary
from server import config as server_config

pytestmark = pytest.mark.integration

SHIPPED = Path(__file__).resolve().parents[2] / "deploy" / "cluster" / "nats-node.conf"
SITE, MINE, NOT_MINE = "oru-makerspace", "oru-mk4-01", "oru-mk4-99"


class ShippedNode(Server):
    name = "nats-shipped"

    def __init__(self, tmpdir, text: str, http_port: int):
        super().__init__(tmpdir, http_port)
        self._auto_port = False
        self.config_path = self.dir / "nats.conf"
        self.config_path.write_text(text)
        self.binary = find_binary("nats-server", "apt-get install -y nats-server", ("/usr/sbin/nats-server",))

    def _command(self):
        return [self.binary, "-c", str(self.config_path)]

    def _answers(self) -> bool:  # serving; JetStream is ready once the three have a leader (200)
        return requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code in (200, 503)

    def ready(self) -> bool:
        return requests.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).status_code == 200


PASSWORDS = {"oru-pi-01": "agent-secret", "collector": "collector-secret"}


def loopback_cluster(tmp: Path) -> tuple[list[str], dict]:
    """The shipped file for three nodes on loopback: addresses, certificates, store and plain
    passwords swapped in (the shipped file wants bcrypt hashes), nothing else."""
    pki = make_pki(tmp / "pki")
    ports = [free_ports(4) for _ in range(3)]
    routes = ", ".join(f'"nats-route://127.0.0.1:{p[1]}"' for p in ports)
    texts = []
    for i, (client, cluster, http, mqtt_port) in enumerate(ports):
        text = SHIPPED.read_text().replace("server_name: nats-1", f"server_name: nats-{i + 1}")
        for path, key in (("nats-1.crt", "server_cert"), ("nats-1.key", "server_key"), ("ca.crt", "ca")):
            text = text.replace(f"/etc/nats/certs/{path}", str(pki[key]))
        text = (text.replace("0.0.0.0:4222", f"127.0.0.1:{client}").replace("0.0.0.0:6222", f"127.0.0.1:{cluster}")
                .replace("127.0.0.1:8222", f"127.0.0.1:{http}").replace("0.0.0.0:8883", f"127.0.0.1:{mqtt_port}")
                .replace("/var/lib/nats/jetstream", str(tmp / f"js{i}")))
        text = re.sub(r"routes: \[[^\]]*\]", f"routes: [{routes}]", text)
        for user, password in PASSWORDS.items():
            text = re.sub(rf'(user: "{user}"\s+password: )"[^"]*"', rf'\1"{password}"', text)
        texts.append(text)
    return texts, {"pki": pki, "ports": ports}


def test_the_shipped_node_config_is_valid():
    binary = find_binary("nats-server", "apt-get install -y nats-server", ("/usr/sbin/nats-server",))
    out = subprocess.run([binary, "-t", "-c", str(SHIPPED)], capture_output=True, text=True)
    # Only the certificates, which live on the real machines, may be missing.
    problems = [line for line in out.stderr.splitlines() if line and "X509" not in line]
    assert not problems, out.stderr


def publish(setup: dict, user: str, topic: str, payload: bytes) -> None:
    done = threading.Event()
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id=f"{user}-test", protocol=mqtt.MQTTv311)
    c.username_pw_set(user, PASSWORDS[user])
    c.tls_set(ca_certs=str(setup["pki"]["ca"]), cert_reqs=ssl.CERT_REQUIRED)
    c.on_publish = lambda *a: done.set()
    c.connect("127.0.0.1", setup["ports"][1][3], 10)  # the second node's MQTT listener
    c.loop_start()
    c.publish(topic, payload, qos=1)
    assert done.wait(10), "no PUBACK"
    c.disconnect()
    c.loop_stop()


def telemetry(printer: str, seq: int) -> bytes:
    ts = int(time.time() * 1000) - 60_000 + seq
    return protocol.encode(protocol.Telemetry(v=1, ts=ts, printer=printer, site=SITE, seq=seq, state="idle"))


def test_an_agent_account_reaches_the_collector_only_for_its_own_printers(tmp_path, influxdb, caplog):
    texts, setup = loopback_cluster(tmp_path)
    (tmp_path / "collector-password").write_text(PASSWORDS["collector"])
    inventory = write_inventory(tmp_path / "fleet.toml", {MINE: SITE, NOT_MINE: SITE})
    nodes = [ShippedNode(tmp_path / f"nats{i}", text, setup["ports"][i][2]) for i, text in enumerate(texts)]
    collector = None
    try:
        for node in nodes:
            node.start()
        wait_for(lambda: all(node.ready() for node in nodes), 60, "the shipped cluster's JetStream")
        cfg = server_config.from_dict({
            "inventory": str(inventory), "state_dir": str(tmp_path / "state"),
            "nats": {"servers": [f"tls://127.0.0.1:{p[0]}" for p in setup["ports"]], "username": "collector",
                     "password_file": str(tmp_path / "collector-password"), "tls": {"ca": str(setup["pki"]["ca"])}},
            "influx": {"url": influxdb.url, "database": DB, "flush_interval": 0.2, "spool_dir": str(tmp_path / "spool")},
            "http": {"host": "127.0.0.1", "port": 0},
        })
        collector = RunningCollector(cfg)
        # NATS makes its MQTT streams at the first MQTT connection; the collector waits for them.
        publish(setup, "oru-pi-01", protocol.agent_topic("oru-pi-01"), b"{}")
        collector.wait_connected(30)
        publish(setup, "oru-pi-01", protocol.printer_topic(SITE, NOT_MINE, "telemetry"), telemetry(NOT_MINE, 1))
        publish(setup, "oru-pi-01", protocol.printer_topic(SITE, MINE, "telemetry"), telemetry(MINE, 2))
        # The collector takes messages in order: once the second is stored, the first would be.
        wait_for(lambda: influxdb.query("SELECT count(seq) FROM telemetry", db=DB), 30, "the agent's point")
        rows = influxdb.query('SELECT seq FROM telemetry GROUP BY "printer"', db=DB)
        assert {r["printer"] for r in rows} == {MINE}
        # The collector account may follow every message (live state) and hold the alert lease.
        live = collector.collector.fleet.printers
        wait_for(lambda: live[(SITE, MINE)].last_seen, 10, "the printer in the live state")
        assert live[(SITE, NOT_MINE)].last_seen is None
        lease = collector.collector.lease
        wait_for(lambda: lease.leader, 15, "the collector to take the alert lease")
        sent = []
        lease.gate(lambda: sent.append(1), time.time(), "deploy-check/firing")
        wait_for(lambda: sent, 10, "the lease holder to record and send a notification")
        assert "could not record" not in caplog.text  # the account may write the record
    finally:
        if collector:
            collector.stop()
        for node in nodes:
            node.stop()
