"""Evidence over several spans: a trickle of errors that no single window proves.

A 10-s window proves a flood. A room of 40 listeners in which a third crash,
each sending one report a minute, never has the five error clients one
window needs, yet a minute of it is 30 times the room's normal and beyond
doubt. ``ErrorSpans`` keeps a key's recent windows, per decision kind, and
judges each span (the last 6 and 30 windows: one and five minutes of 10-s
windows) on their sums:

- **counts**: ``S``, the error clients of every window of the span added up
  (a client counts once per window it reported in, as the baseline counts
  it), against the kind's learned baseline: ``B`` error clients in ``T``
  listeners (``ErrorRatio``'s decayed counts, its ratio floored at
  ``min_ratio``). Two Poisson counts at one rate split as a binomial: given
  ``n = S + B``, ``S`` is Binomial(``n``, ``q``) with ``q`` the span's share
  of all the listeners, so the test needs no upper bound on the baseline (a
  small room's, three times its ratio at z = 3, hid every trickle) and is
  exact for small counts. Its Chernoff bound ``exp(-n KL(S/n, q))`` must be
  below ``alpha`` (per span and kind: 2 spans and 9 kinds keep a room
  window's family-wise error under 2e-6);
- **lift**: ``S`` at least ``alarm_lift`` times ``expected``: five minutes of a
  100k-listener room prove a 10 % rise beyond doubt, and that is no outage;
- **people**: at least ``min_sources`` distinct sources over the span
  (``RoomHealth.error_tokens_by_code``: the collector's network stamp of each
  error client, or the client itself when unstamped), and no source counting
  in more than a fifth of the span's windows (at least 2). One crash-looping
  phone reports in every window and is one; one script's invented ids are one
  network, and its two clients a window for five minutes would otherwise be
  sixty error clients;
- **no one source makes the case**: the counts and the lift are tested
  without the source that contributed most, so one spammer beside two
  people's ordinary errors is not three people failing;
- **still going**: the newest third of the span (at least two windows)
  proves its own rise, at ``recent_alpha`` (1 %) and ``alarm_lift``, so a
  span does not stay bad for minutes after its errors stop (the tail of an
  incident and one background error paged a room three minutes after it
  recovered).

Spans judge only where one window cannot: a key whose window at
``alarm_lift`` times its normal would still have fewer than ``min_errors``
error clients (a room of a few hundred listeners, not one of thousands). A
bigger room's window test sees a doubling in its own ten seconds, and a span
there proved a minute of mild lift a window before it, which then explained
its whole region's outage away (``alerting.residual``).

The score is 0.5 where the weaker of the count test and the lift is at its
alarm, like every detector's (``detectors.base``), and 0 for a span that
fails the people or still-going test.

>>> spans = ErrorSpans()
>>> for i in range(12):  # 33 listeners a window; two people report every other window
...     spans.window(i * 10_000, 33.0)
...     spans.add("crash", i * 10_000, float(i % 2 * 2), frozenset({1, 2}) if i % 2 else frozenset())
>>> spans.judge("crash", (8.0, 4000.0), 0.002, 2.0, 5.0).bad   # two people, however often, are not an outage
False
>>> spans.judge("crash", (8.0, 4000.0), 0.002, 2.0, 5.0).errors   # nor does either count in more than 2 of 6 windows
4.0
>>> for i in range(12, 18):  # six others crash, each reporting every 30 s
...     spans.window(i * 10_000, 33.0)
...     spans.add("crash", i * 10_000, 2.0, frozenset({3 + 2 * (i % 3), 4 + 2 * (i % 3)}))
>>> best = spans.judge("crash", (8.0, 4000.0), 0.002, 2.0, 5.0)
>>> best.bad, best.windows, best.errors, best.sources, round(best.expected, 2)
(True, 6, 12.0, 6, 0.41)

The expected 0.41 is against 4000 listeners less the span's own five
earlier windows (``_before``): a span is judged against what the baseline
knew before it began.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any, Self

from detectors.base import squash

# Windows each span covers, newest last; the longest bounds what a key keeps.
SPAN_WINDOWS: tuple[int, ...] = (6, 30)
# The least of a span's newest windows that must still show the rise on their own.
RECENT_WINDOWS = 2


@dataclass(frozen=True)
class SpanVerdict:
    """What the strongest span of one kind proved."""

    bad: bool
    score: float
    windows: int
    errors: float
    expected: float
    sources: int

    def detail(self, window_s: float) -> str:
        return (f"{self.errors:.0f} error clients summed over {self.windows * window_s:.0f} s from {self.sources} "
                f"sources vs {self.expected:.1f} expected")


NOTHING = SpanVerdict(bad=False, score=0.0, windows=0, errors=0.0, expected=0.0, sources=0)


def binomial_deviance(span: float, base: float, share: float) -> float:
    """``D`` of the Chernoff bound ``exp(-D)`` on ``span`` or more of ``span + base`` counts falling in a
    part holding ``share`` of the exposure (0 when no more than its share fell there).

    >>> round(binomial_deviance(21.0, 6.0, 0.2), 1), binomial_deviance(2.0, 8.0, 0.2)
    (20.8, 0.0)
    """
    n = span + base
    if n <= 0 or not 0.0 < share < 1.0 or span <= share * n:
        return 0.0
    a = span / n
    rest = (1.0 - a) * math.log((1.0 - a) / (1.0 - share)) if a < 1.0 else 0.0
    return n * (a * math.log(a / share) + rest)


class ErrorSpans:
    """A key's last windows, per kind: (window start, listeners, error clients, their sources)."""

    def __init__(self, spans: tuple[int, ...] = SPAN_WINDOWS, alpha: float = 1e-7, min_sources: int = 3,
                 recent_alpha: float = 0.01) -> None:
        if not spans or min(spans) < 2:
            raise ValueError(f"spans must be at least 2 windows long, got {spans}")
        if not 0.0 < alpha < 1.0:
            raise ValueError(f"span alpha must be in (0, 1), got {alpha}")
        self.spans = tuple(sorted(spans))
        self.alpha = alpha
        self.min_sources = min_sources
        self.d_alarm = math.log(1.0 / alpha)
        self.recent_alpha = recent_alpha
        self.d_recent = math.log(1.0 / recent_alpha)
        keep = self.spans[-1]
        self.listeners: deque[tuple[int, float]] = deque(maxlen=keep)
        # kind -> windows with error clients only (most windows of most rooms have none).
        self.errors: dict[str, deque[tuple[int, float, frozenset[int] | None]]] = {}
        # kind -> (window start, error clients its baseline learned from that window), told by ``learned``.
        self.taught: dict[str, deque[tuple[int, float]]] = {}

    def window(self, window_start: int, listeners: float) -> None:
        """Start a window: its listeners, before ``add`` records the kinds that had errors in it."""
        if self.listeners and self.listeners[-1][0] == window_start:
            return
        self.listeners.append((window_start, max(listeners, 0.0)))

    def add(self, kind: str, window_start: int, errors: float, sources: frozenset[int] | None) -> None:
        """Record ``kind``'s error clients in the window ``window`` started (``sources`` None: too many to list)."""
        ring = self.errors.get(kind)
        if ring is None:
            if errors <= 0:
                return
            ring = self.errors[kind] = deque()
        if errors > 0:
            ring.append((window_start, errors, sources))
        oldest = self.listeners[0][0]
        while ring and ring[0][0] < oldest:
            ring.popleft()
        if not ring:
            del self.errors[kind]

    def learned(self, kind: str, window_start: int, errors: float) -> None:
        """Note that ``kind``'s baseline learned ``errors`` error clients from the window ``window_start``
        began (its weight applied): a span is judged against the baseline without its own windows."""
        taught = self.taught.get(kind)
        if errors > 0:
            if taught is None:
                taught = self.taught[kind] = deque()
            taught.append((window_start, errors))
        if taught is not None:
            oldest = self.listeners[0][0] if self.listeners else window_start
            while taught and taught[0][0] < oldest:
                taught.popleft()
            if not taught:
                del self.taught[kind]

    def judge(self, kind: str, baseline: tuple[float, float], floor: float, alarm_lift: float,
              min_errors: float) -> SpanVerdict:
        """The strongest span of ``kind`` ending with the newest window, against ``baseline``: its
        (error clients, listeners), at a ratio of at least ``floor``."""
        ring = self.errors.get(kind)
        if not ring or baseline[1] <= 0:
            return NOTHING
        windows = list(self.listeners)
        taught = self.taught.get(kind, ())
        verdicts = [self._judge_span(windows[-span:], ring, self._before(windows[-span:], taught, baseline), floor,
                                     alarm_lift, min_errors)
                    for span in self.spans if len(windows) >= span]
        return max(verdicts, key=lambda verdict: verdict.score, default=NOTHING)

    @staticmethod
    def _before(windows: list[tuple[int, float]], taught: deque[tuple[int, float]] | tuple[()],
                baseline: tuple[float, float]) -> tuple[float, float]:
        """``baseline`` without what it learned from ``windows`` (all but the newest, not learned yet).

        A small room's baseline holds a few error clients: five minutes of a
        trickle learned into it doubled it, and the span, judged against
        itself, never proved its rise.
        """
        first = windows[0][0]
        errors = baseline[0] - sum(count for start, count in taught if start >= first)
        trials = baseline[1] - sum(count for _, count in windows[:-1])
        # Learned partly (an anomalous window), a window gave less than its listeners: never below a tenth.
        return max(errors, 0.0), max(trials, 0.1 * baseline[1])

    def _judge_span(self, windows: list[tuple[int, float]], ring: deque[tuple[int, float, frozenset[int] | None]],
                    baseline: tuple[float, float], floor: float, alarm_lift: float, min_errors: float) -> SpanVerdict:
        trials = baseline[1]
        ratio = max(baseline[0] / trials, floor)
        listeners = sum(count for _, count in windows)
        expected = max(listeners * ratio, 1e-9)
        if alarm_lift * expected / len(windows) >= min_errors:  # the window test sees this key's rises itself
            return NOTHING
        first = windows[0][0]
        recent_from = windows[-max(RECENT_WINDOWS, len(windows) // 3)][0]
        recent_listeners = sum(count for start, count in windows if start >= recent_from)
        errors = recent = 0.0
        seen: dict[int, float] = {}  # source -> the error clients it accounts for, its window's share each
        listed = True
        for start, count, tokens in ring:
            if start < first:
                continue
            errors += count
            if start >= recent_from:
                recent += count
            if tokens is None:
                listed = False
            else:
                share = count / max(len(tokens), 1)
                for token in tokens:
                    seen[token] = seen.get(token, 0.0) + share
        cap = max(2, len(windows) // 5)
        errors -= sum(part - cap for part in seen.values() if part > cap)
        people = len(seen) if listed else max(len(seen), int(errors))
        without_top = errors - min(max(seen.values(), default=0.0), cap)
        score = min(squash(binomial_deviance(without_top, ratio * trials, listeners / (listeners + trials)),
                           self.d_alarm),
                    squash(without_top / expected - 1.0, alarm_lift - 1.0))
        still_going = (recent >= alarm_lift * recent_listeners * ratio and binomial_deviance(
            recent, ratio * trials, recent_listeners / (recent_listeners + trials)) >= self.d_recent)
        if errors < min_errors or people < self.min_sources or not still_going:
            score = 0.0
        return SpanVerdict(bad=score >= 0.5, score=score, windows=len(windows), errors=errors,
                           expected=expected, sources=people)

    def to_state(self) -> dict[str, Any]:
        return {"spans": list(self.spans), "alpha": self.alpha, "min_sources": self.min_sources,
                "recent_alpha": self.recent_alpha,
                "listeners": [list(w) for w in self.listeners],
                "taught": {kind: [list(w) for w in taught] for kind, taught in self.taught.items() if taught},
                "errors": {kind: [[start, count, sorted(tokens) if tokens is not None else None]
                                  for start, count, tokens in ring] for kind, ring in self.errors.items() if ring}}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        spans = cls(tuple(int(s) for s in state["spans"]), float(state["alpha"]), int(state["min_sources"]),
                    float(state.get("recent_alpha", 0.01)))
        spans.listeners.extend((int(start), float(count)) for start, count in state["listeners"])
        for kind, ring in state["errors"].items():
            spans.errors[kind] = deque((int(start), float(count), frozenset(tokens) if tokens is not None else None)
                                       for start, count, tokens in ring)
        for kind, taught in state.get("taught", {}).items():
            spans.taught[kind] = deque((int(start), float(count)) for start, count in taught)
        return spans
