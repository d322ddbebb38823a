"""``printfarm-server migrate-organisations``: from one database to a database per organisation.

An installation of the single layout keeps everything in ``[influx] database``. This command, run
once with the collector stopped and ``[influx] layout = "organisations"`` set (docs/organisations.md):

1. creates every organisation's database, the readers and the grants (``tenants.Tenants``);
2. copies each site's points of every retention policy into its organisation's database
   (``SELECT * INTO ... GROUP BY *``: tags stay tags, types stay types), those of sites the
   inventory does not list into the unlisted database, and the pseudonym key IDs into each;
3. checks the copies hold as many points as the originals, then rewrites every measurement of the
   network's database without file names and users: copied aside into ``<database>_migrating``
   without those fields, dropped, copied back, checked again; ``job_user`` (raw names) is dropped.

Running it again is harmless: copies overwrite their own points, and a run stopped between drop
and copy-back finds ``<database>_migrating`` and copies it back first.
"""

from __future__ import annotations

import logging
import sys

from server.inventory import UNLISTED, Inventory
from server.store.influx import InfluxError, InfluxHTTP
from server.store.layout import LONG_RP, ROLLUP_RP, TELEMETRY_RP
from server.store.tenants import Tenants

log = logging.getLogger(__name__)

DETAIL_FIELDS = {"file", "user", "user_name", "message"}  # an alert's message may name the job's file
ONLY_DETAIL = {"job_user"}  # measurements of nothing but detail: not kept in the network's database
NO_SITE = {"privacy"}  # copied whole into every organisation's database (reports read key IDs there)


class MigrationError(Exception):
    pass


def migrate(client: InfluxHTTP, inventory: Inventory, cfg, say=print) -> dict[str, int]:
    """Moves the detail out of the network's database; returns points copied per organisation."""
    network = cfg.influx.database
    tenants = Tenants(client, inventory, cfg)
    tenants.ensure_all()
    aside = f"{network}_migrating"
    if aside in _databases(client):
        say(f"found {aside} from a run that stopped: copying it back first")
        _copy_back(client, aside, network)
    present = _present(client, network)
    copied = {}
    for org in [*inventory.orgs, UNLISTED]:
        db = tenants.database_of(org)
        _same_rps(client, network, db)
        where = _sites_where(inventory, org)
        copied[org] = sum(_copy(client, network, db, rp, m, where) for rp, m in present if m not in NO_SITE)
        for rp, m in present:
            if m in NO_SITE:
                _copy(client, network, db, rp, m, "")
        say(f"{org}: {copied[org]} points copied into {db}")
    _check_copies(client, network, [tenants.database_of(o) for o in copied], present)
    _strip(client, network, aside, present, say)
    return copied


def _sites_where(inventory: Inventory, org: str) -> str:
    if org == UNLISTED:
        listed = sorted(inventory.sites)
        return f'WHERE "site" =~ /./ AND "site" !~ /^({"|".join(map(_regex, listed))})$/' if listed else \
            'WHERE "site" =~ /./'
    sites = sorted(s for s, o in inventory.org_of_site.items() if o == org)
    return f'WHERE "site" =~ /^({"|".join(map(_regex, sites))})$/' if sites else "WHERE false"


def _regex(value: str) -> str:
    return "".join(c if c.isalnum() or c in "_-" else "\\" + c for c in value)


def _copy(client, source: str, target: str, rp: str, m: str, where: str, fields: str = "*") -> int:
    if where == "WHERE false":
        return 0
    found = _rows(client, f'SELECT {fields} INTO "{target}"."{rp}"."{m}" FROM "{source}"."{rp}"."{m}" {where} GROUP BY *')
    return sum(r.get("written", 0) for r in found)


def _check_copies(client, network: str, dbs: list[str], present) -> None:
    """Every point with a site is in one of ``dbs`` now."""
    for rp, m in present:
        if m in NO_SITE:
            continue
        want = _count(client, network, rp, m, 'WHERE "site" =~ /./')
        got = sum(_count(client, db, rp, m) for db in dbs)
        if got < want:
            raise MigrationError(f"{rp}.{m}: {want} points in {network}, only {got} in the organisations' "
                                 "databases; nothing was removed — run the command again")


