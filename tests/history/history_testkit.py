"""Helpers for history tests: settings aimed at a test's own topics and database, the sink in a thread."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from clickhouse_driver.util.escape import escape_params

from core.config import Settings, TopicSettings
from history.client import ClickHouseTarget


def url_of(target: ClickHouseTarget) -> str:
    return f"clickhouse://{target.user}:{target.password}@{target.host}:{target.port}/{target.database}"


def settings_for(settings: Settings, target: ClickHouseTarget, topics: TopicSettings | None = None,
                 **history: Any) -> Settings:
    tuned = {"sink_batch_seconds": 0.3, "sink_log_interval_seconds": 2.0, "sink_retry_max_seconds": 2.0, **history}
    return dataclasses.replace(
        settings,
        clickhouse=dataclasses.replace(settings.clickhouse, url=url_of(target)),
        topics=topics or settings.topics,
        history=dataclasses.replace(settings.history, **tuned),
    )


class Chdb:
    """Current ClickHouse in-process (chdb), with the driver's parameter binding: where shipped SQL is proven
    to run beside the local 18.16 server."""

    def __init__(self) -> None:
        from chdb import session

        self.session = session.Session()
        self.session.query("CREATE DATABASE IF NOT EXISTS ow")
        self.session.query("USE ow")

    def execute(self, sql: str) -> object:
        return self.session.query(sql)

    def rows(self, sql: str, params: dict[str, Any] | None = None) -> list[list[Any]]:
        bound = sql % escape_params(params, None) if params else sql  # the driver's own escaping
        text = str(self.session.query(bound, "JSONCompact"))
        return [list(row) for row in json.loads(text)["data"]] if text.strip() else []


@pytest.fixture
def fresh_topics(topic_factory: Callable[..., str]) -> TopicSettings:
    return TopicSettings(**{f.name: topic_factory(f.name.replace("_", "-")) for f in dataclasses.fields(TopicSettings)})


class SinkThread:
    """The real sink (``history.sink.run``) in a thread, stopped by the test."""

    def __init__(self, settings: Settings, group_id: str) -> None:
        from history.sink import run

        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.metrics: Any = None

        def target() -> None:
            try:
                self.metrics = run(settings, self.stop, group_id=group_id)
            except BaseException as exc:  # noqa: BLE001 - reported by join()
                self.error = exc

        self.thread = threading.Thread(target=target, name="history-sink", daemon=True)
        self.thread.start()

    def alive(self) -> bool:
        return self.thread.is_alive()

    def join(self, timeout: float = 30.0) -> None:
        self.stop.set()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the sink did not stop"
        if self.error:
            raise self.error


@pytest.fixture
def sink_factory() -> Iterator[Callable[[Settings, str], SinkThread]]:
    started: list[SinkThread] = []

    def start(settings: Settings, group_id: str) -> SinkThread:
        sink = SinkThread(settings, group_id)
        started.append(sink)
        return sink

    yield start
    for sink in started:
        sink.stop.set()
        sink.thread.join(30)


def wait_for(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.2,
             seen: Callable[[], object] | None = None) -> None:
    """Poll ``check`` until true; on timeout, say what ``seen`` last returned (a flake is then diagnosable)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    last = f"; last seen {seen()!r}" if seen else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}{last}")


BASE_MS = 1_795_323_600_000  # 2026-11-22T05:00:00Z, on a minute and hour boundary


def report_batches(batches: int, per_batch: int, rooms: int, start: int = 0) -> list[tuple[bytes, bytes]]:
    """``batches`` ReportBatch messages keyed by room; every 5th report is an error."""
    from core.schemas import encode

    out = []
    for b in range(start, start + batches):
        room = f"room-{b % rooms}"
        reports = []
        for i in range(per_batch):
            n = b * per_batch + i
            report: dict[str, Any] = {"report_id": f"r-{n}", "ts": BASE_MS + n * 10, "client_id": f"c-{n % 97}",
                                      "room_id": room, "kind": "heartbeat", "platform": "android",
                                      "region": "eu-west", "weight": 1.0 + (n % 3)}
            if n % 5 == 0:
                report.update(kind="error", error_code="details_not_available", latency_ms=float(n % 700))
            reports.append(report)
        out.append((room.encode(), encode({"reports": reports})))
    return out


def room_windows(rooms: int, windows: int) -> list[tuple[bytes, bytes]]:
    from core.schemas import RoomHealth, encode

    out = []
    for w in range(windows):
        for r in range(rooms):
            start = BASE_MS + w * 10_000
            window = RoomHealth(key=f"room-{r}", window_start=start, window_end=start + 10_000,
                                listeners=100.0 + w, joins=2.0, reports=50.0, errors=4.0 + r, error_ratio=0.04,
                                errors_by_code={"crash": 1.0, "details_not_available": 3.0 + r},
                                error_clients=3.0, error_clients_by_code={"crash": 1.0, "details_not_available": 2.0},
                                latency_p99_ms=250.0 if w % 2 else None, region="eu-west")
            out.append((f"room-{r}".encode(), encode(window)))
    return out


def produce(bootstrap: str, topic: str, messages: list[tuple[bytes, bytes]]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    try:
        for key, value in messages:
            producer.send(topic, key=key, value=value)
        producer.flush(30)
    finally:
        producer.close(5)


def committed_offsets(bootstrap: str, group_id: str) -> dict[str, int]:
    """The group's committed offsets summed per topic."""
    from kafka.admin import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        offsets = admin.list_group_offsets({group_id: None}).get(group_id, {})
    finally:
        admin.close()
    out: dict[str, int] = {}
    for tp, meta in offsets.items():
        out[tp.topic] = out.get(tp.topic, 0) + max(0, meta.offset)
    return out
