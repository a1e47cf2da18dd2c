"""Request bodies: the whole-batch fast path gives exactly what item-by-item decoding gives, or defers to it."""

from __future__ import annotations

import msgspec
import pytest

from collectors import bodies
from core import codec, schemas

T = 1_795_323_600_000
JSON = "application/json"


def _report(index: int, **fields: object) -> dict[str, object]:
    report: dict[str, object] = {"report_id": f"r{index}", "ts": T + index, "client_id": f"c{index % 7}",
                                 "room_id": f"room-{index % 3}", "kind": "heartbeat", "platform": "ios"}
    report.update(fields)
    return report


def _item_by_item(body: bytes) -> tuple[list[schemas.ClientReport], list[tuple[int, str]]]:
    valid, rejected = codec.decode_items(bodies.split_items(body, JSON, "reports", 5000))
    return valid, [(item.index, item.reason) for item in rejected]


def test_fast_path_equals_item_by_item() -> None:
    reports = [_report(i) for i in range(40)] + [
        _report(40, kind="error", error_code="crash", latency_ms=12.5, region="eu-west", app_version="5.2.1"),
        _report(41, kind="join", weight=4.0), _report(42, kind="leave")]
    body = schemas.encode({"reports": reports})
    fast, invalid = bodies.decode_reports(body, JSON, 5000)
    assert invalid == [] and {type(report) for report in fast} == {schemas.WireReport}
    slow, _ = _item_by_item(body)
    assert [msgspec.structs.asdict(r) for r in fast] == [msgspec.structs.asdict(r) for r in slow]
    # What goes on to Kafka is byte for byte what the full decode would have written.
    assert schemas.encode(schemas.ReportBatch(fast)) == schemas.encode(schemas.ReportBatch(slow))


@pytest.mark.parametrize("bad", [
    {"ts": "2026-11-22T05:00:00Z"},  # valid, but only the full decoder parses RFC 3339
    {"ts": 5},  # out of range: the schema's message, not the fast path's
    {"kind": "error"},  # no error_code
    {"error_code": "crash"},  # error_code on a heartbeat
    {"platform": "symbian"},
])
def test_what_the_fast_path_refuses_goes_item_by_item(bad: dict[str, object]) -> None:
    body = schemas.encode({"reports": [_report(0), _report(1, **bad), _report(2)]})
    assert bodies.decode_reports(body, JSON, 5000) == _item_by_item(body)
    valid, invalid = bodies.decode_reports(body, JSON, 5000)
    assert [r.report_id for r in valid] == (["r0", "r1", "r2"] if not invalid else ["r0", "r2"])
    if bad.get("ts") == "2026-11-22T05:00:00Z":
        assert invalid == [] and valid[1].ts == T


def test_batch_limit_holds_on_the_fast_path() -> None:
    body = schemas.encode({"reports": [_report(i) for i in range(11)]})
    with pytest.raises(bodies.BodyError) as refused:
        bodies.decode_reports(body, JSON, 10)
    assert refused.value.status == 413


def test_ndjson_and_broken_envelopes_keep_their_answers() -> None:
    lines = b"\n".join(schemas.encode(_report(i)) for i in range(3))
    valid, invalid = bodies.decode_reports(lines, "application/x-ndjson", 10)
    assert [r.report_id for r in valid] == ["r0", "r1", "r2"] and invalid == []
    for body, status in ((b'{"reports": [', 400), (b'{"reports": 3}', 400), (b"  ", 400)):
        with pytest.raises(bodies.BodyError) as refused:
            bodies.decode_reports(body, JSON, 10)
        assert refused.value.status == status
