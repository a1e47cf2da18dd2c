"""Client report v1 and the other schemas: valid input passes, invalid input says why."""

from __future__ import annotations

import gc
import json

import pytest

from core import schemas
from core.schemas import SchemaError

VALID = {
    "report_id": "r-1",
    "ts": "2026-11-22T05:00:00.500Z",
    "client_id": "c-1",
    "room_id": "room-17",
    "kind": "error",
    "error_code": "details_not_available",
    "platform": "android",
    "app_version": "5.12.0",
    "region": "eu-west",
    "latency_ms": 120.5,
}


def report(**changes: object) -> bytes:
    item = {**VALID, **changes}
    return json.dumps({k: v for k, v in item.items() if v is not ...}).encode()


def test_valid_report_is_decoded_and_normalised() -> None:
    decoded = schemas.decode_report(report())
    assert decoded.ts == 1_795_323_600_500
    assert decoded.error_code == "details_not_available"
    assert decoded.weight == 1.0


def test_epoch_milliseconds_are_accepted() -> None:
    assert schemas.decode_report(report(ts=1_795_323_600_500)).ts == 1_795_323_600_500


def test_heartbeat_without_optional_fields() -> None:
    decoded = schemas.decode_report(report(kind="heartbeat", error_code=..., app_version=..., region=..., latency_ms=...))
    assert decoded.kind == "heartbeat" and decoded.region is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"kind": "error", "error_code": ...}, "error_code is required when kind is 'error'"),
        ({"kind": "heartbeat"}, "error_code must be absent when kind is 'heartbeat'"),
        ({"room_id": ""}, "Expected `str` of length >= 1 - at `$.room_id`"),
        ({"client_id": "x" * 65}, "Expected `str` of length <= 64 - at `$.client_id`"),
        ({"kind": "explode"}, "Invalid enum value 'explode' - at `$.kind`"),
        ({"error_code": "meltdown"}, "Invalid enum value 'meltdown' - at `$.error_code`"),
        ({"platform": "symbian"}, "Invalid enum value 'symbian' - at `$.platform`"),
        ({"latency_ms": -1}, "Expected `float` >= 0.0 - at `$.latency_ms`"),
        ({"app_version": "v" * 33}, "Expected `str` of length <= 32 - at `$.app_version`"),
        ({"ts": "yesterday"}, "ts 'yesterday' is not RFC 3339"),
        ({"ts": "2026-11-22T05:00:00"}, "has no UTC offset"),
        ({"ts": 17}, "outside 2000..2100"),
        ({"report_id": ...}, "Object missing required field `report_id`"),
        ({"weight": 0}, "Expected `float` > 0.0 - at `$.weight`"),
    ],
)
def test_invalid_report_names_the_problem(changes: dict[str, object], message: str) -> None:
    with pytest.raises(SchemaError) as caught:
        schemas.decode_report(report(**changes))
    assert message in str(caught.value)


def test_unparseable_json_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match="truncated"):
        schemas.decode_report(b'{"report_id": ')


def test_strict_batch_names_the_item() -> None:
    body = b'{"reports": [' + report() + b"," + report(platform="tv") + b"]}"
    with pytest.raises(SchemaError, match=r"at `\$.reports\[1\].platform`"):
        schemas.decode_report_batch(body)


def test_round_trip_of_every_window_and_alert_schema() -> None:
    window = schemas.RoomHealth(key="room-17", window_start=0, window_end=10_000, listeners=5.0,
                                errors_by_code={"crash": 2.0})
    service = schemas.ServiceHealth(key="audio-edge", window_start=0, window_end=10_000, metrics={"cpu": 0.9})
    alert = schemas.Alert(fingerprint="f", status="firing", scope="room", key="room-17", kind="crash",
                          severity="critical", starts_at=1, event_ts=2, summary="crash spike",
                          evidence=[schemas.Evidence(detector="volume", observed=50, baseline=2, score=0.99)])
    dead = schemas.DeadLetter(source_topic="client-reports", error="bad", raw=b"\xff\x00")
    sample = schemas.MetricSample(ts=1_795_323_600_000, service="audio-edge", name="cpu", value=0.5)
    for value in (window, service, alert, dead, sample):
        assert schemas.decode(schemas.encode(value), type(value)) == value


def test_metric_sample_requires_a_name() -> None:
    with pytest.raises(SchemaError, match="Object missing required field `name`"):
        schemas.decode(b'{"ts": 1795323600000, "service": "s", "value": 1}', schemas.MetricSample)


def test_fast_path_reports_are_not_tracked_by_the_garbage_collector() -> None:
    batch = json.dumps({"reports": [{**VALID, "ts": 1_795_323_600_500}]}).encode()
    wire = schemas.decode_wire_reports(batch)
    assert wire is not None and wire[0].latency_ms == 120.5
    # Scalars only, so no cycle: the hot path's millions of reports stay out of every collection.
    assert not gc.is_tracked(wire[0])
