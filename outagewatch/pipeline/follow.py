"""Following a run's output topics from a plain consumer (the demo view, the benchmarks)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any


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
