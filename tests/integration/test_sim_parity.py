"""The simulator and the real OctoPrint virtual printer look the same to the agent.

Every test runs twice: against OctoPrint 1.11 with its virtual printer, and against one printer
of ``devkit.sim``. Both are driven through the same REST calls (the helpers of
tests/servers.OctoPrint) and read through the agent's own client and job tracker.
"""

from __future__ import annotations

import pytest
import requests

from common.configkit import Secret
from agent.jobs import JobTracker
from agent.printers.octoprint import OctoPrint as AgentOctoPrint
from devkit.sim import SimClock, Simulator
from devkit.sim.server import PrinterSpec
from devkit.pipeline import wait_for
from devkit.servers import OctoPrint, make_gcode

pytestmark = pytest.mark.integration


class SimulatedOctoPrint:
    """One manual simulator printer, with the very REST helpers the OctoPrint fixture has."""

    request_timeout = 5.0
    api = OctoPrint.api
    _expect = OctoPrint._expect
    job = OctoPrint.job
    wait_for_job = OctoPrint.wait_for_job
    wait_for_state = OctoPrint.wait_for_state
    upload_and_print = OctoPrint.upload_and_print
    command = OctoPrint.command
    cancel = OctoPrint.cancel
    connect = OctoPrint.connect
    disconnect = OctoPrint.disconnect

    def __init__(self):
        self.api_key = "SIMKEY0123456789ABCDEF"
        self.sim = Simulator([PrinterSpec("parity")], self.api_key, SimClock(speed=1.0), auto=False).start()
        self.url = self.sim.url("parity")

    def stop(self):
        self.sim.stop()


@pytest.fixture(params=["octoprint", "simulator"])
def printer(request):
    if request.param == "octoprint":
        yield request.getfixturevalue("octoprint")
        return
    sim = SimulatedOctoPrint()
    yield sim
    sim.stop()


class Watcher:
    """Polls like the agent does and feeds every snapshot to a JobTracker."""

    def __init__(self, printer):
        self.client = AgentOctoPrint(printer.url, Secret(printer.api_key), timeout=3.0)
        self.tracker = JobTracker()
        self.events: list = []

    def poll(self):
        snap = self.client.poll()
        self.events += self.tracker.update(snap)
        return snap

    def until(self, predicate, what: str, timeout: float = 30.0):
        return wait_for(lambda: (lambda s: s if predicate(s) else None)(self.poll()), timeout, what, interval=0.05)

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]


def test_version_and_idle_printer_read_the_same(printer):
    version = printer.api("GET", "/api/version").json()
    assert version["api"] == "0.1" and version["server"].startswith("1.11")
    snap = Watcher(printer).poll()
    assert (snap.state, snap.state_text, snap.error) == ("idle", "Operational", None)
    assert snap.file is None and snap.progress is None and snap.filament_mm is None
    assert set(snap.temps) <= {"tool0", "bed"}  # OctoPrint reports {} for ~2 s after connecting


def test_wrong_api_key_is_rejected_with_403(printer):
    reply = requests.get(printer.url + "/api/job", headers={"X-Api-Key": "WRONG"}, timeout=5)
    assert reply.status_code == 403
    snap = AgentOctoPrint(printer.url, Secret("WRONG")).poll()
    assert snap.state == "unreachable" and snap.error.startswith("API key rejected (403)")


def test_print_shows_progress_and_temperatures_then_done(printer):
    watcher = Watcher(printer)
    watcher.poll()
    printer.upload_and_print("parity.gcode", make_gcode(300))
    # OctoPrint's time-left estimate comes a moment after the progress, later on a busy machine.
    snap = watcher.until(lambda s: s.state == "printing" and (s.progress or 0) > 5 and s.time_left is not None
                         and s.temps.get("tool0", (0, 0))[0] > 30, "printing with progress, estimate and heat")
    assert snap.state_text == "Printing" and snap.file == "parity.gcode" and snap.user == "operator"
    assert 0 < snap.progress < 100 and snap.print_time is not None and snap.time_left is not None
    assert snap.temps["tool0"][1] == 200.0 and snap.temps["bed"][1] == 60.0
    done = watcher.until(lambda s: s.state == "idle", "the print to finish")
    assert done.progress == 100.0 and done.file == "parity.gcode"
    # OctoPrint fills the slicer's estimate once its background analysis of the file is done.
    assert done.filament_mm is None or done.filament_mm > 0
    assert watcher.kinds() == ["started", "done"]


def test_cancel_ends_the_job_as_cancelled(printer):
    watcher = Watcher(printer)
    watcher.poll()
    printer.upload_and_print("cancel-me.gcode", make_gcode(600))
    watcher.until(lambda s: s.state == "printing" and (s.progress or 0) > 1, "printing")
    printer.cancel()
    snap = watcher.until(lambda s: s.state == "idle", "idle after cancel")
    assert snap.file == "cancel-me.gcode" and snap.progress is None  # OctoPrint forgets the progress
    assert watcher.kinds() == ["started", "cancelled"]


def test_error_text_reaches_the_agent_and_printer_endpoint_answers_409(printer):
    watcher = Watcher(printer)
    watcher.poll()
    printer.command("!!DEBUG:send Error:Heater decoupled")
    # OctoPrint says "Error" for a moment before it settles on "Offline after error".
    snap = watcher.until(lambda s: s.state_text == "Offline after error", "the error state")
    assert snap.state == "error" and snap.error == "Heater decoupled"
    assert snap.temps == {}
    assert printer.api("GET", "/api/printer").status_code == 409
    assert printer.api("GET", "/api/connection").json()["current"]["state"] == "Closed"
    assert watcher.kinds() == ["disconnected"]


def test_disconnected_printer_is_offline_and_printer_endpoint_answers_409(printer):
    watcher = Watcher(printer)
    watcher.poll()
    printer.disconnect()
    snap = watcher.until(lambda s: s.state == "offline", "offline")
    assert snap.state_text == "Offline" and snap.error is None and snap.temps == {}
    reply = printer.api("GET", "/api/printer")
    assert reply.status_code == 409 and reply.json() == {"error": "Printer is not operational"}
    printer.connect()
    assert watcher.until(lambda s: s.state == "idle", "idle after reconnect").state_text == "Operational"
    assert watcher.kinds() == ["disconnected", "connected"]


def test_pause_and_resume_keep_the_job_open(printer):
    watcher = Watcher(printer)
    watcher.poll()
    printer.upload_and_print("pause-me.gcode", make_gcode(400))
    watcher.until(lambda s: s.state == "printing" and (s.progress or 0) > 1, "printing")
    printer.api("POST", "/api/job", json={"command": "pause", "action": "pause"})
    # Right after pausing, OctoPrint reports the temperatures only partly for a moment.
    paused = watcher.until(lambda s: s.state_text == "Paused" and "tool0" in s.temps, "paused")
    assert paused.state == "paused" and paused.file == "pause-me.gcode" and 0 < paused.progress < 100
    assert paused.temps["tool0"][1] == 200.0
    printer.api("POST", "/api/job", json={"command": "pause", "action": "resume"})
    watcher.until(lambda s: s.state == "idle", "the print to finish after resuming")
    assert watcher.kinds() == ["started", "paused", "resumed", "done"]
