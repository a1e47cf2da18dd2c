"""CPU microseconds per report of every process a whole-pipeline run uses: ours, the broker, ClickHouse and
the load generator, from their CPU seconds (``/proc/<pid>/stat``) before the load and after the drain.

On a shared, noisy machine a rate says little on its own; the CPU one
report costs each process survives the noise. The broker and ClickHouse
are whole processes: on a stack others use too, their figure includes
whatever else ran on it meanwhile (``STACK_NOTE``, printed with the figure).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from core.config import Settings
from outagewatch.pipeline.processes import listening_pid

OURS = ("collector", "worker", "sink")
STACK_NOTE = ("broker and clickhouse are the configured stack's whole processes: anything else that used them "
              "during the run counts too; absent when their pid is not visible")


def stack_pids(settings: Settings) -> dict[str, int]:
    """The broker's and ClickHouse's pids (the processes listening on their configured ports), where visible."""
    from history.client import parse_url
    from outagewatch.stack.manager import kafka_address

    ports = {"broker": kafka_address(settings).port, "clickhouse": parse_url(settings.clickhouse.url).port}
    pids = {name: listening_pid(port) for name, port in ports.items()}
    return {name: pid for name, pid in pids.items() if pid is not None}


def cpu_per_report(before: Mapping[str, float | None], after: Mapping[str, float | None], reports: int,
                   load_cpu_seconds: float | None = None) -> dict[str, Any]:
    """Microseconds of CPU per report for each process, ``ours`` (collector + worker + sink) and ``all``.

    >>> figure = cpu_per_report({"collector": 1.0, "worker": 2.0, "sink": 0.5, "broker": 10.0},
    ...                         {"collector": 1.4, "worker": 2.3, "sink": 0.7, "broker": 10.1}, 100_000, 0.25)
    >>> figure["us_per_report"]
    {'collector': 4.0, 'worker': 3.0, 'sink': 2.0, 'broker': 1.0, 'load_generator': 2.5, 'ours': 9.0, 'all': 12.5}
    >>> cpu_per_report({"worker": None}, {"worker": 3.0}, 0)["us_per_report"]
    {'worker': None, 'load_generator': None, 'ours': None, 'all': None}
    """
    used: dict[str, float | None] = {}
    for name, after_s in after.items():
        before_s = before.get(name)
        used[name] = None if before_s is None or after_s is None else after_s - before_s
    used["load_generator"] = load_cpu_seconds

    def per_report(seconds: float | None) -> float | None:
        return round(seconds * 1e6 / reports, 2) if seconds is not None and reports > 0 else None

    out = {name: per_report(seconds) for name, seconds in used.items()}
    ours = [out.get(name) for name in OURS]
    out["ours"] = round(sum(v for v in ours if v is not None), 2) if all(v is not None for v in ours) else None
    known = [value for value in out.values() if value is not None]
    out["all"] = round(sum(known) - (out["ours"] or 0.0), 2) if reports > 0 and known else None
    return {"reports": reports, "us_per_report": out,
            "cpu_seconds": {name: None if s is None else round(s, 2) for name, s in used.items()}}
