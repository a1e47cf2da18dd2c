"""The Faust app: Kafka in, windows in tables, closed windows out.

Agents (all batch with ``take_events``; nothing is done per report in Faust):

- ``client-reports`` -> per-partition ``PartitionWindows`` (table ``room-windows-v4``, see STATE_FORMAT)
  -> closed room windows on ``room-health``, partials on the internal
  ``<app_id>-room-progress-v4`` topic (1 partition) -> the scope merger
  (table ``room-scopes-v4``) -> region/platform/app_version/global windows on
  ``room-health``, then an ``EventTimeMark`` on each of its partitions once
  every source partition has closed its windows further (``streams.dark``
  reads them: a key with no window before a mark has none);
- ``server-metrics`` -> the same with ``service-windows-v4``/``service-scopes-v4``
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
from collections.abc import Awaitable, Callable, Collection, Sequence
from pathlib import Path
from typing import Any

import faust
import msgspec

from core import schemas
from core.config import Settings
from core.schemas import DeadLetter, EventTimeMark, RoomHealth, ServiceHealth
from core.timeutil import Clock, SystemClock
from streams import decoding
from streams.engine import Closed, PartitionWindows, Reducer, WindowPolicy, read_to_end, state_format
from streams.faust_io import TP, Event, FaustIO, Message, TableStore
from streams.metrics import SERVICE_METRICS
from streams.scopes import MergerState, Progress, ScopeMerger
from streams.windows import ROOM_WINDOWS

log = logging.getLogger("outagewatch.streams")

_progress_codec = (msgspec.msgpack.Encoder(), msgspec.msgpack.Decoder(Progress))
_merger_codec = (msgspec.msgpack.Encoder(), msgspec.msgpack.Decoder(MergerState))
MERGER_KEY = b"merger"
MARK_KEY = b"event-time-mark"


def health_key(health: RoomHealth | ServiceHealth | schemas.AnomalyScore) -> bytes:
    """The Kafka key docs/contracts.md gives a closed window (and the score rows judged on it)."""
    if health.scope in ("room", "service"):
        return health.key.encode()
    return f"{health.scope}:{health.key}".encode()


# Part of every state topic's name: window state and scope partials are
# msgspec-encoded, so a change of their layout must start new changelogs
# rather than crash a worker decoding the old ones after an upgrade. Derived
# from the reducers' and the engine's own versions (streams.engine.state_format).
STATE_FORMAT = state_format(ROOM_WINDOWS, SERVICE_METRICS)


class WindowPipeline:
    """One input topic's agents: decode, fold, close, publish, merge scopes."""

    def __init__(self, io: FaustIO, name: str, reducer: Reducer[Any, Any, Any], source: str, output: str,
                 dead_letter: Any, decode: Callable[[bytes | None], tuple[list[Any], list[decoding.Unusable]]],
                 policy: WindowPolicy, partitions: int, output_partitions: int, clock: Clock, batch_max: int,
                 bound: decoding.BoundCheck) -> None:
        self.io, self.name, self.reducer, self.policy, self.clock = io, name, reducer, policy, clock
        self.decode, self.dead_letter, self.source_name = decode, dead_letter, source
        # Event time against the record's timestamp: nothing in Kafka may move a watermark into the future.
        self.bound = bound
        self.batch_max = batch_max
        self.source = io.raw_topic(source)
        self.output_name = output
        self.output_partitions = output_partitions
        # The newest horizon marked on the output partitions (this worker's; a new merger marks again).
        self.marked_upto = -1
        version = f"v{STATE_FORMAT}"
        self.progress = io.raw_topic(f"{io.app_id}-{name}-progress-{version}", partitions=1, internal=True)
        self.windows_table = io.raw_table(f"{name}-windows-{version}", partitions=partitions)
        self.scopes_table = io.raw_table(f"{name}-scopes-{version}", partitions=1)
        self.sources = partitions
        self.engines: dict[int, PartitionWindows[Any, Any, Any]] = {}
        self.stores: dict[int, TableStore] = {}
        self.merger: ScopeMerger | None = None
        self.lock = asyncio.Lock()
        self.listeners: list[Callable[[list[Any]], Awaitable[None]]] = []
        self.counters = {"messages": 0, "items": 0, "dead_letters": 0, "windows_out": 0,
                         # Clock ms of the first message taken and of the end of the last folded batch
                         # (state flushed): what `outagewatch bench` measures throughput between.
                         "first_message_ms": 0, "last_fold_ms": 0,
                         # The process's CPU seconds at both: what the work cost on a shared machine.
                         "first_message_cpu_s": 0.0, "last_fold_cpu_s": 0.0}
        io.on_first_message(source, self._first_message)
        io.batch_agent(self.source, f"{name}-windows", batch_max, 0.2, self._consume)
        io.batch_agent(self.progress, f"{name}-scopes", 100, 0.2, self._merge)
        io.every(1.0, f"{name}-tick", self._tick)

    def _first_message(self) -> None:
        self.counters["first_message_ms"] = self.clock.now_ms()
        self.counters["first_message_cpu_s"] = time.process_time()

    def forget(self, partitions: set[int]) -> None:
        """Drop cached engines (on rebalance); the table holds the truth."""
        for partition in partitions:
            self.engines.pop(partition, None)
            self.stores.pop(partition, None)
        self.merger = None
        self.marked_upto = -1

    def _engine(self, partition: int) -> PartitionWindows[Any, Any, Any]:
        engine = self.engines.get(partition)
        if engine is None:
            store = self.stores[partition] = self.io.table_store(self.windows_table, partition)
            engine = PartitionWindows(self.reducer, partition, self.policy, store, self.clock)
            self.engines[partition] = engine
        return engine

    async def _consume(self, events: Sequence[Event]) -> None:
        async with self.lock:
            touched: dict[int, PartitionWindows[Any, Any, Any]] = {}
            for event in events:
                message = event.message
                items, errors = self.decode(event.value)
                for error, raw in errors:
                    await self._dead_letter(message, error, raw)
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
            if not self.io.fetching():
                # After a restart the partitions are assigned before table recovery and fetching
                # resume: a quiet partition then is not idle, just not read yet. Nor is its table
                # whole: an engine built now would start from a partly recovered meta and keep it.
                for engine in self.engines.values():
                    engine.restart_idle_clock()
                return
            engines = [self._engine(partition) for partition in self.io.assigned(self.source_name)]
            for engine in engines:
                # A partition with records unread (catching up, starved of CPU by detection, or not
                # fetched since assigned) is busy, not idle: see ``engine.read_to_end``.
                if read_to_end(engine.meta.applied_offset, self.io.highwater(self.source_name, engine.partition)):
                    engine.advance_idle()
                else:
                    engine.restart_idle_clock()
            await self._publish_and_flush(engines, always_progress=True)

    async def _publish_and_flush(self, engines: Collection[PartitionWindows[Any, Any, Any]],
                                 always_progress: bool) -> None:
        windows: list[Awaitable[Any]] = []
        done: list[tuple[PartitionWindows[Any, Any, Any], Closed[Any]]] = []
        progresses: list[Progress] = []
        for engine in engines:
            pending = engine.take_pending()
            for closed in pending:
                windows += await self._send(closed.results)
                done.append((engine, closed))
            if pending or always_progress:
                partials: dict[int, dict[str, Any]] = {}
                for closed in pending:
                    partials.update(closed.partials)
                progresses.append(Progress(partition=engine.partition, closed_upto=engine.progress_mark(),
                                           windows=partials))
        # The windows acknowledged before the progress that says they are closed: the merger's
        # event-time mark on a partition must come after every window it vouches for.
        if windows:
            await asyncio.gather(*windows)
        # Published (acknowledged) before marked closed: a crash re-publishes, never loses.
        await asyncio.gather(*[await self.io.send_through(self.progress, str(progress.partition).encode(),
                                                          _progress_codec[0].encode(progress))
                               for progress in progresses])
        for engine, closed in done:
            engine.mark_closed(closed)
            self.counters["windows_out"] += len(closed.results)
            await self._notify(closed.results)
        for engine in engines:
            engine.flush()
            await self.stores[engine.partition].send_pending()

    async def _send(self, healths: Sequence[RoomHealth | ServiceHealth]) -> list[Awaitable[Any]]:
        """Produce closed windows (straight to the producer: see ``TableStore``); returns their futures."""
        return await self.io.send_many(self.output_name, [(health_key(h), schemas.encode(h)) for h in healths])

    async def _merge(self, events: Sequence[Event]) -> None:
        async with self.lock:
            merger = self._merger()
            out: list[Any] = []
            for event in events:
                if event.message.offset <= merger.state.applied_offset:
                    continue
                out.extend(merger.apply(_progress_codec[1].decode(event.value or b"")))
                merger.state.applied_offset = event.message.offset
            futures = await self._send(out)
            if futures:
                await asyncio.gather(*futures)
            await self._mark(merger.horizon())
            self.counters["windows_out"] += len(out)
            store = self.io.table_store(self.scopes_table, 0)
            store.put(MERGER_KEY, _merger_codec[0].encode(merger.state))
            await store.send_pending()
            await self._notify(out)

    async def _mark(self, horizon: int | None) -> None:
        """An ``EventTimeMark`` on every output partition, after the windows it vouches for (all acknowledged)."""
        if horizon is None or horizon <= self.marked_upto:
            return
        mark = schemas.encode(EventTimeMark(closed_upto=horizon))
        await asyncio.gather(*[await self.io.send(self.output_name, MARK_KEY, mark, partition)
                               for partition in range(self.output_partitions)])
        self.marked_upto = horizon

    def _merger(self) -> ScopeMerger:
        if self.merger is None:
            raw = self.io.table_value(self.scopes_table, MERGER_KEY)
            state = _merger_codec[1].decode(raw) if raw else None
            self.merger = ScopeMerger(self.reducer, self.sources, self.policy.window_ms, state)
        return self.merger

    async def _notify(self, healths: list[Any]) -> None:
        if healths:
            for listener in self.listeners:
                await listener(healths)

    async def _dead_letter(self, message: Message, error: str, raw: bytes | None = None) -> None:
        self.counters["dead_letters"] += 1
        letter = DeadLetter(source_topic=message.topic, error=error, raw=(message.value or b"") if raw is None else raw,
                            partition=message.partition, offset=message.offset,
                            received_ms=self.clock.now_ms())
        log.warning("dead letter from %s[%d]@%d: %s", message.topic, message.partition, message.offset, error)
        await self.io.send_through(self.dead_letter, message.topic.encode(), schemas.encode(letter))


