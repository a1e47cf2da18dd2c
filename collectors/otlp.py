"""OTLP/HTTP metrics (``ExportMetricsServiceRequest``, protobuf or JSON) into ``MetricSample``s.

Pure: bytes in, samples and ``(index, reason)`` of refused data points out;
``collectors.receivers`` does the HTTP. What maps where:

- resource attribute ``service.name`` -> ``service``; ``host.name`` (or
  ``host``) -> ``host``; ``cloud.region`` (or ``region``) -> ``cluster``, the
  fields the service windows and detectors key on. The data point's own
  attributes are the sample's ``labels``.
- Gauge and Sum points -> one sample each (``as_double`` or ``as_int``).
- Histogram, ExponentialHistogram and Summary points -> ``<name>_count`` and
  (when sent) ``<name>_sum``: what a mean latency per window needs.
- ``time_unix_nano`` -> ``ts`` (ms); a point without one is stamped with its
  arrival, as a scrape is.

A point is refused (counted in ``partial_success.rejected_data_points``)
when outside ``collectors.series.SeriesLimits`` or the event-time bound; a
point flagged ``no_recorded_value`` carries no value and is skipped.

>>> from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
>>> request = ExportMetricsServiceRequest()
>>> resource = request.resource_metrics.add()
>>> resource.resource.attributes.add(key="service.name").value.string_value = "audio-edge"
>>> metric = resource.scope_metrics.add().metrics.add(name="cpu")
>>> metric.gauge.data_points.add(as_double=0.25, time_unix_nano=1_795_323_600_000_000_000)
... # doctest: +ELLIPSIS
time_unix_nano: ...
>>> bound = ArrivalBound(max_ahead_ms=300_000, max_age_ms=86_400_000)
>>> samples, refused = decode(request.SerializeToString(), PROTOBUF, 10, 1_795_323_600_000, bound, SeriesLimits())
>>> [(s.service, s.name, s.value, s.ts) for s in samples], refused
([('audio-edge', 'cpu', 0.25, 1795323600000)], [])
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from collectors import bodies, otlp_json
from collectors.bodies import BodyError
from collectors.series import SeriesLimits
from collectors.wire import Status
from core import schemas
from core.schemas import MetricSample
from core.timeutil import ArrivalBound

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
SERVICE_KEYS = ("service.name",)
HOST_KEYS = ("host.name", "host")
CLUSTER_KEYS = ("cloud.region", "region")
# DataPointFlags.DATA_POINT_FLAGS_NO_RECORDED_VALUE_MASK
NO_RECORDED_VALUE = 1
# How many refusal reasons partial_success.error_message spells out (the count is always exact).
REASONS_LISTED = 5


def media_type(content_type: str | None) -> str:
    """``application/x-protobuf`` or ``application/json`` (415 otherwise), the two OTLP/HTTP encodings.

    >>> media_type("application/json; charset=utf-8")
    'application/json'
    >>> media_type("text/plain")
    Traceback (most recent call last):
    ...
    collectors.bodies.BodyError: 415: OTLP/HTTP takes Content-Type application/x-protobuf or application/json, got 'text/plain'
    """
    kind = (content_type or "").partition(";")[0].strip().lower()
    if kind not in (PROTOBUF, JSON):
        raise BodyError(415, f"OTLP/HTTP takes Content-Type {PROTOBUF} or {JSON}, got {(content_type or 'none')[:100]!r}")
    return kind


def parse(body: bytes) -> Any:
    """The protobuf request message; 400 with the decoder's reason when the body is not one."""
    return bodies.parse_protobuf(ExportMetricsServiceRequest(), body, "an OTLP ExportMetricsServiceRequest")


def parse_json(body: bytes) -> otlp_json.ExportMetricsServiceRequest:
    """The JSON request (``collectors.otlp_json``); 400 with the decoder's reason when the body is not one."""
    try:
        return otlp_json.decode(bodies.text_of(body))
    except schemas.UNDECODABLE as exc:
        raise BodyError(400, f"body is not an OTLP ExportMetricsServiceRequest in JSON: "
                             f"{schemas.clean_reason(exc)[:300]}") from None


def attribute_text(value: Any) -> str:
    """An ``AnyValue`` as label text: strings as they are, scalars as JSON would write them."""
    which = value.WhichOneof("value")
    if which == "string_value":
        return str(value.string_value)
    if which == "bool_value":
        return "true" if value.bool_value else "false"
    if which == "int_value":
        return str(value.int_value)
    if which == "double_value":
        return repr(value.double_value)
    if which is None:
        return ""
    return json.dumps(json_format.MessageToDict(value), separators=(",", ":"), sort_keys=True)


# One data point, whatever the encoding: its resource's attributes, its metric's name, time_unix_nano, its
# attributes, and its (name, value) samples: none when flagged no-recorded-value (skipped), None when it has
# no value at all (refused).
Point = tuple[dict[str, str], str, int, dict[str, str], list[tuple[str, float]] | None]
SKIPPED: list[tuple[str, float]] = []


