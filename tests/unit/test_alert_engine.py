"""The alert engine with a fake clock and recording receivers: no threads, no sleeps."""

from __future__ import annotations

import pytest

from server.alerts.routing import quiet_end
from server.alerts import config as alerts_config
from tests.unit.alert_helpers import (
    Clock, agent_status, event, make_engine, sent, status, tags, telemetry,
)


def _fail_a_print(engine, text="Error: nozzle fell off"):
    engine.on_message(telemetry("printing", progress=10, file="cube.gcode"), tags())
    engine.on_message(status("printing", file="cube.gcode"), tags())
    engine.on_message(telemetry("error"), tags())
    engine.on_message(status("error", prev="printing", error=text, text="Offline after error"), tags())
    engine.on_message(event("failed", error=text), tags())


def test_a_failed_print_notifies_once_with_printer_site_file_and_error(tmp_path):
    engine = make_engine(tmp_path)
    _fail_a_print(engine)
    notes = sent(engine)
    assert [n["kind"] for n in notes] == ["firing"]
    note = notes[0]
    assert note["rule"] == "print_failed" and note["severity"] == "critical"
    assert note["printer"] == "vp-1" and note["site"] == "lab" and note["file"] == "cube.gcode"
    assert "nozzle fell off" in note["error"] and "nozzle fell off" in note["text"] and "cube.gcode" in note["text"]


def test_further_messages_during_an_incident_send_nothing_and_idle_sends_one_recovery(tmp_path):
    clock = Clock()
    engine = make_engine(tmp_path, clock)
    _fail_a_print(engine)
    for i in range(500):
        engine.on_message(telemetry("error", seq=i), tags())
        if i % 50 == 0:
            clock.advance(1)
            engine.tick()
    assert len(sent(engine)) == 1
    engine.on_message(telemetry("idle"), tags())
    engine.on_message(status("idle", prev="error"), tags())
    engine.tick()
    notes = sent(engine)
    assert [n["kind"] for n in notes] == ["firing", "resolved"]
    assert "idle again" in notes[1]["text"]


def test_an_error_mid_print_is_not_also_reported_as_printer_down(tmp_path):
    clock = Clock()
    engine = make_engine(tmp_path, clock, {"rules": {"printer_down": {"grace": 3}}})
    _fail_a_print(engine)
    clock.advance(10)
    engine.tick()
    assert [n["rule"] for n in sent(engine)] == ["print_failed"]


def test_unreachable_while_printing_alerts_at_once_as_critical(tmp_path):
    engine = make_engine(tmp_path)
    engine.on_message(telemetry("printing", file="cube.gcode"), tags())
    engine.on_message(telemetry("unreachable"), tags())
    notes = sent(engine)
    assert [(n["rule"], n["severity"]) for n in notes] == [("printer_down", "critical")]
    assert notes[0]["file"] == "cube.gcode"


def test_an_idle_printer_down_alerts_only_after_the_grace_period(tmp_path):
    clock = Clock()
    engine = make_engine(tmp_path, clock, {"rules": {"printer_down": {"grace": 3}}})
    engine.on_message(telemetry("idle"), tags())
    engine.on_message(telemetry("offline"), tags())
    clock.advance(2.9)
    engine.tick()
    assert sent(engine) == []
    clock.advance(0.2)
    engine.tick()
    notes = sent(engine)
    assert [(n["rule"], n["severity"]) for n in notes] == [("printer_down", "warning")]


def test_an_idle_printer_back_within_the_grace_period_alerts_not_at_all(tmp_path):
    clock = Clock()
    engine = make_engine(tmp_path, clock, {"rules": {"printer_down": {"grace": 3}}})
    engine.on_message(telemetry("idle"), tags())
    engine.on_message(telemetry("offline"), tags())
    clock.advance(2)
    engine.on_message(telemetry("idle"), tags())
    clock.advance(10)
    engine.tick()
    assert sent(engine) == [] and engine.open == {}


def test_a_mintemp_error_is_a_heater_fault_that_silences_the_print_failure(tmp_path):
    engine = make_engine(tmp_path)
    _fail_a_print(engine, text="Error: MINTEMP triggered!")
    notes = sent(engine)
    assert [(n["rule"], n["severity"]) for n in notes] == [("heater_fault", "critical")]
    assert "MINTEMP" in notes[0]["text"] and notes[0]["file"] == "cube.gcode"


