"""`outagewatch bench cluster`: faults in the cluster topology under load; one JSON object with each effect.

A simulator recording (``room_failure``: one room fails alone after the
detectors' warm-up) is posted over HTTP to two collectors at ``speed`` x
event time, while three workers and two sinks run on the cluster topology
(three brokers, ClickHouse 2 shards x 2 replicas, ZooKeeper). During the
load, each on its own timeline: one broker is killed (SIGKILL) and
restarted, one worker is killed, a worker joins, one leaves (SIGTERM), one
ClickHouse replica is killed and restarted, and ZooKeeper is restarted. A
child that crashes on its own is started again (as a supervisor would) and
reported. The workers' allowed lateness is scaled by ``speed``, so a report
may be as late in wall time as live. Afterwards:

- lost: reports the collectors acknowledged (202) that are not in
  ``reports`` (nor sampled out by the collector, which keeps their weight);
- duplicates in shipped queries: ``reports FINAL`` and ``room_health FINAL``
  rows beyond one per id / window, the 1-minute rollup's reports beyond the
  windows' (a window inserted twice would count twice there), and room
  windows whose counts differ from the recording's;
- the incident: the failing room's firing alert and the webhook page.

Each fault's effect: when it was injected and recovered, how long until its
health probe held again, and the peak consumer lag of the workers and
sinks in the seconds after it.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from core.config import Settings, cluster_topology
from outagewatch.bench.faults import Fault, FaultRecord, FaultSchedule
from outagewatch.bench.pipeline.harness import machine

log = logging.getLogger("outagewatch.bench")

SCENARIO = "room_failure"
FAILING_ROOM = "room-3"


def _sigkill(pid: int | None) -> None:
    if pid is not None:
        os.kill(pid, signal.SIGKILL)


def _expected_room_windows(ticks: list[Any], window_ms: int) -> dict[tuple[str, int], int]:
    counts: dict[tuple[str, int], int] = defaultdict(int)
    for tick in ticks:
        for report in tick.client_reports():
            counts[(report.room_id, report.ts // window_ms * window_ms // 1000)] += 1
    return counts


class LagSampler:
    """Every ``every_s``: the workers' and the sinks' consumer lag on client-reports, with the time; and
    the CPU seconds of every process ``pids()`` names (first and last reading per process)."""

    def __init__(self, settings: Settings, pids: Callable[[], dict[str, int]], every_s: float = 2.0) -> None:
        self.settings = settings
        self.pids = pids
        self.every_s = every_s
        self.readings: list[tuple[float, int | None, int | None]] = []
        self.cpu: dict[tuple[str, int], tuple[float, float]] = {}
        self.restarts: list[dict[str, Any]] = []
        self.supervise: Callable[[], list[tuple[str, str]]] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lag-sampler", daemon=True)
        self.started = time.monotonic()

    def start(self) -> LagSampler:
        self.started = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        from outagewatch.pipeline.processes import cpu_seconds
        from outagewatch.pipeline.running import group_lag

        s = self.settings
        while not self._stop.wait(self.every_s):
            if self.supervise is not None:
                for name, last_line in self.supervise():
                    self.restarts.append({"name": name, "at_s": round(time.monotonic() - self.started, 1),
                                          "last_log_line": last_line[-300:]})
            for name, pid in self.pids().items():
                used = cpu_seconds(pid)
                if used is not None:
                    first = self.cpu.get((name, pid), (used, used))[0]
                    self.cpu[(name, pid)] = (first, used)
            try:
                worker = group_lag(s.kafka.bootstrap, s.streams.app_id, s.topics.client_reports)
                sink = group_lag(s.kafka.bootstrap, s.history.sink_group_id, s.topics.client_reports)
            except Exception as exc:  # noqa: BLE001 - a broker being down is one of the faults
                log.debug("lag reading failed: %s", exc)
                continue
            self.readings.append((time.monotonic() - self.started, worker, sink))

    def cores_by_kind(self, seconds: float) -> dict[str, float]:
        """Average cores each kind of process used (``collector``, ``worker``, ``sink``, ``kafka``,
        ``clickhouse``): CPU seconds summed over its processes, over ``seconds`` of wall time."""
        used: dict[str, float] = defaultdict(float)
        for (name, _), (first, last) in self.cpu.items():
            used[name.rsplit("-", 1)[0]] += last - first
        return {kind: round(total / seconds, 2) for kind, total in sorted(used.items())} if seconds > 0 else {}

    def peak(self, since_s: float, until_s: float) -> dict[str, int | None]:
        inside = [r for r in self.readings if since_s <= r[0] < until_s]
        return {"worker_lag_peak": max((r[1] for r in inside if r[1] is not None), default=None),
                "sink_lag_peak": max((r[2] for r in inside if r[2] is not None), default=None)}


def _faults(settings: Settings, run: Any, fleet: Any, at: Callable[[float], float]) -> list[Fault]:
    """The schedule; ``at`` scales the full run's seconds to this run's length."""
    from outagewatch.pipeline.fleet import group_stable
    from outagewatch.stack import cluster
    from outagewatch.stack.clickhouse import select_one
    from outagewatch.stack.process import port_open, wait_until

    topology = cluster_topology(settings)
    broker = cluster.kafka_nodes(settings, fetch_jars=True)[-1]
    replica = cluster.clickhouse_nodes(settings)[-1]
    zookeeper = cluster.zookeeper_node(settings)
    servers = cluster.clickhouse_nodes(settings)
    bootstrap, group = run.kafka.bootstrap, run.streams.app_id

    def replicas_writable() -> bool:
        from history.client import connect

        for server in servers:
            client = connect(server.target)
            try:
                # Read-only: no ZooKeeper session; a delay: still fetching what the other replica took.
                readonly = client.execute("SELECT count() FROM system.replicas WHERE is_readonly = 1 "
                                          "OR absolute_delay > 5")[0][0]
            finally:
                client.disconnect()
            if readonly:
                return False
        return True

    def back_in_sync(node_id: int) -> bool:
        """The restarted broker has caught up: it is in the in-sync replicas of every input partition."""
        from kafka.admin import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=topology.kafka.bootstrap, request_timeout_ms=5000)
        try:
            described = admin.describe_topics([run.topics.client_reports, run.topics.room_health])
        finally:
            admin.close()
        return all(node_id in partition["isr_nodes"] for topic in described for partition in topic["partitions"])

    def restart_zookeeper() -> None:
        zookeeper.stop()
        # Its port closes a moment after the process is gone; starting before would find it "taken".
        wait_until(lambda: not port_open("127.0.0.1", zookeeper.port), 60, "ZooKeeper's port to close")
        zookeeper.start()

    workers = fleet.names("worker")
    return [
        Fault("kill one broker", at(15), inject=lambda: _sigkill(broker.process.pid()),
              recover=lambda: broker.launch(), recover_after_s=at(20),
              # A restarted broker recovers its logs first: minutes on a loaded 2-core machine.
              healthy=lambda: back_in_sync(broker.node_id), healthy_timeout_s=600),
        Fault("kill one worker", at(45), inject=lambda: fleet.kill(workers[1]),
              healthy=lambda: group_stable(bootstrap, group, 2)),
        Fault("a worker joins", at(60), inject=lambda: fleet.add("worker", wait=False),
              healthy=lambda: group_stable(bootstrap, group, 3)),
        Fault("a worker leaves", at(90), inject=lambda: fleet.stop_one(workers[0]),
              healthy=lambda: group_stable(bootstrap, group, 2)),
        Fault("kill one ClickHouse replica", at(105), inject=lambda: _sigkill(replica.process.pid()),
              recover=lambda: replica.launch(), recover_after_s=at(20),
              healthy=lambda: select_one(replica.target.with_database("default")) and replicas_writable()),
        Fault("restart ZooKeeper", at(140), inject=restart_zookeeper, healthy=replicas_writable),
    ]


def run(settings: Settings, quick: bool = False, seconds: float | None = None, **_: Any) -> list[dict[str, Any]]:
    from core.kafka_admin import ensure_topics
    from history.api import migrate
    from outagewatch.demo.receiver import WebhookReceiver
    from outagewatch.pipeline.fleet import Fleet, wait_group_settled
    from outagewatch.pipeline.isolation import isolated
    from outagewatch.pipeline.running import FLEET_KEY_NAME
    from outagewatch.simulator import generate
    from outagewatch.simulator.http_target import send_http
    from outagewatch.simulator.pacing import Pacer
    from outagewatch.stack import cluster

    wall_s = seconds if seconds is not None else 170.0
    scale, rooms = (0.005, 8) if quick else (0.02, 40)
    duration_s = 3400  # warm-up 2700 s, the room fails at 2700 s for 600 s
    speed = duration_s / wall_s
    window_ms = settings.streams.window_seconds * 1000

    cluster.up(settings, with_pipeline=False)
    run_id = uuid.uuid4().hex[:8]
    database = f"outagewatch_bench_cluster_{run_id}"
    run_settings, env = isolated(cluster_topology(settings), run_id, database)
    run_dir = settings.stack.data_dir / "bench" / f"cluster-{run_id}"
    topics = list(run_settings.topics.all())
    ensure_topics(run_settings.kafka.bootstrap, dict.fromkeys(topics, run_settings.kafka.partitions),
                  run_settings.kafka.replication_factor)
    migrate(run_settings)
    receiver = WebhookReceiver(run_dir / "alerts-received.ndjson").start()
    child_env = cluster.child_env(settings)  # this environment, pointed at the cluster
    child_env.update(env)  # the run's own topics, groups and database
    # The load stands for a fleet of clients behind one address: a relay key, as the other benchmarks'
    # (each simulated client is its own source, not one script whose error clients the collector caps).
    fleet_secret = secrets.token_urlsafe(18)
    child_env.update(OUTAGEWATCH_ALERTING_WEBHOOK_URLS=receiver.url, OUTAGEWATCH_COLLECTOR_API_KEYS_FILE="",
                     OUTAGEWATCH_COLLECTOR_API_KEYS=f"{FLEET_KEY_NAME}:{fleet_secret}:reports+metrics+relay")
    # Event time runs ``speed`` x wall time: the allowed lateness scales with it, so a report may be as
    # late in wall seconds as live (10 s) before its window closes without it. Unscaled, 10 s of event
    # time is half a wall second at 20x, and a broker failover makes thousands of reports late.
    lateness_s = round(settings.streams.allowed_lateness_seconds * speed)
    child_env["OUTAGEWATCH_STREAMS_ALLOWED_LATENESS_SECONDS"] = str(lateness_s)
    fleet = Fleet(run_settings, run_dir, child_env, collectors=2, workers=3, sinks=2,
                  worker_args=("--idle-seconds", "5"))
    start_ms = (int(time.time() * 1000) - duration_s * 1000) // window_ms * window_ms
    ticks = list(generate(SCENARIO, seed=0, scale=scale, rooms=rooms, duration_s=duration_s, start_ms=start_ms))
    total = sum(len(tick.client_reports()) for tick in ticks)
    stack_pids = {**{f"kafka-{i}": node.process.pid() for i, node in enumerate(cluster.kafka_nodes(settings))},
                  **{f"clickhouse-{i}": node.process.pid() for i, node in enumerate(cluster.clickhouse_nodes(settings))}}
    sampler = LagSampler(run_settings, lambda: {**{n: p for n, p in stack_pids.items() if p}, **fleet.pids()})
    records: list[FaultRecord] = []
    deliveries: list[Any] = []
    try:
        fleet.start()
        wait_group_settled(run_settings.kafka.bootstrap, run_settings.streams.app_id, 3)
        urls = fleet.collector_urls()
        secret = fleet_secret
        senders = [threading.Thread(target=lambda i=i: deliveries.append(
            send_http(ticks[i::len(urls)], urls[i], secret, pacer=Pacer(speed))), name=f"sender-{i}", daemon=True)
            for i in range(len(urls))]
        began = time.monotonic()
        sampler.supervise = fleet.restart_crashed
        sampler.start()
        for sender in senders:
            sender.start()
        records = FaultSchedule(_faults(settings, run_settings, fleet, lambda s: s * wall_s / 170.0)).run()
        for sender in senders:
            sender.join()
        accepted = sum(d.reports for d in deliveries)
        outcome = _drain_and_count(run_settings, fleet, accepted, ticks, window_ms)
        # Until everything was stored: the pipeline's work for the load, not the senders' pace alone.
        load_s = time.monotonic() - began
        cores = sampler.cores_by_kind(load_s)
        effects = []
        for index, record in enumerate(records):
            until = records[index + 1].injected_at_s if index + 1 < len(records) else record.injected_at_s + 30
            effects.append({**record.__dict__, **sampler.peak(record.injected_at_s, until)})
        pages = [body for body in receiver.received if FAILING_ROOM in str(body) and body.get("status") == "firing"]
        return [{
            "benchmark": "cluster", "quick": quick, "run_id": run_id, "scenario": SCENARIO, "scale": scale,
            "rooms": rooms, "speed": round(speed, 1), "allowed_lateness_event_s": lateness_s,
            "reports_offered": total, "reports_accepted": accepted,
            "load_seconds": round(load_s, 1), "reports_per_s": round(accepted / load_s, 1) if load_s else None,
            "cpu_cores_used": cores,
            "reports_per_core_s": {kind: round(accepted / load_s / used, 0) for kind, used in cores.items() if used},
            "sender_retries": sum(d.retries for d in deliveries),
            "topology": {"brokers": settings.cluster.kafka_brokers, "min_insync_replicas":
                         settings.cluster.min_insync_replicas, "clickhouse_shards": settings.cluster.clickhouse_shards,
                         "clickhouse_replicas": settings.cluster.clickhouse_replicas, "collectors": 2, "workers": 3,
                         "sinks": 2},
            "faults": effects, "crashed_and_restarted": sampler.restarts, **outcome,
            "incident_paged": bool(outcome["incident_alerts"]) and bool(pages),
            "webhook_pages_for_room": len(pages),
            "machine": machine(), "logs": str(run_dir),
        }]
    finally:
        sampler.stop()
        fleet.stop()
        receiver.stop()
        _cleanup(run_settings, topics, database)


def _drain_and_count(settings: Settings, fleet: Any, accepted: int, ticks: list[Any],
                     window_ms: int) -> dict[str, Any]:
    """Wait until the workers and sinks caught up and nothing changes any more; count what was stored."""
    from history.client import connect, parse_url
    from outagewatch.pipeline.running import fetch_metrics

    sampled_out = 0
    for url in fleet.collector_urls():
        sampled_out += int(fetch_metrics(url).get("outagewatch_collector_heartbeats_sampled_out_total", 0))
    client = connect(parse_url(settings.clickhouse.url))
    try:
        last: tuple[Any, ...] = ()
        stable_since = deadline = time.monotonic()
        deadline += 300
        while time.monotonic() < deadline:
            now = (client.execute("SELECT uniqExact(report_id) FROM reports")[0][0],
                   client.execute("SELECT count() FROM room_health")[0][0],
                   client.execute("SELECT count() FROM alerts")[0][0])
            if now != last:
                last, stable_since = now, time.monotonic()
            if now[0] + sampled_out >= accepted and time.monotonic() - stable_since > 20:
                break
            time.sleep(2)
        distinct = int(client.execute("SELECT uniqExact(report_id) FROM reports")[0][0])
        final_rows = int(client.execute("SELECT count() FROM reports FINAL")[0][0])
        raw_rows = int(client.execute("SELECT count() FROM reports")[0][0])
        windows = client.execute("SELECT count(), uniqExact(scope, key, window_start) FROM room_health FINAL")[0]
        stored_windows = {(str(key), int(start)): int(reports) for key, start, reports in client.execute(
            "SELECT key, toUInt32(window_start), reports FROM room_health FINAL WHERE scope = 'room'")}
        late = int(client.execute("SELECT sum(late_reports) FROM room_health FINAL WHERE scope = 'room'")[0][0] or 0)
        # What the sink (or a worker) refused and set aside with a reason: not lost, but not in the tables.
        dead_letters = {str(topic): int(count) for topic, count in client.execute(
            "SELECT source_topic, count() FROM dead_letters GROUP BY source_topic")}
        rollup = client.execute(
            "SELECT (SELECT sum(reports) FROM room_health FINAL WHERE scope = 'room'), "
            "(SELECT sumMerge(reports) FROM room_health_1m WHERE scope = 'room')")[0]
        incident = client.execute(
            "SELECT kind, toUInt32(starts_at) FROM alerts FINAL WHERE scope = 'room' AND key = %(room)s "
            "AND status = 'firing' ORDER BY starts_at", {"room": FAILING_ROOM})
    finally:
        client.disconnect()
    expected = _expected_room_windows(ticks, window_ms)
    wrong = {key: (count, stored_windows.get(key)) for key, count in expected.items()
             if stored_windows.get(key) != count}
    first_ms = min(start for _, start in expected) * 1000 if expected else 0
    return {
        "reports_stored_distinct": distinct, "sampled_out": sampled_out,
        "lost": max(0, accepted - distinct - sampled_out),
        "duplicates": {
            "reports_final_rows_beyond_distinct": final_rows - distinct,
            "reports_physical_rows_beyond_distinct": raw_rows - distinct,
            "room_health_final_rows_beyond_distinct": int(windows[0]) - int(windows[1]),
            "rollup_1m_reports_beyond_windows": float(rollup[1] or 0) - float(rollup[0] or 0),
        },
        "room_windows_expected": len(expected), "room_windows_wrong_or_missing": len(wrong),
        # Wrong windows by kind: missing, short (reports that came later than the allowed lateness are
        # dropped from windows by design, and counted in late_reports), over (counted twice).
        "room_windows_missing": sum(1 for _, got in wrong.values() if got is None),
        "room_windows_short_reports": sum(want - got for want, got in wrong.values() if got is not None and got < want),
        "room_windows_over_reports": sum(got - want for want, got in wrong.values() if got is not None and got > want),
        "late_reports_counted": late, "dead_letters_by_topic": dead_letters,
        "wrong_windows_event_s": sorted({(start * 1000 - first_ms) // 1000 for _, start in wrong})[:50],
        "incident_alerts": [{"kind": kind, "starts_at": int(start)} for kind, start in incident],
    }


def _cleanup(settings: Settings, topics: list[str], database: str) -> None:
    from kafka.admin import KafkaAdminClient

    from history.client import connect, parse_url

    try:
        admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap)
        try:
            admin.delete_topics(topics)
        finally:
            admin.close()
        client = connect(parse_url(settings.clickhouse.url).with_database("default"))
        try:
            client.execute(f"DROP DATABASE IF EXISTS {database} ON CLUSTER {settings.clickhouse.cluster}")
        finally:
            client.disconnect()
    except Exception as exc:  # noqa: BLE001 - cleanup only
        log.warning("could not clean up the bench topics and database: %s", exc)
