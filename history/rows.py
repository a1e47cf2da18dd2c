"""Kafka message -> ClickHouse rows: pure functions, no I/O.

Each ``map_*`` function takes one Kafka value (bytes) and returns a
``Mapped``: the rows for its table (tuples in the order of that table's
``COLUMNS`` entry) and the reasons it could not use parts of the message.
Nothing is dropped silently: what does not map becomes a dead letter.

>>> from core.schemas import encode
>>> msg = encode({"reports": [{"report_id": "r1", "ts": 1795323600250, "client_id": "c1",
...                            "room_id": "room-1", "kind": "error", "error_code": "crash", "platform": "ios"}]})
>>> mapped = map_reports(msg, inserted_at=1795323700)
>>> mapped.rows
[(1795323600, 1795323600250, 'r1', 'c1', 'room-1', 'error', 'crash', 'ios', '', '', -1.0, 1.0, 1795323700)]
>>> map_reports(b'{"reports": 3}', inserted_at=0).errors
['not a ReportBatch or ClientReport: Expected `array`, got `int` - at `$.reports`']
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from core import codec
from core.schemas import (
    ERROR_CODES,
    Alert,
    AnomalyScoreBatch,
    ClientReport,
    DeadLetter,
    MetricBatch,
    RoomHealth,
    SchemaError,
    ServiceHealth,
    WireReport,
    decode,
    encode,
)

Row = tuple[Any, ...]

COLUMNS: dict[str, tuple[str, ...]] = {
    "reports": ("ts", "ts_ms", "report_id", "client_id", "room_id", "kind", "error_code", "platform",
                "app_version", "region", "latency_ms", "weight", "inserted_at"),
    "room_health": ("window_start", "window_end", "scope", "key", "region", "listeners", "joins", "leaves",
                    "reports", "errors", "error_ratio", "error_clients", "late_reports",
                    *(f"errors_{code}" for code in ERROR_CODES),
                    *(f"error_clients_{code}" for code in ERROR_CODES),
                    "latency_p50_ms", "latency_p99_ms", "inserted_at"),
    "service_health": ("window_start", "window_end", "scope", "key", "cluster", "samples", "hosts",
                       "metric_names", "metric_values", "inserted_at"),
    "server_metrics": ("ts", "ts_ms", "service", "cluster", "host", "name", "value", "label_names",
                       "label_values", "inserted_at"),
    "alerts": ("event_ts", "fingerprint", "status", "scope", "key", "kind", "severity", "starts_at", "ends_at",
               "summary", "labels_json", "evidence_json", "affected", "inserted_at"),
    "anomaly_scores": ("window_start", "scope", "key", "detector", "observed", "baseline", "lower", "upper",
                       "score", "inserted_at"),
    "dead_letters": ("received_at", "source_topic", "partition", "offset", "error", "raw"),
}


@dataclass
class Mapped:
    """Rows for one table from one message, and why parts of it were unusable.

    ``errors[i]`` is about ``rejected[i]``: the raw bytes of the unusable
    item, or ``None`` when the whole message is unusable.
    """

    rows: list[Row] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    rejected: list[bytes | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        if len(self.rejected) < len(self.errors):
            self.rejected += [None] * (len(self.errors) - len(self.rejected))


def _report_row(report: ClientReport, inserted_at: int) -> Row:
    ts_ms = int(report.ts)
    return (
        ts_ms // 1000, ts_ms, report.report_id, report.client_id, report.room_id, report.kind,
        report.error_code or "", report.platform, report.app_version or "", report.region or "",
        -1.0 if report.latency_ms is None else float(report.latency_ms), float(report.weight), inserted_at,
    )


def _wire_rows(reports: list[WireReport], inserted_at: int) -> list[Row]:
    """``_report_row`` for a whole fast-path batch, inlined: ``ts`` is an int and the floats are floats
    (msgspec decoded them), so this is one comprehension and no call per report."""
    return [(report.ts // 1000, report.ts, report.report_id, report.client_id, report.room_id, report.kind,
             report.error_code or "", report.platform, report.app_version or "", report.region or "",
             -1.0 if report.latency_ms is None else report.latency_ms, report.weight, inserted_at)
            for report in reports]


def map_reports(value: bytes, inserted_at: int) -> Mapped:
    """A ``ReportBatch`` (or one bare ``ClientReport``) -> one ``reports`` row per report.

    Decoded by ``core.codec``, as in the collector and the worker: a batch
    with some invalid reports keeps the valid ones, and each invalid one is
    an error naming its index, rejected with its own bytes.
    """
    valid, rejected = codec.decode_value(value)
    if not rejected and valid and isinstance(valid[0], WireReport):  # the fast path: every report a WireReport
        return Mapped(_wire_rows(valid, inserted_at))  # type: ignore[arg-type]
    if rejected and rejected[0].index == codec.WHOLE_VALUE:
        return Mapped(errors=[f"not a ReportBatch or ClientReport: {rejected[0].reason}"])
    return Mapped([_report_row(report, inserted_at) for report in valid],
                  [item.described() for item in rejected], [item.raw for item in rejected])


def _per_code(counts: dict[str, float]) -> list[float]:
    """Counts in ``ERROR_CODES`` order; a code outside schema v1 counts as ``other``.

    >>> _per_code({"crash": 2, "made_up": 1})
    [0.0, 2.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    """
    out = dict.fromkeys(ERROR_CODES, 0.0)
    for code, count in counts.items():
        out[code if code in out else "other"] += float(count)
    return list(out.values())


def room_health_row(window: RoomHealth, inserted_at: int) -> Row:
    return (
        window.window_start // 1000, window.window_end // 1000, window.scope, window.key, window.region,
        float(window.listeners), float(window.joins), float(window.leaves), float(window.reports),
        float(window.errors), float(window.error_ratio), float(window.error_clients), int(window.late_reports),
        *_per_code(window.errors_by_code), *_per_code(window.error_clients_by_code),
        -1.0 if window.latency_p50_ms is None else float(window.latency_p50_ms),
        -1.0 if window.latency_p99_ms is None else float(window.latency_p99_ms),
        inserted_at,
    )


def map_room_health(value: bytes, inserted_at: int) -> Mapped:
    """One closed ``RoomHealth`` window -> one ``room_health`` row (per-code counts flattened)."""
    try:
        return Mapped([room_health_row(decode(value, RoomHealth), inserted_at)])
    except SchemaError as exc:
        return Mapped(errors=[f"not a RoomHealth window: {exc}"])


def map_service_health(value: bytes, inserted_at: int) -> Mapped:
    """One ``ServiceHealth`` window -> one row; its metrics as sorted parallel arrays."""
    try:
        window = decode(value, ServiceHealth)
    except SchemaError as exc:
        return Mapped(errors=[f"not a ServiceHealth window: {exc}"])
    names = sorted(window.metrics)
    return Mapped([(
        window.window_start // 1000, window.window_end // 1000, window.scope, window.key, window.cluster,
        int(window.samples), int(window.hosts), names, [float(window.metrics[n]) for n in names], inserted_at,
    )])


def map_server_metrics(value: bytes, inserted_at: int) -> Mapped:
    """A ``MetricBatch`` -> one ``server_metrics`` row per sample."""
    try:
        batch = decode(value, MetricBatch)
    except SchemaError as exc:
        return Mapped(errors=[f"not a MetricBatch: {exc}"])
    rows: list[Row] = []
    for sample in batch.samples:
        ts_ms = int(sample.ts)
        label_names = sorted(sample.labels)
        rows.append((ts_ms // 1000, ts_ms, sample.service, sample.cluster, sample.host, sample.name,
                     float(sample.value), label_names, [sample.labels[n] for n in label_names], inserted_at))
    return Mapped(rows)


def map_alerts(value: bytes, inserted_at: int) -> Mapped:
    """One ``Alert`` state change -> one ``alerts`` row (``ends_at`` 0 while firing)."""
    try:
        alert = decode(value, Alert)
    except SchemaError as exc:
        return Mapped(errors=[f"not an Alert: {exc}"])
    return Mapped([(
        alert.event_ts // 1000, alert.fingerprint, alert.status, alert.scope, alert.key, alert.kind,
        alert.severity, alert.starts_at // 1000, 0 if alert.ends_at is None else alert.ends_at // 1000,
        alert.summary, encode(dict(sorted(alert.labels.items()))).decode(),
        encode(alert.evidence).decode(), list(alert.affected), inserted_at,
    )])


def map_anomaly_scores(value: bytes, inserted_at: int) -> Mapped:
    """An ``AnomalyScoreBatch`` -> one ``anomaly_scores`` row per score (the dashboards' baseline bands)."""
    try:
        batch = decode(value, AnomalyScoreBatch)
    except SchemaError as exc:
        return Mapped(errors=[f"not an AnomalyScoreBatch: {exc}"])
    return Mapped([(score.window_start // 1000, score.scope, score.key, score.detector, float(score.observed),
                    float(score.baseline), float(score.lower), float(score.upper), float(score.score), inserted_at)
                   for score in batch.scores])


def raw_text(raw: bytes) -> str:
    """Raw bytes as text ClickHouse and analysts can read back (invalid UTF-8 escaped).

    >>> raw_text(b'ok \\xff')
    'ok \\\\xff'
    """
    return raw.decode("utf-8", errors="backslashreplace")


def dead_letter_row(letter: DeadLetter, inserted_at: int) -> Row:
    received = letter.received_ms // 1000 if letter.received_ms > 0 else inserted_at
    return (received, letter.source_topic, int(letter.partition), int(letter.offset), letter.error,
            raw_text(letter.raw))


def map_dead_letter(value: bytes, inserted_at: int) -> Mapped:
    """A ``DeadLetter`` -> one ``dead_letters`` row.

    A message on the dead-letter topic that is not a ``DeadLetter`` is itself
    kept, as an error row the caller builds from ``errors``.
    """
    try:
        return Mapped([dead_letter_row(decode(value, DeadLetter), inserted_at)])
    except SchemaError as exc:
        return Mapped(errors=[f"not a DeadLetter: {exc}"])


Mapper = Callable[[bytes, int], Mapped]


@dataclass(frozen=True)
class Route:
    """Where one topic's messages go: the table and the function that maps them."""

    topic: str
    table: str
    mapper: Mapper


def routes_for(topics: Any) -> tuple[Route, ...]:
    """The sink's topic -> table routing, from ``Settings.topics``."""
    return (
        Route(topics.client_reports, "reports", map_reports),
        Route(topics.room_health, "room_health", map_room_health),
        Route(topics.service_health, "service_health", map_service_health),
        Route(topics.server_metrics, "server_metrics", map_server_metrics),
        Route(topics.alerts, "alerts", map_alerts),
        Route(topics.anomaly_scores, "anomaly_scores", map_anomaly_scores),
        Route(topics.dead_letter, "dead_letters", map_dead_letter),
    )
