"""The demo's broker and database: the harness's servers, plus what to do when they are missing."""

from __future__ import annotations

import os
from pathlib import Path

from devkit.servers import InfluxDB, Mosquitto
from devkit.servers.bambu import BambuBroker
from devkit.servers.process import find_binary

APT_PACKAGES = {"mosquitto": ("mosquitto", "/usr/sbin/mosquitto"), "influxdb": ("influxd", "/usr/bin/influxd")}


def missing_packages() -> list[str]:
    missing = []
    for package, (binary, fallback) in APT_PACKAGES.items():
        try:
            find_binary(binary, "", (fallback,))
        except RuntimeError:
            missing.append(package)
    return missing


def install_command(packages: list[str]) -> list[str]:
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    return [*sudo, "apt-get", "install", "-y", *packages]


def start_mosquitto(workdir: Path) -> Mosquitto:
    broker = Mosquitto(workdir)
    broker.die_with_parent = True  # not even a SIGKILLed demo leaves it running
    return broker.start()


def start_influxdb(workdir: Path) -> InfluxDB:
    influx = InfluxDB(workdir)
    influx.die_with_parent = True
    return influx.start()


def start_bambu_broker(workdir: Path, serials: list[str]) -> BambuBroker:
    """The stand-in for the Bambu printers' own brokers: one TLS listener per printer."""
    broker = BambuBroker(workdir, serials)
    broker.die_with_parent = True
    return broker.start()
