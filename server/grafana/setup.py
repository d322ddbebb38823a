"""``printfarm-server grafana-setup``: the Grafana organisations, teams, data sources and
dashboards of docs/grafana-organisations.md, made through Grafana's HTTP API (grafana-client).

Idempotent: what exists is found (by name, or by the data source's UID) and left or updated in
place, never made twice, so it can run after every change to the inventory. The network lives in
Grafana's first organisation; each organisation of the inventory gets one of its own, named as in
the inventory, with a team of the same name (for the lab manager to add people to) and the
data source reading its own database as its own reader. ``--provisioned`` makes only the
organisations and teams, for installations whose data sources and dashboards come from the
generated provisioning files; ``--org-ids FILE`` records the Grafana org IDs for the generator.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from common.configkit import ConfigError, Invalid, read_secret
from server.grafana import datasource, orgs

log = logging.getLogger(__name__)

MESSAGE = "printfarm-server grafana-setup"
PASSWORD_ENV = "PRINTFARM_GRAFANA_PASSWORD"


class GrafanaError(Exception):
    """Grafana could not be reached or refused a request: one line for the operator."""


@dataclass
class Done:
    """What a run found and changed, for its summary."""
    lines: list[str] = field(default_factory=list)
    ids: dict[str, int] = field(default_factory=dict)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("grafana-setup")
    group.add_argument("--grafana-url", default="http://127.0.0.1:3000", help="Grafana's URL")
    group.add_argument("--grafana-user", default="admin", help="a Grafana server admin")
    group.add_argument("--grafana-password-file",
                       help=f"file holding that admin's password (default: environment variable {PASSWORD_ENV})")
    group.add_argument("--readers-dir", type=Path,
                       help="folder holding each InfluxDB reader's password in a file named after the reader")
    group.add_argument("--grafana-influx-url", help="InfluxDB's URL as Grafana reaches it (default [influx] url)")
    group.add_argument("--dashboards", type=Path, default=Path("dashboards/json"),
                       help="the generated dashboards (folders organisation/ and network/)")
    group.add_argument("--provisioned", action="store_true",
                       help="organisations and teams only: data sources and dashboards come from provisioning files")
    group.add_argument("--org-ids", type=Path, help="write {org id: Grafana org id} here, for dashboards.generate")


def run(cfg, args) -> int:
    try:
        members = orgs.from_inventory(cfg.inventory)
        password = _secret("grafana_password", args.grafana_password_file, PASSWORD_ENV)
        readers = None if args.provisioned else _reader_passwords(args.readers_dir, members)
        boards = None if args.provisioned else _dashboards(args.dashboards)
    except ConfigError as exc:
        print(f"config error: {exc.line()}", file=sys.stderr)
        return 2
    influx_url = args.grafana_influx_url or cfg.influx.url
    try:
        done = Setup(args.grafana_url, (args.grafana_user, password), influx_url, cfg.influx.database).run(
            members, readers, boards)
    except GrafanaError as exc:
        print(f"grafana-setup: {exc}", file=sys.stderr)
        return 1
    for line in done.lines:
        print(line)
    if args.org_ids:
        args.org_ids.write_text(json.dumps(done.ids, indent=2, sort_keys=True) + "\n")
        print(f"wrote {args.org_ids}")
    return 0


def _secret(key: str, file: str | None, env: str) -> str:
    try:
        return read_secret(key, file, env)
    except Invalid as exc:
        name, problem, fix = str(exc).split("\x1f")
        raise ConfigError(name, problem, fix) from None


def _reader_passwords(folder: Path | None, members: list[orgs.Org]) -> dict[str | None, str]:
    if folder is None:
        raise ConfigError("--readers-dir", "is missing", "name the folder of the InfluxDB readers' password files "
                          "(or pass --provisioned)")
    out = {}
    for org in [None, *(m.id for m in members)]:
        path = datasource.password_file(str(folder), org)
        out[org] = _secret(f"reader {Path(path).name} password", path, None)
    return out


def _dashboards(folder: Path) -> dict[str, list[dict]]:
    """'organisation' and 'network' -> the dashboard JSON documents to upload."""
    out = {}
    for kind in ("organisation", "network"):
        files = sorted((folder / kind).glob("*.json"))
        if not files:
            raise ConfigError("--dashboards", f"{folder / kind} holds no dashboards",
                              "pass the dashboards/json folder of the repository (python -m dashboards.generate)")
        out[kind] = [json.loads(f.read_text()) for f in files]
    return out


class Setup:
    def __init__(self, url: str, credential: tuple[str, str], influx_url: str, network_db: str,
                 timeout: float = 10.0) -> None:
        self.url, self.credential, self.timeout = url.rstrip("/"), credential, timeout
        self.influx_url, self.network_db = influx_url, network_db

    def run(self, members: list[orgs.Org], readers: dict | None, boards: dict | None) -> Done:
        done = Done()
        network = self._api(orgs.NETWORK_ORG_ID)
        if readers is not None and self._datasource(network, None, readers[None], done, "network"):
            self._upload(network, boards["network"], done, "network")
        for org in members:
            grafana_id = self._org(network, org, done)
            done.ids[org.id] = grafana_id
            api = self._api(grafana_id)
            self._team(api, org, done)
            if readers is not None and self._datasource(api, org.id, readers[org.id], done, org.name):
                self._upload(api, boards["organisation"], done, org.name)
        return done

    # -- one Grafana organisation's API -----------------------------------------------------

    def _api(self, grafana_org: int):
        from grafana_client import GrafanaApi

        url = urlparse(self.url)
        # Every request of this client acts in that organisation (X-Grafana-Org-Id); the admin
        # who creates an organisation is a member of it.
        return GrafanaApi(self.credential, host=url.hostname, port=url.port, protocol=url.scheme,
                          url_path_prefix=url.path.strip("/") + "/" if url.path.strip("/") else "",
                          timeout=self.timeout, organization_id=grafana_org)

    def _call(self, what: str, request, *args, missing_ok: bool = False, **kwargs):
        """``request(*args, **kwargs)``; a 404 is None where ``missing_ok``, every other failure
        a GrafanaError saying what was being done."""
        from grafana_client.client import (GrafanaClientError, GrafanaException, GrafanaTimeoutError,
                                           GrafanaUnauthorizedError)
        from niquests.exceptions import ConnectionError as Unreachable

        try:
            return request(*args, **kwargs)
        except GrafanaUnauthorizedError:
            raise GrafanaError(f"Grafana at {self.url} refused the credentials of {self.credential[0]!r} "
                               f"({what}): check --grafana-user and the password (a server admin, and a "
                               "member of any organisation made by hand)") from None
        except GrafanaTimeoutError:
            raise GrafanaError(f"Grafana at {self.url} did not answer in {self.timeout:g} s ({what})") from None
        except GrafanaClientError as exc:
            if exc.status_code == 404 and missing_ok:
                return None
            raise GrafanaError(f"Grafana at {self.url} refused {what}: {exc.status_code} "
                               f"{_message(exc.response)}") from None
        except GrafanaException as exc:  # 5xx, or a transport error the client wrapped
            raise GrafanaError(f"Grafana at {self.url} failed {what}: {exc.message}") from None
        except Unreachable as exc:
            raise GrafanaError(f"Grafana does not answer at {self.url} ({what}): {exc.__class__.__name__}; "
                               "is it running, and is --grafana-url right?") from None

    # -- the steps ---------------------------------------------------------------------------

    def _org(self, network, org: orgs.Org, done: Done) -> int:
        found = self._call(f"searching organisation {org.name!r}", network.client.GET, "/orgs",
                           params={"name": org.name})
        match = [o for o in found or [] if o.get("name") == org.name]
        if match:
            done.lines.append(f"organisation {org.name}: exists (Grafana org {match[0]['id']})")
            return match[0]["id"]
        created = self._call(f"creating organisation {org.name!r}", network.client.POST, "/orgs",
                             json={"name": org.name})
        done.lines.append(f"organisation {org.name}: created (Grafana org {created['orgId']})")
        return created["orgId"]

    def _team(self, api, org: orgs.Org, done: Done) -> None:
        found = self._call(f"searching team {org.name!r} in its organisation", api.client.GET, "/teams/search",
                           params={"name": org.name})
        if any(t.get("name") == org.name for t in (found or {}).get("teams") or []):
            done.lines.append(f"  team {org.name}: exists")
            return
        self._call(f"creating team {org.name!r}", api.client.POST, "/teams", json={"name": org.name})
        done.lines.append(f"  team {org.name}: created")

    def _datasource(self, api, org: str | None, password: str, done: Done, where: str) -> bool:
        """Make or update the data source; False where provisioning files own it (and the
        dashboards: Grafana refuses API changes to what a file provisioned)."""
        body = datasource.definition(self.influx_url, self.network_db, org, password)
        uid = datasource.DATASOURCE_UID
        current = self._call(f"reading data source {uid} of {where}", api.client.GET, f"/datasources/uid/{uid}",
                             missing_ok=True)
        if current is not None and current.get("readOnly"):
            done.lines.append(f"  data source and dashboards of {where}: provisioned by files, left to them")
            return False
        if current is None:
            self._call(f"creating data source of {where}", api.client.POST, "/datasources", json=body)
            done.lines.append(f"  data source of {where}: created ({body['user']} on {body['jsonData']['dbName']})")
        else:
            # Put it back as defined (the password may have changed); the version guards
            # against overwriting a concurrent edit.
            update = {**body, "version": current.get("version", 0)}
            self._call(f"updating data source of {where}", api.client.PUT, f"/datasources/uid/{uid}", json=update)
            done.lines.append(f"  data source of {where}: updated ({body['user']} on {body['jsonData']['dbName']})")
        return True

    def _upload(self, api, boards: list[dict], done: Done, where: str) -> None:
        for board in boards:
            board = {**board, "id": None}  # matched by uid; the id is Grafana's own
            self._call(f"saving dashboard {board['uid']} of {where}", api.client.POST, "/dashboards/db",
                       json={"dashboard": board, "overwrite": True, "message": MESSAGE})
        done.lines.append(f"  dashboards of {where}: {len(boards)} saved")


def _message(response) -> str:
    return response.get("message", "") if isinstance(response, dict) else str(response)[:200]
