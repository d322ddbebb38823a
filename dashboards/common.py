"""Pieces every printfarm dashboard shares: variables, state colours, annotations, layout."""

from __future__ import annotations

import typing

from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import dashboard

from dashboards.influxql import ALERT, JOB, TELEMETRY, datasource

# One colour per printer state (common/protocol.py STATES), the same on every panel.
STATE_COLOURS = {
    "printing": "blue",
    "finishing": "super-light-blue",
    "paused": "yellow",
    "cancelling": "orange",
    "idle": "green",
    "error": "red",
    "unreachable": "purple",
    "offline": "text",
}
ALERT_COLOURS = {"firing": "red", "repeat": "orange", "resolved": "green"}
JOB_COLOURS = {"done": "green", "failed": "red", "cancelled": "orange", "started": "blue",
               "paused": "yellow", "resumed": "blue", "connected": "text", "disconnected": "purple"}


def value_colours(colours: dict[str, str]) -> list[dashboard.ValueMapping]:
    return [dashboard.ValueMap(options={
        value: dashboard.ValueMappingResult(color=colour, index=i)
        for i, (value, colour) in enumerate(colours.items())})]


# -- template variables ----------------------------------------------------------------------

def _tag_variable(key: str, label: str, where: str = "", source: str = TELEMETRY) -> dash.QueryVariable:
    query = f'SHOW TAG VALUES FROM {source} WITH KEY = "{key}"'
    if where:
        query += f" WHERE {where}"
    return (dash.QueryVariable(key).label(label).datasource(datasource()).query(query)
            .multi(True).include_all(True)
            .current(dashboard.VariableOption(selected=True, text="All", value="$__all"))
            .refresh(dashboard.VariableRefresh.ON_DASHBOARD_LOAD)
            .sort(dashboard.VariableSort.ALPHABETICAL_CASE_INSENSITIVE_ASC))


def region_variables(source: str = TELEMETRY) -> list[dash.QueryVariable]:
    """county -> organisation -> site, each narrowed by the ones before it. Dashboards over long
    periods take the values from the rollups: telemetry may have expired."""
    return [
        _tag_variable("county", "County", source=source),
        _tag_variable("organisation", "Organisation", '"county" =~ /^$county$/', source),
        _tag_variable("site", "Site", '"county" =~ /^$county$/ AND "organisation" =~ /^$organisation$/', source),
    ]


def printer_variable() -> dash.QueryVariable:
    return _tag_variable("printer", "Printer", '"county" =~ /^$county$/ AND "organisation" =~ '
                         '/^$organisation$/ AND "site" =~ /^$site$/')


# -- annotations -----------------------------------------------------------------------------

class _InfluxAnnotationQuery(dashboard.AnnotationQuery):
    """The SDK types an annotation target as Grafana's built-in one ("TODO.. this should just
    be a normal query target", says its model); InfluxDB's target holds the InfluxQL query and
    the columns that become the annotation's text and tags."""

    def __init__(self, query: str = "", text_column: str = "", tags_column: str = "", **kwargs):
        super().__init__(**kwargs)
        self.query = " ".join(query.split())
        self.text_column = text_column
        self.tags_column = tags_column

    def to_json(self) -> dict[str, object]:
        payload = super().to_json()
        payload["target"] = {
            "refId": "Anno", "query": self.query, "rawQuery": True, "resultFormat": "table",
            "fromAnnotations": True, "textColumn": self.text_column, "tagsColumn": self.tags_column,
        }
        return payload


class InfluxAnnotation(cogbuilder.Builder[dashboard.AnnotationQuery]):
    def __init__(self, name: str, query: str, text_column: str, tags_column: str, colour: str):
        self._internal = _InfluxAnnotationQuery(
            query, text_column, tags_column, name=name, datasource=datasource(), enable=True,
            hide=False, icon_color=colour)

    def build(self) -> dashboard.AnnotationQuery:
        return self._internal


def alert_annotation(filters: str) -> InfluxAnnotation:
    query = f"""SELECT "message", "printer", "rule", "severity" FROM {ALERT}
                WHERE $timeFilter AND "state" = 'firing' AND {filters}"""
    return InfluxAnnotation("Alerts firing", query, "message", "printer,rule,severity", "red")


def failed_job_annotation(filters: str) -> InfluxAnnotation:
    query = f"""SELECT "error", "file", "printer" FROM {JOB}
                WHERE $timeFilter AND "kind" = 'failed' AND {filters}"""
    return InfluxAnnotation("Failed jobs", query, "error", "printer,file", "orange")


# -- dashboards ------------------------------------------------------------------------------

def base(uid: str, title: str, description: str, time_from: str = "now-6h") -> dash.Dashboard:
    return (dash.Dashboard(title).uid(uid).description(description).tags(["printfarm"])
            .timezone("browser").time(time_from, "now").refresh("30s")
            .tooltip(dashboard.DashboardCursorSync.CROSSHAIR).readonly())


class Grid:
    """Places panels left to right in rows of 24 columns, so no panel overlaps another."""

    def __init__(self) -> None:
        self.x = self.y = self.row_h = 0

    def place(self, panel: typing.Any, w: int, h: int) -> typing.Any:
        if self.x + w > 24:
            self.x, self.y, self.row_h = 0, self.y + self.row_h, 0
        panel.grid_pos(dashboard.GridPos(h=h, w=w, x=self.x, y=self.y))
        self.x += w
        self.row_h = max(self.row_h, h)
        return panel

