"""Small panel helpers the dashboard modules share: tables with coloured state cells, transforms."""

from __future__ import annotations

from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import statetimeline, table
from grafana_foundation_sdk.models import common, dashboard

from dashboards.common import STATE_COLOURS, value_colours
from dashboards.influxql import InfluxQL, datasource, targets


def coloured_cells(panel, column: str, colours: dict[str, str]):
    """Paint one table column's cells in the colour of its value (printer state, alert state)."""
    return panel.override_by_name(column, [
        dashboard.DynamicConfigValue("custom.cellOptions", {"type": "color-background", "mode": "basic"}),
        dashboard.DynamicConfigValue("mappings", value_colours(colours)),
    ])


def renamed(panel, names: dict[str, str]):
    for column, shown in names.items():
        panel.override_by_name(column, [dashboard.DynamicConfigValue("displayName", shown)])
    return panel


def table_panel(title: str, description: str, *queries: InfluxQL) -> table.Panel:
    return (table.Panel().title(title).description(description).datasource(datasource())
            .targets(targets(*queries)).footer(cb.TableFooterOptions().show(False).reducer([])))


def state_timeline(title: str, description: str, query: InfluxQL,
                   show_value: common.VisibilityMode) -> statetimeline.Panel:
    """Printers' states over time, coloured as everywhere else."""
    return (statetimeline.Panel().title(title).datasource(datasource()).description(description)
            .targets(targets(query)).mappings(value_colours(STATE_COLOURS))
            .show_value(show_value).merge_values(True))


def transform(id_: str, options: dict) -> dashboard.DataTransformerConfig:
    return dashboard.DataTransformerConfig(id_val=id_, options=options)


def with_legend(panel):
    """Legend and tooltip set explicitly: the SDK otherwise writes a time series' options as null."""
    return (panel.legend(cb.VizLegendOptions().display_mode(common.LegendDisplayMode.LIST)
                         .placement(common.LegendPlacement.BOTTOM).show_legend(True).calcs([]))
            .tooltip(cb.VizTooltipOptions().mode(common.TooltipDisplayMode.MULTI)
                     .sort(common.SortOrder.NONE)))
