"""The sink's pure core: what is buffered, when to flush, what to commit.

No Kafka or ClickHouse here; ``history.sink`` drives it.

>>> policy = BatchPolicy(max_rows=3, max_seconds=1.0)
>>> batch = PendingBatch()
>>> batch.add("reports", [(1,), (2,)], Origin("client-reports", 0, 41), now_ms=1_000)
>>> batch.due(policy, now_ms=1_500), batch.due(policy, now_ms=2_000)
(False, True)
>>> batch.add("reports", [(3,)], Origin("client-reports", 0, 42), now_ms=1_600)
>>> batch.due(policy, now_ms=1_600), batch.offsets_to_commit()
(True, {('client-reports', 0): 43})
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from core.schemas import DeadLetter
from history.rows import Row


class Origin(NamedTuple):
    """Where a row came from: for dead letters and for the offset to commit."""

    topic: str
    partition: int
    offset: int


@dataclass(frozen=True)
class BatchPolicy:
    """Flush when this many rows are buffered or the oldest is this old."""

    max_rows: int = 50_000
    max_seconds: float = 1.0


@dataclass
class PendingBatch:
    """Rows per table, dead letters to publish, and the Kafka offsets they cover.

    A table's rows are cleared as soon as ClickHouse acknowledged them, so a
    retry after a partial flush never writes a table twice; offsets are
    committed only when every table and every dead letter is durable.
    """

    rows: dict[str, list[Row]] = field(default_factory=dict)
    origins: dict[str, list[Origin]] = field(default_factory=dict)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    opened_ms: int | None = None
    row_count: int = 0

    def add(self, table: str, rows: list[Row], origin: Origin, now_ms: int) -> None:
        if rows:
            self.rows.setdefault(table, []).extend(rows)
            self.origins.setdefault(table, []).extend([origin] * len(rows))
            self.row_count += len(rows)
        self.consumed(origin, now_ms)

    def add_dead_letter(self, letter: DeadLetter, origin: Origin, now_ms: int) -> None:
        self.dead_letters.append(letter)
        self.consumed(origin, now_ms)

    def consumed(self, origin: Origin, now_ms: int) -> None:
        """The message at ``origin`` is fully represented in this batch."""
        if self.opened_ms is None:
            self.opened_ms = now_ms
        tp = (origin.topic, origin.partition)
        self.next_offsets[tp] = max(self.next_offsets.get(tp, 0), origin.offset + 1)

    def due(self, policy: BatchPolicy, now_ms: int) -> bool:
        if self.opened_ms is None:
            return False
        return self.row_count >= policy.max_rows or now_ms - self.opened_ms >= policy.max_seconds * 1000

    def tables(self) -> list[str]:
        """Tables with rows waiting, ``dead_letters`` last (row rejections land there)."""
        return sorted((t for t, rows in self.rows.items() if rows), key=lambda t: (t == "dead_letters", t))

    def written(self, table: str) -> None:
        self.row_count -= len(self.rows.get(table, ()))
        self.rows.pop(table, None)
        self.origins.pop(table, None)

    def offsets_to_commit(self) -> dict[tuple[str, int], int]:
        return dict(self.next_offsets)

    def is_empty(self) -> bool:
        return self.opened_ms is None

    def clear(self) -> None:
        self.rows.clear()
        self.origins.clear()
        self.dead_letters.clear()
        self.next_offsets.clear()
        self.opened_ms = None
        self.row_count = 0


WindowKey = tuple[str, str, int]


class RecentWindows:
    """The (scope, key, window_start) of room-health windows already sent to ClickHouse.

    The rollup materialized views add up every inserted row, so a window
    re-published after a crash (at-least-once) would count twice in
    ``room_health_1m``/``_1h``; ``FINAL`` cannot undo a sum. The sink skips a
    window it has seen within ``horizon_seconds`` (by event time) of the
    newest one. Memory stays bounded: older keys are pruned.

    >>> recent = RecentWindows(horizon_seconds=60)
    >>> recent.admit(("room", "r1", 1000)), recent.admit(("room", "r1", 1000)), recent.admit(("room", "r1", 1010))
    (True, False, True)
    >>> recent.admit(("room", "r2", 2000)); len(recent)
    True
    1
    """

    def __init__(self, horizon_seconds: int) -> None:
        self.horizon_seconds = horizon_seconds
        self._seen: dict[WindowKey, None] = {}
        self._newest = 0
        self._prune_at = 1024

    def __len__(self) -> int:
        self._prune(force=True)
        return len(self._seen)

    def admit(self, key: WindowKey) -> bool:
        """True the first time a window is offered (and remembers it), False after."""
        if key in self._seen:
            return False
        self._seen[key] = None
        if key[2] > self._newest:
            self._newest = key[2]
        self._prune()
        return True

    def forget(self, keys: Iterable[WindowKey]) -> None:
        """Windows that were buffered but never written (a batch given up on a rebalance)."""
        for key in keys:
            self._seen.pop(key, None)

    def load(self, keys: Iterable[WindowKey]) -> None:
        """Windows ClickHouse already has (read at start-up, so a restart also skips them)."""
        for key in keys:
            self._seen[key] = None
            self._newest = max(self._newest, key[2])
        self._prune(force=True)

    def _prune(self, force: bool = False) -> None:
        if not force and len(self._seen) < self._prune_at:
            return
        oldest_kept = self._newest - self.horizon_seconds
        self._seen = {key: None for key in self._seen if key[2] >= oldest_kept}
        self._prune_at = max(1024, 2 * len(self._seen))
