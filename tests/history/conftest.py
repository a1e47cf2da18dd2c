"""Fixtures for history tests (helpers live in history_testkit.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from history.client import ClickHouseTarget
from outagewatch.stack.clickhouse import ClickHouseNode
from outagewatch.stack.process import free_port
from tests.history.history_testkit import fresh_topics, sink_factory  # noqa: F401 - fixtures


@pytest.fixture
def private_clickhouse(tmp_path: Path) -> Iterator[ClickHouseNode]:
    """A ClickHouse of this test only, on free ports: it is the one a test may stop or freeze."""
    node = ClickHouseNode(home=tmp_path / "clickhouse",
                          target=ClickHouseTarget(port=free_port(), database="outage"),
                          http_port=free_port(), reader_user="reader", reader_password="reader")
    node.start(timeout=60)
    try:
        yield node
    finally:
        node.stop()
