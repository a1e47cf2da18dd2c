"""Event schemas: the one module that knows the shape of every message.

Decoding and validation use msgspec, the fastest of the validators
``outagewatch bench schemas`` compares (docs/benchmarks.md): every report is
decoded by the collector, the worker and the sink.

Errors name the field and its position:

>>> decode_report(b'{"report_id":"r1","ts":1795323600000,"client_id":"c","room_id":"x","kind":"error","platform":"ios"}')
Traceback (most recent call last):
...
core.schemas.SchemaError: error_code is required when kind is 'error'
>>> r = decode_report(b'{"report_id":"r1","ts":"2026-11-22T05:00:00Z","client_id":"c","room_id":"x","kind":"heartbeat","platform":"ios"}')
>>> r.ts, r.weight
(1795323600000, 1.0)
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

from core.timeutil import MAX_EVENT_MS, MIN_EVENT_MS, parse_event_time

SCHEMA_VERSION = 1

Identifier = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
ShortText = Annotated[str, msgspec.Meta(max_length=32)]
NonNegative = Annotated[float, msgspec.Meta(ge=0)]
# A sampling weight: under overload the collector keeps 1 heartbeat in N and
# marks it with weight N so windowed counts stay right downstream.
Weight = Annotated[float, msgspec.Meta(gt=0, le=1_000_000)]

Kind = Literal["heartbeat", "join", "leave", "error"]
ErrorCode = Literal[
    "details_not_available",
    "crash",
    "join_failed",
    "audio_dropout",
    "audio_garbled",
    "logged_out",
    "timeout",
    "other",
]
Platform = Literal["ios", "android", "web", "other"]
Scope = Literal["room", "service", "region", "cluster", "platform", "app_version", "global"]
# Distinct error clients one source (the collector's stamp of a client network) may count for in a window
# (``RoomHealth.capped_error_clients``): a household's second phone still counts, a script's thousand ids
# are two, and fewer than three networks never reach the detectors' five-client minimum.
CLIENTS_PER_SOURCE = 2

KINDS: tuple[str, ...] = Kind.__args__  # type: ignore[attr-defined]
ERROR_CODES: tuple[str, ...] = ErrorCode.__args__  # type: ignore[attr-defined]
PLATFORMS: tuple[str, ...] = Platform.__args__  # type: ignore[attr-defined]


class SchemaError(ValueError):
    """Input that does not match a schema; the message says where and why."""


# What msgspec raises for input it cannot use. RecursionError: JSON nested deeper than its
# decoder's stack (``[[[[...`` of a garbage body); it is the input's fault like the others.
UNDECODABLE = (msgspec.ValidationError, msgspec.DecodeError, RecursionError)


class ClientReport(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Client report, version 1 (see docs/design.md). ``ts`` becomes epoch ms."""

    report_id: Identifier
    ts: int | float | str
    client_id: Identifier
    room_id: Identifier
    kind: Kind
    platform: Platform
    error_code: ErrorCode | None = None
    app_version: ShortText | None = None
    region: ShortText | None = None
    latency_ms: NonNegative | None = None
    weight: Weight = 1.0
    # Where the report came from, stamped by the collector (a keyed hash of the client's network and
    # key, ``collectors.sources``); a client's own value is overwritten. None: not stamped (a recording,
    # a replay straight into Kafka): each client then counts as its own source.
    source: ShortText | None = None

    def __post_init__(self) -> None:
        # msgspec turns ValueError here into a ValidationError with the path.
        self.ts = parse_event_time(self.ts)
        if self.kind == "error":
            if self.error_code is None:
                raise ValueError("error_code is required when kind is 'error'")
        elif self.error_code is not None:
            raise ValueError(f"error_code must be absent when kind is {self.kind!r}")

    @property
    def ts_ms(self) -> int:
        return int(self.ts)


