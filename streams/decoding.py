"""Turn Kafka values into items, and everything unusable into a reason.

A value on ``client-reports`` is packed reports (the collector's format), a
JSON ``ReportBatch`` (the format before it) or one bare ``ClientReport``; on
``server-metrics`` a ``MetricBatch`` or one ``MetricSample``. A batch with
some invalid reports keeps the valid ones; each invalid one becomes its own
dead letter, carrying that item's raw bytes (``None``: the whole value's).

Reports are decoded by ``core.codec``, as in the collector and the sink:
past the collector every ``ts`` is already epoch ms (docs/contracts.md), so
a batch takes the fast path; anything else goes the full way, which also
says exactly what is wrong.

>>> fast, _ = decode_reports(b'{"reports": [{"report_id": "a", "ts": 1795323600000, "client_id": "c",'
...                          b' "room_id": "r", "kind": "heartbeat", "platform": "ios"}]}')
>>> type(fast[0]).__name__, isinstance(fast[0], ClientReport), fast[0].ts
('WireReport', True, 1795323600000)
>>> decode_reports(b'{"reports": [{"report_id": "a", "ts": 1795323600000, "client_id": "c",'
...                b' "room_id": "r", "kind": "error", "platform": "ios"}]}')[1][0][0]
"reports[0]: error_code is required when kind is 'error'"

>>> reports, bad = decode_reports(b'{"reports": [{"report_id": "a"}]}')
>>> reports, bad
([], [('reports[0]: Object missing required field `ts`', b'{"report_id": "a"}')])
>>> decode_reports(b'not json')[1]
[('JSON is malformed: invalid character (byte 4)', None)]
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from core import codec, schemas
from core.schemas import ClientReport, MetricBatch, MetricSample, SchemaError, WireReport
from core.timeutil import ArrivalBound

__all__ = ["WireReport", "decode_reports", "decode_samples", "Bounded", "Unusable"]

# Why part of a value was unusable, and the raw bytes of that part for its dead letter (None: the whole value).
Unusable = tuple[str, bytes | None]


def decode_reports(value: bytes | None) -> tuple[list[ClientReport], list[Unusable]]:
    """Valid reports of one Kafka value, and what was not (``core.codec.decode_value``)."""
    valid, rejected = codec.decode_value(value)
    return valid, [(item.described(), None if item.index == codec.WHOLE_VALUE else item.raw) for item in rejected]


def decode_samples(value: bytes | None) -> tuple[list[MetricSample], list[Unusable]]:
    """Samples of one Kafka value (all or nothing), or the reason."""
    if not value:
        return [], [("empty message value", None)]
    if b'"samples"' in value:
        try:
            return schemas.decode(value, MetricBatch).samples, []
        except SchemaError as exc:
            return [], [(str(exc), None)]
    try:
        return [schemas.decode(value, MetricSample)], []
    except SchemaError as exc:
        return [], [(str(exc), None)]


def as_json(item: Any) -> Any:
    """An item as its JSON object: a packed report (a MessagePack array on the wire) as the object a client
    sends, so a dead letter's ``raw`` reads as JSON whichever format the item came in.

    >>> from core.codec import decode_value, encode_reports
    >>> report = ClientReport(report_id="a", ts=1795323600000, client_id="c", room_id="r", kind="join",
    ...                       platform="web")
    >>> schemas.encode(as_json(decode_value(encode_reports([report]))[0][0]))
    b'{"report_id":"a","ts":1795323600000,"client_id":"c","room_id":"r","kind":"join","platform":"web","weight":1.0}'
    """
    if not isinstance(item, schemas.PackedReport):
        return item
    return {name: value for name, value in msgspec.structs.asdict(item).items() if value is not None}


@dataclass(frozen=True)
class Refused:
    """What of one Kafka value a bound refused: one dead letter for them all, holding just those items."""

    raw: bytes
    reason: str




@dataclass(frozen=True)
class Bounded:
    """Items whose event time is within ``bound`` of their Kafka record's timestamp (``ArrivalBound``).

    The collector already refuses such reports, but not everything in Kafka
    came through this collector (an older one, a replay, another producer):
    one report dated 2099 would move its partition's watermark there and
    close every real window. They go to the dead-letter topic rather than
    being clamped to the bound: a clamped time is invented, and would put the
    report in a window it never belonged to.

    >>> from core.timeutil import parse_event_time
    >>> now = parse_event_time("2026-12-01T09:00:00Z")
    >>> def report(i, ts):
    ...     return ClientReport(report_id=f"r{i}", ts=ts, client_id="c", room_id="x", kind="join", platform="web")
    >>> bounded = Bounded(ArrivalBound(max_ahead_ms=300_000, max_age_ms=86_400_000), "reports")
    >>> kept, refused = bounded([report(0, now), report(1, parse_event_time("2099-01-01T00:00:00Z"))], now)
    >>> [r.report_id for r in kept], refused.raw[:29]
    (['r0'], b'{"reports":[{"report_id":"r1"')
    >>> print(refused.reason)
    1 of 2 reports out of their Kafka record's time bound: reports[1]: ts 2099-01-01T00:00:00.000Z is 72 years ahead of its Kafka record (2026-12-01T09:00:00.000Z); at most 5 min ahead is accepted: the sender's clock is wrong
    >>> bounded([report(0, now)], now)[1] is None
    True
    """

    bound: ArrivalBound
    # The batch field the refused items are written back under ("reports", "samples").
    field: str

    def __call__(self, items: list[Any], record_ms: int) -> tuple[list[Any], Refused | None]:
        if record_ms <= 0 or not items:  # no timestamp on the record: nothing to hold it against
            return items, None
        kept, refused = self.bound.split(items, record_ms)
        if not refused:
            return items, None
        first_at, first_why = refused[0]
        raw = schemas.encode({self.field: [as_json(items[at]) for at, _ in refused]})
        reason = (f"{len(refused)} of {len(items)} {self.field} out of their Kafka record's time bound: "
                  f"{self.field}[{first_at}]: {first_why.replace('its arrival', 'its Kafka record')}")
        return kept, Refused(raw, reason)


BoundCheck = Callable[[list[Any], int], tuple[list[Any], Refused | None]]
