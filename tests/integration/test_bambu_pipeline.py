"""A Bambu printer's life through the real agent, Mosquitto, collector and InfluxDB.

The parity assertions of test_foundation.py (OctoPrint), run twice: against a fake X1 whose
reports the test scripts, and against the simulator speaking Bambu's LAN MQTT (a manual
simulated printer driven through its control calls). Both publish through the TLS stand-in
for the printer's broker (devkit.servers.bambu.BambuBroker).
"""

from __future__ import annotations

import threading
import time

import pytest

from devkit.pipeline import (
    DB, RunningCollector, agent_config_with, collector_config, start_agent, wait_for, write_inventory,
)
from devkit.servers import make_gcode
from devkit.servers.bambu import BambuBroker
from devkit.sim import SimClock, Simulator
from devkit.sim.faces.bambu import BambuSetup
from devkit.sim.faces.bambu_printer import BambuLink
from devkit.sim.server import PrinterSpec

pytestmark = pytest.mark.integration

INTERVAL = 0.5
SERIAL = "00M09A350100123"
HEATBED_FAULT = (0x03008009, [(0x03000100, 0x00010007)])


class ScriptedX1:
    """A fake X1 whose reports the test writes, as a printer's firmware would send them."""

    def __init__(self, broker: BambuBroker):
        self.link = BambuLink(broker.host, broker.port)
        self.x1 = self.link.add(SERIAL, "X1")
        self.link.heartbeats(0.25)
        self._stop = threading.Event()

    def print_to_end(self, name: str) -> None:
        def run():
            self.x1.start(name, layers=40, minutes=3)
            for step in range(1, 21):
                if self._stop.wait(0.15):
                    return
                self.x1.progress(step * 5, step * 2, 3 - step * 3 // 20, nozzle=30.0 + step * 9, bed=25.0 + step * 2)
            self.x1.finish()
        threading.Thread(target=run, daemon=True).start()

    def start_long(self, name: str) -> None:
        self.x1.start(name, layers=400, minutes=300)
        self.x1.progress(1, 2, 299, nozzle=215.0, bed=60.0)

    def cancel(self) -> None:
        self.x1.cancel()

    def fail(self) -> None:
        self.x1.fail(*HEATBED_FAULT)

    def close(self) -> None:
        self._stop.set()
        self.link.close()


class SimulatedX1:
    """One manual printer of the simulator, speaking Bambu, driven through its control calls."""

    def __init__(self, broker: BambuBroker):
        setup = BambuSetup(broker.host, broker.port, {"bbl-1": SERIAL}, period=0.25)
        self.sim = Simulator([PrinterSpec("bbl-1", "lab", "Bambu Lab X1C", api="bambu")], "unused",
                             SimClock(speed=1.0), auto=False, bambu=setup).start()

    def act(self, call) -> None:
        self.sim.bambu.act("bbl-1", call)

    def print_to_end(self, name: str) -> None:
        self.act(lambda p, now: p.print_file(now, f"{name}.gcode", make_gcode(200).encode(), user=None))

    def start_long(self, name: str) -> None:
        self.act(lambda p, now: p.print_file(now, f"{name}.gcode", make_gcode(5000).encode(), user=None))

    def cancel(self) -> None:
        self.act(lambda p, now: p.cancel(now))

    def fail(self) -> None:
        self.act(lambda p, now: p.fail(now, "MINTEMP triggered, system stopped! Heater_ID: bed"))

    def close(self) -> None:
        self.sim.stop()


@pytest.fixture(params=["scripted", "simulator"])
def pipeline(request, tmp_path, mosquitto, influxdb):
    bambu = BambuBroker(tmp_path / "bambu", [SERIAL]).start()
    printer = (ScriptedX1 if request.param == "scripted" else SimulatedX1)(bambu)
    collector = RunningCollector(collector_config(tmp_path, mosquitto, influxdb,
                                                  write_inventory(tmp_path / "fleet.toml", {"bbl-1": "lab"})))
    collector.wait_connected()
    table = {"id": "bbl-1", "type": "bambu", "host": bambu.host, "port": bambu.endpoints[SERIAL].port,
             "serial": SERIAL, "access_code_file": str(bambu.access_code_file(SERIAL)), "ca_file": str(bambu.ca_path),
             "model": "X1C", "interval": INTERVAL, "timeout": INTERVAL, "silent_after": 2.0}
    agents = [start_agent(agent_config_with(tmp_path, mosquitto, [table]))]

    class Pipeline:
        broker = bambu

        def restart_agent(self):
            """Stop the agent and start another on the same state directory, as systemd would."""
            agents[-1].stop()
            agents.append(start_agent(agent_config_with(tmp_path, mosquitto, [table])))

        def rows(self, q):
            return influxdb.query(q, db=DB)

        def wait_rows(self, q, what, timeout=30, predicate=bool):
            return wait_for(lambda: (lambda r: r if predicate(r) else None)(self.rows(q)), timeout, what)

        def flowing_after(self, ts_ms: int, polls: int = 3) -> None:
            """The positive control of 'nothing more came': telemetry kept arriving after ts_ms."""
            self.wait_rows(f"SELECT seq FROM telemetry WHERE time > {ts_ms}ms", f"{polls} polls after the event",
                           predicate=lambda r: len(r) >= polls)

    p = Pipeline()
    p.printer = printer
    yield p
    agents[-1].stop()
    collector.stop()
    printer.close()
    bambu.stop()


def _events(p, kind):
    return p.rows(f"SELECT * FROM job WHERE kind = '{kind}'")


def _states(p):
    states = [r["state"] for r in p.rows("SELECT state FROM state WHERE printer = 'bbl-1'")]
    first = states.index("idle")
    assert set(states[:first]) <= {"unreachable"}  # before the first report the agent sees nothing
    return states[first:]


def test_a_bambu_print_becomes_telemetry_states_and_one_done_event(pipeline):
    pipeline.wait_rows("SELECT * FROM state WHERE state = 'idle'", "idle")
    pipeline.printer.print_to_end("cube")
    done = pipeline.wait_rows("SELECT * FROM job WHERE kind = 'done'", "a done event", timeout=30)
    pipeline.flowing_after(done[0]["time"])
    assert len(_events(pipeline, "done")) == 1 and len(_events(pipeline, "started")) == 1
    event = done[0]
    assert event["file"] == "cube" and event.get("user") is None and event["duration"] > 1.5
    assert event["organisation"] == "Org of lab" and event["listed"] == "true"
    assert _states(pipeline) == ["idle", "printing", "idle"]
    api = pipeline.rows("SELECT api FROM state WHERE printer = 'bbl-1'")
    assert {r["api"] for r in api} == {"bambu"}
    printing = pipeline.rows("SELECT progress, tool0_actual, layer, layers FROM telemetry WHERE state = 'printing'")
    progress = [r["progress"] for r in printing if r["progress"] is not None]
    assert len(progress) >= 4 and progress == sorted(progress) and progress[-1] > progress[0]
    assert len({r["tool0_actual"] for r in printing}) > 2, "the nozzle should heat while printing"
    layers = [r["layer"] for r in printing]
    assert layers == sorted(layers) and layers[-1] > layers[0] and printing[0]["layers"] > 0


def _end_a_long_job(pipeline, end, kind: str) -> dict:
    """Start a long job, end it with ``end()``, and return the one ``kind`` event it gave."""
    pipeline.wait_rows("SELECT * FROM state WHERE state = 'idle'", "idle")
    pipeline.printer.start_long("long_part")
    pipeline.wait_rows("SELECT * FROM job WHERE kind = 'started'", "the started event")
    end()
    rows = pipeline.wait_rows(f"SELECT * FROM job WHERE kind = '{kind}'", f"a {kind} event")
    pipeline.flowing_after(rows[0]["time"])
    assert len(_events(pipeline, kind)) == 1
    return rows[0]


def test_a_bambu_cancel_gives_one_cancelled_event_and_no_error_after_its_code_clears(pipeline):
    cancelled = _end_a_long_job(pipeline, pipeline.printer.cancel, "cancelled")
    assert cancelled["file"] == "long_part"
    # The cancel code lasts ~2 s, then print_error is 0 and gcode_state stays FAILED: the agent's
    # telemetry from well after that is stored before we look.
    pipeline.wait_rows(f"SELECT seq FROM telemetry WHERE time > {cancelled['time'] + 3000}ms",
                       "telemetry from after the cancel code cleared", timeout=20)
    assert not _events(pipeline, "done") and not _events(pipeline, "failed")
    assert not _events(pipeline, "disconnected")  # a printer_down alert would follow one
    assert _states(pipeline) == ["idle", "printing", "idle"]  # no lasting error


def test_a_bambu_failure_fails_the_job_once_with_its_text(pipeline):
    failed = _end_a_long_job(pipeline, pipeline.printer.fail, "failed")
    text = ("heatbed temperature malfunction [0300_8009]; "
            "HMS_0300_0100_0001_0007: heatbed temperature abnormal: the sensor may be open-circuited")
    assert failed["error"] == text
    errors = pipeline.rows("SELECT * FROM state WHERE state = 'error'")
    assert errors and errors[0]["error"] == text and errors[0]["state_text"] == "FAILED"


def test_an_agent_restart_mid_job_neither_loses_nor_doubles_the_job(pipeline):
    pipeline.wait_rows("SELECT * FROM state WHERE state = 'idle'", "idle")
    pipeline.printer.start_long("long_part")
    pipeline.wait_rows("SELECT * FROM job WHERE kind = 'started'", "the started event")
    pipeline.restart_agent()  # the open job (and the printer's own id for it) waits on disk
    pipeline.printer.cancel()
    cancelled = pipeline.wait_rows("SELECT * FROM job WHERE kind = 'cancelled'", "a cancelled event")
    pipeline.flowing_after(cancelled[0]["time"])
    assert len(_events(pipeline, "started")) == 1 and len(_events(pipeline, "cancelled")) == 1
    started = _events(pipeline, "started")[0]
    assert cancelled[0]["job_started"] == started["time"]  # the same job, from before the restart


def test_a_vanished_bambu_printer_is_unreachable_within_two_intervals_and_recovers(pipeline):
    pipeline.wait_rows("SELECT * FROM state WHERE state = 'idle'", "idle")
    stopped_ms = int(time.time() * 1000)
    pipeline.broker.stop()  # the printer is switched off: its broker goes with it
    rows = pipeline.wait_rows(f"SELECT * FROM state WHERE state = 'unreachable' AND time > {stopped_ms}ms",
                              "unreachable", timeout=10)
    assert rows[0]["time"] - stopped_ms <= 2 * INTERVAL * 1000
    assert rows[0]["error"].startswith(f"connection to 127.0.0.1:{pipeline.broker.endpoints[SERIAL].port} lost")
    pipeline.broker.start()
    pipeline.wait_rows(f"SELECT * FROM state WHERE state = 'idle' AND time > {rows[0]['time']}ms", "idle again")
