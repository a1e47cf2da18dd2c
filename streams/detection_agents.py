"""Detection and alerting inside the worker: Faust agents around ``streams.detection``, ``alerting.stage``.

- ``detect-rooms`` / ``detect-services`` consume ``room-health`` /
  ``service-health`` (every closed window, aggregates included). Each key's
  detector state lives in the tables ``detector-rooms`` / ``detector-services``,
  co-partitioned with those topics, written once per key and batch (never the
  whole registry). They publish each key's ``AnomalyScore`` rows of a batch as
  one ``AnomalyScoreBatch`` on ``topics.anomaly_scores`` and each batch's
  decisions on the internal topic ``<app_id>-decisions``: of the rooms, only
  those that can change an alert, through one ``alerting.forward.DecisionForwarder``
  per room-health partition, and that partition's ``LeafSummary``. An
  ``EventTimeMark`` read on a room-health partition judges the windows its
  known keys missed up to the mark (``streams.dark``), in the order of the
  partition: a worker judges the same dark windows however fast it reads.
- ``alerting`` consumes ``<app_id>-decisions``: one partition, so exactly one
  worker of the group runs the one ``AlertEngine`` that sees every room
  (cluster and global correlation need that), in an ``AlertStage``. It
  publishes every ``Alert`` on ``topics.alerts`` (keyed by fingerprint),
  then notifies through the ``Dispatcher`` those the stage let page, then
  saves engine + notification log + the last applied offset in the table
  ``alerting-state``. A worker that dies between the notification and the
  save re-sends it with the same ``Idempotency-Key``; it never loses a page,
  and a restarted or replacing worker keeps its open alerts and does not
  page them again.

Nothing here stops the worker on a bad window: undecodable input goes to the
dead-letter topic, a failing detector or notifier is logged and skipped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import msgspec

from alerting.dispatch import Dispatcher
from alerting.forward import DecisionForwarder
from alerting.nflog import Nflog
from alerting.notify import Notifier
from alerting.notify.configured import notifiers_from_settings
from alerting.policy import AlertingPolicy
from alerting.stage import AlertStage, Emitted, by_window_end
from core import schemas
from core.config import Settings
from core.kafka_admin import ensure_and_count
from core.schemas import (
    AnomalyScore,
    AnomalyScoreBatch,
    DeadLetter,
    Decision,
    EventTimeMark,
    LeafSummary,
    RoomHealth,
    SchemaError,
    ServiceHealth,
)
from core.timeutil import Clock, SystemClock
from detectors.ensemble import EnsembleConfig
from streams.app import StreamsApp, health_key
from streams.detection import Detected, WindowDetection
from streams.faust_io import TP, BatchHandler, Event, Message, TableStore

log = logging.getLogger("outagewatch.detection")

ALERTING_STATE_KEY = b"alerting"
_state_codec = (msgspec.msgpack.Encoder(), msgspec.msgpack.Decoder(dict[str, Any]))


class DecisionBatch(msgspec.Struct):
    """A value of the internal decisions topic: one detection batch's decisions, in order.

    ``sources`` maps each input partition of the batch (``topic:partition``) to
    the newest window end it had: the alerting agent measures staleness from
    the slowest one (``AlertEngine.note_progress``). ``summaries``: what each
    room-health partition's forwarder left out (``alerting.forward``).
    """

    decisions: list[Decision]
    sources: dict[str, int] = {}
    summaries: list[LeafSummary] = []


_batch_decoder = msgspec.json.Decoder(DecisionBatch)


def detection_partitions(settings: Settings) -> tuple[int, int]:
    """Create the topics detection writes; return the partitions of room-health and service-health."""
    topics = settings.topics
    rooms, services = ensure_and_count(
        settings, (topics.room_health, topics.service_health, topics.alerts, topics.anomaly_scores,
                   topics.dead_letter), (topics.room_health, topics.service_health))
    return rooms, services


class DetectionAgents:
    """Adds detection and alerting to a ``StreamsApp``'s Faust app."""

    def __init__(self, streams: StreamsApp, settings: Settings, *, room_partitions: int, service_partitions: int,
                 config: EnsembleConfig | None = None, notifiers: Sequence[Notifier] | None = None,
                 batch_max: int = 2000, wall_clock: Clock | None = None) -> None:
        self.app = streams.app
        io = self.io = streams.io
        topics = settings.topics
        self.room_health = io.raw_topic(topics.room_health)
        self.service_health = io.raw_topic(topics.service_health)
        self.scores = io.raw_topic(topics.anomaly_scores)
        self.alerts = io.raw_topic(topics.alerts)
        self.dead_letter = io.raw_topic(topics.dead_letter)
        self.decisions = io.raw_topic(f"{io.app_id}-decisions", partitions=1, internal=True)
        self.scores_topic, self.decisions_topic = io.topic_name(self.scores), io.topic_name(self.decisions)
        self.room_state = io.raw_table("detector-rooms", partitions=room_partitions)
        self.service_state = io.raw_table("detector-services", partitions=service_partitions)
        self.alerting_state = io.raw_table("alerting-state", partitions=1)
        streams_settings = settings.streams
        self.detection = WindowDetection(config, window_s=streams_settings.window_seconds,
                                         dark_give_up_s=streams_settings.dark_key_seconds)
        self.policy = AlertingPolicy.from_settings(settings.alerting, live_silences=True)
        self.renotify_seconds = settings.alerting.renotify_seconds
        self.notifiers = list(notifiers if notifiers is not None else notifiers_from_settings(settings.alerting, settings.grafana))
        self.stage: AlertStage | None = None
        # room-health partition -> the filter of its room decisions (memory of what its keys still owe)
        self.forwarders: dict[int, DecisionForwarder] = {}
        self.nflog: Nflog | None = None
        self.dispatcher: Dispatcher | None = None
        self.applied_offset = -1
        self.batch_max = batch_max
        self.wall_clock = wall_clock or SystemClock()
        self.counters = {"windows": 0, "decisions": 0, "bad_windows": 0, "alerts": 0, "dead_letters": 0}
        io.batch_agent(self.room_health, "detect-rooms", batch_max, 0.2, self._detector(RoomHealth, self.room_state))
        io.batch_agent(self.service_health, "detect-services", batch_max, 0.2,
                       self._detector(ServiceHealth, self.service_state))
        io.batch_agent(self.decisions, "alerting", 100, 0.2, self._alerting)
        io.on_rebalance(self._on_rebalance)
        io.on_shutdown(self._on_shutdown)

    async def _on_rebalance(self, tps: set[TP]) -> None:
        # Keys and the alerting partition may have moved: the tables hold the truth, reload lazily.
        self.detection.forget()
        self.forwarders.clear()  # a new forwarder forwards everything until it knows its keys again
        self.stage = None

    async def _on_shutdown(self) -> None:
        if self.dispatcher is not None:
            await self.dispatcher.close()
        else:
            await asyncio.gather(*(notifier.close() for notifier in self.notifiers))

    # -- detection ---------------------------------------------------------

    def _detector(self, kind: type[RoomHealth] | type[ServiceHealth], table: Any) -> BatchHandler:
        async def detect(events: Sequence[Event]) -> None:
            await self._detect_batch(events, kind, table)
        return detect

    async def _detect_batch(self, events: Sequence[Event], kind: type[RoomHealth] | type[ServiceHealth],
                            table: Any) -> None:
        decisions: list[Decision] = []
        by_partition: dict[int, list[Decision]] = {}  # room decisions, to their partition's forwarder
        stores: dict[int, TableStore] = {}
        scores: dict[bytes, list[AnomalyScore]] = {}
        sources: dict[str, int] = {}
        dark: set[str] = set()  # keys judged bad on windows they missed

        def store_of(partition: int) -> TableStore:
            store = stores.get(partition)
            if store is None:
                store = stores[partition] = self.io.table_store(table, partition)
            return store

        for event in events:
            message = event.message
            try:
                if schemas.is_event_time_mark(event.value):
                    if kind is RoomHealth:  # only room-health keys are watched for silence
                        mark = schemas.decode(event.value or b"", EventTimeMark)
                        self._judge_dark(mark.closed_upto, message.partition, store_of, decisions, by_partition,
                                         scores, dark)
                    continue
                # A tombstone (no value) is undecodable too: a dead letter, not a crashed agent.
                window = schemas.decode(event.value or b"", kind)
            except SchemaError as exc:
                await self._send_dead_letter(message, f"undecodable {kind.__name__}: {exc}")
                continue
            try:
                detected = self.detection.observe(window, store_of(message.partition), partition=message.partition)
            except Exception:  # noqa: BLE001 - one key's detector bug must not stop every room's detection
                log.exception("detectors failed on %s %s window %d; skipped it", window.scope, window.key,
                              window.window_start)
                continue
            source = f"{message.topic}:{message.partition}"
            sources[source] = max(sources.get(source, 0), window.window_end)
            self.counters["windows"] += 1
            self._collect(detected, kind, decisions, by_partition, scores)
        if dark:
            log.warning("no reports arrived for %d known keys, judged dark: %s", len(dark),
                        ", ".join(sorted(dark)[:10]))
        # Straight to the producer, one message per key: Faust's Topic.send per
        # score row (thirty per room window) was what held detection back.
        futures = await self.io.send_many(self.scores_topic, [
            (key, schemas.encode(AnomalyScoreBatch(scores=rows))) for key, rows in scores.items()])
        forwarded, summaries = self._forward(by_partition)
        decisions.extend(forwarded)
        if decisions or summaries:
            futures.append(await self.io.send(self.decisions_topic, b"decisions",
                                              schemas.encode(DecisionBatch(decisions, sources, summaries))))
        for store in stores.values():
            await store.send_pending()
        if futures:
            await asyncio.gather(*futures)

    def _judge_dark(self, upto: int, partition: int, store_of: Callable[[int], TableStore],
                    decisions: list[Decision], by_partition: dict[int, list[Decision]],
                    scores: dict[bytes, list[AnomalyScore]], dark: set[str]) -> None:
        """Every window of ``partition`` ending by ``upto`` is read: judge the keys without one dark."""
        try:
            detected = self.detection.judge_dark(upto, store_of, partition=partition)
        except Exception:  # noqa: BLE001 - one key's detector bug must not stop every room's detection
            log.exception("judging the dark keys of room-health partition %d up to %d failed; skipped", partition,
                          upto)
            return
        self._collect(detected, RoomHealth, decisions, by_partition, scores)
        dark.update(f"{d.scope} {d.key}" for d in detected.decisions if d.bad)

    def _collect(self, detected: Detected, kind: type[RoomHealth] | type[ServiceHealth], decisions: list[Decision],
                 by_partition: dict[int, list[Decision]], scores: dict[bytes, list[AnomalyScore]]) -> None:
        """One window's (or mark's) decisions and score rows into the batch's: rooms' by partition."""
        self.counters["decisions"] += len(detected.decisions)
        self.counters["bad_windows"] += len({(d.scope, d.key, d.window_end) for d in detected.decisions if d.bad})
        if kind is RoomHealth:
            for decision, partition in zip(detected.decisions, detected.partitions, strict=True):
                by_partition.setdefault(partition, []).append(decision)
        else:
            decisions.extend(detected.decisions)
        for row in detected.scores:
            scores.setdefault(health_key(row), []).append(row)

    def _forward(self, by_partition: dict[int, list[Decision]]) -> tuple[list[Decision], list[LeafSummary]]:
        """Room decisions per room-health partition -> those the engine needs, and each partition's summary."""
        forwarded: list[Decision] = []
        summaries: list[LeafSummary] = []
        for partition, decisions in by_partition.items():
            forwarder = self.forwarders.get(partition)
            if forwarder is None:
                source = f"{self.io.topic_name(self.room_health)}:{partition}"
                forwarder = self.forwarders[partition] = DecisionForwarder(self.policy, source)
            kept, summary = forwarder.forward(decisions)
            forwarded.extend(kept)
            summaries.append(summary)
        return forwarded, summaries

    async def _send_dead_letter(self, message: Message, error: str) -> None:
        self.counters["dead_letters"] += 1
        log.warning("dead letter from %s[%d]@%d: %s", message.topic, message.partition, message.offset, error)
        letter = DeadLetter(source_topic=message.topic, error=error, raw=message.value or b"",
                            partition=message.partition, offset=message.offset, received_ms=self.wall_clock.now_ms())
        await self.io.send_through(self.dead_letter, message.topic.encode(), schemas.encode(letter))

    # -- alerting ----------------------------------------------------------

    def _restore(self) -> AlertStage:
        raw = self.io.table_value(self.alerting_state, ALERTING_STATE_KEY)
        state = _state_codec[1].decode(raw) if raw else {}
        try:
            stage = AlertStage(self.policy, state.get("engine"))
        except (KeyError, TypeError, ValueError) as exc:
            log.error("alerting state is unreadable (%s): starting with no open alerts", exc)
            stage, state = AlertStage(self.policy), {}
        nflog = Nflog(stage.clock, renotify_seconds=self.renotify_seconds)
        nflog.load_state(state.get("nflog", {}))
        self.applied_offset = int(state.get("applied_offset", -1))
        self.stage, self.nflog = stage, nflog
        self.dispatcher = Dispatcher(self.notifiers, nflog, policy=self.policy.notify)
        opened = stage.engine.open_alerts()
        log.info("alerting ready: %d open alerts restored, decisions applied up to offset %d",
                 len(opened), self.applied_offset)
        return stage

    async def _alerting(self, events: Sequence[Event]) -> None:
        stage = self.stage or self._restore()
        decisions: list[Decision] = []
        summaries: list[LeafSummary] = []
        sources: dict[str, int] = {}
        last_offset = self.applied_offset
        for event in events:
            offset = event.message.offset
            if offset <= self.applied_offset:
                continue  # already in the restored state: a redelivery after a restart
            last_offset = max(last_offset, offset)
            try:
                batch = _batch_decoder.decode(event.value or b"")
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                await self._send_dead_letter(event.message, f"undecodable decisions: {exc}")
                continue
            decisions.extend(batch.decisions)
            summaries.extend(batch.summaries)
            newest(sources, batch.sources)
        if last_offset == self.applied_offset:
            return
        await self._alert_batch(stage, decisions, summaries, sources)
        self.applied_offset = last_offset
        await self._save(stage)

    async def _alert_batch(self, stage: AlertStage, decisions: list[Decision], summaries: Sequence[LeafSummary],
                           sources: Mapping[str, int]) -> None:
        for batch, batch_summaries, progress in alert_steps(decisions, summaries, sources):
            stage.engine.note_progress(progress)
            try:
                emitted = stage.step(batch, batch_summaries)
            except Exception:  # noqa: BLE001 - keep alerting alive; the next window is judged afresh
                log.exception("alert engine failed on %d decisions of window end %d; skipped them", len(batch),
                              batch[0].window_end if batch else batch_summaries[-1].watermark[1])
                continue
            if emitted:
                await self._publish_and_notify(emitted)

    async def _publish_and_notify(self, emitted: list[Emitted]) -> None:
        alerts = [e.alert for e in emitted]
        self.counters["alerts"] += len(alerts)
        # Published (acknowledged) before anyone is paged: the topic and ClickHouse are the record.
        futures = [await self.io.send_through(self.alerts, a.fingerprint.encode(), schemas.encode(a)) for a in alerts]
        await asyncio.gather(*futures)
        assert self.dispatcher is not None and self.nflog is not None
        try:
            await self.dispatcher.send(emitted)
        except Exception:  # noqa: BLE001 - a notifier bug must not stop alert events
            log.exception("notifying %d alert events failed", len(alerts))
        self.nflog.gc()

    async def _save(self, stage: AlertStage) -> None:
        assert self.nflog is not None
        state = {"engine": stage.to_state(), "nflog": self.nflog.to_state(), "applied_offset": self.applied_offset}
        store = self.io.table_store(self.alerting_state, 0)
        store.put(ALERTING_STATE_KEY, _state_codec[0].encode(state))
        # The changelog is what a restarted worker recovers: without this write, a worker killed while an
        # alert fired came back with no open alerts and paged it again (bench chaos found it).
        await store.send_pending()


