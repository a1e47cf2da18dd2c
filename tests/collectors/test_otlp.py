"""OTLP metrics -> MetricSample: the mapping of every point type, and every refusal, on hand-built messages."""

from __future__ import annotations

import json
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from collectors import otlp
from collectors.bodies import BodyError
from collectors.series import SeriesLimits
from collectors.wire import Status
from core.timeutil import ArrivalBound

NOW_MS = 1_795_323_600_000
NOW_NS = NOW_MS * 1_000_000
BOUND = ArrivalBound(max_ahead_ms=300_000, max_age_ms=86_400_000)


def _request(resource: dict[str, Any] | None = None) -> tuple[Any, Any]:
    request = ExportMetricsServiceRequest()
    resource_metrics = request.resource_metrics.add()
    for key, value in (resource if resource is not None else {"service.name": "audio-edge", "host.name": "edge-1",
                                                             "cloud.region": "eu-1"}).items():
        attribute = resource_metrics.resource.attributes.add(key=key)
        if isinstance(value, int):
            attribute.value.int_value = value
        else:
            attribute.value.string_value = value
    return request, resource_metrics.scope_metrics.add()


def _decode(request: Any, kind: str = otlp.PROTOBUF, limits: SeriesLimits | None = None,
            max_points: int = 100) -> tuple[list[Any], list[tuple[int, str]]]:
    body = request.SerializeToString() if kind == otlp.PROTOBUF else json_format.MessageToJson(request).encode()
    return otlp.decode(body, kind, max_points, NOW_MS, BOUND, limits or SeriesLimits())


def _full_request() -> Any:
    request, scope = _request()
    gauge = scope.metrics.add(name="cpu.utilization")
    point = gauge.gauge.data_points.add(as_double=0.75, time_unix_nano=NOW_NS)
    point.attributes.add(key="core").value.int_value = 3
    point.attributes.add(key="busy").value.bool_value = True
    counter = scope.metrics.add(name="requests")
    counter.sum.is_monotonic = True
    counter.sum.data_points.add(as_int=42, time_unix_nano=NOW_NS + 1_000_000)
    histogram = scope.metrics.add(name="latency_ms")
    histogram.histogram.data_points.add(count=10, sum=1234.5, time_unix_nano=NOW_NS, bucket_counts=[4, 6],
                                        explicit_bounds=[100.0])
    summary = scope.metrics.add(name="gc_ms")
    summary.summary.data_points.add(count=2, sum=8.0, time_unix_nano=NOW_NS)
    exponential = scope.metrics.add(name="size")
    exponential.exponential_histogram.data_points.add(count=5, time_unix_nano=NOW_NS)  # no sum sent
    return request


def test_every_point_type_maps_onto_samples_with_the_resource_as_service_host_cluster() -> None:
    samples, refused = _decode(_full_request())
    assert refused == []
    assert [(s.name, s.value, s.ts) for s in samples] == [
        ("cpu.utilization", 0.75, NOW_MS), ("requests", 42.0, NOW_MS + 1), ("latency_ms_count", 10.0, NOW_MS),
        ("latency_ms_sum", 1234.5, NOW_MS), ("gc_ms_count", 2.0, NOW_MS), ("gc_ms_sum", 8.0, NOW_MS),
        ("size_count", 5.0, NOW_MS)]
    assert {(s.service, s.host, s.cluster) for s in samples} == {("audio-edge", "edge-1", "eu-1")}
    assert samples[0].labels == {"core": "3", "busy": "true"}


def test_json_encoding_decodes_the_same_as_protobuf_including_camel_case_and_string_int64() -> None:
    request = _full_request()
    assert _decode(request, otlp.JSON) == _decode(request)
    text = json.dumps({"resourceMetrics": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "auth"}},
                                    {"key": "host", "value": {"stringValue": "a1"}},
                                    {"key": "region", "value": {"stringValue": "us"}}]},
        "scopeMetrics": [{"metrics": [{"name": "up", "gauge": {"dataPoints": [
            {"asInt": "1", "timeUnixNano": str(NOW_NS)}]}}]}]}]}).encode()
    samples, refused = otlp.decode(text, otlp.JSON, 10, NOW_MS, BOUND, SeriesLimits())
    assert [(s.service, s.host, s.cluster, s.name, s.value, s.ts) for s in samples] == [
        ("auth", "a1", "us", "up", 1.0, NOW_MS)] and refused == []


