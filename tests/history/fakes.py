"""Small fakes of the sink's three edges (``Consumer``, ``TableWriter``, ``DeadLetterPublisher``).

They keep one shared ``events`` log, so a test can read the order in which
ClickHouse acknowledged rows and Kafka offsets were committed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from core.schemas import DeadLetter
from history.batch import WindowKey
from history.kafka_edge import Record
from history.rows import COLUMNS, Row

Event = tuple[object, ...]
TopicPartition = tuple[str, int]


@dataclass
class FakeGroup:
    """A consumer group's state on the broker: each partition's log and the committed offsets."""

    logs: dict[TopicPartition, list[bytes]] = field(default_factory=dict)
    committed: dict[TopicPartition, int] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)

    def produce(self, topic: str, partition: int, value: bytes) -> None:
        self.logs.setdefault((topic, partition), []).append(value)


class FakeConsumer:
    """A group member: reads every partition from its committed offset; nothing while paused."""

    def __init__(self, group: FakeGroup, max_records: int = 1000,
                 on_commit: Callable[[Mapping[TopicPartition, int]], None] | None = None) -> None:
        self.group = group
        self.positions = dict(group.committed)
        self.max_records = max_records
        self.on_commit = on_commit
        self.paused = False
        self.polls_while_paused = 0
        # Partitions held per topic: every partition of the group's logs (one member).
        self.assigned: dict[str, int] | None = {}
        for topic, _ in group.logs:
            self.assigned[topic] = self.assigned.get(topic, 0) + 1

    def poll(self, timeout_ms: int) -> list[Record]:
        if self.paused:
            self.polls_while_paused += 1
            return []
        records: list[Record] = []
        for (topic, partition), log in sorted(self.group.logs.items()):
            position = self.positions.get((topic, partition), 0)
            taken = log[position:position + self.max_records - len(records)]
            records += [Record(topic, partition, position + at, value) for at, value in enumerate(taken)]
            self.positions[(topic, partition)] = position + len(taken)
        return records

    def pause_all(self) -> None:
        self.paused = True
        self.group.events.append(("pause",))

    def resume_all(self) -> None:
        self.paused = False
        self.group.events.append(("resume",))

    def commit(self, offsets: Mapping[TopicPartition, int]) -> None:
        if self.on_commit is not None:
            self.on_commit(offsets)
        self.group.committed.update(offsets)
        self.group.events.append(("commit", dict(offsets)))

    def lag(self) -> dict[str, int]:
        return {}

    def close(self) -> None:
        self.group.events.append(("close",))


class FakeClickHouse:
    """Stores inserted rows per table; ``outage`` refuses inserts as a server that is down does."""

    def __init__(self, events: list[Event]) -> None:
        self.events = events
        self.stored: dict[str, list[Row]] = {}
        # Insert attempts still to refuse, per table (None: every table).
        self.outage: dict[str | None, int] = {}
        self.on_refused: Callable[[], None] = lambda: None

    def go_down(self, attempts: int, table: str | None = None) -> None:
        self.outage[table] = attempts

    def insert(self, table: str, rows: Sequence[Row]) -> None:
        for down in (table, None):
            if self.outage.get(down, 0) > 0:
                self.outage[down] -= 1
                self.events.append(("refused", table))
                self.on_refused()
                raise ConnectionRefusedError(111, "Connection refused")
        self.stored.setdefault(table, []).extend(rows)
        self.events.append(("insert", table, len(rows)))

    def recent_windows(self, horizon_seconds: int) -> list[WindowKey]:
        scope, key, start = (COLUMNS["room_health"].index(name) for name in ("scope", "key", "window_start"))
        return [(str(row[scope]), str(row[key]), int(row[start]))
                for row in self.stored.get("room_health", [])]

    def column(self, table: str, name: str) -> list[object]:
        at = COLUMNS[table].index(name)
        return [row[at] for row in self.stored.get(table, [])]


@dataclass
class FakePublisher:
    """The dead-letter producer: acknowledges every letter at once."""

    events: list[Event]
    topic: str = "dead-letter"
    published: list[DeadLetter] = field(default_factory=list)

    def publish(self, letters: Sequence[DeadLetter]) -> None:
        self.published.extend(letters)
        self.events.append(("dead-letters", len(letters)))
