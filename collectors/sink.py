"""Producing to Kafka with librdkafka or kafka-python, awaited from asyncio.

``KafkaSink.send_all`` hands a request's records to the producer and returns
only when the broker acknowledged every one of them (``acks=all``), or
raises ``SinkUnavailable``: the HTTP layer answers 202 in the first case and
503 in the second, so a 202 always means "in Kafka".

kafka-python 3 has no bounded send buffer of its own, so this class bounds
it: the bytes handed over and not yet acknowledged (``pending_bytes``) may
not pass ``max_pending_bytes``. And after a delivery failure it fails fast
for ``cooldown_ms`` (a circuit breaker) instead of letting every request of
a storm wait out the delivery timeout against a dead broker.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from core.timeutil import Clock

log = logging.getLogger("collectors.sink")


class SinkUnavailable(Exception):
    """Kafka cannot take the records now; retry after ``retry_after`` seconds."""

    def __init__(self, reason: str, retry_after: float) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@dataclass(frozen=True)
class Record:
    topic: str
    key: bytes
    value: bytes


class RecordSink(Protocol):
    """Where the HTTP handlers and the scraper put records (Kafka in production)."""

    pending_bytes: int

    async def send_all(self, records: Sequence[Record]) -> None: ...

    async def ready(self) -> bool: ...

    def partitions(self, topic: str) -> int:
        """How many partitions ``topic`` has, 0 when not known (then one message per room)."""
        ...


@dataclass(frozen=True)
class ProducerSettings:
    bootstrap: str
    client_id: str = "outagewatch-collector"
    compression: str = "lz4"
    linger_ms: int = 5
    batch_bytes: int = 256 * 1024
    delivery_timeout_ms: int = 30_000
    max_pending_bytes: int = 64 * 1024 * 1024
    cooldown_ms: int = 1_000
    # Which client produces: "librdkafka" (confluent-kafka) or "kafka-python" (collector.kafka_client).
    client: str = "librdkafka"


class Acks(Protocol):
    """What a producer tells about each record it was handed (``_Acks``)."""

    def ok(self, metadata: Any) -> None: ...

    def failed(self, error: BaseException) -> None: ...

    def delivered(self, error: Any, message: Any) -> None: ...


class Producer(Protocol):
    """The client behind ``KafkaSink``: kafka-python's or librdkafka's, the same to the sink."""

    def send(self, topic: str, value: bytes, key: bytes, acks: Acks) -> None:
        """Queue one record; ``acks`` hears of it (from the client's thread). Raises when not queued."""
        ...

    def partitions_for(self, topic: str) -> set[int]:
        """The topic's partitions, fetching metadata (blocks: call it in an executor)."""
        ...

    def partition_count(self, topic: str) -> int:
        """Partitions of a topic whose metadata was fetched, without blocking."""
        ...

    def close(self, timeout: float) -> None: ...


class _Acks:
    """Counts one request's outstanding records; wakes the event loop once, when all are in."""

    __slots__ = ("_remaining", "_lock", "_loop", "future", "error")

    def __init__(self, loop: asyncio.AbstractEventLoop, count: int) -> None:
        self._remaining = count
        self._lock = threading.Lock()
        self._loop = loop
        self.future: asyncio.Future[None] = loop.create_future()
        self.error: BaseException | None = None

    def _done_one(self, error: BaseException | None) -> None:
        with self._lock:
            if error is not None and self.error is None:
                self.error = error
            self._remaining -= 1
            last = self._remaining == 0
        if last:
            self._loop.call_soon_threadsafe(self._finish)

    def _finish(self) -> None:
        if not self.future.done():
            self.future.set_result(None)

    def ok(self, _metadata: Any) -> None:
        self._done_one(None)

    def failed(self, error: BaseException) -> None:
        self._done_one(error)

    def delivered(self, error: Any, _message: Any) -> None:
        """librdkafka's delivery report: ``error`` is a ``KafkaError`` or None."""
        self._done_one(None if error is None else DeliveryFailed(str(error)))


class DeliveryFailed(Exception):
    """librdkafka did not deliver a record (its ``KafkaError``, as text)."""


class _CachedKeyPartitioner:
    """kafka-python's default (murmur2) partitioning, memoised per key.

    murmur2 is pure Python in kafka-python and runs for every record; rooms
    repeat, so each is hashed once.
    """

    def __init__(self, max_keys: int = 200_000) -> None:
        from kafka.partitioner.default import DefaultPartitioner

        self._default = DefaultPartitioner()
        self._max_keys = max_keys
        self._cache: dict[tuple[str, bytes, int], int] = {}

    def partition(self, topic: str, key: Any, serialized_key: bytes | None, value: Any, serialized_value: Any,
                  cluster: Any) -> int:
        partitions = cluster.partitions_for_topic(topic)
        if serialized_key is None or not partitions:
            return int(self._default.partition(topic, key, serialized_key, value, serialized_value, cluster))
        cache_key = (topic, bytes(serialized_key), len(partitions))
        chosen = self._cache.get(cache_key)
        if chosen is None:
            if len(self._cache) >= self._max_keys:
                self._cache.clear()
            chosen = self._cache[cache_key] = int(
                self._default.partition(topic, key, serialized_key, value, serialized_value, cluster))
        return chosen


class KafkaPythonProducer:
    """kafka-python's ``KafkaProducer`` behind ``Producer``."""

    def __init__(self, settings: ProducerSettings) -> None:
        self._producer = kafka_producer(settings)

    def send(self, topic: str, value: bytes, key: bytes, acks: Acks) -> None:
        future = self._producer.send(topic, value=value, key=key)
        future.add_callback(acks.ok)
        future.add_errback(acks.failed)

    def partitions_for(self, topic: str) -> set[int]:
        return set(self._producer.partitions_for(topic) or ())

    def partition_count(self, topic: str) -> int:
        return len(self._producer._metadata.partitions_for_topic(topic) or ())  # noqa: SLF001 - never blocks

    def close(self, timeout: float) -> None:
        self._producer.close(timeout=timeout)


def kafka_producer(settings: ProducerSettings) -> Any:
    """kafka-python's ``KafkaProducer`` as the collector runs it: ``acks=all``, bounded retries in time."""
    from kafka import KafkaProducer
    from kafka.partitioner.abc import Partitioner

    # Registered, not inherited: kafka-python checks isinstance(…, Partitioner).
    Partitioner.register(_CachedKeyPartitioner)

    s = settings
    request_timeout = max(1000, min(30_000, s.delivery_timeout_ms - s.linger_ms - 100))
    return KafkaProducer(
        bootstrap_servers=s.bootstrap.split(","),
        client_id=s.client_id,
        acks="all",
        compression_type=None if s.compression in ("", "none") else s.compression,
        linger_ms=s.linger_ms,
        batch_size=s.batch_bytes,
        max_request_size=8 * 1024 * 1024,
        delivery_timeout_ms=s.delivery_timeout_ms,
        request_timeout_ms=request_timeout,
        # After a delivery timeout an idempotent producer must reset its
        # sequence numbers; kafka-python does not always manage, and a
        # partition that stays stuck is worse than an at-least-once
        # duplicate (report_id makes those harmless downstream).
        enable_idempotence=False,
        max_in_flight_requests_per_connection=5,
        retries=2**31 - 1,
        retry_backoff_ms=100,
        reconnect_backoff_max_ms=1000,
        # The producer's own metrics cost CPU on every record; ours are in /metrics.
        metrics_enabled=False,
        bootstrap_timeout_ms=10_000,
        partitioner=_CachedKeyPartitioner(),
    )


def make_producer(settings: ProducerSettings) -> Producer:
    """The client ``settings.client`` names."""
    if settings.client == "kafka-python":
        return KafkaPythonProducer(settings)
    from collectors.rdkafka import LibrdkafkaProducer

    return LibrdkafkaProducer(settings)


class KafkaSink:
    """A ``Producer`` with ``acks=all``, compression, batching, bounded pending bytes."""

    def __init__(self, settings: ProducerSettings, clock: Clock,
                 make_producer: Callable[[ProducerSettings], Producer] = make_producer) -> None:
        self.settings = settings
        self._clock = clock
        # The producer is built on start(), in an executor: connecting blocks.
        self._make_producer = make_producer
        self._producer: Producer | None = None
        self._known_topics: set[str] = set()
        self._open_until_ms = 0
        self.pending_bytes = 0
        self.last_error = ""

    async def start(self, topics: Sequence[str], timeout_s: float = 30.0) -> None:
        """Connect and fetch metadata for ``topics`` so ``send`` never blocks the event loop on it."""
        loop = asyncio.get_running_loop()
        try:
            self._producer = await loop.run_in_executor(None, self._make_producer, self.settings)
        except Exception as exc:  # noqa: BLE001 - NoBrokersAvailable, DNS, bad config...
            raise SinkUnavailable(f"cannot connect to Kafka at {self.settings.bootstrap}: {exc}",
                                  self.settings.cooldown_ms / 1000) from None
        for topic in topics:
            await self._warm(topic, timeout_s)

    async def _warm(self, topic: str, timeout_s: float) -> None:
        loop = asyncio.get_running_loop()
        assert self._producer is not None
        try:
            await asyncio.wait_for(loop.run_in_executor(None, self._producer.partitions_for, topic), timeout_s)
        except Exception as exc:  # noqa: BLE001 - metadata fails in many ways
            raise SinkUnavailable(f"no metadata for topic {topic!r} from Kafka at {self.settings.bootstrap} (is it up? "
                                  f"kafka.bootstrap): {exc}", self.settings.cooldown_ms / 1000) from None
        self._known_topics.add(topic)

    def partitions(self, topic: str) -> int:
        # Metadata is fetched by start() (_warm); never block the event loop for it here.
        if self._producer is None or topic not in self._known_topics:
            return 0
        return self._producer.partition_count(topic)

    async def send_all(self, records: Sequence[Record]) -> None:
        if not records:
            return
        if self._producer is None:
            raise SinkUnavailable("the Kafka producer is not started", self.settings.cooldown_ms / 1000)
        now = self._clock.now_ms()
        if now < self._open_until_ms:
            raise SinkUnavailable(f"Kafka is failing ({self.last_error})", (self._open_until_ms - now) / 1000)
        size = sum(len(record.value) for record in records)
        if self.pending_bytes and self.pending_bytes + size > self.settings.max_pending_bytes:
            raise SinkUnavailable(
                f"send buffer full ({self.pending_bytes} bytes waiting for Kafka)", self.settings.cooldown_ms / 1000
            )
        for topic in {record.topic for record in records} - self._known_topics:
            await self._warm(topic, self.settings.delivery_timeout_ms / 1000)
        acks = _Acks(asyncio.get_running_loop(), len(records))
        self.pending_bytes += size
        try:
            send = self._producer.send
            for record in records:
                try:
                    send(record.topic, record.value, record.key, acks)
                except Exception as exc:  # noqa: BLE001 - buffer/metadata/closed: all mean "not queued"
                    acks.failed(exc)
            await acks.future
        finally:
            self.pending_bytes -= size
        if acks.error is not None:
            self.last_error = f"{type(acks.error).__name__}: {acks.error}"
            self._open_until_ms = self._clock.now_ms() + self.settings.cooldown_ms
            log.warning("Kafka did not acknowledge a request's records: %s; failing fast for %d ms",
                        self.last_error, self.settings.cooldown_ms)
            raise SinkUnavailable(f"Kafka did not acknowledge: {self.last_error}", self.settings.cooldown_ms / 1000)

    async def ready(self) -> bool:
        """Producer started, not in a failure cool-down, and a bootstrap broker accepts a connection."""
        if self._producer is None or self._clock.now_ms() < self._open_until_ms:
            return False
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, _any_reachable, self.settings.bootstrap)

    async def close(self, timeout_s: float = 10.0) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            await asyncio.get_running_loop().run_in_executor(None, producer.close, timeout_s)


def _any_reachable(bootstrap: str, timeout_s: float = 1.0) -> bool:
    for address in bootstrap.split(","):
        host, _, port = address.strip().rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
                return True
        except (OSError, ValueError):
            continue
    return False
