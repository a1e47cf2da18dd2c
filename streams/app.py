"""The Faust app: Kafka in, windows in tables, closed windows out.

Agents (all batch with ``take_events``; nothing is done per report in Faust):

- ``client-reports`` -> per-partition ``PartitionWindows`` (table ``room-windows-v3``, see STATE_FORMAT)
  -> closed room windows on ``room-health``, partials on the internal
  ``<app_id>-room-progress-v3`` topic (1 partition) -> the scope merger
  (table ``room-scopes-v3``) -> region/platform/app_version/global windows on
  ``room-health``;
- ``server-metrics`` -> the same with ``service-windows-v3``/``service-scopes-v3``
  -> ``service-health`` (scope ``service`` and ``cluster``);
- anything undecodable -> ``dead-letter`` with the reason, partition, offset.

Extra in-process consumers of closed windows (e.g. detectors) register with
``StreamsApp.on_room_health(callback)``: the callback gets every published
``RoomHealth`` list, after Kafka acknowledged it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import faust
import msgspec

from core import schemas
from core.config import Settings
from core.schemas import DeadLetter, RoomHealth, ServiceHealth
from core.timeutil import Clock, SystemClock
from streams import decoding, metrics
from streams import windows as room_windows
from streams.engine import Closed, PartitionWindows, WindowPolicy
from streams.scopes import MergerState, Progress, ScopeMerger

log = logging.getLogger("outagewatch.streams")

_progress_codec = (msgspec.msgpack.Encoder(), msgspec.msgpack.Decoder(Progress))
_merger_codec = (msgspec.msgpack.Encoder(), msgspec.msgpack.Decoder(MergerState))
MERGER_KEY = b"merger"


class TableStore:
    """``engine.StateStore`` over a Faust table, writing one partition's changelog.

    Writes update the table at once and queue the changelog record;
    ``send_pending`` hands the queue to the producer. It bypasses Faust's
    ``Topic.send`` machinery (channels, buffer, callbacks: ~4x the cost of the
    producer call, and a flush writes every window it touched). The memory
    store keeps no persisted offsets, and the consumer flushes the producer
    before every offset commit, so the changelog is as safe as before.
    """

    def __init__(self, table: Any, partition: int) -> None:
        self.table, self.partition = table, partition
        self.data = table.data
        self.pending: list[tuple[bytes, bytes | None]] = []

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self.data.data.get(key)
        return value

    def put(self, key: bytes, value: bytes) -> None:
        self.data.data[key] = value
        self.data._key_partition[key] = self.partition
        self.pending.append((key, value))

    def delete(self, key: bytes) -> None:
        self.data.data.pop(key, None)
        self.data._key_partition.pop(key, None)
        self.pending.append((key, None))

    async def send_pending(self, producer: Any) -> None:
        """Hand the queued changelog records to the producer: each key's last value only (the changelog
        is compacted, a restore keeps only the last value of a key anyway)."""
        topic = self.table.changelog_topic.get_topic_name()
        pending, self.pending = dict(self.pending), []
        for key, value in pending.items():
            await producer.send(topic, key, value, self.partition, None, None)


class _FirstMessage(faust.Sensor):
    """Stamps ``first_message_ms`` when the consumer hands over the source topic's first message.

    ``take_events`` yields only once a batch is buffered; stamping there would
    leave the first fetch out of a throughput measurement.
    """

    def __init__(self, pipeline: WindowPipeline) -> None:
        super().__init__()
        self.pipeline = pipeline

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        counters = self.pipeline.counters
        if not counters["first_message_ms"] and tp.topic == self.pipeline.source_name:
            counters["first_message_ms"] = self.pipeline.clock.now_ms()
            counters["first_message_cpu_s"] = time.process_time()


def health_key(health: RoomHealth | ServiceHealth) -> bytes:
    """The Kafka key docs/contracts.md gives a closed window."""
    if health.scope in ("room", "service"):
        return health.key.encode()
    return f"{health.scope}:{health.key}".encode()


# Part of every state topic's name: window state and scope partials are
# msgspec-encoded, so a change of their layout must start new changelogs
# rather than crash a worker decoding the old ones after an upgrade.
# Bump it whenever the stored format of streams/windows.py, metrics.py,
# distinct.py or source_cap.py changes (4: error clients per source).
STATE_FORMAT = 4


class WindowPipeline:
    """One input topic's agents: decode, fold, close, publish, merge scopes."""

    def __init__(self, app: faust.App, name: str, reducer: ModuleType, source: str, output: str,
                 dead_letter: Any, decode: Callable[[bytes | None], tuple[list[Any], list[str]]],
                 policy: WindowPolicy, partitions: int, clock: Clock, batch_max: int,
                 bound: decoding.BoundCheck) -> None:
        self.app, self.name, self.reducer, self.policy, self.clock = app, name, reducer, policy, clock
        self.decode, self.dead_letter, self.source_name = decode, dead_letter, source
        # Event time against the record's timestamp: nothing in Kafka may move a watermark into the future.
        self.bound = bound
        self.batch_max = batch_max
        raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
        self.source = app.topic(source, **raw)
        self.output = app.topic(output, **raw)
        self.output_name = output
        version = f"v{STATE_FORMAT}"
        self.progress = app.topic(f"{app.conf.id}-{name}-progress-{version}", partitions=1, internal=True, **raw)
        # key_type/value_type bytes is what makes a table use the raw codec.
        self.windows_table = app.Table(f"{name}-windows-{version}", partitions=partitions, key_type=bytes,
                                       value_type=bytes)
        self.scopes_table = app.Table(f"{name}-scopes-{version}", partitions=1, key_type=bytes, value_type=bytes)
        self.sources = partitions
        self.engines: dict[int, PartitionWindows[Any, Any, Any]] = {}
        self.merger: ScopeMerger | None = None
        self.lock = asyncio.Lock()
        self.listeners: list[Callable[[list[Any]], Awaitable[None]]] = []
        self.counters = {"messages": 0, "items": 0, "dead_letters": 0, "windows_out": 0,
                         # Clock ms of the first message taken and of the end of the last folded batch
                         # (state flushed): what `outagewatch bench` measures throughput between.
                         "first_message_ms": 0, "last_fold_ms": 0,
                         # The process's CPU seconds at both: what the work cost on a shared machine.
                         "first_message_cpu_s": 0.0, "last_fold_cpu_s": 0.0}
        app.sensors.add(_FirstMessage(self))
        app.agent(self.source, name=f"{name}-windows")(self._consume)
        app.agent(self.progress, name=f"{name}-scopes")(self._merge)
        app.timer(1.0, name=f"{name}-tick")(self._tick)

    def forget(self, partitions: set[int]) -> None:
        """Drop cached engines (on rebalance); the table holds the truth."""
        for partition in partitions:
            self.engines.pop(partition, None)
        self.merger = None

    def _engine(self, partition: int) -> PartitionWindows[Any, Any, Any]:
        engine = self.engines.get(partition)
        if engine is None:
            engine = PartitionWindows(self.reducer, partition, self.policy,
                                      TableStore(self.windows_table, partition), self.clock)
            self.engines[partition] = engine
        return engine

    async def _consume(self, stream: Any) -> None:
        async for events in stream.take_events(self.batch_max, within=0.2):
            async with self.lock:
                touched: dict[int, PartitionWindows[Any, Any, Any]] = {}
                for event in events:
                    message = event.message
                    items, errors = self.decode(event.value)
                    for error in errors:
                        await self._dead_letter(message, error)
                    items, refused = self.bound(items, int(message.timestamp * 1000))
                    if refused is not None:
                        await self._dead_letter(message, refused.reason, refused.raw)
                    engine = touched.get(message.partition) or self._engine(message.partition)
                    touched[message.partition] = engine
                    skipped = engine.skipped_items
                    engine.add_message(items, message.offset)
                    # Folded, not merely read: a replay after a rebalance or crash is skipped.
                    self.counters["items"] += len(items) - (engine.skipped_items - skipped)
                self.counters["messages"] += len(events)
                await self._publish_and_flush(touched.values(), always_progress=False)
                self.counters["last_fold_ms"] = self.clock.now_ms()
                self.counters["last_fold_cpu_s"] = time.process_time()

    async def _tick(self) -> None:
        async with self.lock:
            assigned = {tp.partition for tp in self.app.consumer.assignment() if tp.topic == self.source_name}
            engines = [self._engine(partition) for partition in sorted(assigned)]
            # After a restart the partitions are assigned before table recovery and fetching
            # resume: a quiet partition then is not idle, just not read yet. Counting that
            # time would move its watermark on and close windows whose reports wait in Kafka.
            fetching = not self.app.in_recovery and self.app.flow_control.is_active()
            for engine in engines:
                if fetching and not self._behind(engine):
                    engine.advance_idle()
                else:
                    engine.restart_idle_clock()
            await self._publish_and_flush(engines, always_progress=True)

    def _behind(self, engine: PartitionWindows[Any, Any, Any]) -> bool:
        """Whether the partition has records in Kafka the engine has not applied yet.

        Such a partition is busy, not idle: a worker catching up (or starved of
        CPU by detection) may not fold it for a while, and advancing its
        watermark then would close windows whose reports are still waiting.
        """
        try:
            highwater = self.app.consumer.highwater(faust.types.TP(self.source_name, engine.partition))
        except Exception:  # noqa: BLE001 - no fetch yet, or no consumer: nothing known to be waiting
            return False
        return highwater is not None and engine.meta.applied_offset + 1 < highwater

    async def _publish_and_flush(self, engines: Any, always_progress: bool) -> None:
        futures = []
        done: list[tuple[PartitionWindows[Any, Any, Any], Closed[Any]]] = []
        for engine in engines:
            pending = engine.take_pending()
            for closed in pending:
                for health in closed.results:
                    futures.append(await self._send(health))
                done.append((engine, closed))
            if pending or always_progress:
                partials: dict[int, dict[str, Any]] = {}
                for closed in pending:
                    partials.update(closed.partials)
                progress = Progress(partition=engine.partition, closed_upto=engine.progress_mark(), windows=partials)
                futures.append(await self.progress.send(key=str(engine.partition).encode(),
                                                        value=_progress_codec[0].encode(progress)))
        # Published (acknowledged) before marked closed: a crash re-publishes, never loses.
        if futures:
            await asyncio.gather(*futures)
        for engine, closed in done:
            engine.mark_closed(closed)
            self.counters["windows_out"] += len(closed.results)
            await self._notify(closed.results)
        for engine in engines:
            engine.flush()
            await engine.store.send_pending(self.app.producer)

    async def _send(self, health: Any) -> Any:
        """Produce one closed window (straight to the producer: see ``TableStore``); returns its future."""
        return await self.app.producer.send(self.output_name, health_key(health), schemas.encode(health),
                                            None, None, None)

    async def _merge(self, stream: Any) -> None:
        async for events in stream.take_events(100, within=0.2):
            async with self.lock:
                merger = self._merger()
                out: list[Any] = []
                for event in events:
                    if event.message.offset <= merger.state.applied_offset:
                        continue
                    out.extend(merger.apply(_progress_codec[1].decode(event.value)))
                    merger.state.applied_offset = event.message.offset
                futures = [await self._send(h) for h in out]
                if futures:
                    await asyncio.gather(*futures)
                self.counters["windows_out"] += len(out)
                store = TableStore(self.scopes_table, 0)
                store.put(MERGER_KEY, _merger_codec[0].encode(merger.state))
                await store.send_pending(self.app.producer)
                await self._notify(out)

    def _merger(self) -> ScopeMerger:
        if self.merger is None:
            raw = self.scopes_table.data.data.get(MERGER_KEY)
            state = _merger_codec[1].decode(raw) if raw else None
            self.merger = ScopeMerger(self.reducer, self.sources, self.policy.window_ms, state)
        return self.merger

    async def _notify(self, healths: list[Any]) -> None:
        if healths:
            for listener in self.listeners:
                await listener(healths)

    async def _dead_letter(self, message: Any, error: str, raw: bytes | None = None) -> None:
        self.counters["dead_letters"] += 1
        letter = DeadLetter(source_topic=message.topic, error=error, raw=(message.value or b"") if raw is None else raw,
                            partition=message.partition, offset=message.offset,
                            received_ms=self.clock.now_ms())
        log.warning("dead letter from %s[%d]@%d: %s", message.topic, message.partition, message.offset, error)
        await self.dead_letter.send(key=message.topic.encode(), value=schemas.encode(letter))


