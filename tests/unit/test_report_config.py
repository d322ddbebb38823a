"""The [reports] table and the scheduled run."""

from datetime import datetime, timezone

import pytest

from common.configkit import ConfigError
from server import config as server_config
from server import inventory as inventory_mod
from server.reports import config as reports_config
from server.reports import periods, schedule
from server.reports.build import build
from server.reports.query import RawData


def test_defaults_are_swedish_stockholm_and_all_formats():
    cfg = reports_config.load({})
    assert (cfg.lang, cfg.tz, cfg.formats, cfg.schedule.enabled) == ("sv", "Europe/Stockholm",
                                                                    ["xlsx", "pdf", "csv", "summary"], False)


@pytest.mark.parametrize("raw, key", [
    ({"formats": ["docx"]}, "reports.formats"),
    ({"lang": "de"}, "reports.lang"),
    ({"tz": "Europe/Umea"}, "reports.tz"),
    ({"schedule": {"cron": "every day"}}, "reports.schedule.cron"),
    ({"schedule": {"period": "week"}}, "reports.schedule.period"),
    ({"mail": {"host": "smtp", "sender": "me", "to": ["a@b"]}}, "reports.mail.sender"),
    ({"mail": {"host": "smtp", "sender": "me@x", "to": []}}, "reports.mail.to"),
    ({"colour": "red"}, "reports.colour"),
])
def test_a_bad_setting_names_its_key_and_a_fix(raw, key):
    with pytest.raises(ConfigError) as err:
        reports_config.load(raw, "server.toml")
    assert err.value.key == key and err.value.fix


def test_the_mail_password_comes_from_a_file_and_never_shows(tmp_path):
    secret = tmp_path / "pw"
    secret.write_text("hunter2\n")
    cfg = reports_config.load({"mail": {"host": "smtp", "sender": "a@b", "to": ["c@d"],
                                        "password_file": str(secret), "username": "u"}})
    assert cfg.mail.password.reveal() == "hunter2" and "hunter2" not in repr(cfg.mail)


def test_the_cron_fires_at_six_on_the_first_in_local_time():
    cfg = reports_config.load({"schedule": {"enabled": True, "cron": "0 6 1 * *"}})
    after = datetime(2026, 9, 15, tzinfo=timezone.utc)
    fire = schedule.trigger(cfg).get_next_fire_time(None, after)
    assert fire.astimezone(timezone.utc) == datetime(2026, 10, 1, 4, 0, tzinfo=timezone.utc)


def test_a_scheduled_run_writes_last_months_report_and_mails_every_file(tmp_path):
    rcfg = reports_config.load({"out_dir": str(tmp_path), "formats": ["csv", "xlsx"], "lang": "en",
                                "mail": {"host": "smtp", "sender": "a@b", "to": ["c@d", "e@f"]}})
    cfg = server_config.from_dict({"inventory": "x.toml", "state_dir": str(tmp_path / "state")})
    inv = inventory_mod.from_dict({})
    asked, sent = [], []

    def make(client, inventory, period, now_ms, grace_s, people):
        asked.append(period.label)
        return build(RawData(period.start_ms, period.end_ms), inventory, period, now_ms)

    now = periods.parse("2026-10").start_ms + 6 * 3_600_000
    paths = schedule.run_once(cfg, inv, rcfg, now_ms=now, make=make, client=object(),
                              send=lambda msg, mail: sent.append(msg))
    assert asked == ["2026-09"]
    assert (tmp_path / "printfarm-report-2026-09-en.xlsx").exists()
    attached = [part.get_filename() for part in sent[0].iter_attachments()]
    assert attached == [p.name for p in paths] and sent[0]["To"] == "c@d, e@f"


def test_a_background_schedule_starts_only_when_enabled():
    cfg = server_config.from_dict({"inventory": "x.toml"})
    inv = inventory_mod.from_dict({})
    assert schedule.start_background(cfg, inv, reports_config.load({})) is None
    scheduler = schedule.start_background(cfg, inv, reports_config.load({"schedule": {"enabled": True}}))
    try:
        job = scheduler.get_job("printfarm-report")
        assert job.next_run_time.day == 1 and job.next_run_time.hour == 6
    finally:
        scheduler.shutdown(wait=False)
