"""Material and cost from a real agent watching the real Moonraker and Klippy (batch mode), end to
end through Mosquitto, the collector and InfluxDB into the report's CSV. A job cancelled at a
PAUSE counts what Klipper measured it pushed until then, as it is (measured amounts are never
pro rata), in grams by the slicer's grams per mm. The truth is counted from the G-code and its
slicer footer here, with the inventory's PETG price and the rate."""

from __future__ import annotations

import math

import pytest

from devkit.gcode import extruded_mm
from devkit.pipeline import DB, RunningCollector, agent_config_with, collector_config, start_agent, wait_for
from devkit.servers import InfluxDB, Klipper, Moonraker, Mosquitto
from tests.integration.test_moonraker_material import SLICER_G, SLICER_MM, sliced, upload
from tests.integration.billing_outputs import assert_xlsx_and_pdf_bill_as_the_csv, billing_rows, report_the_farm

pytestmark = pytest.mark.integration

PETG_PRICE, HOUR_RATE = 300.0, 110.0
INVENTORY = f"""
[sites.lab]
organisation = "Alfa universitet"
county = "Örebro"

[printers.voron-1]
site = "lab"
model = "Voron 2.4"

[materials.PETG]
price_per_kg = {PETG_PRICE}

[rates.models."Voron 2.4"]
hour_rate = {HOUR_RATE}
"""


def ended(influx) -> list[dict]:
    return influx.query('SELECT "duration" FROM job WHERE kind <> \'started\'', db=DB)


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("material-moonraker")
    klipper = Klipper(tmp / "klipper").start()
    moonraker = Moonraker(tmp / "moonraker", klipper).start()
    gcode = sliced(400, "PAUSE")
    try:
        with Mosquitto(tmp / "mosquitto") as mqtt, InfluxDB(tmp / "influxdb") as influx:
            (tmp / "fleet.toml").write_text(INVENTORY)
            cfg = collector_config(tmp, mqtt, influx, tmp / "fleet.toml")
            collector = RunningCollector(cfg)
            agent = None
            try:
                collector.wait_connected()
                agent = start_agent(agent_config_with(tmp, mqtt, [{"id": "voron-1", "type": "moonraker",
                                                                   "url": moonraker.url, "interval": 0.5,
                                                                   "timeout": 0.5}]))
                wait_for(lambda: influx.query("SELECT count(seq) AS n FROM telemetry", db=DB), 30, "telemetry")
                upload(moonraker, "cancel.gcode", gcode)
                moonraker.result("POST", "/printer/print/start", params={"filename": "cancel.gcode"})
                wait_for(lambda: moonraker.status()["print_stats"]["state"] == "paused", 60, "the pause")
                moonraker.cancel()
                wait_for(lambda: len(ended(influx)) == 1, 60, "the cancelled job")
            finally:
                if agent is not None:
                    agent.stop()
                collector.stop()
            out = report_the_farm(tmp, cfg.state_dir, influx)
            yield billing_rows(out), ended(influx)[0], extruded_mm(gcode, until="PAUSE"), out
    finally:
        moonraker.stop()
        klipper.remove()


def near(found, truth: float, tol: float) -> bool:
    return found not in (None, "") and math.isclose(float(found), truth, rel_tol=0, abs_tol=tol)


def test_a_real_agents_cancelled_klipper_job_counts_what_was_measured_as_it_is(farm):
    (row,), point, mm, _ = farm
    grams = mm * SLICER_G / SLICER_MM
    hours = point["duration"] / 3600
    assert row["Outcome"] == "cancelled" and row["Material"] == "PETG" and row["Amount from"] == "measured"
    # Klipper's filament_used equals the G-code's to 0.01 mm; the agent sends grams to 0.01 g
    assert near(row["Filament (m)"], mm / 1000, 1e-5) and near(row["Material (g)"], grams, 0.005), row
    assert near(row["Cost (SEK)"], hours * HOUR_RATE + grams / 1000 * PETG_PRICE, 0.005 / 1000 * PETG_PRICE + 1e-9), row
    assert row["Cause"] == "cancelled"


def test_the_xlsx_and_the_pdf_bill_as_the_csv(farm):
    assert_xlsx_and_pdf_bill_as_the_csv(farm[-1])
