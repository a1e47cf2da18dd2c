"""The collector over real HTTP against the real broker: every answer of POST /v1/reports and /v1/metrics;
and, with a fake producer, that a 202 waits for the broker's acknowledgement."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
import requests
from kafka.errors import KafkaTimeoutError

from collectors.server import CollectorRunner, producer_settings, start
from collectors.sink import KafkaSink
from core import schemas
from core.config import Settings
from core.timeutil import ManualClock, format_ms
from tests.collectors.fakes import FakeProducer
from tests.collectors.helpers import (
    AUTH,
    BASE_TS,
    JSON,
    collector_settings,
    read_topic,
    report,
    running_collector,
    unique_prefix,
)


@pytest.fixture
def topics(topic_factory: Callable[..., str]) -> tuple[str, str]:
    return topic_factory("reports", partitions=4), topic_factory("metrics", partitions=2)


@pytest.fixture
def collector(settings: Settings, topics: tuple[str, str], kafka_bootstrap: str) -> Any:
    with running_collector(collector_settings(settings, *topics, max_body_bytes=64 * 1024,
                                              max_batch_items=100)) as runner:
        yield runner


def post(runner: CollectorRunner, body: Any, headers: dict[str, str] | None = None,
         path: str = "/v1/reports") -> requests.Response:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return requests.post(runner.url + path, data=data, headers=JSON if headers is None else headers, timeout=30)


@pytest.mark.integration
def test_valid_reports_are_acknowledged_and_in_the_topic_grouped_by_room(
        collector: CollectorRunner, topics: tuple[str, str], kafka_bootstrap: str) -> None:
    prefix = unique_prefix()
    items = [report(i, room=f"room-{i % 3}", prefix=prefix) for i in range(30)]
    items[4] = report(4, room="room-1", kind="error", prefix=prefix, ts=format_ms(BASE_TS + 4))
    items.append({"report_id": "broken", "kind": "heartbeat"})
    items.append(report(99, kind="error", prefix=prefix, error_code="not-a-code"))
    answer = post(collector, {"reports": items})
    assert answer.status_code == 202, answer.text
    payload = answer.json()
    assert (payload["accepted"], payload["rejected"]) == (30, 2)
    assert [e["index"] for e in payload["errors"]] == [30, 31]
    assert "ts" in payload["errors"][0]["error"] and "error_code" in payload["errors"][1]["error"]

    messages = read_topic(kafka_bootstrap, topics[0], 30)
    assert sorted(key for key, _ in messages) == [b"room-0", b"room-1", b"room-2"]  # one message per room
    by_id = {}
    for key, batch in messages:
        for item in batch.reports:
            assert item.room_id.encode() == key
            by_id[item.report_id] = item
    assert set(by_id) == {item["report_id"] for item in items[:30]}
    assert by_id[f"{prefix}4"].ts == BASE_TS + 4 and by_id[f"{prefix}4"].error_code == "crash"


@pytest.mark.integration
def test_ndjson_and_gzip_bodies(collector: CollectorRunner, topics: tuple[str, str], kafka_bootstrap: str) -> None:
    prefix = unique_prefix()
    lines = b"\n".join(json.dumps(report(i, prefix=prefix)).encode() for i in range(5)) + b"\n\nnot json\n"
    answer = post(collector, gzip.compress(lines),
                  {**AUTH, "Content-Type": "application/x-ndjson", "Content-Encoding": "gzip"})
    assert answer.status_code == 202, answer.text
    assert answer.json()["accepted"] == 5 and answer.json()["errors"][0]["index"] == 5
    answer = post(collector, gzip.compress(json.dumps({"reports": [report(9, prefix=prefix)]}).encode()),
                  {**JSON, "Content-Encoding": "gzip"})
    assert answer.status_code == 202 and answer.json()["accepted"] == 1
    ids = {r.report_id for _, batch in read_topic(kafka_bootstrap, topics[0], 6) for r in batch.reports}
    assert ids == {f"{prefix}{i}" for i in (0, 1, 2, 3, 4, 9)}


@pytest.mark.integration
def test_duplicates_inside_the_horizon_are_dropped_and_counted(collector: CollectorRunner) -> None:
    prefix = unique_prefix()
    batch = {"reports": [report(i, prefix=prefix) for i in range(10)]}
    first, second = post(collector, batch).json(), post(collector, batch).json()
    assert (first["accepted"], first["duplicates"]) == (10, 0)
    assert (second["accepted"], second["duplicates"]) == (0, 10)
    same_request = post(collector, {"reports": [report(50, prefix=prefix)] * 3}).json()
    assert (same_request["accepted"], same_request["duplicates"]) == (1, 2)
    metrics = requests.get(collector.url + "/metrics", timeout=10).text
    assert "outagewatch_collector_duplicates_total 12.0" in metrics


@pytest.mark.integration
def test_400_for_an_unparseable_body_with_the_parsers_reason(collector: CollectorRunner) -> None:
    answer = post(collector, b'{"reports": [')
    assert answer.status_code == 400 and "truncated" in answer.json()["error"]
    answer = post(collector, {"items": []})
    assert answer.status_code == 400 and "reports" in answer.json()["error"]
    answer = post(collector, b"\x1f\x8b garbage", {**JSON, "Content-Encoding": "gzip"})
    assert answer.status_code == 400 and "gzip" in answer.json()["error"]


@pytest.mark.integration
def test_401_without_a_valid_key(collector: CollectorRunner) -> None:
    body = {"reports": [report(1)]}
    for headers in ({"Content-Type": "application/json"},
                    {"Content-Type": "application/json", "Authorization": "Bearer wrong"},
                    {"Content-Type": "application/json", "Authorization": "Basic dGVzdC1rZXk="}):
        answer = post(collector, body, headers)
        assert answer.status_code == 401, headers
        assert "Authorization" in answer.json()["error"]


@pytest.mark.integration
def test_413_for_a_large_body_a_long_batch_and_a_gzip_bomb(collector: CollectorRunner) -> None:
    answer = post(collector, b" " * (65 * 1024))
    assert answer.status_code == 413
    answer = post(collector, {"reports": [report(i) for i in range(101)]})
    assert answer.status_code == 413 and "at most 100" in answer.json()["error"]
    bomb = gzip.compress(b'{"reports": [' + b" " * (10 * 1024 * 1024) + b"]}")
    assert len(bomb) < 64 * 1024
    answer = post(collector, bomb, {**JSON, "Content-Encoding": "gzip"})
    assert answer.status_code == 413 and "inflates" in answer.json()["error"]


@pytest.mark.integration
def test_415_for_a_wrong_content_type(collector: CollectorRunner) -> None:
    answer = post(collector, {"reports": []}, {**AUTH, "Content-Type": "text/plain"})
    assert answer.status_code == 415 and "application/x-ndjson" in answer.json()["error"]
    answer = post(collector, {"reports": []}, {**JSON, "Content-Encoding": "br"})
    assert answer.status_code == 415


@pytest.mark.integration
def test_429_over_the_keys_rate_with_retry_after(settings: Settings, topics: tuple[str, str]) -> None:
    slow = collector_settings(settings, *topics, rate_per_second=1.0, rate_burst=20.0)
    with running_collector(slow) as runner:
        prefix = unique_prefix()
        assert post(runner, {"reports": [report(i, prefix=prefix) for i in range(15)]}).status_code == 202
        answer = post(runner, {"reports": [report(i, prefix=prefix) for i in range(15, 30)]})
        assert answer.status_code == 429
        assert int(answer.headers["Retry-After"]) >= 10  # 10 tokens short at 1 token/s


@pytest.mark.integration
def test_503_with_retry_after_when_over_the_inflight_limit(settings: Settings, topics: tuple[str, str]) -> None:
    with running_collector(collector_settings(settings, *topics, max_inflight_requests=0,
                                              retry_after_seconds=3.0)) as runner:
        answer = post(runner, {"reports": [report(1)]})
        assert answer.status_code == 503 and answer.headers["Retry-After"] == "3"
        metrics = requests.get(runner.url + "/metrics", timeout=10).text
        assert 'outagewatch_collector_shed_total{cause="inflight"} 1.0' in metrics


@pytest.mark.integration
def test_pushed_metric_samples_go_to_server_metrics_keyed_by_service(
        collector: CollectorRunner, topics: tuple[str, str], kafka_bootstrap: str) -> None:
    samples = [{"ts": BASE_TS, "service": "audio-edge", "cluster": "eu-1", "host": f"edge-{i}",
                "name": "cpu_usage", "value": 0.5 + i / 10, "labels": {"core": str(i)}} for i in range(4)]
    samples.append({"ts": BASE_TS, "service": "rooms-api", "name": "p99_ms", "value": 140})
    samples.append({"service": "rooms-api", "name": "no_ts", "value": 1})
    answer = post(collector, {"samples": samples}, path="/v1/metrics")
    assert answer.status_code == 202, answer.text
    assert (answer.json()["accepted"], answer.json()["rejected"]) == (5, 1)
    assert post(collector, {"samples": samples}, {"Content-Type": "application/json"}, "/v1/metrics").status_code == 401
    messages = read_topic(kafka_bootstrap, topics[1], 5, kind=schemas.MetricBatch)
    by_key = {key: batch.samples for key, batch in messages}
    assert set(by_key) == {b"audio-edge", b"rooms-api"}
    assert sorted(s.host for s in by_key[b"audio-edge"]) == ["edge-0", "edge-1", "edge-2", "edge-3"]
    assert by_key[b"rooms-api"][0].value == 140.0


@pytest.mark.integration
def test_health_readiness_and_prometheus_metrics(collector: CollectorRunner) -> None:
    live = requests.get(collector.url + "/healthz", timeout=5).json()
    assert live["status"] == "live" and live["process"] == "collector"
    assert requests.get(collector.url + "/readyz", timeout=5).status_code == 200
    post(collector, {"reports": [report(1, prefix=unique_prefix()), {"report_id": "x"}]})
    acknowledged = requests.get(collector.url + "/healthz", timeout=5).json()
    assert acknowledged["last_progress"]["what"] == "records acknowledged by Kafka"
    assert acknowledged["input_waiting"] == 0
    text = requests.get(collector.url + "/metrics", timeout=5).text
    from prometheus_client.parser import text_string_to_metric_families

    families = {family.name: family for family in text_string_to_metric_families(text)}
    assert {"outagewatch_collector_requests", "outagewatch_collector_accepted", "outagewatch_collector_rejected",
            "outagewatch_collector_kafka_send_seconds", "outagewatch_collector_kafka_pending_bytes",
            "outagewatch_collector_inflight_requests", "outagewatch_collector_shed",
            "outagewatch_collector_last_ack_timestamp_seconds", "outagewatch_collector_live"} <= set(families)
    rejected = {s.labels["reason"]: s.value for s in families["outagewatch_collector_rejected"].samples
                if s.name.endswith("_total")}
    assert rejected == {"missing_field": 1.0}
    statuses = {(s.labels["path"], s.labels["status"]) for s in families["outagewatch_collector_requests"].samples}
    assert ("/v1/reports", "202") in statuses and ("/readyz", "200") in statuses


@pytest.mark.integration
def test_heartbeats_are_sampled_with_weights_under_load_and_errors_never(
        settings: Settings, topics: tuple[str, str], kafka_bootstrap: str) -> None:
    # With 2 requests allowed in flight, the request itself is half the limit: sampling is on.
    config = collector_settings(settings, *topics, max_inflight_requests=2, sample_min_keep=0.5)
    prefix = unique_prefix()
    items = [report(i, prefix=prefix) for i in range(400)] + [report(i, kind="error", prefix=prefix)
                                                              for i in range(400, 420)]
    with running_collector(config) as runner:
        payload = post(runner, {"reports": items}).json()
    assert payload["accepted"] == 420 and 100 < payload["sampled_out"] < 300
    kept = [r for _, batch in read_topic(kafka_bootstrap, topics[0], 420 - payload["sampled_out"])
            for r in batch.reports]
    assert len(kept) == 420 - payload["sampled_out"]
    assert all(r.weight == 2.0 for r in kept if r.kind == "heartbeat")
    assert sum(r.kind == "error" and r.weight == 1.0 for r in kept) == 20


@pytest.mark.integration
def test_concurrent_requests_share_one_record_per_room_and_all_get_their_202(
        settings: Settings, topics: tuple[str, str], kafka_bootstrap: str) -> None:
    from concurrent.futures import ThreadPoolExecutor

    prefix = unique_prefix()
    with running_collector(collector_settings(settings, *topics, coalesce_ms=300.0)) as runner:
        requests.get(runner.url + "/healthz", timeout=5)
        bodies = [{"reports": [report(n * 100 + i, room=f"room-{i % 3}", prefix=prefix) for i in range(9)]}
                  for n in range(4)]
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda body: post(runner, body), bodies))
    assert [a.status_code for a in answers] == [202] * 4 and all(a.json()["accepted"] == 9 for a in answers)
    messages = read_topic(kafka_bootstrap, topics[0], 36)
    assert sum(len(batch.reports) for _, batch in messages) == 36
    assert len(messages) < 12, "requests within the linger should share their rooms' records"
    assert all({r.room_id.encode() for r in batch.reports} == {key} for key, batch in messages)


@pytest.mark.integration
def test_a_full_flush_goes_out_before_the_linger_ends(
        settings: Settings, topics: tuple[str, str], kafka_bootstrap: str) -> None:
    import time

    prefix = unique_prefix()
    # A linger far longer than the test: only coalesce_max_reports can send these in time.
    config = collector_settings(settings, *topics, coalesce_ms=60_000.0, coalesce_max_reports=9)
    with running_collector(config) as runner:
        requests.get(runner.url + "/healthz", timeout=5)
        started = time.monotonic()
        answer = post(runner, {"reports": [report(i, room=f"room-{i % 3}", prefix=prefix) for i in range(9)]})
        waited = time.monotonic() - started
    assert answer.status_code == 202 and answer.json()["accepted"] == 9
    assert waited < 20, f"the request waited {waited:.1f}s: the flush waited for the linger"
    assert sum(len(batch.reports) for _, batch in read_topic(kafka_bootstrap, topics[0], 9)) == 9


# -- 202 only after the broker's acknowledgement, with a fake producer: deterministic -----------


def _reports_body(prefix: str) -> bytes:
    return json.dumps({"reports": [report(i, room=f"room-{i}", prefix=prefix) for i in range(3)]}).encode()


def test_a_202_comes_only_after_the_broker_acknowledged_and_a_failure_is_a_503_that_accepted_nothing(
        settings: Settings) -> None:
    config = collector_settings(settings, "reports-topic", "metrics-topic", retry_after_seconds=1.0)
    producer, clock = FakeProducer(), ManualClock(BASE_TS)
    expired = KafkaTimeoutError("Batch for reports-topic-0 containing 1 record(s) expired")

    async def post_and_answer(session: aiohttp.ClientSession, url: str, body: bytes,
                              broker: Callable[[], None] | None) -> tuple[int, dict[str, Any], str | None]:
        """POST ``body``; once its records reach the producer (and no answer came), let ``broker`` answer."""
        posting = asyncio.create_task(session.post(url + "/v1/reports", data=body, headers=JSON))
        if broker is not None:
            for _ in range(500):
                if producer.waiting:
                    break
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.2)  # time enough for an early answer to arrive
            assert producer.waiting and not posting.done(), "the collector answered before the broker did"
            broker()
        response = await asyncio.wait_for(posting, 10)
        return response.status, await response.json(), response.headers.get("Retry-After")

    async def scenario() -> None:
        sink = KafkaSink(producer_settings(config), clock, make_producer=producer)
        await sink.start([config.topics.client_reports, config.topics.server_metrics])
        runner = await start(config, host="127.0.0.1", port=0, clock=clock, sink=sink)
        try:
            async with aiohttp.ClientSession() as session:
                status, answer, _ = await post_and_answer(session, runner.url, _reports_body("a-"),
                                                          producer.acknowledge_all)
                assert (status, answer["accepted"]) == (202, 3)
                status, answer, retry_after = await post_and_answer(session, runner.url, _reports_body("b-"),
                                                                    lambda: producer.fail_all(expired))
                assert (status, retry_after) == (503, "1")
                assert answer["error"].startswith("Kafka cannot take the reports now, nothing was accepted")
                sent = len(producer.sent)
                status, _, _ = await post_and_answer(session, runner.url, _reports_body("b-"), None)
                assert status == 503 and len(producer.sent) == sent  # failing fast: nothing handed over
                clock.advance(1_000)
                status, answer, _ = await post_and_answer(session, runner.url, _reports_body("b-"),
                                                          producer.acknowledge_all)
                # The refused reports were not remembered as seen: the retry is accepted, not a duplicate.
                assert (status, answer["accepted"], answer["duplicates"]) == (202, 3, 0)
        finally:
            await runner.stop()

    asyncio.run(scenario())
