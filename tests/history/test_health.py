"""The sink's /healthz, /readyz and /metrics: the answers themselves, then a real sink through two outages.

ClickHouse stopped: the sink pauses and retries, which is live but not
ready. ClickHouse frozen (SIGSTOP: connections accepted, nothing answered):
an insert hangs, nothing moves while reports wait, and the sink reports
"not live", says why and exits with status 75 for its supervisor.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from core.config import Settings, TopicSettings
from core.health import EXIT_NOT_LIVE, Health, LivenessPolicy
from core.timeutil import ManualClock
from history.health import SinkHealthServer
from outagewatch.stack.clickhouse import ClickHouseNode
from outagewatch.stack.process import free_port
from tests.history.history_testkit import produce, report_batches, url_of, wait_for


def get(url: str) -> tuple[int | None, Any]:
    try:
        with urllib.request.urlopen(url, timeout=3) as answer:  # noqa: S310 - our own sink
            status, body = answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read()
    except OSError:
        return None, None
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode()


def test_the_endpoints_answer_what_the_health_says() -> None:
    clock = ManualClock(1_795_323_600_000)
    health = Health("history sink", clock, LivenessPolicy(stall_seconds=60))
    server = SinkHealthServer(health, free_port()).start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        assert get(f"{base}/readyz")[0] == 503, "no assignment yet"
        health.assigned({"client-reports": 8})
        health.moved("batch written", event_ms=1_795_323_590_000)
        assert get(f"{base}/healthz")[0] == 200 and get(f"{base}/readyz")[0] == 200
        health.waiting(5000, "messages of its topics")
        health.blocked("ClickHouse writes fail (Connection refused); consumption paused with 5000 rows buffered")
        status, body = get(f"{base}/readyz")
        assert status == 503 and body["reason"].startswith("ClickHouse writes fail") and body["live"]
        clock.advance(60_000)
        status, body = get(f"{base}/healthz")
        assert status == 503 and body["status"] == "not live"
        assert body["reason"].startswith("5000 messages of its topics waiting and nothing moved for 60s")
        status, text = get(f"{base}/metrics")
        assert status == 200 and "outagewatch_sink_live 0.0" in text
        assert "outagewatch_sink_last_report_timestamp_seconds 1.79532359e+09" in text
        assert get(f"{base}/nope")[0] == 404
    finally:
        server.stop()


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_stopped_clickhouse_makes_it_unready_and_a_frozen_one_not_live(
        settings: Settings, kafka_bootstrap: str, fresh_topics: TopicSettings, private_clickhouse: ClickHouseNode,
        tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "OUTAGEWATCH_CLICKHOUSE_URL": url_of(private_clickhouse.target),
           "OUTAGEWATCH_HISTORY_SINK_GROUP_ID": f"test-sink-health-{uuid.uuid4().hex[:8]}",
           "OUTAGEWATCH_HISTORY_SINK_BATCH_SECONDS": "0.3", "OUTAGEWATCH_HISTORY_SINK_RETRY_MAX_SECONDS": "2",
           "OUTAGEWATCH_HEALTH_STALL_SECONDS": "10", "OUTAGEWATCH_KAFKA_BOOTSTRAP": kafka_bootstrap,
           **{f"OUTAGEWATCH_TOPICS_{name.upper()}": topic for name, topic in vars(fresh_topics).items()}}
    log_path = tmp_path / "sink.log"
    with log_path.open("wb") as log:
        sink = subprocess.Popen([sys.executable, "-m", "outagewatch", "history", "sink", "--health-port", str(port)],
                                env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"

    def sink_log() -> str:
        return log_path.read_text(errors="replace")[-4000:]

    frozen = False
    clickhouse_pid = private_clickhouse.process.pid()
    assert clickhouse_pid is not None
    try:
        produce(kafka_bootstrap, fresh_topics.client_reports, report_batches(batches=20, per_batch=10, rooms=4))
        wait_for(lambda: 'outagewatch_sink_rows_written_total{table="reports"} 200.0' in str(get(f"{base}/metrics")[1]),
                 90, "200 reports written, on /metrics", seen=sink_log)
        assert get(f"{base}/readyz")[0] == 200

        private_clickhouse.stop()
        produce(kafka_bootstrap, fresh_topics.client_reports, report_batches(batches=5, per_batch=10, rooms=4, start=20))
        wait_for(lambda: get(f"{base}/readyz")[0] == 503, 60, "not ready while ClickHouse is down", seen=sink_log)
        status, body = get(f"{base}/readyz")
        assert body["live"] and "ClickHouse writes fail" in body["reason"], body
        assert "outagewatch_sink_paused 1.0" in get(f"{base}/metrics")[1]
        private_clickhouse.start(timeout=60)
        clickhouse_pid = private_clickhouse.process.pid()
        assert clickhouse_pid is not None
        wait_for(lambda: get(f"{base}/readyz")[0] == 200, 60, "ready again once ClickHouse is back", seen=sink_log)

        os.kill(clickhouse_pid, signal.SIGSTOP)
        frozen = True
        produce(kafka_bootstrap, fresh_topics.client_reports, report_batches(batches=5, per_batch=10, rooms=4, start=25))
        seen: list[Any] = []

        def not_live_or_gone() -> bool:
            # The guard exits soon after /healthz turns 503: on a loaded machine a poll can miss that
            # moment, and the exit with its logged reason is the rule that matters.
            status, body = get(f"{base}/healthz")
            if status == 503:
                seen.append(body)
            return status == 503 or sink.poll() is not None

        wait_for(not_live_or_gone, 60, "not live while ClickHouse hangs", seen=lambda: (seen[-1:], sink_log()))
        for body in seen:
            assert "loop has not run" in body["reason"] or "nothing moved" in body["reason"], body
        assert sink.wait(30) == EXIT_NOT_LIVE
        reason = sink_log().split("history sink is not live:", 1)[1]
        assert "loop has not run" in reason or "nothing moved" in reason, reason
    finally:
        if frozen:
            os.kill(clickhouse_pid, signal.SIGCONT)
        if sink.poll() is None:
            sink.kill()
            sink.wait()
