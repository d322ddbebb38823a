"""Organisations: the inventory's tables and names, the network's lines, the writer and spool per
database, the readers' passwords (docs/organisations.md)."""

from __future__ import annotations

import logging
import stat

import pytest

from common import protocol
from server import config as server_config
from server import inventory as inventory_mod
from server import lineproto
from server.routing import PerOrganisation
from server.metrics import Metrics
from server.store import tenants
from server.store.influx import BatchWriter, InfluxError
from server.store.spool import Spool
from server.tenancy import NETWORK_READER

SITES = {"a": {"organisation": "oru", "county": "Örebro"},
         "b": {"organisation": "Luleå tekniska universitet", "county": "Norrbotten"}}


def inv(organisations=None, sites=None):
    return inventory_mod.from_dict({"organisations": organisations or {"oru": {"name": "Örebro universitet"}},
                                    "sites": sites or SITES, "printers": {"p1": {"site": "a"}, "p2": {"site": "b"}}})


def error(**kw) -> str:
    with pytest.raises(inventory_mod.ConfigError) as caught:
        inv(**kw)
    return caught.value.line()


def test_a_site_names_its_organisation_by_id_or_as_before_by_display_name():
    found = inv()
    assert found.org_of_site == {"a": "oru", "b": "lulea-tekniska-universitet"}
    assert found.tags("a", "p1").organisation == "Örebro universitet" and found.tags("a", "p1").org == "oru"
    assert found.tags("b", "p2").organisation == "Luleå tekniska universitet"
    by_name = inv(sites={"a": {"organisation": "Örebro universitet", "county": "Ö"}, "b": SITES["b"]})
    assert by_name.org_of_site["a"] == "oru"  # the table's name finds its ID
    assert inv().tags("nowhere", "p9").org == inventory_mod.UNLISTED


def test_an_organisation_id_the_network_reader_or_the_unlisted_use_is_refused():
    assert "organisations.network: the ID 'network' is reserved" in error(organisations={"network": {}})
    assert "organisations.unlisted" in error(organisations={"unlisted": {}})
    assert "sites.a.organisation: 'Network' makes the reserved ID 'network'" in error(
        sites={"a": {"organisation": "Network", "county": "c"}})


def test_ids_and_names_that_would_share_a_database_are_refused_naming_the_key():
    assert "organisations.a_b: its database and reader would be those of 'a-b'" in error(
        organisations={"a-b": {}, "a_b": {}})
    line = error(organisations={"x": {"name": "X"}}, sites={"a": {"organisation": "Y y", "county": "c"},
                                                             "b": {"organisation": "y-Y", "county": "c"}})
    assert line.startswith("<inventory>: sites.b.organisation: 'y-Y' makes the ID 'y-y', which is 'Y y' already")
    assert "organisations.x.nam: is not a known key" in error(organisations={"x": {"nam": "X"}})


def test_an_organisations_inventory_holds_only_its_sites_and_printers():
    mine = inv().of_organisation("oru")
    assert set(mine.printers) == {"p1"} and set(mine.sites) == {"a"}


def test_the_networks_lines_carry_no_file_and_no_user():
    tags = lineproto.tag_set(inv().tags("a", "p1"))
    status = protocol.Status(v=1, ts=5, printer="p1", site="a", seq=1, state="printing", file="secret.gcode")
    assert "secret" in lineproto.status(status, tags) and "secret" not in lineproto.status_network(status, tags)
    event = protocol.Event(v=1, ts=5, printer="p1", site="a", seq=2, kind="done", file="secret.gcode",
                           user="u-1234", duration=12.0)
    bare_event = lineproto.event_network(event, tags)
    assert "secret" not in bare_event and "u-1234" not in bare_event and "duration=12.0" in bare_event


def test_per_organisation_a_printers_detail_goes_to_its_organisations_lines_only():
    network, orgs = [], {}
    routes = PerOrganisation(network.append, lambda org: orgs.setdefault(org, []).append)
    event = protocol.Event(v=1, ts=5, printer="p1", site="a", seq=2, kind="done", file="f.gcode", user="u-1")
    outlet = routes.outlet(inv().tags("a", "p1"))
    outlet.event(event, ",site=a")
    outlet.job_user(event, ",site=a", "Anna")
    outlet.telemetry(protocol.Telemetry(v=1, ts=5, printer="p1", site="a", seq=3, state="printing",
                                        file="f.gcode"), ",site=a")
    assert [len(orgs["oru"]), len(network)] == [3, 1]  # telemetry: the organisation's only
    assert "f.gcode" in orgs["oru"][0] and "Anna" in orgs["oru"][1] and "f.gcode" not in network[0]


