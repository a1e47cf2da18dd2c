"""The sink's wait for its topics' metadata before it joins its group (pure: no broker needed)."""

from __future__ import annotations

from history.kafka_edge import _await_topics


class _Metadata:
    """Partitions per topic as the broker lists them, call after call (a new topic shows up late)."""

    def __init__(self, answers: dict[str, list[set[int]]]) -> None:
        self.answers = answers
        self.asked: list[str] = []

    def partitions_for_topic(self, topic: str) -> set[int]:
        self.asked.append(topic)
        answers = self.answers[topic]
        return answers.pop(0) if len(answers) > 1 else answers[0]


def test_waits_until_every_topic_has_partitions() -> None:
    # "reports" is listed with no partitions twice (just created, not yet propagated): joining then
    # would assign none of them until the next metadata refresh.
    metadata = _Metadata({"reports": [set(), set(), {0, 1}], "alerts": [{0}]})
    sleeps: list[float] = []
    assert _await_topics(metadata, ["reports", "alerts"], timeout_s=10, sleep=sleeps.append) == []
    assert metadata.asked == ["reports", "alerts", "reports", "reports"]
    assert len(sleeps) == 2


def test_gives_up_after_the_timeout_and_names_what_is_missing() -> None:
    metadata = _Metadata({"reports": [set()], "alerts": [{0}]})
    assert _await_topics(metadata, ["reports", "alerts"], timeout_s=0.0, sleep=lambda s: None) == ["reports"]
