"""Row mapping: message bytes -> table rows, pure."""

from __future__ import annotations

from core.schemas import Alert, DeadLetter, MetricBatch, MetricSample, RoomHealth, ServiceHealth, encode
from history.rows import (
    COLUMNS,
    map_alerts,
    map_dead_letter,
    map_reports,
    map_room_health,
    map_server_metrics,
    map_service_health,
)

T = 1_795_323_600_000


def _as_dict(table: str, row: tuple[object, ...]) -> dict[str, object]:
    assert len(row) == len(COLUMNS[table])
    return dict(zip(COLUMNS[table], row, strict=True))


def test_reports_keep_every_field_and_default_the_optional_ones() -> None:
    value = encode({"reports": [
        {"report_id": "a", "ts": "2026-11-22T05:00:01.5Z", "client_id": "c", "room_id": "r", "kind": "error",
         "error_code": "logged_out", "platform": "web", "app_version": "3.1", "region": "us", "latency_ms": 12,
         "weight": 4},
        {"report_id": "b", "ts": T, "client_id": "c", "room_id": "r", "kind": "leave", "platform": "ios"}]})
    mapped = map_reports(value, inserted_at=99)
    assert mapped.errors == []
    first, second = (_as_dict("reports", row) for row in mapped.rows)
    assert first == {"ts": T // 1000 + 1, "ts_ms": T + 1500, "report_id": "a", "client_id": "c", "room_id": "r",
                     "kind": "error", "error_code": "logged_out", "platform": "web", "app_version": "3.1",
                     "region": "us", "latency_ms": 12.0, "weight": 4.0, "inserted_at": 99}
    assert (second["error_code"], second["app_version"], second["latency_ms"], second["weight"]) == ("", "", -1.0, 1.0)


def test_a_bare_report_is_accepted_and_bad_items_are_rejected_one_by_one() -> None:
    bare = encode({"report_id": "x", "ts": T, "client_id": "c", "room_id": "r", "kind": "join", "platform": "ios"})
    assert [row[2] for row in map_reports(bare, 0).rows] == ["x"]
    batch = b'{"reports": [{"report_id": "ok", "ts": %d, "client_id": "c", "room_id": "r", "kind": "join", ' \
            b'"platform": "ios"}, {"report_id": "bad", "ts": 5, "client_id": "c", "room_id": "r", "kind": "join", ' \
            b'"platform": "ios"}]}' % T
    mapped = map_reports(batch, 0)
    assert [row[2] for row in mapped.rows] == ["ok"]
    assert len(mapped.errors) == 1 and mapped.errors[0].startswith("reports[1]: ts 5 is outside 2000..2100")
    assert mapped.rejected[0] is not None and b'"bad"' in mapped.rejected[0]
    garbage = map_reports(b"\x00\x01", 0)
    assert garbage.rows == [] and garbage.rejected == [None] and "not a ReportBatch" in garbage.errors[0]


