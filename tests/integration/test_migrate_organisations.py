"""``migrate-organisations`` against the real InfluxDB (authentication on): data the single layout
wrote moves into each organisation's database, the network's database keeps it without file names
and users, and the reports show the same figures as before the move."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from devkit.pipeline import DB, RunningCollector, collector_config, wait_for
from devkit.servers import InfluxDB, Mosquitto
from server.__main__ import main as server_main
from server.tenancy import org_database
from tests.integration.scripted_fleet import messages, publish, send_order
from tests.integration.test_organisations import FIGURES, FILES, LISTED, LUL, UMU, USERS, _inventory

ADMIN = ("admin", "admin-secret")  # authentication on: the admin the harness makes first

pytestmark = pytest.mark.integration
STEM = "printfarm-report-2026-Q3-en"
PASSWORD_ENV = "PRINTFARM_TEST_MIGRATE_PASSWORD"


def _config(path: Path, tmp: Path, influx, inventory: Path, layout: str) -> Path:
    path.write_text(f'inventory = "{inventory}"\nstate_dir = "{tmp / "server-state"}"\n[influx]\nurl = "{influx.url}"\n'
                    f'database = "{DB}"\nspool_dir = "{tmp / "spool"}"\nlayout = "{layout}"\n'
                    f'username = "{ADMIN[0]}"\npassword_env = "{PASSWORD_ENV}"\n')
    return path


def _report(config: Path, out: Path, *extra: str) -> Path:
    assert server_main(["report", "-c", str(config), "--out", str(out), "--no-progress", "--period", "2026-Q3",
                        "--format", "csv", "--lang", "en", *extra]) == 0
    return out


def _csv(path: Path) -> list[dict]:
    with path.open(encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def moved(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("migrate")
    mp = pytest.MonkeyPatch()
    mp.setenv(PASSWORD_ENV, ADMIN[1])
    with Mosquitto(tmp / "mosquitto") as broker, InfluxDB(tmp / "influxdb", admin=ADMIN) as influx:
        inventory = _inventory(tmp)
        cfg = collector_config(tmp, broker, influx, inventory, username=ADMIN[0], password_env=PASSWORD_ENV)
        assert cfg.influx.layout == "single"  # the default: what an installation has before
        collector = RunningCollector(cfg)
        try:
            collector.wait_connected()
            publish(broker, [m for p in LISTED for m in send_order(p)])
            expected = len({(ts, topic) for p in LISTED for ts, topic, _ in messages(p)
                            if topic.endswith("/status") and "/agent/" not in topic})
            wait_for(lambda: (influx.query('SELECT count("state") AS n FROM "autogen"."state"', db=DB) or [{}])[0]
                     .get("n") == expected, 30, "every state change in the one database")
        finally:
            collector.stop()
        single = _config(tmp / "single.toml", tmp, influx, inventory, "single")
        assert server_main(["rollup", "-c", str(single)]) == 0
        before = _report(single, tmp / "before")
        rollups_before = _rollup_sums(influx, DB)
        per_org = _config(tmp / "organisations.toml", tmp, influx, inventory, "organisations")
        assert server_main(["migrate-organisations", "-c", str(per_org)]) == 0
        yield tmp, per_org, influx, before, rollups_before
    mp.undo()


def _rollup_sums(influx, db: str) -> list[dict]:
    return influx.query('SELECT sum(printing_ms), sum(idle_ms), sum(unknown_ms), sum(in_network_ms) '
                        'FROM "rollups"."utilisation" GROUP BY "printer", "customer_kind"', db=db)


def test_the_network_database_holds_no_file_name_and_no_user_after_the_move(moved):
    _, _, influx, _, _ = moved
    seen = []
    for m in influx.query("SHOW MEASUREMENTS", db=DB):
        seen += influx.query(f'SELECT * FROM "autogen"."{m["name"]}"', db=DB)
        keys = {k["fieldKey"] for k in influx.query(f'SHOW FIELD KEYS FROM "{m["name"]}"', db=DB)}
        assert not keys & {"file", "user", "user_name"}, m["name"]
    text = "\n".join(str(v) for row in seen for v in row.values())
    assert len(seen) > 1000 and not any(f in text for f in FILES)
    assert not {str(v) for row in seen for v in row.values()} & USERS
    moved_files = "\n".join(str(r.get("file")) for r in
                            influx.query('SELECT "file" FROM "autogen"."job"', db=org_database(DB, UMU)))
    assert any(f in moved_files for f in FILES)  # the positive control: the detail is in umu's


def test_the_reports_after_the_move_show_the_figures_of_before(moved):
    tmp, config, _, before, _ = moved
    network = _report(config, tmp / "after")
    old = {r["Printer"]: r for r in _csv(before / f"{STEM}-printer.csv")}
    new = {r["Printer"]: r for r in _csv(network / f"{STEM}-printer.csv")}
    assert {p: {c: r[c] for c in FIGURES} for p, r in old.items()} == \
        {p: {c: r[c] for c in FIGURES} for p, r in new.items()}
    for org in (UMU, LUL):
        mine = {r["Printer"]: r for r in _csv(_report(config, tmp / f"after-{org}", "--organisation", org)
                                               / f"{STEM}-printer.csv")}
        assert mine and all({c: r[c] for c in FIGURES} == {c: old[p][c] for c in FIGURES} for p, r in mine.items())


def test_the_rollups_after_the_move_are_those_of_before_in_the_network_and_split_by_organisation(moved):
    _, _, influx, _, rollups_before = moved
    key = str
    assert sorted(_rollup_sums(influx, DB), key=key) == sorted(rollups_before, key=key)
    parts = _rollup_sums(influx, org_database(DB, UMU)) + _rollup_sums(influx, org_database(DB, LUL))
    assert sorted(parts, key=key) == sorted(rollups_before, key=key)


def test_the_move_refuses_to_run_before_the_layout_is_set(moved, capsys):
    tmp, _, influx, _, _ = moved
    single = tmp / "single.toml"
    assert server_main(["migrate-organisations", "-c", str(single)]) == 2
    assert 'layout = "organisations"' in capsys.readouterr().err
