"""The agent's sharing policy: what each message may carry, decided before it leaves the site."""

from __future__ import annotations

import json

import pytest

from agent import config as agent_config
from agent.__main__ import main as agent_main
from agent.printers.base import PastJob, Snapshot
from agent.printers.octoprint import OctoPrintSettings
from agent.service import PrinterWorker
from common.pseudonyms import Pseudonyms, is_file_label, is_pseudonym
from tests.unit.scripted_printer import ScriptedPrinter as Printer

SECRET = "0123456789abcdef0123456789abcdef"
FILE = "bracket_volvo_rev_C [kilsberg-verktyg].gcode"
USER = "annika.svensson"


def agent_cfg(tmp_path, monkeypatch, privacy: dict, site: str = "lab") -> agent_config.AgentConfig:
    monkeypatch.setenv("PF_KEY", "k")
    (tmp_path / "secret").write_text(SECRET + "\n")
    privacy = {k: (str(tmp_path / "secret") if v == "SECRET" else v) for k, v in privacy.items()}
    return agent_config.from_dict({
        "agent": {"id": "pi-1", "site": site, "state_dir": str(tmp_path / "state")},
        "printers": [{"id": "p1", "url": "http://127.0.0.1:1", "api_key_env": "PF_KEY"}],
        "privacy": privacy,
    })


def payloads(cfg) -> list[dict]:
    """Every payload a worker sends for a job: telemetry, status, started and failed events."""
    sent = []
    printer = cfg.printers[0]
    worker = PrinterWorker(printer, Printer([
        Snapshot(ts=1_790_000_000_000, state="idle"),
        Snapshot(ts=1_790_000_001_000, state="printing", state_text=f"Printing {FILE}", file=FILE, user=USER,
                 progress=10.0, job_id="7"),
        Snapshot(ts=1_790_000_002_000, state="error", state_text="Error", error=f"{FILE}: thermal runaway",
                 file=FILE, user=USER, job_id="7"),
    ]), lambda topic, body, retain: sent.append(json.loads(body)), "pi-1", sharing=cfg.privacy.for_site(printer.site))
    for _ in range(3):
        worker.run_once()
    assert {m.get("kind") for m in sent} >= {"started", "failed"}  # the job's events were sent
    return sent


def texts(sent: list[dict]) -> str:
    return json.dumps(sent)


@pytest.mark.parametrize("policy", ["full", "masked", "status"])
def test_no_raw_user_name_leaves_whatever_the_policy(tmp_path, monkeypatch, policy):
    sent = payloads(agent_cfg(tmp_path, monkeypatch, {"sharing": policy, "secret_file": "SECRET"}))
    assert USER not in texts(sent)
    users = {m["user"] for m in sent if m.get("user")}
    assert users == (set() if policy == "status" else {Pseudonyms(SECRET).of("lab", USER)})


def test_status_sends_no_file_name_anywhere_not_even_in_texts(tmp_path, monkeypatch):
    sent = payloads(agent_cfg(tmp_path, monkeypatch, {"sharing": "status", "secret_file": "SECRET"}))
    assert "bracket" not in texts(sent) and "volvo" not in texts(sent)
    assert not [m for m in sent if m.get("file") or m.get("user")]
    assert any(m.get("state") == "error" for m in sent)  # state and outcome still go


def test_masked_sends_a_stable_label_that_keeps_the_customer_tag(tmp_path, monkeypatch):
    sent = payloads(agent_cfg(tmp_path, monkeypatch, {"sharing": "masked", "secret_file": "SECRET"}))
    files = {m["file"] for m in sent if m.get("file")}
    assert files == {Pseudonyms(SECRET).file_label("lab", FILE)}
    (label,) = files
    assert is_file_label(label) and "[kilsberg-verktyg]" in label
    assert "volvo" not in texts(sent)  # also out of the state text and the error


