"""The regional directory (server/directory*.py, docs/directory.md): Info into the collector, the
inventory's capabilities and policies, the filters, availability, bookings, the CLI's table."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest

from common import protocol
from server import directory_cli
from server import inventory as inventory_mod
from server.directory import Directory
from server.directory_query import BadQuery, from_params, material_matches
from server.ingest import Ingest
from server.live import LiveFleet
from server.routing import PerOrganisation

NOW = 1_800_000_000_000
INVENTORY = {
    "sites": {
        "uni": {"organisation": "Uppsala universitet", "county": "Uppsala", "directory": "live",
                "access": ["members", "students"], "contact": "lab@uu.example", "hours": "Mon-Fri 08-16"},
        "works": {"organisation": "Gävle Verkstad AB", "county": "Gävleborg", "directory": "capabilities",
                  "access": ["companies"]},
        "secret": {"organisation": "Örebro Labs", "county": "Örebro", "directory": "hidden"},
    },
    "models": {"Prusa MK4": {"volume": [250, 210, 220], "nozzle_mm": 0.4, "enclosed": False}},
    "printers": {
        "mk4": {"site": "uni", "model": "Prusa MK4", "materials": ["PLA", "PETG"]},
        "big": {"site": "uni", "model": "Voron 2.4", "volume": [350, 350, 340], "nozzle_mm": 0.6, "enclosed": True},
        "x1": {"site": "works", "model": "Bambu X1C"},
        "hid": {"site": "secret", "model": "Prusa MK4"},
    },
}


def inv(**over):
    data = json.loads(json.dumps(INVENTORY))
    for key, value in over.items():
        data[key] = value
    return inventory_mod.from_dict(data)


def info(site, printer, ts=NOW, **fields) -> tuple[str, bytes]:
    msg = protocol.Info(v=1, ts=ts, printer=printer, site=site, seq=1, **fields)
    return protocol.printer_topic(site, printer, "info"), protocol.encode(msg)


def telemetry(site, printer, state, ts=NOW, **fields) -> tuple[str, bytes]:
    msg = protocol.Telemetry(v=1, ts=ts, printer=printer, site=site, seq=2, state=state, **fields)
    return protocol.printer_topic(site, printer, "telemetry"), protocol.encode(msg)


class Rig:
    """Ingest with two databases (the organisations' and the network's), and the directory."""

    def __init__(self, inventory=None):
        self.inventory = inventory or inv()
        self.fleet = LiveFleet(self.inventory)
        self.network, self.org = [], {}
        routes = PerOrganisation(self.network.append, lambda org: self.org.setdefault(org, []).append)
        self.ingest = Ingest(self.inventory, self.fleet, self.network.append, clock=lambda: NOW / 1000, routes=routes)
        self.directory = Directory(self.inventory, self.fleet)

    def send(self, *messages):
        for topic, payload in messages:
            assert self.ingest.handle(topic, payload) is not None, (topic, payload)

    def ask(self, own=None, **filters):
        return {p["printer"]: p for p in self.directory.answer(from_params(filters), NOW, own)}


def test_an_info_message_is_accepted_kept_per_printer_and_stored_in_both_databases():
    rig = Rig()
    rig.send(info("uni", "mk4", model="Prusa MK4S", volume=[250, 210, 220],
                  tools=[protocol.Tool(nozzle_mm=0.4, nozzle_type="brass", material="PETG", colour="#112233")]))
    state = rig.fleet.printers[("uni", "mk4")]
    assert state.info["model"] == "Prusa MK4S" and state.info["tools"][0]["material"] == "PETG"
    [org_line] = rig.org["uppsala-universitet"]
    assert org_line in rig.network and org_line.startswith("printer_info,county=Uppsala,directory=live,")
    assert 'model="Prusa MK4"' in org_line and 'loaded="PETG"' in org_line and 'materials="PLA, PETG"' in org_line
    assert "nozzle_mm=0.4" in org_line and org_line.endswith(f" {NOW}")


def test_an_older_info_does_not_replace_a_newer_one_whatever_came_between():
    rig = Rig()
    rig.send(info("uni", "mk4", ts=NOW, model="new"), telemetry("uni", "mk4", "idle", ts=NOW + 5000),
             info("uni", "mk4", ts=NOW - 60_000, model="old"))
    assert rig.fleet.printers[("uni", "mk4")].info["model"] == "new"
    rig.send(info("uni", "mk4", ts=NOW + 1, model="newer"))  # older than the telemetry, newer than the info
    assert rig.fleet.printers[("uni", "mk4")].info["model"] == "newer"


def test_capabilities_are_the_printers_own_words_completed_by_its_entry_and_its_model():
    rig = Rig()
    rig.send(info("uni", "mk4", slots=[protocol.Tool(material="PETG-CF"), protocol.Tool(material="PLA")]))
    mk4 = rig.ask()["mk4"]
    assert mk4["volume"] == [250, 210, 220] and mk4["nozzles"] == [0.4] and mk4["enclosed"] is False  # the model's
    assert mk4["loaded"] == ["PETG-CF", "PLA"] and mk4["materials"] == ["PLA", "PETG"]
    assert rig.ask()["big"]["volume"] == [350, 350, 340]  # the printer's own entry


def test_a_printers_own_inventory_keys_correct_what_it_says_and_what_it_says_wins_over_its_models():
    rig = Rig()
    # "big" has its own volume and nozzle in the inventory (an OctoPrint profile left at 200 mm, say);
    # "mk4" has only its model's: the printer's own word wins there.
    rig.send(info("uni", "big", model="Generic", volume=[200, 200, 200], enclosed=False,
                  tools=[protocol.Tool(nozzle_mm=0.4, nozzle_type="brass")]),
             info("uni", "mk4", model="Prusa MK4S", volume=[250, 210, 235], enclosed=True,
                  tools=[protocol.Tool(nozzle_mm=0.6)]))
    big, mk4 = rig.ask()["big"], rig.ask()["mk4"]
    assert (big["model"], big["volume"], big["nozzles"], big["enclosed"]) == ("Voron 2.4", [350, 350, 340], [0.6], True)
    assert big["nozzle_type"] == "brass"  # the inventory says none: the printer's
    assert (mk4["volume"], mk4["nozzles"], mk4["enclosed"]) == ([250, 210, 235], [0.6], True)
    assert mk4["model"] == "Prusa MK4"  # the inventory's name of the printer stays


def test_filters_material_volume_nozzle_and_county():
    rig = Rig()
    rig.send(info("uni", "big", tools=[protocol.Tool(nozzle_mm=0.6, material="PETG-CF")]))
    assert set(rig.ask(material="petg")) == {"mk4", "big"}  # kept, loaded (PETG-CF is a PETG)
    assert set(rig.ask(material="PETG-CF")) == {"big"}
    assert set(rig.ask(min_volume="300x300x300")) == {"big"}
    assert set(rig.ask(min_volume="220x250x200")) == {"mk4", "big"}  # a part may be turned
    assert set(rig.ask(nozzle="0.6")) == {"big"}
    assert set(rig.ask(county="gävleborg, Örebro")) == {"x1"}
    assert set(rig.ask(access="companies")) == {"x1"} and set(rig.ask(access="students")) == {"mk4", "big"}
    assert material_matches("PETG", "Bambu PETG Basic") and not material_matches("PETG-CF", "PETG")


def test_a_site_policy_hides_live_state_or_the_whole_site_except_from_its_own_organisation():
    rig = Rig()
    rig.send(telemetry("works", "x1", "idle"), telemetry("secret", "hid", "idle"))
    found = rig.ask()
    assert "hid" not in found
    assert found["x1"]["publish"] == "capabilities" and found["x1"]["state"] is None and found["x1"]["free_in_s"] is None
    assert "x1" not in rig.ask(free_within="2h")
    own = rig.ask(own="orebro-labs")
    assert own["hid"]["state"] == "idle" and own["hid"]["available"] is True


def test_time_until_free_is_the_jobs_time_left_plus_the_queue_and_bookings_push_it_on(tmp_path):
    (tmp_path / "bookings.csv").write_text(
        "site,printer,from,to,customer\n"
        f"uni,big,{_iso(NOW + 3600_000)},{_iso(NOW + 7200_000)},acme\n")
    data = json.loads(json.dumps(INVENTORY))
    data["attribution"] = {"bookings": "bookings.csv", "tz": "UTC"}
    data["customers"] = {"acme": {"name": "Acme AB", "kind": "company", "county": "Uppsala", "size": "small"}}
    rig = Rig(inventory_mod.from_dict(data, base=tmp_path))
    rig.send(telemetry("uni", "mk4", "printing", ts=NOW - 600_000, time_left=1800.0, file="a.gcode", user="alice"),
             info("uni", "mk4", queued_jobs=2, queued_s=900.0),
             telemetry("uni", "big", "printing", ts=NOW, time_left=4000.0))
    found = rig.ask()
    assert found["mk4"]["free_in_s"] == 1800 - 600 + 900 and found["mk4"]["available"] is False
    assert found["mk4"]["queued_jobs"] == 2
    assert found["big"]["free_in_s"] == 7200  # its job ends inside the booking: free when that ends
    assert found["big"]["next_booking"] == {"from": NOW + 3600_000, "to": NOW + 7200_000}
    assert set(rig.ask(free_within="0.5h")) == set() and set(rig.ask(free_within="30m")) == set()
    assert set(rig.ask(free_within="35m")) == {"mk4"} and set(rig.ask(free_within="2h")) == {"mk4", "big"}
    assert "acme" not in json.dumps(found) and "Acme" not in json.dumps(found)


def test_offline_error_and_a_vanished_agent_are_not_available():
    rig = Rig()
    rig.send(telemetry("uni", "mk4", "error"), telemetry("uni", "big", "idle"))
    assert rig.ask()["mk4"]["available"] is False and rig.ask()["mk4"]["free_in_s"] is None
    assert rig.ask()["big"]["available"] is True and rig.ask()["big"]["free_in_s"] == 0
    status = protocol.Status(v=1, ts=NOW, printer="big", site="uni", seq=3, state="idle", agent="pi-1")
    will = protocol.AgentStatus(v=1, ts=NOW + 1, agent="pi-1", state="offline", will=True)
    rig.send((protocol.printer_topic("uni", "big", "status"), protocol.encode(status)),
             (protocol.agent_topic("pi-1"), protocol.encode(will)))
    assert rig.ask()["big"]["state"] == "offline" and rig.ask()["big"]["available"] is False


def test_no_file_name_user_or_state_text_in_any_entry():
    rig = Rig()
    rig.send(telemetry("uni", "mk4", "printing", time_left=60.0, file="volvo_bracket.gcode", user="alice.a",
                       state_text="Printing volvo_bracket.gcode"))
    text = json.dumps(rig.directory.answer(from_params({}), NOW, "uppsala-universitet"))
    assert "volvo" not in text and "alice" not in text
    assert "mk4" in text  # the positive control: the printer is there


def test_bad_filters_and_bad_inventory_keys_name_the_key_and_the_fix():
    for params, start in (({"min_volume": "250x250"}, "min_volume:"), ({"free_within": "soon"}, "free_within:"),
                          ({"nozzle": "wide"}, "nozzle:"), ({"colour": "red"}, "colour: not a filter"),
                          ({"access": "everyone"}, "access:")):
        with pytest.raises(BadQuery) as caught:
            from_params(params)
        assert str(caught.value).startswith(start) and "fix:" in str(caught.value)
    cases = ((("sites", "uni", "directory"), "open", "sites.uni.directory: 'open' is not a policy"),
             (("sites", "uni", "access"), ["everyone"], "sites.uni.access[0]: 'everyone' is not a kind of user"),
             (("printers", "mk4", "volume"), [250, 210], "printers.mk4.volume: [250.0, 210.0] is not a build volume"),
             (("models", "Prusa MK4", "nozzle_mm"), 9, "models.Prusa MK4.nozzle_mm: 9.0 is not a nozzle diameter"))
    for (table, key, field), value, expected in cases:
        data = json.loads(json.dumps(INVENTORY))
        data[table][key][field] = value
        with pytest.raises(inventory_mod.ConfigError) as caught:
            inventory_mod.from_dict(data)
        assert expected in caught.value.line() and "fix:" in caught.value.line()


def test_the_cli_table_fits_100_columns_with_long_names():
    rig = Rig(inv(sites={**INVENTORY["sites"], "uni": {**INVENTORY["sites"]["uni"],
                                                      "name": "Uppsala universitet, Ångströmlaboratoriet, Makerspace"}}))
    rig.send(info("uni", "mk4", slots=[protocol.Tool(material=f"Material {n} with a long name") for n in range(4)]),
             telemetry("uni", "big", "printing", time_left=4000.0))
    text = directory_cli.table(rig.directory.answer(from_params({}), NOW))
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 100 and lines[0].startswith("PRINTER")
    assert any(line.startswith("big ") and line.endswith("in 1h07") for line in lines)
    assert any("not shared" in line for line in lines) and lines[-1] == "3 printer(s)"


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M", time.gmtime(ms / 1000))


def test_a_printers_texts_in_info_are_made_plain_and_a_bad_info_is_refused_not_fatal():
    rig = Rig()
    rig.send(info("uni", "big", model="Voron\x1b[2J", tools=[protocol.Tool(material="PETG\u202e-CF", nozzle_type="brass\x07")]))
    big = rig.ask()["big"]
    assert big["loaded"] == ["PETG-CF"] and big["nozzle_type"] == "brass"
    assert all(c.isprintable() for line in rig.network for c in line)
    topic = protocol.printer_topic("uni", "big", "info")
    for payload in (b"{", b'{"v":1,"ts":1800000000000,"printer":"big","site":"uni","seq":1,"volume":[1,2]}',
                    b'{"v":1,"ts":1800000000000,"printer":"mk4","site":"uni","seq":1}'):
        assert rig.ingest.handle(topic, payload) is None  # refused and counted
    assert rig.ask()["big"]["loaded"] == ["PETG-CF"]  # the last good Info stands
    assert dict(rig.ingest.metrics.rejected) == {"malformed_json": 1, "invalid_schema": 1, "topic_mismatch": 1}


def test_the_cli_names_the_problem_and_exits_2(capsys, monkeypatch):
    from devkit.servers import free_port

    monkeypatch.delenv(directory_cli.TOKEN_ENV, raising=False)
    cfg = SimpleNamespace(http=SimpleNamespace(host="127.0.0.1", port=free_port()))
    args = SimpleNamespace(material=None, min_volume="250", nozzle=None, county=None, free_within=None, access=None,
                           url=None, token_file=None, json=False)
    assert directory_cli.run(cfg, args) == 2
    assert "min_volume: '250' is not a volume — fix:" in capsys.readouterr().err
    args.min_volume = "250x250x250"
    assert directory_cli.run(cfg, args) == 2
    assert f"cannot reach the collector at http://127.0.0.1:{cfg.http.port}" in capsys.readouterr().err
