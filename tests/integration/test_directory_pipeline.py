"""The regional directory through the real pipeline (docs/directory.md): scripted agents publish
Info, status and telemetry to a real Mosquitto, a real collector stores into a real InfluxDB and
answers; the directory answers a scripted set of questions as printers start and finish jobs,
change material and go offline, each answer following its change within two intervals. Nothing
in any answer (API, CLI, the "find a printer" page, the Grafana table's query) holds a file name
or user name.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import requests
from paho.mqtt.enums import CallbackAPIVersion

from common import protocol
from dashboards import macros
from devkit.pipeline import DB, RunningCollector, collector_config, wait_for
from devkit.servers import InfluxDB, Mosquitto
from server import tokens

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
INTERVAL = 1.0  # the scripted agents' poll interval: an answer must follow a change within two
FILES = ("volvo_bracket_rev_C.gcode", "thesis/anna_prototype.3mf")
USERS = ("anna.karlsson", "erik_svensson")
SECRETS = ("volvo", "bracket", "anna", "prototype", "karlsson", "erik", "svensson")
ISSUE_QUESTION = {"material": "PETG", "min_volume": "250x250x250", "free_within": "2h", "county": "Uppsala,Örebro"}


def inventory_text(bookings: Path) -> str:
    return f"""
[sites.uni]
organisation = "Uppsala universitet"
county = "Uppsala"
name = "Uppsala universitet, Makerspace"
access = ["members", "students"]
contact = "makerspace@uu.example"
hours = "Mon-Fri 08-16"

[sites.oru]
organisation = "Örebro universitet"
county = "Örebro"
access = ["members", "companies"]

[sites.works]
organisation = "Gävle Verkstad AB"
county = "Gävleborg"
directory = "capabilities"

[sites.secret]
organisation = "Hemliga Labbet AB"
county = "Örebro"
directory = "hidden"

[models."Prusa MK4"]
volume = [250, 210, 220]
nozzle_mm = 0.4

[printers.mk4]
site = "uni"
model = "Prusa MK4"
materials = ["PLA", "PETG"]

[printers.voron]
site = "uni"
model = "Voron 2.4"

[printers.core]
site = "oru"
model = "Prusa CORE One"

[printers.x1]
site = "works"
model = "Bambu X1C"

[printers.hid]
site = "secret"
model = "Voron 2.4"

[customers.acme]
name = "Acme AB"
kind = "company"
size = "small"
county = "Uppsala"

[attribution]
bookings = "{bookings.name}"
tz = "UTC"
"""


class Publisher:
    """One MQTT session for the scripted agents, so a change's clock starts at its publish."""

    def __init__(self, broker):
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="directory-script")
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()

    def __call__(self, items: list[tuple[str, bytes]]) -> float:
        """Publish at QoS 1, retained (as agents send status and Info); returns when it began."""
        sent = time.monotonic()
        for info in [self.client.publish(topic, payload, qos=1, retain=not topic.endswith("/telemetry"))
                     for topic, payload in items]:
            info.wait_for_publish(30)
        return sent

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class ScriptedAgent:
    """Publishes what an agent would for its printers: retained status and Info, telemetry."""

    def __init__(self, publish: Publisher, agent: str, site: str):
        self.publish, self.agent, self.site, self.seq = publish, agent, site, 0

    def _head(self, printer: str) -> dict:
        self.seq += 1
        return dict(v=1, ts=int(time.time() * 1000), printer=printer, site=self.site, seq=self.seq)

    def state(self, printer: str, state: str, time_left: float | None = None, file: str | None = None,
              user: str | None = None) -> float:
        """A state change (status and telemetry); returns when it was sent."""
        text = f"Printing {file}" if file else ""
        status = protocol.Status(**self._head(printer), state=state, state_text=text, file=file, agent=self.agent)
        telemetry = protocol.Telemetry(**self._head(printer), state=state, state_text=text, file=file, user=user,
                                       time_left=time_left, progress=10.0 if file else None)
        return self.publish([(protocol.printer_topic(self.site, printer, "status"), protocol.encode(status)),
                             (protocol.printer_topic(self.site, printer, "telemetry"), protocol.encode(telemetry))])

    def info(self, printer: str, **fields) -> float:
        msg = protocol.Info(**self._head(printer), **fields)
        return self.publish([(protocol.printer_topic(self.site, printer, "info"), protocol.encode(msg))])

    def online(self, up: bool = True) -> float:
        msg = protocol.AgentStatus(v=1, ts=int(time.time() * 1000), agent=self.agent,
                                   state="online" if up else "offline", will=not up)
        return self.publish([(protocol.agent_topic(self.agent), protocol.encode(msg))])


