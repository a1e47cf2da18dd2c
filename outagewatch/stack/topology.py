"""Where each process of the local cluster topology listens, and the ClickHouse cluster config.

Pure: it only turns ``ClusterSettings`` into addresses and XML;
``outagewatch.stack.cluster`` starts the processes.

>>> from core.config import ClusterSettings
>>> servers = clickhouse_servers(ClusterSettings())
>>> [(s.name, s.shard, s.replica, s.tcp_port) for s in servers]
[('ch-s1r1', 1, 1, 29000), ('ch-s1r2', 1, 2, 29001), ('ch-s2r1', 2, 1, 29002), ('ch-s2r2', 2, 2, 29003)]
>>> kafka_voters(ClusterSettings())
'1@127.0.0.1:29192,2@127.0.0.1:29193,3@127.0.0.1:29194'
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape

from core.config import ClusterSettings


@dataclass(frozen=True)
class ClickHouseServer:
    """One ClickHouse server of the cluster: its shard and replica (from 1) and its ports."""

    shard: int
    replica: int
    tcp_port: int
    http_port: int
    interserver_port: int

    @property
    def name(self) -> str:
        return f"ch-s{self.shard}r{self.replica}"


def clickhouse_servers(cluster: ClusterSettings) -> list[ClickHouseServer]:
    """Every server, shard-major: server ``i`` is shard ``i // replicas + 1``, replica ``i % replicas + 1``."""
    return [
        ClickHouseServer(shard=i // cluster.clickhouse_replicas + 1, replica=i % cluster.clickhouse_replicas + 1,
                         tcp_port=cluster.clickhouse_base_port + i, http_port=cluster.clickhouse_http_base_port + i,
                         interserver_port=cluster.clickhouse_interserver_base_port + i)
        for i in range(cluster.clickhouse_shards * cluster.clickhouse_replicas)
    ]


def kafka_voters(cluster: ClusterSettings) -> str:
    """``controller.quorum.voters``: every broker is also a controller (node ids from 1)."""
    return ",".join(f"{i + 1}@127.0.0.1:{cluster.kafka_controller_base_port + i}"
                    for i in range(cluster.kafka_brokers))


def clickhouse_cluster_xml(cluster: ClusterSettings, server: ClickHouseServer, user: str, password: str) -> str:
    """The top-level config one server adds: the cluster, its ZooKeeper, its macros, its replication port.

    ``internal_replication``: a ``Distributed`` insert goes to one replica of
    each shard and the ``Replicated*MergeTree`` table copies it to the others
    (without it, the Distributed table would write every replica itself and
    a replica that missed a write would never catch up).

    >>> from core.config import ClusterSettings
    >>> xml = clickhouse_cluster_xml(ClusterSettings(), clickhouse_servers(ClusterSettings())[3], "default", "")
    >>> "<shard>2</shard><replica>ch-s2r2</replica>" in xml, "<interserver_http_port>29012<" in xml
    (True, True)
    """
    shards = []
    for shard in range(1, cluster.clickhouse_shards + 1):
        replicas = "".join(
            f"<replica><host>127.0.0.1</host><port>{s.tcp_port}</port><user>{escape(user)}</user>"
            f"<password>{escape(password)}</password></replica>"
            for s in clickhouse_servers(cluster) if s.shard == shard)
        shards.append(f"      <shard><internal_replication>true</internal_replication>{replicas}</shard>\n")
    return (
        f"  <remote_servers>\n    <{cluster.clickhouse_cluster}>\n{''.join(shards)}"
        f"    </{cluster.clickhouse_cluster}>\n  </remote_servers>\n"
        f"  <zookeeper><node><host>127.0.0.1</host><port>{cluster.zookeeper_port}</port></node>"
        "<session_timeout_ms>30000</session_timeout_ms></zookeeper>\n"
        f"  <macros><shard>{server.shard}</shard><replica>{server.name}</replica></macros>\n"
        "  <interserver_http_host>127.0.0.1</interserver_http_host>\n"
        f"  <interserver_http_port>{server.interserver_port}</interserver_http_port>\n"
        "  <distributed_ddl><path>/clickhouse/task_queue/ddl</path></distributed_ddl>\n"
    )