def newest(sources: dict[str, int], more: Mapping[str, int]) -> None:
    """Fold ``more`` (source -> window end) into ``sources``, keeping each source's newest."""
    for source, window_end in more.items():
        sources[source] = max(window_end, sources.get(source, window_end))


def alert_steps(decisions: list[Decision], summaries: Sequence[LeafSummary], sources: Mapping[str, int]
                ) -> list[tuple[list[Decision], list[LeafSummary], dict[str, int]]]:
    """The engine's steps for one batch of decision values: each window end's decisions, its summaries, progress.

    Progress is each source's newest window end, but never past the step's
    own: a partition that lagged delivers minutes of windows at once, and
    had it counted as caught up before its older windows were stepped, its
    open alerts would resolve as stale in the very step they fire in.

    >>> d = lambda end: Decision(scope="room", key="r", kind="crash", window_start=end - 10, window_end=end, bad=True)
    >>> [(b[0].window_end, p) for b, _, p in alert_steps([d(20), d(10)], [], {"slow": 20, "fast": 15})]
    [(10, {'slow': 10, 'fast': 10}), (20, {'slow': 20, 'fast': 15})]
    """
    steps = with_summaries(by_window_end(decisions), summaries)
    reached = [batch[0].window_end if batch else max(s.watermark[1] for s in batch_summaries)
               for batch, batch_summaries in steps]
    return [(batch, batch_summaries, {source: min(end, step_end) for source, end in sources.items()})
            for (batch, batch_summaries), step_end in zip(steps, reached, strict=True)]


