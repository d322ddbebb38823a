"""Service intervals in the inventory, what is due, the service_due rule in the engine (once per
interval, recovery, restart) and the status table's width."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from server import inventory as inventory_mod
from server import maintenance
from server.maintenance import Counters, ServiceState
from server.maintenance_cli import HEADER, row
from server.maintenance_intervals import Interval
from tests.unit.alert_helpers import INVENTORY, Clock, make_engine, sent, tags, telemetry

MS = 1_800_000_000_000


def _inventory(maintenance_table: dict) -> dict:
    return {"sites": {"lab": {"organisation": "Org", "county": "Västerbotten"}},
            "printers": {"vp-1": {"site": "lab", "model": "Prusa MK4"}, "vp-2": {"site": "lab", "model": "Prusa MK4"},
                         "bb-1": {"site": "lab", "model": "Bambu X1C"}},
            "maintenance": maintenance_table}


def _error(table: dict) -> inventory_mod.ConfigError:
    with pytest.raises(inventory_mod.ConfigError) as info:
        inventory_mod.from_dict(_inventory(table), "fleet.toml")
    return info.value


def test_a_printers_interval_is_its_own_keys_over_its_models():
    inv = inventory_mod.from_dict(_inventory({"models": {"Prusa MK4": {"service_hours": 500, "service_months": 6}},
                                              "printers": {"vp-1": {"service_hours": 300, "service_jobs": 50}}}))
    assert inv.service_interval("vp-1") == Interval(service_hours=300, service_jobs=50, service_months=6)
    assert inv.service_interval("vp-2") == Interval(service_hours=500, service_months=6)
    assert inv.service_interval("bb-1") is None
    assert inv.of_organisation("org").service_interval("vp-1") == inv.service_interval("vp-1")


@pytest.mark.parametrize("table, key, fix", [
    ({"printers": {"vp-1": {"service_hours": 0}}}, "maintenance.printers.vp-1.service_hours", "from 0.001"),
    ({"printers": {"vp-1": {"service_jobs": "many"}}}, "maintenance.printers.vp-1.service_jobs", ""),
    ({"printers": {"vp-1": {"service_hour": 5}}}, "maintenance.printers.vp-1.service_hour", ""),
    ({"models": {"Prusa MK4": {"service_months": 0}}}, "maintenance.models.Prusa MK4.service_months", "from 1"),
    ({"printers": {"vp-9": {"service_jobs": 5}}}, "maintenance.printers.vp-9", "[printers.vp-9]"),
    ({"models": {"Prusa Mk4": {"service_jobs": 5}}}, "maintenance.models.Prusa Mk4", "Prusa MK4"),
])
def test_a_wrong_interval_is_an_error_naming_the_key_and_the_fix(table, key, fix):
    err = _error(table)
    assert err.key == key and fix in err.fix


def test_what_is_due_is_each_passed_interval():
    interval = Interval(service_hours=100, service_jobs=10, service_months=3)
    start = int(datetime(2026, 11, 30, tzinfo=timezone.utc).timestamp() * 1000)
    assert maintenance.due(interval, Counters(99.9, 9, 1.0), start, start, start) == ()
    assert maintenance.due(interval, Counters(100.0, 10, 1.0), start, start, start) == (
        "100.0 of 100 printing hours", "10 of 10 jobs")
    feb_end = int(datetime(2027, 2, 28, tzinfo=timezone.utc).timestamp() * 1000)  # Nov 30 + 3 months
    assert maintenance.due(interval, Counters(), start, start, feb_end - 1) == ()
    assert maintenance.due(interval, Counters(), start, start, feb_end) == ("3 months",)
    assert maintenance.due(interval, Counters(), None, None, feb_end) == ()  # months need a start
    assert maintenance.due(None, Counters(1e6, 10**6, 1.0), None, None, feb_end) == ()


def _state(jobs: int, due: bool, last: int | None = None) -> ServiceState:
    interval = Interval(service_jobs=2)
    return ServiceState("lab", "vp-1", last, last, Counters(1.5, jobs, 3.0), interval,
                        ("%d of 2 jobs" % jobs,) if due else ())


def _kinds(engine) -> list[str]:
    return [n["kind"] for n in sent(engine) if n["rule"] == "service_due"]


def test_service_due_fires_once_per_interval_and_recovers_when_a_service_is_recorded(tmp_path):
    clock = Clock()
    engine = make_engine(tmp_path, clock)
    engine.service_checked([_state(1, False)])
    engine.on_message(telemetry("idle"), tags())
    assert _kinds(engine) == []
    engine.service_checked([_state(2, True)])
    for jobs in (2, 3, 7):  # checks, messages and ticks while due: still the one incident
        clock.advance(3600)
        engine.service_checked([_state(jobs, True)])
        engine.on_message(telemetry("printing", seq=jobs), tags())
        engine.tick()
    assert _kinds(engine) == ["firing"]
    assert "vp-1 at lab is due for service: 2 of 2 jobs since its first data (no service recorded)" in sent(engine)[0]["text"]
    engine.service_checked([_state(0, False, last=MS)])  # recorded: the counters start again
    assert _kinds(engine) == ["firing", "resolved"]
    engine.service_checked([_state(2, True, last=MS)])  # the next interval
    assert _kinds(engine) == ["firing", "resolved", "firing"]
    assert "since the last service on 2027-01-15" in sent(engine)[-1]["text"]


def test_a_restarted_engine_keeps_the_service_incident_until_the_check_says_it_was_serviced(tmp_path):
    clock = Clock()
    first = make_engine(tmp_path, clock)
    first.service_checked([_state(2, True)])
    first.stop()
    second = make_engine(tmp_path, clock)
    # A message and ticks before the first check: unknown is not "serviced", so nothing resolves.
    second.on_message(telemetry("idle"), tags())
    second.tick()
    second.service_checked([_state(3, True)])
    second.tick()
    assert _kinds(second) == [] and list(second.open) == ["service_due/lab/vp-1"]
    second.service_checked([_state(0, False, last=MS)])
    assert _kinds(second) == ["resolved"]


def test_a_listed_printer_not_heard_from_since_the_start_is_checked_too(tmp_path):
    engine = make_engine(tmp_path, inventory=INVENTORY)
    fine = ServiceState("lab", "vp-1", None, None, Counters(jobs=1), Interval(service_jobs=2))
    engine.service_checked([fine, ServiceState("lab", "vp-2", None, None, Counters(jobs=2), Interval(service_jobs=2),
                                               ("2 of 2 jobs",))])
    assert [(n["rule"], n["printer"]) for n in sent(engine)] == [("service_due", "vp-2")]
    assert list(engine.printers) == [("lab", "vp-2")]  # no watch made for a silent printer with nothing due


def test_an_interval_taken_out_of_the_inventory_clears_its_incident_after_a_restart(tmp_path):
    clock = Clock()
    first = make_engine(tmp_path, clock)
    first.service_checked([_state(2, True)])
    first.stop()
    second = make_engine(tmp_path, clock)
    second.service_checked([ServiceState("lab", "vp-1", None, None, Counters(1.5, 2, 3.0), None, ())])
    assert _kinds(second) == ["resolved"] and second.open == {}


def test_a_status_row_fits_in_100_columns_whatever_it_holds():
    long_id = "printer-" + "x" * 60
    s = ServiceState("site-" + "y" * 60, long_id, MS, MS, Counters(12345.6, 99999, 123456.0),
                     Interval(service_hours=500, service_jobs=400, service_months=6),
                     ("12345.6 of 500 printing hours", "99999 of 400 jobs", "6 months"))
    lines = row(s).splitlines()
    assert max(map(len, lines)) <= 100 and len(HEADER) <= 100
    assert lines[0].startswith(long_id[:16]) and lines[0].endswith("DUE: 12345.6 of 500 printing hours")
    assert [line.strip() for line in lines[1:]] == ["DUE: 99999 of 400 jobs", "DUE: 6 months"]
    assert lines[1].index("DUE") == lines[0].index("DUE") == HEADER.index("due")
    ok = row(ServiceState("lab", "vp-1", None, None, Counters(), Interval(service_hours=500, service_months=6)))
    assert "never" in ok and ok.endswith("ok (500 h, 6 mo)")


def test_the_collectors_check_with_influxdb_unreachable_logs_once_and_keeps_going(tmp_path, caplog):
    from devkit.servers import free_port
    from server.maintenance_watch import ServiceWatch
    from server.store.influx import InfluxHTTP

    engine = make_engine(tmp_path, inventory=_inventory({"printers": {"vp-1": {"service_jobs": 2}}}))
    nowhere = InfluxHTTP(f"http://127.0.0.1:{free_port()}", "printfarm", timeout=1.0)  # nothing listens
    lines: list[str] = []
    watch = ServiceWatch(nowhere, engine.inventory, True, lambda: engine, lines.append)
    watch.check()
    watch.check()
    assert watch.health()["error"].startswith("InfluxDB unreachable") and watch.checks == 0
    logged = [r.getMessage() for r in caplog.records if r.name == "server.maintenance_watch"]
    assert len(logged) == 1 and logged[0].startswith("maintenance: cannot read the service counters (InfluxDB "
                                                     "unreachable") and logged[0].endswith("; will try again")
    assert lines == [] and engine.open == {}
