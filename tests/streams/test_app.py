"""The worker for real: generated reports through Kafka, closed windows compared with direct counts."""

from __future__ import annotations

import signal
import time
from collections import defaultdict
from typing import Any

import msgspec
import pytest

from core import schemas
from core.schemas import ClientReport, DeadLetter, RoomHealth
from tests.streams.conftest import WINDOW_S, WorkerTopics, generate_reports, produce_batches, read_topic

pytestmark = pytest.mark.integration


def expected_rooms(reports: list[ClientReport]) -> dict[tuple[str, int], dict[str, float]]:
    """Counts per (room, window) computed straight from the reports, not through streams/."""
    window_ms = WINDOW_S * 1000
    counts: dict[tuple[str, int], dict[str, float]] = defaultdict(lambda: defaultdict(float))
    listeners: dict[tuple[str, int], dict[str, float]] = defaultdict(dict)
    error_clients: dict[tuple[str, int], dict[tuple[str, str], float]] = defaultdict(dict)
    for r in reports:
        key = (r.room_id, r.ts - r.ts % window_ms)
        counts[key]["reports"] += r.weight
        if r.kind in ("heartbeat", "join"):
            listeners[key][r.client_id] = max(listeners[key].get(r.client_id, 0.0), r.weight)
        if r.kind == "join":
            counts[key]["joins"] += r.weight
        if r.kind == "error":
            counts[key]["errors"] += r.weight
            pair = (r.error_code, r.client_id)
            error_clients[key][pair] = max(error_clients[key].get(pair, 0.0), r.weight)
    for key in counts:
        counts[key]["listeners"] = sum(listeners[key].values())
        counts[key]["error_clients"] = sum(error_clients[key].values())
    return counts


def latest(healths: list[RoomHealth]) -> dict[tuple[str, str, int], RoomHealth]:
    """What ReplacingMergeTree keeps: the last version of each (scope, key, window)."""
    return {(h.scope, h.key, h.window_start): h for h in healths}


def as_counts(h: RoomHealth) -> dict[str, float]:
    return {"reports": h.reports, "joins": h.joins, "errors": h.errors, "listeners": h.listeners,
            "error_clients": h.error_clients}


def wait_for_windows(worker: WorkerTopics, bootstrap: str, expected: dict[Any, Any], timeout_s: float) -> list[Any]:
    def complete(values: list[RoomHealth]) -> bool:
        rooms = {(h.key, h.window_start) for h in values if h.scope == "room"}
        return set(expected) <= rooms and any(h.scope == "global" and h.window_start == max(
            start for _, start in expected) for h in values)
    values = read_topic(bootstrap, worker.room_health, complete, timeout_s, lambda raw: schemas.decode(raw, RoomHealth),
                        worker.alive)
    seen = {(h.key, h.window_start) for h in values if h.scope == "room"}
    missing = sorted(set(expected) - seen)
    assert complete(values), (f"{len(missing)} of {len(expected)} room windows missing after {timeout_s}s "
                              f"(first: {missing[:3]}, scopes seen: {sorted({h.scope for h in values})}); "
                              f"worker log:\n{worker.logs()}")
    return values


def check_totals(values: list[RoomHealth], reports: list[ClientReport]) -> None:
    expected = expected_rooms(reports)
    kept = latest(values)
    rooms = {(key, start): as_counts(h) for (scope, key, start), h in kept.items() if scope == "room"}
    wanted = {key: {name: counts.get(name, 0.0) for name in ("reports", "joins", "errors", "listeners", "error_clients")}
              for key, counts in expected.items()}
    # On a mismatch, say whether reports were lost, doubled or counted late (in another window).
    late = {(scope, key, start): h.late_reports for (scope, key, start), h in kept.items() if h.late_reports}
    assert rooms == wanted, ({key: (rooms.get(key), wanted.get(key)) for key in set(rooms) | set(wanted)
                              if rooms.get(key) != wanted.get(key)}, f"late: {late}")
    total = sum(r.weight for r in reports)
    assert sum(h.reports for (scope, _, _), h in kept.items() if scope == "global") == total
    assert sum(h.reports for (scope, _, _), h in kept.items() if scope == "platform") == total
    assert all(h.late_reports == 0 for h in kept.values())


