"""OctoPrint's own behaviour, against the real OctoPrint 1.11 and its virtual printer."""

from __future__ import annotations

import pytest

from agent.jobs import JobTracker
from agent.printers.octoprint import OctoPrint as AgentOctoPrint
from common.configkit import Secret
from devkit.pipeline import wait_for
from devkit.servers import make_gcode

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
