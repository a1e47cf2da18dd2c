"""The one module that touches Faust's internals and its loosely typed calls.

``FaustIO`` wraps a ``faust.App`` with typed methods: raw (bytes) topics and
tables, batch agents, timers, signals, straight-to-the-producer sends, the
consumer's assignment and fetch positions, table recovery, and ``TableStore``
(a table written without Faust's per-write machinery). The rest of
``streams/`` calls these methods, so a faust-streaming upgrade that moves a
private attribute or changes a signature breaks here, and
``tests/streams/test_faust_io.py`` says which.

Nothing here runs per report: a send is per record produced, an agent's
handler is called once per batch of Kafka messages.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import faust
from faust.types import TP

log = logging.getLogger("outagewatch.streams")

__all__ = ["TP", "BatchHandler", "DeclaredTopic", "Event", "FaustIO", "Message", "TableStore"]


class Message(Protocol):
    """What the agents read of a Kafka message (``faust.types.Message``)."""

    @property
    def topic(self) -> str: ...
    @property
    def partition(self) -> int: ...
    @property
    def offset(self) -> int: ...
    @property
    def timestamp(self) -> float: ...
    @property
    def value(self) -> bytes | None: ...


class Event(Protocol):
    """One message as an agent's stream hands it over (``faust.types.EventT``); raw topics: value is bytes."""

    @property
    def message(self) -> Message: ...
    @property
    def value(self) -> bytes | None: ...


BatchHandler = Callable[[Sequence[Event]], Awaitable[None]]
Delivery = Awaitable[Any]

# Every topic and table here is bytes in, bytes out: values are msgspec-encoded by their owners.
_RAW: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}


@dataclass(frozen=True)
class DeclaredTopic:
    """A topic Faust would create for the app: an internal agent topic or a table's changelog."""

    name: str
    partitions: int | None
    compacting: bool | None
    deleting: bool | None
    retention_s: float | None
    config: Mapping[str, Any] = field(default_factory=dict)
    changelog: bool = False


class TableStore:
    """``engine.StateStore`` over a Faust table, writing one partition's changelog.

    Writes update the table at once and queue the changelog record;
    ``send_pending`` hands the queue to the producer. It bypasses Faust's
    ``Topic.send`` machinery (channels, buffer, callbacks: ~4x the cost of the
    producer call, and a flush writes every window it touched). The memory
    store keeps no persisted offsets, and the consumer flushes the producer
    before every offset commit, so the changelog is as safe as before.
    """

    def __init__(self, io: FaustIO, table: Any, partition: int) -> None:
        self.io, self.table, self.partition = io, table, partition
        # The memory store under the table: ``data`` is its dict, ``_key_partition`` what a
        # rebalance uses to drop the keys of a revoked partition.
        self.data: Any = table.data
        self.pending: list[tuple[bytes, bytes | None]] = []

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self.data.data.get(key)
        return value

    def put(self, key: bytes, value: bytes) -> None:
        self.data.data[key] = value
        self.data._key_partition[key] = self.partition
        self.pending.append((key, value))

    def delete(self, key: bytes) -> None:
        self.data.data.pop(key, None)
        self.data._key_partition.pop(key, None)
        self.pending.append((key, None))

    async def send_pending(self) -> None:
        """Hand the queued changelog records to the producer: each key's last value only (the changelog
        is compacted, a restore keeps only the last value of a key anyway)."""
        topic: str = self.table.changelog_topic.get_topic_name()
        pending, self.pending = dict(self.pending), []
        producer = self.io.app.producer
        for key, value in pending.items():
            await producer.send(topic, key, value, self.partition, None, None)


class _FirstMessage(faust.Sensor):
    """Calls ``callback`` once, when the consumer hands over the first message of ``topic``.

    A sensor, not the agent: ``take_events`` yields only once a batch is
    buffered, and stamping there would leave the first fetch out of a
    throughput measurement.
    """

    def __init__(self, topic: str, callback: Callable[[], None]) -> None:
        super().__init__()
        self.topic, self.callback, self.fired = topic, callback, False

    def on_message_in(self, tp: TP, offset: int, message: Any) -> None:
        if not self.fired and tp.topic == self.topic:
            self.fired = True
            self.callback()