def test_worker_publishes_exact_windows(worker_topics: WorkerTopics, kafka_bootstrap: str) -> None:
    start = int(time.time() * 1000) - 20_000
    start -= start % 2000
    reports = generate_reports(rooms=12, per_room=150, start_ms=start, span_ms=12_000)
    produce_batches(kafka_bootstrap, worker_topics.reports, reports)
    worker_topics.start()
    values = wait_for_windows(worker_topics, kafka_bootstrap, expected_rooms(reports), 120)
    check_totals(values, reports)


def test_sigkill_mid_stream_loses_and_doubles_nothing(worker_topics: WorkerTopics, kafka_bootstrap: str) -> None:
    import threading

    start = int(time.time() * 1000) - 30_000
    start -= start % 2000
    reports = generate_reports(rooms=10, per_room=300, start_ms=start, span_ms=20_000, seed=3)
    chunks = [reports[i:i + 300] for i in range(0, len(reports), 300)]

    def produce_paced() -> None:  # input keeps arriving while the worker dies and comes back
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", linger_ms=5)
        for chunk in chunks:
            produce_batches(kafka_bootstrap, worker_topics.reports, chunk, producer=producer)
            time.sleep(0.6)
        producer.close()

    producer = threading.Thread(target=produce_paced)
    producer.start()
    first = worker_topics.start("first")
    # Kill it once it has published something, so state and output are both mid-flight.
    read_topic(kafka_bootstrap, worker_topics.room_health, lambda values: len(values) >= 5, 30,
               lambda raw: raw, worker_topics.alive)
    first.send_signal(signal.SIGKILL)
    first.wait()
    worker_topics.start("second")
    producer.join()
    values = wait_for_windows(worker_topics, kafka_bootstrap, expected_rooms(reports), 120)
    check_totals(values, reports)


def test_garbage_goes_to_dead_letter_and_worker_keeps_running(worker_topics: WorkerTopics,
                                                               kafka_bootstrap: str) -> None:
    from kafka import KafkaProducer

    start = int(time.time() * 1000) - 20_000
    start -= start % 2000
    reports = generate_reports(rooms=4, per_room=50, start_ms=start, span_ms=6_000, seed=5)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    garbage = [b"not json", b'{"reports": 7}', b'{"report_id": "x"}', b"",
               b'{"reports": [{"report_id": "bad", "ts": 1, "client_id": "c", "room_id": "room-0",'
               b' "kind": "heartbeat", "platform": "ios"}]}']
    for value in garbage:
        producer.send(worker_topics.reports, key=b"room-0", value=value)
    producer.flush()
    producer.close()
    produce_batches(kafka_bootstrap, worker_topics.reports, reports)
    process = worker_topics.start()
    letters = read_topic(kafka_bootstrap, worker_topics.dead_letter, lambda values: len(values) >= len(garbage), 120,
                         lambda raw: schemas.decode(raw, DeadLetter), worker_topics.alive)
    # An invalid item of a usable batch is kept alone, as the sink keeps it.
    bad_item = b'{"report_id": "bad", "ts": 1, "client_id": "c", "room_id": "room-0", "kind": "heartbeat", "platform": "ios"}'
    assert sorted(letter.raw for letter in letters) == sorted([*garbage[:-1], bad_item])
    assert all(letter.error and letter.offset >= 0 and letter.source_topic == worker_topics.reports
               for letter in letters)
    assert any("malformed" in letter.error for letter in letters)
    values = wait_for_windows(worker_topics, kafka_bootstrap, expected_rooms(reports), 120)
    check_totals(values, reports)
    assert process.poll() is None, "the worker died on garbage input"


