"""deploy/prometheus/ for real: promtool on the rules and their unit tests, amtool on the Alertmanager
example, and the real Prometheus scraping the real collector, worker and sink.

The live tests run the shipped rules with their ``for`` durations and range
windows divided by ``QUICKER`` (and 2 s windows in the worker), so a stall
fires in about a minute instead of five: the expressions are the shipped ones.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from core.config import Settings
from outagewatch.pipeline.running import Pipeline
from outagewatch.pipeline.supervise import RestartPolicy
from outagewatch.stack.packages import ensure_peer
from tests.deploy.peers import alertmanager, firing_alerts, get_json, prometheus, query, wait_for

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy" / "prometheus"
RULES = DEPLOY / "outagewatch.rules.yml"
QUICKER = 6


def _run(*argv: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(arg) for arg in argv], capture_output=True, text=True, cwd=cwd, timeout=120)


def test_the_rules_pass_promtool_check_and_their_unit_tests() -> None:
    promtool = ensure_peer("promtool")
    checked = _run(promtool, "check", "rules", RULES)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 19 rules found" in checked.stdout
    tested = _run(promtool, "test", "rules", DEPLOY / "tests" / "outagewatch.rules.test.yml")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "SUCCESS" in tested.stdout


def test_the_example_prometheus_and_alertmanager_configs_are_valid() -> None:
    config = _run(ensure_peer("promtool"), "check", "config", DEPLOY / "prometheus.example.yml")
    assert config.returncode == 0, config.stdout + config.stderr
    routes = _run(ensure_peer("amtool"), "check-config", DEPLOY / "alertmanager.example.yml")
    assert routes.returncode == 0, routes.stdout + routes.stderr


def test_the_example_routes_send_a_suspected_forgery_to_the_ticket_queue_and_outages_to_on_call() -> None:
    amtool, config = ensure_peer("amtool"), f"--config.file={DEPLOY / 'alertmanager.example.yml'}"
    for labels, receiver in ((["alertname=suspected_forgery", "kind=suspected_forgery", "scope=room"], "abuse-queue"),
                             (["alertname=crash", "kind=crash", "scope=room"], "on-call")):
        routed = _run(amtool, "config", "routes", "test", config, *labels)
        assert routed.returncode == 0, routed.stdout + routed.stderr
        assert routed.stdout.split() == [receiver]


def rule_metric_names() -> set[str]:
    """Every metric of ours the rules read (alternatives of a ``__name__`` regex spelled out)."""
    names: set[str] = set()
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            expr = rule["expr"]
            for prefix, alternatives, suffix in re.findall(r'"(outagewatch_)\(([a-z|]+)\)(_[a-z_]+)"', expr):
                names |= {f"{prefix}{alternative}{suffix}" for alternative in alternatives.split("|")}
            names |= set(re.findall(r"\b(outagewatch_[a-z_]+)\b", re.sub(r'"[^"]*"', "", expr)))
    return names


def quicker_rules(factor: int) -> str:
    """The shipped rules with ``for`` and every ``[Nm]`` range divided by ``factor``."""
    def seconds(text: str) -> int:
        return int(text[:-1]) * {"s": 1, "m": 60}[text[-1]]

    document = yaml.safe_load(RULES.read_text())
    for group in document["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = f"{max(1, seconds(rule['for']) // factor)}s"
            rule["expr"] = re.sub(r"\[(\d+[sm])\]", lambda m: f"[{max(2, seconds(m.group(1)) // factor)}s]",
                                  str(rule["expr"]))
    return yaml.safe_dump(document, sort_keys=False)


ALERTMANAGER = """
route:
  receiver: nobody
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: nobody
"""

PROMETHEUS = """
global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
rule_files: [outagewatch.rules.yml]
alerting:
  alertmanagers:
    - static_configs: [{{targets: ["{alertmanager}"]}}]
