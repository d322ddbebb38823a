import pytest

from agent import config as agent_config
from agent.__main__ import main as agent_main
from server.__main__ import main as server_main


@pytest.fixture
def key_file(tmp_path):
    path = tmp_path / "key"
    path.write_text("SECRET-KEY-123\n")
    return path


def write_agent(tmp_path, key_file, **printer):
    fields = {"id": '"mk4-01"', "url": '"http://127.0.0.1:5000"', "api_key_file": f'"{key_file}"'}
    fields.update(printer)
    body = "\n".join(f"{k} = {v}" for k, v in fields.items())
    path = tmp_path / "agent.toml"
    path.write_text(f'[agent]\nid = "pi-1"\nsite = "umu"\nstate_dir = "{tmp_path}"\n\n[[printers]]\n{body}\n')
    return path


def test_valid_config_reads_the_key_but_never_shows_it(tmp_path, key_file):
    cfg = agent_config.load(write_agent(tmp_path, key_file))
    printer = cfg.printers[0]
    assert printer.api_key.reveal() == "SECRET-KEY-123"
    assert "SECRET" not in repr(printer) + str(printer.api_key) + f"{printer.api_key}"
    assert printer.site == "umu"


@pytest.mark.parametrize("override,key,words", [
    ({"api_key_file": '"/no/such/key"'}, "printers[0].api_key_file", "cannot read /no/such/key"),
    ({"url": '"localhost:5000"'}, "printers[0].url", "not an http(s) URL"),
    ({"id": '"mk4/01"'}, "printers[0].id", "'/'"),
    ({"id": '"mk4+01"'}, "printers[0].id", "'+'"),
    ({"id": '"mk4#01"'}, "printers[0].id", "'#'"),
    ({"interval": '"fast"'}, "printers[0].interval", "is a str"),
    ({"intervall": "5"}, "printers[0].intervall", "not a known key"),
])
def test_check_config_names_the_key_and_the_fix_in_one_line(tmp_path, key_file, capsys, override, key, words):
    path = write_agent(tmp_path, key_file, **override)
    assert agent_main(["check-config", "-c", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert f"{key}: " in err and words in err and "fix: " in err


def test_agent_check_config_ok(tmp_path, key_file, capsys):
    assert agent_main(["check-config", "-c", str(write_agent(tmp_path, key_file))]) == 0
    out = capsys.readouterr().out
    assert "config ok" in out and "umu/mk4-01" in out and "SECRET" not in out


def test_server_check_config_reports_the_same_way(tmp_path, capsys):
    (tmp_path / "fleet.toml").write_text('[sites.umu]\norganisation = "UmU"\ncounty = "AC"\n'
                                         '[printers.mk4-01]\nsite = "nowhere"\n')
    (tmp_path / "server.toml").write_text('inventory = "fleet.toml"\n[influx]\nurl = "influx:8086"\n')
    assert server_main(["check-config", "-c", str(tmp_path / "server.toml")]) == 2
    err = capsys.readouterr().err
    assert "influx.url: 'influx:8086' is not an http(s) URL — fix:" in err
    (tmp_path / "server.toml").write_text('inventory = "fleet.toml"\n')
    assert server_main(["check-config", "-c", str(tmp_path / "server.toml")]) == 2
    err = capsys.readouterr().err
    assert "printers.mk4-01.site: site 'nowhere' is not defined — fix: add a [sites.nowhere] table" in err


def test_server_password_from_env_is_secret(tmp_path, monkeypatch):
    from server import config as server_config

    monkeypatch.setenv("PF_TEST_PW", "hunter2")
    cfg = server_config.from_dict({"inventory": "x", "mqtt": {"username": "c", "password_env": "PF_TEST_PW"}})
    assert cfg.mqtt.password.reveal() == "hunter2" and "hunter2" not in repr(cfg)
    monkeypatch.delenv("PF_TEST_PW")
    with pytest.raises(server_config.ConfigError, match=r"mqtt.password_env: environment variable PF_TEST_PW"):
        server_config.from_dict({"inventory": "x", "mqtt": {"username": "c", "password_env": "PF_TEST_PW"}})


@pytest.mark.parametrize("toml,words", [
    ("[ingest]\nmax_unlisted = -1\n", "ingest.max_unlisted: -1 is out of range — fix: use a value from 0 to 1000000"),
    ('[ingest]\nreject_unlisted = "yes"\n', "ingest.reject_unlisted: is a str — fix: set it to a bool"),
    ("[ingest]\nreject_unlisteds = true\n", "ingest.reject_unlisteds: is not a known key — fix:"),
])
def test_the_unlisted_printer_options_name_the_key_and_the_fix(tmp_path, capsys, toml, words):
    (tmp_path / "fleet.toml").write_text('[sites.umu]\norganisation = "UmU"\ncounty = "AC"\n')
    (tmp_path / "server.toml").write_text('inventory = "fleet.toml"\n' + toml)
    assert server_main(["check-config", "-c", str(tmp_path / "server.toml")]) == 2
    assert words in capsys.readouterr().err


@pytest.mark.parametrize("fleet,words", [
    ('[agents.pi-1]\nprinters = ["ghost"]\n', "agents.pi-1.printers[0]: printer 'ghost' is not defined — fix:"),
    ('[agents.pi-1]\nprinters = ["mk4-01"]\n[agents.pi-2]\nprinters = ["mk4-01"]\n',
     "agents.pi-2.printers[0]: printer 'mk4-01' is also under agent 'pi-1' — fix: give every printer to one agent"),
    ('[sites.x]\norganisation = "A\\\\B"\ncounty = "C"\n', "sites.x.organisation: 'A\\\\B' holds a backslash"),
])
def test_inventory_agents_and_names_are_checked_with_key_and_fix(tmp_path, capsys, fleet, words):
    (tmp_path / "fleet.toml").write_text('[sites.umu]\norganisation = "UmU"\ncounty = "AC"\n'
                                         '[printers.mk4-01]\nsite = "umu"\n' + fleet)
    (tmp_path / "server.toml").write_text('inventory = "fleet.toml"\n')
    assert server_main(["check-config", "-c", str(tmp_path / "server.toml")]) == 2
    assert words in capsys.readouterr().err
