"""Adding an alert rule is one module plus one line in the registry: nothing else to edit."""

from __future__ import annotations

import pytest

from server.alerts import config as alerts_config
from server.alerts import rules as alert_rules
from tests.unit import alert_rule_paused
from tests.unit.alert_helpers import Clock, make_engine, sent, tags, telemetry

TODAYS_ORDER = ["heater_fault", "print_failed", "printer_down", "job_stalled", "print_finished",
                "agent_offline", "agent_dropping", "service_due"]


def _error(raw) -> alerts_config.ConfigError:
    with pytest.raises(alerts_config.ConfigError) as info:
        alerts_config.load(raw, "/tmp/state", "server.toml")
    return info.value


def test_a_rule_module_with_one_line_in_the_map_is_configured_validated_and_fires(tmp_path, monkeypatch):
    raw = {"rules": {"printer_paused": {"after": 60, "severity": "warning"}},
           "routes": [{"rules": ["printer_paused"], "receivers": ["ops"]}]}
    assert _error(raw).key == "alerts.rules.printer_paused"  # unknown until registered

    monkeypatch.setitem(alert_rules.RULES, "printer_paused", alert_rule_paused)  # the one line

    err = _error({"rules": {"printer_paused": {"after": 0}}})
    assert err.key == "alerts.rules.printer_paused.after" and "from 1 to 86400" in err.fix
    assert _error({"rules": {"printer_paused": {"aftre": 5}}}).key == "alerts.rules.printer_paused.aftre"
    assert alerts_config.load({}).rules.printer_paused.after == 1800  # the module's default

    clock = Clock()
    engine = make_engine(tmp_path, clock, raw, receivers=("ops", "other"))
    engine.on_message(telemetry("printing", progress=40, file="cube.gcode"), tags())
    engine.on_message(telemetry("paused", progress=40, file="cube.gcode", seq=2), tags())
    clock.advance(30)
    engine.tick()
    assert sent(engine) == []
    clock.advance(31)
    engine.on_message(telemetry("paused", progress=40, file="cube.gcode", seq=3), tags())
    engine.tick()
    engine.on_message(telemetry("printing", progress=41, file="cube.gcode", seq=4), tags())
    notes = sent(engine)
    assert [(n["rule"], n["kind"], n["severity"]) for n in notes] == [
        ("printer_paused", "firing", "warning"), ("printer_paused", "resolved", "warning")]
    assert "paused for 61 s" in notes[0]["text"] and notes[0]["file"] == "cube.gcode"
    assert sent(engine, "other") == []  # routed by the rule's name


def test_rules_run_in_todays_order_and_after_the_rules_that_inhibit_them_wherever_they_stand(monkeypatch):
    assert [r.name for r in alert_rules.evaluation_order()] == TODAYS_ORDER
    monkeypatch.setattr(alert_rules, "RULES", dict(reversed(alert_rules.RULES.items())))
    order = [r.name for r in alert_rules.evaluation_order()]
    assert order.index("heater_fault") < order.index("print_failed") < order.index("printer_down")


def test_a_rule_inhibited_by_an_unregistered_rule_is_named(monkeypatch):
    monkeypatch.delitem(alert_rules.RULES, "printer_down")
    monkeypatch.setitem(alert_rules.RULES, "printer_paused", alert_rule_paused)
    with pytest.raises(KeyError, match="'printer_paused' is inhibited by 'printer_down'"):
        alert_rules.evaluation_order()
