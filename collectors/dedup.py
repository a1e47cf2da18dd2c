"""Recently seen ``report_id``s, in bounded memory.

Two generations of 64-bit hashes: lookups check both, the current one is
retired after ``horizon_ms`` or when it holds ``max_ids / 2`` ids. So an id
is remembered for at least the horizon unless the collector sees more than
``max_ids / 2`` distinct ids within a horizon; then the horizon shrinks to
what memory allows (at roughly 60 bytes an id, 1M ids is ~60 MB), and a
late duplicate is let through rather than memory growing without bound.
Downstream stores are idempotent on ``report_id``, so that is safe.

>>> from core.timeutil import ManualClock
>>> clock = ManualClock(0)
>>> seen = RecentIds(horizon_ms=1000, max_ids=100, clock=clock)
>>> seen.remember(["a", "b"]); seen.contains("a"), seen.contains("c")
(True, False)
>>> clock.advance(1500); seen.contains("a")
True
>>> clock.advance(1500); seen.contains("a")
False
"""

from __future__ import annotations

from collections.abc import Iterable

from core.timeutil import Clock


class RecentIds:
    def __init__(self, horizon_ms: int, max_ids: int, clock: Clock) -> None:
        self.horizon_ms = horizon_ms
        self._generation_cap = max(1, max_ids // 2)
        self._clock = clock
        self._current: set[int] = set()
        self._previous: set[int] = set()
        self._current_started = clock.now_ms()

    def _rotate(self) -> None:
        now = self._clock.now_ms()
        age = now - self._current_started
        if age >= 2 * self.horizon_ms:
            # Nothing in either generation is inside the horizon any more.
            self._previous, self._current, self._current_started = set(), set(), now
        elif age >= self.horizon_ms or len(self._current) >= self._generation_cap:
            self._previous, self._current, self._current_started = self._current, set(), now

    def contains(self, report_id: str) -> bool:
        self._rotate()
        digest = hash(report_id)
        return digest in self._current or digest in self._previous

    def unseen(self, report_ids: Iterable[str]) -> list[bool]:
        """For each id, whether it is new (not seen before, not earlier in ``report_ids``).

        One clock read for the whole batch: this runs for every report.

        >>> from core.timeutil import ManualClock
        >>> seen = RecentIds(horizon_ms=1000, max_ids=100, clock=ManualClock(0))
        >>> seen.remember(["a"]); seen.unseen(["a", "b", "b"])
        [False, True, False]
        """
        self._rotate()
        current, previous = self._current, self._previous
        digests = list(map(hash, report_ids))
        # The usual batch (all new, no repeats) is settled by set operations in C.
        distinct = set(digests)
        if len(distinct) == len(digests) and distinct.isdisjoint(current) and distinct.isdisjoint(previous):
            return [True] * len(digests)
        batch: set[int] = set()
        out: list[bool] = []
        for digest in digests:
            new = digest not in current and digest not in previous and digest not in batch
            batch.add(digest)
            out.append(new)
        return out

    def remember(self, report_ids: Iterable[str]) -> None:
        self._rotate()
        self._current.update(map(hash, report_ids))
        if len(self._current) >= self._generation_cap:
            self._rotate()

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)
