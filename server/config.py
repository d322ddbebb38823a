"""Collector configuration: TOML -> validated structs. Every error names the key and the fix."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec

from common.tls import TLSConfig
from common.configkit import ConfigError, Invalid, Secret, Section, check_http_url, check_id, check_range, convert, load_toml, read_secret
from server.privacy import PrivacyConfig
from server.rollups.config import RollupsConfig
from server.store.layout import RetentionConfig


class MqttConfig(Section):
    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = "printfarm-collector"
    # Collectors sharing one group split the stream ($share/<group>/...); empty = no sharing.
    share_group: str = ""
    username: str | None = None
    password_file: str | None = None
    password_env: str | None = None
    keepalive: int = 30
    tls: TLSConfig | None = None
    # PUBACK a message only once its points are in InfluxDB or the spool (no loss on a crash).
    # A broker with a small per-client in-flight window throttles that (docs/scaling.md).
    ack_after_write: bool = True

    def __post_init__(self):
        check_range("port", self.port, 1, 65535)
        check_range("keepalive", self.keepalive, 5, 3600)
        if self.share_group:
            check_id("share_group", self.share_group)
        has_password = bool(self.password_file or self.password_env)
        self.password = Secret(read_secret("password", self.password_file, self.password_env)) if has_password else None


class NatsConfig(Section):
    """A NATS cluster's JetStream, consumed natively instead of an MQTT subscription
    (server/jetstream.py, docs/scaling.md): agents still speak MQTT, to any node."""
    servers: list[str] = []  # nats://host:4222 of the members; empty: read MQTT as [mqtt] says
    durable: str = "printfarm-collectors"  # collectors with the same name share the stream
    batch: int = 1000
    fetch_wait: float = 0.5  # s a fetch waits for messages before the writer is flushed
    ack_wait: float = 30.0  # s before a message taken and not acknowledged goes to another collector
    max_ack_pending: int = 50_000
    # Each collector also follows every message for its live state and alerts (core NATS, no
    # JetStream); off: they see only this collector's share, as with $share on MQTT.
    live: bool = True
    # s: the lease (a JetStream key-value entry) that lets one collector of several send alerts
    # expires this long after its holder stops renewing it; 0: every collector sends its own.
    alert_lease: float = 3.0
    username: str | None = None
    password_file: str | None = None
    password_env: str | None = None
    tls: TLSConfig | None = None

    def __post_init__(self):
        for i, url in enumerate(self.servers):
            if not url.startswith(("nats://", "tls://")) or len(url) < 8:
                raise Invalid(f"servers[{i}]", f"{url!r} is not a NATS URL", 'write "nats://host:4222" (or tls://)')
        if not re.fullmatch(r"[A-Za-z0-9_-]+", self.durable):
            raise Invalid("durable", f"{self.durable!r} may hold only letters, digits, - and _",
                          'use a name like "printfarm-collectors"')
        check_range("batch", self.batch, 1, 100_000)
        check_range("fetch_wait", self.fetch_wait, 0.05, 30)
        check_range("ack_wait", self.ack_wait, 1, 3600)
        check_range("max_ack_pending", self.max_ack_pending, 1, 10_000_000)
        if self.alert_lease:
            check_range("alert_lease", self.alert_lease, 1, 600)
        has_password = bool(self.password_file or self.password_env)
        self.password = Secret(read_secret("password", self.password_file, self.password_env)) if has_password else None


class InfluxConfig(Section):
    url: str = "http://127.0.0.1:8086"
    database: str = "printfarm"
    # InfluxDB 1.x: username + password; 2.x/3.x v1-compatibility: a token (sent as "Token ...").
    username: str | None = None
    password_file: str | None = None
    password_env: str | None = None
    token_file: str | None = None
    token_env: str | None = None
    create_database: bool = True  # 1.x only; on 2.x/3.x map a bucket to the database instead
    batch_size: int = 5000
    max_batch_bytes: int = 10_000_000  # below InfluxDB's max-body-size (25 MB by default)
    flush_interval: float = 1.0
    timeout: float = 10.0
    spool_dir: str = "/var/lib/printfarm-server/spool"
    spool_max_bytes: int = 1 << 30
    # "single": everything in ``database``, as before; "organisations": each organisation's detail
    # in a database of its own, the network's figures in ``database`` (docs/organisations.md)
    layout: str = "single"
    # the network reader's password (default: made once into <state_dir>/influx-readers/)
    network_reader_password_file: str | None = None
    network_reader_password_env: str | None = None

    def __post_init__(self):
        check_http_url("url", self.url)
        if self.layout not in ("single", "organisations"):
            raise Invalid("layout", f"{self.layout!r} is not a layout",
                          'write "single" (one database) or "organisations" (docs/organisations.md)')
        if self.layout == "organisations" and not re.fullmatch(r"[a-z0-9][a-z0-9_]*", self.database):
            raise Invalid("database", f"{self.database!r} cannot begin the organisations' database names",
                          "use lower-case letters, digits and '_', e.g. \"printfarm\"")
        check_range("batch_size", self.batch_size, 1, 100_000)
        check_range("max_batch_bytes", self.max_batch_bytes, 1024, 1 << 30)
        check_range("flush_interval", self.flush_interval, 0.01, 60)
        check_range("timeout", self.timeout, 0.5, 300)
        has_password = bool(self.password_file or self.password_env)
        self.password = Secret(read_secret("password", self.password_file, self.password_env)) if has_password else None
        has_reader = bool(self.network_reader_password_file or self.network_reader_password_env)
        self.network_reader_password = Secret(read_secret("network_reader_password", self.network_reader_password_file,
                                                          self.network_reader_password_env)) if has_reader else None
        has_token = bool(self.token_file or self.token_env)
        self.token = Secret(read_secret("token", self.token_file, self.token_env)) if has_token else None


class HttpConfig(Section):
    # The status page and /api/ need a token (server/access.py); serve it over TLS (a proxy).
    host: str = "127.0.0.1"
    port: int = 8080
    enabled: bool = True
    # Host names the API answers to (the Host header, port aside); others get 403, which stops a
    # web page that rebinds its DNS name to this machine. Add the proxy's or compose service's
    # name when there is one; "*" turns the check off.
    allowed_hosts: list[str] = msgspec.field(default_factory=lambda: ["127.0.0.1", "localhost", "::1"])
    # Without a token: "off" (401) or "status" (every printer's state only: a kiosk screen).
    public: str = "off"
    tokens_file: str | None = None  # default <state_dir>/api-tokens (printfarm-server token-create)

    def __post_init__(self):
        check_range("port", self.port, 0, 65535)
        if self.public not in ("off", "status"):
            raise Invalid("public", f"{self.public!r} is not a choice",
                          "use 'off' (a token is needed, the default) or 'status' (state only without one)")
        if not self.allowed_hosts:
            raise Invalid("allowed_hosts", "is empty", 'list the host names clients use, e.g. ["localhost"]')
        for i, name in enumerate(self.allowed_hosts):
            if not name or any(c in name for c in "/ \t@") or name.count(":") == 1:
                raise Invalid(f"allowed_hosts[{i}]", f"{name!r} is not a host name",
                              "write a bare name or address without scheme or port, e.g. 'printfarm.example.org'")


class IngestConfig(Section):
    # Printers missing from the inventory: stored with listed=false, or refused with this on.
    reject_unlisted: bool = False
    # How many unlisted printers (and agents missing from the inventory's [agents]) are tracked;
    # messages of further ones are refused and counted, so a stream of made-up IDs cannot grow
    # the collector's memory without bound.
    max_unlisted: int = 1000

    def __post_init__(self):
        check_range("max_unlisted", self.max_unlisted, 0, 1_000_000)


class ServerConfig(Section):
    inventory: str  # path of the fleet inventory TOML, relative to this file
    mqtt: MqttConfig = msgspec.field(default_factory=MqttConfig)
    nats: NatsConfig = msgspec.field(default_factory=NatsConfig)
    influx: InfluxConfig = msgspec.field(default_factory=InfluxConfig)
    http: HttpConfig = msgspec.field(default_factory=HttpConfig)
    ingest: IngestConfig = msgspec.field(default_factory=IngestConfig)
    privacy: PrivacyConfig = msgspec.field(default_factory=PrivacyConfig)
    rollups: RollupsConfig = msgspec.field(default_factory=RollupsConfig)
    retention: RetentionConfig = msgspec.field(default_factory=RetentionConfig)
    state_dir: str = "/var/lib/printfarm-server"
    log_level: str = "INFO"
    alerts: dict = {}  # validated by server.alerts.config
    reports: dict = {}  # validated by server.reports.config

    def __post_init__(self):
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise Invalid("log_level", f"{self.log_level!r} is not a level", "use DEBUG, INFO, WARNING or ERROR")


def load(path: str | Path) -> ServerConfig:
    path = Path(path)
    cfg = convert(load_toml(path), ServerConfig, str(path))
    inventory = Path(cfg.inventory)
    if not inventory.is_absolute():
        cfg.inventory = str(path.parent / inventory)
    return cfg


def from_dict(data: dict, source: str = "<dict>") -> ServerConfig:
    return convert(data, ServerConfig, source)


__all__ = ["ServerConfig", "ConfigError", "load", "from_dict"]
