"""Turning a request's valid items into Kafka records.

Reports go out as one value per *partition* (packed: ``core.codec.encode_reports``, or a JSON
``ReportBatch`` with ``collector.kafka_report_format = "json"``): the rooms that hash
to the same partition share a message, keyed by one of them, so the
producer's murmur2 partitioner sends it exactly where each of its rooms
belongs. Per-room messages were 1-2 reports each at realistic room counts,
and the worker then spent most of its time on Faust's per-message overhead.

>>> from core.codec import decode_value, encode_json_reports
>>> from core.schemas import ClientReport, decode_report_batch
>>> reports = [ClientReport(report_id=f"r{i}", ts=1795323600000, client_id="c", room_id=f"room-{i % 2}",
...                         kind="heartbeat", platform="ios") for i in range(5)]
>>> records = report_records(reports, "client-reports")
>>> [(r.key, r.value[:1], len(decode_value(r.value)[0])) for r in records]
[(b'room-0', b'\\x01', 3), (b'room-1', b'\\x01', 2)]
>>> [len(decode_report_batch(r.value).reports)
...  for r in report_records(reports, "client-reports", partitions=1, encode=encode_json_reports)]
[5]
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from functools import lru_cache

from collectors.sink import Record
from core import schemas
from core.codec import encode_reports

ReportEncoder = Callable[[Sequence[schemas.ClientReport]], bytes]

# A room's reports are one message unless there are more than this many in
# one request: keeps every message well under Kafka's 1 MiB default.
MAX_ITEMS_PER_MESSAGE = 2000


def report_records(reports: list[schemas.ClientReport], topic: str, partitions: int = 0,
                   encode: ReportEncoder = encode_reports) -> list[Record]:
    """Report messages: one per partition (``partitions`` > 0), else one per room."""
    by_room: dict[str, list[schemas.ClientReport]] = defaultdict(list)
    for report in reports:
        by_room[report.room_id].append(report)
    return room_messages(by_room, topic, partitions, encode)


@lru_cache(maxsize=1 << 17)
def partition_of(key: bytes, partitions: int) -> int:
    """The partition kafka-python's default partitioner picks for ``key`` (murmur2).

    Memoised: kafka-python's murmur2 is pure Python and this runs for every
    room of every flush; rooms repeat, and the cache is bounded.

    >>> partition_of(b"room-17", 8) == partition_of(b"room-17", 8) < 8
    True
    """
    from kafka.partitioner.default import murmur2

    return int(murmur2(key) & 0x7FFFFFFF) % partitions


def room_messages(by_room: dict[str, list[schemas.ClientReport]], topic: str, partitions: int,
                  encode: ReportEncoder = encode_reports) -> list[Record]:
    """Group rooms by partition (when known) and encode each group, in chunks, keyed by its first room."""
    groups: dict[int | str, tuple[bytes, list[schemas.ClientReport]]] = {}
    for room_id, items in by_room.items():
        key = room_id.encode()
        group = partition_of(key, partitions) if partitions > 0 else room_id
        if group in groups:
            groups[group][1].extend(items)
        else:
            groups[group] = (key, list(items))
    records: list[Record] = []
    for key, items in groups.values():
        for start in range(0, len(items), MAX_ITEMS_PER_MESSAGE):
            records.append(Record(topic, key, encode(items[start:start + MAX_ITEMS_PER_MESSAGE])))
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
