"""Simulator targets against real peers: files, the real Kafka broker, a real HTTP server."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from core.schemas import MetricBatch, MetricSample, ReportBatch, decode, decode_report
from outagewatch.cli import main
from outagewatch.simulator import (
    HttpPolicy,
    Pacer,
    TargetError,
    generate,
    labels,
    send_http,
    send_kafka,
    write_files,
)

RUN = {"scenario": "room_failure", "seed": 4, "scale": 0.01, "rooms": 30, "duration_s": 90}


def expected_ids() -> list[str]:
    return [decode_report(line).report_id for tick in generate(**RUN) for line in tick.report_lines()]


def test_files_target_writes_valid_reports_metrics_and_labels(tmp_path: Path) -> None:
    doc = labels("room_failure")
    delivery = write_files(generate(**RUN), tmp_path, doc)
    lines = (tmp_path / "reports.ndjson").read_bytes().splitlines()
    assert [decode_report(line).report_id for line in lines] == expected_ids()
    assert delivery.reports == len(lines) > 100
    metrics = [decode(line, MetricSample) for line in (tmp_path / "metrics.ndjson").read_bytes().splitlines()]
    assert len(metrics) == delivery.metrics == 9 * 180
    assert json.loads((tmp_path / "labels.json").read_text()) == doc


def test_cli_simulate_files_and_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["simulate", "--scenario", "spammer", "--seed", "1", "--scale", "0.01", "--duration", "20",
                 "--rooms", "20", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["reports"] == len((out / "reports.ndjson").read_bytes().splitlines()) > 0
    assert main(["simulate", "--list"]) == 0
    listed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {row["scenario"] for row in listed} >= {"launch_night", "benign_surge", "spammer"}
    with pytest.raises(SystemExit):
        main(["simulate", "--help"])
    helptext = capsys.readouterr().out
    for flag in ("--scenario", "--seed", "--scale", "--duration", "--rooms", "--speed", "--to", "--out", "--url",
                 "--api-key", "--list", "--start"):
        assert flag in helptext


def test_files_keep_their_fixed_start_and_start_can_be_chosen(tmp_path: Path) -> None:
    from core.timeutil import parse_event_time
    from outagewatch.simulator import DEFAULT_START_MS

    def first_ts(*extra: str) -> int:
        out = tmp_path / "-".join(extra or ("default",))
        assert main(["simulate", "--scenario", "spammer", "--scale", "0.01", "--duration", "3", "--rooms", "5",
                     "--out", str(out), *extra]) == 0
        return decode_report((out / "reports.ndjson").read_bytes().splitlines()[0]).ts  # type: ignore[return-value]

    assert first_ts() // 1000 == DEFAULT_START_MS // 1000
    assert first_ts("--start", "2026-11-30T12:00:00Z") // 1000 == parse_event_time("2026-11-30T12:00:00Z") // 1000
    assert main(["simulate", "--scenario", "spammer", "--start", "yesterday", "--out", str(tmp_path / "x")]) == 1


def test_speed_compresses_event_time_but_keeps_it(tmp_path: Path) -> None:
    started = time.monotonic()
    run = dict(RUN, duration_s=5)
    write_files(generate(**run), tmp_path, {"incidents": []}, pacer=Pacer(speed=4))
    # 4 seconds of event time between the first and last tick, at 4x: about 1 s.
    assert 0.9 < time.monotonic() - started < 3.0
    first = decode_report((tmp_path / "reports.ndjson").read_bytes().splitlines()[0])
    assert first.ts >= next(generate(**run)).start_ms


def test_kafka_target_produces_room_batches_and_metric_batches(topic_factory: Callable[..., str],
                                                                kafka_bootstrap: str) -> None:
    from kafka import KafkaConsumer

    reports_topic, metrics_topic = topic_factory("sim-reports", 3), topic_factory("sim-metrics", 1)
    delivery = send_kafka(generate(**RUN), kafka_bootstrap, reports_topic, metrics_topic)
    consumer = KafkaConsumer(reports_topic, metrics_topic, bootstrap_servers=kafka_bootstrap,
                             auto_offset_reset="earliest", enable_auto_commit=False, consumer_timeout_ms=5000)
    ids: list[str] = []
    services: dict[str, int] = {}
    for message in consumer:
        if message.topic == reports_topic:
            batch = decode(message.value, ReportBatch)
            assert {r.room_id for r in batch.reports} == {message.key.decode()}
            ids.extend(r.report_id for r in batch.reports)
        else:
            samples = decode(message.value, MetricBatch).samples
            assert {s.service for s in samples} == {message.key.decode()}
            services[message.key.decode()] = services.get(message.key.decode(), 0) + len(samples)
    consumer.close()
    assert sorted(ids) == sorted(expected_ids()) and len(ids) == delivery.reports
    assert services == {"room-api": 540, "audio-edge": 540, "auth": 540}


class Receiver:
    """A tiny collector stand-in: checks the key, gunzips, sheds every third request."""

    def __init__(self, key: str = "sim-secret"):
        self.key = key
        self.ids: list[str] = []
        self.samples = 0
        self.requests = 0
        self.shed = 0
        self.port = _free_port()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    async def reports(self, request: web.Request) -> web.Response:
        self.requests += 1
        if request.headers.get("Authorization") != f"Bearer {self.key}":
            return web.json_response({"error": "bad key"}, status=401)
        if self.requests % 3 == 0:
            self.shed += 1
            status = 429 if self.shed % 2 else 503
            return web.json_response({"error": "busy"}, status=status, headers={"Retry-After": "0"})
        # aiohttp inflates a Content-Encoding: gzip body itself.
        assert request.headers.get("Content-Encoding") == "gzip"
        batch = decode(await request.read(), ReportBatch)
        assert len(batch.reports) <= 500
        self.ids.extend(r.report_id for r in batch.reports)
        return web.json_response({"accepted": len(batch.reports), "rejected": 0, "errors": []}, status=202)

    async def metrics(self, request: web.Request) -> web.Response:
        self.samples += len(decode(await request.read(), MetricBatch).samples)
        return web.json_response({"accepted": 1}, status=202)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/v1/reports", self.reports)
        app.router.add_post("/v1/metrics", self.metrics)
        self._runner = web.AppRunner(app)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.TCPSite(self._runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()

    def __enter__(self) -> Receiver:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: Any) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as server:
        yield server


def test_http_target_retries_shed_batches_and_loses_or_duplicates_nothing(receiver: Receiver) -> None:
    run = dict(RUN, scale=0.05)
    delivery = send_http(generate(**run), f"http://127.0.0.1:{receiver.port}", "sim-secret",
                         policy=HttpPolicy(batch_size=500, concurrency=4))
    expected = [decode_report(line).report_id for tick in generate(**run) for line in tick.report_lines()]
    assert receiver.shed > 0 and delivery.retries >= receiver.shed
    assert len(receiver.ids) == len(set(receiver.ids)) == len(expected) == delivery.reports
    assert set(receiver.ids) == set(expected)
    assert receiver.samples == 9 * 180


def test_http_target_stops_with_the_reason_on_a_bad_key(receiver: Receiver) -> None:
    with pytest.raises(TargetError, match="refused the API key"):
        send_http(generate(**RUN), f"http://127.0.0.1:{receiver.port}", "wrong")
