"""The Kafka administration production code needs: create our topics, count their partitions,
wait until the broker lists them as usable.

The collector, the workers and the sink all start by making sure the topics
they use exist (a fresh cluster has none) and by asking how many partitions
they have (the worker sizes its tables from it). The local stack uses the
same functions; it does not own them.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from core.config import Settings

log = logging.getLogger("outagewatch.kafka")


def ensure_topics(bootstrap: str, partitions_by_topic: dict[str, int], replication: int = 1,
                  configs: Mapping[str, Mapping[str, str]] | None = None) -> list[str]:
    """Create missing topics (with ``configs[topic]``, e.g. ``cleanup.policy``); returns the names created.

    Existing topics are left alone.
    """
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    configs = configs or {}
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    try:
        existing = set(admin.list_topics())
        missing = [NewTopic(name, count, replication, topic_configs=dict(configs.get(name, {})))
                   for name, count in partitions_by_topic.items() if name not in existing]
        if not missing:
            return []
        # Another process may create the same topic between our list and create.
        with contextlib.suppress(TopicAlreadyExistsError):
            admin.create_topics(missing)
        return [topic.name for topic in missing]
    finally:
        admin.close()


def ensure_topic_configs(bootstrap: str, configs: Mapping[str, Mapping[str, str]]) -> list[str]:
    """Set ``configs[topic]`` where the broker has another value (a topic made before a setting existed).

    Returns the topics changed. Settings not named are left as they are.
    """
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    wanted = {topic: dict(config) for topic, config in configs.items() if config}
    if not wanted:
        return []
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=15000)
    try:
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic) for topic in wanted])
        current = described.get("topic", {})
        stale = {topic: config for topic, config in wanted.items()
                 if any((current.get(topic, {}).get(key) or {}).get("value") != value for key, value in config.items())}
        if stale:
            # raise_on_unknown off: kafka-python 3.0.12 checks the keys against the topic's dynamic
            # configs, which lists only keys already overridden, so a first override was refused.
            admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic, configs=config)
                                 for topic, config in stale.items()], raise_on_unknown=False)
        return sorted(stale)
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


# A topic is usable once the broker's metadata lists it with a leader for every partition.
# Right after it is created (here, or by Faust), a KRaft broker can still answer "unknown
# topic" for a moment; a group member that joins then is assigned none of its partitions,
# and its clients do not ask again until their next metadata refresh (kafka-python and
# aiokafka: every 5 minutes by default).
TopicProbe = Callable[[Sequence[str]], dict[str, str]]


def unready_topics(bootstrap: str) -> TopicProbe:
    """A probe: ``topics`` -> ``{topic: why it is not usable yet}`` as the broker's metadata says."""

    def probe(topics: Sequence[str]) -> dict[str, str]:
        from kafka.admin import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
        try:
            return topic_problems(admin.describe_topics(list(topics)), topics)
        finally:
            admin.close()

    return probe


def topic_problems(described: Iterable[Mapping[str, Any]], topics: Iterable[str]) -> dict[str, str]:
    """What keeps each topic from being usable, from a metadata answer (kafka-python's ``describe_topics``).

    >>> answer = [{"name": "a", "error_code": 0, "partitions": [{"partition_index": 0, "leader_id": 1}]},
    ...           {"name": "b", "error_code": 0, "partitions": [{"partition_index": 1, "leader_id": -1}]},
    ...           {"name": "c", "error_code": 3, "partitions": []}]
    >>> topic_problems(answer, ["a", "b", "c", "d"])
    {'b': 'partition 1 has no leader yet', 'c': 'not in the metadata yet (error 3)', 'd': 'not in the metadata yet'}
    """
    by_name = {str(entry.get("name")): entry for entry in described}
    problems: dict[str, str] = {}
    for topic in topics:
        entry = by_name.get(topic)
        if entry is None:
            problems[topic] = "not in the metadata yet"
        elif entry.get("error_code"):
            problems[topic] = f"not in the metadata yet (error {entry['error_code']})"
        elif not entry.get("partitions"):
            problems[topic] = "listed without partitions"
        else:
            leaderless = sorted(int(p["partition_index"]) for p in entry["partitions"] if int(p["leader_id"]) < 0)
            if leaderless:
                problems[topic] = f"partition {', '.join(map(str, leaderless))} has no leader yet"
    return problems


def await_topics(probe: TopicProbe, topics: Sequence[str], timeout_s: float, what: str = "",
                 sleep: Callable[[float], None] = time.sleep, monotonic: Callable[[], float] = time.monotonic,
                 log_every_s: float = 5.0) -> dict[str, str]:
    """Wait until ``probe`` finds every topic usable; returns the ones still not usable, with why.

    ``what`` names the waiting process in the log line it writes every ``log_every_s`` while it waits.
    """
    started = monotonic()
    next_log = started + log_every_s
    pending = list(topics)
    problems: dict[str, str] = {}
    while pending:
        try:
            problems = probe(pending)
        except Exception as exc:  # noqa: BLE001 - a broker that does not answer yet: keep waiting
            problems = dict.fromkeys(pending, f"metadata request failed: {type(exc).__name__}: {exc}")
        pending = [topic for topic in pending if topic in problems]
        now = monotonic()
        if not pending or now - started >= timeout_s:
            break
        if now >= next_log:
            log.info("%s: still waiting after %.0fs for Kafka topic(s) to be usable: %s", what or "kafka",
                     now - started, "; ".join(f"{topic}: {problems[topic]}" for topic in pending))
            next_log = now + log_every_s
        sleep(0.2)
    return {topic: problems[topic] for topic in pending}
