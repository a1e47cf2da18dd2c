"""Maintenance windows: Alertmanager's time_intervals semantics, DST, weekday and month boundaries."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from alerting.maintenance import Maintenance, MaintenanceWindow, TimeInterval, load_windows
from alerting.policy import AlertingPolicy
from alerting.stage import AlertStage
from core.config import load_settings
from core.schemas import Alert
from core.timeutil import ManualClock
from tests.alerting.helpers import WINDOW_MS, decision


def ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> int:
    return int(datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp() * 1000)


def interval(**config: Any) -> TimeInterval:
    return TimeInterval.from_config(config)


def test_times_are_start_inclusive_end_exclusive_in_the_zone() -> None:
    night = interval(times=[{"start_time": "02:00", "end_time": "04:00"}], location="Europe/Paris")
    # Winter: Paris is UTC+1.
    assert not night.contains(ms(2026, 1, 15, 0, 59))
    assert night.contains(ms(2026, 1, 15, 1, 0))
    assert night.contains(ms(2026, 1, 15, 2, 59))
    assert not night.contains(ms(2026, 1, 15, 3, 0))


def test_the_window_follows_the_wall_clock_across_dst() -> None:
    night = interval(times=[{"start_time": "01:00", "end_time": "05:00"}], location="Europe/Paris")
    # Sunday 2026-03-29 the clocks go 02:00 -> 03:00: that night's window is 3 hours long (00:00-03:00 UTC).
    assert night.contains(ms(2026, 3, 29, 0, 0)) and night.contains(ms(2026, 3, 29, 2, 59))
    assert not night.contains(ms(2026, 3, 29, 3, 0))
    # After the change Paris is UTC+2: 01:00 local is 23:00 UTC the day before.
    assert night.contains(ms(2026, 3, 29, 23, 0)) and not night.contains(ms(2026, 3, 30, 3, 0))
    # Autumn, 2026-10-25 03:00 -> 02:00: 01:00-05:00 local lasts 5 hours (23:00-04:00 UTC).
    assert night.contains(ms(2026, 10, 24, 23, 0)) and night.contains(ms(2026, 10, 25, 3, 59))
    assert not night.contains(ms(2026, 10, 25, 4, 0))


def test_weekday_ranges_are_inclusive_and_read_in_the_zone() -> None:
    weekdays = interval(weekdays=["monday:friday"], location="America/New_York")
    # Friday 2026-11-20 23:30 in New York is Saturday 04:30 UTC: still Friday there.
    assert weekdays.contains(ms(2026, 11, 21, 4, 30))
    assert not weekdays.contains(ms(2026, 11, 21, 5, 0))  # Saturday 00:00 local
    assert not weekdays.contains(ms(2026, 11, 23, 4, 59))  # Sunday 23:59 local
    assert weekdays.contains(ms(2026, 11, 23, 5, 0))  # Monday 00:00 local
    weekend = interval(weekdays=["saturday", "sunday"])
    assert weekend.contains(ms(2026, 11, 22, 12)) and not weekend.contains(ms(2026, 11, 23, 0))


def test_days_of_month_count_back_from_the_end_months_and_years() -> None:
    last_two = interval(days_of_month=["-2:-1"])
    assert last_two.contains(ms(2026, 2, 27, 12)) and last_two.contains(ms(2026, 2, 28, 12))
    assert not last_two.contains(ms(2026, 2, 26, 12))
    assert last_two.contains(ms(2028, 2, 29, 12)) and not last_two.contains(ms(2028, 2, 27, 12))  # leap year
    summer = interval(months=["june:august"], years=["2026"])
    assert summer.contains(ms(2026, 7, 1)) and not summer.contains(ms(2027, 7, 1))
    assert not summer.contains(ms(2026, 9, 1))
    assert interval().contains(ms(2026, 1, 1))  # no field set: always


@pytest.mark.parametrize(("config", "message"), [
    ({"weekdays": ["funday"]}, "not a number or a name"),
    ({"times": [{"start_time": "04:00", "end_time": "02:00"}]}, "not before end_time"),
    ({"times": [{"start_time": "25:00", "end_time": "26:00"}]}, "between 00:00 and 24:00"),
    ({"days_of_month": ["0"]}, "outside"),
    ({"months": ["march:january"]}, "starts after it ends"),
    ({"location": "Mars/Olympus"}, "unknown time zone"),
    ({"location": "Local"}, "name the zone"),
    ({"weekday": ["monday"]}, "unknown field"),
])
def test_bad_intervals_say_what_is_wrong(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TimeInterval.from_config(config)


def test_a_window_needs_matchers_and_intervals() -> None:
    with pytest.raises(ValueError, match="at least one matcher"):
        MaintenanceWindow.from_config({"name": "w", "time_intervals": [{}]})
    with pytest.raises(ValueError, match="needs time_intervals"):
        MaintenanceWindow.from_config({"name": "w", "matchers": ["key=r"]})


WINDOWS_YAML = """
maintenance_windows:
  - name: eu-west-nightly
    matchers: ['region=eu-west']
    time_intervals:
      - times: [{start_time: '05:00', end_time: '06:00'}]
        location: UTC
"""


def test_windows_from_settings_mute_in_the_stage_and_the_room_pages_when_it_ends(tmp_path: Path) -> None:
    (tmp_path / "windows.yml").write_text(WINDOWS_YAML)
    settings = load_settings(env={"OUTAGEWATCH_ALERTING_MAINTENANCE_WINDOWS_FILE": str(tmp_path / "windows.yml"),
                                  "OUTAGEWATCH_ALERTING_SILENCES_PATH": str(tmp_path / "silences.json")})
    policy = AlertingPolicy.from_settings(settings.alerting, live_silences=True)
    assert [w.name for w in policy.maintenance] == ["eu-west-nightly"]
    stage = AlertStage(policy)
    # T0 is 05:00 UTC: the window holds for windows 0..359, the room stays bad past 06:00.
    events = [(w, e) for w in range(365) for e in stage.step([decision("room-1", w, True),
                                                              decision("room-2", w, True, region="us-east")])]
    pages = [(w, e.alert.key) for w, e in events if e.alert.status == "firing" and e.muted is None]
    muted = [e.muted for _, e in events if e.muted]
    assert pages[0][1] == "room-2" and "in maintenance window eu-west-nightly" in muted
    released = [w for w, key in pages if key == "room-1"]
    assert released and released[0] * WINDOW_MS >= 3_600_000 - WINDOW_MS  # paged once the hour was over
    assert released[0] * WINDOW_MS <= 3_600_000 + 3 * WINDOW_MS


def test_a_bad_windows_file_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "w.yml").write_text("maintenance_windows: {name: x}")
    with pytest.raises(ValueError, match="expected a 'maintenance_windows:' list"):
        load_windows(tmp_path / "w.yml")
    with pytest.raises(ValueError, match="No such file"):
        load_windows(tmp_path / "missing.yml")


def test_maintenance_muter_only_mutes_matching_alerts() -> None:
    window = MaintenanceWindow.from_config({"name": "w", "matchers": ["kind=~crash|timeout", "key!=room-9"],
                                            "time_intervals": [{}]})
    muter = Maintenance([window], ManualClock(0))

    def alert(key: str, kind: str) -> Alert:
        return Alert(fingerprint="f", status="firing", scope="room", key=key, kind=kind, severity="warning",
                     starts_at=0, event_ts=0, summary="")

    assert muter.mutes(alert("room-1", "crash")) == "in maintenance window w"
    assert muter.mutes(alert("room-9", "crash")) is None and muter.mutes(alert("room-1", "volume")) is None
