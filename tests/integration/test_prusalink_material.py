"""A PrusaLink job's material and the printer's capabilities, read by the agent's own client
from the simulator's PrusaLink face (spec-checked in test_prusalink_spec.py) over HTTP with
digest auth: grams, metres and type per tool from the file's meta, asked once per job."""

from __future__ import annotations

import json
import threading

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from agent import config as agent_config
from agent.printers.digest import DigestAuth
from agent.printers.prusalink import PrusaLink
from agent.printers.prusalink_http import PrusaLinkHTTP
from agent.service import Agent
from common.protocol import MaterialUse, Tool
from devkit.pipeline import wait_for
from devkit.servers import Mosquitto, make_gcode
from devkit.sim import SimClock, Simulator
from devkit.sim.prusalink_remote import PrusaLinkRemote, sliced
from devkit.sim.server import PrinterSpec

pytestmark = pytest.mark.integration

PASSWORD = "material-password"


@pytest.fixture(scope="module")
def sim():
    sim = Simulator([PrinterSpec("mk4", api="prusalink"), PrinterSpec("mk4-mmu", api="prusalink"),
                     PrinterSpec("mk4-e2e", site="lab", api="prusalink"),
                     PrinterSpec("mini", api="prusalink", firmware="legacy")],
                    PASSWORD, SimClock(speed=1.0), auto=False).start()
    sim.seen = []
    sim.observe = lambda printer, request, response: sim.seen.append(
        (printer, request.method, request.path, response.status))
    yield sim
    sim.stop()


def client(sim, printer: str, model: str | None = None) -> PrusaLink:
    http = PrusaLinkHTTP(sim.url(printer), 3.0, digest=DigestAuth("maker", PASSWORD))
    return PrusaLink(http, interval=0.2, model=model)


def printing(agent: PrusaLink):
    return wait_for(lambda: (lambda s: s if s.state == "printing" else None)(agent.poll()), 10, "printing")


def test_a_job_carries_grams_metres_and_type_from_its_files_meta_read_once(sim):
    agent = client(sim, "mk4", model="MK4")
    PrusaLinkRemote(sim.url("mk4"), PASSWORD).print_file(
        "bracket_0.2mm_PETG.gcode", sliced(make_gcode(3000), [12.5], [4190.2], ["PETG"]))
    snap = printing(agent)
    assert snap.material == (MaterialUse(source="slicer", tool=0, type="PETG", grams=12.5, mm=4190.2),)
    assert snap.file == "bracket_0.2mm_PETG.gcode"
    for _ in range(5):
        assert agent.poll().material == snap.material
    files = [path for printer, method, path, status in sim.seen
             if (printer, method, status) == ("mk4", "GET", 200) and path.startswith("/api/v1/files/")]
    assert files == ["/api/v1/files/usb/BRACKE~1.GCO"]  # once per job, not per poll
    assert snap.info == {"model": "MK4", "tools": [Tool(nozzle_mm=0.4, material="PLA")],
                         "volume": [250.0, 210.0, 220.0], "enclosed": False}


def test_an_mmu_job_gives_one_material_per_tool_it_uses(sim):
    agent = client(sim, "mk4-mmu")
    PrusaLinkRemote(sim.url("mk4-mmu"), PASSWORD).print_file(
        "tag_0.2mm_PLA.gcode", sliced(make_gcode(3000), [3.1, 0.0, 7.25, 0.0, 0.0],
                                      [1040.1, 0.0, 2390.5, 0.0, 0.0], ["PLA", "PLA", "PETG", "PLA", "PLA"]))
    assert printing(agent).material == (MaterialUse(source="slicer", tool=0, type="PLA", grams=3.1, mm=1040.1),
                                        MaterialUse(source="slicer", tool=2, type="PETG", grams=7.25, mm=2390.5))


def test_legacy_firmware_gives_the_loaded_material_and_its_nozzle(sim):
    agent = client(sim, "mini")
    PrusaLinkRemote(sim.url("mini"), PASSWORD, legacy=True).print_file("cube.gcode", make_gcode(3000))
    snap = printing(agent)
    assert snap.material == (MaterialUse(source="slicer", tool=0, type="PLA"),)
    assert snap.info["tools"] == [Tool(nozzle_mm=0.4, material="PLA")]


class Heard:
    """Everything the broker delivers under one printer's topics, decoded."""

    def __init__(self, broker, printer: str):
        self.messages, self._lock = [], threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"heard-{printer}")
        self.client.on_message = self._on_message
        self.client.connect(broker.host, broker.port)
        self.client.loop_start()
        self.client.subscribe(f"printfarm/v1/lab/{printer}/#", qos=1)

    def _on_message(self, client, userdata, msg):
        with self._lock:
            self.messages.append((msg.topic.rsplit("/", 1)[-1], json.loads(msg.payload), msg.retain))

    def of(self, channel: str) -> list[dict]:
        with self._lock:
            return [body for kind, body, _ in self.messages if kind == channel]

    def close(self):
        self.client.disconnect()
        self.client.loop_stop()


def test_through_the_agent_the_jobs_events_carry_its_material_and_the_printer_its_info(sim, tmp_path):
    with Mosquitto(tmp_path / "mosquitto") as broker:
        (tmp_path / "password").write_text(PASSWORD + "\n")
        agent = Agent(agent_config.from_dict({
            "agent": {"id": "pi-e2e", "site": "lab", "state_dir": str(tmp_path / "state")},
            "broker": {"host": broker.host, "port": broker.port},
            "printers": [{"id": "mk4-e2e", "type": "prusalink", "url": sim.url("mk4-e2e"), "model": "MK4S",
                          "password_file": str(tmp_path / "password"), "interval": 0.5, "timeout": 0.5}]}))
        heard = Heard(broker, "mk4-e2e")
        agent.start()
        try:
            PrusaLinkRemote(sim.url("mk4-e2e"), PASSWORD).print_file(
                "clip_0.2mm_PETG.gcode", sliced(make_gcode(100), [4.2], [1390.0], ["PETG"]))
            wait_for(lambda: [e for e in heard.of("event") if e["kind"] == "done"], 20, "the done event")
            events = {e["kind"]: e for e in heard.of("event")}
            expected = [{"source": "slicer", "type": "PETG", "grams": 4.2, "mm": 1390.0}]
            assert events["started"]["material"] == expected and events["done"]["material"] == expected
            assert events["done"]["progress"] == 100
            info = heard.of("info")[-1]
            assert (info["model"], info["volume"], info["tools"]) == ("MK4S", [250.0, 210.0, 220.0],
                                                                      [{"nozzle_mm": 0.4, "material": "PLA"}])
            told = json.dumps(heard.of("info"))
            assert "file" not in info and "clip" not in told  # no file name ...
            assert "SIM" not in told and ".local" not in told  # ... nor the printer's serial or host name
        finally:
            agent.stop()
            heard.close()
