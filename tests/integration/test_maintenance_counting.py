"""The report's maintenance section against a real influxd: an optional section never makes the
report fail, and it counts what docs/maintenance.md says it counts (printing hours from the
rollups where they exist, else from the ended jobs' durations)."""

from __future__ import annotations

import time

import pytest

from server import inventory as inventory_mod
from server import maintenance
from server.reports import periods
from server.reports.generate import make_report
from server.store import layout
from server.store.influx import InfluxHTTP

pytestmark = pytest.mark.integration

DB = "printfarm"
HOUR = 3_600_000
INVENTORY = """
[sites.lab]
organisation = "Org of lab"
county = "Västerbotten"

[printers.mk4-1]
site = "lab"
model = "Prusa MK4"

[printers.free-1]
site = "lab"
model = "No interval"

[maintenance.models."Prusa MK4"]
service_jobs = 2
"""
TAGS = ",county=Västerbotten,listed=true,organisation=Org\\ of\\ lab,printer=mk4-1,site=lab"


def section(client, inv, period, now):
    report = make_report(client, inv, period, now_ms=now, compare=False, use_rollups=True)
    return {r["printer"]: r for r in report.maintenance}


def test_the_section_falls_back_to_job_durations_on_a_database_without_the_rollups_policy(tmp_path, influxdb):
    (tmp_path / "fleet.toml").write_text(INVENTORY)
    inv = inventory_mod.load(tmp_path / "fleet.toml")
    influxdb.create_database(DB)  # no "rollups" retention policy: rollups never ran here
    now = int(time.time() * 1000)
    t0 = (now // HOUR - 3) * HOUR
    before = now - 5 * 24 * HOUR  # before the period: counted by InfluxDB, the rest from the events read
    influxdb.write(DB, f"job{TAGS},kind=done count=1i,duration=3600.0,filament_mm=1000.0 {before}\n" + "\n".join(
        f"job{TAGS},kind={kind} count=1i,duration=1800.0,filament_mm=2500.0 {t0 + i * 60_000}"
        for i, kind in enumerate(("done", "failed", "cancelled", "started"))))
    client = InfluxHTTP(influxdb.url, DB)
    day = time.strftime("%Y-%m-%d", time.gmtime(now / 1000))
    yesterday = time.strftime("%Y-%m-%d", time.gmtime(now / 1000 - 86400))
    period = periods.parse(f"{yesterday}..{day}", "UTC")

    rows = section(client, inv, period, now)  # failed with "InfluxError: not executed" before
    assert list(rows) == ["mk4-1"]  # free-1: no interval, no service: no row
    mk4 = rows["mk4-1"]
    assert (mk4["jobs_since"], mk4["printing_since_h"], mk4["filament_since_m"], mk4["due"]) == \
        (4, 2.5, 8.5, ("4 of 2 jobs",))

    # The positive control: with the policy there, the hours come from the rollups (2 h written).
    layout.ensure(client, layout.RetentionConfig())
    client.write(f"utilisation{TAGS},customer=unattributed printing_ms=7200000i {t0}".encode(), rp="rollups")
    assert section(client, inv, period, now)["mk4-1"]["printing_since_h"] == 2.0

    # A service in the period, after two of its jobs: only the cancelled one after it counts.
    influxdb.write(DB, f'maintenance{TAGS} note="belts" {t0 + 90_000}')
    mk4 = section(client, inv, period, now)["mk4-1"]
    assert (mk4["services_in_period"], mk4["last_service"], mk4["jobs_since"], mk4["filament_since_m"]) == \
        (1, t0 + 90_000, 1, 2.5)


def test_the_collectors_check_reads_only_the_last_day_on_top_of_settled_counters(tmp_path, influxdb):
    (tmp_path / "fleet.toml").write_text(INVENTORY)
    inv = inventory_mod.load(tmp_path / "fleet.toml")
    influxdb.create_database(DB)
    client = InfluxHTTP(influxdb.url, DB)
    layout.ensure(client, layout.RetentionConfig())
    now = int(time.time() * 1000)
    old, recent = (now // HOUR - 72) * HOUR, (now // HOUR - 2) * HOUR
    influxdb.write(DB, "\n".join([
        f"job{TAGS},kind=done count=1i,duration=3600.0,filament_mm=1000.0 {old}",
        f"job{TAGS},kind=failed count=1i,duration=600.0,filament_mm=500.0 {old + 60_000}",
        f"job{TAGS},kind=done count=1i,duration=1800.0,filament_mm=2000.0 {recent + 60_000}"]))
    client.write(f"utilisation{TAGS},customer=unattributed printing_ms=3600000i {old}\n"
                 f"utilisation{TAGS},customer=unattributed printing_ms=1800000i {recent}".encode(), rp="rollups")

    settled = maintenance.settle(client, inv, True, now)
    asked: list[str] = []
    reading = client.query
    client.query = lambda q, *a, **kw: asked.append(q) or reading(q, *a, **kw)
    checked = {s.printer: s for s in maintenance.states(client, inv, True, now, settled=settled)}
    client.query = reading
    fresh = {s.printer: s for s in maintenance.states(client, inv, True, now)}
    assert checked["mk4-1"].counters == fresh["mk4-1"].counters == maintenance.Counters(1.5, 3, 3.5)
    counting = [st for q in asked for st in q.split(";") if '"job"' in st or '"utilisation"' in st]
    assert counting and all(f"time >= {settled.until_ms}ms" in st for st in counting)  # the last day only
    assert not any("free-1" in q for q in asked)  # no interval, no service: not counted

    # A service after the settled counters: counted from it, not added to them.
    influxdb.write(DB, f'maintenance{TAGS} note="belts" {recent}')
    after = {s.printer: s for s in maintenance.states(client, inv, True, now, settled=settled)}["mk4-1"]
    assert after.counters == maintenance.Counters(0.5, 1, 2.0) and after.last_service_ms == recent
