"""The test-server helpers themselves: each starts a real process that really answers."""

import queue
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import requests

from devkit.servers import Mosquitto, make_gcode
from devkit.servers.bambu import BambuBroker
from devkit.servers import ports
from devkit.servers.ports import HOST, ephemeral_floor, free_port, free_ports

pytestmark = pytest.mark.integration


class _MqttClient:
    """A paho client on a background loop whose received messages land in a queue."""

    def __init__(self, broker, client_id="", clean_session=True):
        self.messages = queue.Queue()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=client_id, clean_session=clean_session)
        self.client.on_message = lambda c, u, msg: self.messages.put(msg)
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def subscribe(self, topic):
        self.client.subscribe(topic, qos=1)
        assert self.subscribed.wait(5), "no SUBACK"

    def publish(self, topic, payload):
        info = self.client.publish(topic, payload, qos=1)
        info.wait_for_publish(5)
        assert info.is_published()

    def next_message(self, timeout=5):
        return self.messages.get(timeout=timeout)

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def test_mosquitto_delivers_a_qos1_message_from_publisher_to_subscriber(mosquitto):
    sub, pub = _MqttClient(mosquitto), _MqttClient(mosquitto)
    try:
        sub.subscribe("farm/#")
        pub.publish("farm/p1/status", b'{"state": "Printing"}')
        msg = sub.next_message()
        assert (msg.topic, msg.payload) == ("farm/p1/status", b'{"state": "Printing"}')
    finally:
        sub.close()
        pub.close()


def test_mosquitto_restart_keeps_port_and_queued_messages(mosquitto):
    keeper = _MqttClient(mosquitto, client_id="keeper", clean_session=False)
    keeper.subscribe("farm/#")
    keeper.close()
    pub = _MqttClient(mosquitto)
    pub.publish("farm/p1/status", b"queued")
    pub.close()
    port = mosquitto.port

    mosquitto.restart()  # a clean stop writes the persistence file in the temp dir

    assert mosquitto.port == port
    keeper = _MqttClient(mosquitto, client_id="keeper", clean_session=False)
    try:
        assert keeper.next_message().payload == b"queued"
    finally:
        keeper.close()


def test_mosquitto_start_failure_reports_the_log_tail(tmp_path):
    broker = Mosquitto(tmp_path, config_text="listener {port} 127.0.0.1\nno_such_option 1\n")
    with pytest.raises(RuntimeError, match="no_such_option"):
        broker.start()
    assert not broker.running


def test_free_ports_are_distinct_and_avoid_the_ones_given():
    taken = free_port()
    ports = free_ports(50, besides=(taken,))
    assert len(set(ports)) == 50 and taken not in ports


def test_free_ports_lie_below_the_ephemeral_range():
    # Above the floor an outgoing connection could take a port between pick and bind.
    floor = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert ephemeral_floor() == floor
    assert all(ports.FIRST <= port < floor for port in free_ports(20))


def test_a_port_someone_binds_is_skipped():
    first = free_port()
    with socket.socket() as squatter:
        squatter.bind((HOST, first + 1))  # the next one on this process's walk
        assert free_ports(1) != [first + 1]


def test_a_port_another_process_reserved_is_not_handed_out_until_that_process_ends():
    picker = subprocess.Popen([sys.executable, "-c", "import sys; from devkit.servers.ports import free_port; "
                               "print(free_port(), flush=True); sys.stdin.read()"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    theirs = int(picker.stdout.readline())
    assert not ports.reserve(theirs)
    picker.communicate("")  # it ends, and the kernel lets go of its lock
    assert ports.reserve(theirs)
    assert not ports.reserve(theirs)  # held by this process now


def test_a_bambu_broker_whose_printer_port_is_taken_picks_other_ports(tmp_path):
    broker = BambuBroker(tmp_path / "bambu", ["00M09A350100123", "01P09C470200456"])
    first = broker.endpoints["01P09C470200456"].port
    with socket.socket() as squatter:  # Mosquitto says so in its log file, not on its stdout
        squatter.bind((HOST, first))
        squatter.listen()
        with broker:
            ports = {e.port for e in broker.endpoints.values()}
            assert first not in ports and len(ports | {broker.port}) == 3


def test_influxdb_write_then_query_returns_rows_with_tags_and_columns(influxdb):
    influxdb.create_database("farm")
    influxdb.write("farm", "temp,printer=p1 tool0=200.5 1700000000000\n"
                           "temp,printer=p2 tool0=21.0 1700000001000\n")

    rows = influxdb.query("SELECT tool0 FROM temp GROUP BY printer", db="farm")

    assert rows == [{"printer": "p1", "time": 1700000000000, "tool0": 200.5},
                    {"printer": "p2", "time": 1700000001000, "tool0": 21.0}]
    with pytest.raises(RuntimeError, match="not found"):
        influxdb.query("SELECT * FROM temp", db="no_such_db")


def test_influxdb_restart_keeps_data_and_port(influxdb):
    influxdb.create_database("farm")
    influxdb.write("farm", "temp,printer=p1 tool0=1 1700000000000")
    port = influxdb.port

    influxdb.restart()

    assert influxdb.port == port
    assert influxdb.query("SELECT count(tool0) FROM temp", db="farm")[0]["count"] == 1


def test_octoprint_prints_a_file_through_to_operational_at_100_percent(octoprint):
    states = []
    started = time.monotonic()
    octoprint.upload_and_print("cube.gcode", make_gcode())

    job = octoprint.wait_for_job(lambda j: states.append(j["state"]) or j["state"] == "Operational",
                                 timeout=20)

    assert time.monotonic() - started < 15
    assert states[0] == "Printing"
    assert job["progress"]["completion"] == 100
    assert job["job"]["file"]["name"] == "cube.gcode"
    assert job["job"]["user"] == octoprint.user
    temps = octoprint.api("GET", "/api/printer").json()["temperature"]
    assert temps["tool0"]["actual"] > 50  # M104 S200 heated it during the print


def test_octoprint_sigstop_makes_requests_time_out_and_sigcont_recovers(octoprint):
    octoprint.sigstop()
    try:
        with pytest.raises(requests.Timeout):
            octoprint.api("GET", "/api/job", timeout=1)
    finally:
        octoprint.sigcont()

    assert octoprint.job()["state"] == "Operational"


def test_octoprint_factory_runs_two_instances_with_their_own_keys(octoprint_factory):
    first, second = octoprint_factory(), octoprint_factory()

    assert first.port != second.port
    assert first.api("GET", "/api/version").status_code == 200
    foreign_key = {"X-Api-Key": second.api_key}
    assert requests.get(first.url + "/api/version", headers=foreign_key, timeout=5).status_code == 403
