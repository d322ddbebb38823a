"""`printfarm-server report` argument handling (no database reachable here)."""

from server.__main__ import main
from devkit.servers import free_port


def _config(tmp_path, extra=""):
    inventory = tmp_path / "fleet.toml"
    inventory.write_text('[sites.umu]\norganisation = "UmU"\ncounty = "Västerbotten"\n')
    config = tmp_path / "server.toml"
    config.write_text(f'inventory = "{inventory}"\n[influx]\nurl = "http://127.0.0.1:{free_port()}"\n'
                      f'timeout = 1\n{extra}')
    return config


def test_a_bad_period_is_refused_with_the_accepted_spellings(tmp_path, capsys):
    assert main(["report", "-c", str(_config(tmp_path)), "--period", "Q3-2026"]) == 2
    assert "2026-Q3" in capsys.readouterr().err


def test_a_missing_period_is_refused(tmp_path, capsys):
    assert main(["report", "-c", str(_config(tmp_path))]) == 2
    assert "--period is required" in capsys.readouterr().err


def test_an_unknown_format_is_refused(tmp_path, capsys):
    assert main(["report", "-c", str(_config(tmp_path)), "--period", "2026-Q3", "--format", "xlsx,docx"]) == 2
    assert "xlsx, pdf, csv" in capsys.readouterr().err


def test_a_bad_reports_table_is_a_config_error_naming_the_key(tmp_path, capsys):
    config = _config(tmp_path, '[reports]\nlang = "fi"\n')
    assert main(["report", "-c", str(config), "--period", "2026-Q3"]) == 2
    assert "reports.lang" in capsys.readouterr().err


def test_an_unreachable_database_is_one_clear_line_not_a_traceback(tmp_path, capsys):
    code = main(["report", "-c", str(_config(tmp_path)), "--period", "2026-Q3", "--out", str(tmp_path / "out"),
                 "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1 and "cannot read InfluxDB" in err and "Traceback" not in err


def test_check_config_names_a_bad_reports_key(tmp_path, capsys):
    config = _config(tmp_path, '[reports]\nformats = ["pdf", "docx"]\n')
    assert main(["check-config", "-c", str(config)]) == 2
    assert "reports.formats" in capsys.readouterr().err


def test_a_period_in_the_future_is_refused(tmp_path, capsys):
    assert main(["report", "-c", str(_config(tmp_path)), "--period", "2099-Q1"]) == 2
    assert "has not begun" in capsys.readouterr().err
