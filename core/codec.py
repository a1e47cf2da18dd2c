"""The one report decoder: raw values in, valid reports and ``(index, reason, raw)`` for the rest out.

The collector (a request body, or its NDJSON lines), the worker and the
sink (Kafka values) all decode reports here, so a report that one of them
accepts the others accept too, and each refusal says the same thing.

Between our own processes a batch travels packed (``encode_reports``): a
format marker byte, then MessagePack (docs/contracts.md). Every reader
also takes JSON, the format before it (a rolling upgrade), and names any
other marker it does not know rather than guessing.

A JSON batch is tried three ways, cheapest first: ``WireReport`` (every ``ts``
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

>>> report = decode_value(good)[0][0]
>>> packed = encode_reports([report, report])
>>> packed[:1], len(packed) < len(good)
(b'\\x01', True)
>>> [astuple(unpacked) == astuple(report) for unpacked in decode_value(packed)[0]]
[True, True]
>>> print(decode_value(b'\\x07' + packed[1:])[1][0].reason)
unknown format marker 0x07 (this reader knows JSON and 0x01, packed reports v1): written by a newer collector? upgrade the workers and sinks before the collectors
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import msgspec
from msgspec.structs import astuple

from core.config import ConfigError
from core.schemas import (
    UNDECODABLE,
    ClientReport,
    PackedClientReport,
    PackedReport,
    RawReportBatch,
    ReportBatch,
    SchemaError,
    clean_reason,
    decode_report,
    decode_report_batch,
    decode_wire_reports,
    encode,
    rule_holds,
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


# The first byte of an internal value. JSON never starts with a control byte other than whitespace, so
# those name formats; a new layout gets a new marker, and readers learn it before writers use it.
PACKED_REPORTS_V1 = 0x01
KNOWN_MARKERS = {PACKED_REPORTS_V1: "packed reports v1"}
_JSON_WHITESPACE = frozenset(b" \t\n\r")

_report_decoder = msgspec.json.Decoder(ClientReport)
_raw_batch_decoder = msgspec.json.Decoder(RawReportBatch)
_packer = msgspec.msgpack.Encoder()
_packed_decoder = msgspec.msgpack.Decoder(list[PackedReport])
_packed_items_decoder = msgspec.msgpack.Decoder(list[msgspec.Raw])
_packed_item_decoder = msgspec.msgpack.Decoder(PackedClientReport)
_PACKED_PREFIX = bytes([PACKED_REPORTS_V1])


def encode_reports(reports: Sequence[ClientReport]) -> bytes:
    """Reports as one internal Kafka value: the ``PACKED_REPORTS_V1`` marker, then a MessagePack array of
    ``PackedReport`` arrays (each report's fields in ``ClientReport`` order, ``ts`` already epoch ms)."""
    return _PACKED_PREFIX + _packer.encode([astuple(report) for report in reports])


def encode_json_reports(reports: Sequence[ClientReport]) -> bytes:
    """Reports as a JSON ``ReportBatch`` value, the internal format before ``encode_reports``."""
    return encode(ReportBatch(list(reports)))


REPORT_ENCODERS: dict[str, Callable[[Sequence[ClientReport]], bytes]] = {
    "packed": encode_reports, "json": encode_json_reports}


def report_encoder(name: str) -> Callable[[Sequence[ClientReport]], bytes]:
    """The encoder ``collector.kafka_report_format`` names.

    >>> report_encoder("xml")
    Traceback (most recent call last):
    ...
    core.config.ConfigError: OUTAGEWATCH_COLLECTOR_KAFKA_REPORT_FORMAT (collector.kafka_report_format) is 'xml'; use packed or json
    """
    try:
        return REPORT_ENCODERS[name]
    except KeyError:
        raise ConfigError(f"OUTAGEWATCH_COLLECTOR_KAFKA_REPORT_FORMAT (collector.kafka_report_format) is {name!r}; "
                          f"use {' or '.join(REPORT_ENCODERS)}") from None


def format_of(value: bytes) -> int | None:
    """The format marker a value starts with, or None for JSON (anything else that is not a control byte).

    >>> format_of(b'{"reports": []}'), format_of(b"\\n{}"), format_of(b"\\x01\\x90"), format_of(b"\\x00")
    (None, None, 1, 0)
    """
    first = value[0]
    return first if first < 0x20 and first not in _JSON_WHITESPACE else None


def unknown_format(marker: int) -> str:
    """What a reader says of a value whose format marker it does not know."""
    known = ", ".join(f"0x{code:02x}, {name}" for code, name in KNOWN_MARKERS.items())
    return (f"unknown format marker 0x{marker:02x} (this reader knows JSON and {known}): written by a newer "
            "collector? upgrade the workers and sinks before the collectors")


def decode_packed(value: bytes) -> tuple[list[ClientReport], list[Rejected]]:
    """A ``PACKED_REPORTS_V1`` value: every report in one msgspec call in C when the batch is all valid, else
    item by item (a ``Rejected`` per bad item, its ``raw`` the item's own MessagePack bytes)."""
    body = memoryview(value)[1:]
    try:
        reports = _packed_decoder.decode(body)
    except UNDECODABLE:
        pass
    else:
        if rule_holds(reports):  # type: ignore[arg-type]  # a PackedReport is a WireReport
            return reports, []  # type: ignore[return-value]  # a PackedReport is a ClientReport
    try:
        items = _packed_items_decoder.decode(body)
    except UNDECODABLE as exc:
        return [], [Rejected(WHOLE_VALUE, f"packed reports v1 value is malformed: {clean_reason(exc)}", value)]
    return decode_each(items, _packed_item_decoder.decode)


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
    """A Kafka value: packed reports (the collector's), a JSON ``ReportBatch`` or one bare ``ClientReport``.

    When nothing of it is usable, one ``Rejected`` with ``WHOLE_VALUE``: the
    bare report's reason when the value is an object without a ``reports``
    field (it was meant as one report), else the batch's.
    """
    if not value:
        return [], [Rejected(WHOLE_VALUE, "empty message value", b"")]
    marker = format_of(value)
    if marker == PACKED_REPORTS_V1:
        return decode_packed(value)
    if marker is not None:
        return [], [Rejected(WHOLE_VALUE, unknown_format(marker), value)]
    try:
        return decode_batch(value)
    except UnusableBatch as batch_error:
        try:
            return [decode_report(value)], []
        except SchemaError as exc:
            meant_as_one = value.lstrip()[:1] == b"{" and b'"reports"' not in value
            reason = str(exc) if meant_as_one else str(batch_error)
            return [], [Rejected(WHOLE_VALUE, reason, value)]
