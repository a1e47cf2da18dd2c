"""The one report decoder: raw values in, valid reports and ``(index, reason, raw)`` for the rest out.

The collector (a request body, or its NDJSON lines), the worker and the
sink (Kafka values) all decode reports here, so a report that one of them
accepts the others accept too, and each refusal says the same thing.

A batch is tried three ways, cheapest first: ``WireReport`` (every ``ts``
already epoch ms, every report valid: one msgspec call in C, which is what
the collector writes), then ``ReportBatch`` (all valid, some ``ts`` still
to parse), then item by item, which keeps the valid reports and says what
is wrong with each of the others.

>>> good = (b'{"report_id": "a", "ts": 1795323600000, "client_id": "c", "room_id": "r",'
...         b' "kind": "heartbeat", "platform": "ios"}')
>>> valid, rejected = decode_value(b'{"reports": [' + good + b', {"report_id": "b"}]}')
>>> [report.report_id for report in valid], rejected
(['a'], [Rejected(index=1, reason='Object missing required field `ts`', raw=b'{"report_id": "b"}')])
>>> rejected[0].described()
'reports[1]: Object missing required field `ts`'
>>> decode_value(good)[0][0].report_id
'a'
>>> decode_value(b'not json')[1]
[Rejected(index=-1, reason='JSON is malformed: invalid character (byte 4)', raw=b'not json')]
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec

from core.schemas import (
    UNDECODABLE,
    ClientReport,
    RawReportBatch,
    SchemaError,
    clean_reason,
    decode_report,
    decode_report_batch,
    decode_wire_reports,
)

T = TypeVar("T")

# ``Rejected.index`` when the whole value is unusable rather than one item of it.
WHOLE_VALUE = -1


@dataclass(frozen=True, slots=True)
class Rejected:
    """One item a decoder could not use: where it stood, why, and its raw bytes (the dead letter's payload).

    ``index`` is ``WHOLE_VALUE`` and ``raw`` the whole value when nothing of the value was usable.
    """

    index: int
    reason: str
    raw: bytes

    def described(self, field: str = "reports") -> str:
        """The reason with where the item stood, as dead letters say it: ``reports[3]: ...``.

        >>> Rejected(3, "bad ts", b"{}").described(), Rejected(WHOLE_VALUE, "not JSON", b"x").described()
        ('reports[3]: bad ts', 'not JSON')
        """
        return self.reason if self.index == WHOLE_VALUE else f"{field}[{self.index}]: {self.reason}"


class UnusableBatch(SchemaError):
    """A value that is not a batch at all; ``malformed``: not even JSON (else JSON of the wrong shape)."""

    def __init__(self, reason: str, *, malformed: bool) -> None:
        super().__init__(reason)
        self.malformed = malformed


class BatchTooLarge(SchemaError):
    """A batch with more items than its reader takes; refused before any item is decoded one by one."""

    def __init__(self, items: int, max_items: int) -> None:
        super().__init__(f"batch has {items} items; at most {max_items} per request")
        self.items = items


_report_decoder = msgspec.json.Decoder(ClientReport)
_raw_batch_decoder = msgspec.json.Decoder(RawReportBatch)


def decode_each(items: Sequence[bytes | msgspec.Raw], decode: Callable[[Any], T]) -> tuple[list[T], list[Rejected]]:
    """``decode`` each raw JSON item: the decoded ones, and a ``Rejected`` for each of the others.

    >>> decode_each([b"1", b"x"], msgspec.json.Decoder(int).decode)
    ([1], [Rejected(index=1, reason='JSON is malformed: invalid character (byte 0)', raw=b'x')])
    """
    valid: list[T] = []
    rejected: list[Rejected] = []
    for index, item in enumerate(items):
        try:
            valid.append(decode(item))
        except UNDECODABLE as exc:
            rejected.append(Rejected(index, clean_reason(exc), bytes(item)))
    return valid, rejected


def decode_items(items: Sequence[bytes | msgspec.Raw]) -> tuple[list[ClientReport], list[Rejected]]:
    """Raw JSON reports one by one (an NDJSON body's lines, a batch's items); one bad item rejects only itself."""
    return decode_each(items, _report_decoder.decode)


def decode_batch(value: bytes, max_items: int = sys.maxsize) -> tuple[list[ClientReport], list[Rejected]]:
    """A ``{"reports": [...]}`` value: its valid reports and a ``Rejected`` for each of the others.

    Raises ``UnusableBatch`` when the value is not such a batch, and
    ``BatchTooLarge`` past ``max_items``.

    >>> decode_batch(b'{"reports": 3}')
    Traceback (most recent call last):
    ...
    core.codec.UnusableBatch: Expected `array`, got `int` - at `$.reports`
    """
    wire = decode_wire_reports(value)
    if wire is not None:
        if len(wire) > max_items:
            raise BatchTooLarge(len(wire), max_items)
        return wire, []  # type: ignore[return-value]  # a WireReport is a ClientReport
    try:
        reports = decode_report_batch(value).reports
    except SchemaError:
        pass
    else:
        if len(reports) > max_items:
            raise BatchTooLarge(len(reports), max_items)
        return reports, []
    try:
        items = _raw_batch_decoder.decode(value).reports
    except UNDECODABLE as exc:
        raise UnusableBatch(clean_reason(exc), malformed=not isinstance(exc, msgspec.ValidationError)) from None
    if len(items) > max_items:
        raise BatchTooLarge(len(items), max_items)
    return decode_items(items)


def decode_value(value: bytes | None) -> tuple[list[ClientReport], list[Rejected]]:
    """A Kafka value: a ``ReportBatch`` (the collector's shape) or one bare ``ClientReport``.

    When nothing of it is usable, one ``Rejected`` with ``WHOLE_VALUE``: the
    bare report's reason when the value is an object without a ``reports``
    field (it was meant as one report), else the batch's.
    """
    if not value:
        return [], [Rejected(WHOLE_VALUE, "empty message value", b"")]
    try:
        return decode_batch(value)
    except UnusableBatch as batch_error:
        try:
            return [decode_report(value)], []
        except SchemaError as exc:
            meant_as_one = value.lstrip()[:1] == b"{" and b'"reports"' not in value
            reason = str(exc) if meant_as_one else str(batch_error)
            return [], [Rejected(WHOLE_VALUE, reason, value)]
