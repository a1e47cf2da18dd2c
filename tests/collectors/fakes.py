"""A small fake ``collectors.sink.Producer``: the test decides when, and how, the broker answers."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from collectors.sink import Acks, ProducerSettings


class FakeFuture:
    """kafka-python's ``FutureRecordMetadata``: callbacks run when the broker answers."""

    def __init__(self) -> None:
        self._ok: list[Callable[[Any], None]] = []
        self._failed: list[Callable[[BaseException], None]] = []

    def add_callback(self, callback: Callable[[Any], None]) -> FakeFuture:
        self._ok.append(callback)
        return self

    def add_errback(self, errback: Callable[[BaseException], None]) -> FakeFuture:
        self._failed.append(errback)
        return self

    def succeed(self) -> None:
        for callback in self._ok:
            callback(None)

    def fail(self, error: BaseException) -> None:
        for errback in self._failed:
            errback(error)


@dataclass
class FakeProducer:
    """Records every ``send``; nothing is acknowledged until the test says so."""

    partitions: int = 2
    # Raised by send() itself, as kafka-python does when its buffer or metadata wait times out.
    refuse_sends: BaseException | None = None
    sent: list[tuple[str, bytes, bytes]] = field(default_factory=list)
    waiting: list[FakeFuture] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, settings: ProducerSettings) -> FakeProducer:
        """The ``make_producer`` factory ``KafkaSink`` takes."""
        return self

    def send(self, topic: str, value: bytes, key: bytes, acks: Acks) -> None:
        if self.refuse_sends is not None:
            raise self.refuse_sends
        future = FakeFuture().add_callback(acks.ok).add_errback(acks.failed)
        with self._lock:
            self.sent.append((topic, key, value))
            self.waiting.append(future)

    def partitions_for(self, topic: str) -> set[int]:
        return set(range(self.partitions))

    def partition_count(self, topic: str) -> int:
        return self.partitions

    def close(self, timeout: float) -> None:
        pass

    def acknowledge_all(self) -> None:
        for future in self._answer():
            future.succeed()

    def fail_all(self, error: BaseException) -> None:
        for future in self._answer():
            future.fail(error)

    def _answer(self) -> list[FakeFuture]:
        with self._lock:
            futures, self.waiting = self.waiting, []
        return futures
