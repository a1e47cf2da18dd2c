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
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from collectors.bodies import BodyError
from collectors.series import SeriesLimits
from collectors.wire import Status
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


def parse(body: bytes, kind: str) -> Any:
    """The request message; 400 with the decoder's reason when the body is not one."""
    request = ExportMetricsServiceRequest()
    try:
        if kind == PROTOBUF:
            request.ParseFromString(body)
        else:
            json_format.Parse(body, request, ignore_unknown_fields=True)
    except DecodeError as exc:
        raise BodyError(400, f"body is not an OTLP ExportMetricsServiceRequest in protobuf: {exc}") from None
    except (json_format.ParseError, ValueError, TypeError, RecursionError) as exc:
        raise BodyError(400, f"body is not an OTLP ExportMetricsServiceRequest in JSON: {str(exc)[:300]}") from None
    return request


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


def _attributes(attributes: Any) -> dict[str, str]:
    return {attribute.key: attribute_text(attribute.value) for attribute in attributes}


def _first(attributes: dict[str, str], keys: tuple[str, ...]) -> str:
    return next((attributes[key] for key in keys if key in attributes), "")


def _values(metric: Any) -> Iterator[tuple[Any, list[tuple[str, float]]]]:
    """Each data point of a metric with its ``(name, value)`` samples (empty: no recorded value)."""
    which = metric.WhichOneof("data")
    name = metric.name
    if which in ("gauge", "sum"):
        for point in getattr(metric, which).data_points:
            if point.flags & NO_RECORDED_VALUE:
                yield point, []
            else:
                number = point.as_double if point.WhichOneof("value") == "as_double" else float(point.as_int)
                yield point, [(name, number)]
    elif which in ("histogram", "exponential_histogram", "summary"):
        for point in getattr(metric, which).data_points:
            if point.flags & NO_RECORDED_VALUE:
                yield point, []
                continue
            values = [(f"{name}_count", float(point.count))]
            if which == "summary" or point.HasField("sum"):
                values.append((f"{name}_sum", point.sum))
            yield point, values


def decode(body: bytes, kind: str, max_points: int, now_ms: int, bound: ArrivalBound,
           limits: SeriesLimits) -> tuple[list[MetricSample], list[tuple[int, str]]]:
    """The samples of a decompressed request, and ``(data point index, reason)`` for the points refused."""
    request = parse(body, kind)
    samples: list[MetricSample] = []
    refused: list[tuple[int, str]] = []
    index = 0
    for resource_metrics in request.resource_metrics:
        resource = _attributes(resource_metrics.resource.attributes)
        service, host, cluster = (_first(resource, SERVICE_KEYS), _first(resource, HOST_KEYS),
                                  _first(resource, CLUSTER_KEYS))
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                for point, values in _values(metric):
                    if index >= max_points:
                        raise BodyError(413, f"request has more than {max_points} data points; at most "
                                             f"{max_points} per request (collector.max_batch_items)")
                    ts = point.time_unix_nano // 1_000_000 or now_ms
                    labels = _attributes(point.attributes)
                    reason = bound.reason(ts, now_ms)
                    for name, value in values:
                        reason = reason or limits.problem(service, host, cluster, name, value, labels)
                    if reason is not None:
                        refused.append((index, f"metric {metric.name[:80]!r}: {reason}"))
                    else:
                        samples.extend(MetricSample(ts=ts, service=service, cluster=cluster, host=host, name=name,
                                                    value=value, labels=labels) for name, value in values)
                    index += 1
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
