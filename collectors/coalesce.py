"""Merging the reports of concurrent requests into one Kafka value per partition.

kafka-python spends a fixed amount of Python per record it is handed,
whatever the record's size, so one record per room per request would make
the producer, not the handler, the collector's limit (docs/benchmarks.md).
Requests that arrive within ``linger_s`` of each other therefore share
their per-room records: each request still gets its 202 only after every
record holding its reports was acknowledged, and a failed flush fails
every request in it (503), so nothing is acknowledged that is not in Kafka.

The linger also sizes the Kafka messages downstream: the worker and the
sink pay a fixed cost per message (Faust's per-event machinery,
kafka-python's per-record parsing), so fuller messages cost them less per
report. A flush waits up to ``linger_s`` but goes out as soon as
``max_reports`` are waiting, so a busy collector does not add the whole
linger to every request.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict

from collectors.batching import ReportEncoder, room_messages
from collectors.sink import RecordSink
from core import schemas
from core.codec import encode_reports


class ReportCoalescer:
    def __init__(self, sink: RecordSink, topic: str, linger_s: float, max_reports: int = 0,
                 encode: ReportEncoder = encode_reports) -> None:
        self.sink = sink
        self.encode = encode
        self.topic = topic
        self.linger_s = linger_s
        # Flush at once when this many reports wait (0: only the linger decides).
        self.max_reports = max_reports
        self._by_room: dict[str, list[schemas.ClientReport]] = defaultdict(list)
        self._waiters: list[asyncio.Future[None]] = []
        self._pending = 0
        self._timer: asyncio.Handle | None = None  # the scheduled flush, if one is
        # The event loop keeps only weak references to tasks: hold the in-flight sends.
        self._sending: set[asyncio.Task[None]] = set()
        self.flushes = 0
        self.requests = 0

    async def submit(self, reports: list[schemas.ClientReport]) -> None:
        """Returns when Kafka acknowledged all of ``reports``; raises ``SinkUnavailable`` otherwise."""
        if not reports:
            return
        loop = asyncio.get_running_loop()
        by_room = self._by_room
        for report in reports:
            by_room[report.room_id].append(report)
        self._pending += len(reports)
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiters.append(waiter)
        if self.max_reports and self._pending >= self.max_reports:
            if self._timer is not None:
                self._timer.cancel()
            self._flush()
        elif self._timer is None:
            if self.linger_s > 0:
                self._timer = loop.call_later(self.linger_s, self._flush)
            else:
                self._timer = loop.call_soon(self._flush)
        await waiter

    def _flush(self) -> None:
        by_room, waiters = self._by_room, self._waiters
        self._by_room, self._waiters = defaultdict(list), []
        self._pending, self._timer = 0, None
        self.flushes += 1
        self.requests += len(waiters)
        task = asyncio.get_running_loop().create_task(self._send(by_room, waiters))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, by_room: dict[str, list[schemas.ClientReport]], waiters: list[asyncio.Future[None]]) -> None:
        partitions = self.sink.partitions(self.topic) if hasattr(self.sink, "partitions") else 0
        records = room_messages(by_room, self.topic, partitions, self.encode)
        try:
            await self.sink.send_all(records)
        except BaseException as exc:  # noqa: BLE001 - every waiter must learn the outcome
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)
