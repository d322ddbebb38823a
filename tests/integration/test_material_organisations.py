"""Material and cost with ``[influx] layout = "organisations"`` (docs/organisations.md): the
network's database gets each job's amounts and types, never its file name or user; the network's
report and each organisation's own report bill the same jobs at the same cost as the truth of
test_report_material (computed from the script's inputs)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from devkit.pipeline import DB, RunningCollector, collector_config, wait_for
from devkit.servers import InfluxDB, Mosquitto
from server.__main__ import main as server_main
from server.tenancy import org_database, org_id
from tests.integration.scripted_fleet import publish, send_order, t
from tests.integration.test_report_material import (
    RUNS, cost, file_of, grams, near, organisation, script, write_inventory,
)

pytestmark = pytest.mark.integration


def _count(influx, db: str) -> int:
    found = influx.query('SELECT count("seq") AS n FROM "autogen"."job"', db=db)
    return found[0]["n"] if found else 0


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("material-orgs")
    with Mosquitto(tmp / "mosquitto") as broker, InfluxDB(tmp / "influxdb") as influx:
        inventory = write_inventory(tmp / "fleet.toml")
        collector = RunningCollector(collector_config(tmp, broker, influx, inventory, layout="organisations"))
        try:
            collector.wait_connected()
            publish(broker, [m for p in script() for m in send_order(p)])
            wait_for(lambda: _count(influx, DB) == 2 * len(RUNS), 30, "every job event in the network's database")
        finally:
            collector.stop()
        config = tmp / "server.toml"
        config.write_text(f'inventory = "{inventory}"\nstate_dir = "{tmp / "server-state"}"\n[influx]\n'
                          f'url = "{influx.url}"\ndatabase = "{DB}"\nspool_dir = "{tmp / "spool"}"\nlayout = "organisations"\n')
        out = {}
        for org in (None, org_id("Alfa universitet")):
            folder = tmp / f"report-{org or 'network'}"
            extra = ["--organisation", org] if org else []
            assert server_main(["report", "-c", str(config), "--out", str(folder), "--no-progress", "--period",
                                "2026-Q3", "--format", "csv", "--lang", "en", *extra]) == 0
            out[org] = folder
        yield influx, out


def _csv(folder: Path, table: str) -> list[dict]:
    with (folder / f"printfarm-report-2026-Q3-en-{table}.csv").open(encoding="utf-8-sig") as fh:
        return list(csv.DictReader(fh))


def test_the_networks_database_has_the_amounts_and_types_and_no_file_or_user(farm):
    influx, _ = farm
    rows = influx.query("SELECT * FROM job WHERE kind <> 'started'", db=DB)
    by_time = {r["time"]: r for r in rows}
    for r in RUNS:
        row = by_time[t(r.end)]
        given = [u.grams for u in r.material if u.grams is not None]
        assert near(row["grams"], sum(given) if given else None)
        assert row["material"] == ("+".join(u.type for u in r.material) or None)
        assert (row["material_use"] is not None) == bool(r.material)
    assert not {k for row in rows for k, v in row.items() if v is not None} & {"file", "user"}
    detail = influx.query("SELECT file, material_use FROM job WHERE kind <> 'started'",
                          db=org_database(DB, org_id("Alfa universitet")))
    assert {row["file"] for row in detail} == {file_of(r) for r in RUNS if organisation(r) == "Alfa universitet"}


def test_the_networks_and_an_organisations_reports_bill_the_truth(farm):
    _, out = farm
    network = _csv(out[None], "billing")
    assert len(network) == len(RUNS)
    for r, row in zip(sorted(RUNS, key=lambda r: t(r.end)), network):
        assert near(row["Cost (SEK)"], cost(r)) and near(row["Material (g)"], grams(r))
    alfa = [r for r in RUNS if organisation(r) == "Alfa universitet"]
    own = _csv(out[org_id("Alfa universitet")], "billing")
    assert [row["Printer"] for row in own] == [r.printer for r in sorted(alfa, key=lambda r: t(r.end))]
    for r, row in zip(sorted(alfa, key=lambda r: t(r.end)), own):
        assert near(row["Cost (SEK)"], cost(r))
    org_rows = _csv(out[org_id("Alfa universitet")], "cost_organisations")
    assert len(org_rows) == 1 and near(org_rows[0]["Cost (SEK)"], sum(cost(r) for r in alfa))
    text = "".join(p.read_text(encoding="utf-8-sig") for p in out[None].glob("*.csv"))
    assert not any(file_of(r) in text for r in RUNS)  # the network's report names no file
