"""Organisations against the real InfluxDB with authentication on (docs/organisations.md).

The scripted fleet of test_reports (known file names, users and hours) goes through Mosquitto and
the real collector with ``[influx] layout = "organisations"``; then, with the read users the
collector made: one organisation's reader is refused the other's data, the network's reader finds
no file name and no user anywhere in its database, and the network's report and rollups equal the
sum of the organisations' to the millisecond.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from devkit.pipeline import DB, RunningCollector, collector_config, wait_for
from devkit.servers import InfluxDB, Mosquitto
from server.__main__ import main as server_main
from server.store.tenants import READERS_DIR
from server.tenancy import NETWORK_READER, org_database, org_reader
from tests.integration.scripted_fleet import messages, publish, send_order
from tests.integration.test_reports import FLEET, INVENTORY_PRINTERS

ADMIN = ("admin", "admin-secret")  # authentication on: the admin the harness makes first

pytestmark = pytest.mark.integration

# umu is named by the ID of an [organisations] table, lul by its display name, as before
UMU, LUL = "umu", "lulea-tekniska-universitet"
INVENTORY = """\
[organisations.umu]
name = "Umeå universitet"

[sites.umu]
organisation = "umu"
county = "Västerbotten"

[sites.lul]
organisation = "Luleå tekniska universitet"
county = "Norrbotten"
"""
LISTED = [p for p in FLEET if p.id in INVENTORY_PRINTERS]  # x1's site is in no inventory: not here
FILES = {f"{p.id}-{j.started or j.at}.gcode" for p in LISTED for s in p.sessions for j in s.jobs}
USERS = {j.user for p in LISTED for s in p.sessions for j in s.jobs if j.user}


def _inventory(tmp: Path) -> Path:
    lines = [INVENTORY]
    for printer, site in INVENTORY_PRINTERS.items():
        lines += [f"[printers.{printer}]", f'site = "{site}"', ""]
    path = tmp / "fleet.toml"
    path.write_text("\n".join(lines))
    return path


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("organisations")
    mp = pytest.MonkeyPatch()
    mp.setenv("PRINTFARM_TEST_INFLUX_PASSWORD", ADMIN[1])
    with Mosquitto(tmp / "mosquitto") as broker, InfluxDB(tmp / "influxdb", admin=ADMIN) as influx:
        inventory = _inventory(tmp)
        over = {"layout": "organisations", "username": ADMIN[0], "password_env": "PRINTFARM_TEST_INFLUX_PASSWORD"}
        cfg = collector_config(tmp, broker, influx, inventory, **over)
        cfg.privacy.raw_user_days = 3650  # raw names kept (job_user): the organisation's only, and purged there
        collector = RunningCollector(cfg)
        try:
            collector.wait_connected()
            publish(broker, [m for p in LISTED for m in send_order(p)])
            expected = len({(ts, topic) for p in LISTED for ts, topic, _ in messages(p) if topic.endswith("/status") and "/agent/" not in topic})
            try:
                wait_for(lambda: _count(influx, DB, "state") == expected, 30, "every state change")
            except AssertionError:
                raise AssertionError(f"{_count(influx, DB, 'state')} of {expected} state changes; "
                                     f"{[(d, _count(influx, d, 'state')) for d in (org_database(DB, UMU), org_database(DB, LUL))]}") from None
        finally:
            collector.stop()
        config = tmp / "server.toml"
        config.write_text(f'inventory = "{inventory}"\nstate_dir = "{cfg.state_dir}"\n[influx]\nurl = "{influx.url}"\n'
                          f'database = "{DB}"\nspool_dir = "{tmp / "spool"}"\nlayout = "organisations"\n'
                          f'username = "{ADMIN[0]}"\npassword_env = "PRINTFARM_TEST_INFLUX_PASSWORD"\n')
        yield tmp, config, influx, Path(cfg.state_dir)
    mp.undo()


def _count(influx, db: str, measurement: str) -> int:
    found = influx.query(f'SELECT count("state") AS n FROM "autogen"."{measurement}"', db=db)
    return found[0]["n"] if found else 0


def _reader(state_dir: Path, user: str) -> tuple[str, str]:
    return user, (state_dir / READERS_DIR / user).read_text().strip()


def _everything(influx, db: str, auth) -> list[dict]:
    """Every point of every measurement of every retention policy, tags and fields, as rows."""
    out = []
    for rp in influx.query("SHOW RETENTION POLICIES", db=db, auth=auth):
        for m in influx.query("SHOW MEASUREMENTS", db=db, auth=auth):
            out += influx.query(f'SELECT * FROM "{rp["name"]}"."{m["name"]}" GROUP BY *', db=db, auth=auth)
    return out


def test_an_organisations_reader_is_refused_the_other_organisations_and_the_networks_data(farm):
    _, _, influx, state = farm
    umu = _reader(state, org_reader(UMU))
    assert _count_as(influx, org_database(DB, UMU), umu) > 0  # the positive control: its own
    for db in (org_database(DB, LUL), DB):
        with pytest.raises(RuntimeError, match="not authorized"):
            influx.query('SELECT count("state") FROM "autogen"."state"', db=db, auth=umu)
    network = _reader(state, NETWORK_READER)
    for db in (org_database(DB, UMU), org_database(DB, LUL)):
        with pytest.raises(RuntimeError, match="not authorized"):
            influx.query('SELECT count("state") FROM "autogen"."state"', db=db, auth=network)


def _count_as(influx, db, auth) -> int:
    found = influx.query('SELECT count("state") AS n FROM "autogen"."state"', db=db, auth=auth)
    return found[0]["n"] if found else 0


def test_the_networks_reader_finds_no_file_name_and_no_user_in_any_measurement(farm):
    _, config, influx, state = farm
    # The rollups of the scripted quarter: the collector's own first run may come before the data
    # (its next is a minute later), so made here as the collector makes them (server/rollups/store.py).
    assert server_main(["rollup", "-c", str(config)]) == 0
    pseudonyms = set()
    detail = []
    for org in (UMU, LUL):  # the positive control: the organisations' own readers find both
        rows = _everything(influx, org_database(DB, org), _reader(state, org_reader(org)))
        pseudonyms |= {r["user"] for r in rows if r.get("user")}
        detail += [str(v) for r in rows for v in r.values()]
    assert FILES <= set(detail) and len(pseudonyms) >= len(USERS) - 1
    rows = _everything(influx, DB, _reader(state, NETWORK_READER))
    measurements = {m["name"] for m in influx.query("SHOW MEASUREMENTS", db=DB)}
    assert {"state", "job", "utilisation", "extent"} <= measurements and len(rows) > 50
    text = "\n".join(f"{k}={v}" for r in rows for k, v in r.items())
    for secret in FILES | pseudonyms:
        assert secret not in text
    values = {str(v) for r in rows for v in r.values()}
    assert not values & USERS  # short names ("bo" is in "Norrbotten"): whole values
    keys = {k for r in rows for k, v in r.items() if v is not None}
    assert not keys & {"file", "user", "user_name"}


def test_purge_users_deletes_the_raw_names_in_every_organisations_database(farm, tmp_path):
    _, config, influx, _ = farm
    copy = tmp_path / "server.toml"  # the farm's, with raw names kept a day: the Q3 ones are older
    copy.write_text(config.read_text().replace("[influx]", "[privacy]\nraw_user_days = 1\n[influx]"))
    dbs = [org_database(DB, org) for org in (UMU, LUL)]

    def raw(db: str) -> int:
        found = influx.query('SELECT count("user_name") AS n FROM "autogen"."job_user"', db=db)
        return found[0]["n"] if found else 0
    assert all(raw(db) > 0 for db in dbs) and raw(DB) == 0  # kept: the organisations' only
    assert server_main(["purge-users", "-c", str(copy)]) == 0
    assert [raw(db) for db in dbs] == [0, 0]


def _csv(path: Path) -> list[dict]:
    with path.open(encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def reports(farm):
    tmp, config, _, _ = farm
    out = {}
    for org in (None, UMU, LUL):
        folder = tmp / f"report-{org or 'network'}"
        extra = ["--organisation", org] if org else []
        assert server_main(["report", "-c", str(config), "--out", str(folder), "--no-progress", "--period", "2026-Q3",
                            "--format", "csv", "--lang", "en", *extra]) == 0
        out[org] = folder
    return out


FIGURES = ("Printing hours", "Paused hours", "Idle hours", "Error hours", "Offline hours", "Unknown hours (no data)",
           "Hours before first data (not yet in network)", "Jobs started", "Jobs completed", "Jobs failed",
           "Jobs cancelled")


def test_the_networks_report_is_the_sum_of_the_organisations_and_names_no_file(reports):
    stem = "printfarm-report-2026-Q3-en"
    network = {r["Printer"]: r for r in _csv(reports[None] / f"{stem}-printer.csv")}
    mine = {}
    for org in (UMU, LUL):
        mine.update({r["Printer"]: r for r in _csv(reports[org] / f"{stem}-printer.csv")})
    assert set(network) == set(mine) == set(INVENTORY_PRINTERS)
    for printer, row in network.items():
        assert {c: row[c] for c in FIGURES} == {c: mine[printer][c] for c in FIGURES}, printer
    total = _csv(reports[None] / f"{stem}-network.csv")[0]
    parts = [_csv(reports[org] / f"{stem}-network.csv")[0] for org in (UMU, LUL)]
    for column in FIGURES:
        assert round(float(total[column]) * 3_600_000) == sum(round(float(p[column]) * 3_600_000) for p in parts)
    network_jobs = (reports[None] / f"{stem}-jobs.csv").read_text(encoding="utf-8-sig")
    org_jobs = "".join((reports[org] / f"{stem}-jobs.csv").read_text(encoding="utf-8-sig") for org in (UMU, LUL))
    assert len({f for f in FILES if f in org_jobs}) >= 8  # the positive control
    assert not any(f in network_jobs for f in FILES)
    assert len(network_jobs.splitlines()) == len(org_jobs.splitlines()) - 1  # one header fewer


def test_the_networks_rollups_are_the_sum_of_the_organisations_to_the_millisecond(farm):
    tmp, config, influx, _ = farm
    assert server_main(["rollup", "-c", str(config)]) == 0
    fields = "sum(printing_ms), sum(idle_ms), sum(offline_ms), sum(unknown_ms), sum(in_network_ms), sum(available_ms)"

    def sums(db: str) -> list[dict]:
        return influx.query(f'SELECT {fields} FROM "rollups"."utilisation" GROUP BY "customer_kind", "printer"', db=db)
    network = sums(DB)
    parts = sums(org_database(DB, UMU)) + sums(org_database(DB, LUL))
    assert network and sorted(network, key=str) == sorted(parts, key=str)
    assert sum(r["sum"] for r in network) > 0


def test_a_write_to_an_organisations_dropped_database_and_reader_is_retried_until_both_are_back(tmp_path, monkeypatch):
    import time

    from common import protocol

    monkeypatch.setenv("PRINTFARM_TEST_INFLUX_PASSWORD", ADMIN[1])
    with Mosquitto(tmp_path / "mosquitto") as broker, InfluxDB(tmp_path / "influxdb", admin=ADMIN) as influx:
        over = {"layout": "organisations", "username": ADMIN[0], "password_env": "PRINTFARM_TEST_INFLUX_PASSWORD"}
        cfg = collector_config(tmp_path, broker, influx, _inventory(tmp_path), **over)
        cfg.rollups.enabled = False  # their first run would make the database again, before the writer
        collector = RunningCollector(cfg)
        try:
            collector.wait_connected()
            umu_db, reader = org_database(DB, UMU), _reader(Path(cfg.state_dir), org_reader(UMU))
            influx.query(f'DROP DATABASE "{umu_db}"')
            influx.query(f'DROP USER "{reader[0]}"')
            now = int(time.time() * 1000)
            publish(broker, [(protocol.printer_topic("umu", "a1", "telemetry"), protocol.encode(protocol.Telemetry(
                v=1, ts=now + i, printer="a1", site="umu", seq=i, state="printing", file="kept.gcode")))
                for i in range(20)])
            wait_for(lambda: _telemetry(influx, umu_db, reader) == 20, 30, "the 20 points in umu's new database")
            assert collector.collector.metrics.counters["influx_write_errors"] >= 1  # it was missing, then made
        finally:
            collector.stop()


def _telemetry(influx, db: str, auth) -> int:
    try:
        found = influx.query('SELECT count("seq") AS n FROM "telemetry"', db=db, auth=auth)
    except RuntimeError:  # not there yet, or not readable yet
        return 0
    return found[0]["n"] if found else 0


def test_the_scheduled_network_report_is_the_network_report_without_file_names(farm, reports, tmp_path):
    from server import config as server_config
    from server import inventory as inventory_mod
    from server.reports import config as reports_config
    from server.reports.schedule import run_once
    from tests.integration.scripted_fleet import Q3_END

    _, config, _, _ = farm
    cfg = server_config.load(config)
    rcfg = reports_config.load({"formats": ["csv"], "lang": "en", "out_dir": str(tmp_path),
                                "schedule": {"period": "quarter"}})
    run_once(cfg, inventory_mod.load(cfg.inventory), rcfg, now_ms=Q3_END + 86_400_000)
    stem = "printfarm-report-2026-Q3-en"
    assert (tmp_path / f"{stem}-printer.csv").read_text() == (reports[None] / f"{stem}-printer.csv").read_text()
    jobs = (tmp_path / f"{stem}-jobs.csv").read_text(encoding="utf-8-sig")
    assert jobs == (reports[None] / f"{stem}-jobs.csv").read_text(encoding="utf-8-sig")
    assert len(jobs.splitlines()) >= 8 and not any(f in jobs for f in FILES)
