"""The sink rides out a broker that does not answer: kafka-python's connection errors become a pause, not a crash."""

from __future__ import annotations

import threading
from types import SimpleNamespace

from kafka import errors

from core.config import TopicSettings
from core.health import Health
from core.timeutil import ManualClock
from history.kafka_edge import BrokerUnavailable, Record, _unavailable
from history.retry import is_retryable
from history.rows import routes_for
from history.sink import Sink, SinkPolicy


def test_connection_errors_are_unavailability_and_retryable_and_bugs_are_not() -> None:
    refused = _unavailable(errors.KafkaConnectionError("111 ECONNREFUSED"))
    assert isinstance(refused, BrokerUnavailable) and is_retryable(refused)
    assert _unavailable(errors.KafkaTimeoutError("flush")) is not None
    assert _unavailable(errors.UnknownTopicOrPartitionError()) is not None  # retriable in kafka-python
    assert _unavailable(ValueError("a bug")) is None
    assert _unavailable(errors.IllegalStateError("not subscribed")) is None


class FlakyBroker:
    """Refuses ``down`` polls (a broker restarting), then hands over one record."""

    assigned: dict[str, int] | None = {"client-reports": 1}

    def __init__(self, down: int) -> None:
        self.down = down
        self.polls = 0

    def poll(self, timeout_ms: int) -> list[Record]:
        self.polls += 1
        if self.polls <= self.down:
            raise BrokerUnavailable("KafkaConnectionError: 111 ECONNREFUSED")
        return [Record("client-reports", 0, 7, b'{"reports": []}')] if self.polls == self.down + 1 else []

    def lag(self) -> dict[str, int]:
        raise BrokerUnavailable("KafkaConnectionError: 111 ECONNREFUSED")


def test_the_sink_loop_keeps_polling_while_kafka_is_down_and_says_so() -> None:
    clock = ManualClock(1_795_323_600_000)
    health = Health("history sink", clock)
    broker = FlakyBroker(down=3)
    publisher = SimpleNamespace(topic="dead-letter")
    sink = Sink(broker, writer=None, publisher=publisher, routes=routes_for(TopicSettings()),  # type: ignore[arg-type]
                policy=SinkPolicy(), clock=clock, health=health)
    stop = threading.Event()
    assert sink._poll(10, stop) == []
    verdict = health.verdict()
    assert verdict.live and not verdict.ready and "Kafka does not answer" in verdict.reason
    assert sink._poll(10, stop) == [] and sink._poll(10, stop) == []
    assert [record.offset for record in sink._poll(10, stop)] == [7]
    assert sink._kafka_down_since is None
