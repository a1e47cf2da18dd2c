"""The migrations' cluster form: every statement has one, every table a sharding key, and current
ClickHouse (chdb) parses all of it. chdb cannot run Replicated or Distributed engines without a
ZooKeeper and a cluster; the real 18.16 cluster runs them (tests/test_topologies.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from history import migrations, rollups
from history.replicated import SHARDING_KEYS, ClusterLayout, cluster_statements

LAYOUT = ClusterLayout("outagewatch", "ow")
SHIPPED = [migrations.MIGRATIONS_TABLE, *(s for m in migrations.MIGRATIONS for s in m.statements),
           *migrations.optional_statements("25.8.1")]


def cluster_form() -> list[str]:
    return [statement for shipped in SHIPPED for statement in cluster_statements(shipped, LAYOUT)]


def test_every_table_of_the_migrations_has_a_sharding_key_and_both_forms() -> None:
    created = [re.match(r"CREATE TABLE IF NOT EXISTS (\w+)", s) for s in SHIPPED]
    tables = {match.group(1) for match in created if match}
    assert tables == set(SHARDING_KEYS)
    statements = cluster_form()
    for table in tables:
        assert any(f"ow.{table}_local ON CLUSTER outagewatch" in s and "ENGINE = Replicated" in s
                   for s in statements), table
        assert any(s.startswith(f"CREATE TABLE IF NOT EXISTS ow.{table} ON CLUSTER") and "Distributed(" in s
                   for s in statements), table


def test_views_read_and_write_the_shards_own_tables() -> None:
    views = [s for s in cluster_form() if s.startswith("CREATE MATERIALIZED VIEW")]
    assert len(views) == 2
    assert all("TO ow.room_health_1" in v and "_local AS" in v and "FROM ow.room_health_local" in v for v in views)


def test_the_rollups_and_their_source_share_a_sharding_key() -> None:
    # A rebuilt bucket (inserted through the Distributed rollup) lands where the view writes it.
    assert SHARDING_KEYS["room_health_1m"] == SHARDING_KEYS["room_health_1h"] == SHARDING_KEYS["room_health"]


def test_a_statement_with_no_cluster_form_is_refused() -> None:
    with pytest.raises(ValueError, match="no cluster form"):
        cluster_statements("DROP TABLE reports", LAYOUT)
    with pytest.raises(ValueError, match="no sharding key"):
        cluster_statements("CREATE TABLE IF NOT EXISTS surprise (a UInt8) ENGINE = MergeTree() ORDER BY a", LAYOUT)


@pytest.fixture
def chdb_format() -> Iterator[object]:
    from chdb import session

    chdb = session.Session()

    def format_query(sql: str) -> str:
        literal = "'" + sql.replace("\\", "\\\\").replace("'", "\\'") + "'"
        return str(chdb.query(f"SELECT formatQuery({literal})", "TSVRaw"))

    yield format_query
    chdb.close()


def test_current_clickhouse_parses_every_cluster_statement(chdb_format: object) -> None:
    rebuild = [s for table in rollups.ROLLUPS for s in rollups.rebuild_statements(table, 0, 3600, LAYOUT)]
    for statement in [*cluster_form(), *rebuild, rollups.pending_mutations("room_health_1m", LAYOUT)]:
        formatted = chdb_format(statement)  # type: ignore[operator]
        assert "ON CLUSTER" in formatted or "cluster(" in formatted or "INSERT" in formatted, formatted