def with_summaries(batches: list[list[Decision]], summaries: Sequence[LeafSummary]
                   ) -> list[tuple[list[Decision], list[LeafSummary]]]:
    """Each window end's decisions with the summaries that reached it (each at the first batch as new as it).

    A summary tells how far its partition had got: stepped before its window
    end, it would move the engine's watermark ahead of the decisions.

    >>> d = lambda end: Decision(scope="room", key="r", kind="crash", window_start=end - 10, window_end=end, bad=True)
    >>> s = lambda end: LeafSummary(source="p", watermark=(end - 10, end))
    >>> [([x.window_end for x in b], [y.watermark[1] for y in ss]) for b, ss in with_summaries([[d(10)], [d(20)]], [s(20), s(30)])]
    [([10], []), ([20], [20, 30])]
    >>> with_summaries([], [s(30)])[0][1][0].watermark
    (20, 30)
    """
    if not batches:
        return [([], list(summaries))] if summaries else []
    attached: list[list[LeafSummary]] = [[] for _ in batches]
    for summary in summaries:
        at = next((i for i, batch in enumerate(batches) if batch[0].window_end >= summary.watermark[1]),
                  len(batches) - 1)
        attached[at].append(summary)
    return list(zip(batches, attached, strict=True))


def attach_detection(streams: StreamsApp, settings: Settings, batch_max: int = 2000) -> DetectionAgents:
    """Detection and alerting on the worker's closed windows, notifiers from the settings."""
    room_partitions, service_partitions = detection_partitions(settings)
    agents = DetectionAgents(streams, settings, room_partitions=room_partitions,
                             service_partitions=service_partitions, batch_max=batch_max)
    log.info("detection: %s (%d partitions) and %s (%d) -> %s, %s; %d notifiers (%s)",
             settings.topics.room_health, room_partitions, settings.topics.service_health, service_partitions,
             settings.topics.anomaly_scores, settings.topics.alerts, len(agents.notifiers),
             ", ".join(n.name for n in agents.notifiers) or "none")
    return agents
