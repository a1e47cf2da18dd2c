"""librdkafka (confluent-kafka) as the collector's producer: the same records for 40 % of the CPU.

``bench kafka-clients`` measured producing our packed records: 0.33 us of
CPU per report against kafka-python's 0.84. The settings mirror
``collectors.sink.kafka_producer``'s, and the partitioner is Java's and
kafka-python's murmur2 (``murmur2_random``), so a room lands on the same
partition whichever client a collector runs (during a rolling upgrade too:
each room's windows stay on one worker).

librdkafka reports deliveries from ``poll``; a daemon thread polls, so the
event loop never blocks on it, and refreshes the partition counts of the
topics in use, so ``partition_count`` never blocks either.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from collectors.sink import Acks, ProducerSettings

log = logging.getLogger("collectors.rdkafka")

METADATA_REFRESH_S = 30.0


class TopicUnavailable(Exception):
    """The broker gave no usable metadata for a topic."""


class LibrdkafkaProducer:
    """``collectors.sink.Producer`` on confluent-kafka's ``Producer``."""

    def __init__(self, settings: ProducerSettings) -> None:
        from confluent_kafka import Producer

        s = settings
        self._producer = Producer({
            "bootstrap.servers": s.bootstrap,
            "client.id": s.client_id,
            "acks": "all",
            "compression.type": s.compression or "none",
            "linger.ms": s.linger_ms,
            "batch.size": s.batch_bytes,
            "message.max.bytes": 8 * 1024 * 1024,
            "delivery.timeout.ms": s.delivery_timeout_ms,
            "request.timeout.ms": max(1000, min(30_000, s.delivery_timeout_ms - s.linger_ms - 100)),
            # As with kafka-python: a duplicate after a timeout is harmless (report_id), a stuck partition is not.
            "enable.idempotence": False,
            "max.in.flight.requests.per.connection": 5,
            "retry.backoff.ms": 100,
            "reconnect.backoff.max.ms": 1000,
            "partitioner": "murmur2_random",
            # The sink's own bound (max_pending_bytes) is the limit that answers 503; librdkafka's queue is
            # sized past it so that it never refuses first.
            "queue.buffering.max.kbytes": max(1024, 2 * s.max_pending_bytes // 1024),
            "queue.buffering.max.messages": 2_000_000,
            "error_cb": _log_error,
        })
        self._partitions: dict[str, int] = {}
        self._closing = threading.Event()
        self._poller = threading.Thread(target=self._serve, name="rdkafka-deliveries", daemon=True)
        self._poller.start()

    def send(self, topic: str, value: bytes, key: bytes, acks: Acks) -> None:
        self._producer.produce(topic, value=value, key=key, on_delivery=acks.delivered)

    def partitions_for(self, topic: str) -> set[int]:
        metadata = self._producer.list_topics(topic, timeout=10.0).topics.get(topic)
        if metadata is None or metadata.error is not None or not metadata.partitions:
            raise TopicUnavailable(f"{topic}: {getattr(metadata, 'error', None) or 'no partitions'}")
        self._partitions[topic] = len(metadata.partitions)
        return set(metadata.partitions)

    def partition_count(self, topic: str) -> int:
        return self._partitions.get(topic, 0)

    def close(self, timeout: float) -> None:
        remaining = self._producer.flush(timeout)
        self._closing.set()
        self._poller.join(timeout=2.0)
        if remaining:
            log.warning("%d record(s) not delivered when the producer closed", remaining)

    def _serve(self) -> None:
        waited = 0.0
        while not self._closing.is_set():
            self._producer.poll(0.1)
            waited += 0.1
            if waited >= METADATA_REFRESH_S:
                waited = 0.0
                self._refresh()

    def _refresh(self) -> None:
        for topic in list(self._partitions):
            try:
                self.partitions_for(topic)
            except Exception as exc:  # noqa: BLE001 - keep the last count; deliveries say if the broker is gone
                log.debug("metadata of %s not refreshed: %s", topic, exc)


def _log_error(error: Any) -> None:
    # librdkafka retries by itself; what it reports here (a broker down, all brokers down) is context for
    # the 503s and the readiness answers, which say what to do.
    log.warning("Kafka client: %s", error)
