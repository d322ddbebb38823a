"""A private InfluxDB 1.x (Debian package ``influxdb``), HTTP on ``port``, RPC on ``rpc_port``;
with ``auth=True`` it requires authentication, and an admin (``ADMIN``) is created at its first start
(InfluxDB lets the first user be made without credentials, and nothing else)."""

from __future__ import annotations

import json

import requests

from devkit.servers.ports import free_ports
from devkit.servers.process import Server, find_binary

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


def _with_extra(text: str, extra: dict[str, dict[str, object]]) -> str:
    """The config with ``extra`` settings added to their sections (new sections at the end)."""
    for section, settings in extra.items():
        lines = "".join(f"  {key} = {json.dumps(value)}\n" for key, value in settings.items())
        header = f"[{section}]\n"
        text = text.replace(header, header + lines, 1) if header in text else text + header + lines
    return text


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


ADMIN = ("admin", "admin-secret")


class InfluxDB(Server):
    """A private influxd 1.x (Debian package `influxdb`), HTTP on `port`, RPC on `rpc_port`."""

    name = "influxd"
    start_timeout = 30.0

    def __init__(self, tmpdir, port: int | None = None, rpc_port: int | None = None,
                 extra_config: dict[str, dict[str, object]] | None = None, auth: bool = False) -> None:
        """``extra_config``: more settings by section, e.g. ``{"http": {"max-body-size": 4096}}``;
        ``auth``: authentication on, with the admin ``ADMIN`` (its own queries and writes use it)."""
        super().__init__(tmpdir, port)
        self.rpc_port = rpc_port or free_ports(1, besides=(self.port,))[0]
        self.extra_config = extra_config or {}
        self.auth = auth
        self.credentials = ADMIN if auth else None
        if auth:
            self.extra_config = {**self.extra_config, "http": {**self.extra_config.get("http", {}),
                                                               "auth-enabled": True}}
        self.config_path = self.dir / "influxdb.conf"
        self.binary = find_binary("influxd", "apt-get install -y influxdb",
                                   ("/usr/bin/influxd",))

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _pick_new_ports(self) -> None:
        self.port, self.rpc_port = free_ports(2)

    def _prepare(self) -> None:
        text = INFLUXDB_CONFIG.format(dir=self.dir, port=self.port, rpc_port=self.rpc_port)
        self.config_path.write_text(_with_extra(text, self.extra_config))

    def _command(self) -> list[str]:
        return [self.binary, "-config", str(self.config_path)]

    def _answers(self) -> bool:
        if requests.get(self.url + "/ping", timeout=1).status_code != 204:
            return False
        if self.auth:  # the first user may be made without credentials; later starts find it made
            try:
                self.query(f"CREATE USER \"{ADMIN[0]}\" WITH PASSWORD '{ADMIN[1]}' WITH ALL PRIVILEGES")
            except RuntimeError as exc:
                if "already exists" not in str(exc):
                    raise
        return True

    def query(self, q: str, db: str | None = None, epoch: str | None = "ms",
              auth: tuple[str, str] | None = None) -> list[dict]:
        """``auth``: (user, password) to ask as, instead of the admin (when auth is on)."""
        # POST, because CREATE/DROP are refused over GET.
        params = {"q": q}
        if db:
            params["db"] = db
        if epoch:
            params["epoch"] = epoch
        reply = requests.post(self.url + "/query", data=params, timeout=10, auth=auth or self.credentials)
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
                              data=lines.encode(), timeout=10, auth=self.credentials)
        if reply.status_code != 204:
            raise RuntimeError(f"InfluxDB write {reply.status_code}: {reply.text[:500]}")

    pause = Server.sigstop
    resume = Server.sigcont


