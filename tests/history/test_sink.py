"""The sink: its rules with small fakes (deterministic), then end to end: real Kafka -> history.sink.run -> real ClickHouse."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping

import pytest

from core.config import Settings, TopicSettings
from core.schemas import (
    Alert,
    EventTimeMark,
    MetricBatch,
    MetricSample,
    ReportBatch,
    RoomHealth,
    ServiceHealth,
    decode,
    encode,
)
from core.timeutil import ManualClock
from history import api
from history.batch import BatchPolicy
from history.client import ClickHouseTarget, connect
from history.retry import Backoff
from history.rows import routes_for
from history.sink import Sink, SinkPolicy
from tests.history.fakes import FakeClickHouse, FakeConsumer, FakeGroup, FakePublisher
from tests.history.history_testkit import (
    BASE_MS,
    SinkThread,
    committed_offsets,
    produce,
    report_batches,
    room_windows,
    settings_for,
    wait_for,
)


def _count(client: object, sql: str) -> int:
    return int(client.execute(sql)[0][0])  # type: ignore[attr-defined]


# -- the rules, with fakes: deterministic ------------------------------------------------------

REPORTS, ROOM_HEALTH = TopicSettings().client_reports, TopicSettings().room_health


def _report_values(partition: int, messages: int, per_message: int = 3) -> list[bytes]:
    return [encode({"reports": [{"report_id": f"p{partition}-m{m}-{i}", "ts": BASE_MS + m * 1000 + i,
                                 "client_id": f"c{i}", "room_id": f"room-{partition}", "kind": "heartbeat",
                                 "platform": "ios"} for i in range(per_message)]})
            for m in range(messages)]


def _window_value(room: str, start_ms: int) -> bytes:
    return encode(RoomHealth(key=room, window_start=start_ms, window_end=start_ms + 10_000, listeners=10.0))


def _fake_sink(group: FakeGroup, clickhouse: FakeClickHouse | None = None,
               consumer: FakeConsumer | None = None) -> tuple[Sink, FakeConsumer, FakeClickHouse]:
    consumer = consumer or FakeConsumer(group)
    clickhouse = clickhouse or FakeClickHouse(group.events)
    # Backoff in milliseconds: the rule, not the waiting, is under test.
    policy = SinkPolicy(BatchPolicy(max_rows=10_000, max_seconds=1.0), Backoff(initial_seconds=0.001, max_seconds=0.004))
    sink = Sink(consumer, clickhouse, FakePublisher(group.events), routes_for(TopicSettings()), policy,
                ManualClock(BASE_MS))
    return sink, consumer, clickhouse


def _stored_ids(clickhouse: FakeClickHouse) -> list[object]:
    return clickhouse.column("reports", "report_id")


def test_offsets_are_committed_only_after_clickhouse_acknowledged_every_row_below_them() -> None:
    group = FakeGroup()
    for partition in (0, 1):
        for value in _report_values(partition, messages=4):
            group.produce(REPORTS, partition, value)
    sink, consumer, clickhouse = _fake_sink(group)

    def rows_are_stored(offsets: Mapping[tuple[str, int], int]) -> None:
        for (topic, partition), offset in offsets.items():
            below = {r.report_id for value in group.logs[(topic, partition)][:offset]
                     for r in decode(value, ReportBatch).reports}
            assert below <= set(_stored_ids(clickhouse)), f"{topic}[{partition}] committed to {offset} unwritten"

    consumer.on_commit = rows_are_stored
    sink.handle(consumer.poll(timeout_ms=200))
    assert group.committed == {} and clickhouse.stored == {}  # consumed is not committed
    clickhouse.go_down(attempts=2)
    assert sink.flush(threading.Event())
    assert group.committed == {(REPORTS, 0): 4, (REPORTS, 1): 4}
    assert group.events == [("refused", "reports"), ("pause",), ("refused", "reports"),
                            ("insert", "reports", 24), ("commit", {(REPORTS, 0): 4, (REPORTS, 1): 4}), ("resume",)]


def test_event_time_marks_between_windows_are_neither_rows_nor_dead_letters_and_are_committed() -> None:
    group = FakeGroup()
    group.produce(ROOM_HEALTH, 0, _window_value("room-1", BASE_MS))
    group.produce(ROOM_HEALTH, 0, encode(EventTimeMark(closed_upto=BASE_MS + 10_000)))
    group.produce(ROOM_HEALTH, 1, encode(EventTimeMark(closed_upto=BASE_MS + 10_000)))
    sink, consumer, clickhouse = _fake_sink(group)
    sink.handle(consumer.poll(timeout_ms=200))
    assert sink.flush(threading.Event(), final=True)
    assert clickhouse.column("room_health", "key") == ["room-1"]
    assert "dead_letters" not in clickhouse.stored and [e for e in group.events if e[0] == "dead-letters"] == []
    assert group.committed == {(ROOM_HEALTH, 0): 2, (ROOM_HEALTH, 1): 1}


def test_while_clickhouse_is_down_the_sink_pauses_and_writes_each_row_once_when_it_is_back() -> None:
    group = FakeGroup()
    for value in _report_values(0, messages=3):
        group.produce(REPORTS, 0, value)
    for i in range(3):
        group.produce(ROOM_HEALTH, 0, _window_value("room-0", BASE_MS + i * 10_000))
    sink, consumer, clickhouse = _fake_sink(group)
    sink.handle(consumer.poll(timeout_ms=200))
    # Down for room_health only, after reports were written: the retry must not write reports again.
    clickhouse.go_down(attempts=5, table="room_health")

    later = iter(_report_values(0, messages=8)[3:])

    def produce_during_the_outage() -> None:
        assert consumer.paused or clickhouse.outage["room_health"] == 4  # paused from the first refusal on
        group.produce(REPORTS, 0, next(later))

    clickhouse.on_refused = produce_during_the_outage
    assert sink.flush(threading.Event())
    assert consumer.polls_while_paused >= 4 and not consumer.paused
    assert [event[:2] for event in group.events if event[0] == "insert"] == [("insert", "reports"),
                                                                               ("insert", "room_health")]
    assert group.committed == {(REPORTS, 0): 3, (ROOM_HEALTH, 0): 3}  # what came in meanwhile is not read yet
    sink.handle(consumer.poll(timeout_ms=200))
    assert sink.flush(threading.Event())
    written = _stored_ids(clickhouse)
    assert len(written) == len(set(written)) == 3 * 3 + 5 * 3  # one more message per refused attempt
    assert clickhouse.column("room_health", "window_start") == [BASE_MS // 1000 + i * 10 for i in range(3)]
    assert group.committed == {(REPORTS, 0): 8, (ROOM_HEALTH, 0): 3}


def test_a_sink_stopped_while_clickhouse_is_down_commits_nothing_and_the_next_one_replays_exactly_that() -> None:
    group = FakeGroup()
    for partition in (0, 1):
        for value in _report_values(partition, messages=5):
            group.produce(REPORTS, partition, value)
    group.committed = {(REPORTS, 0): 2, (REPORTS, 1): 0}  # what an earlier run wrote
    stop = threading.Event()
    first, consumer, clickhouse = _fake_sink(group)
    first.handle(consumer.poll(timeout_ms=200))
    clickhouse.go_down(attempts=1_000)
    clickhouse.on_refused = lambda: stop.set() if clickhouse.outage[None] < 997 else None
    assert first.flush(stop) is False
    assert group.committed == {(REPORTS, 0): 2, (REPORTS, 1): 0} and clickhouse.stored == {}

    clickhouse.go_down(attempts=0)
    second, replaying, _ = _fake_sink(group, clickhouse)
    second.handle(replaying.poll(timeout_ms=200))
    assert second.flush(threading.Event())
    wanted = {r.report_id for (topic, partition), log in group.logs.items()
              for value in log[{0: 2, 1: 0}[partition]:] for r in decode(value, ReportBatch).reports}
    written = _stored_ids(clickhouse)
    assert len(written) == len(wanted) and set(written) == wanted  # no loss, no duplicate
    assert group.committed == {(REPORTS, 0): 5, (REPORTS, 1): 5}


@pytest.mark.integration
def test_every_topic_lands_in_its_table_and_offsets_follow_the_inserts(
    settings: Settings, clickhouse_db: ClickHouseTarget, fresh_topics: TopicSettings,
    sink_factory: Callable[[Settings, str], SinkThread],
) -> None:
    sink_settings = settings_for(settings, clickhouse_db, fresh_topics)
    bootstrap = settings.kafka.bootstrap
    group = f"test-history-{uuid.uuid4().hex[:8]}"
    reports = report_batches(batches=120, per_batch=50, rooms=6)
    mixed = encode({"reports": [{"report_id": "ok-1", "ts": BASE_MS, "client_id": "c", "room_id": "room-x",
                                 "kind": "join", "platform": "web"},
                                {"report_id": "bad-1", "ts": BASE_MS, "client_id": "c", "room_id": "room-x",
                                 "kind": "error", "platform": "web"},
                                {"report_id": "bad-2"}]})
    windows = room_windows(rooms=3, windows=12)
    # Valid JSON that ClickHouse cannot store (UInt32 column): refused row -> dead letter, not a crash.
    unstorable = encode({"key": "room-9", "window_start": BASE_MS, "window_end": BASE_MS + 10_000,
                         "late_reports": -5})
    alerts = [Alert(fingerprint=f"fp-{i}", status="firing" if i % 2 == 0 else "resolved", scope="room",
                    key="room-1", kind="details_not_available", severity="critical", starts_at=BASE_MS,
                    event_ts=BASE_MS + i * 10_000, summary=f"spike {i}", ends_at=None if i % 2 == 0 else BASE_MS + i,
                    labels={"region": "eu-west"}, affected=["room-1"]) for i in range(4)]
    services = [ServiceHealth(key="audio-edge", cluster="eu-1", window_start=BASE_MS + i * 10_000,
                              window_end=BASE_MS + (i + 1) * 10_000, samples=30, hosts=3,
                              metrics={"cpu": 0.5 + i / 10, "p99_ms": 120.0}) for i in range(5)]
    metrics = MetricBatch(samples=[MetricSample(ts=BASE_MS + i * 1000, service="audio-edge", name="cpu", value=i / 10,
                                                host=f"h{i % 3}", cluster="eu-1", labels={"core": str(i % 2)})
                                   for i in range(30)])

    produce(bootstrap, fresh_topics.client_reports, reports[:60])
    sink = sink_factory(sink_settings, group)
    client = connect(clickhouse_db)
    wait_for(lambda: _has_table(client, "reports"), 30, "the sink to apply migrations")
    # While the sink runs: whatever offset is committed, its rows are already in ClickHouse.
    samples = 0
    produce(bootstrap, fresh_topics.client_reports, reports[60:] + [(b"room-x", mixed), (b"room-x", b"not json{")])
    produce(bootstrap, fresh_topics.room_health, windows + [windows[4], (b"room-0", b'{"x": 1}'), (b"room-9", unstorable)])
    produce(bootstrap, fresh_topics.alerts, [(a.fingerprint.encode(), encode(a)) for a in alerts])
    produce(bootstrap, fresh_topics.service_health, [(b"audio-edge", encode(s)) for s in services])
    produce(bootstrap, fresh_topics.server_metrics, [(b"audio-edge", encode(metrics))])
    produce(bootstrap, fresh_topics.dead_letter, [(b"elsewhere", b"\xffnot a dead letter")])
    expected_reports = 120 * 50 + 1

    def done() -> bool:
        nonlocal samples
        committed = committed_offsets(bootstrap, group).get(fresh_topics.client_reports, 0)
        stored = _count(client, "SELECT count() FROM reports")
        # The first `committed` messages hold at least min(committed, 120) * 50 reports.
        assert stored >= min(committed, 120) * 50, (committed, stored)
        samples += 1
        return stored >= expected_reports and _count(client, "SELECT count() FROM dead_letters") >= 6

    wait_for(done, 120, "every report and dead letter in ClickHouse")
    wait_for(lambda: committed_offsets(bootstrap, group).get(fresh_topics.client_reports) == 122, 30,
             "offsets committed after the last insert")
    sink.join()
    assert samples >= 2
    assert sink.metrics.skipped_windows == 1  # the re-published window

    produced = [r for _, value in reports for r in decode(value, dict)["reports"]]
    try:
        assert _count(client, "SELECT count() FROM reports FINAL") == expected_reports
        assert _count(client, "SELECT count() FROM reports") == expected_reports
        by_room = dict(client.execute("SELECT room_id, sum(weight) FROM reports FINAL GROUP BY room_id"))
        want = Counter()
        for r in produced:
            want[r["room_id"]] += r["weight"]
        want["room-x"] += 1.0
        assert by_room == dict(want)
        row = client.execute("SELECT ts, ts_ms, client_id, kind, error_code, platform, app_version, region, "
                             "latency_ms, weight FROM reports WHERE report_id = 'r-10'")
        assert [tuple(map(str, row[0]))] == [(
            "2026-11-22 05:00:00", str(BASE_MS + 100), "c-10", "error", "details_not_available", "android", "",
            "eu-west", "10.0", "2.0")]
        assert client.execute("SELECT latency_ms FROM reports WHERE report_id = 'r-11'") == [(-1.0,)]

        assert _count(client, "SELECT count() FROM room_health") == 36
        window = client.execute("SELECT listeners, errors, errors_crash, errors_details_not_available, "
                                "error_clients_details_not_available, errors_timeout, latency_p99_ms, region "
                                "FROM room_health WHERE key = 'room-2' AND window_start = toDateTime(%(t)s)",
                                {"t": BASE_MS // 1000 + 10})
        assert window == [(101.0, 6.0, 1.0, 5.0, 2.0, 0.0, 250.0, "eu-west")]
        # The rollup counts each window once although one was published twice.
        rollup = client.execute("SELECT key, sumMerge(errors), countMerge(windows) FROM room_health_1m "
                                "GROUP BY key ORDER BY key")
        assert rollup == [("room-0", 48.0, 12), ("room-1", 60.0, 12), ("room-2", 72.0, 12)]

        assert client.execute("SELECT fingerprint, status, toUInt32(ends_at), labels_json, affected FROM alerts "
                              "FINAL ORDER BY fingerprint") == [
            ("fp-0", "firing", 0, '{"region":"eu-west"}', ["room-1"]),
            ("fp-1", "resolved", BASE_MS // 1000, '{"region":"eu-west"}', ["room-1"]),
            ("fp-2", "firing", 0, '{"region":"eu-west"}', ["room-1"]),
            ("fp-3", "resolved", BASE_MS // 1000, '{"region":"eu-west"}', ["room-1"])]
        assert client.execute("SELECT metric_names, metric_values FROM service_health ORDER BY window_start "
                              "LIMIT 1") == [(["cpu", "p99_ms"], [0.5, 120.0])]
        assert _count(client, "SELECT count() FROM service_health FINAL") == 5
        assert client.execute("SELECT count(), sum(value) FROM server_metrics FINAL")[0] == (
            30, pytest.approx(sum(i / 10 for i in range(30))))

        letters = client.execute("SELECT source_topic, error, raw FROM dead_letters ORDER BY source_topic, error")
        reasons = [error for _, error, _ in letters]
        assert any("reports[1]: error_code is required" in e for e in reasons)
        assert any("reports[2]: Object missing required field" in e for e in reasons)
        assert any("not a ReportBatch or ClientReport" in e for e in reasons)
        assert any("not a RoomHealth window" in e for e in reasons)
        assert (fresh_topics.dead_letter, "not a DeadLetter: JSON is malformed: invalid character (byte 0)",
                "\\xffnot a dead letter") in letters
        assert any("ClickHouse refused a room_health row: TypeMismatchError" in e and "late_reports" in e
                   for e in reasons)
        assert len(letters) == 6
        assert any(raw == "not json{" for _, _, raw in letters)
    finally:
        client.disconnect()
    # The reader sees the same, deduplicated, through the analyst API.
    top = api.top_rooms(BASE_MS, BASE_MS + 3_600_000, limit=2, settings=settings_for(settings, clickhouse_db))
    assert list(top["room_id"]) == ["room-0", "room-1"]


def _has_table(client: object, name: str) -> bool:
    return bool(client.execute("EXISTS TABLE " + name)[0][0])  # type: ignore[attr-defined]


@pytest.mark.integration
def test_sink_logs_lines_an_operator_can_read(
    settings: Settings, clickhouse_db: ClickHouseTarget, fresh_topics: TopicSettings,
    sink_factory: Callable[[Settings, str], SinkThread], caplog: pytest.LogCaptureFixture,
) -> None:
    sink_settings = settings_for(settings, clickhouse_db, fresh_topics, sink_log_interval_seconds=0.5)
    produce(settings.kafka.bootstrap, fresh_topics.client_reports, report_batches(10, 20, 2))
    with caplog.at_level("INFO", logger="history"):
        sink = sink_factory(sink_settings, f"test-history-{uuid.uuid4().hex[:8]}")
        client = connect(clickhouse_db)
        try:
            wait_for(lambda: _has_table(client, "reports") and _count(client, "SELECT count() FROM reports") == 200,
                     30, "200 reports")
        finally:
            client.disconnect()
        time.sleep(1.0)
        sink.join()
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("history sink: wrote")]
    assert any("reports=200" in line for line in lines), lines
    assert any(f"lag {fresh_topics.alerts}=0" in line and f"{fresh_topics.client_reports}=0" in line for line in lines)


@pytest.mark.integration
def test_a_topic_created_after_the_sink_started_is_read(
    settings: Settings, clickhouse_db: ClickHouseTarget, fresh_topics: TopicSettings,
    sink_factory: Callable[[Settings, str], SinkThread],
) -> None:
    """A sink started before its topic exists reads it once it is created (no restart, no 5-minute wait)."""
    from kafka.admin import KafkaAdminClient

    from core.kafka_admin import ensure_topics

    late = f"test-late-reports-{uuid.uuid4().hex[:10]}"
    topics = TopicSettings(**{**fresh_topics.__dict__, "client_reports": late})
    sink = sink_factory(settings_for(settings, clickhouse_db, topics), f"test-history-late-{uuid.uuid4().hex[:8]}")
    client = connect(clickhouse_db)
    try:
        time.sleep(3)  # the sink is up and waiting for the topic
        ensure_topics(settings.kafka.bootstrap, {late: 2})
        produce(settings.kafka.bootstrap, late, report_batches(batches=10, per_batch=20, rooms=2))
        wait_for(lambda: _has_table(client, "reports") and _count(client, "SELECT count() FROM reports") == 200, 40,
                 "the late topic's reports in ClickHouse",
                 seen=lambda: _has_table(client, "reports") and _count(client, "SELECT count() FROM reports"))
        assert sink.alive()
    finally:
        sink.join()
        admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap)
        try:
            admin.delete_topics([late])
        finally:
            admin.close()


@pytest.mark.integration
def test_garbage_on_every_topic_is_a_dead_letter_and_the_sink_keeps_going(
    settings: Settings, clickhouse_db: ClickHouseTarget, fresh_topics: TopicSettings,
    sink_factory: Callable[[Settings, str], SinkThread],
) -> None:
    from history.rows import raw_text
    from tests.kafka_garbage import GARBAGE

    bootstrap = settings.kafka.bootstrap
    routed = [fresh_topics.client_reports, fresh_topics.room_health, fresh_topics.service_health,
              fresh_topics.server_metrics, fresh_topics.alerts, fresh_topics.anomaly_scores, fresh_topics.dead_letter]
    for topic in routed:
        produce(bootstrap, topic, [(b"garbage", value) for value in GARBAGE])  # type: ignore[misc]
    produce(bootstrap, fresh_topics.client_reports, report_batches(batches=5, per_batch=20, rooms=2))
    sink = sink_factory(settings_for(settings, clickhouse_db, fresh_topics), f"test-history-{uuid.uuid4().hex[:8]}")
    client = connect(clickhouse_db)
    try:
        expected = len(routed) * len(GARBAGE)
        wait_for(lambda: _has_table(client, "dead_letters") and _has_table(client, "reports")
                 and _count(client, "SELECT count() FROM dead_letters") >= expected
                 and _count(client, "SELECT count() FROM reports") == 100, 120,
                 "a dead letter for every garbage message and the good reports after them",
                 seen=lambda: _has_table(client, "dead_letters") and client.execute(
                     "SELECT source_topic, count() FROM dead_letters GROUP BY source_topic"))
        assert sink.alive(), "the sink stopped on garbage"
        letters = client.execute("SELECT source_topic, error, raw FROM dead_letters")
    finally:
        sink.join()
        client.disconnect()
    assert len(letters) == expected
    want = sorted(raw_text(value or b"") for value in GARBAGE)
    for topic in routed:
        mine = [(error, raw) for source, error, raw in letters if source == topic]
        assert len(mine) == len(GARBAGE) and all(error for error, _ in mine), topic
        raws = sorted(raw for _, raw in mine)
        if topic == fresh_topics.client_reports:  # an invalid item of a usable batch is kept alone
            assert all(any(raw in whole for whole in want) for raw in raws), raws
        else:
            assert raws == want, topic
    assert any("nested too deeply" in error for _, error, _ in letters)
