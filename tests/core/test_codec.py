"""The one report decoder: what the collector, the worker and the sink accept and refuse, and why."""

from __future__ import annotations

import json

import msgspec
import pytest

from core import codec, schemas
from core.codec import WHOLE_VALUE, Rejected

T = 1_795_323_600_000


def report(**changes: object) -> dict[str, object]:
    item: dict[str, object] = {"report_id": "r-1", "ts": T, "client_id": "c-1", "room_id": "room-17",
                               "kind": "heartbeat", "platform": "android"}
    item.update(changes)
    return item


def batch(*reports: dict[str, object]) -> bytes:
    return json.dumps({"reports": list(reports)}).encode()


def test_a_batch_keeps_its_valid_items_and_rejects_each_other_one_with_its_own_bytes() -> None:
    bad = report(report_id="r-bad", kind="bogus")
    valid, rejected = codec.decode_batch(batch(report(), bad, report(report_id="r-2")))
    assert [r.report_id for r in valid] == ["r-1", "r-2"]
    assert rejected == [Rejected(1, "Invalid enum value 'bogus' - at `$.kind`", json.dumps(bad).encode())]
    assert rejected[0].described() == "reports[1]: Invalid enum value 'bogus' - at `$.kind`"


def test_the_three_ways_give_the_same_reports() -> None:
    wire, _ = codec.decode_batch(batch(report(), report(report_id="r-2", kind="error", error_code="crash")))
    parsed, _ = codec.decode_batch(batch(report(), report(report_id="r-2", kind="error", error_code="crash",
                                                          ts="2026-11-22T05:00:00Z")))
    one_bad, _ = codec.decode_batch(batch(report(), report(report_id="r-2", kind="error", error_code="crash"),
                                          report(kind="nope")))
    assert [type(r) for r in wire] == [schemas.WireReport] * 2
    assert [type(r) for r in parsed] == [type(r) for r in one_bad] == [schemas.ClientReport] * 2
    assert [msgspec.structs.asdict(r) for r in wire] == [msgspec.structs.asdict(r) for r in parsed] \
        == [msgspec.structs.asdict(r) for r in one_bad]


def test_a_broken_envelope_is_unusable_and_says_whether_it_is_json_at_all() -> None:
    with pytest.raises(codec.UnusableBatch, match="Expected `array`, got `object` - at `\\$.reports`") as shape:
        codec.decode_batch(b'{"reports": {}}')
    assert not shape.value.malformed
    with pytest.raises(codec.UnusableBatch, match="truncated") as truncated:
        codec.decode_batch(b'{"reports": [')
    assert truncated.value.malformed


@pytest.mark.parametrize("value", [batch(*[report(report_id=f"r{i}") for i in range(4)]),
                                   batch(*[report(report_id=f"r{i}", ts="2026-11-22T05:00:00Z") for i in range(4)]),
                                   batch(*[report(report_id=f"r{i}", kind="x" if i else "join") for i in range(4)])])
def test_too_many_items_are_refused_on_every_way(value: bytes) -> None:
    with pytest.raises(codec.BatchTooLarge, match="batch has 4 items; at most 3 per request"):
        codec.decode_batch(value, max_items=3)
    assert len(codec.decode_batch(value, max_items=4)[0]) in (1, 4)


def test_a_kafka_value_may_be_one_bare_report() -> None:
    (bare,), rejected = codec.decode_value(json.dumps(report(room_id="reports")).encode())
    assert rejected == [] and bare.room_id == "reports"


@pytest.mark.parametrize(("value", "reason"), [
    (b"", "empty message value"),
    (None, "empty message value"),
    (b"not json", "JSON is malformed: invalid character (byte 4)"),
    (b'{"reports": 3}', "Expected `array`, got `int` - at `$.reports`"),
    # An object without "reports" was meant as one report: its own reason, not the batch's.
    (json.dumps(report(platform="tv")).encode(), "Invalid enum value 'tv' - at `$.platform`"),
    (b'{"reports": ' + b"[" * 10_000, "JSON is nested too deeply"),
])
def test_an_unusable_kafka_value_is_one_rejection_of_the_whole(value: bytes | None, reason: str) -> None:
    assert codec.decode_value(value) == ([], [Rejected(WHOLE_VALUE, reason, value or b"")])


