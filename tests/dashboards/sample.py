"""The sample history the dashboard tests query (see outagewatch.panelcheck.sample_history)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from outagewatch.panelcheck.sample_history import SampleData

END = 1795323600  # 2026-11-22 05:00:00 UTC, on a window and an hour boundary
PLAN = SampleData(end=END, days=7, rooms=4, anomaly_rooms=4, metrics_hours=1)

# A query result: column (name, type) pairs and rows.
Result = tuple[list[tuple[str, str]], list[Sequence[Any]]]
Runner = Callable[[str], Result]
