"""Maintenance on the real pipeline: job events through Mosquitto into the collector and InfluxDB,
the collector's periodic service check, the service_due alert at a webhook, and
``printfarm-server maintenance record|status`` run as subprocesses against the same InfluxDB."""

from __future__ import annotations

import csv
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from common import protocol
from devkit.pipeline import DB, RunningCollector, wait_for
from devkit.pseudonym_secret import secret_file
from devkit.receivers import WebhookReceiver
from server import config as server_config

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
CHECK = 0.3  # [alerts.rules.service_due] check_interval

INVENTORY = """
[sites.lab]
organisation = "Org of lab"
county = "Västerbotten"

[printers.mk4-1]
site = "lab"
model = "Prusa MK4"

[printers.ctl-1]
site = "lab"
model = "Control"

[maintenance.models."Prusa MK4"]
service_jobs = 2
service_hours = 1000

[maintenance.printers.ctl-1]  # the positive control: due after one job
service_jobs = 1
"""


def write_config(tmp: Path, broker, influx, hook: WebhookReceiver, influx_url: str | None = None) -> Path:
    (tmp / "fleet.toml").write_text(INVENTORY)
    secret_file(tmp / "state")
    path = tmp / "server.toml"
    path.write_text(f"""
inventory = "{tmp / 'fleet.toml'}"
state_dir = "{tmp / 'state'}"
[mqtt]
host = "{broker.host}"
port = {broker.port}
client_id = "collector-maintenance"
[influx]
url = "{influx_url or influx.url}"
database = "{DB}"
flush_interval = 0.2
timeout = 2.0
spool_dir = "{tmp / 'spool'}"
[http]
host = "127.0.0.1"
port = 0
public = "status"
[alerts]
tick_interval = 0.2
cooldown = 0
[alerts.receivers.hook]
type = "webhook"
url = "{hook.url}"
retry_min = 0.2
retry_max = 0.5
[alerts.rules.service_due]
check_interval = {CHECK}
""")
    return path


def cli(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server", "maintenance", *args, "-c", str(config)],
                          cwd=REPO, capture_output=True, text=True, timeout=60)


class Jobs:
    """Ended jobs published at QoS 1 as an agent would."""

    def __init__(self, broker):
        self.client = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, client_id="test-jobs")
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.seq = 0

    def done(self, printer: str, filament_mm: float = 1500.0) -> None:
        self.seq += 1
        now = int(time.time() * 1000) + self.seq  # distinct points
        msg = protocol.Event(v=1, ts=now, printer=printer, site="lab", seq=self.seq, kind="done",
                             file="part.gcode", duration=600.0, filament_mm=filament_mm, job_started=now - 600_000)
        self.client.publish(protocol.printer_topic("lab", printer, "event"), protocol.encode(msg), qos=1) \
            .wait_for_publish(5)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def notes(hook: WebhookReceiver, printer: str) -> list[str]:
    return [n["kind"] for n in hook.notes if n.get("printer") == printer and n["rule"] == "service_due"]


def counted(collector: RunningCollector, printer: str, jobs: int) -> None:
    """Until the collector's check has counted ``jobs`` jobs of ``printer`` since its last service."""
    def seen():
        w = collector.collector.alerts.printers.get(("lab", printer))
        return w is not None and w.service is not None and w.service.counters.jobs == jobs
    wait_for(seen, 20, f"the service check to count {jobs} job(s) of {printer}", interval=0.05)


