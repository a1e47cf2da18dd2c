"""The reader user can read and nothing else; migrate explains where it comes from."""

from __future__ import annotations

import pytest
from clickhouse_driver.errors import ServerException

from core.config import Settings
from history import api
from history.client import ClickHouseTarget, connect
from tests.history.history_testkit import settings_for

pytestmark = pytest.mark.integration


def test_reader_can_select_and_cannot_write_or_change_the_schema(
    settings: Settings, clickhouse_db: ClickHouseTarget,
) -> None:
    own = settings_for(settings, clickhouse_db)
    result = api.migrate(own)
    assert result.server_version.startswith("18.16")
    assert "users.xml" in api.migrate(own, create_reader=True).reader  # 18.16: no CREATE USER
    writer = connect(clickhouse_db)
    writer.execute("INSERT INTO alerts (event_ts, fingerprint, status) VALUES", [(1795323600, "fp", "firing")])
    writer.disconnect()

    reader = connect(api.reader_target(own))
    try:
        assert reader.execute("SELECT fingerprint, status FROM alerts FINAL") == [("fp", "firing")]
        # readonly=2 still lets dashboards set per-query limits.
        assert reader.execute("SELECT count() FROM alerts", settings={"max_execution_time": 5}) == [(1,)]
        refused = {
            "INSERT": "INSERT INTO alerts (fingerprint, status) SELECT 'x', 'firing'",
            "CREATE": "CREATE TABLE sneaky (x UInt8) ENGINE = Memory",
            "DROP": "DROP TABLE alerts",
            "ALTER": "ALTER TABLE alerts DELETE WHERE 1",
            "CREATE DATABASE": "CREATE DATABASE sneaky_db",
        }
        for what, sql in refused.items():
            with pytest.raises(ServerException) as caught:
                reader.execute(sql)
            assert caught.value.code == 164, (what, caught.value)  # READONLY
    finally:
        reader.disconnect()
    writer = connect(clickhouse_db)
    try:
        assert writer.execute("SELECT count() FROM alerts") == [(1,)]
        assert writer.execute("EXISTS TABLE sneaky") == [(0,)]
    finally:
        writer.disconnect()


def test_reader_statements_for_servers_with_access_control() -> None:
    from history.access import ensure_reader

    executed: list[tuple[str, dict[str, str]]] = []
    done = ensure_reader(lambda sql, params: executed.append((sql, dict(params))), "24.8.4.13", "outagewatch",
                         "outagewatch_reader", "s3cret")
    assert "readonly=2" in done
    assert [sql.split()[0] for sql, _ in executed] == ["CREATE", "ALTER", "GRANT"]
    assert all(params == {"password": "s3cret"} for _, params in executed)
    assert "s3cret" not in " ".join(sql for sql, _ in executed)  # bound by the driver, never pasted