class FakeInflux:
    def __init__(self):
        self.up, self.writes = True, []

    def write(self, body: bytes, db: str | None = None) -> None:
        if not self.up:
            raise InfluxError("InfluxDB unreachable: test")
        self.writes.append((db, body))


def test_the_writer_sends_each_databases_lines_there_and_spools_them_with_their_database(tmp_path):
    influx, acked, now = FakeInflux(), [], [1000.0]
    writer = BatchWriter(influx, batch_size=100, spool=Spool(tmp_path, 1 << 20), acknowledge=acked.extend,
                         metrics=Metrics(), clock=lambda: now[0])
    influx.up = False
    writer.put_many(["m v=1i 1"])
    writer.put_many(["m v=2i 2"], "printfarm_oru")
    writer.track(["token"])
    writer.flush()
    writer.step()
    assert acked == ["token"] and Spool(tmp_path, 1 << 20).databases() == {None, "printfarm_oru"}
    influx.up = True
    now[0] += 60  # past the retry delay
    writer.stop()
    assert influx.writes == [(None, b"m v=1i 1"), ("printfarm_oru", b"m v=2i 2")]


def test_lines_routed_to_many_databases_in_a_burst_reach_each_in_the_order_they_came_one_request_each(tmp_path):
    # The organisations' lines of a burst come in any mix, with the database of each; the writer
    # groups them once per chunk, also when the chunk goes back to the buffer (queue full).
    influx, acked = FakeInflux(), []
    writer = BatchWriter(influx, batch_size=100, max_queue=1, acknowledge=acked.extend, metrics=Metrics())
    writer.put_many(["n v=1i 1"], routed=(["a v=1i 1", "b v=1i 1", "a v=2i 2"], ["db_a", "db_b", "db_a"]))
    writer.track(["t1"])
    assert writer.pending() == 4
    assert writer.flush(block=False)
    writer.put_many([], routed=(["b v=2i 2"], ["db_b"]))
    writer.track(["t2"])
    assert writer.flush(block=False)  # the queue holds 2 chunks: full now
    writer.put_many([], routed=(["a v=3i 3", "b v=3i 3"], ["db_a", "db_b"]))
    assert not writer.flush(block=False)  # the chunk stays in the buffer, grouped
    writer.put_many([], routed=(["a v=4i 4"], ["db_a"]))
    assert writer.pending() == 8  # 4 + 1 queued, 3 buffered
    writer.step()
    writer.step()  # the two queued chunks stored
    writer.stop()
    assert sorted(influx.writes, key=lambda w: str(w[0])) == [
        (None, b"n v=1i 1"), ("db_a", b"a v=1i 1\na v=2i 2"), ("db_a", b"a v=3i 3\na v=4i 4"), ("db_b", b"b v=1i 1"),
        ("db_b", b"b v=2i 2"), ("db_b", b"b v=3i 3")]
    assert acked == ["t1", "t2"] and writer.pending() == 0


def test_a_spooled_batch_keeps_its_database_across_a_restart(tmp_path):
    Spool(tmp_path, 1 << 20).append(b"a", "printfarm_oru")
    Spool(tmp_path, 1 << 20).append(b"b")
    again = Spool(tmp_path, 1 << 20)
    assert again.peek_with_database() == (b"a", "printfarm_oru")
    again.pop()
    assert again.peek_with_database() == (b"b", None)
    with pytest.raises(ValueError):
        again.append(b"c", "../elsewhere")


def test_a_readers_password_is_made_once_unreadable_by_others_and_never_logged(tmp_path, caplog, monkeypatch):
    cfg = server_config.from_dict({"inventory": "x", "state_dir": str(tmp_path)})
    inventory = inv()
    with caplog.at_level(logging.DEBUG):
        first = tenants.reader_password(cfg, inventory, "oru").reveal()
    assert first == tenants.reader_password(cfg, inventory, "oru").reveal() and len(first) >= 24
    path = tmp_path / tenants.READERS_DIR / "reader_oru"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and first not in caplog.text
    assert tenants.reader_password(cfg, inventory, None).reveal() != first  # the network's own
    assert (tmp_path / tenants.READERS_DIR / NETWORK_READER).exists()
    monkeypatch.setenv("ORU_READER", "from-env")
    given = inv(organisations={"oru": {"name": "Örebro universitet", "reader_password_env": "ORU_READER"}})
    assert tenants.reader_password(cfg, given, "oru").reveal() == "from-env"


