"""The demo's fleet can hold PrusaLink printers: the simulator speaks PrusaLink for them, their
agent reads its password from a file, and the collector shows them with their API."""

from __future__ import annotations

import pytest

from devkit.demo.stack import Stack, StackOptions
from devkit.pipeline import wait_for

pytestmark = pytest.mark.integration

FLEET = {"lab": ("Lab", "Org", "Örebro län", [("lab-mk4-01", "Prusa MK4", "prusalink"),
                                               ("lab-core-01", "Prusa Core One", "prusalink"),
                                               ("lab-ender-01", "Creality Ender-3 V2", "octoprint")])}


def test_a_demo_fleet_with_prusalink_printers_shows_them_with_their_api(tmp_path, demo_stack_turn):
    stack = Stack(tmp_path / "demo", FLEET, StackOptions(interval=0.5, start="1795428000"))
    try:
        stack.up()
        # Seed 1, Monday 23 Nov 2026 11:00: lab-core-01 is on and prints; lab-mk4-01 is switched off, and a Prusa
        # switched off answers nothing at all (PrusaLink runs on the printer).
        fleet = wait_for(lambda: (lambda f: f if f and len(f["printers"]) == 3 and all(
            p["api"] for p in f["printers"]) else None)(stack.fleet_state()), 30, "three printers on /api/fleet")
        apis = {p["printer"]: p["api"] for p in fleet["printers"]}
        assert apis == {"lab-mk4-01": "prusalink", "lab-core-01": "prusalink", "lab-ender-01": "octoprint"}
        agent_conf = (tmp_path / "demo" / "pi-lab.toml").read_text()
        assert agent_conf.count('type = "prusalink"') == 2 and "password_file" in agent_conf
        assert stack.key_file.read_text().strip() not in agent_conf  # the secret stays in its file
        states = {p["printer"]: (p["state"], p["state_text"]) for p in fleet["printers"]}
        assert states["lab-core-01"] == ("printing", "PRINTING")  # read past the digest challenge
        assert states["lab-mk4-01"] == ("unreachable", "connection refused or lost")
    finally:
        stack.down()
