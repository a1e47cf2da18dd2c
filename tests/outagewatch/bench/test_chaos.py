"""bench chaos: its counting queries on both ClickHouse engines, and the whole benchmark in its --quick form.

The quick run starts its own Kafka and ClickHouse (free ports, data under
the stack's data dir), kills the collector, the worker and the sink,
restarts the broker and stops ClickHouse, and must end with nothing lost,
nothing counted twice, nobody paged twice and the incident paged.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest
from clickhouse_driver.util.escape import escape_params

from core.config import Settings
from history import api, migrations
from history.client import ClickHouseTarget
from outagewatch.bench.pipeline import chaos
from outagewatch.bench.pipeline.accounting import server_rows, stored_by_request, visible_duplicates
from tests.history.history_testkit import settings_for
from tests.history.test_queries import SEED, T0, Chdb


def _seed_server(settings: Settings, target: ClickHouseTarget) -> None:
    api.migrate(settings_for(settings, target))
    run = server_rows(target)
    for statement in SEED:
        run(statement, {})


@pytest.mark.integration
def test_duplicates_and_stored_requests_count_the_same_on_18_16_and_current_clickhouse(
        settings: Settings, clickhouse_db: ClickHouseTarget) -> None:
    _seed_server(settings, clickhouse_db)
    engine = Chdb()
    try:
        migrations.apply(engine.execute, engine.rows, engine.rows("SELECT version()")[0][0], T0)
        for statement in SEED:
            engine.execute(statement)

        def chdb_rows(sql: str, params: dict[str, Any]) -> Sequence[Sequence[Any]]:
            return engine.rows(sql % escape_params(params, None) if params else sql)

        for rows in (server_rows(clickhouse_db), chdb_rows):
            # SEED inserts ten reports twice, one room-health window twice, one alert event twice.
            assert visible_duplicates(rows) == {"reports_final": 0, "room_health_final": 0, "alerts_final": 0,
                                                "rollup_1m_windows": 1, "raw_report_rows_collapsed_by_final": 10}
            # Report ids r0..r99: a "request key" of two characters groups them by their first digit.
            stored = stored_by_request(rows, "r", 2)
            assert stored["r1"] == 11 and sum(stored.values()) == 100
    finally:
        engine.session.close()


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_bench_chaos_quick_loses_nothing_doubles_nothing_and_pages_the_incident(
        settings: Settings, stack: dict[str, Any]) -> None:
    [result] = chaos.run(settings, quick=True)
    faults = {fault["fault"]: fault for fault in result["faults"]}
    assert set(faults) == {"sigkill_collector", "sigkill_worker", "sigkill_sink", "restart_broker",
                           "stop_clickhouse"}, result["faults"]
    assert all(fault["recovered"] for fault in faults.values()), result["faults"]
    assert result["restarts"] == {"collector": 1, "worker": 1, "sink": 1}, result["supervisor_events"]
    assert result["reports"]["acknowledged"] > 50_000 and result["reports"]["lost"] == 0, result["reports"]
    visible = result["duplicates_visible_to_shipped_queries"]
    assert {name: count for name, count in visible.items() if name != "raw_report_rows_collapsed_by_final"} == {
        "reports_final": 0, "room_health_final": 0, "alerts_final": 0, "rollup_1m_windows": 0}
    assert result["pages"]["duplicates"] == 0, result["pages"]
    assert result["incident"]["alert_fired"], result["incident"]
    assert result["ok"], {key: result[key] for key in ("faults", "reports", "pages", "incident")}
