"""Following a run's output topics from a plain consumer (the demo view, the benchmarks)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import Any, Self

from core import schemas

log = logging.getLogger(__name__)


def assign_topics(consumer: Any, topics: Sequence[str], timeout_s: float = 30.0) -> list[Any]:
    """Assign every partition of ``topics`` to ``consumer`` and return them.

    Topics created a moment ago are not in the client's metadata yet; without
    waiting, the consumer would be assigned nothing and follow nothing, silently.
    """
    from kafka import TopicPartition

    deadline = time.monotonic() + timeout_s
    while not all(consumer.partitions_for_topic(topic) for topic in topics):
        if time.monotonic() > deadline:
            raise RuntimeError(f"no partition metadata for {list(topics)} after {timeout_s:.0f} s")
        consumer.topics()  # refreshes the metadata
        time.sleep(0.2)
    partitions = [TopicPartition(topic, p) for topic in topics for p in sorted(consumer.partitions_for_topic(topic))]
    consumer.assign(partitions)
    return partitions


class RunFollower:
    """A background thread following a run's ``room-health`` and ``alerts`` topics.

    Subclasses say what to do with each decoded alert and window
    (``on_alert``, ``on_window``) and, optionally, between polls (``on_tick``).
    ``from_start``: read the topics from their beginning (a run's own topics)
    rather than from their end at construction (only what comes next).
    """

    name = "follower"

    def __init__(self, settings: Any, from_start: bool) -> None:
        from kafka import KafkaConsumer

        self.settings = settings
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._consumer = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap, enable_auto_commit=False,
                                       group_id=None, max_poll_records=5000)
        partitions = assign_topics(self._consumer, (settings.topics.room_health, settings.topics.alerts))
        if from_start:
            self._consumer.seek_to_beginning(*partitions)
        else:
            self._consumer.seek_to_end(*partitions)
            for partition in partitions:
                self._consumer.position(partition)  # resolve "the end" now, not at the first poll
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._consumer.close()

    def on_alert(self, alert: schemas.Alert, arrived_ms: int) -> None:
        """Called for every alert event, in topic order per partition."""

    def on_window(self, window: schemas.RoomHealth, arrived_ms: int) -> None:
        """Called for every closed window of any scope."""

    def on_tick(self) -> None:
        """Called after every poll."""

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                for partition, records in self._consumer.poll(timeout_ms=200).items():
                    arrived = int(time.time() * 1000)
                    for record in records:
                        self._apply(partition.topic, record.value, arrived)
                self.on_tick()
            except Exception as exc:  # noqa: BLE001 - a follower hiccup must not end the run it watches
                log.warning("%s: %s", self.name, exc)
                time.sleep(0.5)

    def _apply(self, topic: str, value: bytes, arrived_ms: int) -> None:
        if schemas.is_event_time_mark(value):
            return
        try:
            if topic == self.settings.topics.alerts:
                self.on_alert(schemas.decode(value, schemas.Alert), arrived_ms)
            else:
                self.on_window(schemas.decode(value, schemas.RoomHealth), arrived_ms)
        except schemas.SchemaError as exc:
            log.warning("%s: undecodable message on %s: %s", self.name, topic, exc)
