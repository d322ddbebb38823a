"""A job that ends while the agent is away: recovered once from the printer's own record, and
the state timeline gets its real end, so the report's printing time for the printer equals the
job's (it was "unknown" from the agent's last sample to the agent's return).

Real Moonraker + Klippy and real OctoPrint, through real Mosquitto, collector and InfluxDB, and
the report's own accounting (server.reports).
"""

from __future__ import annotations

import time

import pytest

from devkit.pipeline import (
    DB, RunningCollector, agent_config_with, collector_config, start_agent, wait_for, write_inventory,
)
from devkit.servers import klipper_gcode, make_gcode
from server.inventory import load as load_inventory
from server.reports.generate import make_report
from server.reports.periods import Period
from server.store.influx import InfluxHTTP

pytestmark = pytest.mark.integration

INTERVAL = 0.5


@pytest.fixture
def pipeline(tmp_path, mosquitto, influxdb):
    inventory = write_inventory(tmp_path / "fleet.toml", {"voron-1": "lab", "vp-1": "lab"})
    running = RunningCollector(collector_config(tmp_path, mosquitto, influxdb, inventory))
    running.wait_connected()
    yield inventory
    running.stop()


def kinds(influx, printer: str) -> list[str]:
    return [r["kind"] for r in influx.query(f"SELECT kind, seq FROM job WHERE printer = '{printer}'", db=DB)]


def report_ms(influx, inventory, printer: str, start_ms: int) -> dict[str, int]:
    now = int(time.time() * 1000)
    report = make_report(InfluxHTTP(influx.url, DB), load_inventory(inventory), Period(start_ms, now, "t"),
                         now_ms=now, compare=False)
    (usage,) = [u for u in report.usages if u.printer == printer]
    return usage.ms


def started_ts(influx, printer: str) -> int:
    return influx.query(f"SELECT kind, seq FROM job WHERE printer = '{printer}' AND kind = 'started'",
                        db=DB, epoch="ms")[0]["time"]


def test_a_moonraker_job_that_ends_while_the_agent_is_away_counts_as_printing_up_to_its_end(
        tmp_path, mosquitto, influxdb, moonraker_factory, pipeline):
    rig = moonraker_factory()
    cfg = agent_config_with(tmp_path, mosquitto, [{"id": "voron-1", "type": "moonraker", "url": rig.url,
                                                   "interval": INTERVAL, "timeout": INTERVAL}])
    began = int(time.time() * 1000)
    agent = start_agent(cfg)
    try:
        rig.print_file("away.gcode", klipper_gcode(12000))
        wait_for(lambda: agent.workers[0].tracker.job is not None, 20, "the agent to see the job")
        rig.klipper.sigstop()  # the job holds in "printing" while the agent goes
    finally:
        agent.stop()
    rig.klipper.sigcont()
    rig.wait_for(lambda: rig.history(1)[0]["status"] == "completed", 60, "the job to end unseen")
    entry = rig.history(1)[0]
    agent = start_agent(cfg)
    try:
        wait_for(lambda: kinds(influxdb, "voron-1") == ["started", "done"], 20, "the recovered end")
    finally:
        agent.stop()
    truth = int(entry["end_time"] * 1000) - started_ts(influxdb, "voron-1")
    ms = report_ms(influxdb, pipeline, "voron-1", began)
    assert abs(ms["printing"] - truth) <= INTERVAL * 1000, (ms, truth)


def test_an_octoprint_job_that_ends_while_the_agent_is_away_counts_as_printing_up_to_its_end(
        tmp_path, mosquitto, influxdb, octoprint, pipeline):
    key = tmp_path / "octoprint-key"
    key.write_text(octoprint.api_key)
    cfg = agent_config_with(tmp_path, mosquitto, [{"id": "vp-1", "type": "octoprint", "url": octoprint.url,
                                                   "api_key_file": str(key), "interval": INTERVAL,
                                                   "timeout": INTERVAL}])
    began = int(time.time() * 1000)
    agent = start_agent(cfg)
    try:
        octoprint.upload_and_print("away.gcode", make_gcode(200))
        wait_for(lambda: kinds(influxdb, "vp-1") == ["started"], 20, "the agent to see the job")
    finally:
        agent.stop()
    octoprint.wait_for_state("Operational", timeout=60)
    record = wait_for(lambda: octoprint.api("GET", "/api/files/local/away.gcode").json().get("prints"), 10,
                      "OctoPrint's record of the print")
    agent = start_agent(cfg)
    try:
        wait_for(lambda: kinds(influxdb, "vp-1") == ["started", "done"], 20, "the recovered end")
    finally:
        agent.stop()
    truth = int(record["last"]["date"] * 1000) - started_ts(influxdb, "vp-1")
    ms = report_ms(influxdb, pipeline, "vp-1", began)
    assert abs(ms["printing"] - truth) <= INTERVAL * 1000, (ms, truth)