class WireReport(ClientReport, kw_only=True, omit_defaults=True, gc=False):
    """A ``ClientReport`` whose ``ts`` is already epoch ms, range-checked by msgspec in C.

    The fast path of whole-batch decoding (collector bodies, the worker's
    Kafka values): no per-report ``__post_init__``, so the kind/error-code
    rule is checked per batch with ``rule_holds``. Anything it refuses goes
    the full way (``ClientReport``), which also says exactly what is wrong.
    It encodes exactly as a ``ClientReport`` (same fields, same order).
    Its fields are scalars, so it cannot be part of a cycle: ``gc=False``
    keeps the garbage collector from tracking every decoded report
    (``core.gctune``).
    """

    ts: Annotated[int, msgspec.Meta(ge=MIN_EVENT_MS, lt=MAX_EVENT_MS)]

    def __post_init__(self) -> None:
        pass


def rule_holds(reports: list[WireReport]) -> bool:
    """error_code present exactly when kind is error (``ClientReport.__post_init__``'s rule)."""
    for report in reports:  # noqa: SIM110 - a plain loop beats all() over a generator here
        if (report.kind == "error") is (report.error_code is None):
            return False
    return True


class ReportBatch(msgspec.Struct):
    """A batch of reports: the body of ``POST /v1/reports`` and a Kafka value."""

    reports: list[ClientReport]


class WireReportBatch(msgspec.Struct):
    """A ``ReportBatch`` read on the fast path (see ``WireReport``)."""

    reports: list[WireReport]


_wire_batch_decoder = msgspec.json.Decoder(WireReportBatch)


def decode_wire_reports(value: bytes) -> list[WireReport] | None:
    """The reports of a ``ReportBatch`` on the fast path, or None when it needs the full way.

    None when any report is invalid, its ``ts`` is not epoch ms, or the body
    is not one JSON batch: the caller then decodes item by item and says what
    is wrong.

    >>> decode_wire_reports(b'{"reports": [{"report_id": "a", "ts": 1795323600000, "client_id": "c", '
    ...                     b'"room_id": "r", "kind": "heartbeat", "platform": "ios"}]}')[0].ts
    1795323600000
    >>> decode_wire_reports(b'{"reports": [{"report_id": "a", "ts": "2026-11-22T05:00:00Z", "client_id": "c", '
    ...                     b'"room_id": "r", "kind": "heartbeat", "platform": "ios"}]}') is None
    True
    """
    try:
        reports = _wire_batch_decoder.decode(value).reports
    except UNDECODABLE:
        return None
    return reports if rule_holds(reports) else None


class RawReportBatch(msgspec.Struct):
    """A batch whose items are decoded one by one, so one bad item rejects only itself (``core.codec``)."""

    reports: list[msgspec.Raw]


class PackedReport(WireReport, array_like=True, kw_only=True, omit_defaults=True, gc=False):
    """A ``WireReport`` as one item of a packed report batch (``core.codec``): a MessagePack array of its
    fields in ``ClientReport`` order, so no field name is written or read per report.

    Fields may only be appended, with a default (a shorter array still decodes); any other change of the
    layout is a new format marker (``core.codec.PACKED_REPORTS_V1``).
    """


class PackedClientReport(ClientReport, array_like=True, kw_only=True, omit_defaults=True):
    """The full check of one packed item (``ClientReport.__post_init__``), when the batch fails the fast path."""


