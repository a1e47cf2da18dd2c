"""Thin helpers over ``grafana-foundation-sdk`` for ClickHouse panels.

The SDK (Grafana Labs' own, generated from Grafana's schemas, pinned to the
11.6 build in ``pyproject.toml``) has no builder for the ClickHouse plugin's
query, so :class:`ClickHouseQuery` supplies one: the SQL-editor target of the
official ``grafana-clickhouse-datasource`` plugin (v4), with ``format`` as the
plugin's numeric enum (0 time series, 1 table).

>>> query = ClickHouseQuery("SELECT 1 AS value", TABLE).ref_id("B").build()
>>> sorted(query.to_json())
['datasource', 'editorType', 'format', 'pluginVersion', 'queryType', 'rawSql', 'refId']
>>> query.to_json()["format"], query.to_json()["queryType"]
(1, 'table')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Self

from grafana_foundation_sdk.builders import dashboard as dashboard_builder
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import dashboard as dashboard_model

PLUGIN_ID = "grafana-clickhouse-datasource"
PLUGIN_VERSION = "4.10.1"
DATASOURCE_UID = "outagewatch-clickhouse"
DATASOURCE = dashboard_model.DataSourceRef(type_val=PLUGIN_ID, uid=DATASOURCE_UID)

# The plugin's Format enum (sqlutil.FormatQueryOption).
TIME_SERIES = 0
TABLE = 1
_QUERY_TYPES = {TIME_SERIES: "timeseries", TABLE: "table"}


@dataclass
class ClickHouseTarget(cogvariants.Dataquery):
    """A built SQL-editor target; ``to_json`` is what Grafana stores in the panel."""

    raw_sql: str
    format: int
    ref_id: str = "A"
    hide: bool = False

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "datasource": DATASOURCE.to_json(),
            "editorType": "sql",
            "format": self.format,
            "pluginVersion": PLUGIN_VERSION,
            "queryType": _QUERY_TYPES[self.format],
            "rawSql": self.raw_sql,
            "refId": self.ref_id,
        }
        if self.hide:
            payload["hide"] = True
        return payload


class ClickHouseQuery(cogbuilder.Builder[cogvariants.Dataquery]):
    """Builder for :class:`ClickHouseTarget`, usable with any SDK panel's ``with_target``."""

    def __init__(self, raw_sql: str, format: int = TIME_SERIES) -> None:
        if format not in _QUERY_TYPES:
            raise ValueError(f"format must be TIME_SERIES (0) or TABLE (1), got {format!r}")
        self._target = ClickHouseTarget(raw_sql=raw_sql.strip(), format=format)

    def ref_id(self, ref_id: str) -> Self:
        self._target.ref_id = ref_id
        return self

    def build(self) -> ClickHouseTarget:
        return self._target


@dataclass
class _SqlAnnotationTarget:
    """An annotation query target for the plugin (the SDK's AnnotationTarget is Grafana's built-in one)."""

    raw_sql: str

    def to_json(self) -> dict[str, object]:
        return ClickHouseTarget(self.raw_sql.strip(), TABLE, ref_id="Anno").to_json()


class SqlAnnotationTarget(cogbuilder.Builder[Any]):
    def __init__(self, raw_sql: str) -> None:
        self._target = _SqlAnnotationTarget(raw_sql)

    def build(self) -> Any:
        return self._target


def annotation(name: str, raw_sql: str, color: str = "red") -> dashboard_builder.AnnotationQuery:
    """Annotations from SQL returning ``time``, ``timeEnd``, ``text``, ``tags``."""
    return (
        dashboard_builder.AnnotationQuery()
        .name(name)
        .datasource(DATASOURCE)
        .enable(True)
        .icon_color(color)
        .target(SqlAnnotationTarget(raw_sql))
    )


def thresholds(*steps: tuple[float | None, str]) -> dashboard_builder.ThresholdsConfig:
    """Absolute thresholds; the first step's value must be None (the base colour)."""
    return (
        dashboard_builder.ThresholdsConfig()
        .mode(dashboard_model.ThresholdsMode.ABSOLUTE)
        .steps([dashboard_model.Threshold(value=value, color=color) for value, color in steps])
    )


def color_from_thresholds() -> dashboard_builder.FieldColor:
    return dashboard_builder.FieldColor().mode(dashboard_model.FieldColorModeId.THRESHOLDS)


def grid(x: int, y: int, w: int, h: int) -> dashboard_model.GridPos:
    return dashboard_model.GridPos(x=x, y=y, w=w, h=h)


def query_variable(name: str, label: str, raw_sql: str, *, multi: bool = False,
                   include_all: bool = False) -> dashboard_builder.QueryVariable:
    """A query variable refreshed on time-range change; its dropdown is searchable by typing."""
    variable = (
        dashboard_builder.QueryVariable(name)
        .label(label)
        .datasource(DATASOURCE)
        .query(raw_sql.strip())
        .refresh(dashboard_model.VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(dashboard_model.VariableSort.ALPHABETICAL_ASC)
        .multi(multi)
        .include_all(include_all)
    )
    return variable


def to_json(board: dashboard_builder.Dashboard) -> dict[str, Any]:
    """The dashboard as Grafana stores it (plain JSON types only)."""
    import json

    from grafana_foundation_sdk.cog.encoder import JSONEncoder

    built = board.build()
    data: dict[str, Any] = json.loads(json.dumps(built, cls=JSONEncoder))
    # Stable panel ids in layout order (rows' nested panels included): links and
    # provisioning diffs rely on them not moving between builds.
    next_id = 1
    for panel in data.get("panels", []):
        for item in [panel, *panel.get("panels", [])]:
            item["id"] = next_id
            next_id += 1
    # Query variables keep the SQL in ``definition`` too: Grafana's variable list shows it.
    for variable in data.get("templating", {}).get("list", []):
        if variable.get("type") == "query" and isinstance(variable.get("query"), str):
            variable.setdefault("definition", variable["query"])
    return data
