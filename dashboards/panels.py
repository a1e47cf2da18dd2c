"""Panel constructors with the project's defaults (datasource, colours, reducers).

Each takes its SQL and returns an SDK builder; the boards only place them.

>>> from dashboards.grafana import to_json
>>> from grafana_foundation_sdk.builders.dashboard import Dashboard
>>> board = to_json(Dashboard("t").uid("t").with_panel(big_number("Open", "SELECT 1 AS v", steps=((None, "green"),))))
>>> panel = board["panels"][0]
>>> panel["type"], panel["targets"][0]["format"], panel["options"]["reduceOptions"]["calcs"]
('stat', 1, ['lastNotNull'])
"""

from __future__ import annotations

from collections.abc import Sequence

from grafana_foundation_sdk.builders import bargauge, stat, statetimeline, table, timeseries
from grafana_foundation_sdk.builders.common import (
    ReduceDataOptions,
    StackingConfig,
    TableSortByFieldState,
    VizLegendOptions,
)
from grafana_foundation_sdk.models import common as common_model
from grafana_foundation_sdk.models import dashboard as dashboard_model

from dashboards.grafana import DATASOURCE, TABLE, TIME_SERIES, ClickHouseQuery, color_from_thresholds, thresholds

Steps = Sequence[tuple[float | None, str]]
# The stream's window: panels never ask for finer buckets than the data has.
MIN_INTERVAL = "10s"


def _last_value() -> ReduceDataOptions:
    return ReduceDataOptions().calcs(["lastNotNull"]).values(False)


def big_number(title: str, sql: str, *, steps: Steps, unit: str = "short", description: str = "",
               series: bool = False, decimals: int | None = None, width: int = 4, height: int = 5) -> stat.Panel:
    """A stat panel an exec reads in two seconds: one number, coloured by thresholds.

    ``series`` queries return a time series (sparkline, last value shown);
    the others return a single row.
    """
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(ClickHouseQuery(sql, TIME_SERIES if series else TABLE))
        .interval(MIN_INTERVAL)
        .unit(unit)
        .thresholds(thresholds(*steps))
        .color_scheme(color_from_thresholds())
        .color_mode(common_model.BigValueColorMode.BACKGROUND)
        .graph_mode(common_model.BigValueGraphMode.AREA if series else common_model.BigValueGraphMode.NONE)
        .text_mode(common_model.BigValueTextMode.VALUE)
        .reduce_options(_last_value())
        .span(width)
        .height(height)
    )
    if decimals is not None:
        panel = panel.decimals(decimals)
    return panel


def series_panel(title: str, queries: Sequence[str], *, unit: str = "short", description: str = "",
                 width: int = 12, height: int = 8, stacked: bool = False, bars: bool = False) -> timeseries.Panel:
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .interval(MIN_INTERVAL)
        .unit(unit)
        .legend(VizLegendOptions().show_legend(True).display_mode(common_model.LegendDisplayMode.LIST)
                .placement(common_model.LegendPlacement.BOTTOM))
        .span(width)
        .height(height)
    )
    for index, sql in enumerate(queries):
        panel = panel.with_target(ClickHouseQuery(sql, TIME_SERIES).ref_id("ABCDEFGH"[index]))
    if stacked:
        panel = panel.stacking(StackingConfig().mode(common_model.StackingMode.NORMAL))
    if bars:
        panel = panel.draw_style(common_model.GraphDrawStyle.BARS).fill_opacity(60)
    return panel


def status_line(title: str, sql: str, *, steps: Steps, unit: str, description: str = "",
                width: int = 24, height: int = 7) -> statetimeline.Panel:
    """One coloured line per series (a region), green to red by thresholds."""
    return (
        statetimeline.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(ClickHouseQuery(sql, TIME_SERIES))
        .interval(MIN_INTERVAL)
        .unit(unit)
        .thresholds(thresholds(*steps))
        .color_scheme(color_from_thresholds())
        .show_value(common_model.VisibilityMode.NEVER)
        .merge_values(False)
        .span(width)
        .height(height)
    )


def gauge_bars(title: str, sql: str, *, steps: Steps, unit: str, description: str = "",
               width: int = 8, height: int = 8, maximum: float | None = None) -> bargauge.Panel:
    panel = (
        bargauge.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(ClickHouseQuery(sql, TABLE))
        .unit(unit)
        .thresholds(thresholds(*steps))
        .color_scheme(color_from_thresholds())
        .reduce_options(ReduceDataOptions().values(True).calcs(["lastNotNull"]))
        .span(width)
        .height(height)
    )
    if maximum is not None:
        panel = panel.min(0).max(maximum)
    return panel


def sortable_table(title: str, sql: str, *, description: str = "", width: int = 24, height: int = 10,
                   sort_by: str | None = None, units: dict[str, str] | None = None) -> table.Panel:
    """A table analysts sort by clicking a header and filter per column."""
    panel = (
        table.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .with_target(ClickHouseQuery(sql, TABLE))
        .filterable(True)
        .show_header(True)
        .span(width)
        .height(height)
    )
    if sort_by:
        panel = panel.sort_by([TableSortByFieldState().display_name(sort_by).desc(True)])
    for column, unit in (units or {}).items():
        panel = panel.override_by_name(column, [dashboard_model.DynamicConfigValue(id_val="unit", value=unit)])
    return panel
