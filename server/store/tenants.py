"""The databases, read users and grants of the per-organisation layout (docs/organisations.md).

The collector's own InfluxDB user (``[influx] username``, an admin) creates them at start, and
again whenever a write finds a database missing (an organisation added to the inventory, a database
dropped by hand): the write is retried after, so nothing is lost. Each organisation's reader
(``tenancy.org_reader``) may read its organisation's database and nothing else; the network's
reader (``tenancy.NETWORK_READER``) the network's database. A reader's password comes from
``[organisations.<id>] reader_password_file`` / ``_env`` (the network's: ``[influx]
network_reader_password_file`` / ``_env``), or is made once into ``<state_dir>/influx-readers/<user>``
(mode 0600), where the Grafana provisioning reads it too. Passwords never reach a log.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import secrets
from pathlib import Path

from common.configkit import ConfigError, Secret
from server.inventory import UNLISTED, Inventory
from server.store import layout
from server.store.influx import InfluxError, InfluxHTTP
from server.tenancy import NETWORK_READER, org_database, org_reader

log = logging.getLogger(__name__)

READERS_DIR = "influx-readers"
_UNESCAPED_SPACE = re.compile(r"(?<!\\) ")


def reader_password(cfg, inventory: Inventory, org: str | None) -> Secret:
    """The password of ``org``'s reader (None: the network's): configured, or made once."""
    if org is None:
        return cfg.influx.network_reader_password or _made(cfg.state_dir, NETWORK_READER)
    return inventory.orgs[org].reader_password() or _made(cfg.state_dir, org_reader(org))


def _made(state_dir: str, user: str) -> Secret:
    path = Path(state_dir) / READERS_DIR / user
    try:
        return Secret(path.read_text().strip())
    except FileNotFoundError:
        pass
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(24) + "\n")
    except FileExistsError:
        pass  # made by another process meanwhile
    except OSError as exc:
        raise ConfigError("state_dir", f"cannot make the password of InfluxDB user {user} in {path.parent} "
                          f"({exc.strerror})", "make the folder writable, or give the password in a file") from None
    log.info("made a password for InfluxDB user %s in %s", user, path)
    return Secret(path.read_text().strip())


class Tenants:
    """Creates and keeps the databases, readers and grants of one inventory."""

    def __init__(self, client: InfluxHTTP, inventory: Inventory, cfg):
        self.client, self.inventory, self.cfg = client, inventory, cfg
        self.network = cfg.influx.database
        # Each reader's password, read (or made) now: a file that cannot be read is a config error at
        # start, not a failure of the writer's thread when a database is made again later.
        self._readers = {self.network: (NETWORK_READER, reader_password(cfg, inventory, None))}
        self._readers.update({self.database_of(org): (org_reader(org), reader_password(cfg, inventory, org))
                              for org in inventory.orgs})

    def database_of(self, org: str) -> str:
        return org_database(self.network, org)

    def databases(self) -> list[str]:
        """The network's database, each organisation's, and the one for unlisted printers."""
        return [self.network, *(self.database_of(org) for org in self.inventory.orgs), self.database_of(UNLISTED)]

    def ensure_all(self) -> None:
        """Every database, its retention policies, and its reader with the grant to read it."""
        if self._all_at_once():
            return
        for db in self.databases():  # one statement at a time, adjusting what is there
            self.make(db)

    def _all_at_once(self) -> bool:
        """The usual case in one request: everything is there as it should be, or nothing is.
        False where a statement failed (an RP or a password to adjust) or a reader may read
        another database: ``make`` then does each database its careful way. At every start of the
        collector, so it is cheap: one request, not ~6 per database (~0.07 CPU-s for 12)."""
        dbs = self.databases()
        readers = [(user, password, db) for db, (user, password) in self._readers.items() if db in dbs]
        statements = [f'CREATE DATABASE "{db}"' for db in dbs]
        statements += [s for db in dbs for s in layout.creations(self.cfg.retention, db)]
        statements += [f'CREATE USER "{user}" WITH PASSWORD {_quote(password.reveal())}' for user, password, _ in readers]
        statements += [f'GRANT READ ON "{db}" TO "{user}"' for user, _, db in readers]
        shows = len(statements)
        statements += [f'SHOW GRANTS FOR "{user}"' for user, _, _ in readers]
        # InfluxDB runs them in order and stops at the first that fails (its error reads "not
        # executed", the rest are left out): any error or missing answer is a False here.
        results = {r.get("statement_id"): r for r in self.client.query(";".join(statements))}
        if len(results) != len(statements) or any("error" in r for r in results.values()):
            return False
        for i, (user, _, db) in enumerate(readers):
            grants = _series_rows(results[shows + i])
            if any(row["database"] != db and row["privilege"] != "NO PRIVILEGES" for row in grants):
                return False
        log.info("databases, retention policies and readers of %d database(s) are there", len(dbs))
        return True

    def make(self, db: str) -> None:
        """Create ``db`` (if missing) with its retention policies and its reader's grant."""
        self.client.create_database(db)
        layout.ensure(self.client, self.cfg.retention, db)
        if db in self._readers:
            user, password = self._readers[db]
            self.ensure_reader(user, password, db)

    def ensure_reader(self, user: str, password: Secret, db: str) -> None:
        """``user`` exists with ``password``, may read ``db``, and nothing else."""
        quoted = _quote(password.reveal())
        if _error(self.client, f'CREATE USER "{user}" WITH PASSWORD {quoted}') == "user already exists":
            _check(self.client, f'SET PASSWORD FOR "{user}" = {quoted}', f"password of {user}")
        for row in _grants(self.client, user):
            if row["database"] != db and row["privilege"] != "NO PRIVILEGES":
                _check(self.client, f'REVOKE ALL ON "{row["database"]}" FROM "{user}"', f"grant of {user}")
                log.warning("revoked %s's grant on %s: a reader reads its own database only", user, row["database"])
        _check(self.client, f'GRANT READ ON "{db}" TO "{user}"', f"grant of {user}")


