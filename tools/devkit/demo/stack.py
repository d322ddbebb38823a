"""The whole pipeline as child processes: Mosquitto, InfluxDB, simulator, collector, agents.

Shared by ``printfarm-demo`` and ``bench/fleet_scale.py``. Every part is its own process, as
in production, so each one's CPU and memory can be measured and Ctrl-C can stop them in order.
"""

from __future__ import annotations

import json
import logging
import secrets
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from devkit.demo import customers, services
from devkit.demo.agent_tables import AGENT_TABLES
from devkit.demo.roster import printer_apis, write_inventory
from devkit.pseudonym_secret import secret_file
from devkit.sim.faces.bambu import bambu_serial
from devkit.servers.nats import NatsCluster
from devkit.servers.ports import free_port
from devkit.servers.process import Children, log_tail

log = logging.getLogger(__name__)
DB = "printfarm"


@dataclass
class StackOptions:
    speed: float = 1.0
    seed: int = 1
    start: str | None = None  # simulated start, "HH:MM" local time or epoch seconds
    outages: list[str] = field(default_factory=list)  # "SITE:AFTER_MIN:MINUTES"
    outages_per_day: float = 0.3
    interval: float = 5.0  # agent poll interval, real seconds
    per_agent: int | None = None  # printers per agent; None = one agent per site
    log_level: str = "WARNING"
    customers: bool = False  # the demo's customers, accounts and bookings (devkit/demo/customers.py)
    cluster: bool = False  # a three-node NATS cluster instead of one Mosquitto (docs/scaling.md)


