"""The worker's decode fast path gives exactly what the full schema decode gives, or defers to it."""

from __future__ import annotations

import msgspec

from core import schemas
from streams.decoding import WireReport, decode_reports
from tests.streams.conftest import generate_reports

T = 1_795_323_600_000


def test_fast_path_equals_the_full_decode() -> None:
    reports = generate_reports(rooms=3, per_room=50, start_ms=T, span_ms=10_000)
    value = schemas.encode(schemas.ReportBatch(reports=reports))
    fast, errors = decode_reports(value)
    assert errors == [] and all(type(report) is WireReport for report in fast)
    assert [msgspec.structs.asdict(r) for r in fast] == [msgspec.structs.asdict(r) for r in reports]


def test_what_the_fast_path_refuses_goes_the_full_way() -> None:
    # An RFC 3339 ts: valid, but only the full decoder parses it.
    text = (b'{"reports": [{"report_id": "a", "ts": "2026-11-22T05:00:00Z", "client_id": "c", "room_id": "r",'
            b' "kind": "heartbeat", "platform": "ios"}]}')
    (report,), errors = decode_reports(text)
    assert errors == [] and report.ts == T and type(report) is schemas.ClientReport
    # error_code with a heartbeat breaks the rule: one dead letter, the valid report kept.
    mixed = (b'{"reports": [{"report_id": "a", "ts": 1795323600000, "client_id": "c", "room_id": "r",'
             b' "kind": "heartbeat", "platform": "ios", "error_code": "crash"},'
             b' {"report_id": "b", "ts": 1795323600000, "client_id": "c", "room_id": "r",'
             b' "kind": "heartbeat", "platform": "ios"}]}')
    kept, errors = decode_reports(mixed)
    assert [r.report_id for r in kept] == ["b"]
    assert errors == [("reports[0]: error_code must be absent when kind is 'heartbeat'",
                       mixed[mixed.index(b"{", 1):mixed.index(b"}") + 1])]
    # Out of range epoch ms: rejected with the schema's message, not the fast path's.
    old = b'{"reports": [{"report_id": "a", "ts": 5, "client_id": "c", "room_id": "r", "kind": "leave", "platform": "ios"}]}'
    assert decode_reports(old)[0] == [] and "2000..2100" in decode_reports(old)[1][0][0]
