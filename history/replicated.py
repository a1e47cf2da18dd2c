"""The migrations' statements for a sharded, replicated ClickHouse cluster.

Each table of a migration becomes a ``Replicated*MergeTree`` table named
``<table>_local`` on every server (replicated within its shard through
ZooKeeper, under the ``{shard}``/``{replica}`` macros) and a ``Distributed``
table under the table's own name over them, all created ``ON CLUSTER``. So
every reader and writer keeps today's names: an INSERT into ``room_health``
is split by its sharding key, a SELECT reads every shard.

Sharding keys are a function of the leading ``ORDER BY`` columns, so all
versions of one row land on one shard and ``FINAL`` (applied per shard)
still collapses them. Rollups are materialized views on each shard's local
``room_health_local``, writing into that shard's ``room_health_1m_local``:
the windows of a room and their rollup buckets live on the same shard
(sharded by ``key`` both), no insert crosses the network twice, and a
rollup rebuild (``INSERT INTO room_health_1m SELECT ... FROM room_health
FINAL``) lands each bucket where the view puts it. A view over the
Distributed table instead would fire only on the server that received the
insert and never on the replicas.

>>> layout = ClusterLayout("outagewatch", "ow")
>>> local, distributed = cluster_statements(
...     "CREATE TABLE IF NOT EXISTS alerts (a String) ENGINE = ReplacingMergeTree(v)\\nORDER BY a", layout)
>>> print(local)
CREATE TABLE IF NOT EXISTS ow.alerts_local ON CLUSTER outagewatch (a String) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/ow/alerts_local', '{replica}', v)
ORDER BY a
>>> print(distributed)
CREATE TABLE IF NOT EXISTS ow.alerts ON CLUSTER outagewatch AS ow.alerts_local ENGINE = Distributed(outagewatch, ow, alerts_local, cityHash64(fingerprint))
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Every table the migrations create, with the shard it sends a row to.
SHARDING_KEYS: dict[str, str] = {
    "schema_migrations": "version",
    "reports": "cityHash64(room_id)",
    "room_health": "cityHash64(key)",
    # The rollups' key matches room_health's: a rebuilt bucket lands where the view writes it.
    "room_health_1m": "cityHash64(key)",
    "room_health_1h": "cityHash64(key)",
    "service_health": "cityHash64(key)",
    "server_metrics": "cityHash64(service, host)",
    "alerts": "cityHash64(fingerprint)",
    "anomaly_scores": "cityHash64(key)",
    # Plain MergeTree, nothing to collapse: spread evenly.
    "dead_letters": "rand()",
    # An incident's notes on one shard, so ReplacingMergeTree collapses a re-sent note.
    "status_notes": "cityHash64(incident_id)",
}

_CREATE = re.compile(
    r"^CREATE TABLE IF NOT EXISTS (?P<table>\w+) (?P<columns>\(.*\)) ENGINE = (?P<engine>\w*MergeTree)"
    r"\((?P<args>[^)]*)\)(?P<rest>.*)$", re.S)
_VIEW = re.compile(
    r"^CREATE MATERIALIZED VIEW IF NOT EXISTS (?P<view>\w+) TO (?P<target>\w+) AS\n"
    r"(?P<select>.*\nFROM )(?P<source>\w+)(?P<rest>\n.*)$", re.S)
_ALTER = re.compile(r"^ALTER TABLE (?P<table>\w+) (?P<rest>.*)$", re.S)


@dataclass(frozen=True)
class ClusterLayout:
    """A cluster of ``<remote_servers>`` and the database the tables go in."""

    cluster: str
    database: str

    def local(self, table: str) -> str:
        return f"{self.database}.{table}_local"

    def zookeeper_path(self, table: str) -> str:
        # The database is in the path: two databases' tables of one name are two replicated tables.
        return f"/clickhouse/tables/{{shard}}/{self.database}/{table}_local"


def cluster_statements(statement: str, layout: ClusterLayout) -> tuple[str, ...]:
    """One shipped statement as the statements that do the same on ``layout``'s cluster.

    >>> layout = ClusterLayout("c", "db")
    >>> cluster_statements("ALTER TABLE reports MODIFY TTL ts + INTERVAL 30 DAY", layout)
    ('ALTER TABLE db.reports_local ON CLUSTER c MODIFY TTL ts + INTERVAL 30 DAY',)
    """
    on = f"ON CLUSTER {layout.cluster}"
    if match := _CREATE.match(statement):
        table = match["table"]
        if table not in SHARDING_KEYS:
            raise ValueError(f"table {table} has no sharding key: add one to history.replicated.SHARDING_KEYS")
        args = ", ".join(part for part in (f"'{layout.zookeeper_path(table)}'", "'{replica}'", match["args"]) if part)
        return (
            f"CREATE TABLE IF NOT EXISTS {layout.local(table)} {on} {match['columns']} "
            f"ENGINE = Replicated{match['engine']}({args}){match['rest']}",
            f"CREATE TABLE IF NOT EXISTS {layout.database}.{table} {on} AS {layout.local(table)} "
            f"ENGINE = Distributed({layout.cluster}, {layout.database}, {table}_local, {SHARDING_KEYS[table]})",
        )
    if match := _VIEW.match(statement):
        return (f"CREATE MATERIALIZED VIEW IF NOT EXISTS {layout.database}.{match['view']} {on} "
                f"TO {layout.local(match['target'])} AS\n{match['select']}{layout.local(match['source'])}"
                f"{match['rest']}",)
    if match := _ALTER.match(statement):
        return (f"ALTER TABLE {layout.local(match['table'])} {on} {match['rest']}",)
    raise ValueError(f"no cluster form for this statement; teach history.replicated about it:\n{statement}")
