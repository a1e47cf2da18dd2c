"""The whole-pipeline benchmarks: e2e in quick mode on the real stack, and their pure helpers."""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from core.config import Settings
from history.client import ClickHouseTarget, connect
from outagewatch.bench.pipeline import e2e
from outagewatch.bench.pipeline.figures import lag_summary, loss_account, peak_memory, percentile
from outagewatch.bench.pipeline.load import EventClock, LoadPlan, Surge, background_templates, fill, surge_template
from outagewatch.pipeline.processes import cpu_seconds, listening_pid, memory_mib, parse_cpu_ticks, parse_status
from outagewatch.stack.process import free_port

FIGURES = {
    "throughput": {"offered_rate_target", "offered_per_s", "acknowledged_per_s", "background", "sustained", "machine"},
    "zero_loss": {"acknowledged", "sampled_out", "expected_rows", "stored_rows", "lost", "zero_loss", "drained",
                  "drain_seconds"},
    "worker_lag_records": {"p50", "p95", "max", "growing", "sink"},
    "drain": {"drain_seconds", "drained"},
    "processes": {"cpu_cores_used", "peak_rss_mib"},
    "cpu_per_report": {"reports", "us_per_report", "cpu_seconds", "measured", "stack_note"},
}


def test_e2e_quick_stores_every_acknowledged_report(settings: Settings, stack: dict[str, Any],
                                                      clickhouse_db: ClickHouseTarget) -> None:
    started = time.monotonic()
    results = e2e.run(settings, quick=True, seconds=5.0, rate=4000.0, database=clickhouse_db.database)
    assert time.monotonic() - started < 80
    by_figure = {result["figure"]: result for result in results}
    assert set(by_figure) == set(FIGURES)
    for figure, keys in FIGURES.items():
        assert keys <= set(by_figure[figure]), f"{figure} lacks {keys - set(by_figure[figure])}"
        assert by_figure[figure]["benchmark"] == "e2e"
    account = by_figure["zero_loss"]
    assert account["acknowledged"] > 10_000
    assert account["stored_rows"] == account["acknowledged"] - account["sampled_out"]
    assert account["zero_loss"] and account["drained"] and account["lost"] == 0
    # Counted independently here: the rows of this run in the test's own database.
    client = connect(clickhouse_db)
    try:
        rows = client.execute("SELECT uniqExact(report_id) FROM reports WHERE startsWith(report_id, %(p)s)",
                              {"p": f"e2e-{results[0]['run_id']}-"})[0][0]
    finally:
        client.disconnect()
    assert rows == account["stored_rows"]
    throughput = by_figure["throughput"]
    assert throughput["acknowledged_per_s"] > 0 and throughput["background"]["statuses"].get("202", 0) > 0
    assert all(value and value > 10 for value in by_figure["processes"]["peak_rss_mib"].values())
    cost = by_figure["cpu_per_report"]
    assert cost["reports"] == account["acknowledged"]
    per_report = cost["us_per_report"]
    # Every process did work for these reports, the broker and ClickHouse of the test's stack included.
    for name in ("collector", "worker", "sink", "broker", "clickhouse", "load_generator"):
        assert per_report[name] is not None and per_report[name] > 0, (name, cost)
    assert per_report["ours"] == round(per_report["collector"] + per_report["worker"] + per_report["sink"], 2)


def test_listening_pid_finds_the_process_on_a_port() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    try:
        assert listening_pid(listener.getsockname()[1]) == os.getpid()
    finally:
        listener.close()
    assert listening_pid(free_port()) is None


def test_percentile_is_nearest_rank() -> None:
    assert percentile([10.0], 95) == 10.0
    assert percentile([3, 1, 2], 0) == 1
    assert percentile(list(range(1, 21)), 95) == 19
    assert percentile(list(range(1, 21)), 100) == 20
    assert percentile([], 50) is None


def test_loss_account_sees_loss_and_duplicates() -> None:
    assert loss_account(500, 0, 500, 500.0)["zero_loss"]
    lost = loss_account(500, 50, 440, 480.0)
    assert (lost["lost"], lost["extra_rows"], lost["zero_loss"]) == (10, 0, False)
    extra = loss_account(500, 50, 460, 520.0)
    assert (extra["lost"], extra["extra_rows"], extra["zero_loss"]) == (0, 10, False)
    assert not loss_account(0, 0, 0, 0.0)["zero_loss"]


def test_lag_summary_flags_a_lag_that_only_grows() -> None:
    steady = lag_summary([(t, 100 + (t % 3) * 10) for t in range(30)])
    assert not steady["growing"] and steady["max"] == 120
    growing = lag_summary([(t, t * 1000) for t in range(30)])
    assert growing["growing"] and growing["p95"] == 28_000
    assert lag_summary([(0, None)])["p95"] is None


def test_peak_memory_and_proc_parsers_on_this_process() -> None:
    reading = memory_mib(os.getpid())
    assert 0 < reading["rss_mib"] <= reading["peak_rss_mib"]
    assert peak_memory({"me": [reading]})["me"] == reading["peak_rss_mib"]
    assert parse_status("VmHWM:\t 2048 kB\nVmRSS:\t 1024 kB\nThreads: 3\n") == {"VmHWM": 2048, "VmRSS": 1024}
    assert parse_cpu_ticks("7 (a) b) R " + " ".join(["0"] * 10) + " 5 6 0") == 11
    assert (cpu_seconds(os.getpid()) or 0) > 0
    assert memory_mib(2**22 + 12345) == {}


def test_load_bodies_carry_run_prefix_event_time_and_unique_ids() -> None:
    plan = LoadPlan(url="http://x", api_key="k", prefix="run-ab12-", seconds=1, rate=0, event_start_ms=0,
                    rooms=20, batch=50)
    from core import schemas

    templates = background_templates(plan, count=2)
    first = schemas.decode(fill(templates[0], 1, 1_795_323_600_000), schemas.ReportBatch).reports
    second = schemas.decode(fill(templates[0], 2, 1_795_323_600_000), schemas.ReportBatch).reports
    assert len(first) == 50 and all(r.report_id.startswith("run-ab12-") for r in first)
    assert {r.ts for r in first} == {1_795_323_600_000}
    assert not {r.report_id for r in first} & {r.report_id for r in second}
    surge = schemas.decode(fill(surge_template(plan, Surge("10x", "room-s", 0, 1, 4)), 3, 1_795_323_600_000),
                           schemas.ReportBatch).reports
    assert {r.kind for r in surge} == {"error"} and len({r.client_id for r in surge}) == 50
    assert EventClock(1000, 2.0, 10.0).at(11.0) == 3000


def test_the_background_is_tallied_per_phase_around_the_surges() -> None:
    from outagewatch.bench.pipeline.load import _Load

    surges = (Surge("10x", "a", at_s=30, seconds=10, connections=1), Surge("100x", "b", at_s=60, seconds=10, connections=1))
    load = _Load(LoadPlan(url="http://x", api_key="k", prefix="p-", seconds=90, rate=0, event_start_ms=0, surges=surges))

    def phases(elapsed: float) -> list[str]:
        counted = load.background_phase(elapsed)
        return [name for name, tally in load.tallies.items() if any(tally is other for other in counted)]

    assert [phases(t) for t in (5, 25, 35, 45, 65, 75)] == [
        [], ["background:calm"], ["background:surge:10x"], [], ["background:surge:100x"], []]
    assert load.tallies["background:calm"].seconds == 10 == load.tallies["background:surge:100x"].seconds
