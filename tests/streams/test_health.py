"""The worker's /healthz, /readyz and /metrics for real.

A stuck worker (SIGSTOP) is tested through the supervisor that notices it:
tests/outagewatch/pipeline/test_supervise.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Any

import pytest

from outagewatch.stack.process import free_port
from tests.streams.conftest import WorkerTopics, generate_reports, produce_batches

pytestmark = pytest.mark.integration


def get(url: str) -> tuple[int | None, Any]:
    try:
        with urllib.request.urlopen(url, timeout=3) as answer:  # noqa: S310 - our own worker
            body = answer.read()
            status = answer.status
    except urllib.error.HTTPError as exc:
        body, status = exc.read(), exc.code
    except OSError:
        return None, None
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body.decode()


def start_worker(worker: WorkerTopics, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = open(worker.log_dir / f"worker-{port}.log", "wb")  # noqa: SIM115 - the worker writes to it until it exits
    process = subprocess.Popen([sys.executable, "-m", "outagewatch", "worker", "--web-port", str(port),
                                "--idle-seconds", "1", "--batch-max", "500"],
                               env={**worker.env, **env}, stdout=log, stderr=subprocess.STDOUT)
    worker.processes.append(process)
    return process


def wait_for(check: Any, timeout_s: float, what: str, worker: WorkerTopics, seen: Any = lambda: None) -> Any:
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"{what} after {timeout_s}s; last: {last or seen()}\n{worker.logs()}")


def test_a_healthy_worker_is_live_ready_and_shows_its_progress(worker_topics: WorkerTopics,
                                                               kafka_bootstrap: str) -> None:
    port = free_port()
    start_worker(worker_topics, port, {})
    now = int(time.time() * 1000)
    produce_batches(kafka_bootstrap, worker_topics.reports, generate_reports(10, 40, now - 20_000, 10_000))
    url = f"http://127.0.0.1:{port}"

    def progressed() -> Any:
        status, body = get(f"{url}/healthz")
        return body if status == 200 and body["last_progress"]["what"] == "window closed" else None

    body = wait_for(progressed, 90, "no window closed on /healthz", worker_topics)
    assert body["live"] and body["assigned_partitions"] == {worker_topics.reports: 4, worker_topics.metrics: 4}
    assert body["last_progress"]["event_time"] is not None
    assert get(f"{url}/readyz")[0] == 200
    status, text = get(f"{url}/metrics")
    assert status == 200
    assert f'outagewatch_worker_assigned_partitions{{topic="{worker_topics.reports}"}} 4.0' in text
    assert 'outagewatch_worker_windows_closed_total{pipeline="room"}' in text
    assert "outagewatch_worker_live 1.0" in text and "outagewatch_detection_decisions_total" in text
