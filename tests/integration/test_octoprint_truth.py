"""OctoPrint's own behaviour, against the real OctoPrint 1.11 and its virtual printer."""

from __future__ import annotations

import pytest

from agent.jobs import JobTracker
from agent.printers.octoprint import OctoPrint as AgentOctoPrint
from common.configkit import Secret
from devkit.pipeline import wait_for
from devkit.servers import OctoPrint, make_gcode

pytestmark = pytest.mark.integration


def test_a_file_sent_to_the_sd_card_is_not_a_print(octoprint):
    """comm.py getStateString: "Starting to send file to SD" / "Sending file to SD" while it streams."""
    client, tracker = AgentOctoPrint(octoprint.url, Secret(octoprint.api_key), timeout=2.0), JobTracker()
    snaps, events = [], []

    def observe():
        snaps.append(client.poll())
        events.extend(tracker.update(snaps[-1]))
        return snaps[-1]

    observe()
    reply = octoprint.api("POST", "/api/files/sdcard", files={"file": ("to-sd.gcode", make_gcode(8000).encode())})
    assert reply.status_code == 201, reply.text
    wait_for(lambda: "send file to SD" in observe().state_text or "Sending file to SD" in snaps[-1].state_text,
             20, "the upload to stream", interval=0.05)
    wait_for(lambda: observe().state_text == "Operational", 60, "the upload to end", interval=0.05)
    client.close()
    assert {s.state for s in snaps} == {"idle"} and events == []


@pytest.fixture(scope="module")
def cancels_on_errors(tmp_path_factory):
    """OctoPrint set to "on firmware error: cancel the print" (serial.disconnectOnErrors false)."""
    server = OctoPrint(tmp_path_factory.mktemp("octoprint-cancels"),
                       config={"serial": {"disconnectOnErrors": False}}).start()
    yield server
    server.stop()


def _watch_a_print(octoprint, end_it):
    """Poll as the agent does while a print runs and ``end_it`` ends it; the job events."""
    client, tracker, events = AgentOctoPrint(octoprint.url, Secret(octoprint.api_key), timeout=2.0), JobTracker(), []

    def observe():
        snap = client.poll()
        events.extend(tracker.update(snap))
        return snap

    observe()
    octoprint.upload_and_print("long.gcode", make_gcode(1500))
    wait_for(lambda: observe().state == "printing" and events, 20, "the started event", interval=0.05)
    end_it()
    wait_for(lambda: observe().state == "idle", 30, "the printer to be Operational again", interval=0.05)
    observe()
    client.close()
    return events


def test_a_firmware_error_that_octoprint_answers_with_a_cancel_fails_the_job(cancels_on_errors):
    """comm.py _handle_errors: on_comm_error(error, "firmware", consequence="cancel"), cancelPrint;
    /api/job shows Cancelling -> Operational as for a person's cancel; /api/printer/error tells."""
    events = _watch_a_print(cancels_on_errors, lambda: cancels_on_errors.command("!!DEBUG:send Error:nozzle fell off"))
    assert [e.kind for e in events] == ["started", "failed"]
    assert events[1].error == "nozzle fell off"


def test_a_persons_cancel_stays_a_cancel_where_firmware_errors_cancel(cancels_on_errors):
    events = _watch_a_print(cancels_on_errors, cancels_on_errors.cancel)
    assert [e.kind for e in events] == ["started", "cancelled"] and events[1].error is None
