"""Prometheus remote-write 1.0 (snappy ``WriteRequest``) into ``MetricSample``s.

Pure: bytes in, samples and ``(sample index, reason)`` of refused ones out;
``collectors.receivers`` does the HTTP. What maps where, per series:

- ``__name__`` -> ``name``; ``service`` (else ``job``) -> ``service``;
  ``instance`` -> ``host``; ``region`` (else ``cluster``) -> ``cluster``
  (the fields the service windows and detectors key on); every other label
  stays a label. Prometheus' ``external_labels`` are how a server names its
  region.
- Each sample -> one ``MetricSample`` at its own timestamp (ms).
- Prometheus' staleness markers (a NaN with one bit pattern) say "series
  gone" and are skipped; any other NaN or infinity is refused.

The snappy block's declared length is checked before inflating it: no
snappy bomb passes ``collector.max_body_bytes``.

>>> import cramjam
>>> from collectors.wire import WriteRequest
>>> request = WriteRequest()
>>> series = request.timeseries.add()
>>> for name, value in [("__name__", "up"), ("job", "audio-edge"), ("instance", "h1:9100"), ("region", "eu")]:
...     _ = series.labels.add(name=name, value=value)
>>> _ = series.samples.add(value=1.0, timestamp=1_795_323_600_000)
>>> body = bytes(cramjam.snappy.compress_raw(request.SerializeToString()))
>>> bound = ArrivalBound(max_ahead_ms=300_000, max_age_ms=86_400_000)
>>> samples, refused = decode(body, 1 << 20, 10, 1_795_323_600_000, bound, SeriesLimits())
>>> [(s.service, s.host, s.cluster, s.name, s.value, s.labels) for s in samples], refused
([('audio-edge', 'h1:9100', 'eu', 'up', 1.0, {})], [])
"""

from __future__ import annotations

import struct
from typing import Any

import cramjam

from collectors import bodies
from collectors.bodies import BodyError
from collectors.series import SeriesLimits
from collectors.wire import WriteRequest
from core.schemas import MetricSample
from core.timeutil import ArrivalBound

PROTOBUF = "application/x-protobuf"
VERSION_HEADER = "X-Prometheus-Remote-Write-Version"
# Prometheus' value.StaleNaN.
STALE_NAN_BITS = 0x7FF0000000000002


def check_headers(content_type: str | None, content_encoding: str | None, version: str | None) -> None:
    """415 for what remote-write 1.0 does not send: another type, no snappy, the 2.0 message.

    >>> check_headers("application/x-protobuf", "snappy", "0.1.0")
    >>> check_headers("application/x-protobuf;proto=io.prometheus.write.v2.Request", "snappy", "2.0.0")
    Traceback (most recent call last):
    ...
    collectors.bodies.BodyError: 415: remote-write 2.0 (io.prometheus.write.v2.Request) is not taken: set protobuf_message: prometheus.WriteRequest in the remote_write section
    """
    kind, _, parameters = (content_type or "").partition(";")
    if "v2" in parameters or (version or "").strip().startswith("2"):
        raise BodyError(415, "remote-write 2.0 (io.prometheus.write.v2.Request) is not taken: set protobuf_message: "
                             "prometheus.WriteRequest in the remote_write section")
    if kind.strip().lower() != PROTOBUF:
        raise BodyError(415, f"remote-write takes Content-Type {PROTOBUF}, got {(content_type or 'none')[:100]!r}")
    if (content_encoding or "").strip().lower() != "snappy":
        raise BodyError(415, f"remote-write bodies are snappy-compressed (Content-Encoding: snappy), got "
                             f"{(content_encoding or 'none')[:40]!r}")


def declared_length(block: bytes) -> int:
    """The uncompressed length a snappy block starts with (a varint); 400 when it has none.

    >>> declared_length(bytes(cramjam.snappy.compress_raw(b"x" * 300)))
    300
    """
    length = shift = 0
    for position, byte in enumerate(block[:5]):
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return length
        shift += 7
        if position == 4:
            break
    raise BodyError(400, "body is not snappy block format: no length header")


def inflate(body: bytes, max_bytes: int) -> bytes:
    """The snappy block decompressed, 413 when it declares more than ``max_bytes``, 400 when not snappy."""
    if not body:
        raise BodyError(400, "body is empty")
    declared = declared_length(body)
    if declared > max_bytes:
        raise BodyError(413, f"body inflates to {declared} bytes; at most {max_bytes}")
    try:
        return bytes(cramjam.snappy.decompress_raw(body))
    except Exception as exc:  # noqa: BLE001 - cramjam raises its own DecompressionError, or ValueError
        raise BodyError(400, f"body is not valid snappy (block format): {exc}") from None


def parse(plain: bytes) -> Any:
    return bodies.parse_protobuf(WriteRequest(), plain, "a remote-write WriteRequest")


def _stale(value: float) -> bool:
    return value != value and struct.unpack("<Q", struct.pack("<d", value))[0] == STALE_NAN_BITS


def decode(body: bytes, max_bytes: int, max_samples: int, now_ms: int, bound: ArrivalBound,
           limits: SeriesLimits) -> tuple[list[MetricSample], list[tuple[int, str]]]:
    """The samples of a snappy-compressed request, and ``(sample index, reason)`` for the refused ones."""
    request = parse(inflate(body, max_bytes))
    samples: list[MetricSample] = []
    refused: list[tuple[int, str]] = []
    index = 0
    for series in request.timeseries:
        labels = {label.name: label.value for label in series.labels}
        name = labels.pop("__name__", "")
        service = labels.pop("service") if "service" in labels else labels.pop("job", "")
        host = labels.pop("instance", "")
        cluster = labels.pop("region") if "region" in labels else labels.pop("cluster", "")
        for sample in series.samples:
            if _stale(sample.value):
                continue
            if index >= max_samples:
                raise BodyError(413, f"request has more than {max_samples} samples; at most {max_samples} per "
                                     "request (collector.max_batch_items): lower queue_config.max_samples_per_send")
            reason = (bound.reason(sample.timestamp, now_ms)
                      or limits.problem(service, host, cluster, name, sample.value, labels))
            if reason is not None:
                refused.append((index, f"series {name[:80]!r}: {reason}"))
            else:
                samples.append(MetricSample(ts=sample.timestamp, service=service, cluster=cluster, host=host,
                                            name=name, value=sample.value, labels=labels))
            index += 1
    return samples, refused