def test_a_heater_that_does_not_warm_up_is_a_heater_fault(tmp_path):
    clock = Clock()
    engine = make_engine(tmp_path, clock, {"rules": {"heater_fault": {"rise_window": 30, "rise_min": 2}}})
    for i in range(40):
        engine.on_message(telemetry("idle", temps={"tool0": (25.0 + 0.01 * i, 210.0)}), tags())
        clock.advance(1)
        engine.tick()
    notes = sent(engine)
    assert [n["rule"] for n in notes] == ["heater_fault"] and "tool0" in notes[0]["title"]


def test_a_heater_warming_steadily_is_no_fault(tmp_path):
    clock = Clock()
    engine = make_engine(tmp_path, clock, {"rules": {"heater_fault": {"rise_window": 10}}})
    for i in range(60):
        engine.on_message(telemetry("printing", progress=i, temps={"tool0": (min(25.0 + 3 * i, 210.0), 210.0)}), tags())
        clock.advance(1)
        engine.tick()
    assert sent(engine) == []


def test_a_heater_falling_away_from_its_target_alerts_after_far_for(tmp_path):
    clock = Clock()
    engine = make_engine(tmp_path, clock, {"rules": {"heater_fault": {"far_for": 20, "tolerance": 10}}})
    engine.on_message(telemetry("printing", temps={"tool0": (209.0, 210.0)}), tags())
    for _ in range(19):
        clock.advance(1)
        engine.on_message(telemetry("printing", temps={"tool0": (180.0, 210.0)}), tags())
        engine.tick()
    assert sent(engine) == []
    clock.advance(2)
    engine.tick()
    assert [n["rule"] for n in sent(engine)] == ["heater_fault"]
    engine.on_message(telemetry("printing", temps={"tool0": (208.0, 210.0)}), tags())
    engine.tick()
    assert [n["kind"] for n in sent(engine)] == ["firing", "resolved"]


def test_a_job_whose_progress_stops_moving_is_stalled(tmp_path):
    clock = Clock()
    engine = make_engine(tmp_path, clock, {"rules": {"job_stalled": {"after": 60}}})
    engine.on_message(telemetry("printing", progress=40.0, file="big.gcode"), tags())
    clock.advance(59)
    engine.on_message(telemetry("printing", progress=40.0, file="big.gcode"), tags())
    engine.tick()
    assert sent(engine) == []
    clock.advance(2)
    engine.tick()
    assert [n["rule"] for n in sent(engine)] == ["job_stalled"]
    engine.on_message(telemetry("printing", progress=40.5, file="big.gcode"), tags())
    engine.tick()
    assert [n["kind"] for n in sent(engine)] == ["firing", "resolved"]


def test_an_unresolved_critical_incident_repeats_only_after_the_repeat_interval(tmp_path):
    clock = Clock()
    engine = make_engine(tmp_path, clock, {"repeat_interval": 600})
    _fail_a_print(engine)
    for _ in range(599):
        clock.advance(1)
        engine.tick()
    assert [n["kind"] for n in sent(engine)] == ["firing"]
    clock.advance(1)
    engine.tick()
    assert [n["kind"] for n in sent(engine)] == ["firing", "repeat"]
    assert "still open" in sent(engine)[1]["title"]


def test_a_restarted_engine_keeps_the_incident_and_does_not_resend_it(tmp_path):
    clock = Clock()
    first = make_engine(tmp_path, clock)
    _fail_a_print(first)
    first.stop()
    second = make_engine(tmp_path, clock)
    assert len(second.open) == 1
    second.on_message(telemetry("error"), tags())
    second.on_message(status("error", prev="error", error="Error: nozzle fell off"), tags())
    second.tick()
    assert sent(second) == []
    second.on_message(telemetry("idle"), tags())
    assert [n["kind"] for n in sent(second)] == ["resolved"]


def test_undelivered_notifications_are_saved_and_sent_after_a_restart(tmp_path):
    clock = Clock()
    first = make_engine(tmp_path, clock)
    _fail_a_print(first)
    first.stop()  # the delivery thread never ran: the note is still queued
    second = make_engine(tmp_path, clock)
    second.start()
    try:
        from devkit.pipeline import wait_for
        wait_for(lambda: second.recorders["ops"].notes, 5, "the saved notification")
    finally:
        second.stop()
    assert [n["rule"] for n in second.recorders["ops"].notes] == ["print_failed"]


def test_a_flapping_printer_notifies_once_per_cooldown(tmp_path):
    clock = Clock()
    engine = make_engine(tmp_path, clock, {"cooldown": 300})
    engine.on_message(telemetry("printing", file="a.gcode"), tags())
    for _ in range(5):
        engine.on_message(telemetry("unreachable"), tags())
        clock.advance(10)
        engine.on_message(telemetry("printing", file="a.gcode"), tags())
        clock.advance(10)
    assert [n["kind"] for n in sent(engine)] == ["firing", "resolved"]