def test_service_due_fires_once_survives_a_restart_and_recovers_on_maintenance_record(
        tmp_path, mosquitto, influxdb):
    hook = WebhookReceiver()
    config = write_config(tmp_path, mosquitto, influxdb, hook)
    cfg = server_config.load(config)
    jobs = Jobs(mosquitto)
    collector = RunningCollector(cfg)
    try:
        collector.wait_connected()
        jobs.done("mk4-1")
        counted(collector, "mk4-1", 1)
        assert notes(hook, "mk4-1") == []  # 1 of 2 jobs: not due yet
        jobs.done("mk4-1")
        wait_for(lambda: notes(hook, "mk4-1"), 20, "the service_due alert of mk4-1")
        firing = hook.of("service_due", "firing")[0]
        assert "2 of 2 jobs" in firing["text"] and "no service recorded" in firing["text"]
        jobs.done("mk4-1")  # past the interval further: the same incident, no second alert
        counted(collector, "mk4-1", 3)

        collector.stop()  # the open incident is saved; the printer is still due
        collector = RunningCollector(server_config.load(config))
        collector.wait_connected()
        assert list(collector.collector.alerts.open) == ["service_due/lab/mk4-1"]
        counted(collector, "mk4-1", 3)
        # The control becomes due after the restart: once its alert arrived, one for mk4-1 made by
        # the restart (at start or at a check) would have arrived before it.
        jobs.done("ctl-1")
        wait_for(lambda: notes(hook, "ctl-1"), 20, "the control's service_due alert")
        assert notes(hook, "mk4-1") == ["firing"]

        done = cli(config, "record", "mk4-1", "--note", "new nozzle; belts tensioned")
        assert done.returncode == 0, done.stderr
        wait_for(lambda: notes(hook, "mk4-1") == ["firing", "resolved"], 20, "mk4-1's recovery notice")
        assert "service_due/lab/mk4-1" not in collector.collector.alerts.open
        stored = influxdb.query('SELECT "note", "organisation" FROM "autogen"."maintenance"', db=DB)
        assert [(r["note"], r["organisation"]) for r in stored] == [("new nozzle; belts tensioned", "Org of lab")]

        # The next interval: two more jobs, one more alert.
        jobs.done("mk4-1")
        counted(collector, "mk4-1", 1)
        jobs.done("mk4-1")
        wait_for(lambda: notes(hook, "mk4-1") == ["firing", "resolved", "firing"], 20, "the next interval's alert")

        status = cli(config, "status")
        assert status.returncode == 0, status.stderr
        lines = status.stdout.splitlines()
        assert max(map(len, lines)) <= 100
        mk4 = next(line for line in lines if line.startswith("mk4-1"))
        assert time.strftime("%Y-%m-%d", time.gmtime()) in mk4 and "DUE: 2 of 2 jobs" in mk4
        assert " 2 " in mk4 and "3m" in mk4  # 2 jobs, 3 m of filament since the service
        assert "DUE: 1 of 1 jobs" in next(line for line in lines if line.startswith("ctl-1"))
        check_report_section(config, tmp_path / "reports")
    finally:
        collector.stop()
        jobs.close()
        hook.close()


