"""Helpers for the status page tests: history seeded into a test's own database, the page served from it."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from core.config import Settings
from dashboards.status.server import ServerThread, build
from history import migrations
from history.client import ClickHouseTarget, connect
from outagewatch.stack.process import free_port

FINGERPRINT = "4676650f04e6de4c"
ROOM = "room-17"


def alert_event(now: int, fingerprint: str, status: str, scope: str, key: str, kind: str, severity: str,
                starts_at: int, event_ts: int) -> str:
    """One row of ``alerts`` as the sink writes it (``ends_at`` 0 while firing)."""
    ends_at = event_ts if status == "resolved" else 0
    return (f"INSERT INTO alerts (event_ts, fingerprint, status, scope, key, kind, severity, starts_at, ends_at, "
            f"summary, labels_json, evidence_json, affected, inserted_at) SELECT toDateTime({event_ts}), "
            f"'{fingerprint}', '{status}', '{scope}', '{key}', '{kind}', '{severity}', toDateTime({starts_at}), "
            f"toDateTime({ends_at}), 'internal: {key} 42x baseline', '{{}}', '[]', ['{ROOM}'], toDateTime({now})")


def history_statements(now: int) -> list[str]:
    """24 h of volume scores for a region, a platform, a listed room and a service; room-health rollups with
    crash and timeout errors; a resolved incident of a week ago and a forged-report alert (never public)."""
    day = now - 86_400
    scores = []
    for scope, key, detector in (("region", "eu-west", "volume/volume_baseline"),
                                 ("platform", "ios", "volume/volume_baseline"),
                                 ("room", ROOM, "volume/volume_baseline"),
                                 ("room", "room-private", "volume/volume_baseline"),
                                 ("service", "auth", "server_anomaly/isolation_forest")):
        scores.append(
            f"INSERT INTO anomaly_scores (window_start, scope, key, detector, observed, baseline, lower, upper, score, "
            f"inserted_at) SELECT toDateTime({day} + number * 600), '{scope}', '{key}', '{detector}', "
            f"10 + (number % 7) + if(number > 140, 80, 0), 12, 0, 30, 0.1, toDateTime({now}) "
            f"FROM system.numbers LIMIT 144")
    health = (f"INSERT INTO room_health (window_start, window_end, scope, key, listeners, reports, errors, error_clients, "
              f"errors_crash, errors_timeout, latency_p50_ms, latency_p99_ms, inserted_at) "
              f"SELECT toDateTime({day} + number * 3600), toDateTime({day} + number * 3600 + 10), 'region', 'eu-west', "
              f"1000, 500, 30, 30, 20, 10, -1, -1, toDateTime({now}) FROM system.numbers LIMIT 24")
    week_ago = now - 7 * 86_400
    return [*scores, health,
            alert_event(now, "aaaaaaaaaaaaaaaa", "firing", "service", "auth", "server_anomaly", "warning",
                        week_ago, week_ago + 20),
            alert_event(now, "aaaaaaaaaaaaaaaa", "resolved", "service", "auth", "server_anomaly", "warning",
                        week_ago, week_ago + 900),
            alert_event(now, "bbbbbbbbbbbbbbbb", "firing", "room", ROOM, "suspected_forgery", "critical",
                        now - 600, now - 590)]


@dataclass(frozen=True)
class SeededHistory:
    """A test's own database after ``migrate_and_seed`` (the ``seeded_history`` fixture), and its ``now``."""

    target: ClickHouseTarget
    now: int  # epoch seconds the 24 h of history end at


def migrate_and_seed(target: ClickHouseTarget, now: int) -> None:
    client = connect(target)
    try:
        version = str(client.execute("SELECT version()")[0][0])
        migrations.apply(client.execute, client.execute, version, now)
        for statement in history_statements(now):
            client.execute(statement)
    finally:
        client.disconnect()


def execute(target: ClickHouseTarget, statement: str) -> None:
    client = connect(target)
    try:
        client.execute(statement)
    finally:
        client.disconnect()


def page_settings(settings: Settings, target: ClickHouseTarget, cache_seconds: float = 0.5) -> Settings:
    url = f"clickhouse://{target.user}:{target.password}@{target.host}:{target.port}/{target.database}"
    return dataclasses.replace(
        settings,
        clickhouse=dataclasses.replace(settings.clickhouse, url=url),
        status_page=dataclasses.replace(settings.status_page, cache_seconds=cache_seconds, rooms=(f"{ROOM}=Launch night",),
                                        query_timeout_seconds=3.0, title="outagewatch test status"),
    )


@contextmanager
def serving(settings: Settings) -> Iterator[ServerThread]:
    page, _ = build(settings)
    server = ServerThread(page, "127.0.0.1", free_port()).start()
    try:
        yield server
    finally:
        server.stop()


def wait_until(predicate: object, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")
