"""Private Mosquitto and InfluxDB 1.x for the demo and benchmarks: temp data, free loopback ports.

A smaller cousin of tests/servers.py (which is not installed with the package): start the
binary with a generated config, wait until it answers a real request, stop it by its pid.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

from server.demo.processes import Children

HOST = "127.0.0.1"
APT_PACKAGES = ("mosquitto", "influxdb")
BINARIES = {"mosquitto": ("mosquitto", "/usr/sbin/mosquitto"), "influxdb": ("influxd", "/usr/bin/influxd")}

MOSQUITTO_CONFIG = """\
listener {port} 127.0.0.1
allow_anonymous true
persistence false
# Debian's default of 1000 queued messages per client silently drops a backlog.
max_queued_messages 0
max_queued_bytes 0
log_dest file {dir}/mosquitto.log
log_type error
log_type warning
user {user}
"""

INFLUXDB_CONFIG = """\
reporting-enabled = false
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{dir}/meta"
  logging-enabled = false
[data]
  dir = "{dir}/data"
  wal-dir = "{dir}/wal"
  index-version = "inmem"
  query-log-enabled = false
[monitor]
  store-enabled = false
[subscriber]
  enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
[continuous_queries]
  log-enabled = false
[logging]
  level = "warn"
  suppress-logo = true
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def find_binary(package: str) -> str | None:
    name, fallback = BINARIES[package]
    for path in (shutil.which(name), fallback):
        if path and os.access(path, os.X_OK):
            return path
    return None


def missing_packages() -> list[str]:
    return [pkg for pkg in APT_PACKAGES if find_binary(pkg) is None]


def install_command(packages: list[str]) -> list[str]:
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    return [*sudo, "apt-get", "install", "-y", *packages]


def wait_until(check, timeout: float, what: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}")
        try:
            if check():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not answer within {timeout:.0f} s")


def _connack(port: int) -> bool:
    connect = bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([4, 0x02, 0, 10, 0, 0])
    with socket.create_connection((HOST, port), timeout=1) as sock:
        sock.sendall(connect)
        ok = sock.recv(4)[:1] == b"\x20"
        if ok:
            sock.sendall(b"\xe0\x00")
        return ok


def _influx_ping(port: int) -> bool:
    with urllib.request.urlopen(f"http://{HOST}:{port}/ping", timeout=1) as reply:
        return reply.status == 204


def start_mosquitto(children: Children, workdir: Path) -> int:
    """Start a broker with unlimited queues; returns its port."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    conf = workdir / "mosquitto.conf"
    conf.write_text(MOSQUITTO_CONFIG.format(port=port, dir=workdir, user=pwd.getpwuid(os.getuid()).pw_name))
    proc = children.spawn("mosquitto", [find_binary("mosquitto"), "-c", str(conf)], workdir / "mosquitto.out")
    wait_until(lambda: _connack(port), 15, "mosquitto", proc)
    return port


def start_influxdb(children: Children, workdir: Path) -> int:
    """Start influxd 1.x with its data in workdir; returns its HTTP port."""
    workdir.mkdir(parents=True, exist_ok=True)
    port, rpc_port = free_port(), free_port()
    conf = workdir / "influxdb.conf"
    conf.write_text(INFLUXDB_CONFIG.format(port=port, rpc_port=rpc_port, dir=workdir))
    proc = children.spawn("influxd", [find_binary("influxdb"), "-config", str(conf)], workdir / "influxd.log")
    wait_until(lambda: _influx_ping(port), 30, "influxd", proc)
    return port
