"""A broker that stops mid-stream: 503 with Retry-After, and every 202'd report is in the topic afterwards.

Runs its own Kafka (free ports, tmp dir): the shared broker is never stopped.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests

from core.config import Settings, load_settings
from core.kafka_admin import ensure_topics
from outagewatch.stack import manager
from outagewatch.stack.process import free_port
from tests.collectors.helpers import JSON, collector_settings, read_topic, report, running_collector, unique_prefix

pytestmark = pytest.mark.integration


def test_broker_down_gives_503_and_loses_no_accepted_report(tmp_path: Path, settings: Settings) -> None:
    kafka_port, controller_port = free_port(), free_port()
    private = load_settings(env={
        "OUTAGEWATCH_STACK_DATA_DIR": str(tmp_path / "data"),
        "OUTAGEWATCH_STACK_CACHE_DIR": str(settings.stack.cache_dir),  # the jars are already there
        "OUTAGEWATCH_KAFKA_BOOTSTRAP": f"127.0.0.1:{kafka_port}",
        "OUTAGEWATCH_KAFKA_CONTROLLER_PORT": str(controller_port),
        "OUTAGEWATCH_STACK_KAFKA_HEAP": "512m",
    })
    node = manager.kafka_node(private)
    node.start()
    try:
        topic = "outage-reports"
        ensure_topics(node.bootstrap, {topic: 2})
        config = collector_settings(settings, topic, bootstrap=node.bootstrap, send_timeout_seconds=4.0,
                                    retry_after_seconds=1.0)
        prefix = unique_prefix()
        accepted: set[str] = set()
        statuses: list[int] = []
        counter = 0

        def send_batch() -> requests.Response:
            nonlocal counter
            items = [report(counter * 10 + i, room=f"room-{i % 3}", prefix=prefix) for i in range(10)]
            counter += 1
            answer = requests.post(runner.url + "/v1/reports", json={"reports": items}, headers=JSON, timeout=30)
            statuses.append(answer.status_code)
            if answer.status_code == 202:
                assert answer.json()["accepted"] == 10
                accepted.update(item["report_id"] for item in items)
            else:
                assert answer.status_code == 503, answer.text
                assert int(answer.headers["Retry-After"]) >= 1
            return answer

        with running_collector(config) as runner:
            for _ in range(5):
                assert send_batch().status_code == 202
            node.stop()
            deadline = time.monotonic() + 30
            outage: list[int] = []
            while time.monotonic() < deadline and outage.count(503) < 3:
                outage.append(send_batch().status_code)
            assert outage.count(503) >= 3, outage
            assert requests.get(runner.url + "/readyz", timeout=10).status_code == 503

            node.start()
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                answer = send_batch()
                if answer.status_code == 202:
                    break
                time.sleep(float(answer.headers["Retry-After"]))
            assert statuses[-1] == 202, statuses
            for _ in range(3):
                assert send_batch().status_code == 202

        found = {r.report_id for _, batch in read_topic(node.bootstrap, topic, len(accepted), timeout_s=30)
                 for r in batch.reports}
        assert accepted - found == set(), f"{len(accepted - found)} accepted reports missing from the topic"
    finally:
        node.stop()