def test_quiet_hours_hold_a_warning_until_they_end_but_never_a_critical(tmp_path):
    # 1_800_000_000 is 2027-01-15 08:00 UTC
    clock = Clock(1_800_000_000.0)
    raw = {"quiet_hours": {"start": "07:00", "end": "09:00", "timezone": "UTC"},
           "rules": {"printer_down": {"grace": 0}}}
    engine = make_engine(tmp_path, clock, raw)
    engine.on_message(telemetry("idle", printer="vp-2"), tags("vp-2"))
    engine.on_message(telemetry("offline", printer="vp-2"), tags("vp-2"))
    _fail_a_print(engine)
    engine.tick()
    assert [n["rule"] for n in sent(engine)] == ["print_failed"]
    clock.advance(3601)
    engine.tick()
    assert [n["rule"] for n in sent(engine)] == ["print_failed", "printer_down"]


def test_quiet_end_handles_windows_across_midnight():
    quiet = alerts_config.QuietHours(start="22:00", end="07:00", timezone="UTC")
    night = 1_800_000_000.0 + 15 * 3600  # 2027-01-15 23:00 UTC (the base is 08:00)
    assert quiet_end(quiet, night) == night + 8 * 3600
    assert quiet_end(quiet, night + 7 * 3600) == night + 8 * 3600
    assert quiet_end(quiet, night + 9 * 3600) is None


def test_routes_send_each_organisation_to_its_own_receiver(tmp_path):
    raw = {"receivers": {"umu": {"type": "webhook", "url": "http://127.0.0.1:9/a"},
                         "ltu": {"type": "webhook", "url": "http://127.0.0.1:9/b"},
                         "all": {"type": "webhook", "url": "http://127.0.0.1:9/c"}},
           "routes": [{"organisations": ["UmU"], "receivers": ["umu"]},
                      {"sites": ["ltu-lab"], "receivers": ["ltu"]},
                      {"min_severity": "critical", "receivers": ["all"]}]}
    engine = make_engine(tmp_path, raw=raw)
    engine.on_message(telemetry("printing"), tags("a1", "umu-lab", "UmU"))
    engine.on_message(telemetry("unreachable"), tags("a1", "umu-lab", "UmU"))
    assert [n["printer"] for n in sent(engine, "umu")] == ["a1"] and sent(engine, "ltu") == []
    assert [n["printer"] for n in sent(engine, "all")] == ["a1"]


def test_an_agent_last_will_alerts_after_grace_or_at_once_while_printing(tmp_path):
    clock = Clock()
    engine = make_engine(tmp_path, clock, {"rules": {"agent_offline": {"grace": 30}}})
    engine.on_message(agent_status("online"), None)
    engine.on_message(telemetry("idle"), tags())
    engine.on_message(agent_status("offline"), None)
    clock.advance(29)
    engine.tick()
    assert sent(engine) == []
    engine.on_message(agent_status("online"), None)
    engine.on_message(telemetry("printing"), tags())
    engine.on_message(agent_status("offline"), None)
    notes = sent(engine)
    assert [(n["rule"], n["severity"], n["site"]) for n in notes] == [("agent_offline", "critical", "lab")]
    engine.on_message(agent_status("online"), None)
    assert [n["kind"] for n in sent(engine)] == ["firing", "resolved"]


def test_an_agent_that_drops_data_alerts_once_per_increase(tmp_path):
    engine = make_engine(tmp_path)
    engine.on_message(agent_status("online", dropped=5), None)  # first sight: a baseline, no alert
    engine.on_message(agent_status("online", dropped=5), None)
    assert sent(engine) == []
    engine.on_message(agent_status("online", dropped=12), None)
    engine.on_message(agent_status("online", dropped=12), None)
    notes = sent(engine)
    assert [n["rule"] for n in notes] == ["agent_dropping"] and "7 message" in notes[0]["text"]


def test_print_finished_is_off_by_default_and_once_per_job_when_on(tmp_path):
    engine = make_engine(tmp_path)
    engine.on_message(event("done"), tags())
    assert sent(engine) == []
    engine = make_engine(tmp_path / "2", raw={"rules": {"print_finished": {"enabled": True}}})
    engine.on_message(event("done"), tags())
    engine.on_message(event("done"), tags())  # a redelivery
    engine.tick()
    notes = sent(engine)
    assert [(n["rule"], n["severity"]) for n in notes] == [("print_finished", "info")] and engine.open == {}