class StreamsApp:
    """The worker: one Faust app with the room and service pipelines."""

    def __init__(self, settings: Settings, *, report_partitions: int, metric_partitions: int,
                 web_port: int | None = None, app_id: str | None = None, clock: Clock | None = None,
                 batch_max: int = 2000, idle_ms: int | None = None) -> None:
        s = settings.streams
        app_id = app_id or s.app_id
        data_dir = Path(settings.stack.data_dir) / "streams" / app_id
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.app = faust.App(
            app_id,
            broker=f"kafka://{settings.kafka.bootstrap}",
            web_port=web_port or s.web_port,
            web_host="127.0.0.1",
            web_bind="127.0.0.1",
            datadir=str(data_dir),
            store="memory://",
            topic_replication_factor=settings.kafka.replication_factor,
            consumer_auto_offset_reset="earliest",
            producer_acks=-1,
            # Every flush writes each touched window to the changelog: let those
            # writes share produce requests (Faust's default lingers 0 ms and
            # caps a batch at 16 KB, so each becomes its own request).
            producer_linger=0.005,
            producer_max_batch_size=512 * 1024,
            # Scope partials of a busy partition (bounded client samples per
            # region, platform and version) can pass aiokafka's 1 MB default;
            # the local broker accepts 8 MB (message.max.bytes).
            producer_max_request_size=8 * 1024 * 1024,
            # Our values are msgspec bytes; table recovery must not try JSON on them.
            key_serializer="raw",
            value_serializer="raw",
            # A SIGKILLed worker's partitions move to the survivors after this,
            # rather than after Faust's default of 60 s.
            broker_session_timeout=10.0,
            broker_heartbeat_interval=2.0,
            broker_commit_every=batch_max,
            stream_buffer_maxsize=max(4096, batch_max * 2),
            consumer_max_fetch_size=8 * 1024 * 1024,
            # A partition or topic added later is assigned within 30 s, not aiokafka's 5 minutes
            # (the topics themselves are made usable before start: streams/topics.py).
            consumer_metadata_max_age_ms=30_000,
        )
        policy = WindowPolicy(window_ms=s.window_seconds * 1000, lateness_ms=s.allowed_lateness_seconds * 1000,
                              idle_ms=idle_ms if idle_ms is not None else s.window_seconds * 1000)
        clock = clock or SystemClock()
        raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
        dead_letter = self.app.topic(settings.topics.dead_letter, **raw)
        bound = settings.event_time.bound()
        self.rooms = WindowPipeline(self.app, "room", room_windows, settings.topics.client_reports,
                                    settings.topics.room_health, dead_letter, decoding.decode_reports,
                                    policy, report_partitions, clock, batch_max, decoding.Bounded(bound, "reports"))
        self.services = WindowPipeline(self.app, "service", metrics, settings.topics.server_metrics,
                                       settings.topics.service_health, dead_letter, decoding.decode_samples,
                                       policy, metric_partitions, clock, batch_max, decoding.Bounded(bound, "samples"))
        self.app.on_partitions_revoked.connect(self._on_rebalance)
        self.app.on_partitions_assigned.connect(self._on_rebalance)

    async def _on_rebalance(self, app: Any, tps: Sequence[Any] | set[Any], **_: Any) -> None:
        for pipeline in (self.rooms, self.services):
            pipeline.forget({tp.partition for tp in tps if tp.topic == pipeline.source_name})

    def on_room_health(self, callback: Callable[[list[RoomHealth]], Awaitable[None]]) -> None:
        """Call ``callback`` with every batch of closed room/scope windows once published."""
        self.rooms.listeners.append(callback)

    def on_service_health(self, callback: Callable[[list[ServiceHealth]], Awaitable[None]]) -> None:
        self.services.listeners.append(callback)
