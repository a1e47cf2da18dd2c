"""Starting, checking, counting and stopping the pipeline's processes.

``Pipeline(settings, run_dir, env).start()`` runs ``outagewatch collect``,
``outagewatch worker`` and ``outagewatch history sink`` as children (each
logging to ``run_dir``) under a ``Supervisor`` that restarts any of them
that exits or stops answering its ``/healthz``; the counts it reads are the
real ones: the collector's ``/metrics``, the consumer groups' committed
offsets, and the ``reports`` table in ClickHouse.
"""

from __future__ import annotations

import logging
import secrets
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.config import Settings
from outagewatch.pipeline.processes import Child
from outagewatch.pipeline.supervise import RestartPolicy, Supervisor
from outagewatch.stack.process import StackError, free_port, port_open, wait_until

log = logging.getLogger("outagewatch.pipeline")

# The key the demo's simulator and the benchmarks' load generators post with. They stand for a fleet of
# clients behind one address, so it is a relay key: the collector keeps each report unstamped (counted per
# client, as each real client would be its own source) and applies no per-source limit to it.
FLEET_KEY_NAME = "outagewatch-fleet"


@dataclass(frozen=True)
class CollectorCounts:
    """Reports the collector answered 202 for, and how many of those it sampled out (heartbeats under load, and
    the error reports of rooms flooding it: the kept ones carry their weight)."""

    accepted: int
    sampled_out: int
    shed: int


@dataclass(frozen=True)
class StoredCounts:
    """Distinct reports stored in ClickHouse, and the sum of their weights (= reports they stand for)."""

    rows: int
    weight: float


@dataclass(frozen=True)
class RoomErrors:
    """One room's stored error reports: rows, the reports their weights stand for, distinct clients stored, and
    the distinct error clients they stand for (each client at its smallest weight, as the worker counts)."""

    rows: int
    weight: float
    clients: int
    weighted_clients: float


# Runs on ClickHouse 18.16 and current ClickHouse (tests/outagewatch/pipeline/test_running.py). A replayed row
# is one report (GROUP BY report_id), a client one client (GROUP BY client_id, its smallest weight).
ROOM_ERRORS_SQL = (
    "SELECT sum(reports), sum(weight), count(), sum(client_weight) FROM ("
    " SELECT client_id, count() AS reports, sum(w) AS weight, min(w) AS client_weight FROM ("
    "  SELECT report_id, any(client_id) AS client_id, any(weight) AS w FROM reports"
    "  WHERE room_id = %(room)s AND kind = 'error' AND startsWith(report_id, %(prefix)s) GROUP BY report_id)"
    " GROUP BY client_id)"
)


