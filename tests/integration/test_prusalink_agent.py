"""PrusaLink printers through the whole pipeline: the real agent (its digest client and job
tracker), Mosquitto, the collector and InfluxDB — the same assertions as for OctoPrint in
test_foundation.py, plus what PrusaLink adds: an agent restart mid-print, ATTENTION, and a
printer with legacy firmware.

The printers are the simulator's PrusaLink face: no real PrusaLink can run here (it is printer
firmware), and test_prusalink_spec.py proves the stand-in answers as Prusa's specs say.
One broker, database, collector and simulator serve the whole module; each test has its own
printers (tagged apart in InfluxDB) and its own agent.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agent import config as agent_config
from agent.service import Agent
from devkit.pipeline import DB, RunningCollector, collector_config, wait_for, write_inventory
from devkit.servers import InfluxDB, Mosquitto, make_gcode
from devkit.sim import SimClock, Simulator
from devkit.sim.prusalink_remote import PrusaLinkRemote
from devkit.sim.server import PrinterSpec

pytestmark = pytest.mark.integration

INTERVAL = 0.5
PASSWORD = "pipeline-password"
SPEED = 4.0  # simulated seconds per second: a 600-line print takes ~3.3 s
PRINTERS = {"mk4-print": "", "mk4-cancel": "", "mk4-error": "", "mk4-attention": "", "mk4-gone": "",
            "mk4-restart": "", "mk4-away": "", "mini-legacy": "legacy"}


class Stack:
    def __init__(self, tmp: Path, broker: Mosquitto, influx: InfluxDB, sim: Simulator):
        self.tmp, self.broker, self.influx, self.sim = tmp, broker, influx, sim
        self.password_file = tmp / "prusalink-password"
        self.password_file.write_text(PASSWORD + "\n")
        self.agents: list[Agent] = []

    def remote(self, printer: str) -> PrusaLinkRemote:
        return PrusaLinkRemote(self.sim.url(printer), PASSWORD, legacy=PRINTERS[printer] == "legacy")

    def agent(self, printer: str, agent_id: str | None = None) -> Agent:
        agent_id = agent_id or f"pi-{printer}"
        cfg = agent_config.from_dict({
            "agent": {"id": agent_id, "site": "lab", "state_dir": str(self.tmp / agent_id)},
            "broker": {"host": self.broker.host, "port": self.broker.port, "reconnect_min": 0.2, "reconnect_max": 2},
            "printers": [{"id": printer, "type": "prusalink", "url": self.sim.url(printer),
                          "password_file": str(self.password_file), "interval": INTERVAL, "timeout": INTERVAL}],
        })
        agent = Agent(cfg)
        agent.start()
        self.agents.append(agent)
        return agent

    def rows(self, q: str) -> list[dict]:
        return self.influx.query(q, db=DB)

    def wait_rows(self, q: str, what: str, timeout: float = 30, predicate=bool) -> list[dict]:
        return wait_for(lambda: (lambda r: r if predicate(r) else None)(self.rows(q)), timeout, what)

    def events(self, printer: str, kind: str) -> list[dict]:
        return self.rows(f"SELECT * FROM job WHERE printer = '{printer}' AND kind = '{kind}'")

    def states(self, printer: str) -> list[str]:
        return [r["state"] for r in self.rows(f"SELECT state FROM state WHERE printer = '{printer}'")]

    def settle(self, printer: str, after_ms: int, polls: int = 3) -> None:
        """Positive control for "nothing more arrives": wait until telemetry of ``polls`` later
        polls is stored. Each poll sends its telemetry before its events, in order, so an extra
        event of an earlier poll would be stored by then."""
        self.wait_rows(f"SELECT seq FROM telemetry WHERE printer = '{printer}' AND time > {after_ms}ms",
                       f"{polls} more polls of {printer}", predicate=lambda r: len(r) >= polls)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("prusalink")
    specs = [PrinterSpec(p, site="lab", api="prusalink", firmware=fw) for p, fw in PRINTERS.items()]
    with Mosquitto(tmp / "mosquitto") as broker, InfluxDB(tmp / "influxdb") as influx:
        inventory = write_inventory(tmp / "fleet.toml", {p: "lab" for p in PRINTERS})
        collector = RunningCollector(collector_config(tmp, broker, influx, inventory))
        collector.wait_connected()
        sim = Simulator(specs, PASSWORD, SimClock(speed=SPEED), auto=False).start()
        stack = Stack(tmp, broker, influx, sim)
        try:
            yield stack
        finally:
            for agent in stack.agents:
                agent.stop()
            sim.stop()
            collector.stop()


def _idle_seen(stack: Stack, printer: str) -> None:
    stack.wait_rows(f"SELECT * FROM state WHERE printer = '{printer}' AND state = 'idle'", f"{printer} idle")


def _started(stack: Stack, printer: str) -> dict:
    return stack.wait_rows(f"SELECT * FROM job WHERE printer = '{printer}' AND kind = 'started'",
                           f"{printer} started")[0]


def test_a_print_becomes_telemetry_states_idle_printing_idle_and_one_done(stack):
    stack.agent("mk4-print")
    _idle_seen(stack, "mk4-print")
    stack.remote("mk4-print").print_file("cube_0.2mm_PLA.gcode", make_gcode(600))
    done = stack.wait_rows("SELECT * FROM job WHERE printer = 'mk4-print' AND kind = 'done'", "the done event")[0]
    stack.settle("mk4-print", done["time"])

    assert len(stack.events("mk4-print", "done")) == 1 and len(stack.events("mk4-print", "started")) == 1
    assert done["file"] == "cube_0.2mm_PLA.gcode" and done.get("user") is None  # PrusaLink names no user
    assert done["duration"] > 1 and done["listed"] == "true"
    assert stack.states("mk4-print") == ["idle", "printing", "idle"]
    finished = stack.rows("SELECT state_text FROM state WHERE printer = 'mk4-print'")[-1]
    assert finished["state_text"] == "FINISHED"
    printing = stack.rows("SELECT progress, tool0_actual, tool0_target, bed_target FROM telemetry "
                          "WHERE printer = 'mk4-print' AND state = 'printing'")
    progress = [r["progress"] for r in printing if r["progress"] is not None]
    assert len(progress) >= 4 and progress == sorted(progress) and progress[-1] > progress[0]
    assert max(progress) <= 100 and progress[-1] > 10  # v1 progress is 0–100, not 0–1
    assert len({r["tool0_actual"] for r in printing}) > 2 and printing[-1]["tool0_target"] == 200.0


def test_a_cancel_gives_exactly_one_cancelled_event(stack):
    stack.agent("mk4-cancel")
    remote = stack.remote("mk4-cancel")
    remote.print_file("long.gcode", make_gcode(3000))
    _started(stack, "mk4-cancel")
    remote.cancel()
    cancelled = stack.wait_rows("SELECT * FROM job WHERE printer = 'mk4-cancel' AND kind = 'cancelled'", "cancelled")
    stack.settle("mk4-cancel", cancelled[0]["time"])
    assert len(stack.events("mk4-cancel", "cancelled")) == 1
    assert not stack.events("mk4-cancel", "done") and not stack.events("mk4-cancel", "failed")
    assert stack.rows("SELECT state_text FROM state WHERE printer = 'mk4-cancel'")[-1]["state_text"] == "STOPPED"


def test_a_printer_error_fails_the_job_once_with_the_state_as_text(stack):
    stack.agent("mk4-error")
    remote = stack.remote("mk4-error")
    remote.print_file("long.gcode", make_gcode(3000))
    _started(stack, "mk4-error")
    remote.at_printer("fault", text="Heater decoupled")  # Buddy firmware does not tell us this text
    failed = stack.wait_rows("SELECT * FROM job WHERE printer = 'mk4-error' AND kind = 'failed'", "failed")
    stack.settle("mk4-error", failed[0]["time"])
    # Read again after settling: InfluxDB 1.x stores a point's fields one by one, so a query racing
    # the write may see some of them only.
    failed = stack.events("mk4-error", "failed")
    assert len(failed) == 1 and failed[0]["error"] == "ERROR"
    errors = stack.rows("SELECT * FROM state WHERE printer = 'mk4-error' AND state = 'error'")
    assert errors and errors[0]["error"] == "ERROR" and errors[0]["state_text"] == "ERROR"


def test_attention_is_a_pause_and_the_job_ends_once_across_an_agent_restart(stack):
    # Buddy firmware says ATTENTION for a filament change mid-print (M600, run-out) and the print
    # goes on when someone answers: no failure, no disconnect, one job, also across a restart.
    first = stack.agent("mk4-attention")
    remote = stack.remote("mk4-attention")
    remote.print_file("long.gcode", make_gcode(1200))
    _started(stack, "mk4-attention")
    remote.at_printer("attention")
    paused = stack.wait_rows("SELECT * FROM state WHERE printer = 'mk4-attention' AND state = 'paused'", "paused",
                             predicate=lambda rows: rows and rows[0].get("error"))  # all its fields stored
    assert paused[0]["state_text"] == "ATTENTION" and "filament" in paused[0]["error"]
    first.stop()
    stack.agents.remove(first)
    back_ms = int(time.time() * 1000)
    stack.agent("mk4-attention")  # same state folder: it reads the open job back
    stack.wait_rows(f"SELECT * FROM telemetry WHERE printer = 'mk4-attention' AND state = 'paused' "
                    f"AND time > {back_ms}ms", "the restarted agent to see the printer waiting")
    remote.pause("resume")  # the person answers; the same job (same id) prints to its end
    done = stack.wait_rows("SELECT * FROM job WHERE printer = 'mk4-attention' AND kind = 'done'", "done",
                           timeout=60)
    stack.settle("mk4-attention", done[0]["time"])
    kinds = [r["kind"] for r in stack.rows("SELECT * FROM job WHERE printer = 'mk4-attention'")]
    assert kinds == ["started", "paused", "resumed", "done"]
    assert "error" not in stack.states("mk4-attention")


def test_a_job_that_ends_while_the_agent_is_away_is_counted_once_with_the_printers_outcome(stack):
    first = stack.agent("mk4-away")
    remote = stack.remote("mk4-away")
    remote.print_file("away.gcode", make_gcode(800))
    started = _started(stack, "mk4-away")
    first.stop()
    stack.agents.remove(first)
    wait_for(lambda: remote.status()["printer"]["state"] == "FINISHED", 60, "the print to finish unwatched")
    stack.agent("mk4-away")
    done = stack.wait_rows("SELECT * FROM job WHERE printer = 'mk4-away' AND kind = 'done'", "done")
    stack.settle("mk4-away", done[0]["time"])
    assert [r["kind"] for r in stack.rows("SELECT * FROM job WHERE printer = 'mk4-away'")] == ["started", "done"]
    assert done[0]["job_started"] == started["time"] and done[0]["file"] == "away.gcode"


def test_a_printer_gone_is_unreachable_within_two_intervals_and_recovers(stack):
    agent = stack.agent("mk4-gone")
    _idle_seen(stack, "mk4-gone")
    remote = stack.remote("mk4-gone")
    gone_ms = int(time.time() * 1000)
    remote.at_printer("power", on=False)  # PrusaLink runs on the printer: off, nothing answers
    rows = stack.wait_rows("SELECT * FROM state WHERE printer = 'mk4-gone' AND state = 'unreachable'",
                           "unreachable", timeout=10)
    assert rows[0]["time"] - gone_ms <= 2 * INTERVAL * 1000
    assert rows[0]["error"] == "connection refused or lost"
    remote.at_printer("power", on=True)
    stack.wait_rows(f"SELECT * FROM state WHERE printer = 'mk4-gone' AND state = 'idle' AND time > {gone_ms}ms",
                    "idle again")
    assert agent.scheduler.running


def test_an_agent_restarted_mid_print_ends_the_job_exactly_once(stack):
    first = stack.agent("mk4-restart")
    remote = stack.remote("mk4-restart")
    remote.print_file("restart.gcode", make_gcode(1000))
    started = _started(stack, "mk4-restart")
    first.stop()
    stack.agents.remove(first)
    assert remote.status()["printer"]["state"] == "PRINTING"  # the print goes on without its agent
    stack.agent("mk4-restart")  # same agent id and state folder: it reads the open job back
    done = stack.wait_rows("SELECT * FROM job WHERE printer = 'mk4-restart' AND kind = 'done'", "done", timeout=60)
    stack.settle("mk4-restart", done[0]["time"])
    assert len(stack.events("mk4-restart", "done")) == 1 and len(stack.events("mk4-restart", "started")) == 1
    assert done[0]["job_started"] == started["time"] and done[0]["file"] == "restart.gcode"


def test_a_printer_with_legacy_firmware_prints_and_cancels_through_the_legacy_api(stack):
    stack.agent("mini-legacy")
    _idle_seen(stack, "mini-legacy")
    remote = stack.remote("mini-legacy")
    remote.print_file("mini_cube.gcode", make_gcode(600))
    done = stack.wait_rows("SELECT * FROM job WHERE printer = 'mini-legacy' AND kind = 'done'", "done")
    remote.print_file("mini_long.gcode", make_gcode(3000))
    stack.wait_rows("SELECT * FROM job WHERE printer = 'mini-legacy' AND kind = 'started'", "second start",
                    predicate=lambda r: len(r) == 2)
    remote.cancel()
    cancelled = stack.wait_rows("SELECT * FROM job WHERE printer = 'mini-legacy' AND kind = 'cancelled'", "cancel")
    stack.settle("mini-legacy", cancelled[0]["time"])
    assert [r["kind"] for r in stack.rows("SELECT * FROM job WHERE printer = 'mini-legacy'")] == [
        "started", "done", "started", "cancelled"]
    assert done[0]["file"] == "mini_cube.gcode" and cancelled[0]["file"] == "mini_long.gcode"
    progress = [r["progress"] for r in stack.rows(
        "SELECT progress FROM telemetry WHERE printer = 'mini-legacy' AND state = 'printing'") if r["progress"]]
    assert max(progress) > 10  # legacy completion 0–1 became percent
    assert stack.rows("SELECT api FROM state WHERE printer = 'mini-legacy'")[0]["api"] == "prusalink"
