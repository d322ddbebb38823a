"""TLS with a client certificate plus username/password, against a real Mosquitto set up for it.

A throwaway CA, server and client certificate are made at test time (devkit.pki); the
password file with `mosquitto_passwd -b`.
"""

from __future__ import annotations

import logging
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from agent import config as agent_config
from common import protocol
from agent.outbox import MemoryOutbox
from agent.publisher import Publisher
from devkit.pipeline import start_agent, wait_for
from devkit.pki import make_pki
from devkit.servers import Mosquitto

pytestmark = pytest.mark.integration

USER, PASSWORD = "pi-1", "correct horse battery staple"

TLS_CONFIG = """\
listener {port} 127.0.0.1
cafile {dir}/ca.crt
certfile {dir}/server.crt
keyfile {dir}/server.key
require_certificate true
allow_anonymous false
password_file {dir}/passwd
persistence false
log_dest file {dir}/mosquitto.log
log_type all
user {user}
"""


class TLSMosquitto(Mosquitto):
    """Readiness over TLS with the client certificate: any CONNACK means it answers."""

    def __init__(self, tmpdir, pki: dict[str, Path]):
        super().__init__(tmpdir, config_text=TLS_CONFIG)
        self.pki = pki

    def _answers(self) -> bool:
        ctx = ssl.create_default_context(cafile=str(self.pki["ca"]))
        ctx.load_cert_chain(self.pki["cert"], self.pki["key"])
        connect = bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([4, 0x02, 0, 10, 0, 0])
        with socket.create_connection((self.host, self.port), timeout=1) as raw:
            with ctx.wrap_socket(raw, server_hostname=self.host) as sock:
                sock.sendall(connect)
                return sock.recv(4)[:1] == b"\x20"


@pytest.fixture
def tls_broker(tmp_path):
    broker_dir = tmp_path / "mosquitto-tls"
    pki = make_pki(broker_dir, client_cn=USER)
    subprocess.run(["mosquitto_passwd", "-c", "-b", str(broker_dir / "passwd"), USER, PASSWORD],
                   check=True, capture_output=True)
    (broker_dir / "passwd").chmod(0o600)
    with TLSMosquitto(broker_dir, pki) as broker:
        yield broker


def broker_section(broker, tmp_path: Path, password: str, cert: bool = True) -> dict:
    pw_file = tmp_path / f"mqtt-password-{abs(hash(password))}"
    pw_file.write_text(password + "\n")
    tls = {"ca": str(broker.pki["ca"])}
    if cert:
        tls.update(cert=str(broker.pki["cert"]), key=str(broker.pki["key"]))
    return {"host": broker.host, "port": broker.port, "username": USER, "password_file": str(pw_file),
            "reconnect_min": 0.2, "reconnect_max": 0.5, "tls": tls}


def tls_subscriber(broker, topic: str) -> tuple[mqtt.Client, list]:
    got: list = []
    client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="test-sub")
    client.username_pw_set(USER, PASSWORD)
    client.tls_set(ca_certs=str(broker.pki["ca"]), certfile=str(broker.pki["cert"]), keyfile=str(broker.pki["key"]))
    client.on_connect = lambda c, *a: c.subscribe(topic, 1)
    client.on_message = lambda c, u, m: got.append((m.topic, m.payload))
    client.connect(broker.host, broker.port)
    client.loop_start()
    return client, got


def test_agent_publishes_over_tls_with_client_certificate_and_password(tmp_path, tls_broker, octoprint):
    key = tmp_path / "key"
    key.write_text(octoprint.api_key)
    cfg = agent_config.from_dict({
        "agent": {"id": "pi-1", "site": "lab", "state_dir": str(tmp_path / "state")},
        "broker": broker_section(tls_broker, tmp_path, PASSWORD),
        "printers": [{"id": "vp-1", "url": octoprint.url, "api_key_file": str(key), "interval": 0.5,
                      "timeout": 0.5}],
    })
    sub, got = tls_subscriber(tls_broker, "printfarm/v1/#")
    agent = start_agent(cfg)
    try:
        wait_for(lambda: [t for t, _ in got if t.endswith("/telemetry")], 15, "telemetry over TLS")
        wait_for(lambda: [t for t, _ in got if t == protocol.agent_topic("pi-1")], 5, "agent status")
    finally:
        agent.stop()
        sub.loop_stop()
        sub.disconnect()
    topic, payload = next((t, p) for t, p in got if t.endswith("/telemetry"))
    msg = protocol.decode(protocol.parse_topic(topic), payload, int(time.time() * 1000))
    assert msg.printer == "vp-1" and msg.state == "idle"
    assert f"u'{USER}'" in (tls_broker.dir / "mosquitto.log").read_text()


