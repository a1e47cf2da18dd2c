"""Room drill-down: one room's listeners, joins/leaves, errors by code against
the learned baseline band, latency, and its alerts as annotations.

The room picker is a query variable (type to search). It lists the rooms of
the hour rollup over the range, not the raw windows: ``DISTINCT key`` over 7
days of raw windows reads every row of 1,000 rooms (60M), the hour rollup
about 170k, and a room appears in it with its first window.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from core.schemas import ERROR_CODES
from dashboards import sql
from dashboards.grafana import annotation, query_variable
from dashboards.panels import big_number, series_panel, sortable_table
from history.migrations import ERROR_CODE_COLUMNS

UID = "outagewatch-room"
ROOM_WHERE = "scope = 'room' AND key = '${room}'"
ALERTS_FOR_ROOM = "(scope = 'room' AND key = '${room}' OR has(affected, '${room}'))"

ROOM_VARIABLE_SQL = """SELECT DISTINCT key
FROM room_health_1h
WHERE scope = 'room' AND bucket >= toStartOfHour($__fromTime) AND bucket <= $__toTime
ORDER BY key"""

DETECTOR_VARIABLE_SQL = """SELECT DISTINCT detector
FROM anomaly_scores
WHERE scope = 'room' AND key = '${room}' AND $__timeFilter(window_start)
ORDER BY detector"""


def baseline_band_sql() -> str:
    """The detector's observed value and learned band; an exact replay duplicate changes no average."""
    return f"""SELECT {sql.bucket("window_start")} AS time,
    avg(observed) AS observed, avg(baseline) AS baseline, avg(lower) AS lower, avg(upper) AS upper
FROM anomaly_scores
WHERE scope = 'room' AND key = '${{room}}' AND detector = '${{detector}}' AND $__timeFilter(window_start)
GROUP BY time
ORDER BY time"""


def latency_sql() -> str:
    """Latency percentiles live in the raw windows only (the rollups keep counts); -1 means none reported."""
    return f"""SELECT {sql.bucket("window_start")} AS time,
    avg(latency_p50_ms) AS p50_ms, max(latency_p99_ms) AS p99_ms
FROM room_health
WHERE {ROOM_WHERE} AND $__timeFilter(window_start) AND latency_p50_ms >= 0
GROUP BY time
ORDER BY time"""


def alerts_annotation_sql() -> str:
    return f"""SELECT starts_at AS time, if(ended = 0, $__toTime, toDateTime(ended)) AS timeEnd,
    concat(severity, ': ', summary) AS text, [kind, severity, state] AS tags
FROM (
    SELECT fingerprint, any(starts_at) AS starts_at, argMax(summary, event_ts) AS summary,
        argMax(severity, event_ts) AS severity, {sql.latest_alert_status()} AS state,
        maxIf(toUInt32(ends_at), status = 'resolved') AS ended, any(kind) AS kind
    FROM alerts
    WHERE {ALERTS_FOR_ROOM} AND event_ts <= $__toTime
    GROUP BY fingerprint
)
WHERE starts_at <= $__toTime AND (ended = 0 OR ended >= toUInt32($__fromTime))
ORDER BY time"""


def room_alerts_table_sql() -> str:
    return f"""SELECT fingerprint, any(kind) AS kind, argMax(severity, event_ts) AS severity,
    {sql.latest_alert_status()} AS state, any(starts_at) AS started, max(event_ts) AS last_event,
    argMax(summary, event_ts) AS summary
FROM alerts
WHERE {ALERTS_FOR_ROOM} AND event_ts <= $__toTime
GROUP BY fingerprint
HAVING started <= $__toTime AND (state = 'firing' OR last_event >= $__fromTime)
ORDER BY started DESC"""


def build(window_seconds: int = 10) -> Dashboard:
    errors_by_code = [sql.per_window(column, window_seconds, per_second=False, name=code)
                      for column, code in zip(ERROR_CODE_COLUMNS, ERROR_CODES, strict=True)]
    return (
        Dashboard("outagewatch · Room drill-down")
        .uid(UID)
        .tags(["outagewatch", "on-call"])
        .description("One room: audience, churn, errors by code against the learned baseline, alerts.")
        .time("now-6h", "now")
        .refresh("30s")
        .timezone("utc")
        .with_variable(query_variable("room", "Room", ROOM_VARIABLE_SQL))
        .with_variable(query_variable("detector", "Baseline of detector", DETECTOR_VARIABLE_SQL))
        .annotation(annotation("Alerts", alerts_annotation_sql()))
        .with_panel(big_number("Listeners", sql.room_health_series([sql.LISTENERS], ROOM_WHERE), series=True,
                               steps=((None, "blue"),), decimals=0, width=8))
        .with_panel(big_number("Error ratio", sql.room_health_series([sql.ERROR_RATIO], ROOM_WHERE), series=True,
                               steps=((None, "green"), (0.02, "orange"), (0.05, "red")), unit="percentunit",
                               decimals=2, width=8))
        .with_panel(big_number("Joins / s", sql.room_health_series([sql.per_window("joins", window_seconds)],
                                                                   ROOM_WHERE),
                               series=True, steps=((None, "blue"),), unit="reqps", decimals=1, width=8))
        .with_panel(series_panel(
            "Listeners", [sql.room_health_series([sql.LISTENERS, sql.PEAK_LISTENERS], ROOM_WHERE)],
            description="Average and peak listeners per bucket."))
        .with_panel(series_panel(
            "Joins and leaves / s",
            [sql.room_health_series([sql.per_window("joins", window_seconds),
                                     sql.per_window("leaves", window_seconds)], ROOM_WHERE)],
            unit="reqps"))
        .with_panel(series_panel(
            "Errors by code against the learned baseline",
            [sql.room_health_series(errors_by_code, ROOM_WHERE), baseline_band_sql()],
            width=24, height=10,
            description="Errors per 10-s window by code (A) and, for the chosen detector, its observed value "
                        "and learned band lower..upper (B) from anomaly_scores, in the detector's own unit."))
        .with_panel(series_panel("Latency", [latency_sql()], unit="ms"))
        .with_panel(sortable_table("Alerts on this room", room_alerts_table_sql(), width=12, height=8,
                                   sort_by="started"))
    )
