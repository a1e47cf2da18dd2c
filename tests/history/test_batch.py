"""The sink's pure core: batching, offsets, window dedup, bad-row isolation, backoff."""

from __future__ import annotations

import pytest
from clickhouse_driver.errors import NetworkError, ServerException

from history.batch import BatchPolicy, Origin, PendingBatch, RecentWindows
from history.retry import Backoff, is_retryable
from history.writer import insert_isolating_bad_rows


def test_batch_tracks_next_offsets_and_writes_dead_letters_last() -> None:
    batch = PendingBatch()
    batch.add("dead_letters", [("d",)], Origin("dead-letter", 0, 3), now_ms=0)
    batch.add("reports", [("a",), ("b",)], Origin("client-reports", 1, 10), now_ms=0)
    batch.add("reports", [], Origin("client-reports", 1, 11), now_ms=0)  # a message with no usable rows
    batch.add("alerts", [("x",)], Origin("alerts", 0, 7), now_ms=0)
    assert batch.tables() == ["alerts", "reports", "dead_letters"]
    assert batch.offsets_to_commit() == {("dead-letter", 0): 4, ("client-reports", 1): 12, ("alerts", 0): 8}
    batch.written("reports")
    assert batch.row_count == 2 and batch.tables() == ["alerts", "dead_letters"]
    assert not batch.due(BatchPolicy(max_rows=3, max_seconds=5), now_ms=4_999)
    assert batch.due(BatchPolicy(max_rows=2, max_seconds=5), now_ms=1)


def test_recent_windows_are_bounded_by_event_time_horizon() -> None:
    recent = RecentWindows(horizon_seconds=100)
    for start in range(0, 100_000, 10):
        assert recent.admit(("room", "r", start))
    assert len(recent) <= 11  # only the last 100 s of windows are kept
    assert not recent.admit(("room", "r", 99_990))
    recent.forget([("room", "r", 99_990)])
    assert recent.admit(("room", "r", 99_990))
    recent.load([("room", "q", 99_995)])
    assert not recent.admit(("room", "q", 99_995))


def test_bad_rows_are_isolated_and_retryable_errors_propagate() -> None:
    calls: list[int] = []

    def insert(table: str, rows: object) -> None:
        calls.append(len(rows))  # type: ignore[arg-type]
        if any(row == ("bad",) for row in rows):  # type: ignore[attr-defined]
            raise ServerException("Cannot parse input", code=27)

    rows = [("ok",)] * 6 + [("bad",)] + [("ok",)] * 9
    assert insert_isolating_bad_rows(insert, "t", rows) == [(6, "ServerException: Code: 27. Cannot parse input")]
    assert len(calls) < len(rows)  # bisection, not one insert per row

    def down(table: str, rows: object) -> None:
        raise NetworkError("Connection refused")

    with pytest.raises(NetworkError):
        insert_isolating_bad_rows(down, "t", rows)


def test_retry_classification_and_backoff_growth() -> None:
    assert is_retryable(NetworkError("refused"))
    assert is_retryable(ServerException("Too many parts", code=252))
    assert not is_retryable(ServerException("Cannot parse", code=27))
    assert not is_retryable(ValueError("bad"))
    delays = [Backoff(initial_seconds=1, max_seconds=10).delay(n) for n in range(8)]
    assert all(0.5 <= d <= 1 for d in delays[:1]) and all(5 <= d <= 10 for d in delays[5:])
