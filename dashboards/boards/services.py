"""Services: server metrics per service and per cluster, with anomaly scores.

``service_health`` windows carry every metric as parallel arrays; one row
of panels is repeated per metric (variable ``metric``), one series per
service (left) and per cluster (right). Averages and maxima ignore exact
replay duplicates, so these read the windows as they are.
"""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard, Row

from dashboards import sql
from dashboards.grafana import query_variable
from dashboards.panels import gauge_bars, series_panel, sortable_table

UID = "outagewatch-services"
SCORE_STEPS = ((None, "green"), (0.5, "orange"), (0.8, "red"))
HOST_LOOKBACK_SECONDS = 300

CLUSTER_VARIABLE_SQL = """SELECT DISTINCT cluster
FROM service_health
WHERE scope = 'service' AND $__timeFilter(window_start)
ORDER BY cluster"""

SERVICE_VARIABLE_SQL = """SELECT DISTINCT key
FROM service_health
WHERE scope = 'service' AND $__timeFilter(window_start) AND $__conditionalAll(cluster IN (${cluster}), $cluster)
ORDER BY key"""

METRIC_VARIABLE_SQL = """SELECT DISTINCT arrayJoin(metric_names) AS metric
FROM service_health
WHERE scope = 'service' AND $__timeFilter(window_start)
ORDER BY metric"""


def metric_by(scope: str, label: str, filter_sql: str) -> str:
    return f"""SELECT {sql.bucket("window_start")} AS time, key AS {label},
    avg(metric_values[indexOf(metric_names, '${{metric}}')]) AS value
FROM service_health
WHERE scope = '{scope}' AND $__timeFilter(window_start) AND has(metric_names, '${{metric}}') AND {filter_sql}
GROUP BY time, {label}
ORDER BY time, {label}"""


def anomaly_series_sql() -> str:
    return f"""SELECT {sql.bucket("window_start")} AS time, key AS service, max(score) AS score
FROM anomaly_scores
WHERE scope = 'service' AND $__timeFilter(window_start) AND $__conditionalAll(key IN (${{service}}), $service)
GROUP BY time, service
ORDER BY time, service"""


def current_scores_sql() -> str:
    return """SELECT key AS service, argMax(score, window_start) AS score
FROM anomaly_scores
WHERE scope = 'service' AND window_start > $__toTime - 120 AND window_start <= $__toTime
    AND $__conditionalAll(key IN (${service}), $service)
GROUP BY service
ORDER BY score DESC"""


def hosts_sql() -> str:
    return f"""SELECT service, cluster, host, name AS metric, argMax(value, ts) AS value, max(ts) AS last_seen
FROM server_metrics
WHERE ts > $__toTime - {HOST_LOOKBACK_SECONDS} AND ts <= $__toTime
    AND $__conditionalAll(service IN (${{service}}), $service)
    AND $__conditionalAll(cluster IN (${{cluster}}), $cluster)
GROUP BY service, cluster, host, metric
ORDER BY service, host, metric"""


def hosts_reporting_sql() -> str:
    return f"""SELECT {sql.bucket("window_start")} AS time, key AS service, max(hosts) AS hosts
FROM service_health
WHERE scope = 'service' AND $__timeFilter(window_start) AND $__conditionalAll(key IN (${{service}}), $service)
GROUP BY time, service
ORDER BY time, service"""


def build(window_seconds: int = 10) -> Dashboard:
    del window_seconds  # service windows are averaged, not summed: no per-window normalisation
    service_filter = "$__conditionalAll(key IN (${service}), $service)"
    cluster_filter = "$__conditionalAll(key IN (${cluster}), $cluster)"
    metric_row = (
        Row("Metric: $metric")
        .repeat("metric")
        .with_panel(series_panel("$metric by service", [metric_by("service", "service", service_filter)]))
        .with_panel(series_panel("$metric by cluster", [metric_by("cluster", "cluster", cluster_filter)]))
    )
    return (
        Dashboard("outagewatch · Services")
        .uid(UID)
        .tags(["outagewatch", "on-call"])
        .description("Server metrics per service and cluster, with the detectors' anomaly scores.")
        .time("now-6h", "now")
        .refresh("30s")
        .timezone("utc")
        .with_variable(query_variable("cluster", "Cluster", CLUSTER_VARIABLE_SQL, multi=True, include_all=True))
        .with_variable(query_variable("service", "Service", SERVICE_VARIABLE_SQL, multi=True, include_all=True))
        .with_variable(query_variable("metric", "Metric", METRIC_VARIABLE_SQL, multi=True, include_all=True))
        .with_panel(gauge_bars("Anomaly score now", current_scores_sql(), steps=SCORE_STEPS, unit="percentunit",
                               maximum=1, description="Latest score per service (0 normal, 1 certainly anomalous)."))
        .with_panel(series_panel("Anomaly score", [anomaly_series_sql()], unit="percentunit", width=16,
                                 description="Highest score per bucket, per service."))
        .with_panel(sortable_table("Hosts, last 5 minutes", hosts_sql(), width=16, height=9, sort_by="value",
                                   description="Latest value of every server metric per host."))
        .with_panel(series_panel("Hosts reporting", [hosts_reporting_sql()], width=8, height=9))
        .with_row(metric_row)
    )