scrape_configs:
  - job_name: outagewatch-collector
    static_configs: [{{targets: ["{collector}"]}}]
  - job_name: outagewatch-worker
    static_configs: [{{targets: ["{worker}"]}}]
  - job_name: outagewatch-sink
    static_configs: [{{targets: ["{sink}"]}}]
"""


@dataclass
class Monitored:
    pipeline: Pipeline
    prometheus: str
    alertmanager: str


def _host_port(url: str) -> str:
    return url.split("//", 1)[1].split("/", 1)[0]


def _post_reports(url: str, stop: threading.Event) -> None:
    """Keep a few rooms reporting (heartbeats, some errors) at wall-clock time, as live clients do."""
    sent = 0
    while not stop.is_set():
        now = int(time.time() * 1000)
        reports = [{"report_id": f"prom-{uuid.uuid4().hex}", "ts": now, "client_id": f"c{i % 40}",
                    "room_id": f"room-{i % 5}", "kind": "error" if i % 10 == 0 else "heartbeat",
                    "platform": "android", "region": "eu-west",
                    **({"error_code": "crash"} if i % 10 == 0 else {})} for i in range(50)]
        request = urllib.request.Request(f"{url}/v1/reports", data=json.dumps({"reports": reports}).encode(),
                                         headers={"Authorization": "Bearer prom-key",
                                                  "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=5):  # noqa: S310 - our collector
                sent += len(reports)
        except OSError:
            pass
        stop.wait(0.5)


@pytest.fixture(scope="module")
def monitored(stack: dict[str, Any], settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Monitored]:
    from kafka.admin import KafkaAdminClient

    from core.kafka_admin import ensure_topics
    from history.api import migrate
    from history.client import connect, parse_url
    from outagewatch.pipeline.isolation import isolated

    home = tmp_path_factory.mktemp("prometheus")
    run_id = uuid.uuid4().hex[:8]
    database = f"test_prom_{run_id}"
    run_settings, env = isolated(settings, f"prom{run_id}", database)
    ensure_topics(run_settings.kafka.bootstrap, dict.fromkeys(run_settings.topics.all(), 4))
    migrate(run_settings)
    stop = threading.Event()
    try:
        with alertmanager(home / "alertmanager", ALERTMANAGER) as am:
            env.update({"OUTAGEWATCH_ALERTING_ALERTMANAGER_URL": am, "OUTAGEWATCH_ALERTING_WATCHDOG_INTERVAL_SECONDS": "2",
                        "OUTAGEWATCH_STREAMS_WINDOW_SECONDS": "2", "OUTAGEWATCH_STREAMS_ALLOWED_LATENESS_SECONDS": "1",
                        "OUTAGEWATCH_COLLECTOR_API_KEYS": "prom:prom-key",
                        "OUTAGEWATCH_STACK_DATA_DIR": str(home / "data")})
            # The supervisor must leave the stopped worker alone: this test watches the monitor notice it.
            pipeline = Pipeline(run_settings, home / "run", {**os.environ, **env},
                                restart=RestartPolicy(unanswered_s=3600)).start()
            try:
                assert pipeline.worker is not None and pipeline.sink is not None
                (home / "prom").mkdir()
                (home / "prom" / "outagewatch.rules.yml").write_text(quicker_rules(QUICKER))
                config = PROMETHEUS.format(alertmanager=_host_port(am), collector=_host_port(pipeline.collector.url),
                                           worker=_host_port(str(pipeline.worker.health_url)),
                                           sink=_host_port(str(pipeline.sink.health_url)))
                poster = threading.Thread(target=_post_reports, args=(pipeline.collector.url, stop), daemon=True)
                poster.start()
                with prometheus(home / "prom", config) as prom:
                    yield Monitored(pipeline, prom, am)
                stop.set()
                poster.join(10)
            finally:
                stop.set()
                worker = pipeline.worker
                if worker is not None and worker.process is not None and worker.alive():
                    os.kill(worker.pid, signal.SIGCONT)
                pipeline.stop()
    finally:
        admin = KafkaAdminClient(bootstrap_servers=run_settings.kafka.bootstrap)
        try:
            admin.delete_topics(list(run_settings.topics.all()))
        except Exception:  # noqa: BLE001 - cleanup only
            pass
        finally:
            admin.close()
        client = connect(parse_url(settings.clickhouse.url).with_database("default"))
        try:
            client.execute(f"DROP DATABASE IF EXISTS `{database}`")
        finally:
            client.disconnect()


def _alertmanager_watchdogs(base: str) -> set[str]:
    """The components of the Watchdog alerts Alertmanager holds active."""
    return {alert["labels"].get("component", "") for alert in get_json(f"{base}/api/v2/alerts")
            if alert["labels"].get("alertname") == "Watchdog" and alert["status"]["state"] == "active"}


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_prometheus_scrapes_every_series_the_rules_read_from_the_real_processes(monitored: Monitored) -> None:
    wanted = rule_metric_names()
    assert len(wanted) >= 12, wanted

    def scraped() -> set[str]:
        return {series["metric"]["__name__"]
                for series in query(monitored.prometheus, 'count by (__name__) ({__name__=~"outagewatch_.+"})')}

    names = wait_for(lambda: wanted <= scraped() and scraped(), 120, "every series the rules read",
                     seen=lambda: sorted(wanted - scraped()))
    assert {"outagewatch_worker_last_progress_timestamp_seconds", "outagewatch_sink_rows_written_total",
            "outagewatch_collector_last_ack_timestamp_seconds"} <= names
    up = {series["metric"]["job"]: series["value"][1] for series in query(monitored.prometheus, "up")}
    assert up == {"outagewatch-collector": "1", "outagewatch-worker": "1", "outagewatch-sink": "1"}
    wait_for(lambda: query(monitored.prometheus, "outagewatch:windows_closed:rate2m > 0"), 60, "windows closing")
    assert not {a["labels"]["alertname"] for a in firing_alerts(monitored.prometheus)} - {"Watchdog"}
    wait_for(lambda: _alertmanager_watchdogs(monitored.alertmanager) == {"prometheus", "alert-engine"}, 60,
             "both Watchdogs in Alertmanager", seen=lambda: _alertmanager_watchdogs(monitored.alertmanager))


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_stopped_worker_fires_the_stall_rules_and_its_watchdog_stops(monitored: Monitored) -> None:
    worker = monitored.pipeline.worker
    assert worker is not None
    wait_for(lambda: _alertmanager_watchdogs(monitored.alertmanager) == {"prometheus", "alert-engine"}, 60,
             "both Watchdogs before the stop")
    os.kill(worker.pid, signal.SIGSTOP)
    try:
        def firing() -> set[str]:
            return {a["labels"]["alertname"] for a in firing_alerts(monitored.prometheus)}

        wait_for(lambda: {"OutagewatchNoWindowClosed", "OutagewatchProcessDown"} <= firing(), 150,
                 "the stall rules firing", seen=firing)
        down = [a for a in firing_alerts(monitored.prometheus) if a["labels"]["alertname"] == "OutagewatchProcessDown"]
        assert {a["labels"]["job"] for a in down} == {"outagewatch-worker"}
        # The engine's copies stop coming: Alertmanager lets its Watchdog expire; Prometheus's stays.
        wait_for(lambda: _alertmanager_watchdogs(monitored.alertmanager) == {"prometheus"}, 60,
                 "the alert engine's Watchdog to expire", seen=lambda: _alertmanager_watchdogs(monitored.alertmanager))
    finally:
        os.kill(worker.pid, signal.SIGCONT)
    wait_for(lambda: _alertmanager_watchdogs(monitored.alertmanager) == {"prometheus", "alert-engine"}, 90,
             "the alert engine's Watchdog back once the worker runs again")
