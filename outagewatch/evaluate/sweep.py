"""``outagewatch evaluate --sweep``: seeded draws of the scenario families, replayed and scored.

Each draw (family, seed) is generated in memory (``simulator.recording``), in
arrival order, through ``streams.detection.replay_alerts``, the pipeline
``outagewatch evaluate`` runs, and scored with the same rules
(``detectors.evaluation``): an incident is detected when a covering alert
fires between its start and 60 s after its end; a page (an alert event no
muter held back) whose episode covers no incident is a false page. Draws run
in ``jobs`` processes; nothing is written to disk. ``scoreboard`` turns the
results into the table.
"""

from __future__ import annotations

import logging
import multiprocessing
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from alerting.policy import AlertingPolicy
from core.timeutil import format_ms, parse_event_time
from detectors.evaluation import alert_episodes, match_incidents, overlapped, parse_labels
from outagewatch.evaluate.pages import on_call_pages, page_records
from outagewatch.evaluate.replay import Coverage
from outagewatch.simulator.families import FULL, Budget, draw, get_family
from outagewatch.simulator.recording import Recording
from outagewatch.simulator.wire import to_client_reports
from streams.detection import replay_alerts

log = logging.getLogger("outagewatch.evaluate.sweep")


@dataclass(frozen=True)
class Job:
    family: str
    seed: int
    budget: Budget = FULL
    window_s: int = 10
    lateness_s: int = 10
    dark_key_s: int = 600
    policy: AlertingPolicy = field(default_factory=AlertingPolicy)
    with_metrics: bool = False
    keep_pages: bool = False


@dataclass(frozen=True)
class IncidentResult:
    id: str
    scope: str
    key: str
    kind: str
    silent: bool
    peak_clients_per_min: float
    delay_s: float | None  # from the labelled start to the first covering page, as evaluate measures it
    loud_from_ms: int | None = None  # when LOUD_PEOPLE_PER_MIN people a minute first reported it
    fired_ms: int | None = None

    @property
    def detected(self) -> bool:
        return self.delay_s is not None

    @property
    def loud_delay_s(self) -> float | None:
        """Delay from the moment the failure was loud (0 when paged before it): the 45 s target's measure."""
        if self.fired_ms is None or self.loud_from_ms is None:
            return None
        return max(0.0, (self.fired_ms - self.loud_from_ms) / 1000.0)


@dataclass(frozen=True)
class DrawResult:
    family: str
    kind: str
    seed: int
    duration_s: int
    room_days: float
    reports: int
    incidents: tuple[IncidentResult, ...]
    alerts: int  # firing episodes paged
    false_pages: tuple[dict[str, Any], ...]
    cpu_s: float
    pages: tuple[dict[str, Any], ...] = ()


def run_draw(job: Job) -> DrawResult:
    """Generate, replay and score one draw (the unit of work of a sweep process)."""
    started = time.process_time()
    recording = Recording(draw(job.family, job.seed, job.budget), with_metrics=job.with_metrics)
    samples = recording.metric_samples()
    coverage = Coverage()
    reports = coverage.track(report for batch in recording.report_batches() for report in to_client_reports(batch))
    emitted = replay_alerts(reports, samples, window_s=job.window_s, lateness_s=job.lateness_s, policy=job.policy,
                            dark_give_up_s=job.dark_key_s)
    pages = on_call_pages(emitted)
    document = recording.labels()
    incidents = parse_labels(document)
    episodes = alert_episodes(pages)
    results = []
    for label, match in zip(document["incidents"], match_incidents(episodes, incidents), strict=True):
        loud_from = parse_event_time(label["loud_from"]) if label["loud_from"] else None
        results.append(IncidentResult(label["id"], label["scope"], label["key"], label["kind"], label["silent"],
                                      label["peak_clients_per_min"], match.delay_s, loud_from, match.fired_ms))
    false_pages = tuple({"scope": e.scope, "key": e.key, "fingerprint": e.fingerprint, "fired": format_ms(e.fired_ms)}
                        for e in episodes if not overlapped(e, incidents))
    kept: tuple[dict[str, Any], ...] = ()
    if job.keep_pages:
        kept = tuple({"family": job.family, "seed": job.seed, **record} for record in page_records(pages, incidents))
    return DrawResult(
        family=job.family, kind=get_family(job.family).kind, seed=job.seed, duration_s=recording.draw.duration_s,
        room_days=coverage.room_days(job.window_s * 1000), reports=coverage.reports, incidents=tuple(results),
        alerts=len(episodes), false_pages=false_pages, cpu_s=round(time.process_time() - started, 3), pages=kept)


def plan(families: Sequence[str], seeds: Iterable[int], **job: Any) -> list[Job]:
    """Every (family, seed) job, the longest draws first so the last ones to finish are short."""
    jobs = [Job(family, seed, **job) for family in families for seed in seeds]
    cost = {(j.family, j.seed): _cost(j) for j in jobs}
    return sorted(jobs, key=lambda j: -cost[(j.family, j.seed)])


def _cost(job: Job) -> float:
    drawn = draw(job.family, job.seed, job.budget)
    return drawn.duration_s * (len(drawn.world.room_ids) + 20)


def run(jobs: Sequence[Job], processes: int, on_result: Callable[[DrawResult, int, int], None] | None = None
        ) -> list[DrawResult]:
    """Run ``jobs`` in ``processes`` worker processes (1: in this one); results by (family, seed)."""
    results: list[DrawResult] = []

    def done(result: DrawResult) -> None:
        results.append(result)
        if on_result:
            on_result(result, len(results), len(jobs))

    if processes <= 1:
        for job in jobs:
            done(run_draw(job))
    else:
        # spawn: a fresh interpreter per worker, whatever this process holds (threads, sockets). Leaving
        # the block, normally or not (an error, Ctrl-C, SIGTERM made SystemExit), terminates the workers.
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            for result in pool.imap_unordered(run_draw, jobs):
                done(result)
    return sorted(results, key=lambda r: (r.family, r.seed))
