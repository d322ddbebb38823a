"""The simulator's OctoPrint and Moonraker faces show material and capabilities as the real ones
do, read through the agent's own clients (so the demo's simulated fleet shows them too)."""

from __future__ import annotations

import pytest

from agent.jobs import JobTracker, Ledger
from agent.printers.moonraker import Moonraker as AgentMoonraker
from agent.printers.octoprint import OctoPrint as AgentOctoPrint
from common.configkit import Secret
from common.protocol import MaterialUse, Tool
from devkit.pipeline import wait_for
from devkit.servers import klipper_gcode, make_gcode
from devkit.sim import SimClock, Simulator
from devkit.sim.model import grams_of
from devkit.sim.server import PrinterSpec

pytestmark = pytest.mark.integration
KEY = "SIMKEY0123456789ABCDEF"


@pytest.fixture(scope="module")
def sim():
    specs = [PrinterSpec("mk3", model="Prusa i3 MK3S+"), PrinterSpec("trident", model="Voron Trident", api="moonraker")]
    with Simulator(specs, KEY, SimClock(speed=1.0), auto=False) as running:
        yield running


def follow(client, tracker, events, until, what):
    def poll():
        snap = client.poll()
        events.extend(tracker.update(snap))
        return until(snap)
    return wait_for(poll, 30, what, interval=0.05)


def test_the_octoprint_face_gives_the_profile_and_the_jobs_analysed_length(sim):
    import requests

    client, tracker, events = AgentOctoPrint(sim.url("mk3"), Secret(KEY), timeout=3.0), JobTracker(), []
    snap = client.poll()
    assert snap.info == {"model": "Prusa i3 MK3S+", "volume": [250.0, 210.0, 210.0], "tools": [Tool(nozzle_mm=0.4)],
                         "enclosed": None}
    gcode = "; filament_type = PETG\n" + make_gcode(60)
    reply = requests.post(sim.url("mk3") + "/api/files/local", headers={"X-Api-Key": KEY},
                          files={"file": ("part.gcode", gcode.encode())}, data={"print": "true"}, timeout=5)
    assert reply.status_code == 201
    follow(client, tracker, events, lambda s: any(e.kind == "done" for e in events), "the job's end")
    (job,) = sim.printers["mk3"].history
    assert events[-1].material == (MaterialUse(source="slicer", tool=0, mm=job.filament_mm),)
    assert job.material == "PETG" and job.grams == grams_of("PETG", job.filament_mm)
    client.close()


def test_the_moonraker_face_gives_configuration_and_the_slicers_figures_with_the_measurement(sim):
    import requests

    client = AgentMoonraker(sim.url("trident"), interval=0.5, timeout=0.5)
    client.start(lambda: None)
    tracker, events = JobTracker(ledger=Ledger()), []
    info = follow(client, tracker, events, lambda s: s.info and "queued_jobs" in s.info and s.info, "the configuration")
    assert info == {"volume": [300.0, 300.0, 250.0], "tools": [Tool(nozzle_mm=0.6)], "enclosed": True,
                    "queued_jobs": 0, "queued_s": 0.0}
    url = sim.url("trident")
    requests.post(url + "/server/files/upload", files={"file": ("asa.gcode", ("; filament_type = ASA\n" +
                  klipper_gcode(600)).encode())}, timeout=5)
    requests.post(url + "/printer/print/start", params={"filename": "asa.gcode"}, timeout=5)
    follow(client, tracker, events, lambda s: any(e.kind == "done" for e in events), "the job's end")
    job = sim.printers["trident"].history[-1]
    (use,) = events[-1].material
    assert (use.source, use.type, use.mm) == ("measured", "ASA", job.filament_mm)
    assert use.grams == pytest.approx(job.grams, abs=0.01)
    client.close()
