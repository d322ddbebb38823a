"""Material and cost from a real agent watching the real OctoPrint 1.11 (virtual printer), end to
end through Mosquitto, the collector and InfluxDB into the report's CSV. OctoPrint's analysis
gives a length and no type: the inventory's ``assumed_material`` weighs and prices it. The truth
is the filament the G-code pushes, counted here from the file itself, with PLA's density over a
1.75 mm filament and the inventory's price and rate."""

from __future__ import annotations

import math

import pytest

from devkit.gcode import extruded_mm
from devkit.pipeline import DB, RunningCollector, agent_config_for, collector_config, start_agent, wait_for
from devkit.servers import InfluxDB, Mosquitto, OctoPrint, make_gcode
from tests.integration.billing_outputs import assert_xlsx_and_pdf_bill_as_the_csv, billing_rows, report_the_farm

pytestmark = pytest.mark.integration

PLA_PRICE, HOUR_RATE, PLA_DENSITY = 250.0, 80.0, 1.24
INVENTORY = f"""
[sites.lab]
organisation = "Alfa universitet"
county = "Örebro"

[printers.vp-1]
site = "lab"
model = "Prusa i3 MK3S+"

[materials.PLA]
price_per_kg = {PLA_PRICE}

[rates]
hour_rate = {HOUR_RATE}
assumed_material = "PLA"
"""


def ended(influx) -> list[dict]:
    return influx.query('SELECT "duration" FROM job WHERE kind <> \'started\'', db=DB)


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("material-octoprint")
    gcode = make_gcode(150)
    octoprint = OctoPrint(tmp / "octoprint").start()
    try:
        with Mosquitto(tmp / "mosquitto") as mqtt, InfluxDB(tmp / "influxdb") as influx:
            (tmp / "fleet.toml").write_text(INVENTORY)
            cfg = collector_config(tmp, mqtt, influx, tmp / "fleet.toml")
            collector = RunningCollector(cfg)
            agent = None
            try:
                collector.wait_connected()
                reply = octoprint.api("POST", "/api/files/local", files={"file": ("part.gcode", gcode.encode())})
                assert reply.status_code == 201, reply.text
                wait_for(lambda: octoprint.api("GET", "/api/files/local/part.gcode").json().get("gcodeAnalysis"),
                         60, "OctoPrint's analysis of the file", interval=0.2)
                agent = start_agent(agent_config_for(tmp, mqtt, [("vp-1", octoprint.url, octoprint.api_key)]))
                wait_for(lambda: influx.query("SELECT count(seq) AS n FROM telemetry", db=DB), 30, "telemetry")
                reply = octoprint.api("POST", "/api/files/local/part.gcode", json={"command": "select", "print": True})
                assert reply.status_code == 204, reply.text
                wait_for(lambda: len(ended(influx)) == 1, 90, "the job's end")
            finally:
                if agent is not None:
                    agent.stop()
                collector.stop()
            out = report_the_farm(tmp, cfg.state_dir, influx)
            yield billing_rows(out), ended(influx)[0], extruded_mm(gcode), out
    finally:
        octoprint.stop()


def near(found, truth: float, tol: float = 1e-9) -> bool:
    return found not in (None, "") and math.isclose(float(found), truth, rel_tol=tol, abs_tol=tol)


def test_a_real_agents_octoprint_job_is_weighed_by_the_assumed_materials_density_and_billed(farm):
    (row,), point, mm, _ = farm
    grams = mm * math.pi * 0.875 ** 2 / 1000 * PLA_DENSITY
    hours = point["duration"] / 3600
    assert row["Outcome"] == "completed" and row["Material"] == "PLA" and row["Amount from"] == "slicer estimate"
    # OctoPrint's analysis rounds the length it reports to 0.01 mm (test_octoprint_material)
    assert near(row["Filament (m)"], mm / 1000, 1e-5) and near(row["Material (g)"], grams, 1e-5), row
    assert near(row["Cost (SEK)"], hours * HOUR_RATE + grams / 1000 * PLA_PRICE, 1e-6), row


def test_the_xlsx_and_the_pdf_bill_as_the_csv(farm):
    assert_xlsx_and_pdf_bill_as_the_csv(farm[-1])