def test_every_kind_of_garbage_is_a_dead_letter_and_the_worker_keeps_folding(worker_topics: WorkerTopics,
                                                                             kafka_bootstrap: str) -> None:
    from kafka import KafkaProducer

    from tests.kafka_garbage import GARBAGE

    start = int(time.time() * 1000) - 20_000
    start -= start % 2000
    reports = generate_reports(rooms=4, per_room=50, start_ms=start, span_ms=6_000, seed=9)
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all", max_request_size=4 << 20)
    for topic in (worker_topics.reports, worker_topics.metrics):
        for value in GARBAGE:
            producer.send(topic, key=b"room-0", value=value)
    producer.flush()
    producer.close()
    produce_batches(kafka_bootstrap, worker_topics.reports, reports)
    process = worker_topics.start()
    expected = 2 * len(GARBAGE)
    letters = read_topic(kafka_bootstrap, worker_topics.dead_letter, lambda values: len(values) >= expected, 120,
                         lambda raw: schemas.decode(raw, DeadLetter), worker_topics.alive)
    assert len(letters) == expected, [(letter.source_topic, letter.error[:80]) for letter in letters]
    for topic in (worker_topics.reports, worker_topics.metrics):
        mine = [letter for letter in letters if letter.source_topic == topic]
        assert len(mine) == len(GARBAGE) and all(letter.error and letter.offset >= 0 for letter in mine)
        raws, wholes = sorted(letter.raw for letter in mine), sorted(value or b"" for value in GARBAGE)
        if topic == worker_topics.reports:  # an invalid item of a usable batch is kept alone
            assert all(any(raw in whole for whole in wholes) for raw in raws), raws
        else:
            assert raws == wholes
    assert any("nested too deeply" in letter.error for letter in letters)
    values = wait_for_windows(worker_topics, kafka_bootstrap, expected_rooms(reports), 120)
    check_totals(values, reports)
    assert process.poll() is None, "the worker died on garbage input"


def test_packed_and_json_values_fold_alike_and_an_unknown_format_is_a_dead_letter(worker_topics: WorkerTopics,
                                                                                  kafka_bootstrap: str) -> None:
    """A rolling upgrade: the collector's packed values beside JSON ones; a marker from the future refused."""
    from kafka import KafkaProducer

    from core.codec import encode_reports

    start = int(time.time() * 1000) - 20_000
    start -= start % 2000
    reports = generate_reports(rooms=4, per_room=60, start_ms=start, span_ms=6_000, seed=13)
    packed_reports, json_reports = reports[::2], reports[1::2]
    good = ClientReport(report_id="ok", ts=start, client_id="c-ok", room_id="room-0", kind="join", platform="ios")
    bad = ClientReport(report_id="bad", ts=start, client_id="c-bad", room_id="room-0", kind="join", platform="ios")
    bad.kind = "error"  # no error_code: what a buggy producer could pack, checked only by the reader
    with_bad_item = encode_reports([good, bad])
    unknown = b"\x02" + encode_reports([good])[1:]
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap, acks="all")
    for value in (unknown, with_bad_item):
        producer.send(worker_topics.reports, key=b"room-0", value=value)
    for offset in range(0, len(packed_reports), 20):
        chunk = packed_reports[offset:offset + 20]
        for room in sorted({report.room_id for report in chunk}):
            producer.send(worker_topics.reports, key=room.encode(),
                          value=encode_reports([report for report in chunk if report.room_id == room]))
    producer.flush()
    producer.close()
    produce_batches(kafka_bootstrap, worker_topics.reports, json_reports)
    process = worker_topics.start()
    letters = read_topic(kafka_bootstrap, worker_topics.dead_letter, lambda values: len(values) >= 2, 120,
                         lambda raw: schemas.decode(raw, DeadLetter), worker_topics.alive)
    by_raw = {letter.raw: letter.error for letter in letters}
    assert len(letters) == 2 and set(by_raw) == {unknown, msgspec.msgpack.encode(msgspec.structs.astuple(bad))}
    assert by_raw[unknown].startswith("unknown format marker 0x02") and "upgrade" in by_raw[unknown]
    assert "error_code is required" in by_raw[msgspec.msgpack.encode(msgspec.structs.astuple(bad))]
    values = wait_for_windows(worker_topics, kafka_bootstrap, expected_rooms([*reports, good]), 120)
    check_totals(values, [*reports, good])
    assert process.poll() is None
