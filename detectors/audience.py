"""Expected audience from the heartbeat rhythm: silent failures, when listeners stop reporting.

A client that crashes, loses its network or whose reports stop arriving
sends no error: it sends nothing. What still speaks for it is the audience
its key was expected to have. Every listener heartbeats once per
``heartbeat_s``, so a window of ``window_s`` counts ``window_s /
heartbeat_s`` of the key's people (a client that joined in the window counts
whole: its join says it is there); joins and leaves move the expectation
between windows. The detector predicts the key's people each window as its
learned level plus joins minus leaves (the trajectory), then judges the
people seen against it, on two spans at once:

- the window itself must be at least ``window_drop`` (default: ``min_drop``)
  short (a drop that ended is no longer a drop);
- and the last ``span`` windows (one heartbeat period: a small room's
  single windows catch its few people unevenly, the period counts each of
  them once) must prove it, all three of: at least ``min_drop`` short;
  beyond counting noise (the Poisson lower tail of the heartbeats seen
  given those expected, by its Chernoff bound ``exp(-D)``, below ``alpha``:
  2 of 6 expected in a tiny room is no proof, 0 of 60 is); and at least
  ``z_alarm`` of the key's own learned relative deviation (a slice made of
  a few heavy sampled heartbeats moves in steps no Poisson model knows).

The score is the weakest of these, 0.5 at the alarm. One window short of a
few heavy heartbeats is no outage (its span is not short enough), a key gone
dark is bad by its first or second window, a third of a room crashing by
its third.

A drop explained by ``leave`` reports is no drop: the people who said they
left are out of the prediction. A client that reports an error in the window
is there too, heartbeat or not (``reporting``): seen whole, like a joiner,
and only up to the people expected. They hold the audience up while failing
clients stop heartbeating, but never raise it: a client reporting every few
seconds is in every window, and counted as a heartbeat a third of its people
would have taught the level three times the room, and the end of the errors
would have looked like two thirds of it vanishing. A room that ends, an evening decline (its
leaves, and a level that follows the trajectory) and a surge (a rise) stay
quiet. The level learns from windows it finds normal; a suspicious window
(score at least ``suspect``) teaches it at ``anomalous_weight`` only, so a
collapse is not learned as the new normal within its first minutes, and a
permanent one eventually is.

Parameters
----------
heartbeat_s, window_s
    The clients' heartbeat interval and the window length: their ratio is
    the share of people a window's heartbeats count.
span
    Windows in the long span (one heartbeat period by default).
warmup
    Windows learned before judging: neutral (score 0) until then.
half_life
    Half-life of the level and of the deviation, in windows.
min_drop, alpha, z_alarm
    The three alarms of the span above.
window_drop
    The window's own drop alarm (default ``min_drop``).
rel_floor
    The learned relative deviation is at least this.
suspect, anomalous_weight
    Learning of windows scoring at least ``suspect``: at this weight.

Examples
--------
>>> import numpy as np
>>> rng = np.random.default_rng(7)
>>> audience = Audience(warmup=6)
>>> for _ in range(30):
...     audience.learn_one(float(rng.poisson(200)))    # 600 people, a third heartbeating per window
>>> round(audience.expected())
611
>>> def judge(windows, **reported):
...     scores = []
...     for listeners in windows:
...         scores.append(round(audience.score_one(listeners, **reported), 3))
...         audience.learn_one(listeners, **reported)
...     return scores
>>> import copy; saved = copy.deepcopy(audience)
>>> judge([150.0])                        # one window a quarter short: noise
[0.008]
>>> audience = copy.deepcopy(saved)
>>> judge([40.0, 40.0, 40.0])             # collapsed: bad by its second window
[0.399, 0.638, 0.728]
>>> audience = copy.deepcopy(saved)
>>> judge([40.0], leaves=480.0), judge([40.0, 40.0])   # the same drop, but they said they left
([0.0], [0.0, 0.0])
>>> audience = copy.deepcopy(saved)
>>> judge([0.0, 0.0])                     # gone dark: no heartbeat at all
[0.469, 0.687]
"""

from __future__ import annotations

