"""The organisations of an inventory, as Grafana sees them.

An organisation is named by the sites that belong to it (``[sites.<id>] organisation = ...``).
Its ID is the key of its ``[organisations.<id>]`` table where the inventory has one (a site may
name the organisation by that key or by its ``name``); otherwise the ID is derived from the
display name (server/tenancy.py ``org_id``). The raw TOML is read, so an inventory with or without
``[organisations]`` tables works alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from common.configkit import ConfigError, load_toml
from server.tenancy import org_id

NETWORK_ORG_ID = 1  # Grafana's first organisation: the network's, where new users land by default


@dataclass(frozen=True)
class Org:
    id: str  # the organisation's ID in the inventory (and in its InfluxDB names)
    name: str  # display name: the Grafana organisation's name and its team's


def from_inventory(path: str | Path) -> list[Org]:
    """Every organisation that has a site (or an [organisations] table), sorted by ID."""
    data = load_toml(path)
    return from_dict(data, str(path))


def from_dict(data: dict, source: str = "<inventory>") -> list[Org]:
    tables = data.get("organisations") or {}
    found: dict[str, Org] = {}
    by_name: dict[str, str] = {}
    for key, table in tables.items():
        name = (table or {}).get("name") or key
        found[key] = Org(key, name)
        by_name[name] = key
    for site_id, site in (data.get("sites") or {}).items():
        name = (site or {}).get("organisation", "")
        if not str(name).strip():
            raise ConfigError(f"sites.{site_id}.organisation", "is missing or empty",
                              "write the site's organisation", source)
        key = name if name in found else by_name.get(name) or org_id(name)
        found.setdefault(key, Org(key, name))
    names = {}
    for org in found.values():
        if names.setdefault(org.name, org.id) != org.id:
            raise ConfigError("organisations", f"{org.name!r} is the name of both {names[org.name]!r} "
                              f"and {org.id!r}", "give each organisation its own name", source)
    return sorted(found.values(), key=lambda o: o.id)


def grafana_ids(orgs: list[Org], ids_file: str | Path | None) -> dict[str, int]:
    """Each organisation's numeric Grafana org ID, from ``ids_file`` (the JSON ``grafana-setup
    --org-ids`` writes: {"<org id>": n}). Organisations it does not name have no Grafana
    organisation yet and are left out: Grafana refuses to start with a provisioning file for an
    organisation that does not exist."""
    known = json.loads(Path(ids_file).read_text()) if ids_file else {}
    return {org.id: int(known[org.id]) for org in orgs if org.id in known}