def fetch_metrics(url: str) -> dict[str, float]:
    """The collector's /metrics page: each sample name summed over its labels, and ``name{label=value}`` too."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as answer:  # noqa: S310 - our own collector
        return sum_samples(answer.read().decode())


def sum_samples(text: str) -> dict[str, float]:
    """Prometheus text to sums by name and by ``name{label=value}`` (one label at a time).

    >>> totals = sum_samples('a_total{kind="reports"} 5\\na_total{kind="samples"} 2\\nb_total 1\\n')
    >>> totals["a_total"], totals['a_total{kind="reports"}'], totals["b_total"]
    (7.0, 5.0, 1.0)
    """
    from prometheus_client.parser import text_string_to_metric_families

    values: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            values[sample.name] = values.get(sample.name, 0.0) + sample.value
            for label, value in sample.labels.items():
                name = f'{sample.name}{{{label}="{value}"}}'
                values[name] = values.get(name, 0.0) + sample.value
    return values


def group_lag(bootstrap: str, group: str, *topics: str) -> int | None:
    """Records of ``topics`` the consumer group has not consumed yet (None while none of them exists).

    A partition the group has not committed on yet counts from its log
    start: a worker still joining is behind by everything waiting for it,
    not "not behind".
    """
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for topic in topics
                      for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            return None
        committed = {tp: meta.offset for tp, meta in admin.list_group_offsets({group: None}).get(group, {}).items()
                     if meta.offset >= 0}
        starts = consumer.beginning_offsets(partitions)
        ends = consumer.end_offsets(partitions)
        return int(sum(max(0, ends[tp] - max(committed.get(tp, starts[tp]), starts[tp])) for tp in partitions))
    finally:
        consumer.close()
        admin.close()


class Pipeline:
    """Collector, worker and sink for ``settings`` (children get ``env`` on top of this environment)."""

    def __init__(self, settings: Settings, run_dir: Path, env: Mapping[str, str],
                 prefer_default_ports: bool = False, restart: RestartPolicy | None = None) -> None:
        self.settings = settings
        self.run_dir = run_dir
        self.env = dict(env)
        self.prefer_default_ports = prefer_default_ports
        self.restart = restart or RestartPolicy(unanswered_s=settings.health.stall_seconds)
        self.collector: Any = None
        self.worker: Child | None = None
        self.sink: Child | None = None
        self.supervisor: Supervisor | None = None
        # This run's fleet key (see FLEET_KEY_NAME): what the load sends as its bearer token.
        self.fleet_secret = secrets.token_urlsafe(18)

    def _collector_env(self) -> dict[str, str]:
        """The configured keys (the demo key, say, for ``simulate --to http``) plus this run's fleet key."""
        configured = self.env.get("OUTAGEWATCH_COLLECTOR_API_KEYS")
        keys = ([entry for entry in configured.split(",") if entry.strip()] if configured is not None
                else list(self.settings.collector.api_keys))
        keys.append(f"{FLEET_KEY_NAME}:{self.fleet_secret}:reports+metrics+relay")
        # A keys file would replace the list: this run's collector takes the list.
        return {**self.env, "OUTAGEWATCH_COLLECTOR_API_KEYS": ",".join(keys), "OUTAGEWATCH_COLLECTOR_API_KEYS_FILE": ""}

    def _port(self, default: int) -> int:
        return default if self.prefer_default_ports and not port_open("127.0.0.1", default) else free_port()

    def start(self) -> Pipeline:
        from outagewatch.pipeline.collector import CollectorProcess

        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.collector = CollectorProcess(self._port(self.settings.collector.port), env=self._collector_env(),
                                          log_path=str(self.run_dir / "collector.log")).start()
        web_port = self._port(self.settings.streams.web_port)
        self.worker = Child("worker", ["worker", "--web-port", str(web_port)], self.env,
                            self.run_dir / "worker.log", health_url=f"http://127.0.0.1:{web_port}/healthz").start()
        sink_port = self._port(self.settings.history.sink_health_port)
        self.sink = Child("sink", ["history", "sink", "--no-migrate", "--health-port", str(sink_port)], self.env,
                          self.run_dir / "sink.log", health_url=f"http://127.0.0.1:{sink_port}/healthz").start()
        wait_until(lambda: port_open("127.0.0.1", web_port), 90, "the worker's web port")
        self.supervisor = Supervisor(self.children, self.restart).start()
        log.info("collector %s (pid %d), worker pid %d (web port %d), sink pid %d (health port %d); logs in %s",
                 self.collector.url, self.collector.pid, self.worker.pid, web_port, self.sink.pid, sink_port,
                 self.run_dir)
        return self

    @property
    def children(self) -> list[Any]:
        """In stopping order: the sink last, so what the worker flushed on the way out is stored."""
        return [child for child in (self.collector, self.worker, self.sink) if child is not None]

    def pids(self) -> dict[str, int]:
        return {"collector": self.collector.pid, "worker": self.worker.pid, "sink": self.sink.pid}  # type: ignore[union-attr]

    def check(self) -> None:
        """Raise ``StackError`` if the supervisor gave up on a child (it kept exiting); a child it restarts is fine."""
        failed = self.supervisor.failed if self.supervisor is not None else {}
        for name, why in failed.items():
            raise StackError(f"the {name} keeps failing: {why}")

    def collector_counts(self) -> CollectorCounts:
        metrics = fetch_metrics(self.collector.url)
        return CollectorCounts(accepted=int(metrics.get('outagewatch_collector_accepted_total{kind="reports"}', 0)),
                               sampled_out=int(metrics.get("outagewatch_collector_heartbeats_sampled_out_total", 0)
                                               + metrics.get("outagewatch_collector_storm_errors_sampled_out_total", 0)),
                               shed=int(metrics.get("outagewatch_collector_shed_total", 0)))

    def stored(self, prefix: str, since_ms: int, until_ms: int) -> StoredCounts:
        """Reports whose id starts with ``prefix`` and event time is in the range (each counted once)."""
        from history.client import connect, parse_url

        client = connect(parse_url(self.settings.clickhouse.url))
        try:
            rows = client.execute(
                "SELECT count(), sum(w) FROM (SELECT report_id, any(weight) AS w FROM reports "
                "WHERE ts >= toDateTime(%(start)s) AND ts <= toDateTime(%(end)s) AND startsWith(report_id, %(prefix)s) "
                "GROUP BY report_id)",
                {"start": since_ms // 1000 - 60, "end": until_ms // 1000 + 60, "prefix": prefix})
            return StoredCounts(rows=int(rows[0][0]), weight=float(rows[0][1] or 0.0))
        finally:
            client.disconnect()

    def room_errors(self, prefix: str, room: str) -> RoomErrors:
        """The error reports of ``room`` whose id starts with ``prefix``, as stored (each counted once)."""
        from history.client import connect, parse_url

        client = connect(parse_url(self.settings.clickhouse.url))
        try:
            rows, weight, clients, distinct = client.execute(ROOM_ERRORS_SQL, {"prefix": prefix, "room": room})[0]
            return RoomErrors(rows=int(rows), weight=float(weight or 0.0), clients=int(clients),
                              weighted_clients=float(distinct or 0.0))
        finally:
            client.disconnect()

    def worker_lag(self) -> int | None:
        return group_lag(self.settings.kafka.bootstrap, self.settings.streams.app_id,
                         self.settings.topics.client_reports)

    def sink_lag(self) -> int | None:
        return group_lag(self.settings.kafka.bootstrap, self.settings.history.sink_group_id,
                         self.settings.topics.client_reports)

    def stop(self) -> None:
        if self.supervisor is not None:
            self.supervisor.stop()
        for child in self.children:
            child.stop()
