"""Fixtures for tests that talk to the real stack.

The stack is brought up (idempotently) by the first test that needs it, with
the same code as `outagewatch stack up`; if it cannot start, those tests
error with the reason; they are never skipped. Every test gets its own
topics and its own ClickHouse database, so tests can run while a demo or
another test session uses the same broker and server.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from core.config import Settings, load_settings
from core.logs import quiet_noisy_libraries
from history.client import ClickHouseTarget, connect, parse_url


def pytest_configure(config: pytest.Config) -> None:
    # A failing test's report shows our INFO lines (pyproject's log_level);
    # the client libraries' reconnect chatter would push them out of view.
    quiet_noisy_libraries()


@pytest.fixture(autouse=True)
def _drop_leaked_log_handlers() -> Iterator[None]:
    """A CLI run in-process points the root logger at that test's captured
    stderr (``setup_logging``). Once that capture closes, every later record
    is a "Logging error" and its line is lost; drop the handler with the test.
    """
    root = logging.getLogger()
    before = set(root.handlers)
    yield
    for handler in root.handlers[:]:
        if handler not in before and type(handler) is logging.StreamHandler:
            root.removeHandler(handler)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return load_settings()


@pytest.fixture(scope="session")
def stack(settings: Settings) -> dict[str, Any]:
    from outagewatch.stack import manager

    state = manager.up(settings)
    unhealthy = {name: part for name, part in state.items() if isinstance(part, dict) and part.get("healthy") is False}
    if unhealthy:
        pytest.fail(f"the local stack is not healthy: {unhealthy}", pytrace=False)
    return state


@pytest.fixture(scope="session")
def kafka_bootstrap(stack: dict[str, Any], settings: Settings) -> str:
    return settings.kafka.bootstrap


@pytest.fixture
def topic_factory(kafka_bootstrap: str) -> Iterator[Callable[..., str]]:
    """Create uniquely named topics for one test; they are deleted after it."""
    from kafka.admin import KafkaAdminClient

    from core.kafka_admin import ensure_topics

    created: list[str] = []

    def make(name: str = "t", partitions: int = 1) -> str:
        topic = f"test-{name}-{uuid.uuid4().hex[:10]}"
        ensure_topics(kafka_bootstrap, {topic: partitions})
        created.append(topic)
        return topic

    yield make
    if created:
        admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
        try:
            admin.delete_topics(created)
        except Exception:  # noqa: BLE001 - cleanup only
            pass
        finally:
            admin.close()


@pytest.fixture(scope="session")
def clickhouse_server(stack: dict[str, Any], settings: Settings) -> ClickHouseTarget:
    return parse_url(settings.clickhouse.url)


@pytest.fixture
def clickhouse_db(clickhouse_server: ClickHouseTarget) -> Iterator[ClickHouseTarget]:
    """A fresh database on the real server for one test, dropped after it."""
    database = f"test_{uuid.uuid4().hex[:10]}"
    admin = connect(clickhouse_server.with_database("default"))
    admin.execute(f"CREATE DATABASE {database}")
    try:
        yield clickhouse_server.with_database(database)
    finally:
        admin.execute(f"DROP DATABASE IF EXISTS {database}")
        admin.disconnect()