class MetricSample(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One server metric sample (scraped or pushed)."""

    ts: int | float | str
    service: Identifier
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    value: float
    host: Annotated[str, msgspec.Meta(max_length=255)] = ""
    cluster: ShortText = ""
    labels: dict[str, str] = {}

    def __post_init__(self) -> None:
        self.ts = parse_event_time(self.ts)


class MetricBatch(msgspec.Struct):
    samples: list[MetricSample]


class RoomHealth(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One closed event-time window of client reports for one key.

    ``scope`` is ``room`` (key = room_id) for per-room windows; the same shape
    carries the region, platform, app_version and global aggregates.
    Counts are weighted (see ``ClientReport.weight``).
    """

    scope: Scope = "room"
    key: str
    window_start: int
    window_end: int
    listeners: float = 0.0
    joins: float = 0.0
    leaves: float = 0.0
    reports: float = 0.0
    errors: float = 0.0
    error_ratio: float = 0.0
    errors_by_code: dict[str, float] = {}
    error_clients: float = 0.0
    error_clients_by_code: dict[str, float] = {}
    # The same, each source (the collector's ``source`` stamp) counting for at most CLIENTS_PER_SOURCE: what one
    # script with a thousand invented client ids cannot inflate, and what the detectors judge. None: a
    # window published before sources were counted (the detectors then judge ``error_clients``).
    capped_error_clients: float | None = None
    capped_error_clients_by_code: dict[str, float] | None = None
    # Distinct sources of error reports, per code, summed.
    error_sources: float = 0.0
    # A room window's error clients while they are few (at most ERROR_TOKENS_MAX per code, none sampled):
    # per code, the sorted 32-bit tokens of their sources (the collector's network stamp, or the client when
    # unstamped), so the detectors can count distinct people over several windows (``detectors.span``).
    # A code missing here had too many to list. None: an aggregate window, or one published before.
    error_tokens_by_code: dict[str, list[int]] | None = None
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    late_reports: int = 0
    region: str = ""
    # The smallest share of the window's error reports the collector kept (1 / their largest weight): below
    # 1.0 its error counts are weighted estimates of a room that flooded the collector (collectors.storm).
    error_keep: float = 1.0


class ServiceHealth(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One closed window of server metrics for one service (or cluster)."""

    scope: Scope = "service"
    key: str
    cluster: str = ""
    window_start: int
    window_end: int
    samples: int = 0
    hosts: int = 0
    metrics: dict[str, float] = {}
    # A service window that spans several clusters: each cluster's own means.
    # A service failing in one cluster of five is a fifth as loud in ``metrics``.
    clusters: dict[str, dict[str, float]] = {}


class Evidence(msgspec.Struct, kw_only=True, omit_defaults=True):
    detector: str
    observed: float
    baseline: float
    score: float
    detail: str = ""


class Decision(msgspec.Struct, kw_only=True, omit_defaults=True):
    """A detector's verdict on one window of one key: what alerting consumes.

    Detectors emit one per (scope, key, kind) they judged, good or bad: the
    good ones are what lets a firing alert resolve.
    """

    scope: Scope
    key: str
    kind: str
    window_start: int
    window_end: int
    bad: bool
    severity: Literal["info", "warning", "critical"] = "warning"
    score: float = 0.0
    evidence: list[Evidence] = []
    # Context for grouping and routing: region, cluster, platform, app_version...
    labels: dict[str, str] = {}
    # When a bad verdict rests on earlier windows too (a rise that began in the
    # window before, proven over both together): the earliest window_start it
    # covers. 0: this window alone. Alerting counts the window before as pending.
    since: int = 0
    # The window's ``RoomHealth.error_keep``: below 1.0 the counts behind the verdict were sampled.
    error_keep: float = 1.0


class EventTimeMark(msgspec.Struct, kw_only=True):
    """In-band on every partition of ``room-health`` and ``service-health``: every window ending by ``closed_upto`` is before it.

    The scope merger sends one to each partition once every source
    partition's windows have closed up to ``closed_upto`` (and were
    acknowledged before their progress was reported). A consumer that reads a
    mark has therefore read every window of that partition ending by then:
    a key with no window there has none (``streams.dark``). Not a window:
    readers of these topics skip it (``is_event_time_mark``).

    >>> raw = encode(EventTimeMark(closed_upto=1_795_392_010_000))
    >>> raw
    b'{"event_time_mark":1,"closed_upto":1795392010000}'
    >>> is_event_time_mark(raw), is_event_time_mark(b'{"scope":"room"}')
    (True, False)
    >>> decode(raw, EventTimeMark).closed_upto
    1795392010000
    """

    event_time_mark: int = 1  # the mark's version, first so that marks are told apart by their first bytes
    closed_upto: int


MARK_PREFIX = b'{"event_time_mark":'


def is_event_time_mark(value: bytes | None) -> bool:
    """Whether a ``room-health``/``service-health`` record is an ``EventTimeMark``, not a window."""
    return value is not None and value.startswith(MARK_PREFIX)


class LeafSummary(msgspec.Struct, kw_only=True, omit_defaults=True):
    """What one detector partition's leaf (room) decisions told that its forwarded ones leave out.

    A partition forwards to the one alerting partition only the decisions that
    can change an alert (``alerting.forward``); this summary carries the rest:
    the newest window it judged (``watermark``: window_start, window_end) and,
    per group, how many of its leaves were last judged at each window end
    (``active``: label, group, window_end, leaves), from which the engine
    counts the active rooms a group's share is measured against.
    """

    source: str
    watermark: tuple[int, int] = (0, 0)
    active: list[tuple[str, str, int, int]] = []
    judged: int = 0  # leaf decisions the partition judged since its last summary
    forwarded: int = 0  # of which it forwarded


class Alert(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An alert event: the alert as it is at ``event_ts`` (firing or resolved)."""

    fingerprint: str
    status: Literal["firing", "resolved"]
    scope: Scope
    key: str
    kind: str
    severity: Literal["info", "warning", "critical"]
    starts_at: int
    event_ts: int
    summary: str
    ends_at: int | None = None
    labels: dict[str, str] = {}
    evidence: list[Evidence] = []
    affected: list[str] = []


class AnomalyScore(msgspec.Struct, kw_only=True):
    """One detector's view of one closed window: a row of ClickHouse ``anomaly_scores``.

    ``detector`` is ``"<kind>/<detector>"`` (e.g. ``details_not_available/error_ratio``,
    ``volume/volume_baseline``, ``server_anomaly/isolation_forest``, and
    ``server_anomaly/isolation_forest@ap-south`` for a service's cluster slice); ``observed``,
    ``baseline``, ``lower`` and ``upper`` are in that detector's unit (distinct
    error clients, a ratio...), ``upper`` being where it alarms.
    """

    scope: Scope
    key: str
    window_start: int
    window_end: int
    detector: str
    observed: float
    baseline: float
    lower: float
    upper: float
    score: float


class AnomalyScoreBatch(msgspec.Struct, kw_only=True):
    """A value of ``topics.anomaly_scores``: every ``AnomalyScore`` of one key's windows in one detection batch.

    One message per key and batch, not per row: a room window yields a row
    per (kind, detector), some thirty, and a worker catching up judges
    thousands of windows a second.
    """

    scores: list[AnomalyScore]


class DeadLetter(msgspec.Struct, kw_only=True, omit_defaults=True):
    """Input we could not use, kept with the reason and where it came from."""

    source_topic: str
    error: str
    raw: bytes
    partition: int = -1
    offset: int = -1
    received_ms: int = 0


_encoder = msgspec.json.Encoder()
_report_decoder = msgspec.json.Decoder(ClientReport)
_batch_decoder = msgspec.json.Decoder(ReportBatch)
_decoders: dict[type, msgspec.json.Decoder[Any]] = {}


def encode(value: msgspec.Struct | Any) -> bytes:
    """JSON bytes of any schema object (or plain data)."""
    return _encoder.encode(value)


def decode(buf: bytes | str, kind: type[Any]) -> Any:
    """Decode and validate ``buf`` as ``kind``, raising ``SchemaError``."""
    decoder = _decoders.get(kind)
    if decoder is None:
        decoder = _decoders[kind] = msgspec.json.Decoder(kind)
    try:
        return decoder.decode(buf)
    except UNDECODABLE as exc:
        raise SchemaError(clean_reason(exc)) from None


def decode_report(buf: bytes | str) -> ClientReport:
    try:
        return _report_decoder.decode(buf)
    except UNDECODABLE as exc:
        raise SchemaError(clean_reason(exc)) from None


def decode_report_batch(buf: bytes | str) -> ReportBatch:
    """All-or-nothing: a batch with one invalid report raises."""
    try:
        return _batch_decoder.decode(buf)
    except UNDECODABLE as exc:
        raise SchemaError(clean_reason(exc)) from None


def clean_reason(exc: Exception) -> str:
    """The reason to give for ``exc``.

    >>> clean_reason(RecursionError("maximum recursion depth exceeded while deserializing an object"))
    'JSON is nested too deeply'
    """
    if isinstance(exc, RecursionError):
        return "JSON is nested too deeply"
    # msgspec says "... - at `$.room_id`"; keep it, it is precise and readable.
    return str(exc)
