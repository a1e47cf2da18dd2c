"""Contract tables filled with sample data, on the local 18.16 server and on chdb.

Generated once per module (the inserts run inside ClickHouse); the panel
queries then run as the read-only user, as Grafana's datasource does.
"""

from __future__ import annotations

import csv
import io
import json
import time
import uuid
from collections.abc import Iterator

import pytest

from core.config import Settings
from history import migrations
from history.client import ClickHouseTarget, connect
from tests.dashboards.sample import PLAN, Result, Runner


@pytest.fixture(scope="module")
def local_runner(clickhouse_server: ClickHouseTarget, settings: Settings) -> Iterator[Runner]:
    database = f"test_dash_{uuid.uuid4().hex[:8]}"
    admin = connect(clickhouse_server.with_database("default"))
    admin.execute(f"CREATE DATABASE {database}")
    writer = connect(clickhouse_server.with_database(database))
    version = writer.execute("SELECT version()")[0][0]
    migrations.apply(writer.execute, writer.execute, version, int(time.time()))
    for statement in PLAN.statements():
        writer.execute(statement)
    writer.disconnect()
    reader = connect(clickhouse_server.with_database(database).with_user(
        settings.clickhouse.reader_user, settings.clickhouse.reader_password))

    def run(sql: str) -> Result:
        rows, columns = reader.execute(sql, with_column_types=True)
        return [(str(n), str(t)) for n, t in columns], list(rows)

    try:
        yield run
    finally:
        reader.disconnect()
        admin.execute(f"DROP DATABASE IF EXISTS {database}")
        admin.disconnect()


@pytest.fixture(scope="module")
def chdb_runner() -> Iterator[Runner]:
    from chdb import session

    chdb = session.Session()
    chdb.query("CREATE DATABASE IF NOT EXISTS ow")
    chdb.query("USE ow")

    def rows(sql: str) -> list[list[str]]:
        return list(csv.reader(io.StringIO(str(chdb.query(sql, "CSV")))))

    version = rows("SELECT version()")[0][0]
    migrations.apply(lambda sql: chdb.query(sql), rows, version, int(time.time()))
    for statement in PLAN.statements():
        chdb.query(statement)

    def run(sql: str) -> Result:
        # The session's timezone is the machine's; Grafana's plugin reads DateTime as UTC epoch anyway.
        payload = json.loads(str(chdb.query(sql, "JSONCompact")) or '{"meta": [], "data": []}')
        return [(m["name"], m["type"]) for m in payload["meta"]], payload["data"]

    try:
        yield run
    finally:
        chdb.close()
