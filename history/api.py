"""The Python API of history/: migrate, query, analyst DataFrames.

For notebooks::

    from history import api
    api.query_df("SELECT key, max(listeners) FROM room_health FINAL GROUP BY key")
    api.incident_timeline("room-17", "2026-11-22T05:00:00Z", "2026-11-22T06:00:00Z")

Queries run as the read-only user (``clickhouse.reader_user``); parameters
are bound by clickhouse-driver (``%(name)s``), never pasted into the SQL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from core.config import Settings, load_settings
from history import access, migrations, rollups
from history.client import ClickHouseTarget, connect, parse_url
from history.queries import NAMED_QUERIES, epoch_seconds
from history.replicated import ClusterLayout

if TYPE_CHECKING:
    import pandas

log = logging.getLogger("history")

TimeLike = datetime | str | int | float


@dataclass(frozen=True)
class MigrationResult:
    target: str
    server_version: str
    applied: list[int]
    optional: list[str]
    reader: str


def writer_target(settings: Settings) -> ClickHouseTarget:
    return parse_url(settings.clickhouse.url)


def reader_target(settings: Settings) -> ClickHouseTarget:
    return writer_target(settings).with_user(settings.clickhouse.reader_user, settings.clickhouse.reader_password)


def cluster_layout(settings: Settings) -> ClusterLayout | None:
    """Where replicated and distributed tables go when ``clickhouse.cluster`` names a cluster, else None."""
    cluster = settings.clickhouse.cluster
    return ClusterLayout(cluster, writer_target(settings).database) if cluster else None


def migrate(settings: Settings | None = None, create_reader: bool = False) -> MigrationResult:
    """Create the database if missing and apply every pending migration (idempotent)."""
    settings = settings or load_settings()
    target = writer_target(settings)
    layout = cluster_layout(settings)
    on_cluster = f" ON CLUSTER {layout.cluster}" if layout else ""
    admin = connect(target.with_database("default"))
    try:
        admin.execute(f"CREATE DATABASE IF NOT EXISTS `{target.database}`{on_cluster}")
    finally:
        admin.disconnect()
    client = connect(target)
    try:
        version = str(client.execute("SELECT version()")[0][0])
        applied = migrations.apply(client.execute, client.execute, version, int(time.time()), layout)
        reader = (access.ensure_reader(client.execute, version, target.database, settings.clickhouse.reader_user,
                                       settings.clickhouse.reader_password)
                  if create_reader else
                  f"reader user {settings.clickhouse.reader_user!r}: not managed by migrate (use --create-reader "
                  "on 20.5+; older servers define it in users.xml)")
    finally:
        client.disconnect()
    return MigrationResult(target.describe(), version, applied, migrations.optional_statements(version), reader)


def query(sql: str, params: Mapping[str, Any] | None = None, settings: Settings | None = None,
          as_writer: bool = False) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one statement as the reader; returns column names and rows."""
    settings = settings or load_settings()
    target = writer_target(settings) if as_writer else reader_target(settings)
    client = connect(target)
    try:
        rows, columns = client.execute(sql, dict(params) if params else None, with_column_types=True)
    finally:
        client.disconnect()
    return [name for name, _ in columns], [tuple(row) for row in rows]


def query_df(sql: str, params: Mapping[str, Any] | None = None, settings: Settings | None = None) -> pandas.DataFrame:
    """A DataFrame of one read-only query, columns named as the query names them."""
    import pandas

    columns, rows = query(sql, params, settings)
    return pandas.DataFrame.from_records(rows, columns=columns)


def named_query_df(name: str, params: Mapping[str, Any], settings: Settings | None = None) -> pandas.DataFrame:
    return query_df(NAMED_QUERIES[name].sql, params, settings)


def incident_timeline(room_id: str, start: TimeLike, end: TimeLike,
                      settings: Settings | None = None) -> pandas.DataFrame:
    """Every closed window of ``room_id`` in ``[start, end)``: listeners, errors by code, latency."""
    return named_query_df("incident_timeline", {"room_id": room_id, "start": epoch_seconds(start),
                                                "end": epoch_seconds(end)}, settings)


def top_rooms(start: TimeLike, end: TimeLike, limit: int = 10, settings: Settings | None = None) -> pandas.DataFrame:
    """Rooms with the most distinct error clients in ``[start, end)``."""
    return named_query_df("top_rooms", {"start": epoch_seconds(start), "end": epoch_seconds(end),
                                        "limit": int(limit)}, settings)


def alert_history(start: TimeLike, end: TimeLike, key: str = "",
                  settings: Settings | None = None) -> pandas.DataFrame:
    """Alert state changes in ``[start, end)``, for one key or all (``key=""``)."""
    return named_query_df("alert_history", {"start": epoch_seconds(start), "end": epoch_seconds(end),
                                            "key": key}, settings)


def room_rollup(key: str, start: TimeLike, end: TimeLike, scope: str = "room",
                settings: Settings | None = None) -> pandas.DataFrame:
    """Per-minute rollup of one scope/key: long ranges without scanning every window."""
    return named_query_df("room_rollup", {"scope": scope, "key": key, "start": epoch_seconds(start),
                                          "end": epoch_seconds(end)}, settings)


def error_codes(room_id: str, start: TimeLike, end: TimeLike, settings: Settings | None = None) -> pandas.DataFrame:
    """Raw error reports of one room by code and platform."""
    return named_query_df("error_codes", {"room_id": room_id, "start": epoch_seconds(start),
                                          "end": epoch_seconds(end)}, settings)


def rebuild_rollups(since: TimeLike, until: TimeLike, settings: Settings | None = None) -> tuple[int, int]:
    """Recompute ``room_health_1m``/``_1h`` over ``[since, until)`` (widened to hours) from ``room_health FINAL``."""
    settings = settings or load_settings()
    client = connect(writer_target(settings))
    try:
        return rollups.rebuild(client.execute, client.execute, epoch_seconds(since), epoch_seconds(until),
                               layout=cluster_layout(settings))
    finally:
        client.disconnect()
