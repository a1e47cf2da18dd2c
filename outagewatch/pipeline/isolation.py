"""A run of its own: topics, consumer groups and ClickHouse database nobody else uses.

The same overrides go to the child processes (as ``OUTAGEWATCH_*``
variables) and to this process (as a ``Settings``), so both sides agree.

>>> from core.config import Settings
>>> settings, env = isolated(Settings(), "r1", database="bench_r1")
>>> settings.topics.alerts, settings.streams.app_id, settings.history.sink_group_id
('alerts-r1', 'outagewatch-streams-r1', 'outagewatch-history-r1')
>>> env["OUTAGEWATCH_TOPICS_CLIENT_REPORTS"], settings.clickhouse.url
('client-reports-r1', 'clickhouse://default:@127.0.0.1:19000/bench_r1')
"""

from __future__ import annotations

import dataclasses
from urllib.parse import urlsplit, urlunsplit

from core.config import Settings


def with_database(url: str, database: str) -> str:
    """The ClickHouse URL with another database.

    >>> with_database("clickhouse://u:p@h:9000/outagewatch?secure=0", "x")
    'clickhouse://u:p@h:9000/x?secure=0'
    """
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{database}", parts.query, parts.fragment))


def isolated(settings: Settings, run_id: str, database: str | None = None) -> tuple[Settings, dict[str, str]]:
    """``settings`` with run-unique topic names, app id and sink group; and the same as environment variables."""
    topics = {f.name: f"{getattr(settings.topics, f.name)}-{run_id}" for f in dataclasses.fields(settings.topics)}
    app_id = f"{settings.streams.app_id}-{run_id}"
    sink_group = f"{settings.history.sink_group_id}-{run_id}"
    url = with_database(settings.clickhouse.url, database) if database else settings.clickhouse.url
    env = {f"OUTAGEWATCH_TOPICS_{name.upper()}": topic for name, topic in topics.items()}
    env.update({"OUTAGEWATCH_STREAMS_APP_ID": app_id, "OUTAGEWATCH_HISTORY_SINK_GROUP_ID": sink_group,
                "OUTAGEWATCH_CLICKHOUSE_URL": url, "OUTAGEWATCH_KAFKA_BOOTSTRAP": settings.kafka.bootstrap})
    changed = dataclasses.replace(
        settings,
        topics=dataclasses.replace(settings.topics, **topics),
        streams=dataclasses.replace(settings.streams, app_id=app_id),
        history=dataclasses.replace(settings.history, sink_group_id=sink_group),
        clickhouse=dataclasses.replace(settings.clickhouse, url=url),
    )
    return changed, env