def test_a_point_without_time_is_stamped_with_its_arrival_and_one_without_value_is_skipped() -> None:
    request, scope = _request()
    points = scope.metrics.add(name="queue").gauge.data_points
    points.add(as_double=5.0)
    points.add(as_double=6.0, time_unix_nano=NOW_NS, flags=otlp.NO_RECORDED_VALUE)
    points.add(time_unix_nano=NOW_NS)  # neither as_double nor as_int
    for kind in (otlp.PROTOBUF, otlp.JSON):
        samples, refused = _decode(request, kind)
        assert [(s.value, s.ts) for s in samples] == [(5.0, NOW_MS)]
        assert refused == [(2, "metric 'queue': data point has no value (as_double or as_int)")]


@pytest.mark.parametrize(("resource", "point", "reason"), [
    ({"host.name": "h"}, {"as_double": 1.0}, "service is empty: set the resource attribute service.name"),
    ({"service.name": "s" * 65}, {"as_double": 1.0}, "is 65 characters; at most 64"),
    ({"service.name": "s", "cloud.region": "r" * 33}, {"as_double": 1.0}, "region/cluster"),
    ({"service.name": "s"}, {"as_double": float("nan")}, "value nan is not a finite number"),
    ({"service.name": "s"}, {"as_double": float("inf")}, "value inf is not a finite number"),
    ({"service.name": "s"}, {"as_double": 1.0, "time_unix_nano": (NOW_MS + 3_600_000) * 1_000_000},
     "ahead of its arrival"),
    ({"service.name": "s"}, {"as_double": 1.0, "time_unix_nano": 1_000_000_000}, "older than its arrival"),
    ({"service.name": "s"}, {"as_double": 1.0, "time_unix_nano": 2**64 - 1}, "ahead of its arrival"),
])
def test_each_point_outside_its_bounds_is_refused_with_its_index_and_the_others_kept(
        resource: dict[str, Any], point: dict[str, Any], reason: str) -> None:
    request, scope = _request(resource)
    points = scope.metrics.add(name="m").gauge.data_points
    points.add(as_double=1.0, time_unix_nano=NOW_NS)
    points.add(time_unix_nano=point.pop("time_unix_nano", NOW_NS), **point)
    points.add(as_double=2.0, time_unix_nano=NOW_NS)
    samples, refused = _decode(request)
    if "service.name" not in resource or "at most 64" in reason or "region" in reason:  # a wrong resource: all refused
        assert samples == [] and [index for index, _ in refused] == [0, 1, 2]
    else:
        assert [s.value for s in samples] == [1.0, 2.0] and [index for index, _ in refused] == [1]
    assert reason in refused[-1][1] and refused[-1][1].startswith("metric 'm': ")


def test_labels_are_bounded_in_number_and_length_and_names_in_length() -> None:
    request, scope = _request()
    many = scope.metrics.add(name="many").gauge.data_points.add(as_double=1.0, time_unix_nano=NOW_NS)
    for i in range(3):
        many.attributes.add(key=f"k{i}").value.string_value = "v"
    long = scope.metrics.add(name="long").gauge.data_points.add(as_double=1.0, time_unix_nano=NOW_NS)
    long.attributes.add(key="k").value.string_value = "v" * 9
    scope.metrics.add(name="n" * 201).gauge.data_points.add(as_double=1.0, time_unix_nano=NOW_NS)
    scope.metrics.add(name="fine").gauge.data_points.add(as_double=1.0, time_unix_nano=NOW_NS)
    samples, refused = _decode(request, limits=SeriesLimits(max_labels=2, max_label_length=8))
    assert [s.name for s in samples] == ["fine"]
    assert [(index, reason.split(": ", 1)[1]) for index, reason in refused] == [
        (0, "3 labels; at most 2 per point (collector.max_metric_labels)"),
        (1, "label 'k' is longer than 8 characters (name or value; collector.max_metric_label_length)"),
        (2, f"metric name {'n' * 40!r}... is 201 characters; at most 200")]


