"""Reports against a scripted fleet with known ground truth, sent as real MQTT messages through
Mosquitto and the real collector into InfluxDB, then reported by the real CLI.

The ground truth is computed here from the script's own intervals (what each printer did when),
not from the messages and not with the report code.
"""

from __future__ import annotations

import csv
import subprocess
import time
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest

from common import protocol
from server.__main__ import main as server_main
from server.reports import periods
from devkit.pipeline import DB, RunningCollector, collector_config, wait_for, write_inventory
from devkit.servers import InfluxDB, Mosquitto
from tests.integration.job_counts import assert_each_job_started_and_ended_once, events_per_job
from tests.integration.scripted_fleet import (
    H, Q3_END, Q3_START, Job, Printer, Session, messages, publish, send_order, t, truth_hours,
)

pytestmark = pytest.mark.integration

FLEET = [
    Printer("umu", "a1", "pi-umu", [Session("06-20 08:00", "10-05 00:00", [
        ("06-20 08:00", "idle"), ("06-30 20:00", "printing"), ("07-01 01:50", "finishing"), ("07-01 02:00", "idle"),
        ("07-15 09:00", "printing"), ("07-15 11:00", "paused"), ("07-15 12:30", "printing"), ("07-15 16:00", "idle"),
        ("08-03 10:00", "error"), ("08-03 14:00", "idle"),
        ("08-20 08:00", "printing"), ("08-20 09:00", "cancelling"), ("08-20 09:01", "idle"),
        ("09-10 10:00", "printing"), ("09-10 12:00", "error"), ("09-10 12:30", "offline"), ("09-11 08:00", "idle"),
        ("09-30 20:00", "printing"), ("10-01 01:00", "idle"),
    ], [
        Job("started", "06-30 20:00", "anna"), Job("done", "07-01 02:00", "anna", "06-30 20:00", 12_000.0),
        Job("started", "07-15 09:00", "bo"), Job("paused", "07-15 11:00", "bo"), Job("resumed", "07-15 12:30", "bo"),
        Job("done", "07-15 16:00", "bo", "07-15 09:00", 8_000.5),
        Job("started", "08-20 08:00", "anna"), Job("cancelled", "08-20 09:01", "anna", "08-20 08:00", 3_000.0),
        Job("started", "09-10 10:00", "bo"), Job("failed", "09-10 12:00", "bo", "09-10 10:00", 5_000.0),
        Job("started", "09-30 20:00", "anna"), Job("done", "10-01 01:00", "anna", "09-30 20:00", 9_000.0),
    ])]),
    Printer("umu", "a2", "pi-umu", duplicate=True, sessions=[
        Session("06-25 00:00", "08-10 12:00", [
            ("06-25 00:00", "idle"), ("07-05 18:00", "offline"), ("07-06 07:00", "idle"),
            ("07-20 10:00", "printing"), ("07-20 14:00", "idle"),
        ], [Job("started", "07-20 10:00", "anna"), Job("done", "07-20 14:00", "anna", "07-20 10:00", 4_321.0)]),
        Session("08-10 15:30", "09-25 06:00", [
            ("08-10 15:30", "idle"), ("08-15 00:00", "unreachable"), ("08-15 03:00", "idle"),
            ("09-01 08:00", "printing"), ("09-01 09:30", "idle"),
        ], [Job("started", "09-01 08:00", "eva"), Job("done", "09-01 09:30", "eva", "09-01 08:00", 1_000.0)]),
    ]),
    Printer("lul", "b1", "pi-lul", late=("08-20 00:00", "08-26 00:00"), sessions=[
        Session("08-15 10:00", "10-03 00:00", [
            ("08-15 10:00", "idle"), ("08-20 10:00", "printing"), ("08-20 18:00", "idle"),
            ("09-05 09:00", "printing"), ("09-05 09:45", "error"), ("09-05 11:00", "idle"),
        ], [Job("started", "08-20 10:00", "carl"), Job("done", "08-20 18:00", "carl", "08-20 10:00", 20_000.0),
            Job("started", "09-05 09:00", "carl"), Job("failed", "09-05 09:45", "carl", "09-05 09:00", 2_000.0)]),
    ]),
    Printer("makers", "x1", "pi-makers", sessions=[
        Session("07-10 00:00", "10-02 00:00", [("07-10 00:00", "idle"), ("07-12 10:00", "printing"),
                                               ("07-12 11:00", "idle")],
                [Job("started", "07-12 10:00", "dan"), Job("done", "07-12 11:00", "dan", "07-12 10:00", 500.0)]),
    ]),
]
INVENTORY_PRINTERS = {"a1": "umu", "a2": "umu", "b1": "lul", "c1": "lul"}  # c1 never reports; x1 is missing
SITES = {"umu": ("Umeå universitet", "Västerbotten"), "lul": ("Luleå tekniska universitet", "Norrbotten")}


