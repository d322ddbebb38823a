"""Printers the inventory does not list, through the real broker into the collector: the same ID
at another site is another printer; ``reject_unlisted`` refuses them; ``max_unlisted`` caps how
many are tracked. Counted by reason, stored or not in a real InfluxDB."""

from __future__ import annotations

import json
import time

import pytest
import requests

from common import protocol
from devkit.pipeline import DB, RunningCollector, collector_config, wait_for, write_inventory
from server.config import IngestConfig
from tests.integration.collector_helpers import broker, publish_raw

pytestmark = pytest.mark.integration


@pytest.fixture
def start(tmp_path, influxdb):
    made = []

    def run(**ingest) -> tuple:
        mqtt_broker = broker(tmp_path / f"b{len(made)}")
        inventory = write_inventory(tmp_path / "fleet.toml", {"vp-1": "lab"})
        cfg = collector_config(tmp_path / f"c{len(made)}", mqtt_broker, influxdb, inventory)
        cfg.ingest = IngestConfig(**ingest)
        running = RunningCollector(cfg)
        running.wait_connected()
        made.append((running, mqtt_broker))
        return running, mqtt_broker

    yield run
    for running, mqtt_broker in made:
        running.stop()
        mqtt_broker.stop()


def status(site: str, printer: str, state: str, seq: int = 1) -> tuple[str, bytes]:
    msg = protocol.Status(v=1, ts=int(time.time() * 1000) - 1000 + seq, printer=printer, site=site, seq=seq,
                          state=state, agent="pi-1")
    return protocol.printer_topic(site, printer, "status"), protocol.encode(msg)


def api(running, path: str) -> dict | str:
    reply = requests.get(f"http://127.0.0.1:{running.collector.api.port}{path}", timeout=5)
    return reply.json() if path.startswith("/api") else reply.text


def fleet(running) -> dict[tuple[str, str], dict]:
    return {(p["site"], p["printer"]): p for p in api(running, "/api/fleet")["printers"]}


def rejected(running, reason: str) -> float:
    for line in api(running, "/metrics").splitlines():
        if line.startswith(f'printfarm_messages_rejected_total{{reason="{reason}"}}'):
            return float(line.split()[-1])
    return 0.0


def stored_sites(influx) -> list[str]:
    try:
        return sorted(r["site"] for r in influx.query("SELECT state FROM state GROUP BY site", db=DB))
    except RuntimeError:
        return []


def test_the_same_printer_id_at_another_site_does_not_replace_the_listed_printer(start, influxdb):
    running, mqtt_broker = start()
    publish_raw(mqtt_broker, [status("lab", "vp-1", "printing"), status("elsewhere", "vp-1", "idle", 2)])
    wait_for(lambda: len(stored_sites(influxdb)) == 2, 10, "both points stored")
    printers = fleet(running)
    assert printers[("lab", "vp-1")]["state"] == "printing" and printers[("lab", "vp-1")]["listed"]
    assert printers[("elsewhere", "vp-1")]["state"] == "idle" and not printers[("elsewhere", "vp-1")]["listed"]


def test_reject_unlisted_refuses_and_counts_what_the_inventory_does_not_list(start, influxdb):
    running, mqtt_broker = start(reject_unlisted=True)
    publish_raw(mqtt_broker, [status("elsewhere", "vp-1", "idle"), status("lab", "vp-9", "idle", 2),
                              status("lab", "vp-1", "printing", 3)])
    wait_for(lambda: rejected(running, "unlisted") == 2, 10, "two refusals counted")
    wait_for(lambda: stored_sites(influxdb), 10, "the listed printer stored")  # positive control
    assert stored_sites(influxdb) == ["lab"]
    assert set(fleet(running)) == {("lab", "vp-1")}


def test_unlisted_printers_past_the_cap_are_refused_and_counted(start, influxdb):
    running, mqtt_broker = start(max_unlisted=2)
    publish_raw(mqtt_broker, [status("elsewhere", f"x{i}", "idle", i) for i in range(5)]
                + [status("elsewhere", "x0", "printing", 9), status("lab", "vp-1", "idle", 10)])
    wait_for(lambda: rejected(running, "too_many_unlisted") == 3, 10, "three refusals counted")
    printers = fleet(running)
    assert set(printers) == {("lab", "vp-1"), ("elsewhere", "x0"), ("elsewhere", "x1")}
    assert printers[("elsewhere", "x0")]["state"] == "printing"  # a tracked one goes on being tracked
    rows = wait_for(lambda: (lambda r: r if len(r) == 4 else None)(
        influxdb.query("SELECT state FROM state", db=DB)), 10, "the four accepted points")
    assert json.dumps(rows).count('"printing"') == 1
