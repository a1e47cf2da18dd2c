"""`outagewatch history migrate | query` as an operator runs them."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys

import pytest
from tests.history.history_testkit import url_of

from history.client import ClickHouseTarget

pytestmark = pytest.mark.integration


def _run(target: ClickHouseTarget, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OUTAGEWATCH_CLICKHOUSE_URL": url_of(target)}
    return subprocess.run([sys.executable, "-m", "outagewatch", "history", *args], capture_output=True, text=True,
                          env=env, timeout=60)


def test_migrate_then_query_with_bound_parameters(clickhouse_db: ClickHouseTarget) -> None:
    first = _run(clickhouse_db, "migrate")
    assert first.returncode == 0, first.stderr
    assert "applied migration 1 reports" in first.stdout and "applied migration 8 dead_letters" in first.stdout
    assert "users.xml" in first.stdout
    again = _run(clickhouse_db, "migrate")
    assert "no migration applied" in again.stdout

    sql = ("SELECT name, engine FROM system.tables WHERE database = currentDatabase() AND name LIKE %(pattern)s "
           "ORDER BY name LIMIT %(n)s")
    as_csv = _run(clickhouse_db, "query", sql, "--param", "pattern=room_health%", "--param", "n=2", "--format", "csv")
    assert as_csv.returncode == 0, as_csv.stderr
    assert list(csv.reader(io.StringIO(as_csv.stdout))) == [
        ["name", "engine"], ["room_health", "ReplacingMergeTree"], ["room_health_1h", "AggregatingMergeTree"]]
    as_json = _run(clickhouse_db, "query", sql, "--param", "pattern=alerts", "--param", "n=5", "--format", "json")
    assert [json.loads(line) for line in as_json.stdout.splitlines()] == [
        {"name": "alerts", "engine": "ReplacingMergeTree"}]
    # A quote in a parameter is data, not SQL.
    injected = _run(clickhouse_db, "query", sql, "--param", "pattern=x' OR '1'='1", "--param", "n=5")
    assert injected.returncode == 0 and "(0 rows)" in injected.stdout
    named = _run(clickhouse_db, "query", "@top_rooms", "--param", "start=1795323600", "--param", "end=1795327200",
                 "--param", "limit=3")
    assert named.returncode == 0 and "total_error_clients" in named.stdout


def test_query_errors_are_one_readable_line(clickhouse_db: ClickHouseTarget) -> None:
    _run(clickhouse_db, "migrate")
    refused = _run(clickhouse_db, "query", "DROP TABLE reports")
    assert refused.returncode == 1 and "Cannot drop table in readonly mode" in refused.stderr
    missing = _run(clickhouse_db, "query", "SELECT %(x)s")
    assert missing.returncode == 2 and "--param x=VALUE" in missing.stderr