def tool(material: str, nozzle: float = 0.4) -> protocol.Tool:
    return protocol.Tool(nozzle_mm=nozzle, nozzle_type="hardened_steel", material=material, colour="#202020")


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("directory")
    now = time.time()
    bookings = tmp / "bookings.csv"
    start, end = (datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M") for t in (now - 600, now + 4 * 3600))
    bookings.write_text(f"site,printer,from,to,customer\nuni,mk4,{start},{end},acme\n")
    inventory = tmp / "fleet.toml"
    inventory.write_text(inventory_text(bookings))
    with Mosquitto(tmp / "mosquitto") as broker, InfluxDB(tmp / "influx") as influx:
        cfg = collector_config(tmp, broker, influx, inventory)
        cfg.http.public = "off"
        running, publisher = RunningCollector(cfg), Publisher(broker)
        try:
            running.wait_connected()
            agents = {site: ScriptedAgent(publisher, f"pi-{site}", site) for site in ("uni", "oru", "works", "secret")}
            for agent in agents.values():
                agent.online()
            uni, oru, works, secret = agents.values()
            uni.info("voron", model="Voron 2.4", volume=[350, 350, 340], tools=[tool("PETG", 0.6)], enclosed=True,
                     queued_jobs=0)
            oru.info("core", model="Prusa CORE One", volume=[250, 220, 270], tools=[tool("PETG")], enclosed=True)
            works.info("x1", model="Bambu X1C", volume=[256, 256, 256], tools=[tool("PLA")],
                       slots=[protocol.Tool(material="PLA"), protocol.Tool(material="PETG-CF")], enclosed=True)
            secret.info("hid", volume=[350, 350, 340], tools=[tool("PETG")])
            for agent, printer in ((uni, "mk4"), (uni, "voron"), (oru, "core"), (works, "x1"), (secret, "hid")):
                agent.state(printer, "idle")
            network, _ = tokens.issue(tokens.path_for(cfg), tokens.NETWORK)
            own, _ = tokens.issue(tokens.path_for(cfg), "uppsala-universitet")
            server_toml = tmp / "server.toml"
            server_toml.write_text(f'inventory = "{inventory}"\nstate_dir = "{tmp / "cli-state"}"\n')
            farm = Farm(running, influx, agents, network, own, server_toml, tmp)
            wait_for(lambda: len(farm.ask()) == 4 and all(p["state"] for p in farm.ask() if p["publish"] == "live"),
                     20, "every published printer in the directory")
            yield farm
        finally:
            publisher.close()
            running.stop()


class Farm:
    def __init__(self, running, influx, agents, network, own, server_toml, tmp):
        self.running, self.influx, self.agents = running, influx, agents
        self.network, self.own, self.server_toml, self.tmp = network, own, server_toml, tmp
        self.url = f"http://127.0.0.1:{running.collector.api.port}"
        self.answers: list[str] = []  # every answer's text, for the grep at the end

    def ask(self, token: str | None = None, **filters) -> list[dict]:
        reply = requests.get(self.url + "/api/directory", params=filters, timeout=10,
                             headers={"Authorization": f"Bearer {token or self.network}"})
        assert reply.status_code == 200, reply.text
        self.answers.append(reply.text)
        return reply.json()["printers"]

    def names(self, **filters) -> set[str]:
        return {p["printer"] for p in self.ask(**filters)}

    def follows(self, sent: float, expected: set[str], **filters) -> float:
        """Seconds from ``sent`` until the answer to ``filters`` is ``expected``: at most two intervals."""
        wait_for(lambda: self.names(**filters) == expected, 10 * INTERVAL, f"{filters} to be {expected}", interval=0.05)
        took = time.monotonic() - sent
        assert took <= 2 * INTERVAL, f"{filters}: the answer followed after {took:.2f} s > {2 * INTERVAL} s"
        return took

    def cli(self, *args: str) -> str:
        token_file = self.tmp / "network-token"
        token_file.write_text(self.network + "\n")
        done = subprocess.run([sys.executable, "-m", "server", "directory", "-c", str(self.server_toml), "--url",
                               self.url, "--token-file", str(token_file), *args],
                              capture_output=True, text=True, timeout=60, cwd=REPO)
        assert done.returncode == 0, done.stderr
        self.answers.append(done.stdout + done.stderr)
        return done.stdout


def test_the_directory_answers_scripted_questions_as_printers_change(farm):
    uni, oru, works = farm.agents["uni"], farm.agents["oru"], farm.agents["works"]
    # At rest: PETG, 250 mm cubed, in Uppsala or Örebro, free within 2 h: only the Voron (the
    # MK4 and the CORE One are too small; the X1C's site publishes no live state; one site is hidden).
    assert farm.names(**ISSUE_QUESTION) == {"voron"}
    assert farm.names() == {"mk4", "voron", "core", "x1"}
    assert farm.names(material="PETG-CF") == {"x1"} and farm.names(material="PETG-CF", free_within="2h") == set()
    assert farm.names(nozzle="0.6") == {"voron"}
    mk4 = next(p for p in farm.ask() if p["printer"] == "mk4")
    assert mk4["state"] == "idle" and mk4["booked_now"] and not mk4["available"]  # booked: not free
    assert 4 * 3600 - 700 < mk4["free_in_s"] <= 4 * 3600 and mk4["volume"] == [250, 210, 220]
    assert farm.names(free_within="1h") == {"voron", "core"}

    took = {}
    # The Voron starts a 3 h job: no longer free within 2 h.
    took["starts a job"] = farm.follows(uni.state("voron", "printing", 3 * 3600, FILES[0], USERS[0]), set(),
                                        **ISSUE_QUESTION)
    # Its estimate falls to 1 h, with a queued job of 30 min (Moonraker's queue): free in 1.5 h.
    uni.info("voron", model="Voron 2.4", volume=[350, 350, 340], tools=[tool("PETG", 0.6)], enclosed=True,
             queued_jobs=1, queued_s=1800.0)
    took["time left and queue"] = farm.follows(uni.state("voron", "printing", 3600, FILES[0], USERS[0]), {"voron"},
                                               **ISSUE_QUESTION)
    voron = next(p for p in farm.ask() if p["printer"] == "voron")
    assert 5400 - 10 <= voron["free_in_s"] <= 5400 and voron["queued_jobs"] == 1
    # It goes offline: not available.
    took["goes offline"] = farm.follows(uni.state("voron", "offline"), set(), **ISSUE_QUESTION)
    # Back, idle, with PLA loaded: free, but not for PETG.
    uni.state("voron", "idle")
    took["changes material"] = farm.follows(uni.info("voron", model="Voron 2.4", volume=[350, 350, 340],
                                                     tools=[tool("PLA", 0.6)]), set(), **ISSUE_QUESTION)
    assert farm.names(material="PLA", free_within="2h", county="Uppsala") == {"voron"}
    # The X1C's AMS swaps PETG-CF for PETG: it is found for PETG, not for PETG-CF.
    took["AMS change"] = farm.follows(works.info("x1", model="Bambu X1C", volume=[256, 256, 256], tools=[tool("PLA")],
                                                 slots=[protocol.Tool(material="PLA"), protocol.Tool(material="PETG")]),
                                      set(), material="PETG-CF")
    # The CORE One finishes nothing but its agent vanishes (last will): no longer free.
    assert "core" in farm.names(free_within="1h")
    took["agent vanishes"] = farm.follows(oru.online(False), {"voron"}, free_within="1h")
    took["agent returns"] = farm.follows(oru.online(True), {"voron", "core"}, free_within="1h")
    print("answers followed their changes after (s):", {k: round(v, 2) for k, v in took.items()})


def test_a_sites_policy_is_kept_and_its_own_organisation_sees_more(farm):
    everyone = {p["printer"]: p for p in farm.ask()}
    assert "hid" not in everyone and everyone["x1"]["publish"] == "capabilities"
    assert everyone["x1"]["state"] is None and everyone["x1"]["loaded"]  # capabilities, not live state
    assert everyone["mk4"]["access"] == ["members", "students"] and everyone["mk4"]["hours"] == "Mon-Fri 08-16"
    assert requests.get(farm.url + "/api/directory", timeout=10).status_code == 401  # tokens as the rest of the API
    bad = requests.get(farm.url + "/api/directory", params={"min_volume": "big"}, timeout=10,
                       headers={"Authorization": f"Bearer {farm.network}"})
    assert bad.status_code == 400 and "min_volume" in bad.json()["error"] and "fix:" in bad.json()["error"]


def test_the_cli_prints_the_same_answer_as_a_table_of_at_most_100_columns(farm):
    out = farm.cli("--material", "PLA", "--county", "Uppsala,Örebro,Gävleborg")
    lines = out.splitlines()
    assert max(map(len, lines)) <= 100 and lines[0].split()[:3] == ["PRINTER", "SITE", "COUNTY"]
    shown = {line.split()[0] for line in lines[1:-1]}
    assert shown == farm.names(material="PLA", county="Uppsala,Örebro,Gävleborg") and lines[-1].endswith("printer(s)")
    assert any("not shared" in line for line in lines if line.startswith("x1"))
    assert json.loads(farm.cli("--json", "--free-within", "1h"))["printers"]
    refused = subprocess.run([sys.executable, "-m", "server", "directory", "-c", str(farm.server_toml), "--url", farm.url],
                             capture_output=True, text=True, timeout=60, cwd=REPO,
                             env={k: v for k, v in os.environ.items() if k != "PRINTFARM_TOKEN"})
    assert refused.returncode == 2 and "wants a token — fix: pass --token-file" in refused.stderr


def test_the_grafana_directory_table_shows_published_printers_from_influxdb(farm):
    board = json.loads((REPO / "dashboards/json/network/directory.json").read_text())
    now = int(time.time() * 1000)
    run = lambda q: farm.influx.query(q, db=DB)  # noqa: E731
    variables = macros.variable_values(board, run, now - 86400_000, now)
    query = macros.substitute(board["panels"][0]["targets"][0]["query"], now - 86400_000, now, variables)
    rows = wait_for(lambda: (lambda r: r if {x["printer"] for x in r} == {"voron", "core", "x1"} else None)(run(query)),
                    20, "the table's rows")
    voron = next(r for r in rows if r["printer"] == "voron")
    assert voron["volume_x"] == 350 and voron["loaded"] == "PLA" and voron["county"] == "Uppsala"
    farm.answers.append(json.dumps(rows))


def test_the_find_a_printer_page_in_chromium(farm, page):
    page.context.set_extra_http_headers({"Authorization": f"Bearer {farm.network}"})
    reply = page.goto(farm.url + "/directory")
    assert reply.status == 200 and "script-src 'sha256-" in reply.headers["content-security-policy"]
    page.wait_for_selector("body[data-loaded='1']", timeout=15_000)
    assert {r.get_attribute("data-printer") for r in page.locator("tr.found").all()} == farm.names()
    page.fill("input[name='material']", "PLA")
    page.fill("input[name='county']", "Uppsala")
    page.click("button[type='submit']")
    page.wait_for_selector("body[data-loaded='1']", timeout=15_000)
    rows = page.locator("tr.found")
    assert {r.get_attribute("data-printer") for r in rows.all()} == farm.names(material="PLA", county="Uppsala")
    assert "Uppsala universitet, Makerspace" in page.content()
    assert not [line for line in page.console_lines if "Content Security Policy" in line], page.console_lines
    farm.answers.append(page.content())
    shot = farm.tmp / "directory-page.png"
    page.screenshot(path=str(shot), full_page=True)


def test_no_answer_holds_a_file_name_or_a_user(farm):
    """Run last: every answer the tests above collected, and the own organisation's view."""
    farm.answers.append(json.dumps(farm.ask(farm.own)))
    farm.agents["uni"].state("mk4", "printing", 600, FILES[1], USERS[1])
    wait_for(lambda: any(p["printer"] == "mk4" and p["state"] == "printing" for p in farm.ask(farm.own)), 10,
             "mk4 printing")
    farm.answers.append(farm.cli())
    # The positive control: the names did reach the collector (its own organisation's fleet view
    # shows the file; InfluxDB holds the user's pseudonym, and the raw name of the Voron's job).
    fleet = requests.get(farm.url + "/api/fleet", headers={"Authorization": f"Bearer {farm.own}"}, timeout=10).text
    assert FILES[1] in fleet
    stored = json.dumps(wait_for(lambda: farm.influx.query(f"SELECT * FROM telemetry WHERE file = '{FILES[1]}'", db=DB),
                                 10, "the job's telemetry in InfluxDB"))
    assert FILES[1] in stored
    assert len(farm.answers) >= 10
    for text in farm.answers:
        lowered = text.casefold()
        assert not [s for s in SECRETS if s in lowered], [s for s in SECRETS if s in lowered]


@pytest.fixture
def page(tmp_path):
    from playwright.sync_api import sync_playwright

    from tests.integration.test_status_page import CHROMIUM, FLAGS

    if not os.access(CHROMIUM, os.X_OK):
        raise RuntimeError("chromium not found: apt-get install -y chromium")
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=FLAGS,
            viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.console_lines = []
        page.on("console", lambda msg: page.console_lines.append(msg.text))
        yield page
        context.close()
