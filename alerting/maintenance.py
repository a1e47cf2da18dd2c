"""Maintenance windows: recurring time intervals that mute matching alerts.

A window is label matchers (as silences use) and time intervals in
Alertmanager's ``time_intervals`` shape: ``times`` (``HH:MM`` start inclusive,
end exclusive), ``weekdays``, ``days_of_month`` (negative counts from the end
of the month), ``months``, ``years``, each a list of values or inclusive
``a:b`` ranges, and a ``location`` (an IANA time zone; UTC when absent). An
interval matches when every field it sets matches; a window mutes while any of
its intervals matches. Time is the stage's clock (event time), read in the
interval's zone, so "02:00-04:00 Europe/Paris" follows the clocks across DST.

>>> from core.timeutil import ManualClock
>>> from core.schemas import Alert
>>> window = MaintenanceWindow.from_config({
...     "name": "nightly-deploy", "matchers": ["region=eu-west"],
...     "time_intervals": [{"weekdays": ["monday:friday"], "times": [{"start_time": "02:00", "end_time": "04:00"}],
...                         "location": "Europe/Paris"}]})
>>> clock = ManualClock(1_795_136_400_000)  # Fri 2026-11-20 02:00 in Paris (01:00 UTC)
>>> muter = Maintenance([window], clock)
>>> alert = Alert(fingerprint="f", status="firing", scope="room", key="r1", kind="crash",
...               severity="critical", starts_at=0, event_ts=0, summary="", labels={"region": "eu-west"})
>>> muter.mutes(alert)
'in maintenance window nightly-deploy'
>>> clock.advance(2 * 3_600_000); muter.mutes(alert) is None
True
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

from alerting.identity import alert_labels
from alerting.silence import Matcher
from core.schemas import Alert
from core.timeutil import Clock

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december")
FIELDS = frozenset({"times", "weekdays", "days_of_month", "months", "years", "location"})

Range = tuple[int, int]


def _number(text: str, names: Sequence[str], base: int, where: str) -> int:
    word = text.strip().lower()
    if word in names:
        return names.index(word) + base
    try:
        return int(word)
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not a number{' or a name' if names else ''}") from None


def _ranges(values: Iterable[Any], names: Sequence[str], base: int, low: int, high: int, where: str) -> tuple[Range, ...]:
    """``["monday:friday", "sunday"]`` -> ``((0, 4), (6, 6))``; every bound checked against ``low..high``."""
    found: list[Range] = []
    for value in values:
        start_text, _, end_text = str(value).partition(":")
        start = _number(start_text, names, base, where)
        end = _number(end_text, names, base, where) if end_text else start
        for bound in (start, end):
            # Days of the month are 1..31 or -31..-1 (from the end); there is no day 0.
            if not low <= bound <= high or (bound == 0 and low < 0):
                raise ValueError(f"{where}: {value!r} is outside {low}..{high}")
        if (start < 0) == (end < 0) and start > end:
            raise ValueError(f"{where}: {value!r} starts after it ends")
        found.append((start, end))
    return tuple(found)


def _minutes(text: str, where: str) -> int:
    hours, _, minutes = str(text).partition(":")
    try:
        value = int(hours) * 60 + int(minutes)
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not HH:MM") from None
    if not 0 <= value <= 24 * 60 or not 0 <= int(minutes) < 60:
        raise ValueError(f"{where}: {text!r} is not a time of day between 00:00 and 24:00")
    return value


@dataclass(frozen=True)
class TimeInterval:
    times: tuple[Range, ...] = ()  # minutes of the day, [start, end)
    weekdays: tuple[Range, ...] = ()  # 0 = Monday
    days_of_month: tuple[Range, ...] = ()
    months: tuple[Range, ...] = ()
    years: tuple[Range, ...] = ()
    location: str = "UTC"

    @classmethod
    def from_config(cls, config: Mapping[str, Any], where: str = "time interval") -> TimeInterval:
        unknown = set(config) - FIELDS
        if unknown:
            raise ValueError(f"{where}: unknown field(s) {sorted(unknown)}; known: {sorted(FIELDS)}")
        location = str(config.get("location") or "UTC")
        if location.lower() == "local":
            raise ValueError(f"{where}: location Local depends on the machine; name the zone (e.g. Europe/Paris)")
        try:
            ZoneInfo(location)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{where}: unknown time zone {location!r} (an IANA name like Europe/Paris)") from None
        times = []
        for span in config.get("times") or ():
            start = _minutes(span.get("start_time", ""), f"{where} times")
            end = _minutes(span.get("end_time", ""), f"{where} times")
            if start >= end:
                raise ValueError(f"{where} times: start_time {span['start_time']} is not before end_time")
            times.append((start, end))
        return cls(
            times=tuple(times),
            weekdays=_ranges(config.get("weekdays") or (), WEEKDAYS, 0, 0, 6, f"{where} weekdays"),
            days_of_month=_ranges(config.get("days_of_month") or (), (), 0, -31, 31, f"{where} days_of_month"),
            months=_ranges(config.get("months") or (), MONTHS, 1, 1, 12, f"{where} months"),
            years=_ranges(config.get("years") or (), (), 0, 1, 9999, f"{where} years"),
            location=location,
        )

    def contains(self, millis: int) -> bool:
        moment = datetime.fromtimestamp(millis / 1000, tz=ZoneInfo(self.location))
        minute = moment.hour * 60 + moment.minute
        if self.times and not any(start <= minute < end for start, end in self.times):
            return False
        if self.weekdays and not _within(moment.weekday(), self.weekdays):
            return False
        if self.days_of_month and not self._day_matches(moment):
            return False
        if self.months and not _within(moment.month, self.months):
            return False
        return not self.years or _within(moment.year, self.years)

    def _day_matches(self, moment: datetime) -> bool:
        last = _days_in_month(moment.year, moment.month)
        for start, end in self.days_of_month:
            # Negative days count from the month's end (-1 = its last day), as in Alertmanager.
            low, high = (start if start > 0 else last + start + 1), (end if end > 0 else last + end + 1)
            if low <= moment.day <= high:
                return True
        return False


def _within(value: int, ranges: Iterable[Range]) -> bool:
    return any(start <= value <= end for start, end in ranges)


def _days_in_month(year: int, month: int) -> int:
    following = datetime(year + month // 12, month % 12 + 1, 1)
    return (following - datetime(year, month, 1)).days


@dataclass(frozen=True)
class MaintenanceWindow:
    name: str
    matchers: tuple[Matcher, ...]
    intervals: tuple[TimeInterval, ...]

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> MaintenanceWindow:
        name = str(config.get("name") or "")
        where = f"maintenance window {name or '(unnamed)'}"
        if not name:
            raise ValueError(f"{where}: needs a name (it is what a muted page's log line says)")
        matchers = tuple(Matcher.parse(str(m)) for m in config.get("matchers") or ())
        if not matchers:
            raise ValueError(f"{where}: needs at least one matcher (it would mute every alert)")
        intervals = tuple(TimeInterval.from_config(i, f"{where} interval {n}")
                          for n, i in enumerate(config.get("time_intervals") or (), start=1))
        if not intervals:
            raise ValueError(f"{where}: needs time_intervals")
        return cls(name, matchers, intervals)

    def active(self, millis: int) -> bool:
        return any(interval.contains(millis) for interval in self.intervals)

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(matcher.matches(labels) for matcher in self.matchers)


def load_windows(path: str | Path) -> tuple[MaintenanceWindow, ...]:
    """The windows of a YAML file: ``maintenance_windows: [{name, matchers, time_intervals}]``."""
    try:
        document = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as exc:
        raise ValueError(f"maintenance windows file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ValueError(f"maintenance windows file {path} is not valid YAML: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("maintenance_windows", []), list):
        raise ValueError(f"maintenance windows file {path}: expected a 'maintenance_windows:' list at the top")
    return tuple(MaintenanceWindow.from_config(w) for w in document.get("maintenance_windows", []))


class Maintenance:
    """A ``Muter``: an alert matching a window while one of its intervals holds is not paged."""

    def __init__(self, windows: Iterable[MaintenanceWindow], clock: Clock) -> None:
        self.windows = tuple(windows)
        self._clock = clock

    def mutes(self, alert: Alert) -> str | None:
        if not self.windows:
            return None
        now = self._clock.now_ms()
        labels = alert_labels(alert)
        for window in self.windows:
            if window.matches(labels) and window.active(now):
                return f"in maintenance window {window.name}"
        return None
