"""The worker's liveness, readiness and metrics: ``/healthz``, ``/readyz`` and ``/metrics`` on its web port.

Once a second, from a task on the worker's event loop (a blocked loop shows
as a missing beat; not a Faust timer: Faust starts those, and its web
server, only once the first table recovery is over, which is exactly the
wait to report), ``WorkerHealth`` reads what the worker holds and how far it
got:

- **assigned**: the input partitions (``client-reports``, ``server-metrics``)
  of the last rebalance, logged at every rebalance;
- **input waiting**: per assigned partition, the partition's end offset minus
  the next offset the window engine has to fold; during table recovery, the
  changelog records still to read. The end offsets come from a client of
  their own (``EndOffsets``): the high watermark Faust last fetched stops
  moving exactly when the worker is stuck, because it stops fetching;
- **progress**: windows closed, messages folded, changelog records recovered,
  with the event time windows are closed up to.

The rule over them is ``core.health``'s. While not ready the worker logs
why every ``LOG_EVERY_S`` seconds ("waiting for its partition assignment",
"table recovery: N changelog records left to read"), so a start-up that
does not finish says what it is waiting for.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from core.health import Health
from streams.app import StreamsApp, WindowPipeline

log = logging.getLogger("outagewatch.streams")

LOG_EVERY_S = 10.0


def describe_partitions(tps: Iterable[Any]) -> str:
    """``topic[0-3,6]`` per topic, for a log line.

    >>> from collections import namedtuple
    >>> TP = namedtuple("TP", "topic partition")
    >>> describe_partitions([TP("reports", 0), TP("reports", 1), TP("reports", 2), TP("reports", 6), TP("alerts", 0)])
    'alerts[0], reports[0-2,6]'
    """
    by_topic: dict[str, list[int]] = {}
    for tp in tps:
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    parts = []
    for topic, partitions in sorted(by_topic.items()):
        ranges: list[str] = []
        ordered = sorted(partitions)
        start = previous = ordered[0]
        for partition in [*ordered[1:], None]:
            if partition is not None and partition == previous + 1:
                previous = partition
                continue
            ranges.append(str(start) if start == previous else f"{start}-{previous}")
            if partition is not None:
                start = previous = partition
        parts.append(f"{topic}[{','.join(ranges)}]")
    return ", ".join(parts) or "none"


class EndOffsets:
    """The end offset of every partition of ``topics``, read every ``every_s`` in a thread of its own."""

    def __init__(self, bootstrap: str, topics: Sequence[str], client_id: str, every_s: float = 2.0) -> None:
        self.bootstrap, self.topics, self.client_id, self.every_s = bootstrap, list(topics), client_id, every_s
        self.latest: dict[tuple[str, int], int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="worker-end-offsets", daemon=True)

    def start(self) -> EndOffsets:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        from kafka import KafkaConsumer, TopicPartition

        consumer = None
        while not self._stop.is_set():
            try:
                if consumer is None:
                    consumer = KafkaConsumer(bootstrap_servers=self.bootstrap.split(","), group_id=None,
                                             enable_auto_commit=False, client_id=self.client_id)
                partitions = [TopicPartition(topic, partition) for topic in self.topics
                              for partition in sorted(consumer.partitions_for_topic(topic) or ())]
                ends = consumer.end_offsets(partitions) if partitions else {}
                self.latest = {(tp.topic, tp.partition): int(offset) for tp, offset in ends.items()}
            except Exception as exc:  # noqa: BLE001 - the broker may be restarting: unknown until it answers
                log.debug("worker health: end offsets not read (%s)", exc)
                self.latest = {}
            self._stop.wait(self.every_s)
        if consumer is not None:
            consumer.close()


class WorkerHealth:
    """Samples a ``StreamsApp`` into a ``Health`` and serves it (and the metrics) on the Faust web server."""

    def __init__(self, streams: StreamsApp, health: Health, end_offsets: EndOffsets, detection: Any = None) -> None:
        from streams import telemetry

        self.streams = streams
        self.end_offsets = end_offsets
        self.app = streams.app
        self.io = streams.io
        self.health = health
        self.detection = detection
        self.pipelines: dict[str, WindowPipeline] = {streams.rooms.source_name: streams.rooms,
                                                     streams.services.source_name: streams.services}
        self.lag: dict[tuple[str, int], int] = {}
        self.assigned: dict[str, int] = {}
        self.in_recovery = False
        self._moves: tuple[float, float] = (0, 0)
        self._recovery_left: int | None = None
        self._last_log_ms = 0
        self._was_ready = False
        self._started_ms = health.clock.now_ms()
        # The Watchdog's sender, when this worker sends one (streams/watchdog.py): its counts go to /metrics.
        self.watchdog: Any = None
        self.registry = telemetry.registry(self.reading, health)
        self._assigned_once = False
        self.io.on_assigned(self._on_assigned)
        self._pages()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """Sample every second on ``loop`` (the Faust worker's), from before the app starts."""
        asyncio.ensure_future(self._sample_forever(), loop=loop)

    async def _sample_forever(self) -> None:
        while True:
            try:
                await self.sample()
            except Exception:  # noqa: BLE001 - a sampling bug must not end the worker's health reports
                log.exception("worker health: sampling failed")
            await asyncio.sleep(1.0)

    # -- sampling (on the event loop) -----------------------------------------------------------------

    async def _on_assigned(self) -> None:
        self._assigned_once = True
        assignment = self.io.assignment()
        self.assigned = {topic: sum(1 for tp in assignment if tp.topic == topic) for topic in self.pipelines}
        self.health.assigned(self.assigned)
        log.info("worker assigned %d partition(s): %s", len(assignment), describe_partitions(assignment))

    async def sample(self) -> None:
        self.health.beat()
        if not self._assigned_once:  # Faust is still starting: its consumer may not exist yet
            self._log_while_not_ready()
            return
        self.in_recovery = self.io.in_recovery()
        if self.in_recovery:
            self._sample_recovery()
        else:
            self.health.not_ready(None)
            self._recovery_left = None
            self._sample_input()
        self._log_while_not_ready()

    def _sample_recovery(self) -> None:
        left = self.io.recovery_remaining()
        self.health.not_ready(f"table recovery: {left} changelog records left to read")
        self.health.waiting(left, "changelog records to recover")
        if self._recovery_left is not None and left < self._recovery_left:
            self.health.moved("changelog records recovered")
        self._recovery_left = left

    def _sample_input(self) -> None:
        ends = self.end_offsets.latest
        lag: dict[tuple[str, int], int] = {}
        for tp in self.io.assignment():
            pipeline = self.pipelines.get(tp.topic)
            engine = pipeline.engines.get(tp.partition) if pipeline is not None else None
            end = ends.get((tp.topic, tp.partition))
            if engine is not None and end is not None:
                lag[(tp.topic, tp.partition)] = max(0, end - engine.meta.applied_offset - 1)
        self.lag = lag
        self.health.waiting(sum(lag.values()) if lag else None, "records of " + " and ".join(sorted(self.pipelines)))
        pipelines = self.pipelines.values()
        moves = (sum(p.counters["windows_out"] for p in pipelines), sum(p.counters["messages"] for p in pipelines))
        if moves != self._moves:
            closed = [engine.meta.closed_upto for p in pipelines for engine in p.engines.values()
                      if engine.meta.closed_upto > 0]
            self.health.moved("window closed" if moves[0] != self._moves[0] else "input folded",
                              event_ms=max(closed) if closed else None)
        self._moves = moves

    def _log_while_not_ready(self) -> None:
        verdict = self.health.verdict()
        now = self.health.clock.now_ms()
        if verdict.ready:
            if not self._was_ready:
                log.info("worker ready after %.0fs: %s", (now - self._started_ms) / 1000,
                         describe_partitions(self.io.assignment()))
            self._was_ready = True
            return
        self._was_ready = False
        if now - self._last_log_ms >= LOG_EVERY_S * 1000:
            self._last_log_ms = now
            snapshot = self.health.snapshot()
            log.info("worker not ready after %.0fs: %s (input waiting: %s)", snapshot["uptime_s"], verdict.reason,
                     snapshot["input_waiting"])

    def reading(self) -> dict[str, Any]:
        """What ``/metrics`` shows: counters, lag, assignment, and detection's when it runs here."""
        out: dict[str, Any] = {"pipelines": {p.name: p.counters for p in self.pipelines.values()},
                               "lag": dict(self.lag), "assigned": dict(self.assigned),
                               "in_recovery": self.in_recovery}
        if self.detection is not None:
            out["detection"] = {"counters": self.detection.counters, "engine_active": self.engine_active(),
                                "watchdog_sent": self.watchdog.sent if self.watchdog else 0,
                                "watchdog_last_ms": self.watchdog.last_sent_ms if self.watchdog else None}
        return out

    def engine_active(self) -> bool:
        """Whether this worker holds the decisions partition, i.e. runs the alert engine."""
        if self.detection is None:
            return False
        topic = self.detection.decisions_topic
        return bool(self.io.assigned(topic))

    # -- serving ---------------------------------------------------------------------------------------

    def _pages(self) -> None:
        health, registry = self.health, self.registry

        @self.app.page("/healthz")
        async def healthz(view: Any, request: Any) -> Any:
            snapshot = health.snapshot()
            return view.json({"status": "live" if snapshot["live"] else "not live", **snapshot},
                             status=200 if snapshot["live"] else 503)

        @self.app.page("/readyz")
        async def readyz(view: Any, request: Any) -> Any:
            snapshot = health.snapshot()
            return view.json({"status": "ready" if snapshot["ready"] else "not ready", **snapshot},
                             status=200 if snapshot["ready"] else 503)

        @self.app.page("/metrics")
        async def metrics(view: Any, request: Any) -> Any:
            return view.bytes(generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST})