def count_attempts(broker) -> int:
    return (broker.dir / "mosquitto.log").read_text().count("New connection from")


def test_a_wrong_password_gives_one_clear_log_line_and_keeps_retrying(tmp_path, tls_broker, caplog):
    caplog.set_level(logging.INFO)
    broker = agent_config.from_dict({"agent": {"id": "pi-1", "site": "lab"},
                                     "broker": broker_section(tls_broker, tmp_path, "wrong-password"),
                                     "printers": [{"id": "x", "url": "http://127.0.0.1:1", "api_key_env": "HOME"}]
                                     }).broker
    before = count_attempts(tls_broker)
    threads_before = threading.active_count()  # other tests in this worker may have left some
    pub = Publisher("pi-1", broker, outbox=MemoryOutbox())
    pub.start()
    try:
        wait_for(lambda: count_attempts(tls_broker) - before >= 5, 15, "five connection attempts")
        assert threading.active_count() - threads_before <= 3  # paho's loop and our worker: no thread per attempt
        assert not pub.connected
    finally:
        pub.stop()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, errors
    assert "refused the connection" in errors[0] and "Not authorized" in errors[0]
    assert "username (pi-1)" in errors[0] and "password_file" in errors[0]
    assert "wrong-password" not in caplog.text


def test_without_a_client_certificate_the_agent_logs_once_and_retries(tmp_path, tls_broker, caplog):
    caplog.set_level(logging.INFO)
    broker = agent_config.from_dict({"agent": {"id": "pi-1", "site": "lab"},
                                     "broker": broker_section(tls_broker, tmp_path, PASSWORD, cert=False),
                                     "printers": [{"id": "x", "url": "http://127.0.0.1:1", "api_key_env": "HOME"}]
                                     }).broker
    before = count_attempts(tls_broker)
    pub = Publisher("pi-1", broker, outbox=MemoryOutbox())
    pub.start()
    try:
        wait_for(lambda: count_attempts(tls_broker) - before >= 3, 15, "three connection attempts")
        assert not pub.connected
    finally:
        pub.stop()
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) <= 2, errors  # one line per distinct problem, not one per attempt
    assert errors and f"{tls_broker.host}:{tls_broker.port}" in errors[0]


def _start_and_connect(broker_cfg) -> None:
    pub = Publisher("pi-1", broker_cfg, outbox=MemoryOutbox())
    pub.start()
    try:
        assert pub.wait_connected(10), "the publisher never connected"
        pub.send(protocol.agent_topic("pi-1"), b"{}")
    finally:
        pub.stop()


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "for tests only" in r.getMessage()]


def _broker_cfg(section: dict):
    return agent_config.from_dict({"agent": {"id": "pi-1", "site": "lab"}, "broker": section,
                                   "printers": [{"id": "x", "url": "http://127.0.0.1:1", "api_key_env": "HOME"}]
                                   }).broker


def test_a_password_without_tls_is_warned_about_once_at_start(tmp_path, mosquitto, caplog):
    pw_file = tmp_path / "pw"
    pw_file.write_text(PASSWORD)
    _start_and_connect(_broker_cfg({"host": mosquitto.host, "port": mosquitto.port, "username": USER,
                                    "password_file": str(pw_file), "reconnect_min": 0.2}))
    (warning,) = _warnings(caplog)
    assert "password travels without TLS" in warning and PASSWORD not in caplog.text


def test_insecure_tls_is_warned_about_once_and_verified_tls_not_at_all(tmp_path, tls_broker, caplog):
    section = broker_section(tls_broker, tmp_path, PASSWORD)
    _start_and_connect(_broker_cfg(section))
    assert _warnings(caplog) == []  # positive control below: the same broker, insecure
    section["tls"]["insecure"] = True
    _start_and_connect(_broker_cfg(section))
    (warning,) = _warnings(caplog)
    assert "insecure = true" in warning
