"""A private InfluxDB 1.x (Debian package ``influxdb``), HTTP on ``port``, RPC on ``rpc_port``."""

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


class InfluxDB(Server):
    """A private influxd 1.x (Debian package `influxdb`), HTTP on `port`, RPC on `rpc_port`."""

    name = "influxd"
    start_timeout = 30.0

    def __init__(self, tmpdir, port: int | None = None, rpc_port: int | None = None,
                 extra_config: dict[str, dict[str, object]] | None = None,
                 admin: tuple[str, str] | None = None) -> None:
        """``extra_config``: more settings by section, e.g. ``{"http": {"max-body-size": 4096}}``.
        ``admin``: (user, password): authentication on, that admin made at the first start, and
        ``query``/``write`` sent as that admin unless they are given other credentials."""
        super().__init__(tmpdir, port)
        self.rpc_port = rpc_port or free_ports(1, besides=(self.port,))[0]
        self.extra_config = extra_config or {}
        self.admin = admin
        if admin:
            self.extra_config.setdefault("http", {})["auth-enabled"] = True
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
        return requests.get(self.url + "/ping", timeout=1).status_code == 204

    def _start_once(self) -> None:
        super()._start_once()
        if self.admin and not self._started_once:
            # With authentication on, InfluxDB lets the first user be made without credentials.
            user, password = self.admin
            self.query(f"CREATE USER \"{user}\" WITH PASSWORD '{password}' WITH ALL PRIVILEGES", auth=False)

    def query(self, q: str, db: str | None = None, epoch: str | None = "ms",
              auth: tuple[str, str] | bool | None = None) -> list[dict]:
        """``auth``: (user, password) to query as; default the admin (if any); False: none."""
        # POST, because CREATE/DROP are refused over GET.
        params = {"q": q}
        if db:
            params["db"] = db
        if epoch:
            params["epoch"] = epoch
        credentials = None if auth is False else auth or self.admin
        reply = requests.post(self.url + "/query", data=params, auth=credentials, timeout=10)
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
                              data=lines.encode(), auth=self.admin, timeout=10)
        if reply.status_code != 204:
            raise RuntimeError(f"InfluxDB write {reply.status_code}: {reply.text[:500]}")

    pause = Server.sigstop
    resume = Server.sigcont


