"""Incidents: alert history for analysts, one row per alert (fingerprint).

Definitions, from the ``alerts`` events (one row per state change, a replay
may repeat one):

- *started*: ``starts_at``, when the trouble began (the alert's first bad window);
- *detected*: the first ``firing`` event, when outagewatch said so;
- *time to detect*: detected − started;
- *duration*: resolved − started, or up to the range end while still firing;
- *affected rooms*: the alert's ``affected`` list (its own room for room alerts).
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from dashboards import sql
from dashboards.panels import big_number, series_panel, sortable_table

UID = "outagewatch-incidents"

_PER_INCIDENT = f"""SELECT fingerprint, any(scope) AS scope, any(key) AS key, any(kind) AS kind,
        argMax(severity, event_ts) AS severity, argMax(summary, event_ts) AS summary,
        {sql.latest_alert_status()} AS state,
        min(starts_at) AS started,
        minIf(event_ts, status = 'firing') AS detected,
        maxIf(toUInt32(ends_at), status = 'resolved') AS ended,
        argMax(affected, event_ts) AS affected
    FROM alerts
    WHERE event_ts <= $__toTime
    GROUP BY fingerprint
    HAVING started <= $__toTime AND (state = 'firing' OR ended >= toUInt32($__fromTime))"""

_DURATION = "toInt64(if(state = 'firing', toUInt32($__toTime), ended)) - toInt64(toUInt32(started))"
_TIME_TO_DETECT = "toInt64(toUInt32(detected)) - toInt64(toUInt32(started))"


def incidents_table_sql() -> str:
    return f"""SELECT started, scope, key, kind, severity, state,
    {_TIME_TO_DETECT} AS time_to_detect_s, {_DURATION} AS duration_s,
    length(affected) AS affected_rooms, arrayStringConcat(arraySlice(affected, 1, 20), ', ') AS rooms,
    summary, fingerprint
FROM (
    {_PER_INCIDENT}
)
ORDER BY started DESC"""


def summary_sql(expression: str, alias: str, having: str = "") -> str:
    """One number over the incidents; ``having`` turns "nothing to average" into no row (Grafana: No data)."""
    having_clause = f"\nHAVING {having}" if having else ""
    return f"""SELECT toFloat64({expression}) AS {alias}
FROM (
    {_PER_INCIDENT}
){having_clause}"""


def incidents_over_time_sql() -> str:
    return f"""SELECT {sql.bucket("started")} AS time, severity, toFloat64(count()) AS incidents
FROM (
    {_PER_INCIDENT}
)
WHERE started >= $__fromTime
GROUP BY time, severity
ORDER BY time, severity"""


def affected_rooms_sql() -> str:
    return f"""SELECT room, toFloat64(count()) AS incidents, max(started) AS last_started,
    sum({_DURATION}) AS total_duration_s
FROM (
    {_PER_INCIDENT}
)
ARRAY JOIN if(scope = 'room' AND NOT has(affected, key), arrayPushBack(affected, key), affected) AS room
GROUP BY room
ORDER BY incidents DESC, room"""


def build(window_seconds: int = 10) -> Dashboard:
    del window_seconds
    count_steps = ((None, "green"), (1, "orange"), (10, "red"))
    detect_steps = ((None, "green"), (60, "orange"), (180, "red"))
    return (
        Dashboard("outagewatch · Incidents")
        .uid(UID)
        .tags(["outagewatch", "analysts"])
        .description("Every alert in the range: when it started, how fast we saw it, how long it lasted, who it hit.")
        .time("now-7d", "now")
        .refresh("1m")
        .timezone("utc")
        .with_panel(big_number("Incidents", summary_sql("count()", "incidents"), steps=count_steps, decimals=0,
                               width=6, description="Alerts active at any time in the range."))
        .with_panel(big_number("Still open", summary_sql("countIf(state = 'firing')", "open"),
                               steps=((None, "green"), (1, "red")), decimals=0, width=6))
        .with_panel(big_number("Median time to detect", summary_sql(f"quantileExact(0.5)({_TIME_TO_DETECT})",
                                                                    "median_time_to_detect_s", "count() > 0"),
                               steps=detect_steps, unit="s", width=6))
        .with_panel(big_number("Mean duration (resolved)", summary_sql(f"avgIf({_DURATION}, state = 'resolved')",
                                                                       "mean_duration_s", "countIf(state = 'resolved') > 0"),
                               steps=((None, "blue"),), unit="s", width=6))
        .with_panel(sortable_table(
            "Alert history", incidents_table_sql(), height=12, sort_by="started",
            units={"time_to_detect_s": "s", "duration_s": "s"},
            description="Click a header to sort, the funnel to filter a column."))
        .with_panel(series_panel("Incidents started", [incidents_over_time_sql()], bars=True, stacked=True,
                                 width=12))
        .with_panel(sortable_table("Affected rooms", affected_rooms_sql(), width=12, height=8, sort_by="incidents",
                                   units={"total_duration_s": "s"}))
    )
