"""Agent configuration: TOML -> validated structs. Every error names the key and the fix."""

from __future__ import annotations

from pathlib import Path

import msgspec

from agent.printers import DEFAULT_TYPE, PRINTER_TYPES, PrinterConfig
from agent.printers.limits import Limits
from agent.sharing import PrivacyConfig
from common.configkit import (
    ConfigError, Invalid, Secret, Section, check_id, check_range, convert, load_toml, read_secret,
)
from common.tls import TLSConfig


class BrokerConfig(Section):
    host: str = "127.0.0.1"
    port: int = 1883
    # Several members of a clustered broker, "host:port" each: the agent connects to the first that
    # answers and moves to the next when it loses it (docs/scaling.md). Empty: host and port.
    servers: list[str] = []
    username: str | None = None
    password_file: str | None = None
    password_env: str | None = None
    keepalive: int = 30
    tls: TLSConfig | None = None
    reconnect_min: float = 1.0
    reconnect_max: float = 60.0
    # s without a PUBACK (or a CONNACK) before the connection counts as gone. On a NATS cluster a node whose
    # stream leader was lost holds a publish up to 4 s, then drops the agent: 1 s tries again
    # soon after the new leader is elected (docs/scaling.md).
    ack_timeout: float = 10.0

    def __post_init__(self):
        check_range("port", self.port, 1, 65535)
        check_range("keepalive", self.keepalive, 5, 3600)
        check_range("reconnect_min", self.reconnect_min, 0.1, 60)
        check_range("reconnect_max", self.reconnect_max, self.reconnect_min, 3600)
        check_range("ack_timeout", self.ack_timeout, 1, 600)
        self.addresses = [_address(i, text, self.port) for i, text in enumerate(self.servers)] or [(self.host, self.port)]
        has_password = bool(self.password_file or self.password_env)
        self.password = Secret(read_secret("password", self.password_file, self.password_env)) if has_password else None
        if has_password and not self.username:
            raise Invalid("username", "a password is set but no username", "add username")


def _address(i: int, text: str, default_port: int) -> tuple[str, int]:
    """"host:port", "host" (the default port) or "[v6-address]:port" -> (host, port)."""
    host, port = text, str(default_port)
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else port
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
    if not host or any(c.isspace() or c in "/@[]" for c in host) or not port.isdigit() or not 0 < int(port) < 65536:
        raise Invalid(f"servers[{i}]", f"{text!r} is not host:port",
                      'write each broker as "host:port", e.g. "broker-2.example:8883"')
    return host, int(port)


class OutboxConfig(Section):
    max_messages: int = 500_000
    max_bytes: int = 200 * 1024 * 1024
    max_age_hours: float = 24 * 14

    def __post_init__(self):
        check_range("max_messages", self.max_messages, 100, 100_000_000)
        check_range("max_bytes", self.max_bytes, 64 * 1024, 1 << 40)
        check_range("max_age_hours", self.max_age_hours, 0.01, 24 * 365)


class AgentSection(Section):
    id: str
    site: str
    state_dir: str = "/var/lib/printfarm-agent"

    def __post_init__(self):
        check_id("id", self.id)
        check_id("site", self.site)


class AgentConfig(Section):
    agent: AgentSection
    broker: BrokerConfig = msgspec.field(default_factory=BrokerConfig)
    printers: list[PrinterConfig] = []
    outbox: OutboxConfig = msgspec.field(default_factory=OutboxConfig)
    limits: Limits = msgspec.field(default_factory=Limits)  # what a printer may send (docs/security.md)
    privacy: PrivacyConfig = msgspec.field(default_factory=PrivacyConfig)
    log_level: str = "INFO"

    def __post_init__(self):
        if not self.printers:
            raise Invalid("printers", "no printers configured", "add at least one [[printers]] table")
        seen: set[str] = set()
        for i, printer in enumerate(self.printers):
            if printer.id in seen:
                raise Invalid(f"printers[{i}].id", f"{printer.id!r} appears twice", "give every printer its own id")
            seen.add(printer.id)
            printer.site = printer.site or self.agent.site
            printer.limits = self.limits
        sites = {self.agent.site, *(p.site for p in self.printers)}
        for site in self.privacy.sites:
            if site not in sites:
                raise Invalid(f"privacy.sites.{site}", "is not a site of this agent's printers",
                              "use the site of [agent] or of a [[printers]] table, or remove the entry")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise Invalid("log_level", f"{self.log_level!r} is not a level", "use DEBUG, INFO, WARNING or ERROR")


def load(path: str | Path) -> AgentConfig:
    return from_dict(load_toml(path), str(path))


def from_dict(data: dict, source: str = "<dict>") -> AgentConfig:
    return convert(_with_printer_types(data, source), AgentConfig, source)


def _with_printer_types(data: dict, source: str) -> dict:
    """Give each printer table its ``type`` (default octoprint) and name a wrong one clearly."""
    printers = data.get("printers")
    if not isinstance(printers, list):
        return data
    tables = []
    for i, table in enumerate(printers):
        if isinstance(table, dict):
            table = {"type": DEFAULT_TYPE, **table}
            if table["type"] not in PRINTER_TYPES:
                raise ConfigError(f"printers[{i}].type", f"{table['type']!r} is not supported",
                                  "use one of: " + ", ".join(f'"{name}"' for name in PRINTER_TYPES), source)
        tables.append(table)
    return {**data, "printers": tables}


__all__ = ["AgentConfig", "ConfigError", "PrinterConfig", "BrokerConfig", "load", "from_dict"]
