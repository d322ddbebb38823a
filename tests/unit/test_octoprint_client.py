import logging

import requests

from common.configkit import Secret
from agent.printers.octoprint import OctoPrint

JOB = {"state": "Printing", "error": "", "job": {"file": {"name": "cube.gcode", "display": "cube.gcode"},
       "user": "operator", "filament": {"tool0": {"length": 1000.5}, "tool1": {"length": 20}}},
       "progress": {"completion": 42.5, "printTime": 60, "printTimeLeft": 120}}
PRINTER = {"temperature": {"tool0": {"actual": 200.1, "target": 210}, "bed": {"actual": 59.5, "target": 60},
                           "W": {"actual": 1, "target": 2}}}


class FakeClient:
    def __init__(self, job=JOB, printer=PRINTER, fail=None):
        self.job, self.printer_data, self.fail = job, printer, fail
        self.session = requests.Session()

    def job_info(self):
        if self.fail:
            raise self.fail
        return self.job

    def printer(self, exclude=None):
        if isinstance(self.printer_data, Exception):
            raise self.printer_data
        return self.printer_data


def make(client, **kw):
    return OctoPrint("http://127.0.0.1:1", Secret("KEY-SHOULD-NOT-LEAK"), client_factory=lambda *a: client,
                     clock=lambda: 1_790_000_000.0, **kw)


def test_a_printing_answer_becomes_a_full_snapshot():
    snap = make(FakeClient()).poll()
    assert (snap.state, snap.state_text, snap.file, snap.user) == ("printing", "Printing", "cube.gcode", "operator")
    assert (snap.progress, snap.print_time, snap.time_left, snap.filament_mm) == (42.5, 60.0, 120.0, 1020.5)
    assert snap.temps == {"tool0": (200.1, 210.0), "bed": (59.5, 60.0)}
    assert snap.ts == 1_790_000_000_000


def test_garbage_fields_become_none_not_a_crash():
    job = {"state": 7, "job": {"file": "x", "filament": "y"}, "progress": {"completion": "NaN", "printTime": float("inf")}}
    snap = make(FakeClient(job=job, printer={"temperature": {"tool0": {"actual": "hot"}}})).poll()
    assert snap.state == "error" and snap.progress is None and snap.print_time is None
    assert snap.temps == {}  # not asked for in an error state
    job["state"] = "Printing"
    snap = make(FakeClient(job=job, printer={"temperature": {"tool0": {"actual": "hot"}, "bed": 5}})).poll()
    assert snap.state == "printing" and snap.temps == {"tool0": (None, None)}


def test_409_between_requests_still_gives_a_snapshot():
    client = FakeClient(printer=RuntimeError("Reply for http://x/api/printer was not OK: Printer is not operational (409)"))
    assert make(client).poll().temps == {}


def test_failures_become_unreachable_and_are_logged_once(caplog):
    printer = make(FakeClient(fail=requests.ConnectionError("refused")))
    with caplog.at_level(logging.WARNING):
        snaps = [printer.poll() for _ in range(5)]
    assert {s.state for s in snaps} == {"unreachable"}
    assert len(caplog.records) == 1 and "KEY-SHOULD-NOT-LEAK" not in caplog.text


def test_a_rejected_key_says_so():
    fail = RuntimeError("Reply for http://x/api/job was not OK: Forbidden (403)")
    snap = make(FakeClient(fail=fail)).poll()
    assert snap.state == "unreachable" and "API key rejected" in snap.error


class ErrorEndpoint:
    """The client's session, answering /api/printer/error with ``status`` and ``body``."""

    def __init__(self, status, body=None):
        self.status, self.body, self.asked = status, body, []

    def get(self, url):
        self.asked.append(url)
        return self

    @property
    def status_code(self):
        return self.status

    def raise_for_status(self):
        pass

    def json(self):
        return self.body


def cancelled_twice(session):
    client = FakeClient()
    client.session, client.url = session, "http://127.0.0.1:1"
    printer, events = make(client), []
    for state, completion in (("Printing", 5), ("Operational", 30), ("Printing", 5), ("Operational", 30)):
        client.job = {**JOB, "state": state, "progress": {"completion": completion}}
        snap = printer.poll()
        events.append(snap.ended)
    return events, snap


def test_a_firmware_cancel_is_read_from_the_last_error_through_the_clients_session():
    session = ErrorEndpoint(200, {"error": "MINTEMP", "reason": "firmware", "consequence": "cancel"})
    events, snap = cancelled_twice(session)
    assert events == [None, "failed", None, "failed"] and snap.ended_error == "MINTEMP"
    assert session.asked == ["http://127.0.0.1:1/api/printer/error"] * 2  # once per cancel


def test_an_octoprint_without_the_last_error_keeps_cancels_and_says_so_once(caplog):
    with caplog.at_level(logging.INFO, logger="agent.printers.octoprint"):
        events, _ = cancelled_twice(ErrorEndpoint(404, {"error": "Not found"}))
    assert events == [None, "cancelled", None, "cancelled"]
    assert [r.getMessage() for r in caplog.records if "/api/printer/error" in r.getMessage()] == [
        "http://127.0.0.1:1 answers 404 to /api/printer/error: a cancel after a firmware error counts as cancelled"]
