"""Building blocks for end-to-end tests: an in-process collector and agent wired to real servers.

No pytest here, so benchmarks can use it too.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Callable

from agent import config as agent_config
from agent.service import Agent
from devkit.pseudonym_secret import secret_file
from server import config as server_config
from server.collector import Collector

DB = "printfarm"


def write_inventory(path: Path, printers: dict[str, str], sites: dict[str, tuple[str, str]] | None = None) -> Path:
    """printers: id -> site; sites: id -> (organisation, county)."""
    sites = sites or {site: (f"Org of {site}", "Västerbotten") for site in set(printers.values())}
    lines = []
    for site, (org, county) in sites.items():
        lines += [f"[sites.{site}]", f'organisation = "{org}"', f'county = "{county}"', ""]
    for printer, site in printers.items():
        lines += [f"[printers.{printer}]", f'site = "{site}"', 'model = "Virtual"', ""]
    path.write_text("\n".join(lines))
    return path


def collector_config(tmp: Path, broker, influx, inventory: Path, **influx_over) -> server_config.ServerConfig:
    influx_cfg = {"url": influx.url, "database": DB, "batch_size": 500, "flush_interval": 0.2,
                  "spool_dir": str(tmp / "spool")}
    influx_cfg.update(influx_over)
    # The devkit's secret where the collector looks by default (<state_dir>/pseudonym-secret), so a
    # report run with the same state_dir, and the devkit's agents, make the same pseudonyms.
    secret_file(tmp / "server-state")
    return server_config.from_dict({
        "inventory": str(inventory),
        "state_dir": str(tmp / "server-state"),
        "mqtt": {"host": broker.host, "port": broker.port, "client_id": f"collector-{tmp.name}"},
        "influx": influx_cfg,
        # State only without a token, as on a kiosk screen; tests of more take a token (server/access.py).
        "http": {"host": "127.0.0.1", "port": 0, "public": "status"},
    })


class RunningCollector:
    """A Collector on a background thread; ``stop`` flushes it like SIGTERM would."""

    def __init__(self, cfg: server_config.ServerConfig):
        self.collector = Collector(cfg)
        self.collector.start()
        self.thread = threading.Thread(target=self.collector.run, name="collector", daemon=True)
        self.thread.start()
        self._stopped = False

    def wait_connected(self, timeout: float = 10.0) -> None:
        wait_for(lambda: self.collector.subscriber.ready, timeout, "collector to connect and subscribe")

    def stop(self) -> None:
        """Idempotent, so a test may stop it (to flush) before its fixture does."""
        if self._stopped:
            return
        self._stopped = True
        self.collector.subscriber.stop()
        self.thread.join(10)
        self.collector.stop()


def agent_config_for(tmp: Path, broker, printers: list[tuple[str, str, str]], site: str = "lab",
                     interval: float = 0.5, timeout: float = 0.5, agent_id: str = "pi-1",
                     sharing: str = "full") -> agent_config.AgentConfig:
    """printers: (id, url, api_key) triples; keys are written to files like in production."""
    entries = []
    for printer_id, url, key in printers:
        key_file = tmp / f"key-{printer_id}"
        key_file.write_text(key)
        entries.append({"id": printer_id, "url": url, "api_key_file": str(key_file),
                        "interval": interval, "timeout": timeout})
    return agent_config_with(tmp, broker, entries, site, agent_id, sharing)


def agent_config_with(tmp: Path, broker, tables: list[dict], site: str = "lab",
                      agent_id: str = "pi-1", sharing: str = "full") -> agent_config.AgentConfig:
    """An agent publishing to ``broker`` that watches the printers of ``tables`` (any type)."""
    return agent_config.from_dict({
        "agent": {"id": agent_id, "site": site, "state_dir": str(tmp / f"agent-{agent_id}")},
        "broker": {"host": broker.host, "port": broker.port, "reconnect_min": 0.2, "reconnect_max": 2},
        "printers": tables,
        "privacy": {"sharing": sharing, "secret_file": str(secret_file(tmp))},
    })


def start_agent(cfg: agent_config.AgentConfig) -> Agent:
    agent = Agent(cfg)
    agent.start()
    return agent


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
