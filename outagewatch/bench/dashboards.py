"""Benchmark: p50/p95 time of every dashboard query over 7 days of 1,000 rooms.

Generates the history inside ClickHouse (``outagewatch.panelcheck.sample_history``:
``INSERT ... SELECT ... FROM system.numbers``, 7 d x 1,000 rooms of 10-s
windows, about 60M room rows plus region/global windows and their rollups)
into a dedicated database ``bench_dashboards``, reused by later runs when
already complete. Then runs each query of the shipped JSON, expanded as
Grafana would for the "last 15 min", "last 6 h" and "last 7 d" ranges, N
times as the read-only user, and reports p50/p95 in ms and rows read (from
the server's progress counters). Target: exec overview p95 < 300 ms.

``--quick`` uses 20 rooms over 1 day and 3 repeats: a smoke run only.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from core.config import Settings
from dashboards import provisioning
from dashboards.catalog import queries
from history import migrations
from history.client import connect, parse_url
from outagewatch.panelcheck.macros import ALL, TimeRange, expand, grafana_interval_seconds
from outagewatch.panelcheck.sample_history import OUTAGE_ROOM, SampleData

log = logging.getLogger(__name__)

DATABASE = "bench_dashboards"
END = 1795323600
RANGES = {"15m": 900, "6h": 6 * 3600, "7d": 7 * 86400}
VARIABLES = {"room": OUTAGE_ROOM, "detector": "errors", "cluster": ALL, "service": ALL, "metric": "cpu"}
EXEC_TARGET_MS = 300.0


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def _prepare(settings: Settings, plan: SampleData, database: str) -> dict[str, Any]:
    server = parse_url(settings.clickhouse.url)
    admin = connect(server.with_database("default"))
    try:
        admin.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
        writer = connect(server.with_database(database), max_block_size=1_048_576,
                         min_insert_block_size_rows=1_048_576)
        version = writer.execute("SELECT version()")[0][0]
        migrations.apply(writer.execute, writer.execute, version, int(time.time()))
        have = writer.execute("SELECT count() FROM room_health WHERE scope = 'room'")[0][0]
        started = time.perf_counter()
        if have != plan.room_windows:
            log.info("generating %d room windows into %s (this takes a while)", plan.room_windows, database)
            for table in ("room_health", "room_health_1m", "room_health_1h", "service_health", "server_metrics",
                          "anomaly_scores", "alerts"):
                writer.execute(f"TRUNCATE TABLE IF EXISTS {table}")
            for statement in plan.statements():
                writer.execute(statement)
            writer.execute("OPTIMIZE TABLE room_health_1m FINAL")
            writer.execute("OPTIMIZE TABLE room_health_1h FINAL")
        rows = writer.execute("SELECT count() FROM room_health")[0][0]
        writer.disconnect()
        return {"room_health_rows": int(rows), "generate_s": round(time.perf_counter() - started, 1),
                "server_version": version}
    finally:
        admin.disconnect()


def run(settings: Settings, quick: bool = False, repeats: int = 20) -> list[dict[str, Any]]:
    plan = SampleData(end=END, days=1 if quick else 7, rooms=20 if quick else 1000,
                      anomaly_rooms=20 if quick else 100, metrics_hours=1 if quick else 24)
    database = f"{DATABASE}_quick" if quick else DATABASE
    if quick:
        repeats = 3
    info = _prepare(settings, plan, database)
    reader = connect(parse_url(settings.clickhouse.url).with_database(database).with_user(
        settings.clickhouse.reader_user, settings.clickhouse.reader_password))
    results: list[dict[str, Any]] = []
    try:
        for board in provisioning.dashboards(settings.streams.window_seconds):
            for query in queries(board):
                for range_name, seconds in RANGES.items():
                    sql = expand(query.raw_sql, TimeRange(END - seconds, END), grafana_interval_seconds(seconds),
                                 VARIABLES)
                    timings: list[float] = []
                    rows_read = 0
                    for _ in range(repeats):
                        started = time.perf_counter()
                        reader.execute(sql)
                        timings.append((time.perf_counter() - started) * 1000)
                        rows_read = int(reader.last_query.progress.rows)
                    p95 = _percentile(timings, 0.95)
                    result = {"bench": "dashboards", "board": query.board, "panel": query.panel,
                              "ref": query.ref_id, "range": range_name, "repeats": repeats,
                              "p50_ms": round(_percentile(timings, 0.5), 1), "p95_ms": round(p95, 1),
                              "rows_read": rows_read, **info}
                    if query.board == "outagewatch-exec":
                        result["target_ms"] = EXEC_TARGET_MS
                        result["meets_target"] = p95 < EXEC_TARGET_MS
                    results.append(result)
    finally:
        reader.disconnect()
    return results
