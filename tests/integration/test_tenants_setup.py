"""The databases, retention policies, readers and grants of the organisations layout, made at every
start of the collector (server/store/tenants.py), against the real InfluxDB with authentication on:
in one request when all is as it should be (or nothing is there yet), and adjusted one statement at a
time when something was changed by hand: a reader's password, a grant on another database, a
retention policy's duration."""

from __future__ import annotations

import pytest

from common.configkit import Secret
from devkit.servers import InfluxDB
from server import config as server_config
from server import inventory as inventory_mod
from server.store.influx import InfluxHTTP
from server.store.tenants import Tenants
from server.tenancy import NETWORK_READER, org_database, org_reader

pytestmark = pytest.mark.integration

ADMIN = ("admin", "admin-secret")
NET = "printfarm"


class Counting(InfluxHTTP):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.queries = 0

    def query(self, q, *args, **kwargs):
        self.queries += 1
        return super().query(q, *args, **kwargs)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tenants")
    (tmp / "fleet.toml").write_text('[sites.a]\norganisation = "A"\ncounty = "c"\n[sites.b]\norganisation = "B"\ncounty = "c"\n')
    with InfluxDB(tmp / "influxdb", admin=ADMIN) as influx:
        cfg = server_config.from_dict({"inventory": str(tmp / "fleet.toml"), "state_dir": str(tmp / "state"),
                                       "influx": {"url": influx.url, "layout": "organisations"},
                                       "retention": {"rollups": "52w"}}, "server.toml")
        client = Counting(influx.url, NET, ADMIN[0], Secret(ADMIN[1]))
        tenants = Tenants(client, inventory_mod.load(cfg.inventory), cfg)
        yield influx, client, tenants


def _reader(tenants: Tenants, org: str | None) -> tuple[str, str]:
    db = NET if org is None else org_database(NET, org)
    user, password = tenants._readers[db]
    return user, password.reveal()


def _can_read(influx, db: str, auth) -> bool:
    try:
        influx.query("SHOW MEASUREMENTS", db=db, auth=auth)
    except RuntimeError as exc:
        assert "not authorized" in str(exc) or "authorization failed" in str(exc)
        return False
    return True


def test_everything_is_made_and_found_again_in_one_request_each_start(made):
    influx, client, tenants = made
    for _ in range(2):  # made, then found as it should be
        client.queries = 0
        tenants.ensure_all()
        assert client.queries == 1
    names = {d["name"] for d in influx.query("SHOW DATABASES")}
    assert set(tenants.databases()) <= names
    for db in tenants.databases():
        assert {"name": "rollups", "duration": "8736h0m0s"}.items() <= \
            next(r for r in influx.query("SHOW RETENTION POLICIES", db=db) if r["name"] == "rollups").items()
    a, network = _reader(tenants, "a"), _reader(tenants, None)
    assert a[0] == org_reader("a") and network[0] == NETWORK_READER
    assert _can_read(influx, org_database(NET, "a"), a) and not _can_read(influx, org_database(NET, "b"), a)
    assert _can_read(influx, NET, network) and not _can_read(influx, org_database(NET, "a"), network)


def test_what_was_changed_by_hand_is_put_back_one_statement_at_a_time(made):
    influx, client, tenants = made
    tenants.ensure_all()
    a = _reader(tenants, "a")
    influx.query(f'GRANT READ ON "{org_database(NET, "b")}" TO "{a[0]}"')
    influx.query(f"SET PASSWORD FOR \"{a[0]}\" = 'changed-by-hand'")
    influx.query(f'ALTER RETENTION POLICY "rollups" ON "{org_database(NET, "b")}" DURATION 4w')
    assert _can_read(influx, org_database(NET, "b"), (a[0], "changed-by-hand"))  # the positive control
    client.queries = 0
    tenants.ensure_all()
    assert client.queries > 1  # the careful way
    assert _can_read(influx, org_database(NET, "a"), a) and not _can_read(influx, org_database(NET, "b"), a)
    rp = next(r for r in influx.query("SHOW RETENTION POLICIES", db=org_database(NET, "b")) if r["name"] == "rollups")
    assert rp["duration"] == "8736h0m0s"
    client.queries = 0
    tenants.ensure_all()
    assert client.queries == 1  # all as it should be again
