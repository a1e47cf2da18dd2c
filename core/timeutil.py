"""Event-time parsing and formatting.

Every timestamp inside outagewatch is an ``int`` of epoch milliseconds (UTC).
Clients may send RFC 3339 strings or epoch milliseconds; they are normalised
here once, at the edge.

>>> parse_event_time("2026-11-22T05:00:00Z")
1795323600000
>>> parse_event_time(1795323600000)
1795323600000
>>> format_ms(1795323600250)
'2026-11-22T05:00:00.250Z'
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

# Reports older than this or this far in the future are rejected: they are
# almost certainly a broken client clock, and they would open windows that
# never close.
MIN_EVENT_MS = 946_684_800_000  # 2000-01-01
MAX_EVENT_MS = 4_102_444_800_000  # 2100-01-01


def parse_event_time(value: str | int | float) -> int:
    """Epoch milliseconds from an RFC 3339 string or a number of epoch ms."""
    if isinstance(value, bool):
        raise ValueError("ts must be an RFC 3339 string or epoch milliseconds, got a boolean")
    if isinstance(value, (int, float)):
        millis = int(value)
    else:
        text = value.strip()
        if not text:
            raise ValueError("ts is empty")
        if text[-1] in "zZ":
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"ts {value!r} is not RFC 3339 (e.g. 2026-11-22T05:00:00Z)") from None
        if parsed.tzinfo is None:
            raise ValueError(f"ts {value!r} has no UTC offset (add Z or +00:00)")
        millis = int(parsed.timestamp() * 1000)
    if not MIN_EVENT_MS <= millis < MAX_EVENT_MS:
        raise ValueError(f"ts {value!r} is outside 2000..2100; epoch milliseconds expected")
    return millis


def format_ms(millis: int) -> str:
    """RFC 3339 with milliseconds, in UTC."""
    moment = datetime.fromtimestamp(millis / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"


class Clock(Protocol):
    """Wall time, injected so windows, detectors and alerts test exactly."""

    def now_ms(self) -> int: ...


class SystemClock:
    def now_ms(self) -> int:
        import time

        return time.time_ns() // 1_000_000


class ManualClock:
    """A clock tests move by hand.

    >>> clock = ManualClock(1_000)
    >>> clock.advance(500); clock.now_ms()
    1500
    """

    def __init__(self, start_ms: int = 0) -> None:
        self._now = start_ms

    def now_ms(self) -> int:
        return self._now

    def advance(self, millis: int) -> None:
        self._now += millis
