"""OctoPrint 1.11 with its virtual printer, in its own virtual environment."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import requests

from devkit.servers.process import Server

OCTOPRINT_USER = "operator"
OCTOPRINT_PASSWORD = "printfarm"
DISABLED_PLUGINS = ["discovery", "announcements", "softwareupdate", "pluginmanager", "tracking",
                    "errortracking", "achievements", "health_check", "backup"]


def octoprint_binary() -> str:
    venv = Path(os.environ.get("PRINTFARM_OCTOPRINT_VENV", "/opt/octoprint-venv"))
    binary = venv / "bin" / "octoprint"
    if not os.access(binary, os.X_OK):
        raise RuntimeError(
            f"{binary} not found: python3 -m venv {venv} && "
            f"{venv}/bin/pip install 'octoprint==1.11.*' (or set PRINTFARM_OCTOPRINT_VENV)")
    return str(binary)


def _octoprint_config() -> dict:
    return {
        "server": {"firstRun": False, "onlineCheck": {"enabled": False}},
        "serial": {
            "port": "VIRTUAL", "baudrate": 115200, "autoconnect": True,
            # Short timeouts: a printer that stops answering shows within ~18 s, not minutes.
            "timeout": {"communication": 2, "communicationBusy": 1},
            "maxCommunicationTimeouts": {"idle": 2, "printing": 2, "long": 2},
        },
        "plugins": {
            # These phone home, and disabling them cuts start-up from ~3 s to ~1 s.
            "_disabled": DISABLED_PLUGINS,
            # Default simulated_errors inject resends at lines 100-115 of every print.
            "virtual_printer": {"enabled": True, "simulated_errors": []},
        },
    }


def _merge(base: dict, extra: dict) -> dict:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
    return base


_users_yaml_cache: dict[str, str] = {}


def _users_yaml_template(binary: str, user: str, password: str) -> str:
    """users.yaml with a real password hash, made once per process: the CLI call costs ~0.7 s."""
    key = f"{user}\0{password}"
    if key not in _users_yaml_cache:
        with tempfile.TemporaryDirectory(prefix="octoprint-template-") as basedir:
            done = subprocess.run(
                [binary, "--basedir", basedir, "user", "add", user, "--password", password,
                 "--admin"], capture_output=True, text=True, timeout=60)
            users = Path(basedir, "users.yaml")
            if done.returncode != 0 or not users.exists():
                raise RuntimeError(f"octoprint user add failed:\n{done.stdout}{done.stderr}")
            _users_yaml_cache[key] = users.read_text()
    return _users_yaml_cache[key]


def make_gcode(lines: int = 300) -> str:
    """A small valid print: heats (without waiting), homes, zig-zags with extrusion, cools.

    On the virtual printer a move sleeps 0.1 x its duration, plus a few ms of serial round trip
    per line. Measured on 2 cores: 300 lines print in ~6.5 s, and the nozzle (which the virtual
    printer heats at 10 C/s) reaches ~80 C before the footer turns the heaters off.
    """
    header = ["; printfarm test print", "G21", "G90", "M82", "M104 S200", "M140 S60", "G28",
              "G92 E0", "G1 Z0.3 F600"]
    footer = ["M104 S0", "M140 S0", "G1 Z10 F600", "M84"]
    moves, e = [], 0.0
    for i in range(max(lines - len(header) - len(footer), 1)):
        x = 20 + (i % 2) * 20  # 20 mm strokes at 50 mm/s: 300 lines print in ~6.5 s
        y = 20 + (i % 120) * 0.5
        e += 2.0
        moves.append(f"G1 X{x} Y{y:.1f} E{e:.2f} F3000")
    return "\n".join(header + moves + footer) + "\n"


class OctoPrint(Server):
    """OctoPrint 1.11 with its virtual printer, from its own venv ($PRINTFARM_OCTOPRINT_VENV).

    The API key belongs to user `operator`, so job events carry a user name. `config` is merged
    into the generated config.yaml. config.yaml/users.yaml are written on the first start only,
    so restart() keeps whatever OctoPrint saved.
    """

    name = "octoprint"
    start_timeout = 60.0
    request_timeout = 5.0

    def __init__(self, tmpdir, port: int | None = None, api_key: str | None = None,
                 user: str = OCTOPRINT_USER, password: str = OCTOPRINT_PASSWORD,
                 config: dict | None = None) -> None:
        super().__init__(tmpdir, port)
        self.basedir = self.dir / "basedir"
        self.api_key = api_key or secrets.token_hex(16).upper()
        self.user = user
        self.password = password
        self.config = _merge(_octoprint_config(), config or {})
        self.binary = octoprint_binary()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _prepare(self) -> None:
        config = self.basedir / "config.yaml"
        if config.exists():
            return
        self.basedir.mkdir(parents=True, exist_ok=True)
        # JSON is valid YAML: no PyYAML needed on this side.
        config.write_text(json.dumps(self.config, indent=2))
        users = _users_yaml_template(self.binary, self.user, self.password)
        if users.count("apikey: null") != 1:
            raise RuntimeError(f"unexpected users.yaml layout from octoprint:\n{users}")
        (self.basedir / "users.yaml").write_text(
            # Quoted (a JSON string is a YAML string): an all-digit key would load as an int.
            users.replace("apikey: null", f"apikey: {json.dumps(self.api_key)}"))

    def _command(self) -> list[str]:
        cmd = [self.binary, "serve", "--basedir", str(self.basedir),
               "--host", self.host, "--port", str(self.port)]
        if os.geteuid() == 0:
            cmd.append("--iknowwhatimdoing")  # it refuses to run as root otherwise
        return cmd

    def _env(self) -> dict[str, str]:
        # The venv must not see the test interpreter's import paths.
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _answers(self) -> bool:
        if self.api("GET", "/api/version", timeout=1).status_code != 200:
            return False
        return self.job(timeout=1)["state"] == "Operational"

    # -- REST helpers ------------------------------------------------------------------------
    def api(self, method: str, path: str, json: Any = None, timeout: float | None = None,
            **kwargs) -> requests.Response:
        """One request with the API key and a timeout; the caller checks the status."""
        return requests.request(method, self.url + path, json=json,
                                headers={"X-Api-Key": self.api_key},
                                timeout=timeout or self.request_timeout, **kwargs)

    def _expect(self, reply: requests.Response, *codes: int) -> requests.Response:
        if reply.status_code not in codes:
            raise RuntimeError(f"OctoPrint {reply.request.method} {reply.url} -> "
                               f"{reply.status_code}: {reply.text[:500]}")
        return reply

    def job(self, timeout: float | None = None) -> dict:
        return self._expect(self.api("GET", "/api/job", timeout=timeout), 200).json()

    def wait_for_job(self, predicate: Callable[[dict], bool], timeout: float = 30.0,
                     what: str = "condition") -> dict:
        """Poll /api/job until predicate(job) holds; returns that job dict."""
        deadline = time.monotonic() + timeout
        job = self.job()
        while not predicate(job):
            if time.monotonic() > deadline:
                raise TimeoutError(f"OctoPrint job never reached {what}; last: {job}")
            time.sleep(0.05)
            job = self.job()
        return job

    def wait_for_state(self, *states: str, timeout: float = 30.0) -> dict:
        return self.wait_for_job(lambda job: job["state"] in states, timeout, f"state {states}")

    def upload_and_print(self, name: str, gcode_text: str) -> dict:
        """Upload to local storage with print=true and wait until the print has started.

        Returns the upload reply. (octorest drops the print flag; the raw API honours it.)
        """
        reply = self._expect(self.api(
            "POST", "/api/files/local", files={"file": (name, gcode_text.encode())},
            data={"select": "true", "print": "true"}), 201)
        self.wait_for_job(
            lambda job: (job["job"]["file"]["name"] == name and job["state"] != "Operational")
            or job["state"].startswith("Offline"),
            timeout=10, what=f"printing {name}")
        return reply.json()

    def command(self, *gcode: str) -> None:
        self._expect(self.api("POST", "/api/printer/command", json={"commands": list(gcode)}),
                     204)

    def cancel(self) -> None:
        self._expect(self.api("POST", "/api/job", json={"command": "cancel"}), 204)

    def connect(self) -> None:
        self._expect(self.api("POST", "/api/connection", json={
            "command": "connect", "port": "VIRTUAL", "baudrate": 115200}), 204)

    def disconnect(self) -> None:
        self._expect(self.api("POST", "/api/connection", json={"command": "disconnect"}), 204)
