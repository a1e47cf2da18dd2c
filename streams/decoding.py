"""Turn Kafka values into items, and everything unusable into a reason.

A value on ``client-reports`` is a ``ReportBatch`` (the collector's shape) or
one bare ``ClientReport``; on ``server-metrics`` a ``MetricBatch`` or one
``MetricSample``. A batch with some invalid reports keeps the valid ones;
each invalid one becomes its own dead letter.

>>> reports, bad = decode_reports(b'{"reports": [{"report_id": "a"}]}')
>>> reports, bad
([], ['reports[0]: Object missing required field `ts`'])
>>> decode_reports(b'not json')[1]
['JSON is malformed: invalid character (byte 4)']
"""

from __future__ import annotations

from outagewatch import schemas
from outagewatch.schemas import ClientReport, MetricBatch, MetricSample, SchemaError


def decode_reports(value: bytes | None) -> tuple[list[ClientReport], list[str]]:
    """Valid reports of one Kafka value, and the reasons for what was not."""
    if not value:
        return [], ["empty message value"]
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
