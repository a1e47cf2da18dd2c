"""Every analyst query and the rollup rebuild run on ClickHouse 18.16 and on current ClickHouse (chdb),
give the same answers there, and see a replayed row once."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

import pytest

from core.config import Settings
from history import api, migrations, rollups
from history.client import ClickHouseTarget, connect
from history.queries import NAMED_QUERIES
from tests.history.history_testkit import Chdb, settings_for

T0 = 1_795_323_600  # 2026-11-22T05:00:00Z
SEED = (
    # 3 rooms x 12 windows of 10 s; room-N has N+1 errors and error clients per window.
    f"INSERT INTO room_health (window_start, window_end, scope, key, listeners, reports, errors, error_clients, "
    f"errors_crash, errors_details_not_available, latency_p99_ms, inserted_at) "
    f"SELECT toDateTime({T0} + intDiv(number, 3) * 10), toDateTime({T0} + 10 + intDiv(number, 3) * 10), 'room', "
    f"concat('room-', toString(number % 3)), 100 + number, 50, 1 + number % 3, 1 + number % 3, 1, number % 3, "
    f"-1, toDateTime({T0} + 100) FROM system.numbers LIMIT 36",
    # A replay of the first window of room-2, inserted later.
    f"INSERT INTO room_health (window_start, window_end, scope, key, listeners, reports, errors, error_clients, "
    f"errors_crash, errors_details_not_available, latency_p99_ms, inserted_at) "
    f"SELECT toDateTime({T0}), toDateTime({T0} + 10), 'room', 'room-2', 102, 50, 3, 3, 1, 2, -1, "
    f"toDateTime({T0} + 200)",
    f"INSERT INTO reports (ts, ts_ms, report_id, client_id, room_id, kind, error_code, platform, weight, inserted_at) "
    f"SELECT toDateTime({T0} + number), ({T0} + number) * 1000, concat('r', toString(number)), "
    f"concat('c', toString(number % 7)), 'room-1', if(number % 4 = 0, 'error', 'heartbeat'), "
    f"if(number % 4 = 0, if(number % 8 = 0, 'crash', 'timeout'), ''), if(number % 2 = 0, 'ios', 'web'), 1, "
    f"toDateTime({T0} + 100) FROM system.numbers LIMIT 100",
    f"INSERT INTO reports (ts, ts_ms, report_id, client_id, room_id, kind, error_code, platform, weight, inserted_at) "
    f"SELECT toDateTime({T0} + number), ({T0} + number) * 1000, concat('r', toString(number)), "
    f"concat('c', toString(number % 7)), 'room-1', if(number % 4 = 0, 'error', 'heartbeat'), "
    f"if(number % 4 = 0, if(number % 8 = 0, 'crash', 'timeout'), ''), if(number % 2 = 0, 'ios', 'web'), 1, "
    f"toDateTime({T0} + 200) FROM system.numbers LIMIT 10",
    f"INSERT INTO alerts (event_ts, fingerprint, status, scope, key, kind, severity, starts_at, ends_at, summary, "
    f"affected, inserted_at) SELECT toDateTime({T0} + number * 60), concat('fp-', toString(intDiv(number, 2))), "
    f"if(number % 2 = 0, 'firing', 'resolved'), 'room', 'room-2', 'crash', 'critical', "
    f"toDateTime({T0} + intDiv(number, 2) * 120), if(number % 2 = 0, toDateTime(0), toDateTime({T0} + number * 60)), "
    f"'crash spike', ['room-2'], toDateTime({T0} + 100) FROM system.numbers LIMIT 4",
    f"INSERT INTO alerts (event_ts, fingerprint, status, scope, key, kind, severity, starts_at, ends_at, summary, "
    f"affected, inserted_at) SELECT toDateTime({T0}), 'fp-0', 'firing', 'room', 'room-2', 'crash', 'critical', "
    f"toDateTime({T0}), toDateTime(0), 'crash spike', ['room-2'], toDateTime({T0} + 200)",
)
RANGE = {"start": T0, "end": T0 + 3600}
PARAMS: dict[str, dict[str, Any]] = {
    "incident_timeline": {"room_id": "room-2", **RANGE},
    "top_rooms": {**RANGE, "limit": 2},
    "alert_history": {**RANGE, "key": "room-2"},
    "room_rollup": {"scope": "room", "key": "room-2", **RANGE},
    "error_codes": {"room_id": "room-1", **RANGE},
}
ROLLUP_CHECK = ("SELECT key, sumMerge(errors) AS total, countMerge(windows) AS n FROM room_health_1h "
                "GROUP BY key ORDER BY key")


def _norm(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_norm(v) for v in value]
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    try:
        return round(float(value), 6)
    except (TypeError, ValueError):
        return str(value)


@pytest.fixture(scope="module")
def chdb_seeded() -> Iterator[Chdb]:
    engine = Chdb()
    version = engine.rows("SELECT version()")[0][0]
    migrations.apply(engine.execute, engine.rows, version, T0)
    for statement in SEED:
        engine.execute(statement)
    yield engine
    engine.session.close()


@pytest.fixture
def server_seeded(settings: Settings, clickhouse_db: ClickHouseTarget) -> Settings:
    own = settings_for(settings, clickhouse_db)
    api.migrate(own)
    client = connect(clickhouse_db)
    try:
        for statement in SEED:
            client.execute(statement)
    finally:
        client.disconnect()
    return own


def test_every_named_query_is_exercised() -> None:
    assert set(PARAMS) == set(NAMED_QUERIES)
    for name, query in NAMED_QUERIES.items():
        assert set(query.params) == set(PARAMS[name]), name


@pytest.mark.integration
def test_named_queries_agree_on_both_engines_and_dedupe_replays(server_seeded: Settings, chdb_seeded: Chdb) -> None:
    for name, query in NAMED_QUERIES.items():
        columns, server_rows = api.query(query.sql, PARAMS[name], server_seeded)  # as the reader
        current = chdb_seeded.rows(query.sql, PARAMS[name])
        assert _norm(server_rows) == _norm(current), name
        assert server_rows, f"{name} returned nothing: the seed does not exercise it"
        assert len(columns) == len(server_rows[0])

    timeline = api.incident_timeline("room-2", T0, T0 + 3600, settings=server_seeded)
    assert len(timeline) == 12 and list(timeline["errors"]) == [3.0] * 12  # the replayed window once
    top = api.top_rooms("2026-11-22T05:00:00Z", "2026-11-22T06:00:00Z", limit=2, settings=server_seeded)
    assert list(top["room_id"]) == ["room-2", "room-1"] and list(top["total_error_clients"]) == [36.0, 24.0]
    alerts = api.alert_history(T0, T0 + 3600, key="room-2", settings=server_seeded)
    assert list(alerts["status"]) == ["resolved", "firing", "resolved", "firing"]
    codes = api.error_codes("room-1", T0, T0 + 3600, settings=server_seeded)
    assert sorted(zip(codes["error_code"], codes["weighted_reports"], strict=True)) == [("crash", 13.0), ("timeout", 12.0)]
    frame = api.query_df("SELECT key, count() AS n FROM room_health FINAL WHERE key = %(k)s GROUP BY key",
                         {"k": "room-0"}, server_seeded)
    assert frame.to_dict("records") == [{"key": "room-0", "n": 12}]


def _rebuild_and_read(execute: Any, rows: Any) -> tuple[Sequence[Any], Sequence[Any]]:
    before = rows(ROLLUP_CHECK)
    rollups.rebuild(execute, rows, T0 + 30, T0 + 90)
    return before, rows(ROLLUP_CHECK)


@pytest.mark.integration
def test_rebuild_rollups_removes_the_replayed_window_on_both_engines(
    server_seeded: Settings, clickhouse_db: ClickHouseTarget, chdb_seeded: Chdb,
) -> None:
    doubled = [["room-0", 12.0, 12], ["room-1", 24.0, 12], ["room-2", 39.0, 13]]
    fixed = [["room-0", 12.0, 12], ["room-1", 24.0, 12], ["room-2", 36.0, 12]]
    client = connect(clickhouse_db)
    try:
        before, after = _rebuild_and_read(client.execute, client.execute)
        minute = client.execute("SELECT countMerge(windows) FROM room_health_1m WHERE key = 'room-2' "
                                f"AND bucket = toDateTime({T0})")
    finally:
        client.disconnect()
    assert _norm(before) == doubled and _norm(after) == fixed
    assert minute == [(6,)]
    before, after = _rebuild_and_read(chdb_seeded.execute, chdb_seeded.rows)
    assert _norm(before) == doubled and _norm(after) == fixed
