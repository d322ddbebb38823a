"""The Bambu client's bookkeeping, fed reports by hand (the network side: tests/integration)."""

import json
import logging
from types import SimpleNamespace

from agent import config as agent_config
from agent.printers.bambu.client import Bambu
from devkit.pipeline import wait_for


def make(tmp_path, clock=lambda: 1_790_000_000.0):
    (tmp_path / "code").write_text("12345678")
    cfg = agent_config.from_dict({"agent": {"id": "pi-1", "site": "lab", "state_dir": str(tmp_path)}, "printers": [
        {"id": "p1s-01", "type": "bambu", "host": "127.0.0.1", "serial": "01P00A000000001", "model": "P1S",
         "access_code_file": str(tmp_path / "code"), "fingerprint": "00" * 32,
         "fetch_3mf": False}]}).printers[0]  # no 3MF over FTPS here: tests/integration/test_bambu_material.py
    printer = Bambu(cfg, clock=clock)
    calls = []
    printer._changed = lambda: calls.append(printer.poll())
    return printer, calls


def feed(printer, payload):
    body = payload if isinstance(payload, bytes) else json.dumps({"print": payload}).encode()
    printer._on_message(None, None, SimpleNamespace(topic="device/01P00A000000001/report", payload=body))


def test_unreachable_until_the_first_report_then_the_printers_state(tmp_path):
    printer, calls = make(tmp_path)
    snap = printer.poll()
    assert (snap.state, snap.error) == ("unreachable", "connecting to 127.0.0.1:8883")
    feed(printer, {"gcode_state": "IDLE", "nozzle_temper": 25.0, "chamber_temper": 5.0})
    assert [c.state for c in calls] == ["idle"]
    snap = printer.poll()
    assert snap.ts == 1_790_000_000_000 and snap.temps == {"tool0": (25.0, None)}  # a P1S has no chamber sensor


def test_changed_is_called_when_the_headline_moves_not_for_every_report(tmp_path):
    printer, calls = make(tmp_path)
    feed(printer, {"gcode_state": "RUNNING", "subtask_name": "cube", "gcode_start_time": "1790000000"})
    for percent in range(1, 6):
        feed(printer, {"mc_percent": percent, "wifi_signal": f"-{40 + percent}dBm"})
    feed(printer, {"gcode_state": "PAUSE"})
    feed(printer, {"gcode_state": "PAUSE"})
    feed(printer, {"gcode_state": "FAILED", "print_error": 50348044})
    assert [(c.state, c.ended) for c in calls] == [("printing", None), ("paused", None), ("idle", "cancelled")]
    assert calls[0].job_id == "start:1790000000" and printer.poll().progress == 5.0


def test_a_garbage_report_changes_nothing_and_is_logged_once(tmp_path, caplog):
    printer, calls = make(tmp_path)
    feed(printer, {"gcode_state": "IDLE"})
    heard = printer._last_heard
    with caplog.at_level(logging.WARNING):
        for _ in range(3):
            feed(printer, b"\x00garbage")
    assert printer._last_heard == heard and len(calls) == 1 and printer.poll().state == "idle"
    assert sum("unreadable report" in r.getMessage() for r in caplog.records) == 1


def test_a_problem_is_unreachable_with_its_text_and_published_once(tmp_path):
    printer, calls = make(tmp_path)
    feed(printer, {"gcode_state": "RUNNING"})
    printer._set_problem("connection to 127.0.0.1:8883 lost (Unspecified error)")
    printer._set_problem("connection to 127.0.0.1:8883 lost (Unspecified error)")
    assert [c.state for c in calls] == ["printing", "unreachable"]
    assert calls[-1].error == "connection to 127.0.0.1:8883 lost (Unspecified error)"
    feed(printer, {"mc_percent": 7})  # a report after the reconnect: the merged state is back
    assert calls[-1].state == "printing" and calls[-1].progress == 7.0


def test_a_bug_in_the_loop_is_logged_and_the_watch_goes_on(tmp_path, caplog):
    printer, calls = make(tmp_path)
    attempts = []

    class Buggy:
        """Connects once, then its loop hits a bug; later connects are refused."""

        def connect(self, *args, **kwargs):
            attempts.append(1)
            if len(attempts) > 1:
                raise ConnectionRefusedError()

        def loop(self, timeout):
            return {}["a bug"]

    printer._factory, printer._backoff, printer._delay = (lambda cfg: Buggy()), (0.01, 0.02), 0.01
    with caplog.at_level(logging.WARNING):
        printer.start(printer._changed)
        try:
            wait_for(lambda: len(attempts) >= 3, 5, "attempts after the bug", interval=0.01)
        finally:
            printer.close()
    assert any(r.levelno == logging.ERROR and "MQTT loop failed" in r.getMessage() for r in caplog.records)
    assert printer.poll().error.startswith("connection refused at 127.0.0.1:8883")
