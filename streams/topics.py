"""Every topic a worker's Faust app reads or writes, created and usable before the app starts.

Faust creates its own topics (table changelogs, the internal progress and
decisions topics, the assignor's leader topic) a moment before its consumer
joins the group. A KRaft broker can still list a topic created that moment
ago as unknown; Faust's assignor then ignores it ("Ignoring missing topic"),
its partitions are assigned to nobody, and aiokafka does not look again
until its next metadata refresh. The agents on those topics (scope merge,
alerting) sit idle, and anything waiting on them waits too: a worker that
starts, logs its topics and then does nothing. So the worker creates them
itself, with the settings Faust would give them, and waits until the broker
lists a leader for every partition before Faust starts.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from core.config import Settings
from core.kafka_admin import await_topics, ensure_topic_configs, ensure_topics, unready_topics
from streams.faust_io import FaustIO

log = logging.getLogger("outagewatch.streams")

TOPIC_WAIT_SECONDS = 60.0

# Table changelogs: what a replacement worker reads its tables back from. In segments that roll every
# minute (the log cleaner never compacts the open segment, and Kafka's default segments did not roll in
# hours), compacted once a tenth is stale, delete markers of closed windows kept ten minutes. With the
# broker's defaults a worker killed after 6 minutes at 10k reports/s read back every write since the start:
# 586,890 records, 266 s of recovery (bench chaos).
CHANGELOG_CONFIG = {"segment.ms": "60000", "min.cleanable.dirty.ratio": "0.1", "delete.retention.ms": "600000"}


@dataclass(frozen=True)
class TopicSpec:
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


def topic_config(compacting: bool | None, deleting: bool | None, retention_s: float | None,
                 extra: dict[str, Any] | None = None) -> dict[str, str]:
    """The Kafka topic config Faust gives a topic it declares (``cleanup.policy``, ``retention.ms``).

    >>> topic_config(True, None, None)
    {'cleanup.policy': 'compact'}
    >>> topic_config(True, True, 3600.0, {"segment.ms": 60000})
    {'cleanup.policy': 'compact,delete', 'retention.ms': '3600000', 'segment.ms': '60000'}
    """
    config: dict[str, str] = {}
    policies = [name for name, wanted in (("compact", compacting), ("delete", deleting)) if wanted]
    if policies:
        config["cleanup.policy"] = ",".join(policies)
    if retention_s:
        config["retention.ms"] = str(int(retention_s * 1000))
    config.update({key: str(value) for key, value in (extra or {}).items()})
    return config


def faust_topics(io: FaustIO) -> dict[str, TopicSpec]:
    """The topics Faust would create for the app: its internal agent topics, table changelogs, leader topic."""
    specs: dict[str, TopicSpec] = {}
    for topic in io.declared_topics():
        config = topic_config(topic.compacting, topic.deleting, topic.retention_s, dict(topic.config))
        if topic.changelog:
            config = {**config, **CHANGELOG_CONFIG}
        specs[topic.name] = TopicSpec(topic.partitions or io.default_partitions, config)
    if io.leader_topic is not None:
        specs[io.leader_topic] = TopicSpec(1)
    return specs


def prepare(settings: Settings, io: FaustIO, also: Iterable[str] = (), timeout_s: float = TOPIC_WAIT_SECONDS) -> None:
    """Create Faust's topics for the app and wait until they, ``also`` and every input are usable.

    Raises ``TopicsNotReady`` naming what the broker still lacks after ``timeout_s``.
    """
    specs = faust_topics(io)
    configs = {name: spec.config for name, spec in specs.items()}
    created = ensure_topics(settings.kafka.bootstrap, {name: spec.partitions for name, spec in specs.items()},
                            settings.kafka.replication_factor, configs)
    if created:
        log.info("worker: created %d topic(s) of its own: %s", len(created), ", ".join(sorted(created)))
    changed = ensure_topic_configs(settings.kafka.bootstrap, {name: config for name, config in configs.items()
                                                              if name not in created})
    if changed:
        log.info("worker: updated the settings of %d topic(s) of its own: %s", len(changed), ", ".join(changed))
    topics = sorted({*specs, *io.subscribed_topics(), *also})
    missing = await_topics(unready_topics(settings.kafka.bootstrap), topics, timeout_s, "worker")
    if missing:
        raise TopicsNotReady(missing, timeout_s)
    log.info("worker: all %d topics it uses have a leader for every partition", len(topics))


class TopicsNotReady(RuntimeError):
    """The broker did not list some topic as usable in time; the message says which and why."""

    def __init__(self, missing: dict[str, str], timeout_s: float) -> None:
        self.missing = missing
        super().__init__(f"after {timeout_s:.0f}s the broker still does not list these topics as usable: "
                         + "; ".join(f"{topic}: {why}" for topic, why in sorted(missing.items()))
                         + ". Is Kafka healthy (`outagewatch stack status`)?")
