"""The InfluxDB data source of a Grafana organisation: the same definition in the generated
provisioning files and in what ``grafana-setup`` sends to Grafana's HTTP API.

Every organisation's data source has the same UID (a UID is unique within one Grafana
organisation), so the same dashboard JSON serves every organisation: which database it reads,
and with whose credentials, is the organisation's data source's business.
"""

from __future__ import annotations

from server.tenancy import NETWORK_READER, org_database, org_reader

DATASOURCE_UID = "printfarm-influx"  # the dashboards refer to this uid
DATASOURCE_TYPE = "influxdb"
NAME = "printfarm"


def reader_and_database(network_db: str, org: str | None) -> tuple[str, str]:
    """(InfluxDB user, database) of ``org``'s data source; ``None``: the network's."""
    if org is None:
        return NETWORK_READER, network_db
    return org_reader(org), org_database(network_db, org)


def definition(influx_url: str, network_db: str, org: str | None, password: str) -> dict:
    """The data source as Grafana's API and provisioning files take it (``password`` is a
    secret for the API, a ``$__file{...}`` reference in a provisioning file)."""
    user, database = reader_and_database(network_db, org)
    return {
        "name": NAME,
        "uid": DATASOURCE_UID,
        "type": DATASOURCE_TYPE,
        "access": "proxy",
        "url": influx_url,
        "user": user,
        "isDefault": True,
        "jsonData": {
            "version": "InfluxQL",
            "dbName": database,
            "httpMode": "POST",
            "timeInterval": "5s",  # agents poll every 5 s by default: no finer $__interval
        },
        "secureJsonData": {"password": password},
    }


def password_file(secrets_dir: str, org: str | None) -> str:
    """Where the reader's password is read from: one file per reader, named after the reader."""
    user, _ = reader_and_database("_", org)
    return f"{secrets_dir.rstrip('/')}/{user}"
