"""The demo stack with Bambu printers in its fleet starts what they need and stops it all."""

from __future__ import annotations

import psutil
import pytest

from devkit.demo.stack import Stack, StackOptions
from devkit.pipeline import wait_for

pytestmark = pytest.mark.integration

FLEET = {"lab": ("Lab", "Org", "Örebro län", [("orebro-x1c-01", "Bambu Lab X1C", "bambu"),
                                              ("orebro-p1s-01", "Bambu Lab P1S", "bambu"),
                                              ("orebro-mk4-01", "Prusa MK4", "octoprint")])}


def test_a_fleet_with_bambu_printers_is_watched_through_their_api_and_stopped_cleanly(tmp_path):
    stack = Stack(tmp_path, FLEET, StackOptions(speed=30, interval=1.0, outages_per_day=0))
    try:
        stack.up()
        pids = stack.server_pids()
        assert {"mosquitto", "mosquitto-bambu", "influxd", "simulator", "collector"} <= set(pids)

        def watched():
            printers = (stack.fleet_state() or {}).get("printers", [])
            states = {p["printer"]: (p.get("api"), p["state"]) for p in printers}
            seen = all(api and state not in ("unknown", "unreachable") for api, state in states.values())
            return states if len(states) == 3 and seen else None

        states = wait_for(watched, 30, "all three printers watched")
        assert {p: api for p, (api, _) in states.items()} == {
            "orebro-x1c-01": "bambu", "orebro-p1s-01": "bambu", "orebro-mk4-01": "octoprint"}
    finally:
        stack.down()
    assert not [pid for pid in pids.values() if psutil.pid_exists(pid) and
                psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