class Stack:
    def __init__(self, workdir: Path, fleet: dict, options: StackOptions):
        self.dir, self.fleet, self.opt = Path(workdir), fleet, options
        (self.dir / "logs").mkdir(parents=True, exist_ok=True)
        self.children = Children()
        extra = []
        if options.customers:
            extra = customers.inventory_lines()
            (self.dir / "bookings.csv").write_text(customers.bookings_csv(), encoding="utf-8")
        self.inventory = write_inventory(self.dir / "inventory.toml", fleet, extra)
        self.key_file = self.dir / "octoprint.key"
        self.key_file.write_text(secrets.token_hex(16).upper())
        self.broker = self.influx = self.bambu_broker = self.cluster = None
        self.broker_port = self.influx_port = self.http_port = 0
        self.endpoints: dict[str, dict] = {}
        self.agents: list[str] = []

    def organisation_token(self) -> tuple[str, str]:
        """(organisation ID, a new token of it) for the status page's sign-in (server/tokens.py)."""
        from server import tokens
        from server.tenancy import org_id

        org = org_id(next(iter(self.fleet.values()))[1])
        token, _ = tokens.issue(self.dir / "collector-state" / tokens.DEFAULT_NAME, org, "demo")
        return org, token

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def influx_url(self) -> str:
        return f"http://127.0.0.1:{self.influx_port}"

    def up(self, progress=lambda text: None) -> "Stack":
        if self.opt.cluster:
            progress("starting a three-node NATS cluster and InfluxDB")
            self.cluster = NatsCluster(self.dir / "nats").start()
            self.cluster.spread_leaders()  # a node's loss stalls one MQTT stream, not all three
            self.broker = self.cluster.nodes[0]
        else:
            progress("starting Mosquitto and InfluxDB")
            self.broker = services.start_mosquitto(self.dir / "mosquitto")
        self.influx = services.start_influxdb(self.dir / "influxdb")
        self.broker_port, self.influx_port = self.broker.port, self.influx.port
        serials = list(self.bambu_serials().values())
        if serials:
            progress("starting the Bambu printers' stand-in broker")
            self.bambu_broker = services.start_bambu_broker(self.dir / "bambu-broker", serials)
        progress("starting the printer simulator")
        self._start_simulator()
        progress("starting the collector")
        self.start_collector()
        progress("starting the agents")
        self._start_agents()
        return self

    def down(self) -> None:
        # Agents first (their last messages still reach the broker), then the collector
        # (flushes into InfluxDB), the simulator, and the servers last.
        for name in [n for n, _ in self.children.procs if n.startswith("agent-")]:
            self.children.stop(name)
        self.children.stop("collector", timeout=20)
        self.children.stop_all()
        for server in (self.influx, self.cluster or self.broker, self.bambu_broker):
            if server is not None:
                server.stop()

    def server_pids(self) -> dict[str, int]:
        """Every process of the stack by name: the product's and the servers'."""
        pids = {name: proc.pid for name, proc in self.children.procs}
        brokers = ([(f"nats-{n.node_name}", n) for n in self.cluster.nodes] if self.cluster
                   else [("mosquitto", self.broker)])
        for name, server in (*brokers, ("influxd", self.influx), ("mosquitto-bambu", self.bambu_broker)):
            if server is not None and server.running:
                pids[name] = server.pid
        return pids

    def _python(self, name: str, module: str, *args: str):
        return self.children.spawn(name, [sys.executable, "-m", module, *args], self._log(name))

    def _log(self, name: str) -> Path:
        return self.dir / "logs" / f"{name}.log"

    def _start_simulator(self) -> None:
        out = self.dir / "endpoints.json"
        apis = self.dir / "apis.json"
        apis.write_text(json.dumps(printer_apis(self.fleet)))
        args = ["--inventory", str(self.inventory), "--api-key-file", str(self.key_file), "--apis", str(apis),
                "--endpoints-out", str(out), "--speed", str(self.opt.speed), "--seed", str(self.opt.seed),
                "--outages-per-day", str(self.opt.outages_per_day)]
        if self.bambu_broker is not None:
            bambu = self.dir / "bambu.json"
            serials = self.bambu_serials()
            storage = {s: str(self.bambu_broker.ftps(s).root) for s in serials.values()}  # their FTPS
            bambu.write_text(json.dumps({"host": self.bambu_broker.host, "port": self.bambu_broker.port,
                                         "serials": serials, "storage": storage}))
            args += ["--bambu", str(bambu)]
        if self.opt.start:
            args += ["--start", self.opt.start]
        for outage in self.opt.outages:
            args += ["--outage", outage]
        proc = self._python("simulator", "devkit.sim", *args)
        _wait_until(out.exists, 60, "the simulator", proc, self._log("simulator"))
        self.endpoints = json.loads(out.read_text())

    def start_collector(self) -> None:
        # The port was free when picked; if something took it since, the collector says so and
        # exits, and it is started again on another port.
        for attempt in range(3):
            self.http_port = free_port()
            proc = self._python("collector", "server", "run", "-c", str(self._collector_config()))
            try:
                _wait_until(lambda: _get(self.api_url + "/api/fleet") is not None, 30, "the collector", proc,
                            self._log("collector"))
                return
            except RuntimeError as exc:
                self.children.stop("collector")
                if attempt == 2 or "cannot listen on" not in str(exc):
                    raise

    def _collector_config(self) -> Path:
        conf = self.dir / "collector.toml"
        conf.write_text(f"""\
inventory = "{self.inventory}"
state_dir = "{self.dir / 'collector-state'}"
log_level = "{self.opt.log_level}"

[mqtt]
host = "127.0.0.1"
port = {self.broker_port}
client_id = "printfarm-demo-collector"

{self._nats_table()}
[influx]
url = "{self.influx_url}"
database = "{DB}"
batch_size = 5000
flush_interval = 0.5
spool_dir = "{self.dir / 'spool'}"

[http]
host = "127.0.0.1"
port = {self.http_port}
public = "status"  # a kiosk: every printer's state; an organisation's token shows its own in full

# Agents pseudonymise users with the same secret (agent/sharing.py).
[privacy]
secret_file = "{secret_file(self.dir)}"

[reports]
network_name = "ACES — Additive Coordination in East middle Sweden"

# Alerts with no receivers: open incidents show on the status page only.
[alerts]
enabled = true

[alerts.rules.printer_down]
grace = 60
""")
        return conf

    def _nats_table(self) -> str:
        if self.cluster is None:
            return ""
        return "[nats]\nservers = [" + ", ".join(f'"{url}"' for url in self.cluster.nats_urls) + "]\n"

    def _ack_lines(self) -> list[str]:
        """On a cluster, agents leave a node that holds their publishes (docs/scaling.md)."""
        return ["ack_timeout = 1"] if self.cluster is not None else []

    def _broker_lines(self, k: int) -> list[str]:
        """An agent's [broker]: the one Mosquitto, or every node, the k-th first (agents spread)."""
        if self.cluster is None:
            return ['host = "127.0.0.1"', f"port = {self.broker_port}"]
        ports = self.cluster.mqtt_ports
        order = ports[k % len(ports):] + ports[:k % len(ports)]
        return ["servers = [" + ", ".join(f'"127.0.0.1:{port}"' for port in order) + "]"]

    def bambu_serials(self) -> dict[str, str]:
        """printer id -> serial, for the fleet's Bambu printers."""
        return {printer: bambu_serial(printer, model) for _, _, _, printers in self.fleet.values()
                for printer, model, api in printers if api == "bambu"}

    def agent_groups(self) -> list[tuple[str, str, list[str]]]:
        """(agent id, site, printers): one Pi per site, or fixed-size groups for benchmarks."""
        groups = []
        for site, (_, _, _, printers) in self.fleet.items():
            ids = [p for p, _, _ in printers]
            size = self.opt.per_agent or len(ids)
            for n in range(0, len(ids), size):
                suffix = f"-{n // size + 1}" if size < len(ids) else ""
                groups.append((f"pi-{site}{suffix}", site, ids[n:n + size]))
        return groups

    def _start_agents(self) -> None:
        timeout = min(3.0, self.opt.interval * 0.8)
        for k, (agent_id, site, printers) in enumerate(self.agent_groups()):
            conf = self.dir / f"{agent_id}.toml"
            lines = [f'log_level = "{self.opt.log_level}"', "", "[agent]", f'id = "{agent_id}"', f'site = "{site}"',
                     f'state_dir = "{self.dir / "agents" / agent_id}"', "", "[broker]", *self._broker_lines(k),
                     "reconnect_min = 0.5", "reconnect_max = 5", *self._ack_lines(), "",
                     "[privacy]", f'secret_file = "{secret_file(self.dir)}"', ""]
            for printer in printers:
                endpoint = self.endpoints[printer]
                lines += ["[[printers]]", f'id = "{printer}"', f'type = "{endpoint["api"]}"',
                          *AGENT_TABLES[endpoint["api"]](self, endpoint),
                          f"interval = {self.opt.interval}", f"timeout = {timeout}", ""]
            conf.write_text("\n".join(lines))
            self._python(f"agent-{agent_id}", "agent", "run", "-c", str(conf))
            self.agents.append(agent_id)

    def sim_time(self) -> str:
        """The simulator's clock as local (Stockholm) time, e.g. 'Thu 09:42'."""
        from datetime import datetime

        from devkit.sim.site import LOCAL

        url = next((e["url"] for e in self.endpoints.values() if "url" in e), None)
        answer = _get(url + "/sim/clock") if url else None
        return datetime.fromtimestamp(answer["now"], LOCAL).strftime("%a %H:%M") if answer else "?"

    def fleet_state(self) -> dict | None:
        return _get(self.api_url + "/api/fleet")


def _wait_until(check, timeout: float, what: str, proc, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with code {proc.returncode}; {log_path} ends:\n{log_tail(log_path)}")
        if check():
            return
        time.sleep(0.05)
    raise RuntimeError(f"{what} did not answer within {timeout:.0f} s; {log_path} ends:\n{log_tail(log_path)}")


def _get(url: str, timeout: float = 2.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return json.loads(reply.read())
    except (OSError, ValueError):
        return None