# --- the messages an agent would have sent ------------------------------------------------------


LIVE_SINCE_MS = 2 * H  # a printer reporting right now, for a report of the running month
LIVE_COUNTS = {"telemetry": 13, "state": 1, "job": 0}
LIVE = {}


def live_messages() -> list[tuple[str, bytes]]:
    now = int(time.time() * 1000) - 5_000
    first = LIVE["first"] = now - LIVE_SINCE_MS
    status = protocol.Status(v=1, ts=first, printer="live1", site="umu", seq=1, state="idle")
    out = [(protocol.printer_topic("umu", "live1", "status"), protocol.encode(status))]
    for i, ts in enumerate(range(first, now + 1, 10 * 60_000)):
        tel = protocol.Telemetry(v=1, ts=ts, printer="live1", site="umu", seq=2 + i, state="idle")
        out.append((protocol.printer_topic("umu", "live1", "telemetry"), protocol.encode(tel)))
    assert len(out) - 1 == LIVE_COUNTS["telemetry"]
    return out


# --- ground truth from the script ---------------------------------------------------------------


def truth_jobs(p: Printer) -> dict:
    jobs = [j for s in p.sessions for j in s.jobs if Q3_START <= t(j.at) < Q3_END]
    count = {k: sum(1 for j in jobs if j.kind == k) for k in ("started", "done", "failed", "cancelled")}
    count["filament_m"] = sum(j.filament_mm for j in jobs if j.kind == "done") / 1000
    count["users"] = {(p.site, j.user) for j in jobs if j.user and j.kind in ("started", "done", "failed", "cancelled")}
    return count


# --- the fleet in a database, once for all tests here -------------------------------------------


