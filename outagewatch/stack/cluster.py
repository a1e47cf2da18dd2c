"""`outagewatch stack up | down | status --topology cluster`: the cluster topology on one machine.

Three KRaft brokers (every one also a controller; topics replicated 3 times,
``min.insync.replicas`` 2), ZooKeeper, ClickHouse as shards x replicas, and
the pipeline's processes (collectors, workers, sinks). Everything has its
own ports (``[cluster]`` settings) and lives under ``stack.data_dir``/cluster,
so it runs beside the single-node stack, which it never touches.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from core.config import Settings, cluster_topology, overrides
from core.kafka_admin import ensure_topics
from history.client import parse_url
from outagewatch.pipeline.roles import Role, pipeline_roles
from outagewatch.stack.clickhouse import ClickHouseNode, select_one, server_version
from outagewatch.stack.kafka import KafkaNode, ensure_jars, new_cluster_id, round_trip
from outagewatch.stack.process import ManagedProcess, NotReady, port_open, wait_until
from outagewatch.stack.topology import clickhouse_cluster_xml, clickhouse_servers, kafka_voters
from outagewatch.stack.zookeeper import ZooKeeperNode

log = logging.getLogger(__name__)


# ClickHouse 18.16 fails "SELECT ... FROM <Distributed> FINAL ORDER BY ..." ("Cannot find column ... in
# source stream") when it reads the shard it is on directly; asking itself over the network, like any other
# shard, answers correctly. Costs a loopback connection per query; current servers need no such setting.
CLUSTER_PROFILE = "<prefer_localhost_replica>0</prefer_localhost_replica>"


def home(settings: Settings) -> Path:
    """The cluster's own data directory (``settings`` as given, not yet pointed at the cluster)."""
    return cluster_topology(settings).stack.data_dir


def _libs(settings: Settings, fetch: bool) -> Path:
    cache, version = settings.stack.cache_dir, settings.stack.kafka_version
    return ensure_jars(cache, version) if fetch else cache / f"kafka-{version}" / "libs"


def zookeeper_node(settings: Settings, fetch_jars: bool = False) -> ZooKeeperNode:
    return ZooKeeperNode(home(settings) / "zookeeper", settings.cluster.zookeeper_port, _libs(settings, fetch_jars))


def _cluster_id(folder: Path) -> str:
    """One KRaft cluster id for every broker, kept so a restart formats nothing anew."""
    path = folder / "kafka-cluster-id"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        path.write_text(new_cluster_id())
    return path.read_text().strip()


def kafka_nodes(settings: Settings, fetch_jars: bool = False) -> list[KafkaNode]:
    c = settings.cluster
    libs, folder = _libs(settings, fetch_jars), home(settings)
    cluster_id = _cluster_id(folder) if fetch_jars else ""
    return [KafkaNode(home=folder / f"kafka-{i + 1}", port=c.kafka_base_port + i,
                      controller_port=c.kafka_controller_base_port + i, libs=libs, heap=c.kafka_heap,
                      partitions=settings.kafka.partitions, node_id=i + 1, voters=kafka_voters(c),
                      cluster_id=cluster_id, replication=c.kafka_brokers, min_isr=c.min_insync_replicas)
            for i in range(c.kafka_brokers)]


def clickhouse_nodes(settings: Settings) -> list[ClickHouseNode]:
    topology = cluster_topology(settings)
    target = parse_url(topology.clickhouse.url)
    nodes = []
    for server in clickhouse_servers(settings.cluster):
        nodes.append(ClickHouseNode(
            home=home(settings) / server.name, target=_with_port(target, server.tcp_port),
            http_port=server.http_port, reader_user=settings.clickhouse.reader_user,
            reader_password=settings.clickhouse.reader_password, profile_settings=CLUSTER_PROFILE,
            extra_config=clickhouse_cluster_xml(settings.cluster, server, target.user, target.password)))
    return nodes


def _with_port(target: Any, port: int) -> Any:
    from dataclasses import replace

    return replace(target, port=port)


def child_env(settings: Settings) -> dict[str, str]:
    """The environment of every pipeline process: this one's, pointed at the cluster."""
    return dict(os.environ, **overrides(settings, cluster_topology(settings)))


def pipeline_processes(settings: Settings) -> list[tuple[Role, ManagedProcess]]:
    folder = home(settings) / "pipeline"
    return [(role, ManagedProcess(role.name, folder, folder / f"{role.name}.log"))
            for role in pipeline_roles(settings)]


