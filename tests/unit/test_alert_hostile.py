"""The alert engine against what a careless or hostile agent or printer can send: markup and
mentions in printer texts, claims to other agents' printers, the same printer ID at two sites."""

from __future__ import annotations

import logging

import pytest

from common import protocol
from tests.unit.alert_helpers import TS, Clock, agent_status, event, make_engine, sent, status, tags, telemetry

HOSTILE = {
    "file": "<!channel> @everyone [invoice](http://evil.example/x) cube\n\rSECOND LINE.gcode",
    "error": "<b>MINTEMP</b> <@U123> @here\nfake: log line " + "x" * 500,
}


def test_printer_text_reaches_chat_receivers_without_markup_mentions_or_newlines_and_capped(tmp_path, caplog):
    engine = make_engine(tmp_path)
    caplog.set_level(logging.INFO)
    engine.on_message(telemetry("printing", file=HOSTILE["file"]), tags())
    engine.on_message(telemetry("error"), tags())
    engine.on_message(event("failed", file=HOSTILE["file"], error=HOSTILE["error"]), tags())
    (note,) = sent(engine)
    for field in ("title", "summary", "message", "file", "error"):
        value = note[field]
        assert not any(bad in value for bad in ("<", ">", "@everyone", "@here", "](", "\n", "\r")), (field, value)
    assert len(note["error"]) <= 200 and len(note["file"]) <= 200
    assert "invoice" in note["file"] and "cube" in note["file"] and "MINTEMP" in note["error"]
    assert note["text"].count("\n") == len(note["text"].splitlines()) - 1  # only our own line breaks
    assert all("SECOND LINE" not in line or "cube" in line for line in note["text"].splitlines())
    assert not [r for r in caplog.records if "\n" in r.getMessage()]


# Each got past the earlier filter into Teams/Slack/mail (issue 21).
BYPASSES = {
    "interleaved": "[a]<x>(http://evil.example)",
    "nested": "[[invoice](http://x.example)](http://evil.example)",
    "bare_url": "see https://evil.example/login",
    "bare_domain": "log in at evil.com",
    "c1_csi": "cube\x9b2J.gcode",
    "rtl_override": "invoice\u202efdp.exe",
    "entity": "&#91;a&#93;(http://evil.example)",
}


@pytest.mark.parametrize("case", sorted(BYPASSES))
def test_a_reported_bypass_reaches_no_receiver_as_a_link_a_control_or_an_override(tmp_path, case):
    engine = make_engine(tmp_path)
    engine.on_message(telemetry("printing", file=BYPASSES[case]), tags())
    engine.on_message(telemetry("error"), tags())
    engine.on_message(event("failed", file=BYPASSES[case], error=BYPASSES[case]), tags())
    (note,) = sent(engine)
    for field in ("title", "summary", "message", "file", "error", "text"):
        value = note[field]
        assert not any(bad in value for bad in ("](", "://", "evil.", "\x9b", "\u202e", "&#")), (field, value)


def test_an_inventory_name_with_markup_is_shown_without_its_link(tmp_path):
    engine = make_engine(tmp_path)
    org = "[Evil AB](http://evil.example)"
    engine.on_message(telemetry("printing"), tags(org=org))
    engine.on_message(event("failed", error="x"), tags(org=org))
    (note,) = sent(engine)
    assert note["organisation"] == "Evil AB" and "Organisation: Evil AB" in note["text"]
    assert "evil.example" not in note["text"]


def test_an_email_address_in_a_printer_text_stays_readable(tmp_path):
    engine = make_engine(tmp_path)
    engine.on_message(event("failed", error="mail ops@example.org"), tags())
    assert "ops@example.org" in sent(engine)[0]["error"]


def _two_orgs(tmp_path, agents_table: bool):
    inventory = {"sites": {"north": {"organisation": "North Uni", "county": "Uppsala"},
                           "south": {"organisation": "South AB", "county": "Östergötland"}},
                 "printers": {"n1": {"site": "north"}, "s1": {"site": "south"}}}
    if agents_table:
        inventory["agents"] = {"pi-north": {"printers": ["n1"]}, "pi-south": {"printers": ["s1"]}}
    raw = {"receivers": {"north": {"type": "webhook", "url": "http://127.0.0.1:9/n"},
                         "south": {"type": "webhook", "url": "http://127.0.0.1:9/s"}},
           "routes": [{"organisations": ["North Uni"], "receivers": ["north"]},
                      {"organisations": ["South AB"], "receivers": ["south"]}],
           "rules": {"agent_offline": {"grace": 0}}}
    return make_engine(tmp_path, Clock(), raw, inventory=inventory)


