"""The [[printers]] table of a Bambu printer: every mistake names the key and the fix."""

import hashlib
import logging

import pytest

from agent import config as agent_config
from agent.__main__ import main as agent_main
from agent.printers.bambu.client import Bambu, PushallGate

SERIAL = "00M09A350100123"


@pytest.fixture
def files(tmp_path):
    (tmp_path / "code").write_text("12345678\n")
    (tmp_path / "ca.crt").write_text("-----BEGIN CERTIFICATE-----\n")
    return tmp_path


def table(files, **over):
    fields = {"id": "x1c-01", "type": "bambu", "host": "192.168.1.50", "serial": SERIAL,
              "access_code_file": str(files / "code"), "ca_file": str(files / "ca.crt")}
    fields.update(over)
    return {k: v for k, v in fields.items() if v is not None}


def load(files, **over):
    return agent_config.from_dict({"agent": {"id": "pi-1", "site": "lab", "state_dir": str(files)},
                                   "printers": [table(files, **over)]})


def test_a_valid_table_reads_the_access_code_but_never_shows_it(files):
    printer = load(files).printers[0]
    assert printer.type == "bambu" and printer.port == 8883 and printer.access_code.reveal() == "12345678"
    assert "12345678" not in repr(printer) + str(printer.access_code)


def test_a_pinned_fingerprint_is_read_with_or_without_colons(files):
    digest = hashlib.sha256(b"cert").digest()
    pretty = ":".join(f"{b:02x}" for b in digest)
    assert load(files, ca_file=None, fingerprint=pretty).printers[0].pin == digest
    assert load(files, fingerprint=digest.hex()).printers[0].pin == digest


@pytest.mark.parametrize("over,key,words", [
    ({"ca_file": None}, "ca_file", "nothing to verify the printer's certificate with"),
    ({"insecure_skip_verify": True}, "insecure_skip_verify", "is true while ca_file or fingerprint is set"),
    ({"ca_file": "/no/such/ca.crt"}, "ca_file", "not found"),
    ({"fingerprint": "AB:CD"}, "fingerprint", "not a SHA-256 fingerprint"),
    ({"serial": "00M/09A"}, "serial", "not a printer serial number"),
    ({"host": "mqtts://192.168.1.50"}, "host", "not a host name or IP address"),
    ({"access_code_file": None}, "access_code_file", "no secret given"),
    ({"port": 0}, "port", "out of range"),
    ({"silent_after": 0.1}, "silent_after", "out of range"),
    ({"model": "X2D"}, "model", "not a known Bambu Lab model"),
    ({"url": "http://x"}, "url", "not a known key"),
])
def test_mistakes_name_the_key_and_the_fix(files, capsys, over, key, words):
    path = files / "agent.toml"
    lines = [f"{k} = {v!r}".replace("'", '"') if not isinstance(v, bool) else f"{k} = {str(v).lower()}"
             for k, v in table(files, **over).items()]
    path.write_text(f'[agent]\nid = "pi-1"\nsite = "lab"\nstate_dir = "{files}"\n\n[[printers]]\n' + "\n".join(lines))
    assert agent_main(["check-config", "-c", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"printers[0].{key}: " in err and words in err and "fix: " in err


def test_turning_verification_off_must_be_said_and_is_logged_loudly(files, caplog):
    cfg = load(files, ca_file=None, insecure_skip_verify=True).printers[0]
    with caplog.at_level(logging.WARNING):
        Bambu(cfg)
    assert any("NOT checked" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


def test_models_decide_whether_a_chamber_temperature_is_real(files):
    assert load(files, model="a1 mini").printers[0].has_chamber_sensor is False
    assert load(files, model="X1C").printers[0].has_chamber_sensor is True
    assert load(files).printers[0].has_chamber_sensor is None  # unknown model: the report decides
    assert [load(files, model=m).printers[0].model for m in ("H2D", "h2s", "P2S")] == ["H2D", "H2S", "P2S"]


def test_pushall_is_asked_at_once_then_not_again_for_five_minutes():
    now = [1000.0]
    gate = PushallGate(300.0, lambda: now[0])
    assert not gate.due()  # nobody asked
    gate.request()
    assert gate.due()
    gate.sent()
    gate.request()  # a reconnect a minute later
    now[0] += 60
    assert not gate.due()
    now[0] += 239.9
    assert not gate.due()
    now[0] += 0.1
    assert gate.due()  # the deferred request goes out as soon as five minutes have passed
    gate.sent()
    now[0] += 3600
    assert not gate.due()  # and nothing more unless asked


def test_the_commented_example_in_examples_agent_toml_is_a_valid_table(tmp_path):
    import tomllib
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "examples" / "agent.toml").read_text()
    block = text.split("# A Bambu Lab printer")[1].splitlines()[1:]
    body = "\n".join(line[2:] for line in block if line.startswith("# "))
    (tmp_path / "code").write_text("12345678")
    body = body.replace("/etc/printfarm/keys/oru-x1c-01", str(tmp_path / "code")).replace("3F:9A:…:C2", "AB" * 32)
    printer = agent_config.from_dict(tomllib.loads(f'[agent]\nid = "pi"\nsite = "umu"\n{body}')).printers[0]
    assert (printer.type, printer.serial, printer.model, printer.pin) == ("bambu", "00M09A350100123", "X1C",
                                                                          bytes.fromhex("AB" * 32))
