"""The pipeline tests start real workers on topics of their own, as the streams tests do."""

from __future__ import annotations

from tests.streams.conftest import worker_topics  # noqa: F401 - the fixture
