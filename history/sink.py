"""The ClickHouse sink: every topic -> its table, at least once, nothing dropped.

A consumer group of its own (``history.sink_group_id``) reads the topics,
maps each message to rows (``history.rows``), buffers them
(``history.batch``) and flushes by rows or seconds with one columnar INSERT
per table. Kafka offsets are committed only after ClickHouse acknowledged
every table and the broker acknowledged every dead letter.

While ClickHouse is down the sink pauses its partitions (memory stays at one
batch), keeps polling so the group does not evict it, and retries with
exponential backoff and jitter; when ClickHouse is back it writes the
batch, commits, resumes and catches up.

Run it with ``outagewatch history sink`` or ``run(settings, stop_event)``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from core.config import Settings
from core.health import Health
from core.schemas import DeadLetter, encode, is_event_time_mark
from core.timeutil import Clock, SystemClock
from history.batch import BatchPolicy, Origin, PendingBatch, RecentWindows, WindowKey
from history.kafka_edge import BrokerUnavailable, Consumer, DeadLetterPublisher, Record
from history.retry import Backoff, is_retryable
from history.rows import COLUMNS, Route, dead_letter_row
from history.writer import TableWriter, describe_error, insert_isolating_bad_rows

log = logging.getLogger("history.sink")

# How often the loop reads its lag and assignment for /healthz and /metrics (a request to the broker).
HEALTH_READ_SECONDS = 5.0

_REPORT_TS_MS = COLUMNS["reports"].index("ts_ms")
# The tables whose topics carry event-time marks between their windows (docs/contracts.md).
_MARKED_TABLES = frozenset({"room_health", "service_health"})
_ROOM_HEALTH_KEY = (COLUMNS["room_health"].index("scope"), COLUMNS["room_health"].index("key"),
                    COLUMNS["room_health"].index("window_start"))


@dataclass(frozen=True)
class SinkPolicy:
    batch: BatchPolicy = field(default_factory=BatchPolicy)
    backoff: Backoff = field(default_factory=Backoff)
    dedup_horizon_seconds: int = 900
    log_interval_seconds: float = 10.0

    @classmethod
    def from_settings(cls, settings: Settings) -> SinkPolicy:
        h = settings.history
        return cls(BatchPolicy(h.sink_batch_rows, h.sink_batch_seconds),
                   Backoff(max_seconds=h.sink_retry_max_seconds), h.sink_dedup_horizon_seconds,
                   h.sink_log_interval_seconds)


@dataclass
class SinkMetrics:
    """Counters since start; ``report`` turns the last interval into a log line."""

    rows: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    dead_letters: int = 0
    skipped_windows: int = 0
    flushes: int = 0
    _last_rows: dict[str, int] = field(default_factory=dict)

    def report(self, seconds: float, lag: dict[str, int], paused: bool, buffered: int) -> str:
        """One line an on-call engineer can read.

        >>> m = SinkMetrics(rows={"reports": 2000, "alerts": 3}, retries=1)
        >>> m.report(10.0, {"client-reports": 12}, paused=False, buffered=0)
        'history sink: wrote reports=2000 (200/s), alerts=3 (0/s) in 10s; lag client-reports=12; retries=1 dead_letters=0 skipped_windows=0 buffered=0 paused=no'
        """
        written = ", ".join(
            f"{table}={count - self._last_rows.get(table, 0)} ({(count - self._last_rows.get(table, 0)) / max(seconds, 1e-9):.0f}/s)"
            for table, count in sorted(self.rows.items(), key=lambda kv: -kv[1])) or "nothing"
        self._last_rows = dict(self.rows)
        lag_text = ", ".join(f"{topic}={count}" for topic, count in sorted(lag.items())) or "none"
        return (f"history sink: wrote {written} in {seconds:.0f}s; lag {lag_text}; retries={self.retries} "
                f"dead_letters={self.dead_letters} skipped_windows={self.skipped_windows} buffered={buffered} "
                f"paused={'yes' if paused else 'no'}")


class Sink:
    """One sink loop. Single-threaded: ``run`` polls, maps, flushes, commits."""

    def __init__(self, consumer: Consumer, writer: TableWriter, publisher: DeadLetterPublisher,
                 routes: Sequence[Route], policy: SinkPolicy, clock: Clock | None = None,
                 health: Health | None = None) -> None:
        self.consumer = consumer
        self.writer = writer
        self.publisher = publisher
        self.routes = {route.topic: route for route in routes}
        self.policy = policy
        self.clock = clock or SystemClock()
        self.batch = PendingBatch()
        self.windows = RecentWindows(policy.dedup_horizon_seconds)
        self._buffered_windows: list[WindowKey] = []
        self.metrics = SinkMetrics()
        self.paused = False
        self.health = health or Health("history sink", self.clock)
        self.lag: dict[str, int] | None = None
        self._next_health_read = 0.0
        self._written_event_ms: int | None = None
        self._kafka_down_since: float | None = None
        self._next_kafka_log = 0.0
        # Dead letters we publish come back through the dead-letter topic when
        # we consume it; writing them to the table here too would store them twice.
        self._dead_letters_come_back = publisher.topic in self.routes

    # -- the loop ---------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        self.seed_windows(stop)
        last_log = time.monotonic()
        log.info("history sink started: topics %s, batches of %d rows or %.1fs",
                 ", ".join(self.routes), self.policy.batch.max_rows, self.policy.batch.max_seconds)
        try:
            while not stop.is_set():
                self._report_health()
                self.handle(self._poll(self._poll_timeout_ms(), stop))
                if self.batch.due(self.policy.batch, self.clock.now_ms()):
                    self.flush(stop)
                if time.monotonic() - last_log >= self.policy.log_interval_seconds:
                    self._log_metrics(time.monotonic() - last_log)
                    last_log = time.monotonic()
            if not self.batch.is_empty():
                self.flush(stop, final=True)
        finally:
            self._log_metrics(time.monotonic() - last_log)
            log.info("history sink stopped")

    def _poll(self, timeout_ms: int, stop: threading.Event) -> Sequence[Record]:
        """The consumer's records; none while Kafka does not answer (logged every 10 s, in Health)."""
        try:
            records = self.consumer.poll(timeout_ms=timeout_ms)
        except BrokerUnavailable as exc:
            now = time.monotonic()
            if self._kafka_down_since is None:
                self._kafka_down_since = now
            if now >= self._next_kafka_log:
                log.warning("history sink: Kafka does not answer for %.0fs (%s); polling again",
                            now - self._kafka_down_since, _short(exc))
                self._next_kafka_log = now + 10.0
            self.health.blocked(f"Kafka does not answer ({_short(exc)})")
            stop.wait(min(1.0, timeout_ms / 1000) if timeout_ms else 0.2)
            return []
        if self._kafka_down_since is not None:
            log.info("history sink: Kafka answers again after %.0fs", time.monotonic() - self._kafka_down_since)
            self._kafka_down_since, self._next_kafka_log = None, 0.0
        return records

    def _poll_timeout_ms(self) -> int:
        if self.batch.opened_ms is None:
            return 200
        left = self.policy.batch.max_seconds * 1000 - (self.clock.now_ms() - self.batch.opened_ms)
        return int(max(0, min(200, left)))

    def _report_health(self) -> None:
        """Beat and note the assignment every loop; every few seconds, read the lag (``Health``, /metrics)."""
        self.health.beat()
        if self.consumer.assigned is not None:
            self.health.assigned(self.consumer.assigned)
        now = time.monotonic()
        if now < self._next_health_read:
            return
        self._next_health_read = now + HEALTH_READ_SECONDS
        try:
            self.lag = self.consumer.lag()
        except Exception as exc:  # noqa: BLE001 - the broker may be restarting: unknown until it answers
            log.debug("could not read consumer lag: %s", exc)
            self.lag = None
        self.health.waiting(sum(self.lag.values()) if self.lag is not None else None, "messages of its topics")

    def _log_metrics(self, seconds: float) -> None:
        try:
            lag = self.consumer.lag()
        except Exception as exc:  # noqa: BLE001 - lag is informative only
            log.debug("could not read consumer lag: %s", exc)
            lag = {}
        log.info("%s", self.metrics.report(seconds, lag, self.paused, self.batch.row_count))

    # -- mapping ------------------------------------------------------------

    def handle(self, records: Sequence[Record]) -> None:
        now_ms = self.clock.now_ms()
        inserted_at = now_ms // 1000
        for record in records:
            origin = Origin(record.topic, record.partition, record.offset)
            route = self.routes.get(record.topic)
            value = record.value or b""
            if route is not None and route.table in _MARKED_TABLES and is_event_time_mark(value):
                self.batch.consumed(origin, now_ms)  # the detectors' clock (streams.dark), not a window
                continue
            if route is None:
                self._dead_letter(origin, value, f"history sink: no table for topic {record.topic!r}", now_ms)
                continue
            mapped = route.mapper(value, inserted_at)
            rows = mapped.rows
            if route.table == "room_health" and rows:
                rows = self._admit_windows(rows)
            self.batch.add(route.table, rows, origin, now_ms)
            for error, rejected in zip(mapped.errors, mapped.rejected, strict=True):
                raw = value if rejected is None else rejected
                if route.table == "dead_letters":
                    # Garbage on the dead-letter topic is itself kept, never re-published.
                    letter = DeadLetter(source_topic=record.topic, error=error, raw=raw,
                                        partition=record.partition, offset=record.offset, received_ms=now_ms)
                    self.batch.add("dead_letters", [dead_letter_row(letter, inserted_at)], origin, now_ms)
                else:
                    self._dead_letter(origin, raw, f"history sink: {error}", now_ms)

    def _admit_windows(self, rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
        scope_at, key_at, start_at = _ROOM_HEALTH_KEY
        kept = []
        for row in rows:
            key = (str(row[scope_at]), str(row[key_at]), int(row[start_at]))  # type: ignore[call-overload]
            if self.windows.admit(key):
                kept.append(row)
                self._buffered_windows.append(key)
            else:
                self.metrics.skipped_windows += 1
        return kept

    def _dead_letter(self, origin: Origin, raw: bytes, error: str, now_ms: int) -> None:
        letter = DeadLetter(source_topic=origin.topic, error=error, raw=raw, partition=origin.partition,
                            offset=origin.offset, received_ms=now_ms)
        self.batch.add_dead_letter(letter, origin, now_ms)
        if not self._dead_letters_come_back:
            self.batch.add("dead_letters", [dead_letter_row(letter, now_ms // 1000)], origin, now_ms)

    # -- flushing -----------------------------------------------------------

    def flush(self, stop: threading.Event, final: bool = False) -> bool:
        """Write the batch, publish its dead letters, commit; retry while retryable.

        Returns False when it gave up (stop requested, or the partitions were
        taken away): the uncommitted messages are then consumed again later.
        """
        attempt = 0
        while not self.batch.is_empty():
            try:
                self._write_batch()
                return True
            except Exception as exc:
                if not is_retryable(exc):
                    raise
                self.metrics.retries += 1
                if final or stop.is_set():
                    log.warning("history sink stopping with %d rows unwritten (%s); they are not committed and "
                                "will be consumed again on the next start", self.batch.row_count, _short(exc))
                    return False
                delay = self.policy.backoff.delay(attempt)
                attempt += 1
                if not self.paused:
                    self.consumer.pause_all()
                    self.paused = True
                self.health.blocked(f"ClickHouse writes fail ({_short(exc)}); consumption paused with "
                                    f"{self.batch.row_count} rows buffered")
                log.warning("history sink: write failed (%s); consumption paused with %d rows buffered, "
                            "retry %d in %.1fs", _short(exc), self.batch.row_count, attempt, delay)
                self._wait(delay, stop)
        return False

    def _wait(self, seconds: float, stop: threading.Event) -> None:
        """Wait by polling the paused consumer, so the group keeps us and rebalances run."""
        deadline = time.monotonic() + seconds
        while not stop.is_set() and not self.batch.is_empty():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            # Partitions are paused: poll returns nothing except right after a
            # rebalance race; keep anything it returns, nothing is dropped.
            self._report_health()
            self.handle(self._poll(int(min(left, 1.0) * 1000), stop))

    def _write_batch(self) -> None:
        for table in self.batch.tables():
            rows = self.batch.rows[table]
            origins = self.batch.origins[table]
            if table == "reports" and rows:
                self._written_event_ms = int(rows[-1][_REPORT_TS_MS])
            refused = insert_isolating_bad_rows(self.writer.insert, table, rows)
            self.metrics.rows[table] = self.metrics.rows.get(table, 0) + len(rows) - len(refused)
            self.batch.written(table)
            for index, reason in refused:
                self._refused_row(table, rows[index], origins[index], reason)
        if self.batch.tables():  # rows refused above became dead_letters rows
            self._write_batch()
            return
        if self.batch.dead_letters:
            self.publisher.publish(self.batch.dead_letters)
            self.metrics.dead_letters += len(self.batch.dead_letters)
            self.batch.dead_letters.clear()
        self._commit()

    def _refused_row(self, table: str, row: tuple[object, ...], origin: Origin, reason: str) -> None:
        error = f"history sink: ClickHouse refused a {table} row: {reason}"
        if table == "dead_letters":
            log.error("%s; row from %s[%d]@%d not stored: %r", error, *origin, row)
            return
        raw = encode(dict(zip(COLUMNS[table], row, strict=True)))
        log.warning("%s (from %s[%d]@%d)", error, *origin)
        self._dead_letter(origin, raw, error, self.clock.now_ms())

    def _commit(self) -> None:
        offsets = self.batch.offsets_to_commit()
        try:
            self.consumer.commit(offsets)
        except Exception as exc:  # noqa: BLE001 - a lost generation: the new owner replays
            log.warning("history sink: offsets not committed (%s); the rows are written and will be "
                        "deduplicated when the messages are consumed again", _short(exc))
        self.metrics.flushes += 1
        self.health.moved("batch written", event_ms=self._written_event_ms)
        self.batch.clear()
        self._buffered_windows.clear()
        if self.paused:
            self.consumer.resume_all()
            self.paused = False
            log.info("history sink: ClickHouse writes succeed again; consumption resumed")

    def on_revoked(self) -> None:
        """Partitions taken away (eager rebalance): give up what is not written.

        The uncommitted messages go to the new owner (maybe us again), so
        dropping the buffer here loses nothing; windows not yet written are
        forgotten so they are admitted when they come back.
        """
        if self.batch.is_empty():
            return
        try:
            self._write_batch()
            return
        except Exception as exc:  # noqa: BLE001 - any failure: fall back to replay
            log.warning("history sink: partitions revoked with %d rows unwritten (%s); they will be consumed "
                        "again", self.batch.row_count, _short(exc))
        self.windows.forget(self._buffered_windows)
        self._buffered_windows.clear()
        self.batch.clear()

    def seed_windows(self, stop: threading.Event) -> None:
        """Remember the room-health windows ClickHouse already holds (waits for ClickHouse)."""
        attempt = 0
        while not stop.is_set():
            try:
                keys = self.writer.recent_windows(self.policy.dedup_horizon_seconds)
                self.windows.load(keys)
                log.info("history sink: %d recent room-health windows already stored; replays of them are skipped",
                         len(keys))
                return
            except Exception as exc:
                if not is_retryable(exc):
                    raise
                delay = self.policy.backoff.delay(attempt)
                attempt += 1
                self.health.blocked(f"ClickHouse not reachable at start ({_short(exc)})")
                log.warning("history sink: ClickHouse not reachable at start (%s); retry %d in %.1fs",
                            _short(exc), attempt, delay)
                stop.wait(delay)


def _short(exc: BaseException) -> str:
    return describe_error(exc)[:300]


def build(settings: Settings, group_id: str | None = None, topics: Sequence[str] | None = None,
          health: Health | None = None) -> Sink:
    """A sink wired to the configured Kafka and ClickHouse."""
    from history.client import parse_url
    from history.kafka_edge import KafkaDeadLetterPublisher, KafkaSinkConsumer
    from history.rows import routes_for
    from history.writer import ClickHouseWriter

    routes = [route for route in routes_for(settings.topics) if topics is None or route.topic in topics]
    holder: list[Sink] = []
    consumer = KafkaSinkConsumer(settings, [route.topic for route in routes],
                                 group_id or settings.history.sink_group_id, on_revoked=lambda: holder[0].on_revoked())
    sink = Sink(consumer, ClickHouseWriter(parse_url(settings.clickhouse.url)), KafkaDeadLetterPublisher(settings),
                routes, SinkPolicy.from_settings(settings), health=health)
    holder.append(sink)
    return sink


def run(settings: Settings, stop_event: threading.Event, group_id: str | None = None,
        topics: Sequence[str] | None = None, migrate: bool = True, health: Health | None = None,
        on_built: Callable[[Sink], None] | None = None) -> SinkMetrics:
    """Run the sink until ``stop_event`` is set; returns its counters.

    ``migrate`` applies the schema first (idempotent; waits for ClickHouse).
    ``health`` receives its progress; ``on_built`` is called with the sink before it starts.
    """
    if migrate:
        from history.api import migrate as apply_migrations

        _retry_until_stopped(lambda: apply_migrations(settings), stop_event, "schema migration", health)
    sink = build(settings, group_id, topics, health)
    if on_built is not None:
        on_built(sink)
    try:
        sink.run(stop_event)
    finally:
        sink.consumer.close()
        sink.publisher.close()  # type: ignore[attr-defined]
        sink.writer.close()  # type: ignore[attr-defined]
    return sink.metrics


def _retry_until_stopped(action: object, stop: threading.Event, what: str, health: Health | None = None) -> None:
    backoff = Backoff()
    attempt = 0
    while not stop.is_set():
        try:
            action()  # type: ignore[operator]
            return
        except Exception as exc:
            if not is_retryable(exc):
                raise
            delay = backoff.delay(attempt)
            attempt += 1
            if health is not None:
                health.blocked(f"{what} failed ({_short(exc)})")
            log.warning("history sink: %s failed (%s); retry %d in %.1fs", what, _short(exc), attempt, delay)
            stop.wait(delay)


__all__ = ["Sink", "SinkMetrics", "SinkPolicy", "build", "run"]
