"""The same simulator recording through the single-node stack and the cluster gives the same answers.

One worker and one sink on the single-node stack; three workers and two
sinks on the cluster topology (three replicated brokers, ClickHouse 2 shards
x 2 replicas behind Distributed tables). Both read the same recording from
Kafka, each on its own topics and database. Compared: which windows closed,
every room window's values (and every scope window's after the first minute,
see ``HEAD_TICKS``), the alerts, the stored reports, and what the shipped
analyst queries answer. This is the suite's one cluster test (CI runs it);
the rest stays on the single-node stack.
"""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from core.config import Settings, cluster_topology
from history.client import connect, parse_url
from history.queries import NAMED_QUERIES
from outagewatch.simulator.world import DEFAULT_START_MS

# Both topologies run at once (about 3 minutes together), after the cluster's first start.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

RECORDING: dict[str, Any] = {"scenario": "room_failure", "seed": 5, "scale": 0.005, "rooms": 8, "duration_s": 3000}
FAILING_ROOM = "room-3"
# The first minute of the replay goes out first, then a pause. Its scope windows (region, platform,
# app_version, global) are compared by key only: at several hundred times real speed, a partition whose
# first reports reach its worker a moment after the others' has reported no progress yet, and the
# scope merger closes those first windows without its partials (on either topology; the sink keeps
# the first publication, see docs/operations.md "Duplicates and the rollups"). Live, event time moves
# at wall speed and no partition falls a window behind by starting a moment late.
HEAD_TICKS = 60
HEAD_END_S = DEFAULT_START_MS // 1000 + HEAD_TICKS
END_S = DEFAULT_START_MS // 1000 + int(RECORDING["duration_s"])
RECORDING_MAX_AGE_S = 10 * 365 * 86_400
# Long enough that a worker starved of CPU for a moment does not take its input for silence.
IDLE_SECONDS = "5"


@dataclass
class Answers:
    """What one topology stored and answers."""

    reports: tuple[int, float] = (0, 0.0)
    windows: list[tuple[Any, ...]] = field(default_factory=list)
    alerts: list[tuple[Any, ...]] = field(default_factory=list)
    queries: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)


@pytest.fixture(scope="module")
def cluster_settings(settings: Settings) -> Iterator[Settings]:
    """The cluster topology's Kafka and ClickHouse, started if needed and stopped again if we started it."""
    from outagewatch.stack import cluster

    state = cluster.up(settings, with_pipeline=False)
    unhealthy = {name: part for name, part in state.items() if isinstance(part, dict) and part.get("healthy") is False}
    if unhealthy:
        pytest.fail(f"the cluster topology is not healthy: {unhealthy}", pytrace=False)
    yield cluster_topology(settings)
    if state["started_seconds"]:
        cluster.down(settings)


def _answers(settings: Settings) -> Answers:
    client = connect(parse_url(settings.clickhouse.url))
    try:
        reports = client.execute("SELECT count(), sum(weight) FROM reports FINAL")[0]
        windows = client.execute(
            "SELECT scope, key, toUInt32(window_start), listeners, reports, errors, error_clients, late_reports "
            "FROM room_health FINAL ORDER BY scope, key, window_start")
        alerts = client.execute(
            "SELECT fingerprint, status, scope, key, kind, severity, toUInt32(starts_at), toUInt32(event_ts) "
            "FROM alerts FINAL ORDER BY fingerprint, event_ts, status")
        # Up to the recording's end: what follows is every key going dark on the wall clock (see below).
        start, end = DEFAULT_START_MS // 1000, END_S
        params = {"room": FAILING_ROOM, "room_id": FAILING_ROOM, "key": FAILING_ROOM, "scope": "room",
                  "start": start, "end": end, "limit": 20}
        queries = {name: [tuple(row) for row in client.execute(query.sql, {p: params[p] for p in query.params})]
                   for name, query in NAMED_QUERIES.items()}
        return Answers((int(reports[0]), round(float(reports[1] or 0), 6)), [tuple(r) for r in windows],
                       [tuple(r) for r in alerts], queries)
    finally:
        client.disconnect()


def _lag(settings: Settings) -> int:
    """What the workers have not read of the input, and the sinks of every topic."""
    from outagewatch.pipeline.running import group_lag

    topics, app = settings.topics, settings.streams.app_id
    # The workers' input, their detection's (windows) and their alert engine's (decisions).
    worker_inputs = (topics.client_reports, topics.room_health, topics.service_health, f"{app}-decisions")
    return int((group_lag(settings.kafka.bootstrap, app, *worker_inputs) or 0)
               + (group_lag(settings.kafka.bootstrap, settings.history.sink_group_id, *topics.all()) or 0))


