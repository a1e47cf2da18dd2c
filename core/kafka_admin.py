"""The Kafka administration production code needs: create our topics, count their partitions.

The collector, the workers and the sink all start by making sure the topics
they use exist (a fresh cluster has none) and by asking how many partitions
they have (the worker sizes its tables from it). The local stack uses the
same functions; it does not own them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

from core.config import Settings


def ensure_topics(bootstrap: str, partitions_by_topic: dict[str, int], replication: int = 1) -> list[str]:
    """Create missing topics; returns the names created. Existing topics are left alone."""
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    try:
        existing = set(admin.list_topics())
        missing = [NewTopic(name, count, replication) for name, count in partitions_by_topic.items()
                   if name not in existing]
        if not missing:
            return []
        # Another process may create the same topic between our list and create.
        with contextlib.suppress(TopicAlreadyExistsError):
            admin.create_topics(missing)
        return [topic.name for topic in missing]
    finally:
        admin.close()


def partition_counts(bootstrap: str, topics: Iterable[str], default: int) -> list[int]:
    """Each topic's partition count as the broker lists it (``default`` for one it does not list yet)."""
    from kafka import KafkaConsumer

    consumer = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        return [len(consumer.partitions_for_topic(topic) or ()) or default for topic in topics]
    finally:
        consumer.close()


def ensure_and_count(settings: Settings, create: Iterable[str], count: Iterable[str]) -> list[int]:
    """Create the topics ``create`` names (with the configured partitions); count those ``count`` names."""
    kafka = settings.kafka
    ensure_topics(kafka.bootstrap, dict.fromkeys(create, kafka.partitions), kafka.replication_factor)
    return partition_counts(kafka.bootstrap, count, kafka.partitions)
