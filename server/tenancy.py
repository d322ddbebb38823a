"""Where each organisation's data lives in InfluxDB and who may read it.

One naming, shared by everything that needs it: the collector (which creates the databases,
users and grants and routes each point), the Grafana provisioning (each organisation's data
source) and the reports. The network database is the one configured as ``[influx] database``;
it holds the network's figures without file names or users. Each organisation's detail lives
in a database of its own beside it, readable only by that organisation's reader (and the
collector).

An organisation's ID is the key of its ``[organisations.<id>]`` table in the inventory; an
inventory without such tables names organisations by their display name only, and the ID is
then derived from that name by ``org_id``.
"""

from __future__ import annotations

import re
import unicodedata

NETWORK_READER = "reader_network"

_NOT_ID = re.compile(r"[^a-z0-9]+")


def org_id(name: str) -> str:
    """A stable ID from an organisation's display name: 'Örebro universitet' -> 'orebro-universitet'."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = _NOT_ID.sub("-", ascii_name.lower()).strip("-")
    return slug or "org"


def org_database(network_db: str, org: str) -> str:
    """The database holding ``org``'s detail (file names, pseudonymous users, customers)."""
    return f"{network_db}_{org.replace('-', '_')}"


def org_reader(org: str) -> str:
    """The InfluxDB user that may read ``org``'s database and nothing else."""
    return f"reader_{org.replace('-', '_')}"
