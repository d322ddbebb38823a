"""Secrets stay out of what the programs print and log: config errors, check-config, the report
CLI; and secrets are read as documented (the first line of a file)."""

from __future__ import annotations

import pytest

from agent.__main__ import main as agent_main
from common.configkit import ConfigError, Invalid, read_secret, read_secret_lines
from devkit.servers import free_port
from server.__main__ import main as server_main
from server.alerts import config as alerts_config

SECRET = "s3cret-Tok3n"


def write_server(tmp_path, influx_url: str) -> str:
    (tmp_path / "fleet.toml").write_text('[sites.umu]\norganisation = "UmU"\ncounty = "AC"\n')
    (tmp_path / "server.toml").write_text(f'inventory = "fleet.toml"\n[influx]\nurl = "{influx_url}"\ntimeout = 1\n')
    return str(tmp_path / "server.toml")


@pytest.mark.parametrize("bad", [f"hxxp://user:{SECRET}@hooks.example.org/{SECRET}",
                                 f"https://hooks.example.org:99999/{SECRET}", f"{SECRET}"])
def test_a_malformed_webhook_url_from_a_secret_file_is_not_echoed(tmp_path, bad):
    secret_file = tmp_path / "hook-url"
    secret_file.write_text(bad + "\n")
    with pytest.raises(ConfigError) as info:
        alerts_config.load({"receivers": {"hook": {"type": "webhook", "url_file": str(secret_file)}}})
    assert info.value.key == "alerts.receivers.hook.url_file" and SECRET not in str(info.value)


def test_a_malformed_printer_url_is_shown_without_its_credentials(tmp_path, capsys):
    key = tmp_path / "key"
    key.write_text("k\n")
    (tmp_path / "agent.toml").write_text(
        f'[agent]\nid = "pi-1"\nsite = "umu"\nstate_dir = "{tmp_path}"\n[[printers]]\nid = "p1"\n'
        f'url = "http://admin:{SECRET}@10.0.0.5:notaport/"\napi_key_file = "{key}"\n')
    assert agent_main(["check-config", "-c", str(tmp_path / "agent.toml")]) == 2
    err = capsys.readouterr().err
    assert "printers[0].url: 'http://***@10.0.0.5:notaport/' has a bad port" in err and SECRET not in err


def test_check_config_shows_the_influxdb_url_without_its_credentials(tmp_path, capsys):
    assert server_main(["check-config", "-c", write_server(tmp_path, f"http://admin:{SECRET}@127.0.0.1:8086")]) == 0
    out = capsys.readouterr().out
    assert "InfluxDB http://***@127.0.0.1:8086" in out and SECRET not in out


def test_the_report_cli_shows_an_unreachable_influxdb_without_its_credentials(tmp_path, capsys):
    config = write_server(tmp_path, f"http://admin:{SECRET}@127.0.0.1:{free_port()}/?u=admin&p={SECRET}")
    code = server_main(["report", "-c", config, "--period", "2026-Q3", "--out", str(tmp_path / "out"),
                        "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and "cannot read InfluxDB at http://***@127.0.0.1:" in err and SECRET not in err


def test_a_secret_file_gives_its_first_line_as_documented(tmp_path):
    path = tmp_path / "token"
    path.write_text(f"{SECRET}\n# rotated 2026-05-01, old: hunter2\n")
    assert read_secret("token", str(path), None) == SECRET
    path.write_text(f"\n{SECRET}\n")
    with pytest.raises(Invalid, match="first line"):
        read_secret("token", str(path), None)


def test_a_secret_from_the_environment_must_be_one_line(monkeypatch):
    monkeypatch.setenv("PF_TOKEN", f"{SECRET}\nX-Injected: 1")
    with pytest.raises(Invalid, match="line break"):
        read_secret("token", None, "PF_TOKEN")
    monkeypatch.setenv("PF_TOKEN", f"  {SECRET}\n")
    assert read_secret("token", None, "PF_TOKEN") == SECRET


def test_apprise_urls_come_one_a_line_from_a_file_or_the_environment(tmp_path, monkeypatch):
    path = tmp_path / "urls"
    path.write_text("# ops\njson://127.0.0.1:9/a\n\n  json://127.0.0.1:9/b  \n")
    assert read_secret_lines("urls", str(path), None) == ["json://127.0.0.1:9/a", "json://127.0.0.1:9/b"]
    monkeypatch.setenv("PF_URLS", "json://127.0.0.1:9/a\njson://127.0.0.1:9/b")
    assert read_secret_lines("urls", None, "PF_URLS") == ["json://127.0.0.1:9/a", "json://127.0.0.1:9/b"]