class StreamsApp:
    """The worker: one Faust app with the room and service pipelines."""

    def __init__(self, settings: Settings, *, report_partitions: int, metric_partitions: int,
                 room_health_partitions: int, service_health_partitions: int, web_port: int | None = None,
                 app_id: str | None = None, clock: Clock | None = None,
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
        self.io = io = FaustIO(self.app)
        dead_letter = io.raw_topic(settings.topics.dead_letter)
        bound = settings.event_time.bound()
        self.rooms = WindowPipeline(io, "room", ROOM_WINDOWS, settings.topics.client_reports,
                                    settings.topics.room_health, dead_letter, decoding.decode_reports,
                                    policy, report_partitions, room_health_partitions, clock, batch_max,
                                    decoding.Bounded(bound, "reports"))
        self.services = WindowPipeline(io, "service", SERVICE_METRICS, settings.topics.server_metrics,
                                       settings.topics.service_health, dead_letter, decoding.decode_samples,
                                       policy, metric_partitions, service_health_partitions, clock, batch_max,
                                       decoding.Bounded(bound, "samples"))
        io.on_rebalance(self._on_rebalance)

    async def _on_rebalance(self, tps: set[TP]) -> None:
        for pipeline in (self.rooms, self.services):
            pipeline.forget({tp.partition for tp in tps if tp.topic == pipeline.source_name})

    def on_room_health(self, callback: Callable[[list[RoomHealth]], Awaitable[None]]) -> None:
        """Call ``callback`` with every batch of closed room/scope windows once published."""
        self.rooms.listeners.append(callback)

    def on_service_health(self, callback: Callable[[list[ServiceHealth]], Awaitable[None]]) -> None:
        self.services.listeners.append(callback)
