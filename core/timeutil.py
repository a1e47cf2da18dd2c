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

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

# Reports older than this or this far in the future are rejected: they are
# almost certainly a broken client clock, and they would open windows that
# never close.
MIN_EVENT_MS = 946_684_800_000  # 2000-01-01
MAX_EVENT_MS = 4_102_444_800_000  # 2100-01-01
# An item's ``ts`` read in C (an attrgetter, not a function): ArrivalBound runs over every report.
_event_ms: Callable[[Any], int] = operator.attrgetter("ts")


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
    """RFC 3339 with milliseconds, in UTC; a moment no calendar holds (a sender's int64 extreme) as its number.

    >>> format_ms(1795323600123), format_ms(2**63 - 1)
    ('2026-11-22T05:00:00.123Z', '9223372036854775807 ms since the epoch')
    """
    try:
        moment = datetime.fromtimestamp(millis / 1000, tz=UTC)
    except (ValueError, OverflowError, OSError):
        return f"{millis} ms since the epoch"
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{millis % 1000:03d}Z"


def span(millis: int) -> str:
    """A duration in words a human reads at a glance.

    >>> span(250), span(4_000), span(400_000), span(7_200_000), span(3 * 86_400_000), span(73 * 365 * 86_400_000)
    ('250 ms', '4 s', '7 min', '2.0 h', '3.0 days', '73 years')
    """
    seconds = abs(millis) / 1000
    if seconds < 1:
        return f"{abs(millis)} ms"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86_400:
        return f"{seconds / 3600:.1f} h"
    if seconds < 730 * 86_400:
        return f"{seconds / 86_400:.1f} days"
    return f"{seconds / (365 * 86_400):.0f} years"


@dataclass(frozen=True)
class ArrivalBound:
    """How far an item's event time may be from the moment it arrived.

    A report dated ahead of its arrival would move a partition's watermark
    into the future (every real window closes at once, and every later report
    is folded late into a window that never closes); one from far back opens
    windows nobody waits for. ``arrival`` is the collector's receive clock, or
    in the worker the Kafka record's timestamp.

    >>> bound = ArrivalBound(max_ahead_ms=300_000, max_age_ms=86_400_000)
    >>> now = parse_event_time("2026-12-01T09:00:00Z")
    >>> bound.reason(now + 1_000, now) is None
    True
    >>> print(bound.reason(parse_event_time("2099-01-01T00:00:00Z"), now))
    ts 2099-01-01T00:00:00.000Z is 72 years ahead of its arrival (2026-12-01T09:00:00.000Z); at most 5 min ahead is accepted: the sender's clock is wrong
    >>> print(bound.reason(parse_event_time("2001-01-01T00:00:00Z"), now))
    ts 2001-01-01T00:00:00.000Z is 26 years older than its arrival (2026-12-01T09:00:00.000Z); at most 24.0 h old is accepted
    """

    max_ahead_ms: int
    max_age_ms: int

    def reason(self, ts_ms: int, arrival_ms: int) -> str | None:
        """Why ``ts_ms`` is refused at ``arrival_ms``, or None when it is within the bound."""
        if ts_ms > arrival_ms + self.max_ahead_ms:
            return (f"ts {format_ms(ts_ms)} is {span(ts_ms - arrival_ms)} ahead of its arrival ({format_ms(arrival_ms)}); "
                    f"at most {span(self.max_ahead_ms)} ahead is accepted: the sender's clock is wrong")
        if ts_ms < arrival_ms - self.max_age_ms:
            return (f"ts {format_ms(ts_ms)} is {span(arrival_ms - ts_ms)} older than its arrival "
                    f"({format_ms(arrival_ms)}); at most {span(self.max_age_ms)} old is accepted")
        return None

    def split(self, items: Sequence[T], arrival_ms: int,
              ts_of: Callable[[T], int] | None = None) -> tuple[list[T], list[tuple[int, str]]]:
        """The items within the bound, and ``(position, reason)`` of the others; ``ts_of`` reads an item's
        epoch ms (default: its ``ts``, as every decoded report and sample has).

        A few passes of C (``map``, ``min``, ``max``) for the usual batch, all within it: ``items``
        itself is returned then.

        >>> kept, refused = ArrivalBound(max_ahead_ms=10, max_age_ms=100).split([995, 1000, 1011, 850], 1000, int)
        >>> kept, [(position, reason[:33]) for position, reason in refused]
        ([995, 1000], [(2, 'ts 1970-01-01T00:00:01.011Z is 11'), (3, 'ts 1970-01-01T00:00:00.850Z is 15')])
        """
        if not items:
            return [], []
        stamps = list(map(ts_of or _event_ms, items))
        low, high = arrival_ms - self.max_age_ms, arrival_ms + self.max_ahead_ms
        if min(stamps) >= low and max(stamps) <= high:
            return items if isinstance(items, list) else list(items), []
        kept: list[T] = []
        refused: list[tuple[int, str]] = []
        for position, (item, ts_ms) in enumerate(zip(items, stamps, strict=True)):
            why = self.reason(ts_ms, arrival_ms)
            if why is None:
                kept.append(item)
            else:
                refused.append((position, why))
        return kept, refused


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
