"""``printfarm-server grafana-setup`` against a Grafana stand-in whose every request and answer
is checked against Grafana's published OpenAPI document (tests/unit/grafana_standin.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from dashboards import generate
from devkit.servers import free_port
from server.__main__ import main
from server.grafana import orgs
from server.tenancy import NETWORK_READER, org_database, org_reader
from tests.unit.grafana_standin import GrafanaStandIn

ROOT = Path(__file__).resolve().parents[2]
INVENTORY = ROOT / "examples" / "fleet.toml"
ADMIN_PASSWORD = "admin-secret-7f3a"
ORG_BOARDS = {"printfarm-fleet", "printfarm-printer", "printfarm-utilisation", "printfarm-alerts"}
NETWORK_BOARDS = {"printfarm-utilisation", "printfarm-funder", "printfarm-directory"}


@pytest.fixture
def grafana():
    with GrafanaStandIn(password=ADMIN_PASSWORD) as standin:
        yield standin
    assert standin.violations == [], "\n".join(standin.violations)


@pytest.fixture
def setup_files(tmp_path):
    """A server config over the example inventory, the admin's password and each reader's."""
    config = tmp_path / "server.toml"
    config.write_text(f'inventory = "{INVENTORY}"\n[influx]\nurl = "http://influxdb:8086"\ndatabase = "printfarm"\n')
    (tmp_path / "admin-password").write_text(ADMIN_PASSWORD + "\n")
    readers = tmp_path / "readers"
    readers.mkdir()
    for org in [None, *(o.id for o in orgs.from_inventory(INVENTORY))]:
        user = NETWORK_READER if org is None else org_reader(org)
        (readers / user).write_text(f"pw-of-{user}\n")
    return tmp_path


def _setup(grafana_url: str, files: Path, *extra: str) -> int:
    return main(["grafana-setup", "-c", str(files / "server.toml"), "--grafana-url", grafana_url,
                 "--grafana-password-file", str(files / "admin-password"), "--readers-dir", str(files / "readers"),
                 "--dashboards", str(ROOT / "dashboards" / "json"), *extra])


def _by_name(grafana) -> dict[str, int]:
    return {name: ident for ident, name in grafana.state.orgs.items()}


def test_each_organisation_gets_its_grafana_organisation_team_data_source_and_dashboards(grafana, setup_files, capsys):
    assert _setup(grafana.url, setup_files) == 0
    out = capsys.readouterr().out
    members = orgs.from_inventory(INVENTORY)
    ids = _by_name(grafana)
    assert set(ids) == {"Main Org.", *(o.name for o in members)}
    for org in members:
        grafana_id = ids[org.name]
        assert [t["name"] for t in grafana.state.teams.values() if t["orgId"] == grafana_id] == [org.name]
        source = grafana.state.datasources[(grafana_id, "printfarm-influx")]
        assert (source["user"], source["jsonData"]["dbName"]) == (org_reader(org.id), org_database("printfarm", org.id))
        assert source["secureJsonData"] == {"password": f"pw-of-{org_reader(org.id)}"}
        assert {uid for (o, uid) in grafana.state.dashboards if o == grafana_id} == ORG_BOARDS
    network = grafana.state.datasources[(1, "printfarm-influx")]
    assert (network["user"], network["jsonData"]["dbName"]) == (NETWORK_READER, "printfarm")
    assert {uid for (o, uid) in grafana.state.dashboards if o == 1} == NETWORK_BOARDS
    assert "pw-of-" not in out and ADMIN_PASSWORD not in out
    assert out.count("organisation ") == 3 and "created (Grafana org" in out


def test_running_it_twice_duplicates_nothing(grafana, setup_files, capsys):
    assert _setup(grafana.url, setup_files) == 0
    first = (dict(grafana.state.orgs), len(grafana.state.teams), set(grafana.state.datasources),
             set(grafana.state.dashboards))
    capsys.readouterr()
    assert _setup(grafana.url, setup_files) == 0
    again = capsys.readouterr().out
    assert (dict(grafana.state.orgs), len(grafana.state.teams), set(grafana.state.datasources),
            set(grafana.state.dashboards)) == first
    assert "created" not in again and again.count(": exists") == 6  # three organisations, three teams
    assert {d["version"] for d in grafana.state.dashboards.values()} == {2}


def test_an_organisation_made_by_hand_is_found_by_its_name(grafana, setup_files):
    grafana.state.orgs[7] = "Örebro universitet"
    assert _setup(grafana.url, setup_files) == 0
    assert list(grafana.state.orgs.values()).count("Örebro universitet") == 1
    assert (7, "printfarm-influx") in grafana.state.datasources


def test_the_org_ids_it_writes_give_the_provisioning_files_grafanas_ids(grafana, setup_files):
    grafana.state.orgs[5] = "Mälardalens universitet"  # made earlier, out of the generator's order
    ids_file = setup_files / "org-ids.json"
    assert _setup(grafana.url, setup_files, "--org-ids", str(ids_file)) == 0
    members = orgs.from_inventory(INVENTORY)
    rendered = generate.render_provisioning(members, orgs.grafana_ids(members, ids_file), "http://i:8086",
                                            "printfarm", "/s")
    names = _by_name(grafana)
    for org in members:
        assert rendered[f"datasources/org-{org.id}.yaml"]["datasources"][0]["orgId"] == names[org.name]
        assert rendered[f"dashboards/org-{org.id}.yaml"]["providers"][0]["orgId"] == names[org.name]


def test_a_data_source_provisioned_by_files_is_left_to_them_with_its_dashboards(grafana, setup_files, capsys):
    """As in deploy/central, where the network's files are provisioned: Grafana refuses API
    changes to a provisioned data source or dashboard."""
    grafana.state.datasources[(1, "printfarm-influx")] = {
        "name": "printfarm", "uid": "printfarm-influx", "type": "influxdb", "id": 99, "orgId": 1, "version": 1,
        "readOnly": True, "user": NETWORK_READER, "jsonData": {"dbName": "printfarm"}}
    assert _setup(grafana.url, setup_files) == 0
    assert "network: provisioned by files, left to them" in capsys.readouterr().out
    assert not [r for r in grafana.state.requests if r[2] == 1 and r[0] != "GET" and r[1] != "/api/orgs"]
    assert not [key for key in grafana.state.dashboards if key[0] == 1]
    assert len([key for key in grafana.state.dashboards if key[0] != 1]) == 12


def test_provisioned_makes_only_organisations_and_teams(grafana, setup_files):
    assert main(["grafana-setup", "-c", str(setup_files / "server.toml"), "--grafana-url", grafana.url,
                 "--grafana-password-file", str(setup_files / "admin-password"), "--provisioned"]) == 0
    assert len(grafana.state.orgs) == 4 and len(grafana.state.teams) == 3
    assert not grafana.state.datasources and not grafana.state.dashboards


def test_bad_credentials_are_one_line_naming_the_user_and_nothing_is_made(grafana, setup_files, capsys):
    (setup_files / "admin-password").write_text("wrong-password\n")
    assert _setup(grafana.url, setup_files) == 1
    err = capsys.readouterr().err
    assert "refused the credentials of 'admin'" in err and "wrong-password" not in err
    assert len(err.strip().splitlines()) == 1
    assert grafana.state.orgs == {1: "Main Org."}


def test_grafana_down_is_one_line_naming_the_url(setup_files, capsys):
    url = f"http://127.0.0.1:{free_port()}"
    assert _setup(url, setup_files) == 1
    err = capsys.readouterr().err
    assert f"Grafana does not answer at {url}" in err and len(err.strip().splitlines()) == 1


def test_a_missing_reader_password_is_a_config_error_naming_the_file(grafana, setup_files, capsys):
    (setup_files / "readers" / org_reader("orebro-universitet")).unlink()
    assert _setup(grafana.url, setup_files) == 2
    err = capsys.readouterr().err
    assert "reader_orebro_universitet" in err and "config error" in err
    assert grafana.state.requests == []


def test_the_standin_reports_what_grafanas_document_does_not_allow():
    """A positive control: a malformed request and an operation the document lacks are caught."""
    with GrafanaStandIn(password=ADMIN_PASSWORD) as standin:
        auth = ("admin", ADMIN_PASSWORD)
        requests.post(standin.url + "/api/orgs", json={"name": 5}, auth=auth, timeout=5)
        requests.get(standin.url + "/api/orgs/name/nobody", auth=auth, timeout=5)
        # An answer without the "message" createOrg must carry.
        standin._validate("POST", "/api/orgs", {}, b'{"name": "x"}', 200, {"orgId": 2})
    assert any("POST /api/orgs" in v and "request" in v for v in standin.violations), standin.violations
    assert any("/api/orgs/name/nobody" in v for v in standin.violations), standin.violations
    assert any("POST /api/orgs 200 answer" in v for v in standin.violations), standin.violations