def test_full_sends_the_file_name_and_the_pseudonym(tmp_path, monkeypatch):
    sent = payloads(agent_cfg(tmp_path, monkeypatch, {"secret_file": "SECRET"}))
    assert {m["file"] for m in sent if m.get("file")} == {FILE}
    assert all(is_pseudonym(m["user"]) for m in sent if m.get("user"))


def test_without_a_secret_no_user_is_sent(tmp_path, monkeypatch):
    sent = payloads(agent_cfg(tmp_path, monkeypatch, {}))
    assert not [m for m in sent if m.get("user")] and USER not in texts(sent)


def test_a_site_of_the_agent_can_share_otherwise(tmp_path, monkeypatch):
    cfg = agent_cfg(tmp_path, monkeypatch, {"sharing": "full", "secret_file": "SECRET", "sites": {"lab": "status"}})
    assert cfg.privacy.policy("lab") == "status" and cfg.privacy.policy("other") == "full"
    assert not [m for m in payloads(cfg) if m.get("file")]


def test_an_ended_job_from_the_printers_history_is_masked_too(tmp_path, monkeypatch):
    """Events the tracker makes from a printer's job history take the same way out."""
    cfg = agent_cfg(tmp_path, monkeypatch, {"sharing": "masked", "secret_file": "SECRET"})
    past = PastJob(job_id="9", kind="done", started_ts=1_790_000_000_000, ended_ts=1_790_000_001_000,
                   file=FILE, user=USER)
    sent = []
    worker = PrinterWorker(cfg.printers[0], Printer([
        Snapshot(ts=1_790_000_000_500, state="printing", file=FILE, user=USER, job_id="9"),
        Snapshot(ts=1_790_000_002_000, state="idle", history=[past]),
    ]), lambda topic, body, retain: sent.append(json.loads(body)), "pi-1", sharing=cfg.privacy.for_site("lab"))
    worker.run_once()
    worker.run_once()
    assert "volvo" not in texts(sent) and USER not in texts(sent)


@pytest.mark.parametrize("privacy, key, fix", [
    ({"sharing": "secret"}, "privacy.sharing", "use 'full'"),
    ({"sharing": "masked"}, "privacy.secret_file", "copy of the collector's [privacy] secret"),
    ({"sites": {"lab": "half"}}, "privacy.sites.lab", "use 'full'"),
    ({"sites": {"elsewhere": "status"}}, "privacy.sites.elsewhere", "use the site of [agent]"),
    ({"secret_file": "/nonexistent/secret"}, "privacy.secret_file", "create the file"),
    ({"secret_env": "PF_TEST_UNSET_SECRET"}, "privacy.secret_env", "export PF_TEST_UNSET_SECRET"),
])
def test_sharing_config_errors_name_the_key_and_the_fix(tmp_path, monkeypatch, privacy, key, fix):
    with pytest.raises(agent_config.ConfigError) as err:
        agent_cfg(tmp_path, monkeypatch, privacy)
    assert err.value.key == key and fix in err.value.fix


def test_a_short_secret_is_refused_naming_the_key(tmp_path, monkeypatch):
    monkeypatch.setenv("PF_SHORT_SECRET", "short")
    with pytest.raises(agent_config.ConfigError) as err:
        agent_cfg(tmp_path, monkeypatch, {"secret_env": "PF_SHORT_SECRET"})
    assert err.value.key == "privacy.secret_env" and "16 bytes" in err.value.problem


def test_check_config_shows_each_sites_policy_and_the_secrets_key_id(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PF_KEY", "k")
    (tmp_path / "secret").write_text(SECRET)
    conf = tmp_path / "agent.toml"
    conf.write_text(f'[agent]\nid = "pi-1"\nsite = "lab"\n[[printers]]\nid = "p1"\nurl = "http://127.0.0.1:1"\n'
                    f'api_key_env = "PF_KEY"\n[privacy]\nsharing = "masked"\nsecret_file = "{tmp_path / "secret"}"\n')
    assert agent_main(["check-config", "-c", str(conf)]) == 0
    assert f"sharing: lab=masked; users: pseudonyms (secret {Pseudonyms(SECRET).key_id()})" in capsys.readouterr().out