def full(**changes: object) -> schemas.ClientReport:
    return msgspec.convert(report(**changes), schemas.ClientReport)


def test_packed_reports_decode_to_exactly_what_their_json_decodes_to() -> None:
    reports = [full(), full(report_id="r-2", kind="error", error_code="crash", latency_ms=12.5, weight=8.0,
                            app_version="5.2.1", region="eu-west", source="0123456789ab"),
               full(report_id="r-3", ts="2026-11-22T05:00:00Z", latency_ms=3)]
    packed = codec.encode_reports(reports)
    from_packed, rejected = codec.decode_value(packed)
    from_json, _ = codec.decode_value(codec.encode_json_reports(reports))
    assert rejected == [] and packed[0] == codec.PACKED_REPORTS_V1
    assert all(isinstance(r, schemas.WireReport) for r in from_packed)  # the fast path, in C
    assert [msgspec.structs.asdict(r) for r in from_packed] == [msgspec.structs.asdict(r) for r in from_json]
    assert [msgspec.structs.asdict(r) for r in from_packed] == [msgspec.structs.asdict(r) for r in reports]
    assert len(packed) < 0.7 * len(codec.encode_json_reports(reports))


def test_a_packed_batch_keeps_its_valid_items_and_rejects_each_other_one_with_its_own_bytes() -> None:
    bad = full(report_id="r-bad")
    bad.kind = "error"  # no error_code: only the reader's full check sees it
    old = full(report_id="r-old")
    old.ts = 5  # before 2000
    valid, rejected = codec.decode_value(codec.encode_reports([full(), bad, full(report_id="r-2"), old]))
    assert [r.report_id for r in valid] == ["r-1", "r-2"]
    assert [(item.index, item.raw) for item in rejected] == [
        (1, msgspec.msgpack.encode(msgspec.structs.astuple(bad))), (3, msgspec.msgpack.encode(msgspec.structs.astuple(old)))]
    assert rejected[0].described() == "reports[1]: error_code is required when kind is 'error'"
    assert "2000..2100" in rejected[1].reason


def test_a_packed_item_from_an_older_writer_with_fewer_fields_still_decodes() -> None:
    # Fields are only ever appended with a default: an item without the newest ones (source, weight) is valid.
    short = msgspec.structs.astuple(full())[:-2]
    (decoded,), rejected = codec.decode_value(bytes([codec.PACKED_REPORTS_V1]) + msgspec.msgpack.encode([short]))
    assert rejected == [] and decoded.weight == 1.0 and decoded.source is None


@pytest.mark.parametrize(("value", "reason"), [
    (b"\x02\x91\x90", "unknown format marker 0x02 (this reader knows JSON and 0x01, packed reports v1)"),
    (b"\x00" * 8, "unknown format marker 0x00"),
    (b"\x01\xc1", "packed reports v1 value is malformed:"),
    (b"\x01", "packed reports v1 value is malformed:"),
    (b"\x01\x07", "packed reports v1 value is malformed: Expected `array`, got `int`"),
])
def test_an_unknown_or_broken_format_is_one_rejection_of_the_whole_value(value: bytes, reason: str) -> None:
    valid, (rejected,) = codec.decode_value(value)
    assert valid == [] and rejected.index == WHOLE_VALUE and rejected.raw == value
    assert rejected.reason.startswith(reason), rejected.reason


def test_json_with_leading_whitespace_is_still_json() -> None:
    assert [r.report_id for r in codec.decode_value(b"\n\t " + batch(report()))[0]] == ["r-1"]


def test_the_collector_format_setting_names_an_encoder_or_says_what_to_use() -> None:
    assert codec.report_encoder("packed") is codec.encode_reports
    assert codec.report_encoder("json") is codec.encode_json_reports
    with pytest.raises(ValueError, match="use packed or json"):
        codec.report_encoder("msgpack")