def test_room_health_flattens_codes_and_folds_unknown_codes_into_other() -> None:
    window = RoomHealth(key="r", window_start=T, window_end=T + 10_000, listeners=700_000.0, errors=9.0,
                        errors_by_code={"details_not_available": 5, "crash": 2, "new_code": 2},
                        error_clients_by_code={"details_not_available": 4}, latency_p50_ms=80.0, late_reports=3)
    row = _as_dict("room_health", map_room_health(encode(window), 7).rows[0])
    assert (row["window_start"], row["window_end"], row["scope"], row["key"]) == (T // 1000, T // 1000 + 10, "room", "r")
    assert (row["errors_details_not_available"], row["errors_crash"], row["errors_other"], row["errors_timeout"]) == (
        5.0, 2.0, 2.0, 0.0)
    assert (row["error_clients_details_not_available"], row["error_clients_crash"]) == (4.0, 0.0)
    assert (row["latency_p50_ms"], row["latency_p99_ms"], row["late_reports"], row["listeners"]) == (
        80.0, -1.0, 3, 700_000.0)
    assert "not a RoomHealth window" in map_room_health(b'{"key": 1}', 0).errors[0]


def test_service_health_metrics_and_alerts() -> None:
    service = ServiceHealth(scope="cluster", key="cluster:eu-1", cluster="eu-1", window_start=T, window_end=T + 10_000,
                            samples=9, hosts=3, metrics={"z": 1.0, "a": 2.5})
    row = _as_dict("service_health", map_service_health(encode(service), 0).rows[0])
    assert (row["metric_names"], row["metric_values"], row["scope"]) == (["a", "z"], [2.5, 1.0], "cluster")
    metrics = MetricBatch(samples=[MetricSample(ts=T, service="s", name="cpu", value=0.7, labels={"b": "2", "a": "1"})])
    row = _as_dict("server_metrics", map_server_metrics(encode(metrics), 0).rows[0])
    assert (row["ts"], row["host"], row["label_names"], row["label_values"]) == (T // 1000, "", ["a", "b"], ["1", "2"])
    alert = Alert(fingerprint="f", status="resolved", scope="room", key="r", kind="crash", severity="warning",
                  starts_at=T, event_ts=T + 60_000, ends_at=T + 60_000, summary="s", labels={"z": "1", "a": "2"})
    row = _as_dict("alerts", map_alerts(encode(alert), 0).rows[0])
    assert (row["ends_at"], row["labels_json"], row["evidence_json"], row["affected"]) == (
        T // 1000 + 60, '{"a":"2","z":"1"}', "[]", [])
    for mapper in (map_service_health, map_server_metrics, map_alerts):
        assert mapper(b"[]", 0).errors and not mapper(b"[]", 0).rows


def test_dead_letters_keep_raw_bytes_readable() -> None:
    letter = DeadLetter(source_topic="client-reports", error="bad", raw=b"\xff{", partition=2, offset=41,
                        received_ms=T)
    assert map_dead_letter(encode(letter), 5).rows == [(T // 1000, "client-reports", 2, 41, "bad", "\\xff{")]
    unstamped = DeadLetter(source_topic="x", error="e", raw=b"r")
    assert map_dead_letter(encode(unstamped), 5).rows[0][0] == 5
    assert "not a DeadLetter" in map_dead_letter(b"nope", 0).errors[0]


def test_an_anomaly_score_batch_becomes_one_row_per_score_and_garbage_is_explained() -> None:
    from core.schemas import AnomalyScore, AnomalyScoreBatch, encode
    from history.rows import COLUMNS, map_anomaly_scores

    score = AnomalyScore(scope="room", key="room-1", window_start=1_795_323_600_000, window_end=1_795_323_610_000,
                         detector="crash/error_ratio", observed=0.2, baseline=0.01, lower=0.0, upper=0.03, score=0.9)
    later = AnomalyScore(scope="room", key="room-1", window_start=1_795_323_610_000, window_end=1_795_323_620_000,
                         detector="crash/error_ratio", observed=0.01, baseline=0.01, lower=0.0, upper=0.03, score=0.1)
    mapped = map_anomaly_scores(encode(AnomalyScoreBatch(scores=[score, later])), 7)
    assert mapped.rows == [(1_795_323_600, "room", "room-1", "crash/error_ratio", 0.2, 0.01, 0.0, 0.03, 0.9, 7),
                           (1_795_323_610, "room", "room-1", "crash/error_ratio", 0.01, 0.01, 0.0, 0.03, 0.1, 7)]
    assert len(mapped.rows[0]) == len(COLUMNS["anomaly_scores"])
    broken = map_anomaly_scores(encode(score), 7)  # a bare score is not the topic's contract
    assert broken.rows == [] and broken.errors[0].startswith("not an AnomalyScoreBatch")


def test_the_fast_path_maps_exactly_as_the_full_decode() -> None:
    # What the collector writes: ts in epoch ms, every report valid (ints where floats belong, too).
    reports = [{"report_id": f"r{i}", "ts": T + i * 333, "client_id": f"c{i}", "room_id": "r", "platform": "android",
                "kind": ("heartbeat", "join", "leave", "error")[i % 4],
                **({"error_code": "crash"} if i % 4 == 3 else {}),
                **({"latency_ms": i, "weight": 2} if i % 3 == 0 else {"region": "eu", "app_version": "1.0"})}
               for i in range(12)]
    fast = map_reports(encode({"reports": reports}), inserted_at=7)
    # One report the fast path refuses (an RFC 3339 ts) sends the whole message the full way.
    full = map_reports(encode({"reports": [*reports, {**reports[0], "ts": "2026-11-22T05:00:00Z"}]}), inserted_at=7)
    assert fast.errors == full.errors == []
    assert fast.rows == full.rows[:-1]
    assert [[type(value) for value in row] for row in fast.rows] == [[type(value) for value in row] for row in full.rows[:-1]]
