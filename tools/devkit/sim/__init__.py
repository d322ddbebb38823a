"""A fleet of simulated printers in one process, for the demo and load tests: each speaks the API
of its ``PrinterSpec.api`` (faces/: OctoPrint 1.11, PrusaLink). The OctoPrint face:

Each printer listens on its own loopback port (the agent's OctoPrint client joins absolute
paths onto its base URL, so printers cannot share a port behind path prefixes) and answers the
endpoints the agent reads — ``/api/version``, ``/api/job``, ``/api/printer``,
``/api/connection`` — with OctoPrint's field names, texts and status codes, plus the control
calls tests use on a real OctoPrint (upload-and-print, cancel, pause, connect/disconnect and
``!!DEBUG:`` error injection).

Printers of ``api="bambu"`` listen on no port: they publish Bambu Lab LAN-mode MQTT reports
to a stand-in for the printers' brokers instead (faces/bambu.py, devkit.servers.bambu).

Behaviour is seeded and lazy: a printer advances its own timeline only when asked, so 500
idle printers cost nothing between polls.
"""

from devkit.sim.clock import SimClock
from devkit.sim.model import SimPrinter
from devkit.sim.server import Simulator

__all__ = ["SimClock", "SimPrinter", "Simulator"]
