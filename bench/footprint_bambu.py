"""A Bambu printer for bench/agent_footprint.py (``--mix bambu=N``), in its per-API table.

A Bambu printer pushes: a printing X1 publishes its whole report (~5 KB) about once a second.
So each printer here is devkit's fake X1 behind its own TLS stand-in broker (as in a lab, one
broker per printer). ``drive`` flips it between RUNNING and PAUSE on every report, so each
report makes a status message (and a paused/resumed job event): the heaviest path an ordinary
report can take, so the CPU figure is an upper bound. The status ``ts`` is taken as the client
has merged the report that changed it, so change -> publish covers the worker, encoding, the
publish and the delivery (the printer-to-agent hop on loopback is not in it).
"""

from __future__ import annotations

import threading
from pathlib import Path

from devkit.servers.bambu import BambuBroker
from devkit.sim.faces.bambu_printer import BambuLink


class BambuBench:
    push = True

    def __init__(self, d: Path, i: int):
        self.serial = f"00M{i:012d}"
        self.broker = BambuBroker(d / f"bambu{i}", [self.serial]).start()
        self.link = BambuLink(self.broker.host, self.broker.port, client_id=f"bench-bambu-{i}")
        self.printer = self.link.add(self.serial, "X1")
        self.printer.start("bench_part", layers=500, minutes=600)

    def table(self) -> list[str]:
        return ['type = "bambu"', f'host = "{self.broker.host}"', f"port = {self.broker.endpoints[self.serial].port}",
                f'serial = "{self.serial}"', f'access_code_file = "{self.broker.access_code_file(self.serial)}"',
                f'ca_file = "{self.broker.ca_path}"']

    def drive(self, stop: threading.Event) -> None:
        """A whole report every second, each one flipping RUNNING <-> PAUSE, until stopped."""
        step = 0
        while not stop.wait(1.0):
            step += 1
            self.printer.update(gcode_state="PAUSE" if step % 2 else "RUNNING", mc_percent=step % 100,
                                layer_num=step % 500, nozzle_temper=219.0 + step % 3,
                                mc_remaining_time=600 - step % 600)

    def stop(self) -> None:
        self.link.close()
        self.broker.stop()
