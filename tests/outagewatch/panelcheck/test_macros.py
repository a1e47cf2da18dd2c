"""The macro expander matches the plugin's documented expansions."""

from __future__ import annotations

import pytest

from outagewatch.panelcheck.macros import ALL, TimeRange, expand, grafana_interval_seconds

RANGE = TimeRange(1795320000, 1795323600)


def test_time_filter_and_bounds_are_whole_seconds() -> None:
    assert expand("WHERE $__timeFilter(window_start)", RANGE, 10) == (
        "WHERE window_start >= toDateTime(1795320000) AND window_start <= toDateTime(1795323600)")
    assert expand("$__fromTime, $__toTime", RANGE, 10) == "toDateTime(1795320000), toDateTime(1795323600)"


def test_interval_is_at_least_one_second() -> None:
    assert expand("$__interval_s", RANGE, 0) == "1"


def test_conditional_all_keeps_the_condition_for_a_selection() -> None:
    sql = "WHERE $__conditionalAll(key IN (${service}), $service) AND $__conditionalAll(c IN ($c), $c)"
    assert expand(sql, RANGE, 10, {"service": ["a"], "c": ALL}) == "WHERE key IN ('a') AND 1=1"
    assert expand(sql, RANGE, 10, {"service": "", "c": ["x", "y"]}) == "WHERE 1=1 AND c IN ('x','y')"


def test_nested_parentheses_in_macro_arguments() -> None:
    assert expand("$__timeFilter(toDateTime(intDiv(ts, 1000)))", RANGE, 10).startswith(
        "toDateTime(intDiv(ts, 1000)) >= toDateTime(1795320000)")


def test_single_value_variables_go_in_as_they_are() -> None:
    assert expand("key = '${room}' AND k = '$room'", RANGE, 10, {"room": "room-1"}) == "key = 'room-1' AND k = 'room-1'"


def test_unknown_variables_and_18_16_incompatible_macros_are_errors() -> None:
    with pytest.raises(ValueError, match=r"\$room"):
        expand("key = '$room'", RANGE, 10)
    with pytest.raises(ValueError, match="timeInterval"):
        expand("SELECT $__timeInterval(ts)", RANGE, 10)
    with pytest.raises(ValueError, match="unbalanced"):
        expand("$__timeFilter(ts", RANGE, 10)


@pytest.mark.parametrize(("seconds", "expected"), [(300, 10), (3600, 10), (6 * 3600, 20), (86400, 60),
                                                   (7 * 86400, 600), (30 * 86400, 1800)])
def test_grafana_interval_rounding(seconds: int, expected: int) -> None:
    assert grafana_interval_seconds(seconds) == expected
