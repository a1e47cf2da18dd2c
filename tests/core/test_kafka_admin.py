"""Waiting until the broker lists topics as usable (a fake probe and clock), and topic settings (real broker)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from core.kafka_admin import await_topics, ensure_topic_configs


class _Broker:
    """What the broker's metadata says of each topic, call after call: a new topic shows up late."""

    def __init__(self, answers: dict[str, list[str | None]]) -> None:
        self.answers = answers
        self.asked: list[list[str]] = []

    def __call__(self, topics: Sequence[str]) -> dict[str, str]:
        self.asked.append(list(topics))
        problems = {}
        for topic in topics:
            answers = self.answers[topic]
            problem = answers.pop(0) if len(answers) > 1 else answers[0]
            if problem is not None:
                problems[topic] = problem
        return problems


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_waits_until_every_topic_is_usable_and_stops_asking_about_ready_ones() -> None:
    # "decisions" was created a moment ago (by Faust): unknown twice, then leaderless, then usable.
    broker = _Broker({"decisions": ["not in the metadata yet", "not in the metadata yet",
                                    "partition 0 has no leader yet", None], "reports": [None]})
    clock = _Clock()
    assert await_topics(broker, ["reports", "decisions"], 10, sleep=clock.sleep, monotonic=lambda: clock.now) == {}
    assert broker.asked == [["reports", "decisions"], ["decisions"], ["decisions"], ["decisions"]]


def test_gives_up_after_the_timeout_and_says_why_each_is_not_usable() -> None:
    broker = _Broker({"decisions": ["partition 0 has no leader yet"], "reports": [None]})
    clock = _Clock()
    missing = await_topics(broker, ["reports", "decisions"], 1.0, sleep=clock.sleep, monotonic=lambda: clock.now)
    assert missing == {"decisions": "partition 0 has no leader yet"}
    assert 1.0 <= clock.now <= 1.4


def test_a_broker_that_does_not_answer_is_waited_for_with_its_error() -> None:
    def failing(topics: Sequence[str]) -> dict[str, str]:
        raise ConnectionError("refused")

    clock = _Clock()
    missing = await_topics(failing, ["reports"], 0.5, sleep=clock.sleep, monotonic=lambda: clock.now)
    assert missing == {"reports": "metadata request failed: ConnectionError: refused"}


def test_a_topic_made_without_a_setting_gets_it_on_the_real_broker(
        topic_factory: Callable[..., str], kafka_bootstrap: str) -> None:
    # The worker sets its changelogs' compaction on topics made before the setting existed.
    from kafka.admin import ConfigResource, ConfigResourceType, KafkaAdminClient

    topic = topic_factory("configs")
    wanted = {"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1"}
    assert ensure_topic_configs(kafka_bootstrap, {topic: wanted}) == [topic]
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    try:
        described = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])["topic"][topic]
    finally:
        admin.close()
    assert {key: described[key]["value"] for key in wanted} == wanted
    assert ensure_topic_configs(kafka_bootstrap, {topic: wanted}) == []  # nothing stale the second time