import math
from collections import deque
from typing import Any, Self

from detectors.base import half_life_alpha, poisson_deviance, squash

PARAMS = ("heartbeat_s", "window_s", "span", "warmup", "half_life", "min_drop", "alpha", "z_alarm",
          "rel_floor", "suspect", "anomalous_weight", "window_drop")


def poisson_drop_deviance(observed: float, expected: float) -> float:
    """``D`` with ``P(X <= observed) <= exp(-D)`` for ``X ~ Poisson(expected)``; 0 when nothing dropped.

    >>> round(poisson_drop_deviance(0.0, 10.0), 2), round(poisson_drop_deviance(5.0, 10.0), 2)
    (10.0, 1.53)
    >>> poisson_drop_deviance(12.0, 10.0)
    0.0
    """
    return poisson_deviance(observed, expected) if expected > observed else 0.0


class Audience:
    def __init__(self, heartbeat_s: float = 30.0, window_s: float = 10.0, span: int = 3, warmup: int = 6,
                 half_life: float = 6.0, min_drop: float = 0.3, alpha: float = 1e-6, z_alarm: float = 5.0,
                 rel_floor: float = 0.03, suspect: float = 0.25, anomalous_weight: float = 0.05,
                 window_drop: float | None = None) -> None:
        if heartbeat_s <= 0 or window_s <= 0 or span < 1:
            raise ValueError("audience heartbeat_s and window_s must be > 0 and span >= 1")
        if not 0.0 < min_drop < 1.0 or not 0.0 < alpha < 1.0:
            raise ValueError(f"audience min_drop and alpha must be in (0, 1), got {min_drop}, {alpha}")
        self.heartbeat_s, self.window_s, self.span, self.warmup = heartbeat_s, window_s, span, warmup
        self.half_life, self.min_drop, self.alpha, self.z_alarm = half_life, min_drop, alpha, z_alarm
        self.rel_floor, self.suspect, self.anomalous_weight = rel_floor, suspect, anomalous_weight
        self.window_drop = min_drop if window_drop is None else window_drop
        if not 0.0 < self.window_drop <= 1.0:
            raise ValueError(f"audience window_drop must be in (0, 1], got {window_drop}")
        self.share = min(1.0, window_s / heartbeat_s)
        self._alpha = half_life_alpha(half_life)
        # The deviation learns over ten times as many windows: rare deep dips of a few heavy heartbeats are
        # what it must know about.
        self._deviation_alpha = half_life_alpha(10 * half_life)
        self.d_alarm = math.log(1.0 / alpha)
        self.level = 0.0
        self.learned = 0
        # Squared relative deviation of the span's people from the prediction, in normal windows.
        self.deviation2 = rel_floor**2
        # The people seen in the last ``span - 1`` windows, newest last.
        self.recent: deque[float] = deque(maxlen=max(span - 1, 1))

    @property
    def ready(self) -> bool:
        return self.learned >= self.warmup

    def expected(self, joins: float = 0.0, leaves: float = 0.0) -> float:
        """The people this key should have now: the level, plus who joined, minus who said they left."""
        return max(self.level + joins - leaves, 0.0)

    def people(self, listeners: float, joins: float = 0.0) -> float:
        """The people a window's listeners stand for: a joiner counts whole, the others by their heartbeats."""
        listeners = max(listeners, 0.0) if math.isfinite(listeners) else 0.0
        joins = min(max(joins, 0.0), listeners) if math.isfinite(joins) else 0.0
        return (listeners - joins) / self.share + joins

    def seen(self, listeners: float, joins: float = 0.0, leaves: float = 0.0, reporting: float = 0.0) -> float:
        """The people a window shows: its heartbeats' (``people``), plus error reporters up to those expected."""
        people = self.people(listeners, joins)
        reporting = max(reporting, 0.0) if math.isfinite(reporting) else 0.0
        return people + min(reporting, max(self.expected(joins, leaves) - people, 0.0))

    def _span(self, people: float) -> tuple[float, int]:
        """The people seen over the span ending with this window, and its windows."""
        before = list(self.recent)[-(self.span - 1):] if self.span > 1 else []
        return (people + sum(before)) / (len(before) + 1), len(before) + 1

    def evidence(self, listeners: float, joins: float = 0.0, leaves: float = 0.0,
                 reporting: float = 0.0) -> tuple[float, float, float]:
        """(score, people seen in the window, people expected): what ``score_one`` rests on.

        The window must show the drop, and its span must prove it (the
        weaker of the two is the score): one window short of a few heavy
        heartbeats is no outage, and a drop that is real shows in both.
        """
        expected = self.expected(joins, leaves)
        people = self.seen(listeners, joins, leaves, reporting)
        if not self.ready or expected <= 0.0:
            return 0.0, people, expected
        now = squash(1.0 - people / expected, self.window_drop)
        seen, windows = self._span(people)
        drop = 1.0 - seen / expected
        heartbeats = expected * self.share * windows
        proven = min(squash(drop, self.min_drop),
                     squash(poisson_drop_deviance(seen * self.share * windows, heartbeats), self.d_alarm),
                     squash(drop, self.z_alarm * max(math.sqrt(self.deviation2), self.rel_floor)))
        return min(now, proven), people, expected

    def score_one(self, listeners: float, joins: float = 0.0, leaves: float = 0.0, reporting: float = 0.0) -> float:
        """How far the window's heartbeats fall short of the expected audience (0.5: the alarm)."""
        return self.evidence(listeners, joins, leaves, reporting)[0]

    def learn_one(self, listeners: float, joins: float = 0.0, leaves: float = 0.0, reporting: float = 0.0) -> None:
        people = self.seen(listeners, joins, leaves, reporting)
        leaves = max(leaves, 0.0) if math.isfinite(leaves) else 0.0
        if self.learned < self.warmup:
            # Warm-up: the running mean of the people seen, its windows so far moved by who joined and who
            # said they left since, as the prediction is (a heavy listener leaving in a new region's first
            # minute taught it an audience three times the one left, and a silent failure after).
            stayed = self._stayed(people, leaves)
            if self.learned:
                self.level = self.expected(joins, leaves)
            self.learned += 1
            self.level += (stayed - self.level) / self.learned
            self.recent.append(people)
            return
        score, _, expected = self.evidence(listeners, joins, leaves, reporting)
        suspicious = score >= self.suspect
        if expected > 0 and not suspicious:
            relative = self._span(people)[0] / expected - 1.0
            # Clipped at 5 deviations: one odd window barely widens what counts as normal.
            squared = min(relative * relative, 25.0 * self.deviation2)
            self.deviation2 += self._deviation_alpha * (squared - self.deviation2)
        alpha = self._alpha * (self.anomalous_weight if suspicious else 1.0)
        stayed = self._stayed(people, leaves)
        if leaves >= 0.5 * self.level:
            # What the prediction keeps after such an exodus is its own error, not people still there.
            self.level = min(expected, stayed)
        else:
            self.level = expected + alpha * (stayed - expected)
        self.learned += 1
        self.recent.append(people)

    def _stayed(self, people: float, leaves: float) -> float:
        """The people of a window still there at its end.

        Who left in it may have heartbeated in it before leaving: their heartbeats must not teach the
        level that they are still here. Leaving one by one, they were seen about half the time; a room
        that ends (half its people or more leaving at once) was seen whole until it ended.
        """
        return max(people - (leaves if leaves >= 0.5 * self.level else 0.5 * leaves), 0.0)

    def band(self) -> tuple[float, float] | None:
        """People the key counts as normal (None in warm-up): from the drop alarm up to the level."""
        if not self.ready:
            return None
        return (self.level * (1.0 - self.min_drop), self.level)

    def to_state(self) -> dict[str, Any]:
        return {"params": {name: getattr(self, name) for name in PARAMS}, "level": self.level,
                "learned": self.learned, "deviation2": self.deviation2, "recent": list(self.recent)}

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> Self:
        audience = cls(**state["params"])
        audience.level, audience.learned = float(state["level"]), int(state["learned"])
        audience.deviation2 = float(state["deviation2"])
        audience.recent.extend(float(value) for value in state["recent"])
        return audience
