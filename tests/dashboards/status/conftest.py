"""The status page's history: a test's own ClickHouse database, migrated and seeded (``statuskit``)."""

from __future__ import annotations

import time

import pytest

from history.client import ClickHouseTarget
from tests.dashboards.status.statuskit import SeededHistory, migrate_and_seed


@pytest.fixture
def seeded_history(clickhouse_db: ClickHouseTarget) -> SeededHistory:
    """``clickhouse_db`` (unique per test, dropped after it) migrated, with ``history_statements`` of now."""
    now = int(time.time())
    migrate_and_seed(clickhouse_db, now)
    return SeededHistory(clickhouse_db, now)
