"""Terminal escapes in a real printer's error text, OctoPrint -> agent -> Mosquitto -> collector:
what /api/fleet, InfluxDB and the demo table built from /api/fleet show holds none of them."""

from __future__ import annotations

import io
import re
import unicodedata

import pytest
import requests
from rich.console import Console

from devkit.demo.table import render
from devkit.pipeline import DB, RunningCollector, agent_config_for, collector_config, start_agent, wait_for, \
    write_inventory

pytestmark = pytest.mark.integration

# Clears the screen and the scrollback, moves the cursor home, sets blinking and rings the bell: as a
# printer's firmware can send them in an "Error:" line (no ";": OctoPrint cuts a command there).
ESCAPES = "\x1b[2J\x1b[3J\x1b[Hnozzle fell off\x1b[5m\x07"


def _hidden(text: str) -> list[str]:
    return [c for c in text if unicodedata.category(c) == "Cc"]


def test_escapes_in_a_printers_error_reach_no_reader(tmp_path, mosquitto, influxdb, octoprint):
    inventory = write_inventory(tmp_path / "fleet.toml", {"vp-1": "lab"})
    collector = RunningCollector(collector_config(tmp_path, mosquitto, influxdb, inventory))
    collector.wait_connected()
    agent = start_agent(agent_config_for(tmp_path, mosquitto, [("vp-1", octoprint.url, octoprint.api_key)],
                                         interval=0.5, timeout=0.5))
    try:
        octoprint.command("!!DEBUG:send Error:" + ESCAPES)
        api = f"http://127.0.0.1:{collector.collector.api.port}/api/fleet"
        fleet = wait_for(lambda: (lambda f: f if f["printers"] and f["printers"][0]["state"] == "error" else None)(
            requests.get(api, timeout=5).json()), 30, "the printer in error on /api/fleet")
        rows = wait_for(lambda: influxdb.query("SELECT error FROM state WHERE state = 'error'", db=DB), 10,
                        "the error stored")
    finally:
        agent.stop()
        collector.stop()
    error = fleet["printers"][0]["error"]
    assert "nozzle fell off" in error and not _hidden(error), repr(error)
    assert "nozzle fell off" in rows[0]["error"] and not _hidden(rows[0]["error"]), repr(rows[0]["error"])
    out = io.StringIO()
    Console(file=out, force_terminal=True, color_system="truecolor", width=140).print(render(fleet, "h", "f"))
    shown = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue())  # rich's own colours: the only escapes left
    assert "nozzle" in shown and not _hidden(shown.replace("\n", "")), repr(shown)
