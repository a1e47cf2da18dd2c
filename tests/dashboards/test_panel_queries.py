"""Every query the shipped dashboards send, expanded as Grafana and the plugin
expand it, runs on ClickHouse 18.16 (as the read-only user) and on current
ClickHouse (chdb), and returns what its panel type needs, with values that
match the generated data."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from dashboards import provisioning
from dashboards.catalog import PanelQuery, queries
from dashboards.grafana import TIME_SERIES
from outagewatch.panelcheck.macros import ALL, TimeRange, VariableValue, expand, grafana_interval_seconds
from outagewatch.panelcheck.sample_history import CORRECTED_LISTENERS, OUTAGE_ROOM, SERVICES
from tests.dashboards.sample import END, PLAN, Result, Runner

RANGES = {"15m": 15 * 60, "6h": 6 * 3600, "7d": 7 * 86400}
VARIABLES: dict[str, VariableValue] = {
    "room": OUTAGE_ROOM, "detector": "errors", "cluster": ALL, "service": ALL, "metric": "cpu",
}
NUMERIC = ("Float", "UInt", "Int")

# Queries with nothing to show over a range of the sample data (no incident starts in the last 15 min).
EMPTY_BY_DESIGN = {("15m", "outagewatch-incidents/Incidents started/A")}

ALL_QUERIES: list[PanelQuery] = [q for board in provisioning.dashboards() for q in queries(board)]


def _numeric(type_name: str) -> bool:
    return type_name.startswith(NUMERIC)


def check_shape(query: PanelQuery, result: Result, may_be_empty: bool = False) -> None:
    """What Grafana needs from each kind of query, beyond "it ran"."""
    columns, rows = result
    names = [name for name, _ in columns]
    types = [type_name for _, type_name in columns]
    where = f"{query.name}: columns {columns}"
    if query.kind == "variable":
        assert len(columns) == 1 and types[0] == "String", where
        assert rows, f"{where}: the variable would list nothing"
        return
    if query.kind == "annotation":
        assert names[:4] == ["time", "timeEnd", "text", "tags"], where
        assert types[0].startswith("DateTime") and types[3] == "Array(String)", where
        return
    if query.format == TIME_SERIES:
        assert names[0] == "time" and types[0].startswith("DateTime"), f"{where}: time column must come first"
        assert any(_numeric(t) for t in types[1:]), f"{where}: no numeric value"
        assert all(_numeric(t) or t == "String" for t in types[1:]), f"{where}: labels must be strings"
        assert rows or may_be_empty, f"{where}: no rows over the generated data"
        times = [str(row[0]) for row in rows]
        assert times == sorted(times), f"{where}: time must ascend (long-to-wide needs it)"
    elif query.kind in ("stat", "bargauge"):
        assert any(_numeric(t) for t in types), f"{where}: no numeric value"
    if query.kind == "stat" and query.format != TIME_SERIES:
        assert len(rows) <= 1, f"{where}: a big number needs one row, got {len(rows)}"


def run_all(runner: Runner, range_name: str, variables: Mapping[str, VariableValue] = VARIABLES
            ) -> dict[str, Result]:
    seconds = RANGES[range_name]
    time_range = TimeRange(END - seconds, END)
    interval = grafana_interval_seconds(seconds)
    results: dict[str, Result] = {}
    for query in ALL_QUERIES:
        scoped = dict(variables)
        sql = expand(query.raw_sql, time_range, interval, scoped)
        try:
            results[query.name] = runner(sql)
        except Exception as error:  # noqa: BLE001 - name the panel in the failure
            pytest.fail(f"{query.name} failed over {range_name}: {error}\n{sql}", pytrace=False)
        check_shape(query, results[query.name], (range_name, query.name) in EMPTY_BY_DESIGN)
    return results


def value(result: Result, column: str, row: int = -1) -> float:
    columns, rows = result
    index = [name for name, _ in columns].index(column)
    return float(rows[row][index])


def check_values(results: Mapping[str, Result], range_name: str) -> None:
    """Values the generator makes known: outages, alerts, the corrected last window."""
    exec_ = "outagewatch-exec"
    assert value(results[f"{exec_}/Rooms in trouble/A"], "rooms_in_trouble", 0) == 1  # room-1
    assert value(results[f"{exec_}/Services in trouble/A"], "services_in_trouble", 0) == 1  # media
    assert value(results[f"{exec_}/Open incidents/A"], "open_incidents", 0) == 2  # room-1, media
    ratio = value(results[f"{exec_}/Error ratio/A"], "errors_per_report")
    assert 0 < ratio < 0.5
    listeners = value(results[f"{exec_}/Live listeners/A"], "avg_listeners")
    if range_name == "15m":
        # The raw branch reads the re-emitted last window, not the first version.
        assert listeners == CORRECTED_LISTENERS
    assert listeners > 1000
    regions = {row[1] for row in results[f"{exec_}/Status by region/A"][1]}
    assert len(regions) == min(PLAN.rooms, 5)
    room_ratio = value(results["outagewatch-room/Error ratio/A"], "errors_per_report")
    assert 0.15 < room_ratio < 0.25  # room-1 is in its 20 % outage at the end
    band = results["outagewatch-room/Errors by code against the learned baseline/B"]
    assert value(band, "observed") > value(band, "upper")  # the outage is above the learned band
    history = results["outagewatch-incidents/Alert history/A"][1]
    expected = 3 if range_name == "7d" else 2  # room-2's resolved incident is 2 days old
    assert len(history) == expected
    service_rows = results["outagewatch-services/$service/var"][1]
    assert sorted(row[0] for row in service_rows) == sorted(SERVICES)


@pytest.mark.integration
@pytest.mark.parametrize("range_name", list(RANGES))
def test_every_panel_query_on_the_local_server(local_runner: Runner, range_name: str) -> None:
    results = run_all(local_runner, range_name)
    check_values(results, range_name)


@pytest.mark.parametrize("range_name", list(RANGES))
def test_every_panel_query_on_current_clickhouse(chdb_runner: Runner, range_name: str) -> None:
    results = run_all(chdb_runner, range_name)
    check_values(results, range_name)


@pytest.mark.integration
def test_selected_values_narrow_the_queries(local_runner: Runner, chdb_runner: Runner) -> None:
    """A concrete multi-value selection goes in as a quoted list and filters."""
    picked: dict[str, Any] = {**VARIABLES, "service": ["media", "api"], "cluster": ["us-1"]}
    for runner in (local_runner, chdb_runner):
        results = run_all(runner, "6h", picked)
        services = {row[1] for row in results["outagewatch-services/Anomaly score/A"][1]}
        assert services == {"media", "api"}
        clusters = {row[0] for row in results["outagewatch-services/$cluster/var"][1]}
        assert len(clusters) == 3  # the cluster list itself is not filtered
        listed = {row[0] for row in results["outagewatch-services/$service/var"][1]}
        assert listed == {"media", "gateway"}  # the services of cluster us-1


def test_the_tiers_are_exclusive(chdb_runner: Runner) -> None:
    """Exactly one of raw / minute / hour branches answers per range: no bucket twice."""
    query = next(q for q in ALL_QUERIES if q.name == "outagewatch-exec/Live listeners/A")
    for seconds in (900, 6 * 3600, 6 * 3600 + 1, 7 * 86400, 7 * 86400 + 3600):
        sql = expand(query.raw_sql, TimeRange(END - seconds, END), grafana_interval_seconds(seconds), VARIABLES)
        _, rows = chdb_runner(sql)
        times = [row[0] for row in rows]
        assert len(times) == len(set(times)), f"{seconds} s: a bucket came from two tiers"
        assert rows


@pytest.mark.parametrize("query", [q for q in ALL_QUERIES if "$__" in q.raw_sql or "$" in q.raw_sql],
                         ids=lambda q: q.name)
def test_no_query_uses_macros_18_16_lacks(query: PanelQuery) -> None:
    assert "$__timeInterval" not in query.raw_sql
    assert "toStartOfInterval" not in query.raw_sql


def test_all_queries_are_found() -> None:
    kinds = {q.kind for q in ALL_QUERIES}
    assert {"stat", "timeseries", "table", "state-timeline", "bargauge", "variable", "annotation"} <= kinds
    assert len(ALL_QUERIES) >= 30


