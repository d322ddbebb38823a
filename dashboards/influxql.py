"""InfluxQL targets for grafana-foundation-sdk, which ships no InfluxDB query type.

A target is always a raw InfluxQL query (``rawQuery: true``): the same text the tests run
against a real InfluxDB after substituting Grafana's macros, so what is tested is what Grafana
sends. Registering the variant lets the SDK decode our dashboards back into its types.
"""

from __future__ import annotations

import typing

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard

from server.grafana.datasource import DATASOURCE_TYPE, DATASOURCE_UID
from server.store.layout import long, rollup

FORMATS = ("time_series", "table", "logs")

# Tag filters shared by every printer query: Grafana expands a multi-value or "All" selection
# to a regex alternation, hence =~ /^$var$/.
FILTER_REGION = '"county" =~ /^$county$/ AND "organisation" =~ /^$organisation$/ AND "site" =~ /^$site$/'
FILTER_PRINTER = FILTER_REGION + ' AND "printer" =~ /^$printer$/'

# Where each measurement lives (server/store/layout.py): telemetry in the database's default
# retention policy (it may expire); what reports are made of in "autogen", named, so it is found
# whichever policy is the default; the hourly utilisation rollups in "rollups".
TELEMETRY = '"telemetry"'
STATE, JOB, ALERT, AGENT = long("state"), long("job"), long("alert"), long("agent")
ROLLUPS = rollup("utilisation")
SERVICE = long("service_counters")  # the collector's maintenance check (server/maintenance.py)


def datasource() -> dashboard.DataSourceRef:
    return dashboard.DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)


class InfluxQLQuery(cogvariants.Dataquery):
    def __init__(self, ref_id: str = "A", query: str = "", result_format: str = "table",
                 alias: str | None = None, hide: bool | None = None) -> None:
        self.ref_id = ref_id
        self.query = query
        self.result_format = result_format
        self.alias = alias
        self.hide = hide

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "refId": self.ref_id, "datasource": datasource(), "query": self.query,
            "rawQuery": True, "resultFormat": self.result_format,
        }
        if self.alias is not None:
            payload["alias"] = self.alias
        if self.hide is not None:
            payload["hide"] = self.hide
        return payload

    @classmethod
    def from_json(cls, data: dict[str, typing.Any]) -> typing.Self:
        known = {"refId", "datasource", "query", "rawQuery", "resultFormat", "alias", "hide"}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"InfluxQL target has unknown keys {sorted(unknown)}")
        if data.get("rawQuery") is not True:
            raise ValueError("InfluxQL target must be a raw query (rawQuery: true)")
        if data.get("resultFormat") not in FORMATS:
            raise ValueError(f"resultFormat {data.get('resultFormat')!r} is not one of {FORMATS}")
        return cls(data["refId"], data["query"], data["resultFormat"], data.get("alias"), data.get("hide"))


class InfluxQL(cogbuilder.Builder[InfluxQLQuery]):
    """``InfluxQL('SELECT ...').table()``; refIds are assigned A, B, ... by ``panel_targets``."""

    def __init__(self, query: str, ref_id: str = "A") -> None:
        self._internal = InfluxQLQuery(ref_id, " ".join(query.split()), "table")

    def build(self) -> InfluxQLQuery:
        return self._internal

    def table(self) -> typing.Self:
        self._internal.result_format = "table"
        return self

    def time_series(self, alias: str | None = None) -> typing.Self:
        self._internal.result_format = "time_series"
        self._internal.alias = alias
        return self


def register() -> None:
    cogruntime.register_dataquery_variant(
        cogruntime.DataqueryConfig(identifier=DATASOURCE_TYPE, from_json_hook=InfluxQLQuery.from_json))


def targets(*queries: InfluxQL) -> list[InfluxQL]:
    """Targets with refIds A, B, C ... in order."""
    for i, query in enumerate(queries):
        query._internal.ref_id = chr(ord("A") + i)
    return list(queries)
