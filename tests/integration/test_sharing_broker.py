"""What crosses the broker under each sharing policy: a sniffer subscribed to every topic of a real
Mosquitto, three agents (full, masked, status) watching one real OctoPrint print a job as a known
user (agent/sharing.py, docs/agent.md)."""

from __future__ import annotations

import json
import threading

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from common import protocol
from common.pseudonyms import Pseudonyms, is_file_label
from devkit.pipeline import agent_config_for, start_agent, wait_for
from devkit.pseudonym_secret import DEV_SECRET
from devkit.servers import make_gcode

pytestmark = pytest.mark.integration

USER = "annika_svensson"  # the OctoPrint account that runs the job
FILE = "bracket_volvo_rev_C [kilsberg-verktyg].gcode"
POLICIES = ("full", "masked", "status")


class Sniffer:
    """Every message on every topic, retained ones included, as (topic, payload bytes)."""

    def __init__(self, broker):
        self.seen: list[tuple[str, bytes]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="sniffer")
        self.c.on_connect = lambda c, u, f, rc, p: c.subscribe("#", qos=1)
        self.c.on_subscribe = lambda c, u, mid, rcs, p: self._subscribed.set()
        self.c.on_message = self._on_message
        self.c.connect(broker.host, broker.port)
        self.c.loop_start()
        assert self._subscribed.wait(10), "the sniffer could not subscribe"

    def _on_message(self, client, userdata, msg):
        with self._lock:
            self.seen.append((msg.topic, bytes(msg.payload)))

    def messages(self, site: str | None = None) -> list[tuple[str, bytes]]:
        with self._lock:
            return [(t, p) for t, p in self.seen if site is None or t.startswith(f"{protocol.PREFIX}/{site}/")]

    def events(self, site: str, kind: str) -> list[dict]:
        return [json.loads(p) for t, p in self.messages(site) if t.endswith("/event") and json.loads(p)["kind"] == kind]

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


@pytest.fixture
def sniffed_job(tmp_path, mosquitto, octoprint_factory):
    """One job printed by USER, watched by one agent per policy (one site each), sniffed."""
    octoprint = octoprint_factory(user=USER)
    sniffer = Sniffer(mosquitto)
    away_collector(mosquitto)
    agents = [start_agent(agent_config_for(tmp_path, mosquitto, [(f"p-{policy}", octoprint.url, octoprint.api_key)],
                                           site=f"lab-{policy}", agent_id=f"pi-{policy}", sharing=policy))
              for policy in POLICIES]
    try:
        octoprint.upload_and_print(FILE, make_gcode(60))
        name = octoprint.job()["job"]["file"]["name"]  # as OctoPrint stored it
        for policy in POLICIES:
            wait_for(lambda: sniffer.events(f"lab-{policy}", "done"), 90, f"the done event of lab-{policy}")
        yield sniffer, name
    finally:
        for agent in agents:
            agent.stop()
        sniffer.close()


def away_collector(broker) -> None:
    """A collector's persistent QoS 1 session, gone: the broker keeps its share in its store."""
    done = threading.Event()
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="collector-away",
                    clean_session=False, protocol=mqtt.MQTTv311)
    c.on_subscribe = lambda *a: done.set()
    c.connect(broker.host, broker.port)
    c.loop_start()
    c.subscribe("printfarm/#", 1)
    assert done.wait(10), "the away collector could not subscribe"
    c.disconnect()
    c.loop_stop()


def test_no_raw_user_name_crosses_the_broker_under_any_policy_and_status_sends_no_file_name(sniffed_job, mosquitto):
    sniffer, name = sniffed_job
    assert "volvo" in name  # what a leak would show
    everything = sniffer.messages()
    assert not [t for t, p in everything if USER.encode() in p.lower()], "a raw user name crossed the broker"

    # Positive controls: the user was there to leak, and the full site shows the file as it is.
    pseudonyms = Pseudonyms(DEV_SECRET)
    full_users = {e.get("user") for e in sniffer.events("lab-full", "started") + sniffer.events("lab-full", "done")}
    assert full_users == {pseudonyms.of("lab-full", USER)}
    assert any(name.encode() in p for _, p in sniffer.messages("lab-full"))

    status = sniffer.messages("lab-status")
    assert len(status) > 5 and not [t for t, p in status if b"volvo" in p or b"bracket" in p]
    done = sniffer.events("lab-status", "done")
    assert done[0]["duration"] > 0 and "user" not in done[0] and "file" not in done[0]  # outcome and duration go

    masked = sniffer.messages("lab-masked")
    assert not [t for t, p in masked if b"volvo" in p]
    files = {json.loads(p).get("file") for t, p in masked if not t.endswith("/status") or b'"file"' in p} - {None}
    assert files == {pseudonyms.file_label("lab-masked", name)} and all(is_file_label(f) for f in files)
    assert "[kilsberg-verktyg]" in files.pop()  # the customer tag still attributes the job

    # What the broker kept on disk for the collector that was away (issue 21: it held raw names).
    mosquitto.stop()  # a clean stop writes the persistence file
    store = (mosquitto.dir / "mosquitto.db").read_bytes()
    assert name.encode() in store  # positive control: the full site's queued messages are there
    assert USER.encode() not in store.lower(), "a raw user name in the broker's persistence file"
