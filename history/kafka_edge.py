"""The sink's Kafka edge: a kafka-python consumer without auto-commit, and
the producer that publishes dead letters.

Only this module imports kafka-python; ``history.sink`` sees the small
``Consumer`` and ``DeadLetterPublisher`` protocols.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

from core.config import Settings
from core.kafka_admin import await_topics, unready_topics
from core.schemas import DeadLetter, encode

log = logging.getLogger("history.sink")


class BrokerUnavailable(ConnectionError):
    """Kafka does not answer now (a broker restarting, the network): wait and poll again, never fatal.

    A ``ConnectionError``, so ``history.retry.is_retryable`` retries a flush that met it.
    """


def _unavailable(exc: Exception) -> BrokerUnavailable | None:
    """``exc`` as a ``BrokerUnavailable`` when kafka-python says it is worth retrying, else None."""
    from kafka import errors

    if isinstance(exc, errors.KafkaError) and getattr(exc, "retriable", False):
        return BrokerUnavailable(f"{type(exc).__name__}: {exc}")
    return None


class Record(NamedTuple):
    topic: str
    partition: int
    offset: int
    value: bytes | None


class Consumer(Protocol):
    # Partitions held per topic since the last rebalance (None: no assignment yet).
    assigned: dict[str, int] | None

    def poll(self, timeout_ms: int) -> list[Record]: ...

    def pause_all(self) -> None: ...

    def resume_all(self) -> None: ...

    def commit(self, offsets: Mapping[tuple[str, int], int]) -> None: ...

    def lag(self) -> dict[str, int]: ...

    def close(self) -> None: ...


class DeadLetterPublisher(Protocol):
    topic: str

    def publish(self, letters: Sequence[DeadLetter]) -> None: ...


TOPIC_WAIT_SECONDS = 15.0


class KafkaSinkConsumer:
    """A group member over the sink's topics; offsets are committed explicitly."""

    def __init__(self, settings: Settings, topics: Sequence[str], group_id: str,
                 on_revoked: Callable[[], None], max_poll_records: int = 2000) -> None:
        from kafka import KafkaConsumer
        from kafka.consumer.subscription_state import ConsumerRebalanceListener

        # A group member that joins while the broker's metadata lacks a topic is assigned none of
        # its partitions until the next metadata refresh. Asked of a throwaway admin client:
        # fetching all topics' metadata on the group member itself made it rebalance right after
        # its first assignment.
        missing = await_topics(unready_topics(settings.kafka.bootstrap), topics, TOPIC_WAIT_SECONDS, "history sink")
        if missing:
            log.warning("history sink: topic(s) %s not usable in Kafka yet (%s); their partitions are assigned at "
                        "a later metadata refresh", ", ".join(missing), "; ".join(missing.values()))
        self._paused = False
        self.assigned: dict[str, int] | None = None
        owner = self

        class Listener(ConsumerRebalanceListener):  # type: ignore[misc]
            def on_partitions_revoked(self, revoked: Any) -> None:
                if revoked:
                    on_revoked()

            def on_partitions_assigned(self, assigned: Any) -> None:
                # A rebalance during a ClickHouse outage must not let records
                # of newly assigned partitions pile up in memory.
                if owner._paused and assigned:
                    owner._consumer.pause(*assigned)
                owner.assigned = {topic: sum(1 for tp in assigned if tp.topic == topic) for topic in topics}
                log.info("sink assigned %d partition(s): %s", len(assigned),
                         ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(assigned)) or "none")

        self._consumer = KafkaConsumer(
            bootstrap_servers=settings.kafka.bootstrap.split(","),
            client_id=f"{settings.kafka.client_id}-history-sink",
            group_id=group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=max_poll_records,
            # The sink may wait minutes for ClickHouse; it keeps polling (paused)
            # so the group keeps it, but a long single insert must not evict it.
            max_poll_interval_ms=600_000,
            # A sink killed with SIGKILL (or on a lost host) keeps its partitions until its session times
            # out: kafka-python 3's default of 45 s left a restarted sink without partitions that long
            # (bench chaos: sink recovery 77 s). Heartbeats come from kafka-python's own thread, so a long
            # insert does not end the session.
            session_timeout_ms=10_000,
            heartbeat_interval_ms=3_000,
            # The sink writes once a second: a fetch that waits for 1 MB (or 200 ms) costs the broker and
            # kafka-python one request per megabyte of reports instead of one per collector flush.
            fetch_min_bytes=1024 * 1024,
            fetch_max_wait_ms=200,
        )
        self._consumer.subscribe(list(topics), listener=Listener())

    def poll(self, timeout_ms: int) -> list[Record]:
        """Records, or ``BrokerUnavailable`` while Kafka does not answer (kafka-python 3 raises its
        connection errors out of ``poll`` when a broker restarts: the sink died of one, in bench chaos)."""
        try:
            batches = self._consumer.poll(timeout_ms=timeout_ms)
        except Exception as exc:
            unavailable = _unavailable(exc)
            if unavailable is None:
                raise
            raise unavailable from exc
        return [Record(m.topic, m.partition, m.offset, m.value) for messages in batches.values() for m in messages]

    def pause_all(self) -> None:
        self._paused = True
        assigned = self._consumer.assignment()
        if assigned:
            self._consumer.pause(*assigned)

    def resume_all(self) -> None:
        if self._paused:
            self._paused = False
            self._consumer.resume(*self._consumer.paused())

    def commit(self, offsets: Mapping[tuple[str, int], int]) -> None:
        from kafka import TopicPartition
        from kafka.structs import OffsetAndMetadata

        if offsets:
            self._consumer.commit({TopicPartition(topic, partition): OffsetAndMetadata(offset, "", -1)
                                   for (topic, partition), offset in offsets.items()})

    def lag(self) -> dict[str, int]:
        """Messages not yet consumed, per topic (end offset minus position)."""
        assigned = list(self._consumer.assignment())
        if not assigned:
            return {}
        ends = self._consumer.end_offsets(assigned)
        out: dict[str, int] = {}
        for tp in assigned:
            position = self._consumer.position(tp)
            out[tp.topic] = out.get(tp.topic, 0) + max(0, int(ends.get(tp, 0)) - int(position or 0))
        return out

    def close(self) -> None:
        self._consumer.close(autocommit=False)


class KafkaDeadLetterPublisher:
    """Publishes dead letters keyed by their source topic and waits for the broker's ack."""

    def __init__(self, settings: Settings) -> None:
        from kafka import KafkaProducer

        self.topic = settings.topics.dead_letter
        self._producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap.split(","),
                                       client_id=f"{settings.kafka.client_id}-history-sink", acks="all")

    def publish(self, letters: Iterable[DeadLetter]) -> None:
        try:
            futures = [self._producer.send(self.topic, key=letter.source_topic.encode(), value=encode(letter))
                       for letter in letters]
            self._producer.flush(timeout=30)
            for future in futures:
                future.get(timeout=30)
        except Exception as exc:
            unavailable = _unavailable(exc)
            if unavailable is None:
                raise
            raise unavailable from exc

    def close(self) -> None:
        self._producer.close(timeout=5)
