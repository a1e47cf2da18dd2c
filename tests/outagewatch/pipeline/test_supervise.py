"""The supervisor: restarts with backoff (fake children), and a real worker stopped with SIGSTOP.

A stopped worker cannot say it is stuck; its /healthz stops answering while
reports wait for it. The supervisor reports it not live, kills it, starts a
new one, and the new one folds what waited.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from typing import Any

import pytest

from outagewatch.pipeline.processes import Child
from outagewatch.pipeline.running import group_lag
from outagewatch.pipeline.supervise import RestartPolicy, Supervisor
from outagewatch.stack.process import free_port
from tests.streams.conftest import WorkerTopics, generate_reports, produce_batches


class FakeChild:
    """A child that exits when told to; ``starts`` counts its starts, ``fail_starts`` makes them raise."""

    def __init__(self, name: str = "worker", health_url: str | None = None) -> None:
        self.name, self.health_url = name, health_url
        self.running = True
        self.status: int | None = None
        self.starts = 0
        self.kills = 0
        self.fail_starts = 0

    def start(self) -> FakeChild:
        if self.fail_starts:
            self.fail_starts -= 1
            raise RuntimeError("the collector exited with 1 during start-up")
        self.starts += 1
        self.running, self.status = True, None
        return self

    def alive(self) -> bool:
        return self.running

    def exit_status(self) -> int | None:
        return self.status

    def exit(self, status: int) -> None:
        self.running, self.status = False, status

    def kill(self) -> None:
        self.kills += 1
        self.exit(-9)

    def log_tail(self, lines: int = 15) -> str:
        return "worker is not live: 12 records waiting"


FAST = RestartPolicy(first_delay_s=0.01, max_delay_s=0.04, healthy_after_s=3600, max_restarts=4,
                     probe_every_s=0.05, probe_timeout_s=0.5, unanswered_s=0.5, first_answer_s=1.0)


def eventually(check: Callable[[], Any], timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"not within {timeout_s}s")


def test_a_child_that_exits_is_restarted_and_each_step_is_recorded() -> None:
    child = FakeChild()
    supervisor = Supervisor([child], FAST).start()
    try:
        child.exit(75)
        eventually(lambda: child.starts == 1)
        assert [(e.what, e.detail.split(" after")[0]) for e in supervisor.events_of("worker")] == [
            ("exited", "status 75"), ("restarted", "restart 1 in a row")]
        assert supervisor.restarts == {"worker": 1} and supervisor.failed == {}
    finally:
        supervisor.stop()


def test_a_failed_start_is_retried_and_a_crash_loop_is_given_up_with_the_log() -> None:
    child = FakeChild()
    supervisor = Supervisor([child], FAST).start()
    try:
        child.fail_starts = 2
        child.exit(1)
        eventually(lambda: child.starts == 1)
        assert [e.what for e in supervisor.events_of("worker")].count("restart failed") == 2
        for _ in range(2):  # restarts 4 and 5 in a row: over max_restarts
            starts = child.starts
            child.exit(1)
            eventually(lambda starts=starts: child.starts > starts or supervisor.failed)
        child.exit(1)
        failed = eventually(lambda: supervisor.failed)
        assert "restarted 4 times in a row" in failed["worker"] and "worker is not live" in failed["worker"]
    finally:
        supervisor.stop()


def test_a_child_whose_health_does_not_answer_is_killed_and_restarted() -> None:
    # Nothing listens there: the child is up but its /healthz never answers (as under SIGSTOP).
    child = FakeChild(health_url=f"http://127.0.0.1:{free_port()}/healthz")
    supervisor = Supervisor([child], FAST).start()
    try:
        eventually(lambda: child.kills == 1 and child.starts == 1)
        whats = [e.what for e in supervisor.events_of("worker")]
        assert whats[:3] == ["not live", "killed", "restarted"]
        assert "/healthz has not answered for" in supervisor.events_of("worker")[0].detail
    finally:
        supervisor.stop()


@pytest.mark.integration
@pytest.mark.timeout(300)
def test_a_worker_stopped_while_reports_wait_is_reported_not_live_killed_and_replaced(
        worker_topics: WorkerTopics, kafka_bootstrap: str) -> None:
    port = free_port()
    env = {**worker_topics.env, "OUTAGEWATCH_HEALTH_STALL_SECONDS": "15"}
    worker = Child("worker", ["worker", "--web-port", str(port), "--idle-seconds", "1"], env,
                   worker_topics.log_dir / "worker.log", health_url=f"http://127.0.0.1:{port}/healthz").start()
    supervisor = Supervisor([worker], RestartPolicy(unanswered_s=15, probe_every_s=1)).start()
    group = env["OUTAGEWATCH_STREAMS_APP_ID"]
    try:
        now = int(time.time() * 1000)
        produce_batches(kafka_bootstrap, worker_topics.reports, generate_reports(10, 20, now - 30_000, 10_000))
        eventually(lambda: group_lag(kafka_bootstrap, group, worker_topics.reports) == 0, 120)
        first_pid = worker.pid
        os.kill(first_pid, signal.SIGSTOP)
        produce_batches(kafka_bootstrap, worker_topics.reports,
                        generate_reports(10, 20, now - 10_000, 10_000, seed=2))
        eventually(lambda: [e.what for e in supervisor.events_of("worker")][:3] == ["not live", "killed", "restarted"],
                   90)
        not_live = supervisor.events_of("worker")[0]
        assert "/healthz has not answered for" in not_live.detail, not_live
        assert worker.pid != first_pid and worker.alive()
        eventually(lambda: group_lag(kafka_bootstrap, group, worker_topics.reports) == 0, 150)
    finally:
        supervisor.stop()
        worker.stop()