def _first(attributes: dict[str, str], keys: tuple[str, ...]) -> str:
    return next((attributes[key] for key in keys if key in attributes), "")


def _counts(name: str, point: Any, has_sum: bool) -> list[tuple[str, float]]:
    values = [(f"{name}_count", float(point.count))]
    if has_sum:
        values.append((f"{name}_sum", float(point.sum)))
    return values


def _protobuf_points(request: Any) -> Iterator[Point]:
    for resource_metrics in request.resource_metrics:
        resource = {a.key: attribute_text(a.value) for a in resource_metrics.resource.attributes}
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                which, name = metric.WhichOneof("data"), metric.name
                if which is None:
                    continue
                for point in getattr(metric, which).data_points:
                    if point.flags & NO_RECORDED_VALUE:
                        yield resource, name, 0, {}, SKIPPED
                        continue
                    labels = {a.key: attribute_text(a.value) for a in point.attributes}
                    values: list[tuple[str, float]] | None
                    if which in ("gauge", "sum"):
                        number = point.WhichOneof("value")
                        values = None if number is None else [(name, float(getattr(point, number)))]
                    else:
                        values = _counts(name, point, which == "summary" or point.HasField("sum"))
                    yield resource, name, point.time_unix_nano, labels, values


def _json_points(request: otlp_json.ExportMetricsServiceRequest) -> Iterator[Point]:
    text = otlp_json.attribute_text
    for resource_metrics in request.resource_metrics:
        resource = {a.key: text(a.value) for a in resource_metrics.resource.attributes}
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                name = metric.name
                numbers = metric.gauge or metric.sum
                counts = metric.histogram or metric.exponential_histogram or metric.summary
                for number in numbers.data_points if numbers else ():
                    if number.flags & NO_RECORDED_VALUE:
                        yield resource, name, 0, {}, SKIPPED
                    else:
                        value = number.as_double if number.as_double is not None else number.as_int
                        yield (resource, name, number.time_unix_nano, {a.key: text(a.value) for a in number.attributes},
                               None if value is None else [(name, float(value))])
                for count in counts.data_points if counts and not numbers else ():
                    if count.flags & NO_RECORDED_VALUE:
                        yield resource, name, 0, {}, SKIPPED
                    else:
                        yield (resource, name, count.time_unix_nano, {a.key: text(a.value) for a in count.attributes},
                               _counts(name, count, count.sum is not None))


def decode(body: bytes, kind: str, max_points: int, now_ms: int, bound: ArrivalBound,
           limits: SeriesLimits) -> tuple[list[MetricSample], list[tuple[int, str]]]:
    """The samples of a decompressed request, and ``(data point index, reason)`` for the points refused."""
    points = _protobuf_points(parse(body)) if kind == PROTOBUF else _json_points(parse_json(body))
    samples: list[MetricSample] = []
    refused: list[tuple[int, str]] = []
    for index, (resource, metric, time_ns, labels, values) in enumerate(points):
        if index >= max_points:
            raise BodyError(413, f"request has more than {max_points} data points; at most "
                                 f"{max_points} per request (collector.max_batch_items)")
        if values is SKIPPED:
            continue
        service, host, cluster = _first(resource, SERVICE_KEYS), _first(resource, HOST_KEYS), _first(resource, CLUSTER_KEYS)
        ts = time_ns // 1_000_000 or now_ms
        reason = bound.reason(ts, now_ms) or (None if values else "data point has no value (as_double or as_int)")
        for name, value in values or ():
            reason = reason or limits.problem(service, host, cluster, name, value, labels)
        if reason is not None:
            refused.append((index, f"metric {metric[:80]!r}: {reason}"))
        else:
            samples.extend(MetricSample(ts=ts, service=service, cluster=cluster, host=host, name=name, value=value,
                                        labels=labels) for name, value in values or ())
    return samples, refused


def response(kind: str, refused: list[tuple[int, str]]) -> bytes:
    """The ``ExportMetricsServiceResponse`` body; ``partial_success`` when points were refused."""
    message = ExportMetricsServiceResponse()
    if refused:
        reasons = "; ".join(f"data point {index}: {reason}" for index, reason in refused[:REASONS_LISTED])
        more = f"; and {len(refused) - REASONS_LISTED} more" if len(refused) > REASONS_LISTED else ""
        message.partial_success.rejected_data_points = len(refused)
        message.partial_success.error_message = f"{len(refused)} data point(s) refused: {reasons}{more}"
    return encode(message, kind)


def status(kind: str, code: int, reason: str) -> bytes:
    """A refusal's body: a ``google.rpc.Status`` in the request's encoding, as OTLP/HTTP asks."""
    return encode(Status(code=code, message=reason), kind)


def encode(message: Any, kind: str) -> bytes:
    if kind == JSON:
        return str(json_format.MessageToJson(message, indent=None)).encode()
    return bytes(message.SerializeToString())
