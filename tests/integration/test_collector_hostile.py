"""Criterion 5: each kind of bad input, sent through the real broker, is rejected with a counter
for its reason and one log line (not one per message); the good messages around it are all stored
and the collector keeps running."""

from __future__ import annotations

import json
import logging
import time

import pytest
import requests

from common import protocol
from tests.integration.collector_helpers import broker, publish_raw
from devkit.pipeline import DB, RunningCollector, collector_config, wait_for, write_inventory

pytestmark = pytest.mark.integration

TOPIC = protocol.printer_topic("lab", "vp-1", "telemetry")


def doc(**over) -> dict:
    base = {"v": 1, "ts": int(time.time() * 1000) - 60_000, "printer": "vp-1", "site": "lab", "seq": 1,
            "state": "printing", "temps": {"tool0": [210.0, 210.0]}, "progress": 10.0}
    return base | over


def raw(text: str) -> bytes:
    return text.encode()


BAD = {
    "malformed_json": (TOPIC, raw('{"v": 1, "ts": 17')),
    "invalid_schema": (TOPIC, json.dumps(doc(seq="one", state=7)).encode()),
    "not_finite": (TOPIC, raw(json.dumps(doc(progress=float("nan"))))),  # Python writes NaN
    "not_finite_inf": (TOPIC, raw(json.dumps(doc()).replace('"progress": 10.0', '"progress": 1e999'))),
    # Over the protocol's cap, yet under the broker's packet cap (which refuses bigger ones itself).
    "too_large": (TOPIC, json.dumps(doc(state_text="x" * protocol.MAX_PAYLOAD_BYTES)).encode()),
    "unknown_version": (TOPIC, json.dumps(doc(v=2)).encode()),
    "topic_mismatch": (TOPIC, json.dumps(doc(printer="vp-2")).encode()),
    "future_timestamp": (TOPIC, json.dumps(doc(ts=int(time.time() * 1000) + 86_400_000)).encode()),
    "out_of_range": (TOPIC, json.dumps(doc(progress=150.0)).encode()),
    "bad_topic": ("printfarm/v1/Lab/VP 1/telemetry", json.dumps(doc()).encode()),
}


@pytest.fixture
def collector(tmp_path, influxdb):
    mqtt_broker = broker(tmp_path)
    inventory = write_inventory(tmp_path / "fleet.toml", {"vp-1": "lab", "vp-2": "lab"})
    running = RunningCollector(collector_config(tmp_path, mqtt_broker, influxdb, inventory))
    running.wait_connected()
    yield mqtt_broker, influxdb, running
    running.stop()
    mqtt_broker.stop()


def scrape(running) -> str:
    return requests.get(f"http://127.0.0.1:{running.collector.api.port}/metrics", timeout=5).text


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_is_counted_logged_once_and_the_good_around_it_is_stored(collector, caplog, case):
    mqtt_broker, influx, running = collector
    reason = case.removesuffix("_inf")
    bad = BAD[case]
    good = [(TOPIC, json.dumps(doc(seq=n, ts=doc()["ts"] + n)).encode()) for n in range(1, 7)]
    with caplog.at_level(logging.WARNING, logger="server.ingest"):
        publish_raw(mqtt_broker, good[:2] + [bad] * 3 + good[2:4] + [bad] * 2 + good[4:])
        metric = f'printfarm_messages_rejected_total{{reason="{reason}"}} 5.0'
        wait_for(lambda: metric in scrape(running), 10, f"5 rejections counted as {reason}")
        rows = wait_for(lambda: (lambda r: r if len(r) == 6 else None)(
            influx.query("SELECT seq FROM telemetry", db=DB)), 10, "the 6 good messages")
    assert sorted(r["seq"] for r in rows) == [1, 2, 3, 4, 5, 6]
    lines = [r.getMessage() for r in caplog.records if "rejected message" in r.getMessage()]
    assert len(lines) == 1 and f": {reason}:" in lines[0], lines
    assert running.thread.is_alive() and running.collector.subscriber.connected


def test_every_reason_has_a_counter_from_the_start(collector):
    _, _, running = collector
    text = scrape(running)
    for case in BAD:
        assert f'printfarm_messages_rejected_total{{reason="{case.removesuffix("_inf")}"}} 0.0' in text
    for name in ("messages_received", "points_written", "queue_depth", "spool_bytes", "influx_write_seconds_count"):
        assert f"printfarm_{name}" in text



def test_an_unknown_sensor_name_costs_that_reading_only_not_the_printers_telemetry(collector, caplog):
    """OctoPrint reports whatever sensors its firmware has (``tool_heatbreak``, ``W1``, ...): the
    collector keeps the rest of each message, counts what it left out and logs it once."""
    mqtt_broker, influx, running = collector
    temps = {"tool0": [210.0, 215.0], "tool_heatbreak": [45.0, None], "bed": [60.0, 60.0], "W1": [20.0, None]}
    messages = [(TOPIC, json.dumps(doc(seq=n, ts=doc()["ts"] + n, temps=temps)).encode()) for n in range(1, 5)]
    with caplog.at_level(logging.WARNING, logger="server.ingest"):
        publish_raw(mqtt_broker, messages)
        rows = wait_for(lambda: (lambda r: r if len(r) == 4 else None)(
            influx.query("SELECT seq, tool0_actual, bed_target FROM telemetry", db=DB)), 10, "all 4 messages")
        wait_for(lambda: "printfarm_temperatures_dropped_total 8.0" in scrape(running), 10, "8 readings counted")
    assert sorted(r["seq"] for r in rows) == [1, 2, 3, 4]
    assert all(r["tool0_actual"] == 210.0 and r["bed_target"] == 60.0 for r in rows)
    assert 'reason="invalid_schema"} 0.0' in scrape(running)
    lines = [r.getMessage() for r in caplog.records if "dropped part of a message" in r.getMessage()]
    assert len(lines) == 1 and "'tool_heatbreak'" in lines[0] and "'W1'" in lines[0], lines
