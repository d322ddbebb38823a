"""Material and cost from a real agent watching a PrusaLink printer (the simulator's spec-checked
PrusaLink face, digest auth), end to end through Mosquitto, the collector and InfluxDB into the
report's CSV: a completed job counts its file's grams and metres (PrusaSlicer's meta, which the
test writes), a cancelled one pro rata to the progress the printer reported at the cancel."""

from __future__ import annotations

import math

import pytest

from devkit.pipeline import DB, RunningCollector, agent_config_with, collector_config, start_agent, wait_for
from devkit.servers import InfluxDB, Mosquitto, make_gcode
from devkit.sim import SimClock, Simulator
from devkit.sim.prusalink_remote import PrusaLinkRemote, sliced
from devkit.sim.server import PrinterSpec
from tests.integration.billing_outputs import assert_xlsx_and_pdf_bill_as_the_csv, billing_rows, report_the_farm

pytestmark = pytest.mark.integration

PASSWORD = "material-password"
CLIP = ("clip_0.2mm_PETG.gcode", [4.2], [1390.0], ["PETG"])
BRACKET = ("bracket_0.2mm_PLA.gcode", [12.5], [4190.2], ["PLA"])
PRICE = {"PLA": 250.0, "PETG": 300.0}
HOUR_RATE = 95.0
INVENTORY = f"""
[sites.lab]
organisation = "Beta Science Park"
county = "Västmanland"

[printers.mk4-1]
site = "lab"
model = "Prusa MK4"

[materials.PLA]
price_per_kg = {PRICE['PLA']}

[materials.PETG]
price_per_kg = {PRICE['PETG']}

[rates]
hour_rate = {HOUR_RATE}
"""


def ended(influx) -> list[dict]:
    return influx.query('SELECT "duration", "progress", "material" FROM job WHERE kind <> \'started\'', db=DB)


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("material-prusalink")
    sim = Simulator([PrinterSpec("mk4-1", site="lab", api="prusalink")], PASSWORD, SimClock(speed=1.0), auto=False).start()
    remote = PrusaLinkRemote(sim.url("mk4-1"), PASSWORD)
    try:
        with Mosquitto(tmp / "mosquitto") as mqtt, InfluxDB(tmp / "influxdb") as influx:
            (tmp / "fleet.toml").write_text(INVENTORY)
            (tmp / "password").write_text(PASSWORD + "\n")
            cfg = collector_config(tmp, mqtt, influx, tmp / "fleet.toml")
            collector = RunningCollector(cfg)
            table = {"id": "mk4-1", "type": "prusalink", "url": sim.url("mk4-1"), "model": "MK4",
                     "password_file": str(tmp / "password"), "interval": 0.5, "timeout": 0.5}
            agent = None
            try:
                collector.wait_connected()
                agent = start_agent(agent_config_with(tmp, mqtt, [table]))
                name, grams, mm, types = CLIP
                remote.print_file(name, sliced(make_gcode(100), grams, mm, types))
                wait_for(lambda: len(ended(influx)) == 1, 60, "the clip's end")
                name, grams, mm, types = BRACKET
                remote.print_file(name, sliced(make_gcode(20000), grams, mm, types))
                wait_for(lambda: (remote.status().get("job") or {}).get("progress", 0) >= 2, 60, "the bracket under way")
                remote.cancel()
                wait_for(lambda: len(ended(influx)) == 2, 60, "the bracket's cancel")
            finally:
                if agent is not None:
                    agent.stop()
                collector.stop()
            out = report_the_farm(tmp, cfg.state_dir, influx)
            yield billing_rows(out), {r["material"]: r for r in ended(influx)}, out
    finally:
        remote.close()
        sim.stop()


def near(found, truth: float) -> bool:
    return found not in (None, "") and math.isclose(float(found), truth, rel_tol=1e-9, abs_tol=1e-9)


def test_a_real_agents_prusalink_jobs_are_billed_from_the_files_meta_pro_rata_when_cancelled(farm):
    rows, stored, _ = farm
    assert [r["Outcome"] for r in rows] == ["completed", "cancelled"]
    bracket = stored["PLA"]
    assert 0 < bracket["progress"] < 100
    for row, (_, grams, mm, types), point in ((rows[0], CLIP, stored["PETG"]), (rows[1], BRACKET, bracket)):
        share = 1.0 if row["Outcome"] == "completed" else point["progress"] / 100
        hours = point["duration"] / 3600
        assert row["Material"] == types[0] and row["Amount from"] == "slicer estimate"
        assert near(row["Material (g)"], grams[0] * share) and near(row["Filament (m)"], mm[0] / 1000 * share), row
        assert near(row["Cost (SEK)"], hours * HOUR_RATE + grams[0] * share / 1000 * PRICE[types[0]]), row
    assert rows[1]["Cause"] == "cancelled"


def test_the_xlsx_and_the_pdf_bill_as_the_csv(farm):
    assert_xlsx_and_pdf_bill_as_the_csv(farm[-1])
