"""The whole chain on the real stack: simulator → Kafka → worker → sink → ClickHouse.

The room windows that end up in ClickHouse must equal the counts computed
directly from the generated reports, and every report must be stored once.
Everything runs as the real CLI processes on fresh topics and a fresh database.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from core.config import Settings
from history.client import ClickHouseTarget, connect
from outagewatch.stack.process import free_port

pytestmark = pytest.mark.integration

WINDOW_MS = 10_000
# Two minutes of event time ending about now, on a window boundary: the worker refuses reports further
# from their Kafka record's timestamp than event_time.max_age_seconds.
START_MS = (time.time_ns() // 1_000_000 - 180_000) // 60_000 * 60_000


def _expected_room_windows(reports: list[Any]) -> dict[tuple[str, int], dict[str, float]]:
    """Per (room, window start): reports, errors and distinct listening clients, straight from the reports."""
    windows: dict[tuple[str, int], dict[str, Any]] = defaultdict(lambda: {"reports": 0, "errors": 0, "listeners": set()})
    for report in reports:
        window = windows[(report.room_id, report.ts // WINDOW_MS * WINDOW_MS)]
        window["reports"] += 1
        if report.kind == "error":
            window["errors"] += 1
        elif report.kind in ("heartbeat", "join"):
            window["listeners"].add(report.client_id)
    return {key: {"reports": float(w["reports"]), "errors": float(w["errors"]), "listeners": float(len(w["listeners"]))}
            for key, w in windows.items()}


def _start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "outagewatch", *args], env=env, stdout=out,  # noqa: S603
                                stderr=subprocess.STDOUT)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_simulated_reports_reach_clickhouse_as_exact_room_windows(
    settings: Settings, topic_factory: Any, clickhouse_db: ClickHouseTarget, tmp_path: Path,
) -> None:
    from outagewatch.simulator import generate, send_kafka

    ticks = list(generate("room_failure", seed=5, scale=0.01, duration_s=120, rooms=12, start_ms=START_MS))
    reports = [report for tick in ticks for report in tick.client_reports()]
    assert len(reports) > 1000, "the scenario should produce a meaningful sample"

    suffix = uuid.uuid4().hex[:8]
    topics = {name: topic_factory(name.replace("_", "-"), partitions=4)
              for name in ("client_reports", "server_metrics", "room_health", "service_health", "alerts", "dead_letter")}
    env = dict(os.environ)
    env.update({f"OUTAGEWATCH_TOPICS_{name.upper()}": topic for name, topic in topics.items()})
    env.update({
        "OUTAGEWATCH_STREAMS_APP_ID": f"e2e-{suffix}",
        "OUTAGEWATCH_HISTORY_SINK_GROUP_ID": f"e2e-sink-{suffix}",
        "OUTAGEWATCH_CLICKHOUSE_URL": f"clickhouse://{clickhouse_db.user}:{clickhouse_db.password}@"
                                      f"{clickhouse_db.host}:{clickhouse_db.port}/{clickhouse_db.database}",
        "OUTAGEWATCH_STACK_DATA_DIR": str(tmp_path / "data"),
        "OUTAGEWATCH_STACK_CACHE_DIR": str(settings.stack.cache_dir),
    })
    delivery = send_kafka(ticks, settings.kafka.bootstrap, topics["client_reports"], topics["server_metrics"])
    assert delivery.reports == len(reports)

    worker = _start(["worker", "--web-port", str(free_port()), "--idle-seconds", "2"], env, tmp_path / "worker.log")
    sink = _start(["history", "sink"], env, tmp_path / "sink.log")
    expected = _expected_room_windows(reports)
    client = connect(clickhouse_db)
    stored: dict[tuple[str, int], dict[str, float]] = {}
    stored_reports = 0
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline:
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            assert sink.poll() is None, (tmp_path / "sink.log").read_text()[-3000:]
            try:
                rows = client.execute(
                    "SELECT key, toUInt64(window_start) * 1000, argMax(reports, inserted_at), "
                    "argMax(errors, inserted_at), argMax(listeners, inserted_at) FROM room_health "
                    "WHERE scope = 'room' GROUP BY key, window_start")
                stored = {(key, start): {"reports": r, "errors": e, "listeners": li} for key, start, r, e, li in rows}
                stored_reports = client.execute("SELECT uniqExact(report_id) FROM reports")[0][0]
            except Exception:  # noqa: BLE001 - the sink creates the tables when it starts
                stored = {}
            if len(stored) >= len(expected) and stored_reports >= len(reports):
                break
            time.sleep(1)
    finally:
        client.disconnect()
        _stop(worker)
        _stop(sink)
    assert stored_reports == len(reports), f"{stored_reports} of {len(reports)} reports stored"
    assert set(stored) == set(expected), (
        f"missing windows {sorted(set(expected) - set(stored))[:5]}, extra {sorted(set(stored) - set(expected))[:5]}")
    mismatches = {key: (stored[key], expected[key]) for key in expected if stored[key] != expected[key]}
    assert not mismatches, f"{len(mismatches)} windows differ, e.g. {next(iter(mismatches.items()))}"
