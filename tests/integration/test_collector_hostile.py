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


ESCAPES = ("\x1b]0;pwned\x07"  # sets the terminal's window title
           "\x1b[2J\x9b2J"  # clears the screen (7-bit ESC [ and the C1 CSI)
           "\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\"  # an OSC-8 link
           "[link=http://evil.example]rich[/link] \u202eedoc.gcode")


# Unicode's explicit bidirectional formatting classes: embeddings, overrides, isolates, marks.
BIDI_CONTROLS = {"LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"}


def test_terminal_escapes_from_a_printer_reach_neither_the_api_the_database_nor_the_demo_table(collector):
    """Printer text is made plain where it enters the collector: /api/fleet and InfluxDB hold it
    without control or bidi characters, and the demo table built from /api/fleet prints no escape."""
    import io
    import re
    import unicodedata

    from rich.console import Console

    from devkit.demo.table import render

    mqtt_broker, influx, running = collector
    status_topic = protocol.printer_topic("lab", "vp-1", "status")
    status = doc(state="error", error=ESCAPES, state_text=ESCAPES, file=ESCAPES, temps={})
    publish_raw(mqtt_broker, [(TOPIC, json.dumps(doc(file=ESCAPES, state_text=ESCAPES, user=ESCAPES)).encode()),
                              (status_topic, json.dumps(status).encode())])
    api = f"http://127.0.0.1:{running.collector.api.port}/api/fleet"
    fleet = wait_for(lambda: (lambda f: f if f["printers"] and f["printers"][0]["state"] == "error" else None)(
        requests.get(api, timeout=5).json()), 10, "the printer in error on /api/fleet")
    rows = wait_for(lambda: influx.query("SELECT file, state_text FROM telemetry", db=DB), 10, "the telemetry point")

    def hidden(text: str) -> list[str]:
        return [c for c in text if unicodedata.category(c) == "Cc" or unicodedata.bidirectional(c) in BIDI_CONTROLS]

    printer = fleet["printers"][0]
    assert "click" in printer["error"] and "edoc.gcode" in printer["file"]
    assert not hidden("".join(str(v) for p in fleet["printers"] for v in p.values())), fleet  # JSON would escape C0
    assert not hidden(rows[0]["file"] + rows[0]["state_text"]) and "click" in rows[0]["file"]
    out = io.StringIO()
    Console(file=out, force_terminal=True, color_system="truecolor", width=140).print(render(fleet, "h", "f"))
    shown = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue())  # rich's own colours: the only escapes left
    assert not hidden(shown.replace("\n", "")), repr(shown)