def _strip(client, network: str, aside: str, present, say) -> None:
    """Every measurement of the network's database without its detail fields. DROP MEASUREMENT
    removes a measurement from every retention policy (and its field keys), so each measurement's
    retention policies are copied aside together, checked, and copied back."""
    client.create_database(aside)
    _same_rps(client, network, aside)
    by_measurement: dict[str, list[str]] = {}
    for rp, m in sorted(present):
        by_measurement.setdefault(m, []).append(rp)
    for m, rps in by_measurement.items():
        keys = {rp: _field_keys(client, network, rp, m) for rp in rps}
        if m in ONLY_DETAIL:
            _rows(client, f'DROP MEASUREMENT "{m}"', db=network)
            say(f"{m}: removed from {network}")
            continue
        if not any(k & DETAIL_FIELDS for k in keys.values()):
            continue
        want = {rp: _count(client, network, rp, m) for rp in rps}
        for rp in rps:
            _copy(client, network, aside, rp, m, "", ",".join(f'"{k}"' for k in sorted(keys[rp] - DETAIL_FIELDS)))
            if _count(client, aside, rp, m) != want[rp]:
                raise MigrationError(f"{rp}.{m}: the copy aside in {aside} is short; {network} is untouched")
        _rows(client, f'DROP MEASUREMENT "{m}"', db=network)
        for rp in rps:
            _copy(client, aside, network, rp, m, "")
            if _count(client, network, rp, m) != want[rp]:
                raise MigrationError(f"{rp}.{m}: not all copied back from {aside}: run the command again")
        dropped = sorted(set().union(*keys.values()) & DETAIL_FIELDS)
        say(f"{m}: {sum(want.values())} points kept in {network} without {', '.join(dropped)}")
    client.query(f'DROP DATABASE "{aside}"')


def _copy_back(client, aside: str, network: str) -> None:
    for rp, m in _present(client, aside):
        _copy(client, aside, network, rp, m, "")
    client.query(f'DROP DATABASE "{aside}"')


def _same_rps(client, source: str, target: str) -> None:
    have = _rps(client, target)
    for rp in _rps(client, source):
        if rp not in have:
            _rows(client, f'CREATE RETENTION POLICY "{rp}" ON "{target}" DURATION INF REPLICATION 1')


# -- small queries -------------------------------------------------------------------------------

def _rows(client, q: str, db: str | None = None) -> list[dict]:
    out = []
    for result in client.query(q, db=db):
        if "error" in result:
            raise InfluxError(f"{q[:80]}: {result['error']}")
        for s in result.get("series", []):
            out += [dict(zip(s["columns"], v)) for v in s.get("values", [])]
    return out


def _databases(client) -> set[str]:
    return {r["name"] for r in _rows(client, "SHOW DATABASES")}


def _rps(client, db: str) -> list[str]:
    names = [r["name"] for r in _rows(client, f'SHOW RETENTION POLICIES ON "{db}"')]
    return [rp for rp in (LONG_RP, TELEMETRY_RP, ROLLUP_RP) if rp in names] + \
        [rp for rp in names if rp not in (LONG_RP, TELEMETRY_RP, ROLLUP_RP)]


def _measurements(client, db: str) -> list[str]:
    return [r["name"] for r in _rows(client, "SHOW MEASUREMENTS", db=db)]


def _present(client, db: str) -> set[tuple[str, str]]:
    """(rp, measurement) pairs holding points."""
    out = set()
    for rp in _rps(client, db):
        for m in _measurements(client, db):
            if _count(client, db, rp, m):
                out.add((rp, m))
    return out


def _field_keys(client, db: str, rp: str, m: str) -> set[str]:
    return {r["fieldKey"] for r in _rows(client, f'SHOW FIELD KEYS FROM "{rp}"."{m}"', db=db)}


def _count(client, db: str, rp: str, m: str, where: str = "") -> int:
    """Points of ``m``: the most any field counts (each of ours has a field every point holds)."""
    found = _rows(client, f'SELECT count(*) FROM "{db}"."{rp}"."{m}" {where}')
    return max((v for r in found for k, v in r.items() if k != "time" and isinstance(v, int)), default=0)


def run(cfg, inventory: Inventory) -> int:
    """The command: exit 0 when done, 1 when InfluxDB failed it, 2 when it may not run yet."""
    from server.store.influx import client_for
    from server.store.spool import Spool

    if cfg.influx.layout != "organisations":
        print('migrate-organisations: set [influx] layout = "organisations" first (docs/organisations.md)',
              file=sys.stderr)
        return 2
    spool = Spool(cfg.influx.spool_dir, cfg.influx.spool_max_bytes)
    if len(spool):
        print(f"migrate-organisations: the spool {spool.dir} holds {len(spool)} batch(es) not yet in InfluxDB: "
              'start the collector with layout = "single" until its health shows spool_batches 0, stop it, '
              "and run this again", file=sys.stderr)
        return 2
    try:
        copied = migrate(client_for(cfg), inventory, cfg)
    except (InfluxError, MigrationError) as exc:
        print(f"migrate-organisations: {exc}", file=sys.stderr)
        return 1
    print(f"done: {sum(copied.values())} points copied into {len(copied)} organisation database(s); "
          f"{cfg.influx.database} holds no file name and no user now")
    return 0
