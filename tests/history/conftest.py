"""Fixtures for history tests (helpers live in history_testkit.py)."""

from __future__ import annotations

from tests.history.history_testkit import fresh_topics, sink_factory  # noqa: F401 - fixtures
