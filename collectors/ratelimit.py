"""Per-key token buckets, charged by the number of items in a request.

>>> from core.timeutil import ManualClock
>>> clock = ManualClock(0)
>>> limiter = RateLimiter(rate_per_second=100, burst=200, clock=clock)
>>> limiter.take("demo", 150), limiter.take("demo", 100)
(0.0, 0.5)
>>> clock.advance(500); limiter.take("demo", 100)
0.0
"""

from __future__ import annotations

from dataclasses import dataclass

from core.timeutil import Clock


@dataclass
class _Bucket:
    tokens: float
    updated_ms: int


class RateLimiter:
    """One token bucket per API key; a token is one report (or metric sample)."""

    def __init__(self, rate_per_second: float, burst: float, clock: Clock) -> None:
        if rate_per_second <= 0 or burst <= 0:
            raise ValueError("rate_per_second and burst must be positive")
        self.rate_per_second = rate_per_second
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def _refill(self, key: str) -> _Bucket:
        now = self._clock.now_ms()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(self.burst, now)
        elif now > bucket.updated_ms:
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
