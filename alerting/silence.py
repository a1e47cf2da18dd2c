"""Silences: label matchers with a wall-clock expiry, as in Alertmanager.

Matchers use ``=``, ``!=``, ``=~`` and ``!~``; regexes match the whole value.

>>> from core.timeutil import ManualClock
>>> from core.schemas import Alert
>>> clock = ManualClock(1_000)
>>> silences = Silences(clock)
>>> sid = silences.add(["region=~eu-.*", "kind=crash"], ends_at_ms=61_000, comment="maintenance")
>>> alert = Alert(fingerprint="f", status="firing", scope="room", key="r1", kind="crash",
...               severity="critical", starts_at=0, event_ts=0, summary="", labels={"region": "eu-west"})
>>> silences.mutes(alert) == f"silenced by {sid} (maintenance)"
True
>>> clock.advance(60_000); silences.mutes(alert) is None
True
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from alerting.identity import alert_labels
from core.schemas import Alert
from core.timeutil import Clock

Op = Literal["=", "!=", "=~", "!~"]
_MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


@dataclass(frozen=True)
class Matcher:
    name: str
    op: Op
    value: str

    def __post_init__(self) -> None:
        if self.op in ("=~", "!~"):
            try:
                re.compile(self.value)
            except re.error as exc:
                raise ValueError(f"silence matcher {self.name}{self.op}{self.value!r}: bad regex: {exc}") from None

    @classmethod
    def parse(cls, text: str) -> Matcher:
        """``name=value``, ``name!=value``, ``name=~regex`` or ``name!~regex`` (quotes optional).

        >>> Matcher.parse('region =~ "eu-.*"')
        Matcher(name='region', op='=~', value='eu-.*')
        """
        found = _MATCHER.match(text)
        if found is None:
            raise ValueError(f"silence matcher {text!r} is not name=value, name!=value, name=~regex or name!~regex")
        name, op, value = found.groups()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        return cls(name, op, value)  # type: ignore[arg-type]

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = labels.get(self.name, "")  # a missing label is the empty string, as in Prometheus
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        hit = re.fullmatch(self.value, actual) is not None
        return hit if self.op == "=~" else not hit


@dataclass(frozen=True)
class Silence:
    id: str
    matchers: tuple[Matcher, ...]
    starts_at_ms: int
    ends_at_ms: int
    comment: str = ""
    created_by: str = ""

    def active(self, now_ms: int) -> bool:
        return self.starts_at_ms <= now_ms < self.ends_at_ms

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(m.matches(labels) for m in self.matchers)

    def to_state(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "matchers": [[m.name, m.op, m.value] for m in self.matchers],
            "starts_at_ms": self.starts_at_ms,
            "ends_at_ms": self.ends_at_ms,
            "comment": self.comment,
            "created_by": self.created_by,
        }

    @classmethod
    def from_state(cls, state: Mapping[str, Any]) -> Silence:
        matchers = tuple(Matcher(name, op, value) for name, op, value in state["matchers"])
        fields = {k: v for k, v in state.items() if k != "matchers"}
        return cls(matchers=matchers, **fields)


class Silences:
    """The set of silences; a ``Muter``. Time is the injected wall clock."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._silences: dict[str, Silence] = {}

    def add(
        self,
        matchers: Iterable[str | Matcher],
        ends_at_ms: int,
        starts_at_ms: int | None = None,
        comment: str = "",
        created_by: str = "",
    ) -> str:
        parsed = tuple(m if isinstance(m, Matcher) else Matcher.parse(m) for m in matchers)
        if not parsed:
            raise ValueError("a silence needs at least one matcher (it would silence everything)")
        starts = self._clock.now_ms() if starts_at_ms is None else starts_at_ms
        if ends_at_ms <= starts:
            raise ValueError(f"silence ends ({ends_at_ms}) before it starts ({starts})")
        silence = Silence(uuid.uuid4().hex[:12], parsed, starts, ends_at_ms, comment, created_by)
        self._silences[silence.id] = silence
        return silence.id

    def expire(self, silence_id: str) -> None:
        """End a silence now (kept until garbage-collected, like Alertmanager)."""
        old = self._silences[silence_id]
        now = self._clock.now_ms()
        self._silences[silence_id] = Silence(
            old.id, old.matchers, min(old.starts_at_ms, now), now, old.comment, old.created_by
        )

    def active(self) -> list[Silence]:
        now = self._clock.now_ms()
        return [s for s in self._silences.values() if s.active(now)]

    def gc(self) -> None:
        now = self._clock.now_ms()
        self._silences = {k: s for k, s in self._silences.items() if s.ends_at_ms > now}

    def mutes(self, alert: Alert) -> str | None:
        labels = alert_labels(alert)
        for silence in self.active():
            if silence.matches(labels):
                reason = f" ({silence.comment})" if silence.comment else ""
                return f"silenced by {silence.id}{reason}"
        return None

    def to_state(self) -> list[dict[str, Any]]:
        return [s.to_state() for s in self._silences.values()]

    def load_state(self, state: Iterable[Mapping[str, Any]]) -> None:
        self._silences = {s.id: s for s in map(Silence.from_state, state)}
