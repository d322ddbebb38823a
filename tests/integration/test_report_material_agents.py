"""Material and cost from a real agent, end to end: a Bambu printer (the TLS MQTT stand-in) whose
jobs' 3MF the agent fetches over real implicit-TLS FTPS, through Mosquitto, the collector and
InfluxDB, into ``printfarm-server report``'s CSV and XLSX. The truth is the 3MF's own grams and
metres (the slice_info the test writes), the progress the printer reported at a failure, the
prices and rates the test writes into the inventory, and each job's duration as stored with it:
the report's accounting is what is checked, not the printer's clock."""

from __future__ import annotations

import math

import openpyxl
import pytest

from devkit.pipeline import DB, RunningCollector, agent_config_with, collector_config, start_agent, wait_for
from devkit.servers import InfluxDB, Mosquitto
from devkit.servers.bambu import BambuBroker
from devkit.servers.bambu_ftps import BambuFTPS
from devkit.sim.faces.bambu_3mf import three_mf
from devkit.sim.faces.bambu_printer import BambuLink
from tests.integration.billing_outputs import assert_xlsx_and_pdf_bill_as_the_csv, billing_rows, report_the_farm

pytestmark = pytest.mark.integration

SERIAL = "00M09A350100123"
WIDGET = [{"id": 1, "tray_info_idx": "GFA00", "type": "PLA", "color": "#000000", "used_m": "5.45", "used_g": "17.32"},
          {"id": 3, "tray_info_idx": "GFG00", "type": "PETG", "color": "#F95959", "used_m": "2.10", "used_g": "6.71"}]
BRACKET = [{"id": 1, "tray_info_idx": "GFA00", "type": "PLA", "color": "#FFFFFF", "used_m": "12.00", "used_g": "36.00"}]
PRICE = {"PLA": 250.0, "PETG": 300.0}
HOUR_RATE, START_FEE = 120.0, 15.0
FAILED_AT = 40  # % printed when the bracket failed
INVENTORY = f"""
[sites.lab]
organisation = "Alfa universitet"
county = "Örebro"

[printers.bbl-1]
site = "lab"
model = "Bambu Lab X1C"

[materials.PLA]
price_per_kg = {PRICE['PLA']}

[materials.PETG]
price_per_kg = {PRICE['PETG']}

[rates.models."Bambu Lab X1C"]
hour_rate = {HOUR_RATE}
start_fee = {START_FEE}
"""


