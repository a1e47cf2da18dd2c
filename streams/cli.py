"""`outagewatch worker`: run a streams worker (Faust) until interrupted."""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING, Any

from core import gctune
from core.config import Settings
from core.health import Health, LivenessGuard, LivenessPolicy

if TYPE_CHECKING:
    from streams.health import WorkerHealth
from core.kafka_admin import ensure_and_count

log = logging.getLogger("outagewatch.streams")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run a streams worker: client reports and server metrics in, closed windows out",
        description=(
            "Consume client-reports and server-metrics, aggregate them in event-time windows kept in "
            "Faust tables, and publish closed windows to room-health and service-health. Start several "
            "with different --web-port values to share the partitions. The web port serves /healthz "
            "(liveness), /readyz and /metrics (Prometheus); a worker whose input waits while nothing moves "
            "for health.stall_seconds logs why and exits with status 75 so that its supervisor restarts it."
        ),
    )
    parser.add_argument("--web-port", type=int, default=None,
                        help="port of the worker's web server: /healthz, /readyz, /metrics and Faust's own pages "
                             "(default: streams.web_port); each worker on one machine needs its own")
    parser.add_argument("--app-id", default=None,
                        help="Faust app id = consumer group and table prefix (default: streams.app_id)")
    parser.add_argument("--batch-max", type=int, default=2000,
                        help="most Kafka messages folded per batch (default: 2000)")
    parser.add_argument("--idle-seconds", type=float, default=None,
                        help="wall seconds without input after which a partition's watermark follows the "
                             "clock, closing its windows (default: streams.window_seconds)")
    parser.add_argument("--no-detection", action="store_true",
                        help="only aggregate windows: run no detectors, alert engine or notifiers in this worker "
                             "(by default every worker detects; one of them runs the alert engine)")
    parser.add_argument("--progress-every", type=float, default=None, metavar="SECONDS",
                        help="print the room pipeline's counters as one JSON line on stdout every SECONDS "
                             "(what `outagewatch bench streams` reads); off by default")
    parser.set_defaults(func=run)


def topic_partitions(settings: Settings) -> tuple[int, int, int, int]:
    """Create our topics if missing; the partition counts of the two inputs and of their two outputs."""
    topics = settings.topics
    reports, samples, rooms, services = ensure_and_count(
        settings, (topics.client_reports, topics.server_metrics, topics.room_health, topics.service_health,
                   topics.dead_letter),
        (topics.client_reports, topics.server_metrics, topics.room_health, topics.service_health))
    return reports, samples, rooms, services


def run(settings: Settings, args: argparse.Namespace) -> int:
    from streams.app import StreamsApp
    from streams.topics import TopicsNotReady, prepare

    report_partitions, metric_partitions, room_partitions, service_partitions = topic_partitions(settings)
    idle_ms = int(args.idle_seconds * 1000) if args.idle_seconds is not None else None
    streams = StreamsApp(settings, report_partitions=report_partitions, metric_partitions=metric_partitions,
                         room_health_partitions=room_partitions, service_health_partitions=service_partitions,
                         web_port=args.web_port, app_id=args.app_id, batch_max=args.batch_max, idle_ms=idle_ms)
    topics = settings.topics
    writes = [topics.room_health, topics.service_health, topics.dead_letter]
    detection = None
    if not getattr(args, "no_detection", False):
        from streams.detection_agents import attach_detection

        detection = attach_detection(streams, settings, batch_max=args.batch_max)
        writes += [topics.alerts, topics.anomaly_scores]
    worker_health = _watch_health(settings, streams, detection)
    health = worker_health.health
    try:
        prepare(settings, streams.io, also=writes)
    except TopicsNotReady as exc:
        log.error("worker not started: %s", exc)
        return 1
    log.info("worker %s: %s (%d partitions) -> %s, %s (%d partitions) -> %s", streams.io.app_id,
             settings.topics.client_reports, report_partitions, settings.topics.room_health,
             settings.topics.server_metrics, metric_partitions, settings.topics.service_health)
    if args.progress_every:
        _print_progress(streams, args.progress_every)
    worker = streams.io.worker()
    worker_health.start(worker.loop)
    gctune.for_throughput()
    LivenessGuard(health).start()
    worker.execute_from_commandline()
    return 0


def _watch_health(settings: Settings, streams: Any, detection: Any) -> WorkerHealth:
    """Liveness, readiness and metrics on the worker's web port (streams/health.py)."""
    from streams.health import EndOffsets, WorkerHealth

    health = Health("worker", policy=LivenessPolicy.from_settings(settings))
    inputs = (settings.topics.client_reports, settings.topics.server_metrics)
    end_offsets = EndOffsets(settings.kafka.bootstrap, inputs, f"{settings.kafka.client_id}-worker-health").start()
    worker_health = WorkerHealth(streams, health, end_offsets, detection)
    alerting = settings.alerting
    if detection is not None and alerting.alertmanager_url and alerting.watchdog_interval_seconds > 0:
        from alerting.watchdog import WatchdogPolicy
        from streams.watchdog import WatchdogSender

        worker_health.watchdog = WatchdogSender(streams.io, alerting.alertmanager_url,
                                                WatchdogPolicy(alerting.watchdog_interval_seconds), health,
                                                worker_health.engine_active)
    elif detection is not None:
        log.info("worker: no Watchdog (dead man's switch) is sent: alerting.alertmanager_url is not set "
                 "or alerting.watchdog_interval_seconds is 0")
    return worker_health


def _print_progress(streams: Any, every: float) -> None:
    import json
    import sys

    # The real stdout: Faust's worker redirects sys.stdout into its log.
    out = sys.__stdout__

    async def progress() -> None:
        if out is not None:
            out.write(json.dumps(streams.rooms.counters) + "\n")
            out.flush()

    streams.io.every(every, "bench-progress", progress)
