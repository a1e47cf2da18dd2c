"""Remote-write 1.0 -> MetricSample: the label mapping, staleness markers, and every refusal, on hand-built bodies."""

from __future__ import annotations

import struct
from typing import Any

import cramjam
import pytest

from collectors import remote_write
from collectors.bodies import BodyError
from collectors.series import SeriesLimits
from collectors.wire import WriteRequest
from core.timeutil import ArrivalBound

NOW_MS = 1_795_323_600_000
BOUND = ArrivalBound(max_ahead_ms=300_000, max_age_ms=86_400_000)
STALE = struct.unpack("<d", struct.pack("<Q", remote_write.STALE_NAN_BITS))[0]


def _body(series: list[tuple[dict[str, str], list[tuple[float, int]]]]) -> bytes:
    request = WriteRequest()
    for labels, samples in series:
        entry = request.timeseries.add()
        for name, value in labels.items():
            entry.labels.add(name=name, value=value)
        for value, ts in samples:
            entry.samples.add(value=value, timestamp=ts)
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


def _decode(body: bytes, max_samples: int = 100, limits: SeriesLimits | None = None) -> tuple[list[Any], list[Any]]:
    return remote_write.decode(body, 1 << 20, max_samples, NOW_MS, BOUND, limits or SeriesLimits())


def test_job_instance_and_region_become_service_host_cluster_and_the_rest_stay_labels() -> None:
    node = {"__name__": "node_load1", "job": "audio-edge", "instance": "10.0.0.5:9100", "region": "eu-1"}
    explicit = {"__name__": "up", "service": "auth", "job": "node", "cluster": "us-2", "instance": "a:1", "env": "prod"}
    samples, refused = _decode(_body([(node, [(0.5, NOW_MS), (0.7, NOW_MS + 1000)]), (explicit, [(1.0, NOW_MS)])]))
    assert refused == []
    assert [(s.service, s.host, s.cluster, s.name, s.value, s.ts, s.labels) for s in samples] == [
        ("audio-edge", "10.0.0.5:9100", "eu-1", "node_load1", 0.5, NOW_MS, {}),
        ("audio-edge", "10.0.0.5:9100", "eu-1", "node_load1", 0.7, NOW_MS + 1000, {}),
        ("auth", "a:1", "us-2", "up", 1.0, NOW_MS, {"job": "node", "env": "prod"})]


def test_staleness_markers_are_skipped_and_other_non_finite_values_refused() -> None:
    labels = {"__name__": "x", "job": "svc"}
    samples, refused = _decode(_body([(labels, [(STALE, NOW_MS), (float("nan"), NOW_MS), (float("-inf"), NOW_MS),
                                                (3.0, NOW_MS)])]))
    assert [s.value for s in samples] == [3.0]
    assert [(index, reason) for index, reason in refused] == [
        (0, "series 'x': value nan is not a finite number"), (1, "series 'x': value -inf is not a finite number")]


def test_series_outside_their_bounds_are_refused_with_the_reason() -> None:
    body = _body([({"__name__": "no_job"}, [(1.0, NOW_MS)]),
                  ({"__name__": "", "job": "svc"}, [(1.0, NOW_MS)]),
                  ({"__name__": "future", "job": "svc"}, [(1.0, NOW_MS + 3_600_000)]),
                  ({"__name__": "old", "job": "svc"}, [(1.0, 0)]),
                  ({"__name__": "int64_max", "job": "svc"}, [(1.0, 2**63 - 1)]),
                  ({"__name__": "int64_min", "job": "svc"}, [(1.0, -(2**63))]),
                  ({"__name__": "wide", "job": "svc", "a": "1", "b": "2", "c": "3"}, [(1.0, NOW_MS)]),
                  ({"__name__": "ok", "job": "svc"}, [(1.0, NOW_MS)])])
    samples, refused = _decode(body, limits=SeriesLimits(max_labels=2))
    assert [s.name for s in samples] == ["ok"]
    reasons = dict(refused)
    assert "service is empty" in reasons[0] and "the job label" in reasons[0]
    assert reasons[1] == "series '': metric name is empty"
    assert "ahead of its arrival" in reasons[2] and "older than its arrival" in reasons[3]
    assert "9223372036854775807 ms since the epoch" in reasons[4] and "older than its arrival" in reasons[5]
    assert "3 labels; at most 2" in reasons[6]


