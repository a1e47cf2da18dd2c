"""Scraping a real prometheus-node-exporter into server-metrics (and a target that is down)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator

import pytest
import requests

from collectors.scraper import parse_target, parse_targets, to_samples
from core import schemas
from core.config import Settings
from outagewatch.stack.packages import ensure_peer
from outagewatch.stack.process import free_port, port_open
from tests.collectors.helpers import collector_settings, read_topic, running_collector


@pytest.fixture
def node_exporter() -> Iterator[str]:
    binary = ensure_peer("prometheus-node-exporter")
    port = free_port()
    process = subprocess.Popen([binary, f"--web.listen-address=127.0.0.1:{port}"],  # noqa: S603
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while not port_open("127.0.0.1", port) and time.monotonic() < deadline:
            assert process.poll() is None, "node exporter exited at start-up"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/metrics"
    finally:
        process.terminate()
        process.wait(10)


def test_target_syntax() -> None:
    target = parse_target("http://127.0.0.1:9100/metrics?x=1=audio-edge:eu-1")
    assert (target.url, target.service, target.cluster, target.host) == (
        "http://127.0.0.1:9100/metrics?x=1", "audio-edge", "eu-1", "127.0.0.1:9100")
    assert parse_target("https://h:1/m").service == "h:1"
    with pytest.raises(ValueError, match="must be http"):
        parse_targets(["ftp://h/m=svc"])


def test_samples_keep_labels_skip_nan_and_use_their_own_timestamp() -> None:
    text = ('# TYPE req counter\nreq_total{code="500",path="/join"} 7 1795323600123\n'
            'temp NaN\n# TYPE lat histogram\nlat_bucket{le="+Inf"} 3\nlat_count 3\nlat_sum 1.5\n')
    samples = to_samples(text, parse_target("http://h:1/m=svc:c1"), 1_795_323_700_000)
    assert [(s.name, s.value) for s in samples] == [("req_total", 7.0), ("lat_bucket", 3.0), ("lat_count", 3.0),
                                                    ("lat_sum", 1.5)]
    assert samples[0].labels == {"code": "500", "path": "/join"} and samples[0].ts == 1_795_323_600_123
    assert samples[1].ts == 1_795_323_700_000 and samples[1].cluster == "c1"


@pytest.mark.integration
def test_node_exporter_is_scraped_into_server_metrics(
        node_exporter: str, settings: Settings, topic_factory: Callable[..., str], kafka_bootstrap: str) -> None:
    reports_topic, metrics_topic = topic_factory("reports"), topic_factory("metrics")
    down = f"http://127.0.0.1:{free_port()}/metrics=gone"
    config = collector_settings(settings, reports_topic, metrics_topic,
                                scrape_targets=(f"{node_exporter}=audio-edge:eu-1", down),
                                scrape_interval_seconds=0.5, scrape_timeout_seconds=2.0)
    with running_collector(config) as runner:
        messages = read_topic(kafka_bootstrap, metrics_topic, 200, kind=schemas.MetricBatch)
        metrics = requests.get(runner.url + "/metrics", timeout=5).text
    assert messages, "no samples produced"
    samples = [sample for key, batch in messages for sample in batch.samples]
    assert {key for key, _ in messages} == {b"audio-edge"}
    names = {sample.name for sample in samples}
    assert "node_cpu_seconds_total" in names and "node_memory_MemTotal_bytes" in names
    cpu = next(s for s in samples if s.name == "node_cpu_seconds_total")
    assert cpu.service == "audio-edge" and cpu.cluster == "eu-1" and cpu.host == node_exporter.split("/")[2]
    assert {"cpu", "mode"} <= set(cpu.labels) and cpu.value >= 0
    assert 'outagewatch_collector_scrapes_total{outcome="ok",service="audio-edge"}' in metrics
    assert 'outagewatch_collector_scrapes_total{outcome="scrape_failed",service="gone"}' in metrics