class FaustIO:
    """Typed access to one ``faust.App``: what ``streams/`` needs of Faust, and nothing it need not know.

    >>> app = faust.App("faust-io-doctest", broker="kafka://127.0.0.1:1")
    >>> io = FaustIO(app)
    >>> io.app_id, io.topic_name(io.raw_topic("client-reports"))
    ('faust-io-doctest', 'client-reports')
    >>> io.changelog_name(io.raw_table("room-windows-v4", partitions=4))
    'faust-io-doctest-room-windows-v4-changelog'
    """

    def __init__(self, app: faust.App) -> None:
        self.app = app

    @property
    def app_id(self) -> str:
        return str(self.app.conf.id)

    def worker(self) -> faust.Worker:
        """The Faust worker that runs the app (``execute_from_commandline``; its ``loop`` for tasks of ours)."""
        # Our logging stays as the CLI set it up (INFO for our lines, WARNING for the client libraries;
        # -v -v for everything): Faust's own set-up would drop the worker's INFO lines after start.
        return faust.Worker(self.app, quiet=True, override_logging=False)

    # -- declaring ------------------------------------------------------------------------------------

    def raw_topic(self, name: str, *, partitions: int | None = None, internal: bool = False) -> Any:
        """A bytes topic (no Faust codec); ``internal`` ones Faust creates with ``partitions``."""
        return self.app.topic(name, partitions=partitions, internal=internal, **_RAW)

    def raw_table(self, name: str, partitions: int) -> Any:
        """A bytes table (memory store, changelog ``<app_id>-<name>-changelog``)."""
        # key_type/value_type bytes is what makes a table use the raw codec.
        return self.app.Table(name, partitions=partitions, key_type=bytes, value_type=bytes)

    def batch_agent(self, channel: Any, name: str, batch_max: int, within_s: float, handle: BatchHandler) -> None:
        """Run ``handle`` on every batch of up to ``batch_max`` events of ``channel`` (waiting ``within_s``)."""

        async def agent(stream: Any) -> None:
            batches: AsyncIterator[Sequence[Event]] = stream.take_events(batch_max, within=within_s)
            async for events in batches:
                await handle(events)

        agent.__name__ = agent.__qualname__ = name.replace("-", "_")
        self.app.agent(channel, name=name)(agent)

    def every(self, seconds: float, name: str, tick: Callable[[], Awaitable[None]]) -> None:
        """A Faust timer: ``tick`` every ``seconds`` on the worker's loop, once the app has started."""
        self.app.timer(seconds, name=name)(tick)

    def on_first_message(self, topic: str, callback: Callable[[], None]) -> None:
        self.app.sensors.add(_FirstMessage(topic, callback))

    def on_rebalance(self, callback: Callable[[set[TP]], Awaitable[None]]) -> None:
        """``callback(partitions)`` on every revocation and on every assignment."""

        async def relay(sender: Any, tps: Iterable[TP] = (), **_: Any) -> None:
            await callback(set(tps))

        self._connect(self.app.on_partitions_revoked, relay)
        self._connect(self.app.on_partitions_assigned, relay)

    def on_assigned(self, callback: Callable[[], Awaitable[None]]) -> None:
        async def relay(sender: Any, *_: Any, **__: Any) -> None:
            await callback()

        self._connect(self.app.on_partitions_assigned, relay)

    def on_shutdown(self, callback: Callable[[], Awaitable[None]]) -> None:
        async def relay(sender: Any, **_: Any) -> None:
            await callback()

        self._connect(self.app.on_before_shutdown, relay)

    @staticmethod
    def _connect(signal: Any, receiver: Callable[..., Awaitable[None]]) -> None:
        # Signals hold weak references by default: the relays above live nowhere else.
        signal.connect(receiver, weak=False)

    # -- producing ------------------------------------------------------------------------------------

    async def send(self, topic: str, key: bytes, value: bytes, partition: int | None = None) -> Delivery:
        """Hand one record to the producer (not through ``Topic.send``); returns its delivery future."""
        delivery: Delivery = await self.app.producer.send(topic, key, value, partition, None, None)
        return delivery

    async def send_many(self, topic: str, records: Iterable[tuple[bytes, bytes]]) -> list[Delivery]:
        """``send`` for each ``(key, value)``, in order; the delivery futures."""
        send = self.app.producer.send
        return [await send(topic, key, value, None, None, None) for key, value in records]

    async def send_through(self, topic: Any, key: bytes, value: bytes) -> Delivery:
        """Through Faust's ``Topic.send`` (rare records: dead letters, alerts); its delivery future."""
        delivery: Delivery = await topic.send(key=key, value=value)
        return delivery

    def topic_name(self, topic: Any) -> str:
        return str(topic.get_topic_name())

    def changelog_name(self, table: Any) -> str:
        return str(table.changelog_topic.get_topic_name())

    # -- what Faust would create ------------------------------------------------------------------------

    @property
    def default_partitions(self) -> int:
        return int(self.app.conf.topic_partitions)

    @property
    def leader_topic(self) -> str | None:
        """The assignor's leader topic (None when the app disables it)."""
        return None if self.app.conf.topic_disable_leader else f"{self.app_id}-__assignor-__leader"

    def declared_topics(self) -> list[DeclaredTopic]:
        """The internal topics of the app's agents and the changelogs of its tables, as Faust declares them."""
        declared: list[DeclaredTopic] = []
        channels: list[Any] = [agent.channel for agent in self.app.agents.values() if agent.channel.internal]
        changelogs: list[Any] = [table.changelog_topic for table in self.app.tables.values()]
        for topics, changelog in ((channels, False), (changelogs, True)):
            for topic in topics:
                retention = topic.retention
                seconds = retention.total_seconds() if hasattr(retention, "total_seconds") else retention
                declared += [DeclaredTopic(name, topic.partitions, topic.compacting, topic.deleting, seconds,
                                           dict(topic.config or {}), changelog) for name in topic.topics]
        return declared

    def subscribed_topics(self) -> list[str]:
        """Every topic the app's agents read (inputs and internal ones)."""
        return sorted({name for agent in self.app.agents.values() for name in agent.channel.topics})

    # -- tables ---------------------------------------------------------------------------------------

    def table_store(self, table: Any, partition: int) -> TableStore:
        return TableStore(self, table, partition)

    def table_value(self, table: Any, key: bytes) -> bytes | None:
        """The table's value at ``key`` as recovered or written here (no Faust key/value codecs)."""
        value: bytes | None = table.data.data.get(key)
        return value

    def in_recovery(self) -> bool:
        return bool(self.app.in_recovery)

    def recovery_remaining(self) -> int:
        """Changelog records the running table recovery has still to read (0 when none is known yet)."""
        tables: Any = self.app.tables
        try:
            return int(tables.recovery.active_remaining_total())
        except Exception:  # noqa: BLE001 - no highwaters read yet: nothing known to be left
            return 0

    # -- consuming ------------------------------------------------------------------------------------

    def assignment(self) -> set[TP]:
        """The partitions assigned to this worker at the last rebalance (every topic)."""
        assigned: set[TP] = self.app.consumer.assignment()
        return assigned

    def assigned(self, topic: str) -> list[int]:
        return sorted(tp.partition for tp in self.assignment() if tp.topic == topic)

    def fetching(self) -> bool:
        """Whether the consumer is fetching: no table recovery running and flow control active."""
        return not self.app.in_recovery and self.app.flow_control.is_active()

    def highwater(self, topic: str, partition: int) -> int | None:
        """The partition's high watermark as last fetched (None: not fetched yet, or no consumer)."""
        try:
            highwater: int | None = self.app.consumer.highwater(TP(topic, partition))
        except Exception:  # noqa: BLE001 - no fetch yet, or no consumer: nothing known to be waiting
            return None
        return highwater