def _printer_reports(engine, site, printer, agent, org):
    t = protocol.Status(v=1, ts=TS, printer=printer, site=site, seq=1, state="printing", agent=agent)
    engine.on_message(t, tags(printer, site, org))


def _agent(engine, agent, state, printers):
    engine.on_message(protocol.AgentStatus(v=1, ts=TS, agent=agent, state=state, printers=printers), None)


@pytest.mark.parametrize("agents_table", [True, False], ids=["agents-table", "printer-status"])
def test_an_agent_claiming_another_agents_printer_cannot_route_its_alerts_there(tmp_path, agents_table):
    engine = _two_orgs(tmp_path, agents_table)
    _printer_reports(engine, "north", "n1", "pi-north", "North Uni")
    _printer_reports(engine, "south", "s1", "pi-south", "South AB")
    _agent(engine, "pi-south", "online", ["n1", "s1"])  # n1 is not its printer
    _agent(engine, "pi-south", "offline", ["n1", "s1"])
    engine.tick()
    assert sent(engine, "north") == []
    (note,) = sent(engine, "south")  # positive control: its own printer's place routes it
    assert note["rule"] == "agent_offline" and note["site"] == "south"
    assert "n1" not in note["text"] and "s1" in note["text"]


def test_an_agent_claiming_only_foreign_printers_routes_nowhere_near_them(tmp_path):
    engine = _two_orgs(tmp_path, agents_table=True)
    _printer_reports(engine, "north", "n1", "pi-north", "North Uni")
    _agent(engine, "pi-south", "online", ["n1"])
    _agent(engine, "pi-south", "offline", ["n1"])
    engine.tick()
    assert sent(engine, "north") == [] and sent(engine, "south") == []
    _agent(engine, "pi-north", "online", ["n1"])  # positive control: the printer's own agent
    _agent(engine, "pi-north", "offline", ["n1"])
    engine.tick()
    assert [n["site"] for n in sent(engine, "north")] == ["north"]


def test_the_same_printer_id_at_another_site_is_another_printer(tmp_path):
    engine = make_engine(tmp_path)
    engine.on_message(telemetry("printing", file="a.gcode"), tags())
    other = protocol.Telemetry(v=1, ts=TS, printer="vp-1", site="elsewhere", seq=1, state="idle")
    engine.on_message(other, tags("vp-1", "elsewhere", "Other org"))
    engine.on_message(telemetry("unreachable"), tags())  # lab/vp-1 was printing: critical at once
    (note,) = sent(engine)
    assert (note["site"], note["severity"], note["file"]) == ("lab", "critical", "a.gcode")
    assert set(engine.printers) == {("lab", "vp-1"), ("elsewhere", "vp-1")}


def test_one_shot_alerts_notify_once_per_cooldown_and_the_waiting_one_carries_the_newest(tmp_path):
    clock = Clock()
    engine = make_engine(tmp_path, clock, {"cooldown": 300})
    engine.on_message(agent_status("online", dropped=0), None)
    for dropped in range(1, 1001):
        engine.on_message(agent_status("online", dropped=dropped), None)
    assert len(sent(engine)) == 1
    clock.advance(301)
    engine.tick()
    notes = sent(engine)
    assert len(notes) == 2 and "1000 since its first start" in notes[1]["text"]
    assert "Events: 999 since the last notice" in notes[1]["text"]


def test_a_full_receiver_queue_sheds_low_severity_before_a_critical_alert():
    from server.alerts.notifiers import Delivery

    class Never:
        name = "down"

        def send(self, note):
            raise RuntimeError("down")

    delivery = Delivery(Never(), queue_size=10)
    delivery.put({"incident": "crit", "severity": "critical", "queued_at": 0})
    for i in range(10_000):
        delivery.put({"incident": f"w{i}", "severity": "warning" if i % 2 else "info", "queued_at": 0})
    kept = [n["incident"] for n in delivery.pending()]
    assert "crit" in kept and len(kept) == 10
    assert all(n["severity"] == "warning" for n in delivery.pending() if n["incident"] != "crit")
    assert delivery.dropped == 10_001 - 10