def _run(base: Settings, ticks: list[Any], workers: int, sinks: int, run_dir: Path) -> Answers:
    """Feed the recording to ``workers`` workers and ``sinks`` sinks of one topology; read what they stored."""
    import os

    from kafka.admin import KafkaAdminClient

    from core.kafka_admin import ensure_topics
    from history.api import migrate
    from outagewatch.pipeline.fleet import Fleet, wait_group_settled
    from outagewatch.pipeline.isolation import isolated
    from outagewatch.simulator import send_kafka

    run_id = uuid.uuid4().hex[:8]
    database = f"topology_{run_id}"
    settings, env = isolated(base, run_id, database)
    topics = list(settings.topics.all())
    ensure_topics(settings.kafka.bootstrap, dict.fromkeys(topics, settings.kafka.partitions),
                  settings.kafka.replication_factor)
    migrate(settings)
    child_env = dict(os.environ, **env, OUTAGEWATCH_KAFKA_REPLICATION_FACTOR=str(settings.kafka.replication_factor),
                     OUTAGEWATCH_CLICKHOUSE_CLUSTER=settings.clickhouse.cluster,
                     # The recording keeps its own dates (its daily rhythm decides whether the room pages):
                     # older than the worker's default bound on a report's age against its Kafka record.
                     OUTAGEWATCH_EVENT_TIME_MAX_AGE_SECONDS=str(RECORDING_MAX_AGE_S))
    fleet = Fleet(settings, run_dir, child_env, collectors=0, workers=workers, sinks=sinks,
                  worker_args=("--idle-seconds", IDLE_SECONDS))
    reports = sum(len(tick.client_reports()) for tick in ticks)
    try:
        fleet.start()
        # Feed only once every worker holds its share: a rebalance mid-stream is a fault, tested elsewhere.
        wait_group_settled(settings.kafka.bootstrap, settings.streams.app_id, workers)
        # The first minute, then a pause: every partition's worker has folded its first reports before the
        # rest races through event time (see HEAD_TICKS).
        head = send_kafka(ticks[:HEAD_TICKS], settings.kafka.bootstrap, settings.topics.client_reports,
                          settings.topics.server_metrics)
        time.sleep(5)
        rest = send_kafka(ticks[HEAD_TICKS:], settings.kafka.bootstrap, settings.topics.client_reports,
                          settings.topics.server_metrics)
        assert head.reports + rest.reports == reports
        answers, stable_since, deadline = Answers(), time.monotonic(), time.monotonic() + 300
        while time.monotonic() < deadline:
            fleet.check()
            latest = _answers(settings)
            if (latest.reports, len(latest.windows), len(latest.alerts)) != (
                    answers.reports, len(answers.windows), len(answers.alerts)):
                stable_since = time.monotonic()
            answers = latest
            # Everything read and stored, and nothing new for a while: the last windows closed on idleness.
            caught_up = _lag(settings) == 0
            if answers.reports[0] == reports and caught_up and time.monotonic() - stable_since > 15:
                break
            time.sleep(2)
        assert answers.reports[0] == reports, f"{answers.reports[0]} of {reports} reports stored; logs in {run_dir}"
        return answers
    finally:
        fleet.stop()
        admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap)
        try:
            admin.delete_topics(topics)
        except Exception:  # noqa: BLE001 - cleanup only
            pass
        finally:
            admin.close()
        on_cluster = f" ON CLUSTER {settings.clickhouse.cluster}" if settings.clickhouse.cluster else ""
        client = connect(parse_url(settings.clickhouse.url).with_database("default"))
        try:
            client.execute(f"DROP DATABASE IF EXISTS {database}{on_cluster}")
        finally:
            client.disconnect()


def test_single_node_and_cluster_give_the_same_answers(stack: dict[str, Any], settings: Settings,
                                                      cluster_settings: Settings, tmp_path: Path) -> None:
    from outagewatch.simulator import generate

    ticks = list(generate(str(RECORDING["scenario"]), seed=int(RECORDING["seed"]), scale=float(RECORDING["scale"]),
                          rooms=int(RECORDING["rooms"]), duration_s=int(RECORDING["duration_s"])))
    with ThreadPoolExecutor(2) as pool:
        single_run = pool.submit(_run, settings, ticks, 1, 1, tmp_path / "single")
        cluster_run = pool.submit(_run, cluster_settings, ticks, 3, 2, tmp_path / "cluster")
        single, clustered = single_run.result(), cluster_run.result()
    for name, answers in (("single", single), ("cluster", clustered)):  # for a failure's post-mortem
        (tmp_path / f"{name}.json").write_text(json.dumps(dataclasses.asdict(answers), default=str))

    assert single.reports == clustered.reports
    assert len(single.windows) > 1000
    assert {w[:3] for w in single.windows} == {w[:3] for w in clustered.windows}, "different windows were closed"
    compared_single, compared_cluster = (
        {w for w in answers.windows if w[0] == "room" or w[2] >= HEAD_END_S} for answers in (single, clustered))
    missing = sorted(compared_single - compared_cluster)
    extra = sorted(compared_cluster - compared_single)
    assert not missing and not extra, f"windows differ: {len(missing)} only single-node, e.g. {missing[:3]}; " \
                                      f"{len(extra)} only cluster, e.g. {extra[:3]}"
    assert any(a[2:5] == ("room", FAILING_ROOM, a[4]) and a[1] == "firing" for a in single.alerts), single.alerts
    # Every room alert of the recording, and the rest before its last minute: there every partition falls
    # silent and the last windows close on wall-clock idleness, a moment apart on each topology, and a global
    # correlation of the rooms still active at that edge may or may not form (seen once in five runs). After
    # the recording's end every key goes dark: those pages follow the wall clock (and when this test stops
    # reading); tests/streams/test_dark_live.py checks them.
    def compared(alerts: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        return [a for a in alerts if (a[2] == "room" and a[7] < END_S) or a[7] < END_S - 60]

    assert compared(single.alerts) == compared(clustered.alerts)
    for name in NAMED_QUERIES:
        assert single.queries[name] == clustered.queries[name], f"{name} answers differently"
