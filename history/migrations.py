"""Versioned ClickHouse migrations, applied idempotently.

Every statement here runs on ClickHouse 18.16 (the local server) and on
current ClickHouse (checked with chdb in the tests). Features that only newer
servers have (TTL retention) are applied by ``optional_statements`` when
``version()`` says the server supports them.

Migrations are append-only: never edit one that has shipped; add a new one.
On a cluster (``clickhouse.cluster``), ``apply`` runs each statement in its
replicated and distributed form (``history.replicated``); the tables keep
their names.

>>> [m.version for m in MIGRATIONS][:3]
[1, 2, 3]
>>> sorted(set(ERROR_CODE_COLUMNS)) == sorted(ERROR_CODE_COLUMNS)
True
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from core.schemas import ERROR_CODES
from history.replicated import ClusterLayout, cluster_statements

log = logging.getLogger(__name__)

ERROR_CODE_COLUMNS: tuple[str, ...] = tuple(f"errors_{code}" for code in ERROR_CODES)
ERROR_CLIENT_COLUMNS: tuple[str, ...] = tuple(f"error_clients_{code}" for code in ERROR_CODES)


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


def _room_health_columns() -> str:
    per_code = ",\n    ".join(
        f"{column} Float64" for pair in zip(ERROR_CODE_COLUMNS, ERROR_CLIENT_COLUMNS, strict=True) for column in pair
    )
    return f"""
    window_start DateTime,
    window_end DateTime,
    scope String,
    key String,
    region String,
    listeners Float64,
    joins Float64,
    leaves Float64,
    reports Float64,
    errors Float64,
    error_ratio Float64,
    error_clients Float64,
    late_reports UInt32,
    {per_code},
    latency_p50_ms Float64,
    latency_p99_ms Float64,
    inserted_at DateTime"""


def _rollup(table: str, bucket_expr: str) -> tuple[str, ...]:
    """An AggregatingMergeTree rollup of room_health fed by a materialized view."""
    sums = ("joins", "leaves", "reports", "errors", "error_clients", *ERROR_CODE_COLUMNS)
    state_columns = ",\n    ".join(
        [
            "listeners_max AggregateFunction(max, Float64)",
            "listeners_avg AggregateFunction(avg, Float64)",
            "windows AggregateFunction(count)",
            *(f"{name} AggregateFunction(sum, Float64)" for name in sums),
        ]
    )
    state_select = ",\n    ".join(
        [
            "maxState(listeners) AS listeners_max",
            "avgState(listeners) AS listeners_avg",
            "countState() AS windows",
            *(f"sumState({name}) AS {name}" for name in sums),
        ]
    )
    return (
        f"""CREATE TABLE IF NOT EXISTS {table} (
    bucket DateTime,
    scope String,
    key String,
    {state_columns}
) ENGINE = AggregatingMergeTree()
PARTITION BY toDate(bucket)
ORDER BY (scope, key, bucket)""",
        f"""CREATE MATERIALIZED VIEW IF NOT EXISTS {table}_mv TO {table} AS
SELECT
    {bucket_expr} AS bucket,
    scope,
    key,
    {state_select}
