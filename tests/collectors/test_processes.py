"""`outagewatch collect --processes 2`: one port, two real collector processes, one supervisor (real Kafka)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from collectors.server import PROCESS_HEADER
from collectors.siblings import UP
from outagewatch.pipeline.collector import CollectorProcess
from outagewatch.pipeline.processes import descendants
from outagewatch.stack.process import free_port
from tests.collectors.helpers import BASE_TS, collect_beside_a_taken_port, read_topic, unique_prefix


def _children(pid: int) -> list[int]:
    """The supervisor's collector children (not multiprocessing's resource tracker)."""
    return [child for child in descendants(pid) if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()]


def _state(pid: int) -> str:
    """A process's state letter (``Z`` for a zombie), or "" once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return ""


def _wait_for(condition: Callable[[], bool], collector: CollectorProcess, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, collector.log_tail()
        time.sleep(0.2)


def _answering(url: str, connections: int = 40) -> dict[str, int]:
    """How many of ``connections`` fresh connections each process answered (SO_REUSEPORT spreads them)."""
    seen: dict[str, int] = {}
    for _ in range(connections):
        with requests.get(url + "/healthz", timeout=10, headers={"Connection": "close"}) as answer:
            assert answer.status_code == 200
            process = answer.headers[PROCESS_HEADER]
            seen[process] = seen.get(process, 0) + 1
    return seen


def _accepted_by_process(url: str) -> dict[str, float]:
    """Reports acknowledged, by process, from one scrape of the shared port's /metrics."""
    with requests.get(url + "/metrics", timeout=10) as answer:
        families = {family.name: family for family in text_string_to_metric_families(answer.text)}
    up = {s.labels["process"]: s.value for s in families[UP].samples}
    assert up == {"0": 1.0, "1": 1.0}
    return {s.labels["process"]: s.value for s in families["outagewatch_collector_accepted"].samples
            if s.name.endswith("_total") and s.labels["kind"] == "reports"}


def _post(url: str, report_id: str) -> int:
    """POST one report as a client does: a connection reset (it reached the dying child) is retried once."""
    body = {"reports": [{"report_id": report_id, "ts": BASE_TS, "client_id": "c", "room_id": "r", "kind": "join",
                         "platform": "web"}]}
    for attempt in range(2):
        try:
            with requests.post(url + "/v1/reports", json=body, timeout=30,
                               headers={"Authorization": "Bearer demo-key", "Connection": "close"}) as answer:
                return answer.status_code
        except requests.ConnectionError:
            if attempt:
                raise
    raise AssertionError("unreachable")


@pytest.mark.integration
def test_two_processes_share_one_port_and_a_killed_one_is_replaced(topic_factory: Callable[..., str],
                                                                   kafka_bootstrap: str, tmp_path: Path) -> None:
    topic = topic_factory("processes")
    env = {"OUTAGEWATCH_TOPICS_CLIENT_REPORTS": topic, "OUTAGEWATCH_KAFKA_BOOTSTRAP": kafka_bootstrap}
    prefix = unique_prefix()
    log_path = tmp_path / "collector.log"
    with CollectorProcess(free_port(), env=env, extra_args=("--processes", "2"), log_path=str(log_path)) as collector:
        # /healthz answers once the first child listens; the supervisor is ready once both do.
        _wait_for(lambda: "collector ready at" in log_path.read_text(), collector)
        assert set(_answering(collector.url)) == {"0", "1"}
        # Whichever process takes the scrape answers for both: each sample labelled by its process.
        assert [_post(collector.url, f"{prefix}early-{n}") for n in range(10)] == [202] * 10
        accepted = _accepted_by_process(collector.url)
        assert set(accepted) <= {"0", "1"} and sum(accepted.values()) == 10
        first = _children(collector.pid)
        assert len(first) == 2
        os.kill(first[0], signal.SIGKILL)
        # Its socket goes with it (a connection that reached it is reset: clients retry); the survivor keeps
        # the port, and every request in the gap is accepted.
        _wait_for(lambda: _state(first[0]) in ("Z", ""), collector)
        statuses = [_post(collector.url, f"{prefix}{n}") for n in range(20)]
        _wait_for(lambda: set(_answering(collector.url, 10)) == {"0", "1"}, collector)
        replaced = sorted(set(_children(collector.pid)) - set(first))
        assert len(replaced) == 1
    assert statuses == [202] * 20
    assert collector.process is not None and collector.process.returncode == 0  # both children stopped cleanly
    assert not [pid for pid in first + replaced if Path(f"/proc/{pid}").exists()]
    log = log_path.read_text()
    assert "died with exit code -9; restarting it" in log and "is back" in log
    ids = {report.report_id for _, batch in read_topic(kafka_bootstrap, topic, 30) for report in batch.reports}
    assert ids == {f"{prefix}{n}" for n in range(20)} | {f"{prefix}early-{n}" for n in range(10)}


@pytest.mark.integration
def test_a_port_another_program_holds_is_refused_once_naming_the_setting(kafka_bootstrap: str) -> None:
    port, result = collect_beside_a_taken_port(
        kafka_bootstrap, lambda port: ["--processes", "2", "--port", str(port), "--otlp-port", "0"])
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "(collect --port)" in result.stderr
    assert "Traceback" not in result.stderr and "collectors.server" not in result.stderr  # no child was started