@pytest.fixture(scope="module")
def fleet_db(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reports")
    with Mosquitto(tmp / "mosquitto") as broker, InfluxDB(tmp / "influxdb") as influx:
        inventory = write_inventory(tmp / "fleet.toml", INVENTORY_PRINTERS, SITES)
        collector = RunningCollector(collector_config(tmp, broker, influx, inventory))
        try:
            collector.wait_connected()
            items = [m for p in FLEET for m in send_order(p)] + live_messages()
            publish(broker, items)
            expected = {kind: len({(ts, topic) for p in FLEET for ts, topic, _ in messages(p)
                                   if topic.endswith(suffix) and "/agent/" not in topic}) + LIVE_COUNTS[kind]
                        for kind, suffix in (("telemetry", "/telemetry"), ("state", "/status"), ("job", "/event"))}
            seen = {}
            try:
                wait_for(lambda: seen.update(_counts(influx)) or seen == expected, 30, "all points in InfluxDB")
            except AssertionError:
                raise AssertionError(f"InfluxDB holds {seen}, expected {expected}") from None
            # a2's second copies were delivered and written too (the positive control), and each
            # landed on its own point: still one point per message, one start and end per job.
            counters = collector.collector.metrics.counters
            wait_for(lambda: counters["messages_received"] >= len(items), 30, "every copy at the collector")
            collector.stop()
            assert counters["messages_received"] == len(items) and _counts(influx) == expected
            assert_each_job_started_and_ended_once(events_per_job(influx))
        finally:
            collector.stop()
        config = tmp / "server.toml"
        config.write_text(f'inventory = "{inventory}"\nstate_dir = "{tmp / "state"}"\n'
                          f'[influx]\nurl = "{influx.url}"\ndatabase = "{DB}"\nspool_dir = "{tmp / "spool"}"\n')
        yield tmp, config, influx


def _counts(influx) -> dict:
    out = {}
    for measurement, field_name in (("telemetry", "seq"), ("state", "seq"), ("job", "seq")):
        found = influx.query(f"SELECT count({field_name}) AS n FROM {measurement}", db=DB)
        out[measurement] = found[0]["n"] if found else 0
    return out


def run_report(config: Path, out: Path, *extra: str) -> int:
    return server_main(["report", "-c", str(config), "--out", str(out), "--no-progress", *extra])


def read_csv(path: Path) -> list[dict]:
    with path.open(encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def q3_en(fleet_db):
    tmp, config, _ = fleet_db
    out = tmp / "out-en"
    assert run_report(config, out, "--period", "2026-Q3", "--format", "xlsx,pdf,csv", "--lang", "en") == 0
    return out


# --- the tests ----------------------------------------------------------------------------------


def test_every_printers_hours_in_each_state_equal_the_script_to_the_millisecond(q3_en):
    rows = {r["Printer"]: r for r in read_csv(q3_en / "printfarm-report-2026-Q3-en-printer.csv")}
    columns = {"printing": "Printing hours", "paused": "Paused hours", "idle": "Idle hours",
               "error": "Error hours", "offline": "Offline hours", "unknown": "Unknown hours (no data)",
               "not_in_network": "Hours before first data (not yet in network)"}
    for p in FLEET:
        truth = truth_hours(p)
        got = {cat: round(float(rows[p.id][col]) * H) for cat, col in columns.items()}
        assert got == truth, p.id
    c1 = {cat: round(float(rows["c1"][col]) * H) for cat, col in columns.items()}
    assert c1["not_in_network"] == Q3_END - Q3_START and sum(c1.values()) == Q3_END - Q3_START


def test_jobs_filament_users_and_organisations_equal_the_script(q3_en):
    rows = {r["Printer"]: r for r in read_csv(q3_en / "printfarm-report-2026-Q3-en-printer.csv")}
    all_users = set()
    for p in FLEET:
        truth, row = truth_jobs(p), rows[p.id]
        all_users |= truth["users"]
        assert (int(row["Jobs started"]), int(row["Jobs completed"]), int(row["Jobs failed"]),
                int(row["Jobs cancelled"])) == (truth["started"], truth["done"], truth["failed"],
                                                truth["cancelled"]), p.id
        assert float(row["Filament, estimate (m)"]) == pytest.approx(truth["filament_m"], abs=1e-9), p.id
        assert int(row["Distinct users"]) == len(truth["users"]), p.id
    network = read_csv(q3_en / "printfarm-report-2026-Q3-en-network.csv")[0]
    assert int(network["Distinct users"]) == len(all_users) == 5
    assert int(network["Organisations served"]) == 3  # Umeå, Luleå and the unknown one of site 'makers'
    assert int(network["Jobs started"]) == sum(truth_jobs(p)["started"] for p in FLEET)


def test_site_county_and_network_sums_and_both_utilisations_follow_the_definitions(q3_en):
    sites = {r["Site"]: r for r in read_csv(q3_en / "printfarm-report-2026-Q3-en-site.csv")}
    umu = [p for p in FLEET if p.site == "umu"]
    ms = {cat: sum(truth_hours(p)[cat] for p in umu) for cat in truth_hours(umu[0])}
    in_network = sum(ms.values()) - ms["not_in_network"]
    available = in_network - ms["offline"] - ms["unknown"]
    row = sites["umu"]
    assert round(float(row["Hours in period (in network)"]) * H) == in_network
    assert round(float(row["Available hours"]) * H) == available
    assert float(row["Utilisation of period"]) == pytest.approx(ms["printing"] / in_network, rel=1e-12)
    assert float(row["Utilisation of available hours"]) == pytest.approx(ms["printing"] / available, rel=1e-12)
    counties = {r["County"]: r for r in read_csv(q3_en / "printfarm-report-2026-Q3-en-county.csv")}
    assert set(counties) == {"Västerbotten", "Norrbotten", "unknown"}
    # c1 never reported: Norrbotten's hours in network are b1's alone, and its utilisation is not diluted by c1
    b1 = truth_hours(FLEET[2])
    assert round(float(counties["Norrbotten"]["Hours in period (in network)"]) * H) == \
        sum(b1.values()) - b1["not_in_network"]


def test_job_list_has_one_row_per_job_with_its_outcome(q3_en):
    jobs = read_csv(q3_en / "printfarm-report-2026-Q3-en-jobs.csv")
    outcomes = sorted((r["Printer"], r["Outcome"]) for r in jobs)
    assert outcomes == sorted([
        ("a1", "completed"), ("a1", "completed"), ("a1", "cancelled"), ("a1", "failed"),
        ("a1", "not finished in period"), ("a2", "completed"), ("a2", "completed"),
        ("b1", "completed"), ("b1", "failed"), ("x1", "completed")])
    first = next(r for r in jobs if r["Printer"] == "a1")
    assert first["Started"] == "2026-06-30 22:00:00" and first["Ended"] == "2026-07-01 04:00:00"  # local time


def test_report_names_the_unlisted_printer_the_unknown_site_the_silent_and_the_new_printer(q3_en):
    about = openpyxl.load_workbook(q3_en / "printfarm-report-2026-Q3-en.xlsx")["About"]
    text = "\n".join(str(c.value) for row in about.iter_rows() for c in row if c.value)
    assert "Printer makers/x1 is not in the inventory" in text
    assert "Site makers is not in the inventory: organisation and county are 'unknown'" in text
    assert "Printer lul/c1 has never sent data" in text
    assert "Printer lul/b1 sent its first data on 2026-08-15 12:00" in text
    assert "Printer umu/a2 has" in text and "without data in 2 gap(s)" in text


def test_xlsx_numbers_equal_the_csv_numbers_sheet_by_sheet(q3_en):
    wb = openpyxl.load_workbook(q3_en / "printfarm-report-2026-Q3-en.xlsx")
    names = {"Printers": "printer", "Sites": "site", "Organisations": "organisation", "Counties": "county",
             "Network": "network", "Monthly": "monthly", "Jobs": "jobs"}
    for sheet, key in names.items():
        ws = wb[sheet]
        assert ws.freeze_panes == "A2"
        xrows = [list(r) for r in ws.iter_rows(values_only=True)]
        crows = list(csv.reader((q3_en / f"printfarm-report-2026-Q3-en-{key}.csv").open(encoding="utf-8-sig")))
        assert xrows[0] == crows[0] and len(xrows) == len(crows) > 1
        for xrow, crow in zip(xrows[1:], crows[1:]):
            for x, c in zip(xrow, crow):
                if isinstance(x, (int, float)) and not isinstance(x, bool):
                    assert float(c) == x, (sheet, xrow, crow)
                elif isinstance(x, datetime):
                    assert c == x.isoformat(sep=" ", timespec="seconds")
                else:
                    assert (x or "") == c


def test_pdf_renders_to_pages_with_charts(q3_en, tmp_path):
    pdf = q3_en / "printfarm-report-2026-Q3-en.pdf"
    subprocess.run(["pdftoppm", "-png", "-r", "60", str(pdf), str(tmp_path / "page")], check=True, timeout=60)
    pages = sorted(tmp_path.glob("page*.png"))
    assert len(pages) >= 3
    from PIL import Image

    charts = Image.open(pages[-2]).convert("RGB")  # the page before the site table holds the charts
    colours = {colour for _, colour in charts.getcolors(maxcolors=1 << 24)}
    assert (31, 119, 180) in colours and (44, 160, 44) in colours  # bars of the site and trend charts


def test_swedish_and_english_reports_differ_only_in_labels(fleet_db, q3_en):
    tmp, config, _ = fleet_db
    out = tmp / "out-sv"
    assert run_report(config, out, "--period", "2026-Q3", "--format", "xlsx,csv", "--lang", "sv") == 0
    en = openpyxl.load_workbook(q3_en / "printfarm-report-2026-Q3-en.xlsx")
    sv = openpyxl.load_workbook(out / "printfarm-report-2026-Q3-sv.xlsx")
    assert len(en.sheetnames) == len(sv.sheetnames) and en.sheetnames != sv.sheetnames
    for en_ws, sv_ws in list(zip(en.worksheets, sv.worksheets))[1:]:
        en_rows = list(en_ws.iter_rows(values_only=True))
        sv_rows = list(sv_ws.iter_rows(values_only=True))
        assert en_rows[0] != sv_rows[0]
        numbers = lambda rows: [[v for v in r if isinstance(v, (int, float, datetime))] for r in rows[1:]]
        assert numbers(en_rows) == numbers(sv_rows), en_ws.title
    assert "Skrivaren makers/x1 finns inte i inventariet" in "\n".join(
        str(c.value) for row in sv["Om rapporten"].iter_rows() for c in row if c.value)


def test_a_period_without_data_says_so_and_counts_no_hours_as_idle(fleet_db):
    tmp, config, _ = fleet_db
    out = tmp / "out-empty"
    assert run_report(config, out, "--period", "2025-03", "--format", "csv,xlsx", "--lang", "en") == 0
    printers = read_csv(out / "printfarm-report-2025-03-en-printer.csv")
    assert {r["Printer"] for r in printers} == set(INVENTORY_PRINTERS)
    assert all(float(r["Idle hours"]) == 0 and float(r["Printing hours"]) == 0 for r in printers)
    network = read_csv(out / "printfarm-report-2025-03-en-network.csv")[0]
    assert network["Utilisation of period"] == "n/a" and network["Utilisation of available hours"] == "n/a"
    about = openpyxl.load_workbook(out / "printfarm-report-2025-03-en.xlsx")["About"]
    text = "\n".join(str(c.value) for row in about.iter_rows() for c in row if c.value)
    assert "No state changes or job events were recorded in this period." in text


def test_a_month_inside_the_quarter_is_clipped_exactly(fleet_db):
    tmp, config, _ = fleet_db
    out = tmp / "out-august"
    assert run_report(config, out, "--period", "2026-08", "--format", "csv", "--lang", "en") == 0
    low, high = t("07-31 22:00"), t("08-31 22:00")
    rows = {r["Printer"]: r for r in read_csv(out / "printfarm-report-2026-08-en-printer.csv")}
    for p in FLEET:
        truth = truth_hours(p, low, high)
        assert round(float(rows[p.id]["Unknown hours (no data)"]) * H) == truth["unknown"], p.id
        assert round(float(rows[p.id]["Printing hours"]) * H) == truth["printing"], p.id
        assert round(float(rows[p.id]["Idle hours"]) * H) == truth["idle"], p.id


def test_network_hours_and_the_monthly_trend_equal_the_script(q3_en):
    network = read_csv(q3_en / "printfarm-report-2026-Q3-en-network.csv")[0]
    truths = [truth_hours(p) for p in FLEET]
    c1_ms = Q3_END - Q3_START  # never reported: all of it before first data
    assert round(float(network["Printing hours"]) * H) == sum(tr["printing"] for tr in truths)
    assert round(float(network["Unknown hours (no data)"]) * H) == sum(tr["unknown"] for tr in truths)
    assert round(float(network["Offline hours"]) * H) == sum(tr["offline"] for tr in truths)
    assert round(float(network["Hours before first data (not yet in network)"]) * H) == \
        sum(tr["not_in_network"] for tr in truths) + c1_ms
    months = read_csv(q3_en / "printfarm-report-2026-Q3-en-monthly.csv")
    bounds = [Q3_START, t("07-31 22:00"), t("08-31 22:00"), Q3_END]
    assert [m["Month"] for m in months] == ["2026-07", "2026-08", "2026-09"]
    for month, low, high in zip(months, bounds, bounds[1:]):
        assert round(float(month["Printing hours"]) * H) == sum(truth_hours(p, low, high)["printing"] for p in FLEET)


def test_a_running_month_is_counted_up_to_now_without_calling_a_live_printer_silent(fleet_db):
    tmp, config, _ = fleet_db
    out = tmp / "out-now"
    month = datetime.fromtimestamp(LIVE["first"] / 1000, periods_zone()).strftime("%Y-%m")
    before = int(time.time() * 1000)
    assert run_report(config, out, "--period", month, "--format", "csv", "--lang", "en") == 0
    after = int(time.time() * 1000)
    live = next(r for r in read_csv(out / f"printfarm-report-{month}-en-printer.csv") if r["Printer"] == "live1")
    month_start = periods.parse(month).start_ms
    assert round(float(live["Unknown hours (no data)"]) * H) == 0
    assert round(float(live["Hours before first data (not yet in network)"]) * H) == LIVE["first"] - month_start
    idle = round(float(live["Idle hours"]) * H)
    assert before - LIVE["first"] <= idle <= after - LIVE["first"]


def periods_zone():
    return periods.zone(periods.DEFAULT_TZ)
