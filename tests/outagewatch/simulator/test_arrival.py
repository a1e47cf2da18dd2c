"""Arrivals: reports leave in arrival order, late where the model says, none lost, clocks broken on purpose."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from core.schemas import decode_report
from outagewatch.simulator.arrival import ArrivalModel, Arrivals
from outagewatch.simulator.engine import generate

RUN = {"seed": 4, "scale": 0.01, "duration_s": 90, "rooms": 30}


def released(model: ArrivalModel) -> tuple[list[list[int]], list[int], list[int]]:
    """Per tick: the event times released at its end; the generated and the released report ids."""
    arrivals = Arrivals(model, seed=1)
    per_tick, generated, out = [], [], []
    for tick in generate("room_failure", **RUN):
        generated.extend(tick.columns.seq.tolist())
        arrivals.push(tick)
        lines = arrivals.due(tick.end_ms)
        per_tick.append((tick.end_ms, [decode_report(line).ts for line in lines]))
        out.extend(decode_report(line).report_id for line in lines)
    out.extend(decode_report(line).report_id for line in arrivals.rest())
    return per_tick, generated, out  # type: ignore[return-value]


def test_without_delays_reports_arrive_in_event_time_order_as_they_happen() -> None:
    per_tick, generated, out = released(ArrivalModel())
    flat = [ts for _, batch in per_tick for ts in batch]
    assert flat == sorted(flat) and len(out) == len(generated) == len(set(out))
    assert all(end - 1000 <= ts < end for end, batch in per_tick for ts in batch)


def test_late_reports_arrive_after_their_window_would_have_closed() -> None:
    per_tick, generated, out = released(ArrivalModel(late_share=1.0, late_s=(15.0, 16.0)))
    assert len(out) == len(generated) == len(set(out)), "late, not lost"
    for end, batch in per_tick:
        assert all(end - 17_000 <= ts <= end - 15_000 for ts in batch)


def test_batching_and_jitter_disorder_reports_within_seconds() -> None:
    per_tick, _, _ = released(ArrivalModel(batch_s=5.0, jitter_ms=300.0))
    lags = np.array([end - ts for end, batch in per_tick for ts in batch])
    flat = [ts for _, batch in per_tick for ts in batch]
    assert flat != sorted(flat)
    assert lags.min() >= 0 and np.percentile(lags, 50) > 2_000 and np.percentile(lags, 99) < 9_000


def test_a_held_report_leaves_no_earlier_than_its_hold() -> None:
    arrivals = Arrivals(ArrivalModel(), seed=0)
    ticks = list(generate("room_failure", **{**RUN, "duration_s": 3}))
    first = ticks[0]
    hold = np.zeros(first.n_reports, dtype=np.int64)
    hold[0] = first.start_ms + 2_500
    first.columns = dataclasses.replace(first.columns, hold_ms=hold)
    held_id = decode_report(first.report_lines()[0]).report_id
    first._lines = None  # the lines are made again from the changed columns
    seen: list[tuple[int, str]] = []
    for tick in ticks:
        arrivals.push(tick)
        seen += [(tick.end_ms, decode_report(line).report_id) for line in arrivals.due(tick.end_ms)]
    assert [end for end, rid in seen if rid == held_id] == [first.start_ms + 3_000]


def test_broken_clocks_replace_the_time_of_one_report_each() -> None:
    start = next(generate("room_failure", **RUN)).start_ms
    wrong = {10: 4_070_908_800_123, 50: 978_307_200_456}
    arrivals = Arrivals(ArrivalModel(broken_clocks=tuple(wrong.items())), seed=2)
    dated = []
    for tick in generate("room_failure", **RUN):
        arrivals.push(tick)
        dated += [(tick.start_ms, decode_report(line).ts) for line in arrivals.due(tick.end_ms)]
    odd = [(second, ts) for second, ts in dated if not start <= ts < start + 100_000]
    assert odd == [(start + 10_000, wrong[10]), (start + 50_000, wrong[50])]


def test_a_model_that_cannot_be_says_why() -> None:
    with pytest.raises(ValueError, match="late_share"):
        ArrivalModel(late_share=2.0)
    with pytest.raises(ValueError, match="late_s"):
        ArrivalModel(late_s=(30.0, 10.0))
