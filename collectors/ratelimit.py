"""Token buckets (per key, and per client network), charged by the number of items in a request.

A per-source limiter is keyed by whatever network a client writes from, so
its table is bounded (``max_buckets``, least recently used forgotten first):
a forgotten bucket comes back full, which only forgives a source that has
been quiet while ``max_buckets`` others were busy.

>>> from core.timeutil import ManualClock
>>> clock = ManualClock(0)
>>> limiter = RateLimiter(rate_per_second=100, burst=200, clock=clock)
>>> limiter.take("demo", 150), limiter.take("demo", 100)
(0.0, 0.5)
>>> clock.advance(500); limiter.take("demo", 100)
0.0
"""

from __future__ import annotations

from collections import OrderedDict

from core.timeutil import Clock


class _Bucket:
    __slots__ = ("tokens", "updated_ms")

    def __init__(self, tokens: float, updated_ms: int) -> None:
        self.tokens = tokens
        self.updated_ms = updated_ms


class RateLimiter:
    """One token bucket per key (an API key's name, a client network); a token is one report or sample.

    >>> from core.timeutil import ManualClock
    >>> sources = RateLimiter(rate_per_second=1, burst=5, clock=ManualClock(0), max_buckets=2)
    >>> [sources.take(network, 5) for network in ("a", "b", "a", "c", "b")], len(sources)
    ([0.0, 0.0, 5.0, 0.0, 0.0], 2)
    """

    def __init__(self, rate_per_second: float, burst: float, clock: Clock, max_buckets: int = 0) -> None:
        if rate_per_second <= 0 or burst <= 0:
            raise ValueError("rate_per_second and burst must be positive")
        self.rate_per_second = rate_per_second
        self.burst = burst
        self._clock = clock
        # 0: unbounded (API keys are few and configured).
        self.max_buckets = max_buckets
        self._buckets: OrderedDict[str, _Bucket] = OrderedDict()

    def __len__(self) -> int:
        return len(self._buckets)

    def _refill(self, key: str) -> _Bucket:
        now = self._clock.now_ms()
        buckets = self._buckets
        bucket = buckets.get(key)
        if bucket is None:
            bucket = buckets[key] = _Bucket(self.burst, now)
            if self.max_buckets and len(buckets) > self.max_buckets:
                buckets.popitem(last=False)
            return bucket
        if self.max_buckets:
            buckets.move_to_end(key)
        if now > bucket.updated_ms:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated_ms) / 1000 * self.rate_per_second)
            bucket.updated_ms = now
        return bucket

    def take(self, key: str, cost: float) -> float:
        """Charge ``cost`` tokens; 0.0 when allowed, else seconds until it would be.

        A cost above the burst is charged as the whole burst, so one large
        request is not refused forever.
        """
        bucket = self._refill(key)
        cost = min(cost, self.burst)
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return 0.0
        return (cost - bucket.tokens) / self.rate_per_second

    def empty(self, key: str) -> float:
        """Seconds until one token is available (0.0 when one is): a cheap check before reading a body."""
        bucket = self._refill(key)
        return 0.0 if bucket.tokens >= 1 else (1 - bucket.tokens) / self.rate_per_second
