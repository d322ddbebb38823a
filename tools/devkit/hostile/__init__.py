"""Hostile printer stand-ins on loopback: what broken firmware, a misconfigured proxy or a device
posing as a printer may send, one behaviour per case (docs/security.md lists the bounds each
one tests). Each is a small threaded TCP server speaking just enough of its API to reach the
hostile part:

- ``HostileHTTP``: OctoPrint or PrusaLink (any path): an endless body, a huge Content-Length,
  trickled headers or body, deeply nested JSON, a redirect to another host (``Recorder``
  plays that host and keeps the headers it was sent);
- ``HostileMoonraker``: Moonraker's websocket: a frame announcing 4 GiB, endless fragments, a
  trickled frame, notifications without end instead of an answer, ever new fields, nested JSON;
- ``HostileBambu``: a Bambu printer's MQTT broker over TLS: a packet announcing 255 MiB, or
  reports nested thousands deep.

Endless streams stop after ``budget`` bytes, so a client without bounds (the code under test
before a fix) costs this machine a bounded amount while its test fails.
"""

from devkit.hostile.bambu import HostileBambu
from devkit.hostile.http import HostileHTTP, Recorder
from devkit.hostile.moonraker import HostileMoonraker

__all__ = ["HostileBambu", "HostileHTTP", "HostileMoonraker", "Recorder"]
