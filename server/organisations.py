"""The inventory's organisations: who owns each site, and so which InfluxDB database holds its detail.

```toml
[organisations.oru]                 # optional: the ID is the table's key
name = "Örebro universitet"         # what reports and dashboards show (default: the ID)
reader_password_file = "/etc/printfarm/secrets/reader-oru"   # optional, or reader_password_env

[sites.oru-makerspace]
organisation = "oru"                # an ID of [organisations] ...
# organisation = "Örebro universitet"   ... or, as before, a display name: its ID is org_id(name)
```

A site naming a display name needs no table: its organisation's ID is ``tenancy.org_id(name)``
and its name the one written. Two display names that make one ID would share a database, so they
are refused, as is an ID whose reader or database would be the network's (docs/organisations.md).
"""

from __future__ import annotations

import msgspec

from common.configkit import Invalid, Secret, check_id, read_secret
from server.tenancy import NETWORK_READER, org_database, org_id, org_reader

# Printers at a site the inventory does not list have no organisation: their detail is kept in a
# database of this ID, which no reader is granted.
UNLISTED = "unlisted"


class Organisation(msgspec.Struct, forbid_unknown_fields=True, dict=True):
    name: str = ""
    reader_password_file: str | None = None
    reader_password_env: str | None = None

    def __post_init__(self):
        # read when the inventory is loaded: an unreadable file is a config error naming the key
        given = bool(self.reader_password_file or self.reader_password_env)
        self.secret = Secret(read_secret("reader_password", self.reader_password_file,
                                         self.reader_password_env)) if given else None

    def reader_password(self) -> Secret | None:
        """The reader's password where the table names one; None: the collector makes one."""
        return self.secret


def check_table(org: str, entry: Organisation) -> None:
    """An ``[organisations.<id>]`` table on its own: its ID, and what the ID would make."""
    check_id(f"organisations.{org}", org)
    if org_reader(org) == NETWORK_READER or org == UNLISTED:
        raise Invalid(f"organisations.{org}", f"the ID {org!r} is reserved (the network's reader, or "
                      "printers no site lists)", "choose another ID for this organisation")
    if not entry.name:
        entry.name = org


def resolve(tables: dict[str, Organisation], sites: dict) -> tuple[dict[str, Organisation], dict[str, str]]:
    """Every organisation (the tables', and those sites name by display name) and each site's
    organisation ID. Raises Invalid naming the key on a clash."""
    orgs = dict(tables)
    by_name = {entry.name: org for org, entry in tables.items()}
    of_site: dict[str, str] = {}
    for site_id, site in sites.items():
        named = site.organisation
        org = named if named in tables else by_name.get(named) or _implicit(orgs, named, site_id)
        of_site[site_id] = org
    _check_databases(orgs)
    return orgs, of_site


def _implicit(orgs: dict[str, Organisation], name: str, site_id: str) -> str:
    org = org_id(name)
    known = orgs.get(org)
    if known is None:
        if org_reader(org) == NETWORK_READER or org == UNLISTED:
            raise Invalid(f"sites.{site_id}.organisation", f"{name!r} makes the reserved ID {org!r}",
                          "add an [organisations.<id>] table with another ID and this name, and name its ID here")
        orgs[org] = Organisation(name=name)
    elif known.name != name:
        raise Invalid(f"sites.{site_id}.organisation", f"{name!r} makes the ID {org!r}, which is "
                      f"{known.name!r} already", f"write {known.name!r} (or its ID) if it is the same organisation, "
                      "or add an [organisations.<id>] table for it")
    return org


def _check_databases(orgs: dict[str, Organisation]) -> None:
    """IDs differing only by '-' against '_' would share one database and one reader."""
    seen: dict[str, str] = {}
    for org in orgs:
        other = seen.setdefault(org_database("", org), org)
        if other != org:
            raise Invalid(f"organisations.{org}", f"its database and reader would be those of {other!r}",
                          "choose IDs that differ by more than '-' against '_'")


__all__ = ["Organisation", "UNLISTED", "check_table", "resolve", "org_database", "org_reader"]