def jobs_in_db(influx) -> list[dict]:
    return influx.query('SELECT "duration", "progress", "material" FROM job WHERE kind <> \'started\'', db=DB)


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("material-agents")
    with Mosquitto(tmp / "mosquitto") as mqtt, InfluxDB(tmp / "influxdb") as influx:
        bambu = BambuBroker(tmp / "bambu", [SERIAL]).start()
        link = BambuLink(bambu.host, bambu.port, client_id="devkit-material-agents")
        x1 = link.add(SERIAL, "X1")
        link.heartbeats(0.25)
        d = bambu.dir
        ftps = BambuFTPS(d / f"{SERIAL}.crt", d / f"{SERIAL}.key", bambu.endpoints[SERIAL].access_code).__enter__()
        ftps.files["/widget.gcode.3mf"] = three_mf({1: WIDGET})
        ftps.files["/bracket.gcode.3mf"] = three_mf({1: BRACKET})
        (tmp / "fleet.toml").write_text(INVENTORY)
        cfg = collector_config(tmp, mqtt, influx, tmp / "fleet.toml")
        collector = RunningCollector(cfg)
        table = {"id": "bbl-1", "type": "bambu", "host": bambu.host, "port": bambu.endpoints[SERIAL].port,
                 "serial": SERIAL, "access_code_file": str(bambu.access_code_file(SERIAL)), "ca_file": str(bambu.ca_path),
                 "model": "X1C", "interval": 0.5, "timeout": 0.5, "ftps_port": ftps.port}
        agent = None
        try:
            collector.wait_connected()
            x1.idle()
            agent = start_agent(agent_config_with(tmp, mqtt, [table]))
            wait_for(lambda: influx.query("SELECT count(seq) AS n FROM telemetry", db=DB), 30, "the printer's telemetry")
            x1.start("widget", layers=20, minutes=2)
            x1.progress(50, 10, 1, nozzle=220.0, bed=60.0)
            wait_for(lambda: ftps.retrieved == ["/widget.gcode.3mf"], 30, "the widget's 3MF over FTPS")
            x1.finish()
            wait_for(lambda: len(jobs_in_db(influx)) == 1, 30, "the widget's end")
            x1.idle()
            x1.start("bracket", layers=40, minutes=5)
            x1.progress(FAILED_AT, 16, 3, nozzle=220.0, bed=60.0)
            wait_for(lambda: "/bracket.gcode.3mf" in ftps.retrieved, 30, "the bracket's 3MF over FTPS")
            x1.fail(0x03008009, [(0x03000100, 0x00010007)])  # heatbed temperature malfunction
            wait_for(lambda: len(jobs_in_db(influx)) == 2, 30, "the bracket's end")
        finally:
            if agent is not None:
                agent.stop()
            collector.stop()
            ftps.__exit__(None, None, None)
            link.close()
            bambu.stop()
        out = report_the_farm(tmp, cfg.state_dir, influx)
        stored = {row["material"]: row for row in jobs_in_db(influx)}
        yield out, stored



def near(found, truth: float) -> bool:
    return found not in (None, "") and math.isclose(float(found), truth, rel_tol=1e-9, abs_tol=1e-9)


def truth(filaments: list[dict], share: float, hours: float) -> dict:
    grams = sum(float(f["used_g"]) for f in filaments) * share
    metres = sum(float(f["used_m"]) for f in filaments) * share
    material = sum(float(f["used_g"]) * share / 1000 * PRICE[f["type"]] for f in filaments)
    return {"grams": grams, "metres": metres, "cost": hours * HOUR_RATE + material + START_FEE,
            "material": "+".join(f["type"] for f in filaments)}


def test_a_real_agents_bambu_jobs_are_billed_from_their_3mf_pro_rata_when_failed(farm):
    out, stored = farm
    rows = billing_rows(out)
    assert [r["Outcome"] for r in rows] == ["completed", "failed"]
    widget, bracket = stored["PLA+PETG"], stored["PLA"]
    assert bracket["progress"] == FAILED_AT  # the printer's progress at the failure, as the agent sent it
    for row, filaments, share, point in ((rows[0], WIDGET, 1.0, widget), (rows[1], BRACKET, FAILED_AT / 100, bracket)):
        hours = point["duration"] / 3600
        want = truth(filaments, share, hours)
        assert row["Material"] == want["material"] and row["Amount from"] == "slicer estimate"
        assert near(row["Material (g)"], want["grams"]) and near(row["Filament (m)"], want["metres"]), row
        assert near(row["Machine hours"], hours) and near(row["Cost (SEK)"], want["cost"]), row
    assert rows[1]["Cause"].startswith("Bambu Lab:")


def test_the_xlsx_bills_the_same(farm):
    out, _ = farm
    (path,) = out.glob("*-en.xlsx")
    wb = openpyxl.load_workbook(path, read_only=True)
    cells = [list(r) for r in wb["Jobs to invoice"].iter_rows(values_only=True)]
    wb.close()
    header = cells[0]
    for row, csv_row in zip(cells[1:], billing_rows(out)):
        for column in ("Material (g)", "Filament (m)", "Cost (SEK)"):
            assert near(csv_row[column], row[header.index(column)])


def test_the_pdf_bills_as_the_csv_too(farm):
    out, _ = farm
    assert_xlsx_and_pdf_bill_as_the_csv(out)