def up(settings: Settings, with_pipeline: bool = True) -> dict[str, Any]:
    """Start what is missing (ZooKeeper, brokers, ClickHouse, migrations, pipeline); wait until healthy.

    ``with_pipeline=False``: only Kafka, ZooKeeper and ClickHouse (tests run their own pipeline processes
    on their own topics and databases).
    """
    timeout = settings.stack.ready_timeout_seconds
    topology = cluster_topology(settings)
    started: dict[str, float] = {}
    begin = time.monotonic()

    zookeeper = zookeeper_node(settings, fetch_jars=True)
    if zookeeper.start(timeout=timeout):
        started["zookeeper"] = round(time.monotonic() - begin, 1)

    brokers = kafka_nodes(settings, fetch_jars=True)
    launched = [broker.launch() for broker in brokers]
    for broker in brokers:
        broker.wait_ready(timeout)
    if any(launched):
        started["kafka"] = round(time.monotonic() - begin, 1)
    created = ensure_topics(topology.kafka.bootstrap, dict.fromkeys(topology.topics.all(), topology.kafka.partitions),
                            topology.kafka.replication_factor)
    if created:
        log.info("created topics %s (replication %d)", ", ".join(created), topology.kafka.replication_factor)

    servers = clickhouse_nodes(settings)
    launched = [server.launch() for server in servers]
    for server in servers:
        server.wait_ready(timeout)
    if any(launched):
        started["clickhouse"] = round(time.monotonic() - begin, 1)

    from history.api import migrate

    applied = migrate(topology).applied
    if applied:
        log.info("applied migrations %s on cluster %s", applied, topology.clickhouse.cluster)

    env = child_env(settings)
    processes = pipeline_processes(settings) if with_pipeline else []
    for role, process in processes:
        if process.pid() is None:
            process.start([sys.executable, "-m", "outagewatch", *role.args], env=env)
    for role, process in processes:
        if role.port:
            wait_until(functools.partial(port_open, "127.0.0.1", role.port), timeout, role.name, process)
    if processes:
        started["pipeline"] = round(time.monotonic() - begin, 1)
    env_file = write_env_file(settings)
    result = status(settings, with_pipeline)
    result["started_seconds"] = started
    result["env_file"] = str(env_file)
    return result


def write_env_file(settings: Settings) -> Path:
    """``OUTAGEWATCH_*`` lines that point any command at the cluster (``set -a; . FILE``)."""
    path = home(settings) / "outagewatch.env"
    path.parent.mkdir(parents=True, exist_ok=True)
    changed = overrides(settings, cluster_topology(settings))
    path.write_text("".join(f"{name}={value}\n" for name, value in sorted(changed.items())))
    return path


def down(settings: Settings) -> dict[str, bool]:
    """Stop only what ``up`` started, the pipeline first and ZooKeeper last; data stays."""
    stopped: dict[str, bool] = {}
    for role, process in pipeline_processes(settings):
        stopped[role.name] = process.stop(timeout=30.0)
    for node in clickhouse_nodes(settings):
        stopped[node.home.name] = node.stop()
    for broker in kafka_nodes(settings):
        stopped[broker.home.name] = broker.stop()
    stopped["zookeeper"] = zookeeper_node(settings).stop()
    return stopped


def status(settings: Settings, with_pipeline: bool = True) -> dict[str, Any]:
    """Every component's address, pid and health; the pipeline's too."""
    topology = cluster_topology(settings)
    zookeeper = zookeeper_node(settings)
    state: dict[str, Any] = {"topology": "cluster", "zookeeper": {
        "address": f"127.0.0.1:{zookeeper.port}", "pid": zookeeper.process.pid(), **_probe(zookeeper.serves)}}
    for broker in kafka_nodes(settings):
        state[broker.home.name] = {"address": broker.bootstrap, "pid": broker.process.pid(),
                                   **_probe(lambda b=broker: _listening(b.port))}
    state["kafka"] = {"address": topology.kafka.bootstrap, "replication_factor": topology.kafka.replication_factor,
                      "min_insync_replicas": settings.cluster.min_insync_replicas,
                      **_probe(lambda: round_trip(topology.kafka.bootstrap, timeout_s=5.0,
                                                  replication=topology.kafka.replication_factor))}
    for node in clickhouse_nodes(settings):
        entry: dict[str, Any] = {"address": node.target.describe(), "pid": node.process.pid(),
                                 **_probe(lambda n=node: _listening(n.target.port)
                                          and select_one(n.target.with_database("default")))}
        if entry["healthy"]:
            entry["version"] = server_version(node.target)
        state[node.home.name] = entry
    state["clickhouse"] = {"cluster": topology.clickhouse.cluster, "url": parse_url(topology.clickhouse.url).describe()}
    for role, process in pipeline_processes(settings) if with_pipeline else []:
        state[role.name] = {"pid": process.pid(), "log": str(process.log_file),
                            **_probe(lambda r=role, p=process: _role_healthy(r, p))}
    return state


def _role_healthy(role: Role, process: ManagedProcess) -> bool:
    if process.pid() is None:
        raise NotReady("not running; `outagewatch stack up --topology cluster` starts it")
    if role.kind == "collector":
        with urllib.request.urlopen(f"http://127.0.0.1:{role.port}/healthz", timeout=2) as answer:  # noqa: S310
            return bool(answer.status == 200)
    if role.port:
        return _listening(role.port)
    return True


def _listening(port: int) -> bool:
    if not port_open("127.0.0.1", port, timeout=2.0):
        raise NotReady(f"nothing listens on 127.0.0.1:{port}")
    return True


def _probe(check: Any) -> dict[str, Any]:
    try:
        return {"healthy": bool(check())}
    except Exception as exc:  # noqa: BLE001 - any failure means unhealthy; say which
        return {"healthy": False, "error": f"{type(exc).__name__}: {exc}"}