def test_bad_snappy_bad_protobuf_and_oversized_bodies_are_refused_with_the_reason() -> None:
    with pytest.raises(BodyError) as not_snappy:
        _decode(b"\x10not snappy at all")
    assert not_snappy.value.status == 400 and "not valid snappy" in not_snappy.value.reason
    with pytest.raises(BodyError) as no_header:
        _decode(b"\xff\xff\xff\xff\xff\xff")
    assert no_header.value.status == 400 and "no length header" in no_header.value.reason
    with pytest.raises(BodyError) as empty:
        _decode(b"")
    assert empty.value.status == 400
    with pytest.raises(BodyError) as not_protobuf:
        _decode(bytes(cramjam.snappy.compress_raw(b"\xff\xff\xff\xff garbage")))
    assert not_protobuf.value.status == 400 and "not a remote-write WriteRequest" in not_protobuf.value.reason
    bomb = bytes(cramjam.snappy.compress_raw(b"\x00" * 2_000_000))
    with pytest.raises(BodyError) as too_big:
        _decode(bomb)
    assert too_big.value.status == 413 and "inflates to 2000000 bytes" in too_big.value.reason
    with pytest.raises(BodyError) as too_many:
        _decode(_body([({"__name__": "x", "job": "s"}, [(1.0, NOW_MS)] * 4)]), max_samples=3)
    assert too_many.value.status == 413 and "max_samples_per_send" in too_many.value.reason


@pytest.mark.parametrize(("content_type", "encoding", "version", "says"), [
    ("application/json", "snappy", "0.1.0", "takes Content-Type application/x-protobuf"),
    ("application/x-protobuf", None, "0.1.0", "snappy-compressed"),
    ("application/x-protobuf", "gzip", "0.1.0", "snappy-compressed"),
    ("application/x-protobuf;proto=io.prometheus.write.v2.Request", "snappy", "2.0.0", "remote-write 2.0"),
])
def test_what_remote_write_1_0_does_not_send_is_415(content_type: str, encoding: str | None, version: str,
                                                    says: str) -> None:
    with pytest.raises(BodyError) as error:
        remote_write.check_headers(content_type, encoding, version)
    assert error.value.status == 415 and says in error.value.reason
    remote_write.check_headers("application/x-protobuf", "snappy", None)  # the version header is optional


def test_mutated_bodies_decode_or_are_refused_with_a_body_error_never_anything_else() -> None:
    import random

    rng = random.Random(17)
    request = WriteRequest()
    for index in range(20):
        series = request.timeseries.add()
        for name, value in (("__name__", f"m{index}"), ("job", "svc"), ("instance", "h:1"), ("core", str(index))):
            series.labels.add(name=name, value=value)
        series.samples.add(value=float(index), timestamp=NOW_MS)
    plain = request.SerializeToString()
    outcomes = {"decoded": 0, "refused": 0}
    for round_ in range(2000):
        mutated = bytearray(plain)
        for _ in range(rng.randint(1, 6)):
            mutated[rng.randrange(len(mutated))] = rng.randrange(256)
        body = bytes(cramjam.snappy.compress_raw(bytes(mutated)))
        if round_ % 2:  # the compressed block itself damaged
            damaged = bytearray(body)
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
            body = bytes(damaged)
        try:
            _decode(body)
            outcomes["decoded"] += 1
        except BodyError as exc:
            assert exc.status in (400, 413)
            outcomes["refused"] += 1
    assert outcomes["decoded"] > 50 and outcomes["refused"] > 50, outcomes
