"""`outagewatch collect` as a real subprocess (what the demo and the benchmark start)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest
import requests

from outagewatch.pipeline.collector import CollectorProcess
from outagewatch.stack.process import free_port
from tests.collectors.helpers import BASE_TS, collect_beside_a_taken_port, read_topic, unique_prefix


def test_help_explains_every_flag() -> None:
    result = subprocess.run([sys.executable, "-m", "outagewatch", "collect", "--help"], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0
    for flag in ("--host", "--port", "--processes", "--otlp-port", "--scrape", "--scrape-interval", "--api-key"):
        assert flag in result.stdout


@pytest.mark.integration
def test_collect_subprocess_accepts_reports_into_kafka(topic_factory: Callable[..., str], kafka_bootstrap: str,
                                                       tmp_path: object) -> None:
    topic = topic_factory("cli")
    env = {"OUTAGEWATCH_TOPICS_CLIENT_REPORTS": topic, "OUTAGEWATCH_KAFKA_BOOTSTRAP": kafka_bootstrap}
    report_id = f"{unique_prefix()}1"
    with CollectorProcess(free_port(), env=env, extra_args=("--api-key", "cli:cli-secret")) as collector:
        answer = requests.post(collector.url + "/v1/reports", headers={"Authorization": "Bearer cli-secret"},
                               json={"reports": [{"report_id": report_id, "ts": BASE_TS, "client_id": "c",
                                                  "room_id": "r", "kind": "join", "platform": "web"}]}, timeout=30)
        assert answer.status_code == 202, answer.text
        assert requests.post(collector.url + "/v1/reports", headers={"Authorization": "Bearer demo-key"},
                             json={"reports": []}, timeout=30).status_code == 401
    assert collector.process is not None and collector.process.returncode == 0  # clean exit on SIGTERM
    [(key, batch)] = read_topic(kafka_bootstrap, topic, 1)
    assert key == b"r" and batch.reports[0].report_id == report_id


@pytest.mark.integration
def test_an_otlp_port_in_use_stops_the_collector_with_the_setting_to_change(kafka_bootstrap: str) -> None:
    port, result = collect_beside_a_taken_port(kafka_bootstrap, lambda port: ["--port", "0", "--otlp-port", str(port)])
    assert result.returncode == 1
    assert f"cannot listen for OTLP/HTTP on 127.0.0.1:{port}" in result.stderr
    assert "OUTAGEWATCH_COLLECTOR_OTLP_PORT (collect --otlp-port)" in result.stderr
