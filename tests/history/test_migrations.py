"""Migrations run on the local ClickHouse 18.16 and on current ClickHouse (chdb)."""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Iterator, Sequence

import pytest

from history import migrations
from history.client import ClickHouseTarget, connect

ROOM_WINDOW = (
    "INSERT INTO room_health (window_start, window_end, scope, key, listeners, reports, errors, "
    "errors_crash, inserted_at) SELECT toDateTime(1795323600 + number * 10), toDateTime(1795323610 + number * 10), "
    "'room', 'room-1', 100 + number, 10, 2, 1, now() FROM system.numbers LIMIT 12"
)
ROLLUP = (
    "SELECT bucket, maxMerge(listeners_max), sumMerge(errors), sumMerge(errors_crash), countMerge(windows) "
    "FROM room_health_1m GROUP BY bucket ORDER BY bucket"
)


@pytest.fixture
def chdb_session() -> Iterator[object]:
    from chdb import session

    chdb = session.Session()
    chdb.query("CREATE DATABASE IF NOT EXISTS ow")
    chdb.query("USE ow")
    yield chdb
    chdb.close()


def _chdb_rows(chdb: object, sql: str) -> Sequence[Sequence[str]]:
    return list(csv.reader(io.StringIO(str(chdb.query(sql, "CSV")))))  # type: ignore[attr-defined]


@pytest.mark.integration
def test_migrations_apply_once_on_the_local_server(clickhouse_db: ClickHouseTarget) -> None:
    client = connect(clickhouse_db)
    try:
        version = client.execute("SELECT version()")[0][0]
        first = migrations.apply(client.execute, client.execute, version, int(time.time()))
        again = migrations.apply(client.execute, client.execute, version, int(time.time()))
        tables = {row[0] for row in client.execute("SHOW TABLES")}
        client.execute(ROOM_WINDOW)
        rollup = client.execute(ROLLUP)
    finally:
        client.disconnect()
    assert first == [m.version for m in migrations.MIGRATIONS]
    assert again == []
    assert {"reports", "room_health", "room_health_1m", "room_health_1h", "service_health", "server_metrics",
            "alerts", "anomaly_scores", "dead_letters"} <= tables
    # 12 windows of 10 s starting on a minute boundary: two 1-minute buckets of 6.
    assert [(int(count), float(errors), float(crash)) for _, _, errors, crash, count in rollup] == [
        (6, 12.0, 6.0), (6, 12.0, 6.0)]
    assert [float(row[1]) for row in rollup] == [105.0, 111.0]


def test_migrations_apply_once_on_current_clickhouse(chdb_session: object) -> None:
    def execute(sql: str) -> object:
        return chdb_session.query(sql)  # type: ignore[attr-defined]

    version = _chdb_rows(chdb_session, "SELECT version()")[0][0]
    assert migrations.supports_ttl(version)
    first = migrations.apply(execute, lambda sql: _chdb_rows(chdb_session, sql), version, int(time.time()))
    again = migrations.apply(execute, lambda sql: _chdb_rows(chdb_session, sql), version, int(time.time()))
    assert first == [m.version for m in migrations.MIGRATIONS]
    assert again == []
    execute(ROOM_WINDOW)
    rollup = _chdb_rows(chdb_session, ROLLUP)
    assert [(int(r[4]), float(r[2]), float(r[3])) for r in rollup] == [(6, 12.0, 6.0), (6, 12.0, 6.0)]