def check_report_section(config: Path, out: Path) -> None:
    """The report's maintenance section, as the XLSX, the CSV and the PDF show it."""
    zone = ZoneInfo("Europe/Stockholm")
    today = datetime.now(zone).date()
    period = f"{today - timedelta(days=1)}..{today}"
    made = subprocess.run([sys.executable, "-m", "server", "report", "-c", str(config), "--period", period,
                           "--format", "xlsx,csv,pdf", "--lang", "en", "--out", str(out), "--no-progress"],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    with next(out.glob("*-maintenance.csv")).open(encoding="utf-8-sig") as fh:
        rows = {r["Printer"]: r for r in csv.DictReader(fh)}
    mk4, ctl = rows["mk4-1"], rows["ctl-1"]
    assert (mk4["Services in period"], mk4["Last service's note"], mk4["Jobs since"], mk4["Filament since (m)"],
            mk4["Service interval"], mk4["Due at the period's end"]) == (
        "1", "new nozzle; belts tensioned", "2", "3", "1000 h, 2 jobs", "2 of 2 jobs")
    assert mk4["Last service"].startswith(str(today)) or mk4["Last service"].startswith(str(today - timedelta(days=1)))
    assert (ctl["Services in period"], ctl["Last service"], ctl["Jobs since"], ctl["Due at the period's end"]) == (
        "0", "never", "1", "1 of 1 jobs")
    sheet = openpyxl.load_workbook(next(out.glob("*.xlsx")), read_only=True)["Maintenance"]
    cells = {row[1]: row for row in sheet.iter_rows(min_row=2, values_only=True)}
    assert cells["mk4-1"][2] == 1 and cells["mk4-1"][6] == 2 and cells["mk4-1"][7] == 3.0
    text = subprocess.run(["pdftotext", "-layout", str(next(out.glob("*.pdf"))), "-"], capture_output=True,
                          text=True, check=True, timeout=60).stdout
    assert "Maintenance" in text and "new nozzle; belts tensioned" in text and "2 of 2 jobs" in text


def test_maintenance_record_with_the_database_down_fails_clearly_and_records_nothing(tmp_path, mosquitto, influxdb):
    hook = WebhookReceiver()
    try:
        config = write_config(tmp_path, mosquitto, influxdb, hook)
        influxdb.create_database(DB)
        influxdb.stop()
        failed = cli(config, "record", "mk4-1", "--note", "new nozzle")
        assert failed.returncode == 1
        assert "InfluxDB" in failed.stderr and "nothing was recorded" in failed.stderr
        assert "Traceback" not in failed.stderr and failed.stdout == ""
        influxdb.start()
        assert influxdb.query('SELECT * FROM "autogen"."maintenance"', db=DB) == []
        # A point InfluxDB refuses (a field type conflict: 400, which its client only logs) is no record either.
        influxdb.write(DB, f"maintenance,printer=other note=1i {int(time.time() * 1000)}")
        refused = cli(config, "record", "mk4-1", "--note", "new nozzle")
        assert refused.returncode == 1 and "did not keep the service" in refused.stderr
        assert influxdb.query('SELECT * FROM "autogen"."maintenance" WHERE "printer" = \'mk4-1\'', db=DB) == []
        influxdb.query('DROP MEASUREMENT "maintenance"', db=DB)
        ok = cli(config, "record", "mk4-1", "--note", "new nozzle")  # the positive control
        assert ok.returncode == 0, ok.stderr
        assert len(influxdb.query('SELECT * FROM "autogen"."maintenance"', db=DB)) == 1

        unknown = cli(config, "record", "mk9-9", "--note", "x")
        assert unknown.returncode == 2 and "mk9-9" in unknown.stderr and "[printers.<id>]" in unknown.stderr
    finally:
        hook.close()


def test_counters_and_services_in_the_organisations_layout_hours_from_the_rollups(tmp_path, mosquitto, influxdb):
    """A service goes into the network's database and the printer's organisation's; the counters
    come from the network's: jobs and filament from the job events since the service, printing
    hours from the rollups from the service's hour on."""
    from server import inventory as inventory_mod
    from server import maintenance
    from server.store import layout
    from server.store.influx import InfluxHTTP
    from server.tenancy import org_database

    hook = WebhookReceiver()
    hook.close()
    config = write_config(tmp_path, mosquitto, influxdb, hook)
    config.write_text(config.read_text().replace(f'database = "{DB}"', f'database = "{DB}"\nlayout = "organisations"'))
    inv = inventory_mod.load(tmp_path / "fleet.toml")
    org_db = org_database(DB, inv.org_of_site["lab"])
    client = InfluxHTTP(influxdb.url, DB)
    influxdb.create_database(DB)
    # The organisation's database is missing: the network's write is taken back, nothing half-recorded.
    half = cli(config, "record", "mk4-1", "--note", "yearly service")
    assert half.returncode == 1 and "nothing was recorded" in half.stderr and "database not found" in half.stderr
    assert influxdb.query('SELECT * FROM "autogen"."maintenance"', db=DB) == []
    for db in (DB, org_db):
        influxdb.create_database(db)
        layout.ensure(client, layout.RetentionConfig(), db)

    hour = 3_600_000
    t0 = (int(time.time() * 1000) // hour - 5) * hour  # five hours ago, on the hour
    tags = ",county=Västerbotten,listed=true,organisation=Org\\ of\\ lab,printer=mk4-1,site=lab"
    old_job = f"job{tags},kind=done count=1i,duration=3600.0,filament_mm=9000.0 {t0 + 10 * 60_000}"
    old_hours = f"utilisation{tags},customer=unattributed printing_ms=3600000i {t0 - hour}"
    influxdb.write(DB, old_job)  # before the service: not counted
    client.write(old_hours.encode(), rp="rollups")

    done = cli(config, "record", "mk4-1", "--note", "yearly service")
    assert done.returncode == 0, done.stderr
    for db in (DB, org_db):
        assert [r["note"] for r in influxdb.query('SELECT "note" FROM "autogen"."maintenance"', db=db)] == \
            ["yearly service"]
    service, note = maintenance.last_services(client)[("lab", "mk4-1")]
    assert note == "yearly service"

    new_jobs = "\n".join(f"job{tags},kind={kind} count=1i,duration=1800.0,filament_mm=2500.0 {service + i + 1}"
                         for i, kind in enumerate(("done", "failed", "cancelled", "started")))
    influxdb.write(DB, new_jobs)
    this_hour = service // hour * hour
    client.write(f"utilisation{tags},customer=unattributed printing_ms=5400000i {this_hour}\n"
                 f"utilisation{tags},customer=acme printing_ms=1800000i {this_hour}".encode(), rp="rollups")

    now = int(time.time() * 1000)
    by_rollups = {s.printer: s for s in maintenance.states(client, inv, True, now)}
    assert by_rollups["mk4-1"].counters == maintenance.Counters(hours=2.0, jobs=3, filament_m=7.5)
    assert by_rollups["mk4-1"].due == ("3 of 2 jobs",) and by_rollups["mk4-1"].last_service_ms == service
    by_jobs = {s.printer: s for s in maintenance.states(client, inv, False, now)}
    assert by_jobs["mk4-1"].counters == maintenance.Counters(hours=1.5, jobs=3, filament_m=7.5)
    assert by_jobs["ctl-1"].counters == maintenance.Counters() and by_jobs["ctl-1"].last_service_ms is None
