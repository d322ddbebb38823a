"""Material per job and capabilities from the real OctoPrint 1.11 (virtual printer): the file's
analysis and the printer profile, through the agent's worker onto the wire."""

from __future__ import annotations

import json
import time

import pytest

from agent.printers.octoprint import OctoPrint as AgentOctoPrint
from agent.service import PrinterWorker
from common import protocol
from common.configkit import Secret
from devkit.gcode import extruded_mm
from devkit.pipeline import wait_for
from devkit.servers import OctoPrint, make_gcode

pytestmark = pytest.mark.integration

PROFILE = {"model": "Voron 2.4 R2", "volume": {"width": 350, "depth": 300, "height": 340, "formFactor": "rectangular"},
           "extruder": {"count": 2, "nozzleDiameter": 0.6}, "heatedChamber": True}


@pytest.fixture(scope="module")
def octoprint(tmp_path_factory):
    server = OctoPrint(tmp_path_factory.mktemp("octoprint-material")).start()
    yield server
    server.stop()


class Cfg:
    id, site, type, interval = "vp-1", "lab", "octoprint", 0.5


class Clock:
    def __init__(self):
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


def set_profile(octoprint, profile: dict) -> None:
    reply = octoprint.api("PATCH", "/api/printerprofiles/_default", json={"profile": profile})
    assert reply.status_code == 200, reply.text


def sent_on(sent, channel):
    return [json.loads(body) for topic, body, _ in sent if topic.endswith("/" + channel)]


def test_the_profile_becomes_info_and_a_changed_profile_is_read_again_when_due(octoprint):
    set_profile(octoprint, PROFILE)
    clock, sent = Clock(), []
    client = AgentOctoPrint(octoprint.url, Secret(octoprint.api_key), timeout=2.0, clock=clock)
    worker = PrinterWorker(Cfg(), client, lambda topic, body, retain: sent.append((topic, body, retain)), "pi-1")
    worker.run_once()
    (info,) = sent_on(sent, "info")
    assert (info["model"], info["volume"], info["enclosed"]) == ("Voron 2.4 R2", [350.0, 300.0, 340.0], True)
    assert info["tools"] == [{"nozzle_mm": 0.6}, {"nozzle_mm": 0.6}]
    assert all(retain for topic, _, retain in sent if topic.endswith("/info"))
    set_profile(octoprint, {"extruder": {"count": 1, "nozzleDiameter": 0.4}, "heatedChamber": False})
    worker.run_once()
    assert len(sent_on(sent, "info")) == 1  # not read again before it is due: one request per 5 minutes
    clock.offset += 301
    worker.run_once()
    changed = sent_on(sent, "info")[-1]
    assert changed["tools"] == [{"nozzle_mm": 0.4}] and "enclosed" not in changed
    client.close()


def test_a_jobs_material_is_the_length_octoprint_analysed_on_its_start_and_end_events(octoprint):
    gcode = make_gcode(150)
    reply = octoprint.api("POST", "/api/files/local", files={"file": ("part.gcode", gcode.encode())})
    assert reply.status_code == 201, reply.text
    # OctoPrint analyses files while idle (gcodeAnalysis.runAt), so before the print starts.
    analysis = wait_for(lambda: octoprint.api("GET", "/api/files/local/part.gcode").json().get("gcodeAnalysis"),
                        60, "OctoPrint's analysis of the file", interval=0.2)
    sent = []
    client = AgentOctoPrint(octoprint.url, Secret(octoprint.api_key), timeout=2.0)
    worker = PrinterWorker(Cfg(), client, lambda topic, body, retain: sent.append((topic, body, retain)), "pi-1")
    worker.run_once()
    reply = octoprint.api("POST", "/api/files/local/part.gcode", json={"command": "select", "print": True})
    assert reply.status_code == 204, reply.text
    wait_for(lambda: worker.run_once() and [e for e in sent_on(sent, "event") if e["kind"] == "done"], 60,
             "the job's done event", interval=0.1)
    client.close()
    started, done = (e for e in sent_on(sent, "event") if e["kind"] in ("started", "done"))
    truth = extruded_mm(gcode)
    assert truth > 0 and analysis["filament"]["tool0"]["length"] == pytest.approx(truth, abs=0.01)
    for event in (started, done):
        (use,) = event["material"]
        assert (use["source"], use.get("tool", 0), use["mm"]) == ("slicer", 0, pytest.approx(truth, abs=0.01))
        assert "grams" not in use and "type" not in use  # OctoPrint knows no material: the collector converts
    assert done["progress"] == 100.0
    for event in (started, done):  # sound on the collector's side
        protocol.decode(protocol.parse_topic("printfarm/v1/lab/vp-1/event"), json.dumps(event).encode(), event["ts"])
