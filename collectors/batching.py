"""Turning a request's valid items into Kafka records: one message per room (or service).

>>> from outagewatch.schemas import ClientReport, decode_report_batch
>>> reports = [ClientReport(report_id=f"r{i}", ts=1795323600000, client_id="c", room_id=f"room-{i % 2}",
...                         kind="heartbeat", platform="ios") for i in range(5)]
>>> records = report_records(reports, "client-reports")
>>> [(r.key, len(decode_report_batch(r.value).reports)) for r in records]
[(b'room-0', 3), (b'room-1', 2)]
"""

from __future__ import annotations

from collections import defaultdict

from collectors.sink import Record
from outagewatch import schemas

# A room's reports are one message unless there are more than this many in
# one request: keeps every message well under Kafka's 1 MiB default.
MAX_ITEMS_PER_MESSAGE = 2000


def report_records(reports: list[schemas.ClientReport], topic: str) -> list[Record]:
    """One ``ReportBatch`` per room, keyed by room_id."""
    by_room: dict[str, list[schemas.ClientReport]] = defaultdict(list)
    for report in reports:
        by_room[report.room_id].append(report)
    encode = schemas.encode
    records: list[Record] = []
    for room_id, items in by_room.items():
        key = room_id.encode()
        for start in range(0, len(items), MAX_ITEMS_PER_MESSAGE):
            chunk = items[start:start + MAX_ITEMS_PER_MESSAGE]
            records.append(Record(topic, key, encode(schemas.ReportBatch(chunk))))
    return records


def sample_records(samples: list[schemas.MetricSample], topic: str) -> list[Record]:
    """One ``MetricBatch`` per service, keyed by service."""
    by_service: dict[str, list[schemas.MetricSample]] = defaultdict(list)
    for sample in samples:
        by_service[sample.service].append(sample)
    records: list[Record] = []
    for service, items in by_service.items():
        key = service.encode()
        for start in range(0, len(items), MAX_ITEMS_PER_MESSAGE):
            chunk = items[start:start + MAX_ITEMS_PER_MESSAGE]
            records.append(Record(topic, key, schemas.encode(schemas.MetricBatch(chunk))))
    return records