FROM room_health
GROUP BY bucket, scope, key""",
    )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "reports", (
        """CREATE TABLE IF NOT EXISTS reports (
    ts DateTime,
    ts_ms UInt64,
    report_id String,
    client_id String,
    room_id String,
    kind String,
    error_code String,
    platform String,
    app_version String,
    region String,
    latency_ms Float64,
    weight Float64,
    inserted_at DateTime
) ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toDate(ts)
ORDER BY (room_id, ts, report_id)""",
    )),
    Migration(2, "room_health", (
        f"""CREATE TABLE IF NOT EXISTS room_health ({_room_health_columns()}
) ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toDate(window_start)
ORDER BY (scope, key, window_start)""",
    )),
    Migration(3, "room_health_rollups", (
        *_rollup("room_health_1m", "toStartOfMinute(window_start)"),
        *_rollup("room_health_1h", "toStartOfHour(window_start)"),
    )),
    Migration(4, "service_health", (
        """CREATE TABLE IF NOT EXISTS service_health (
    window_start DateTime,
    window_end DateTime,
    scope String,
    key String,
    cluster String,
    samples UInt32,
    hosts UInt32,
    metric_names Array(String),
    metric_values Array(Float64),
    inserted_at DateTime
) ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toDate(window_start)
ORDER BY (scope, key, window_start)""",
    )),
    Migration(5, "server_metrics", (
        """CREATE TABLE IF NOT EXISTS server_metrics (
    ts DateTime,
    ts_ms UInt64,
    service String,
    cluster String,
    host String,
    name String,
    value Float64,
    label_names Array(String),
    label_values Array(String),
    inserted_at DateTime
) ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toDate(ts)
ORDER BY (service, name, host, ts)""",
    )),
    Migration(6, "alerts", (
        """CREATE TABLE IF NOT EXISTS alerts (
    event_ts DateTime,
    fingerprint String,
    status String,
    scope String,
    key String,
    kind String,
    severity String,
    starts_at DateTime,
    ends_at DateTime,
    summary String,
    labels_json String,
    evidence_json String,
    affected Array(String),
    inserted_at DateTime
) ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toDate(event_ts)
ORDER BY (fingerprint, event_ts, status)""",
    )),
    Migration(7, "anomaly_scores", (
        """CREATE TABLE IF NOT EXISTS anomaly_scores (
    window_start DateTime,
    scope String,
    key String,
    detector String,
    observed Float64,
    baseline Float64,
    lower Float64,
    upper Float64,
    score Float64,
    inserted_at DateTime
) ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toDate(window_start)
ORDER BY (scope, key, detector, window_start)""",
    )),
    Migration(8, "dead_letters", (
        """CREATE TABLE IF NOT EXISTS dead_letters (
    received_at DateTime,
    source_topic String,
    partition Int32,
    offset Int64,
    error String,
    raw String
) ENGINE = MergeTree()
PARTITION BY toDate(received_at)
ORDER BY (source_topic, received_at)""",
    )),
    # Public notes an operator adds to an incident (`outagewatch status-page note`); incident_id is
    # "<alert fingerprint>-<starts_at epoch seconds>", one alert episode.
    Migration(9, "status_notes", (
        """CREATE TABLE IF NOT EXISTS status_notes (
    incident_id String,
    note_id String,
    created_at DateTime,
    body String,
    inserted_at DateTime
) ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(created_at)
ORDER BY (incident_id, created_at, note_id)""",
    )),
)

MIGRATIONS_TABLE = """CREATE TABLE IF NOT EXISTS schema_migrations (
    version UInt32,
    name String,
    applied_at DateTime
) ENGINE = ReplacingMergeTree(applied_at)
ORDER BY version"""

# Retention for servers that have TTL (19.6+); raw reports are the bulk.
RETENTION_DAYS: dict[str, tuple[str, int]] = {
    "reports": ("ts", 30),
    "server_metrics": ("ts", 30),
    "room_health": ("window_start", 180),
    "service_health": ("window_start", 180),
    "dead_letters": ("received_at", 30),
}


def supports_ttl(version: str) -> bool:
    """TTL arrived in ClickHouse 19.6.

    >>> supports_ttl("18.16.1"), supports_ttl("19.6.2"), supports_ttl("25.8.1.1")
    (False, True, True)
    """
    parts = [int(p) for p in version.split(".")[:2] if p.isdigit()]
    major, minor = (parts + [0, 0])[:2]
    return (major, minor) >= (19, 6)


def optional_statements(version: str) -> list[str]:
    """Statements for features the server has (applied on every ``migrate``; idempotent)."""
    if not supports_ttl(version):
        return []
    return [f"ALTER TABLE {table} MODIFY TTL {column} + INTERVAL {days} DAY"
            for table, (column, days) in RETENTION_DAYS.items()]


Execute = Callable[[str], object]
Query = Callable[[str], Sequence[Sequence[Any]]]


def statements_for(statement: str, layout: ClusterLayout | None) -> tuple[str, ...]:
    """``statement`` as shipped on one server, or its cluster form on ``layout``."""
    return (statement,) if layout is None else cluster_statements(statement, layout)


def apply(execute: Execute, query: Query, version: str, now: int, layout: ClusterLayout | None = None) -> list[int]:
    """Apply every migration not yet recorded; returns the versions applied.

    ``execute`` runs a statement, ``query`` returns rows, ``now`` is epoch
    seconds: the engine-neutral seam that lets the same code drive
    clickhouse-driver and chdb. ``layout``: the cluster to create the
    replicated and distributed tables on (None: one server).
    """
    for statement in statements_for(MIGRATIONS_TABLE, layout):
        execute(statement)
    done = {int(row[0]) for row in query("SELECT version FROM schema_migrations")}
    # On a cluster the record goes straight into this server's replicated table: readable through the
    # Distributed table at once, where an insert through it would be forwarded asynchronously.
    record_table = "schema_migrations" if layout is None else layout.local("schema_migrations")
    applied: list[int] = []
    for migration in MIGRATIONS:
        if migration.version in done:
            continue
        for shipped in migration.statements:
            for statement in statements_for(shipped, layout):
                execute(statement)
        # INSERT ... SELECT, not VALUES: clickhouse-driver expects VALUES
        # data as a separate block and would wait for it.
        execute(
            f"INSERT INTO {record_table} (version, name, applied_at) "
            f"SELECT {migration.version}, '{migration.name}', toDateTime({now})"
        )
        log.info("applied migration %d %s", migration.version, migration.name)
        applied.append(migration.version)
    for shipped in optional_statements(version):
        for statement in statements_for(shipped, layout):
            execute(statement)
    return applied
