"""Real mosquitto, influxd, OctoPrint, Klipper and Moonraker processes for tests, benchmarks and the demo.

Each server gets free loopback ports and its own data directory, counts as started only once it
answers a real request, and is stopped by its process. Plain Python on purpose (no pytest), so
`bench/` and the demo can reuse it:

    with Mosquitto(tmpdir) as broker, InfluxDB(tmpdir2) as influx:
        ...

A missing binary raises RuntimeError naming the package to install: CI must fail, not skip.
"""


from devkit.servers.influxdb import InfluxDB
from devkit.servers.klipper import Klipper, Moonraker, klipper_gcode
from devkit.servers.mosquitto import Mosquitto
from devkit.servers.octoprint import OctoPrint, make_gcode
from devkit.servers.ports import HOST, free_port
from devkit.servers.process import Server

__all__ = ["HOST", "InfluxDB", "Klipper", "Moonraker", "Mosquitto", "OctoPrint", "Server", "free_port",
           "klipper_gcode", "make_gcode"]