def test_the_layout_is_checked_at_start_naming_the_key():
    with pytest.raises(server_config.ConfigError, match="influx.layout"):
        server_config.from_dict({"inventory": "x", "influx": {"layout": "per-org"}})
    with pytest.raises(server_config.ConfigError, match="influx.database"):
        server_config.from_dict({"inventory": "x", "influx": {"layout": "organisations", "database": "Print Farm"}})


def test_an_alert_about_a_printer_goes_to_its_organisations_database():
    cfg = server_config.from_dict({"inventory": "x"})
    put = []
    write = tenants.alert_writer(tenants.Tenants(None, inv(), cfg), lambda line, db: put.append(db))
    write(lineproto.point("alert", {"organisation": "Örebro universitet", "printer": "p1"}, [("state", "open")], 1))
    write(lineproto.point("alert", {"organisation": "Luleå tekniska universitet"}, [("state", "open")], 1))
    write(lineproto.point("alert", {"agent": "pi"}, [("state", "open")], 1))
    assert put == ["printfarm_oru", "printfarm_lulea_tekniska_universitet", None]


def test_report_organisation_is_refused_clearly_without_the_layout_or_for_an_unknown_id(tmp_path, capsys):
    from server.__main__ import main as server_main

    (tmp_path / "fleet.toml").write_text('[organisations.oru]\nname = "Örebro universitet"\n'
                                         '[sites.a]\norganisation = "oru"\ncounty = "Örebro"\n')
    single = tmp_path / "single.toml"
    single.write_text(f'inventory = "fleet.toml"\nstate_dir = "{tmp_path}"\n[influx]\nspool_dir = "{tmp_path / "s"}"\n')
    per_org = tmp_path / "organisations.toml"
    per_org.write_text(single.read_text() + 'layout = "organisations"\n')
    args = ["report", "--period", "2026-07", "--no-progress", "--organisation"]
    assert server_main([*args, "oru", "-c", str(single)]) == 2
    assert 'report: --organisation needs [influx] layout = "organisations"' in capsys.readouterr().err
    assert server_main([*args, "umu", "-c", str(per_org)]) == 2
    assert "report: --organisation 'umu' is not in the inventory (its organisations: oru)" in capsys.readouterr().err


def test_a_reader_password_file_that_cannot_be_read_stops_the_collector_at_start_naming_the_key(tmp_path, capsys):
    from server.__main__ import main as server_main

    (tmp_path / "fleet.toml").write_text('[organisations.oru]\nreader_password_file = "/nonexistent/oru"\n'
                                         '[sites.a]\norganisation = "oru"\ncounty = "Örebro"\n')
    config = tmp_path / "server.toml"
    config.write_text(f'inventory = "fleet.toml"\nstate_dir = "{tmp_path}"\n[influx]\nurl = "http://127.0.0.1:9"\n'
                      f'spool_dir = "{tmp_path / "s"}"\nlayout = "organisations"\n')
    assert server_main(["run", "-c", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("config error:") and "reader_password" in err and "Traceback" not in err


def test_migrate_organisations_refuses_while_the_spool_holds_batches_of_the_old_layout(tmp_path, capsys):
    from server.__main__ import main as server_main

    (tmp_path / "fleet.toml").write_text('[sites.a]\norganisation = "Örebro universitet"\ncounty = "Örebro"\n')
    Spool(tmp_path / "spool", 1 << 20).append(b'telemetry,site=a file="secret.gcode" 1')
    config = tmp_path / "server.toml"
    config.write_text(f'inventory = "fleet.toml"\nstate_dir = "{tmp_path}"\n[influx]\nurl = "http://127.0.0.1:9"\n'
                      f'spool_dir = "{tmp_path / "spool"}"\nlayout = "organisations"\n')
    assert server_main(["migrate-organisations", "-c", str(config)]) == 2
    assert "holds 1 batch(es) not yet in InfluxDB" in capsys.readouterr().err