def _quote(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _error(client: InfluxHTTP, statement: str) -> str | None:
    return next((r["error"] for r in client.query(statement) if "error" in r), None)


def _check(client: InfluxHTTP, statement: str, what: str) -> None:
    error = _error(client, statement)
    if error:  # never the statement itself: it may hold a password
        raise InfluxError(f"{what}: {error}")


def _grants(client: InfluxHTTP, user: str) -> list[dict]:
    out = []
    for result in client.query(f'SHOW GRANTS FOR "{user}"'):
        if "error" in result:
            raise InfluxError(f"grants of {user}: {result['error']}")
        out += _series_rows(result)
    return out


def _series_rows(result: dict) -> list[dict]:
    return [dict(zip(series["columns"], values)) for series in result.get("series", [])
            for values in series.get("values", [])]


def routes(tenants: Tenants, network_write, lines: list[str], databases: list[str]):
    """Ingest's routes: the organisations' lines gather in ``lines``, the database of each in
    ``databases`` (the writer groups them per chunk: BatchWriter.put_many ``routed``). One list for
    every organisation, not one each: a burst's hand-over costs the same for 1 or 100 of them."""
    from server.routing import PerOrganisation

    def org_write(org: str):
        db, add_line, add_db = tenants.database_of(org), lines.append, databases.append

        def write(line: str) -> None:
            add_line(line)
            add_db(db)
        return write
    return PerOrganisation(network_write, org_write)


def alert_writer(tenants: Tenants, put):
    """``put(line, db)`` for the alert engine's points: an alert about a printer goes to its
    organisation's database (its message and file may name the job), the others to the network's."""
    from server import lineproto

    by_tag = {f",organisation={lineproto.tag(entry.name)}": tenants.database_of(org)
              for org, entry in tenants.inventory.orgs.items()}

    def write(line: str) -> None:
        head = _UNESCAPED_SPACE.split(line, 1)[0] + ","
        db = next((db for tag, db in by_tag.items() if tag + "," in head), None)
        put(line, db)
    return write


def detail_databases(network: str, inventory: Inventory) -> list[str]:
    """Every database holding organisations' detail: each organisation's, and the unlisted one."""
    return [org_database(network, org) for org in [*inventory.orgs, UNLISTED]]


def existing(client: InfluxHTTP, names: list[str]) -> tuple[str, ...]:
    """Those of ``names`` InfluxDB has (a query naming a missing database fails whole)."""
    found = set()
    for result in client.query("SHOW DATABASES"):
        if "error" in result:
            raise InfluxError(f"SHOW DATABASES: {result['error']}")
        for series in result.get("series", []):
            found |= {values[0] for values in series.get("values", [])}
    return tuple(n for n in names if n in found)


def clients_for(client: InfluxHTTP, databases) -> list[InfluxHTTP]:
    """``client`` for each of ``databases``: the same server, credentials and connections."""
    out = []
    for db in databases:
        twin = copy.copy(client)
        twin.database = db
        out.append(twin)
    return out