def test_alerts_are_written_as_points_with_tags_and_state(tmp_path):
    engine = make_engine(tmp_path)
    _fail_a_print(engine)
    engine.on_message(telemetry("idle"), tags())
    firing, resolved = engine.lines
    assert firing.startswith("alert,agent=pi-1,county=Västerbotten,organisation=Org\\ of\\ lab,printer=vp-1,"
                             "rule=print_failed,severity=critical,site=lab ")
    assert 'state="firing"' in firing and 'incident="print_failed/lab/vp-1/' in firing and "notified=true" in firing
    assert 'state="resolved"' in resolved


def test_the_engine_never_raises_into_ingestion_for_unknown_printers(tmp_path):
    engine = make_engine(tmp_path)
    engine.on_message(telemetry("unreachable", printer="new"), tags("new"))
    assert engine.open_incidents() == []  # unknown previous state: not "while printing"


def test_a_printer_gone_silent_is_not_called_stalled(tmp_path):
    clock = Clock()
    engine = make_engine(tmp_path, clock, {"rules": {"job_stalled": {"after": 120}}})
    engine.on_message(telemetry("printing", progress=40.0), tags())
    clock.advance(600)  # its agent died: no messages at all
    engine.tick()
    assert sent(engine) == []


def test_a_redelivered_old_failure_after_the_recovery_opens_nothing_even_after_a_restart(tmp_path):
    from tests.unit.alert_helpers import TS
    engine = make_engine(tmp_path)
    _fail_a_print(engine)
    engine.on_message(telemetry("idle", ts=TS + 5000), tags())
    engine.on_message(event("failed", error="Error: nozzle fell off"), tags())  # older: TS
    assert [n["kind"] for n in sent(engine)] == ["firing", "resolved"]
    engine.stop()
    restarted = make_engine(tmp_path)
    restarted.on_message(event("failed", error="Error: nozzle fell off"), tags())
    assert sent(restarted) == [] and restarted.open == {}



@pytest.mark.parametrize("text", ["[1, 2]", '{"incidents": [1]}', '{"incidents": {"x": {"rule": 1}}}', "{", "null"])
def test_a_damaged_incident_file_is_set_aside_and_the_engine_starts(tmp_path, text):
    (tmp_path / "alerts").mkdir()
    (tmp_path / "alerts" / "incidents.json").write_text(text)
    engine = make_engine(tmp_path)
    assert engine.open == {}
    _fail_a_print(engine)  # and it works
    assert [n["rule"] for n in sent(engine)] == ["print_failed"]


def test_an_incident_saved_before_printers_had_sites_in_their_names_still_resolves(tmp_path):
    import json

    (tmp_path / "alerts").mkdir()
    saved = {"id": "print_failed/vp-1/1", "rule": "print_failed", "subject": "vp-1", "severity": "critical",
             "summary": "Print failed", "message": "m", "details": {"printer": "vp-1", "site": "lab"},
             "opened": 1_800_000_000.0, "notified_at": 1_800_000_000.0}
    (tmp_path / "alerts" / "incidents.json").write_text(json.dumps({"incidents": {"print_failed/vp-1": saved}}))
    engine = make_engine(tmp_path)
    assert list(engine.open) == ["print_failed/lab/vp-1"]
    engine.on_message(telemetry("idle"), tags())
    assert [n["kind"] for n in sent(engine)] == ["resolved"] and engine.open == {}


def test_a_failure_whose_end_time_comes_before_the_agents_error_sample_still_alerts(tmp_path):
    from tests.unit.alert_helpers import TS
    # Moonraker: the agent sends "error" as Klipper shuts down, then the job's end from the
    # history entry, whose time (Moonraker's, as the entry closed) is a few ms before that sample.
    engine = make_engine(tmp_path)
    engine.on_message(event("started", ts=TS - 1000, job_started=None), tags())
    engine.on_message(telemetry("printing", progress=10, file="cube.gcode", ts=TS - 500), tags())
    engine.on_message(telemetry("error", ts=TS + 40), tags())
    engine.on_message(event("disconnected", file=None, job_started=None, ts=TS + 40), tags())
    engine.on_message(event("failed", error="Shutdown due to M112 command", ts=TS + 20), tags())
    assert [(n["rule"], n["kind"]) for n in sent(engine)] == [("print_failed", "firing")]
    engine.on_message(event("failed", error="Shutdown due to M112 command", ts=TS + 20), tags())  # redelivered
    assert len(sent(engine)) == 1
