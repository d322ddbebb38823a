"""A flapping Bambu printer during a broker outage (issue 21): real Mosquitto as the printers'
broker (devkit's Bambu stand-in, fed by fake printers) and as the agent's uplink, the agent as a
real process. Its state changes are rate limited and coalesced (counted in its status), so the
steady printer beside it loses nothing from the outbox and the log stays short.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import msgspec
import pytest

from devkit.hostile.rig import HostileRig
from devkit.pipeline import wait_for
from devkit.servers.bambu import BambuBroker
from devkit.sim.faces.bambu_printer import BambuLink

pytestmark = pytest.mark.integration

FLAPPER, STEADY = "00M000000000001", "00M000000000002"


def outbox_messages(path: Path) -> list[tuple[str, dict]]:
    db = sqlite3.connect(path)
    try:
        return [(t, msgspec.json.decode(p)) for t, p in db.execute("SELECT topic, payload FROM outbox ORDER BY id")]
    finally:
        db.close()


def test_a_flapping_printer_during_an_outage_displaces_no_other_printers_data(tmp_path, mosquitto):
    printers = BambuBroker(tmp_path / "bambu", [FLAPPER, STEADY]).start()
    link = BambuLink(printers.host, printers.port)
    flapper = link.add(FLAPPER)
    link.add(STEADY)  # reports only heartbeats: a printer idling beside the flapping one
    link.heartbeats(0.5)
    tables = {name: {"type": "bambu", "host": printers.host, "port": printers.endpoints[serial].port,
                     "serial": serial, "access_code_file": str(printers.access_code_file(serial)),
                     "ca_file": str(printers.ca_path)}
              for name, serial in (("bb-flap", FLAPPER), ("bb-steady", STEADY))}
    rig = HostileRig(tmp_path, mosquitto, tables, cases={}, extra="[outbox]\nmax_messages = 100\n")
    try:
        with rig:
            rig.start_agent(interval=0.5, timeout=0.5)
            for name in tables:
                assert rig.probe.wait_status(name, lambda s: s["state"] == "idle", 30), rig.log.read_text()[-2000:]
            mosquitto.stop()
            wait_for(lambda: b"lost the broker" in rig.log.read_bytes(), 10, "the agent to notice the outage")
            log_before = len(rig.log.read_text().splitlines())
            flapper.start("flap.gcode")
            deadline = time.monotonic() + 8
            flips = 0
            while time.monotonic() < deadline:  # as fast as the printer's broker takes it
                flapper.update(gcode_state="PAUSE" if flips % 2 else "RUNNING")
                flips += 1
                time.sleep(0.005)
            assert rig.sigterm() < 10
            log_lines = rig.log.read_text().splitlines()[log_before:]
    finally:
        link.close()
        printers.stop()
    messages = outbox_messages(tmp_path / "agent-state" / "outbox.sqlite3")
    by_printer: dict[str, list[dict]] = {}
    for topic, body in messages:
        by_printer.setdefault(topic.split("/")[3], []).append(body)
    seqs = sorted(m["seq"] for m in by_printer.get("bb-steady", []))
    assert len(seqs) >= 12, f"only {len(seqs)} of the steady printer's messages are left in the outbox"
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), "the steady printer lost messages"
    statuses = [m for m in by_printer.get("bb-flap", []) if "agent" in m]
    assert sum(m.get("coalesced", 0) for m in statuses) > 0, "the flaps were not coalesced and counted"
    agent_lines = [line for line in log_lines if " agent." in line]
    assert flips > 300 and len(agent_lines) < 150, f"{len(agent_lines)} agent log lines for {flips} flips"
