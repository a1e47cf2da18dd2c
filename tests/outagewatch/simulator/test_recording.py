"""Recording: loudness counts distinct people within the trailing minute; labels carry it."""

from __future__ import annotations

from outagewatch.simulator.families import QUICK, draw
from outagewatch.simulator.labels import Incident
from outagewatch.simulator.recording import LOUD_PEOPLE_PER_MIN, Loudness, Recording
from outagewatch.simulator.scenarios import Label

T = 1_795_323_600_000


def loudness(reports: list[tuple[int, int, float]]) -> Loudness:
    tally = Loudness([Incident("i", 0, Label("room", "r", "crash"), 0, 600)], T)
    for second, person, weight in reports:
        tally._report(0, T + second * 1000, person, weight)
    return tally


def test_the_same_person_counts_once_and_old_reports_fall_out_of_the_minute() -> None:
    # Person 1 reports every 5 s: one person however often; four others come and go.
    tally = loudness([(s, 1, 1.0) for s in range(0, 300, 5)])
    assert tally.peak == [1.0] and tally.loud_from == [None]
    tally = loudness([(0, 1, 1.0), (10, 2, 1.0), (20, 3, 1.0), (70, 4, 1.0), (75, 5, 1.0), (80, 6, 1.0)])
    assert tally.peak == [3.0] and tally.loud_from == [None], "never 5 within one minute"
    tally = loudness([(0, 1, 1.0), (10, 2, 1.0), (20, 3, 1.0), (30, 4, 1.0), (59, 5, 1.0)])
    assert tally.loud_from == [T + 59_000] and tally.peak == [LOUD_PEOPLE_PER_MIN]


def test_a_weighted_report_is_that_many_people() -> None:
    tally = loudness([(3, 1, 40.0), (4, 2, 2.0)])
    assert tally.loud_from == [T + 3_000] and tally.peak == [42.0]


def test_labels_say_when_a_loud_failure_got_loud_and_a_silent_one_is_silent() -> None:
    loud = Recording(draw("room_medium", 2, QUICK))
    for _ in loud.report_batches():
        pass
    (incident,) = loud.labels()["incidents"]
    assert not incident["silent"] and incident["loud_from"] >= incident["start"]
    assert incident["peak_clients_per_min"] >= LOUD_PEOPLE_PER_MIN
    quiet = Recording(draw("slice_dark", 0, QUICK))
    for _ in quiet.report_batches():
        pass
    (incident,) = quiet.labels()["incidents"]
    assert incident["silent"] and incident["loud_from"] is None and incident["peak_clients_per_min"] == 0.0
