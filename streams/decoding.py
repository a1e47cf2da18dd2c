"""Turn Kafka values into items, and everything unusable into a reason.

A value on ``client-reports`` is a ``ReportBatch`` (the collector's shape) or
one bare ``ClientReport``; on ``server-metrics`` a ``MetricBatch`` or one
``MetricSample``. A batch with some invalid reports keeps the valid ones;
each invalid one becomes its own dead letter.

Fast path: past the collector every ``ts`` is already epoch ms (docs/contracts.md),
so a batch is first decoded as ``WireReport``s (a ``ClientReport`` whose
``ts`` is a range-checked ``int``, validated by msgspec in C, without the
per-report ``__post_init__``), then the kind/error-code rule is checked in
one loop. Anything the fast path does not accept goes the full way, which
also says exactly what is wrong. It halves the decode cost, the largest
single cost of the worker's hot path.

>>> fast, _ = decode_reports(b'{"reports": [{"report_id": "a", "ts": 1795323600000, "client_id": "c",'
...                          b' "room_id": "r", "kind": "heartbeat", "platform": "ios"}]}')
>>> type(fast[0]).__name__, isinstance(fast[0], ClientReport), fast[0].ts
('WireReport', True, 1795323600000)
>>> decode_reports(b'{"reports": [{"report_id": "a", "ts": 1795323600000, "client_id": "c",'
...                b' "room_id": "r", "kind": "error", "platform": "ios"}]}')[1]
["reports[0]: error_code is required when kind is 'error'"]

>>> reports, bad = decode_reports(b'{"reports": [{"report_id": "a"}]}')
>>> reports, bad
([], ['reports[0]: Object missing required field `ts`'])
>>> decode_reports(b'not json')[1]
['JSON is malformed: invalid character (byte 4)']
"""

from __future__ import annotations

from core import schemas
from core.schemas import ClientReport, MetricBatch, MetricSample, SchemaError, WireReport, decode_wire_reports

__all__ = ["WireReport", "decode_reports", "decode_samples"]


def decode_reports(value: bytes | None) -> tuple[list[ClientReport], list[str]]:
    """Valid reports of one Kafka value, and the reasons for what was not."""
    if not value:
        return [], ["empty message value"]
    wire = decode_wire_reports(value)
    if wire is not None:
        return wire, []  # type: ignore[return-value]  # WireReport is a ClientReport
    try:
        return schemas.decode_report_batch(value).reports, []
    except SchemaError:
        pass
    try:
        valid, invalid = schemas.decode_reports_lenient(value)
        return valid, [f"reports[{index}]: {reason}" for index, reason in invalid]
    except SchemaError as envelope_error:
        if value.lstrip()[:1] != b"{" or b'"reports"' in value:
            return [], [str(envelope_error)]
    try:
        return [schemas.decode_report(value)], []
    except SchemaError as exc:
        return [], [str(exc)]


def decode_samples(value: bytes | None) -> tuple[list[MetricSample], list[str]]:
    """Samples of one Kafka value (all or nothing), or the reason."""
    if not value:
        return [], ["empty message value"]
    if b'"samples"' in value:
        try:
            return schemas.decode(value, MetricBatch).samples, []
        except SchemaError as exc:
            return [], [str(exc)]
    try:
        return [schemas.decode(value, MetricSample)], []
    except SchemaError as exc:
        return [], [str(exc)]
