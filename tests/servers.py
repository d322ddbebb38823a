"""Real mosquitto, influxd and OctoPrint processes for tests, benchmarks and the demo.

Each server gets free loopback ports and its own data directory, counts as started only once it
answers a real request, and is stopped by its process. Plain Python on purpose (no pytest), so
`bench/` and the demo can reuse it:

    with Mosquitto(tmpdir) as broker, InfluxDB(tmpdir2) as influx:
        ...

A missing binary raises RuntimeError naming the package to install: CI must fail, not skip.
"""

from __future__ import annotations

import atexit
import json
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import requests

HOST = "127.0.0.1"
LOG_TAIL_LINES = 30

# Servers whose process may still be running; the atexit hook kills them so an aborted run
# (Ctrl-C, an exception outside a fixture) leaves no orphans behind.
_live: set["_Server"] = set()


def free_port() -> int:
    """A loopback TCP port that was free a moment ago (the kernel picks it)."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _find_binary(name: str, install_hint: str, candidates: tuple[str, ...] = ()) -> str:
    # /usr/sbin is not on every user's PATH, so look at the Debian locations too.
    for path in (shutil.which(name), *candidates):
        if path and os.access(path, os.X_OK):
            return path
    raise RuntimeError(f"{name} not found: {install_hint}")


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


class _Server:
    """One child process: start, wait until it answers, stop by pid (and its process group)."""

    name = "server"
    start_timeout = 30.0
    stop_timeout = 10.0

    def __init__(self, tmpdir: str | os.PathLike, port: int | None = None) -> None:
        self.dir = Path(tmpdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.host = HOST
        self._auto_port = port is None
        self.port = port or free_port()
        self.log_path = self.dir / f"{self.name}.log"
        self.proc: subprocess.Popen | None = None
        self.startup_seconds: float | None = None
        self._started_once = False

    # -- what subclasses provide -------------------------------------------------------------
    def _command(self) -> list[str]:
        raise NotImplementedError

    def _prepare(self) -> None:
        """Write config files before each start."""

    def _answers(self) -> bool:
        """One readiness probe; may raise OSError/requests errors (treated as 'not yet')."""
        raise NotImplementedError

    def _pick_new_ports(self) -> None:
        self.port = free_port()

    def _env(self) -> dict[str, str]:
        return dict(os.environ)

    # -- lifecycle ---------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def start(self) -> "_Server":
        if self.running:
            raise RuntimeError(f"{self.name} already running (pid {self.pid})")
        # free_port() can race with another process; on the very first start pick again.
        attempts = 3 if self._auto_port and not self._started_once else 1
        for attempt in range(attempts):
            try:
                self._start_once()
                break
            except _PortTaken:
                if attempt == attempts - 1:
                    raise RuntimeError(self._failure("could not bind its port")) from None
                self._pick_new_ports()
        self._started_once = True
        return self

    def _start_once(self) -> None:
        self._prepare()
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        began = time.monotonic()
        with open(self.log_path, "ab") as log:
            # Own session: Ctrl-C in the terminal does not hit the server mid-test, and we can
            # signal the whole process group.
            self.proc = subprocess.Popen(
                self._command(), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                cwd=self.dir, env=self._env(), start_new_session=True,
            )
        _live.add(self)
        try:
            self._wait_until_answering(log_offset)
        except BaseException:
            self.kill()
            raise
        self.startup_seconds = time.monotonic() - began

    def _wait_until_answering(self, log_offset: int) -> None:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                new_log = self.log_path.read_bytes()[log_offset:].decode(errors="replace")
                if "address already in use" in new_log.lower():
                    raise _PortTaken()
                raise RuntimeError(self._failure(f"exited with code {self.proc.returncode}"))
            try:
                if self._answers():
                    return
            except (OSError, requests.RequestException, ValueError):
                pass  # not listening yet, or answering garbage while it boots
            time.sleep(0.02)
        raise RuntimeError(self._failure(f"did not answer within {self.start_timeout:.0f} s"))

    def _failure(self, what: str) -> str:
        return (f"{self.name} on {self.host}:{self.port} {what}; "
                f"last lines of {self.log_path}:\n{_tail(self.log_path)}")

    def _signal(self, sig: int) -> None:
        # Only while the leader is unreaped: its pid (= the group id) cannot be reused then.
        if self.running:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self) -> None:
        """SIGTERM (and SIGCONT, in case it is stopped), then SIGKILL after stop_timeout."""
        if self.running:
            self._signal(signal.SIGTERM)
            self._signal(signal.SIGCONT)
            try:
                self.proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        _live.discard(self)

    def kill(self) -> None:
        """SIGKILL: a crash, no chance to save state."""
        if self.proc is not None:
            self._signal(signal.SIGKILL)
            self.proc.wait()
        _live.discard(self)

    def restart(self) -> "_Server":
        """Stop and start again on the same port(s) with the same data directory."""
        self.stop()
        return self.start()

    def sigstop(self) -> None:
        """Freeze the process: the port stays open but nothing answers."""
        self._signal(signal.SIGSTOP)

    def sigcont(self) -> None:
        self._signal(signal.SIGCONT)

    def __enter__(self):
        if not self.running:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.host}:{self.port} pid={self.pid} dir={self.dir}>"


class _PortTaken(Exception):
    pass


@atexit.register
def _kill_leftovers() -> None:
    for server in list(_live):
        server.kill()


# == Mosquitto ===================================================================================

MOSQUITTO_CONFIG = """\
# written by tests/servers.py
listener {port} 127.0.0.1
allow_anonymous true
persistence true
persistence_location {dir}/
# Debian's default of 1000 queued messages per client silently drops a backlog (FACTS.md).
max_queued_messages 0
max_queued_bytes 0
log_dest file {dir}/mosquitto.log
log_type error
log_type warning
log_type notice
log_type information
log_timestamp_format %Y-%m-%dT%H:%M:%S
# Started as root, mosquitto switches to user "mosquitto", who cannot write our temp dir.
user {user}
"""


def _mqtt_connack(host: str, port: int, timeout: float = 1.0) -> bool:
    """Send a raw MQTT 3.1.1 CONNECT and report whether a CONNACK came back.

    Any CONNACK counts, including 'not authorised': the broker answers, which is all a
    readiness check may claim (configs with ACLs or passwords answer that way).
    """
    connect = bytes([0x10, 12, 0, 4]) + b"MQTT" + bytes([4, 0x02, 0, 10, 0, 0])
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(connect)
        reply = sock.recv(4)
        if reply[:1] == b"\x20":
            sock.sendall(b"\xe0\x00")  # DISCONNECT, so the broker logs a clean goodbye
            return True
    return False


class Mosquitto(_Server):
    """A private mosquitto broker.

    `config_text` replaces the whole config (TLS/ACL tests); `{port}`, `{dir}` and `{user}` in it
    (and in `extra_conf`, which is appended either way) are filled in. A config whose listener
    does not speak plain MQTT needs a subclass that overrides `_answers`.
    Mosquitto writes its persistence file on a clean stop (and every `autosave_interval`, default
    30 min), so `kill()` loses queued messages that `stop()` keeps.
    """

    name = "mosquitto"
    start_timeout = 10.0

    def __init__(self, tmpdir, port: int | None = None, extra_conf: str = "",
                 config_text: str | None = None) -> None:
        super().__init__(tmpdir, port)
        self.extra_conf = extra_conf
        self.config_text = config_text
        self.config_path = self.dir / "mosquitto.conf"
        self.binary = _find_binary("mosquitto", "apt-get install -y mosquitto",
                                   ("/usr/sbin/mosquitto",))

    def _prepare(self) -> None:
        text = MOSQUITTO_CONFIG if self.config_text is None else self.config_text
        text = text + "\n" + self.extra_conf + "\n"
        # str.replace, not str.format: mosquitto configs may contain braces of their own.
        for key, value in (("{port}", self.port), ("{dir}", self.dir),
                           ("{user}", pwd.getpwuid(os.getuid()).pw_name)):
            text = text.replace(key, str(value))
        self.config_path.write_text(text)

    def _command(self) -> list[str]:
        return [self.binary, "-c", str(self.config_path)]

    def _answers(self) -> bool:
        return _mqtt_connack(self.host, self.port)

    pause = _Server.sigstop
    resume = _Server.sigcont


# == InfluxDB 1.x ================================================================================

# The demo starts influxd with the same config: one copy, in the package.
from server.demo.services import INFLUXDB_CONFIG  # noqa: E402


def _influx_rows(body: dict) -> list[dict]:
    """Flatten an InfluxQL answer: one dict per value row, holding the series tags and columns."""
    if "error" in body:
        raise RuntimeError(f"InfluxDB error: {body['error']}")
    rows = []
    for result in body.get("results", []):
        if "error" in result:
            raise RuntimeError(f"InfluxDB error: {result['error']}")
        for series in result.get("series", []):
            tags = series.get("tags") or {}
            for values in series.get("values", []):
                rows.append({**tags, **dict(zip(series["columns"], values))})
    return rows


class InfluxDB(_Server):
    """A private influxd 1.x (Debian package `influxdb`), HTTP on `port`, RPC on `rpc_port`."""

    name = "influxd"
    start_timeout = 30.0

    def __init__(self, tmpdir, port: int | None = None, rpc_port: int | None = None) -> None:
        super().__init__(tmpdir, port)
        self.rpc_port = rpc_port or free_port()
        self.config_path = self.dir / "influxdb.conf"
        self.binary = _find_binary("influxd", "apt-get install -y influxdb",
                                   ("/usr/bin/influxd",))

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _pick_new_ports(self) -> None:
        self.port, self.rpc_port = free_port(), free_port()

    def _prepare(self) -> None:
        self.config_path.write_text(INFLUXDB_CONFIG.format(
            dir=self.dir, port=self.port, rpc_port=self.rpc_port))

    def _command(self) -> list[str]:
        return [self.binary, "-config", str(self.config_path)]

    def _answers(self) -> bool:
        return requests.get(self.url + "/ping", timeout=1).status_code == 204

    def query(self, q: str, db: str | None = None, epoch: str | None = "ms") -> list[dict]:
        # POST, because CREATE/DROP are refused over GET.
        params = {"q": q}
        if db:
            params["db"] = db
        if epoch:
            params["epoch"] = epoch
        reply = requests.post(self.url + "/query", data=params, timeout=10)
        try:
            body = reply.json()
        except ValueError:
            raise RuntimeError(f"InfluxDB {reply.status_code}: {reply.text[:500]}") from None
        return _influx_rows(body)

    def create_database(self, name: str) -> None:
        self.query(f'CREATE DATABASE "{name}"')

    def drop_database(self, name: str) -> None:
        self.query(f'DROP DATABASE "{name}"')

    def write(self, db: str, lines: str, precision: str = "ms") -> None:
        reply = requests.post(self.url + "/write", params={"db": db, "precision": precision},
                              data=lines.encode(), timeout=10)
        if reply.status_code != 204:
            raise RuntimeError(f"InfluxDB write {reply.status_code}: {reply.text[:500]}")

    pause = _Server.sigstop
    resume = _Server.sigcont


# == OctoPrint ===================================================================================

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
            # These phone home or slow start-up from ~3 s to ~1 s (FACTS.md).
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


class OctoPrint(_Server):
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