def test_undecodable_bodies_are_400_with_the_decoders_reason_and_too_many_points_413() -> None:
    with pytest.raises(BodyError) as garbage:
        otlp.decode(b"\xff\xff\xff\xff", otlp.PROTOBUF, 10, NOW_MS, BOUND, SeriesLimits())
    assert garbage.value.status == 400 and "not an OTLP ExportMetricsServiceRequest in protobuf" in garbage.value.reason
    for body in (b'{"resourceMetrics": [', b'{"resourceMetrics": 5}', b"\xff\xfe"):
        with pytest.raises(BodyError) as bad_json:
            otlp.decode(body, otlp.JSON, 10, NOW_MS, BOUND, SeriesLimits())
        assert bad_json.value.status == 400 and "JSON" in bad_json.value.reason
    request, scope = _request()
    for _ in range(4):
        scope.metrics.add(name="m").gauge.data_points.add(as_double=1.0, time_unix_nano=NOW_NS)
    with pytest.raises(BodyError) as too_many:
        _decode(request, max_points=3)
    assert too_many.value.status == 413 and "more than 3 data points" in too_many.value.reason
    assert otlp.decode(b"", otlp.PROTOBUF, 10, NOW_MS, BOUND, SeriesLimits()) == ([], [])  # an empty export


def test_only_the_two_otlp_encodings_are_taken() -> None:
    assert otlp.media_type("application/x-protobuf") == otlp.PROTOBUF
    for refused in (None, "application/x-ndjson", "application/grpc", "text/plain"):
        with pytest.raises(BodyError) as error:
            otlp.media_type(refused)
        assert error.value.status == 415


def test_the_response_carries_partial_success_only_when_points_were_refused() -> None:
    assert otlp.response(otlp.PROTOBUF, []) == b""
    refused = [(i, f"metric 'm': reason {i}") for i in range(7)]
    answer = ExportMetricsServiceResponse.FromString(otlp.response(otlp.PROTOBUF, refused))
    assert answer.partial_success.rejected_data_points == 7
    assert answer.partial_success.error_message.startswith("7 data point(s) refused: data point 0: metric 'm': reason 0")
    assert answer.partial_success.error_message.endswith("; and 2 more")
    as_json = json.loads(otlp.response(otlp.JSON, refused))
    assert as_json["partialSuccess"]["rejectedDataPoints"] == "7"
    assert Status.FromString(otlp.status(otlp.PROTOBUF, 3, "bad body")).message == "bad body"
    assert json.loads(otlp.status(otlp.JSON, 16, "no key")) == {"code": 16, "message": "no key"}


def test_mutated_bodies_decode_or_are_refused_with_a_body_error_never_anything_else() -> None:
    import random

    rng = random.Random(17)
    protobuf = _full_request().SerializeToString()
    as_json = json_format.MessageToJson(_full_request()).encode()
    outcomes = {"decoded": 0, "refused": 0}
    for body, kind in [(protobuf, otlp.PROTOBUF), (as_json, otlp.JSON)] * 1000:
        mutated = bytearray(body)
        for _ in range(rng.randint(1, 8)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        try:
            cut = rng.randint(1, len(mutated)) if rng.random() < 0.25 else len(mutated)
            otlp.decode(bytes(mutated[:cut]), kind, 100, NOW_MS, BOUND, SeriesLimits())
            outcomes["decoded"] += 1
        except BodyError as exc:
            assert exc.status in (400, 413)
            outcomes["refused"] += 1
    assert outcomes["decoded"] > 50 and outcomes["refused"] > 50, outcomes
