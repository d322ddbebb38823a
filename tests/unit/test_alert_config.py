"""The [alerts] table: defaults, and errors that name the key and the fix without echoing secrets."""

from __future__ import annotations

import pytest

from server.alerts import config as alerts_config
from server.alerts.config import ConfigError


def _error(raw, **env) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        alerts_config.load(raw, "/tmp/state", "server.toml")
    return info.value


def test_an_empty_table_gives_defaults_and_a_state_file_under_state_dir():
    cfg = alerts_config.load({}, "/var/lib/pf")
    assert cfg.state_file == "/var/lib/pf/alerts/incidents.json"
    assert cfg.rules.printer_down.grace == 120 and cfg.rules.print_finished.enabled is False


def test_receivers_without_routes_get_everything():
    cfg = alerts_config.load({"receivers": {"a": {"type": "webhook", "url": "http://127.0.0.1:1/x"}}})
    assert [r.receivers for r in cfg.routes] == [["a"]]


def test_an_unknown_rule_setting_is_named_with_its_full_key():
    err = _error({"rules": {"printer_down": {"grase": 3}}})
    assert err.key == "alerts.rules.printer_down.grase" and "spelling" in err.fix


def test_a_wrong_receiver_type_names_the_receiver():
    err = _error({"receivers": {"ops": {"type": "email", "url": "http://x"}}})
    assert err.key == "alerts.receivers.ops.type" and "apprise" in err.fix


def test_a_route_to_an_undefined_receiver_says_which():
    err = _error({"routes": [{"receivers": ["nobody"]}]})
    assert err.key == "alerts.routes[0].receivers" and "nobody" in err.problem


def test_a_bad_apprise_url_is_not_echoed_because_it_may_hold_a_password():
    err = _error({"receivers": {"ops": {"type": "apprise", "urls": ["hunter2-password"]}}})
    assert "hunter2" not in err.line() and err.key == "alerts.receivers.ops.urls[0]"


def test_apprise_urls_can_come_from_a_file(tmp_path):
    path = tmp_path / "urls"
    path.write_text("# mail\nmailto://u:p@example.org\n\njson://127.0.0.1:9/x\n")
    cfg = alerts_config.load({"receivers": {"ops": {"type": "apprise", "urls_file": str(path)}}})
    assert [u.reveal() for u in cfg.receivers["ops"].secret_urls] == ["mailto://u:p@example.org", "json://127.0.0.1:9/x"]
    assert "u:p" not in repr(cfg.receivers["ops"].secret_urls)


def test_quiet_hours_reject_bad_times_zones_and_critical():
    assert _error({"quiet_hours": {"start": "7pm", "end": "07:00"}}).key == "alerts.quiet_hours.start"
    assert _error({"quiet_hours": {"start": "19:00", "end": "07:00", "timezone": "Mars/Olympus"}}).key == \
        "alerts.quiet_hours.timezone"
    assert _error({"quiet_hours": {"start": "19:00", "end": "07:00", "max_severity": "critical"}}).key == \
        "alerts.quiet_hours.max_severity"


def test_a_negative_grace_is_out_of_range():
    err = _error({"rules": {"printer_down": {"grace": -1}}})
    assert err.key == "alerts.rules.printer_down.grace" and "0 to" in err.fix


def test_a_bad_error_pattern_is_named():
    err = _error({"rules": {"heater_fault": {"error_patterns": ["("]}}})
    assert err.key == "alerts.rules.heater_fault.error_patterns[0]"


def test_an_apprise_url_apprise_cannot_use_is_refused_at_config_time():
    err = _error({"receivers": {"ops": {"type": "apprise", "urls": ["nosuchservice://secret@host"]}}})
    assert err.key == "alerts.receivers.ops.urls[0]" and "secret" not in err.line()
