"""Exec overview: is the product healthy right now, and where is it not.

Big numbers on top (listeners, reports/s, error ratio, rooms and services in
trouble, open incidents), coloured green/orange/red; below, one status line
per region. Refreshes every 10 s (one stream window).

All series read the ``global`` and ``region`` windows the stream emits (one
row per window, not one per room), and the tiered raw/rollup SQL of
:mod:`dashboards.sql`, so each query stays small even over 7 days of 1,000
rooms. "Rooms in trouble" is the one query over room windows: the last two
minutes only, which the primary key ``(scope, key, window_start)`` narrows.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from dashboards import sql
from dashboards.panels import big_number, series_panel, status_line

UID = "outagewatch-exec"
TROUBLE_ERROR_RATIO = 0.05
TROUBLE_MIN_REPORTS = 20
SERVICE_TROUBLE_SCORE = 0.8
RECENT_SECONDS = 120

ERROR_RATIO_STEPS = ((None, "green"), (0.02, "orange"), (TROUBLE_ERROR_RATIO, "red"))


def rooms_in_trouble_sql() -> str:
    return f"""SELECT toFloat64(count()) AS rooms_in_trouble
FROM (
    SELECT key, sum(errors) AS errors, sum(reports) AS reports
    FROM (
        SELECT key, window_start, argMax(errors, inserted_at) AS errors, argMax(reports, inserted_at) AS reports
        FROM room_health
        WHERE scope = 'room' AND window_start > $__toTime - {RECENT_SECONDS} AND window_start <= $__toTime
        GROUP BY key, window_start
    )
    GROUP BY key
    HAVING reports >= {TROUBLE_MIN_REPORTS} AND errors / reports >= {TROUBLE_ERROR_RATIO}
)"""


def services_in_trouble_sql() -> str:
    return f"""SELECT toFloat64(uniqExact(key)) AS services_in_trouble
FROM anomaly_scores
WHERE scope = 'service' AND window_start > $__toTime - {RECENT_SECONDS} AND window_start <= $__toTime
    AND score >= {SERVICE_TROUBLE_SCORE}"""


def open_incidents_sql() -> str:
    return f"""SELECT toFloat64(count()) AS open_incidents
FROM (
    SELECT fingerprint, {sql.latest_alert_status()} AS state
    FROM alerts
    WHERE event_ts <= $__toTime
    GROUP BY fingerprint
)
WHERE state = 'firing'"""


def build(window_seconds: int = 10) -> Dashboard:
    reports_rate = sql.per_window("reports", window_seconds)
    global_where = "scope = 'global' AND key = 'all'"
    return (
        Dashboard("outagewatch · Exec overview")
        .uid(UID)
        .tags(["outagewatch", "exec"])
        .description("Live health of every room and service: read it in two seconds.")
        .time("now-6h", "now")
        .refresh("10s")
        .timezone("utc")
        .with_panel(big_number(
            "Live listeners", sql.room_health_series([sql.LISTENERS], global_where), series=True,
            steps=((None, "blue"),), decimals=0,
            description="Listeners in every room, latest closed window (average per bucket on the sparkline)."))
        .with_panel(big_number(
            "Reports / s", sql.room_health_series([reports_rate], global_where), series=True,
            steps=((None, "blue"),), unit="reqps", decimals=0,
            description="Client reports ingested per second, all rooms."))
        .with_panel(big_number(
            "Error ratio", sql.room_health_series([sql.ERROR_RATIO], global_where), series=True,
            steps=ERROR_RATIO_STEPS, unit="percentunit", decimals=2,
            description="Errors / reports over all rooms; orange from 2 %, red from 5 %."))
        .with_panel(big_number(
            "Rooms in trouble", rooms_in_trouble_sql(), steps=((None, "green"), (1, "orange"), (10, "red")),
            decimals=0,
            description=f"Rooms with ≥ {TROUBLE_ERROR_RATIO:.0%} errors over the last {RECENT_SECONDS} s "
                        f"(at least {TROUBLE_MIN_REPORTS} reports), from the room windows themselves."))
        .with_panel(big_number(
            "Services in trouble", services_in_trouble_sql(), steps=((None, "green"), (1, "red")), decimals=0,
            description=f"Services with an anomaly score ≥ {SERVICE_TROUBLE_SCORE} in the last {RECENT_SECONDS} s."))
        .with_panel(big_number(
            "Open incidents", open_incidents_sql(), steps=((None, "green"), (1, "orange"), (5, "red")), decimals=0,
            description="Alerts whose latest event is 'firing' (see the Incidents board)."))
        .with_panel(status_line(
            "Status by region",
            sql.room_health_series([sql.ERROR_RATIO], "scope = 'region'", labels=["key"], label_aliases=["region"]),
            steps=ERROR_RATIO_STEPS, unit="percentunit",
            description="One line per region, coloured by its error ratio: green < 2 %, orange < 5 %, red above."))
        .with_panel(series_panel(
            "Listeners", [sql.room_health_series([sql.LISTENERS, sql.PEAK_LISTENERS], global_where)],
            description="All rooms: average and peak listeners per bucket."))
        .with_panel(series_panel(
            "Error ratio by region",
            [sql.room_health_series([sql.ERROR_RATIO], "scope = 'region'", labels=["key"], label_aliases=["region"])],
            unit="percentunit"))
    )
