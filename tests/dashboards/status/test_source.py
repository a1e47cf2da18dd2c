"""The status page's queries on the local ClickHouse 18.16 (as the read-only user) and on current ClickHouse
(chdb) give the same snapshot: components, statuses, the 24-hour series, top errors, incidents and notes."""

from __future__ import annotations

from typing import Any

import pytest

from core.config import Settings
from dashboards.status.model import Snapshot, parse_rooms
from dashboards.status.source import QUERIES, ClickHouseSource, assemble, clickhouse_runner, params
from history import migrations
from tests.dashboards.status.statuskit import (
    FINGERPRINT,
    ROOM,
    SeededHistory,
    alert_event,
    execute,
    history_statements,
)
from tests.history.history_testkit import Chdb

ROOMS = parse_rooms([f"{ROOM}=Launch night"])


def summary(snapshot: Snapshot) -> dict[str, Any]:
    return {
        "components": [(c.ref.ref, c.name, c.status, c.top_errors, len(c.series)) for c in snapshot.components],
        "incidents": [(i.id, i.status, i.impact, [u.kind for u in i.updates]) for i in snapshot.incidents],
        "indicator": snapshot.indicator,
    }


def extra_statements(now: int) -> list[str]:
    return [alert_event(now, FINGERPRINT, "firing", "cluster", "eu-west", "correlated", "critical", now - 300, now - 290),
            f"INSERT INTO status_notes (incident_id, note_id, created_at, body, inserted_at) SELECT "
            f"'{FINGERPRINT}-{now - 300}', 'n1', toDateTime({now - 100}), 'A fix is rolling out.', toDateTime({now})"]


@pytest.mark.integration
def test_local_server_as_reader_and_chdb_agree(seeded_history: SeededHistory, settings: Settings) -> None:
    target, now = seeded_history.target, seeded_history.now
    reader = target.with_user(settings.clickhouse.reader_user, settings.clickhouse.reader_password)
    source = ClickHouseSource(clickhouse_runner(reader, 5.0), ROOMS, per_kind=50, history_days=90)

    calm = source.load(now)
    assert source.queries_sent == len(QUERIES) == 4
    got = summary(calm)
    assert [ref for ref, *_ in got["components"]] == ["service:auth", "region:eu-west", "platform:ios", f"room:{ROOM}"]
    assert {status for _, _, status, *_ in got["components"]} == {"operational"}  # forged-report alert is private
    assert got["components"][1][3] == (("crash", 480.0), ("timeout", 240.0))
    assert 95 <= got["components"][1][4] <= 97  # 15-minute points over 24 h
    assert got["components"][3][1] == "Launch night"
    assert got["incidents"] == [(f"aaaaaaaaaaaaaaaa-{now - 7 * 86_400}", "resolved", "minor", ["detected", "resolved"])]
    assert got["indicator"] == "none"

    for statement in extra_statements(now):
        execute(target, statement)
    storm = summary(source.load(now + 1))
    assert dict((ref, status) for ref, _, status, *_ in storm["components"])["region:eu-west"] == "major_outage"
    assert storm["incidents"][0] == (f"{FINGERPRINT}-{now - 300}", "identified", "critical",
                                     ["detected", "note"])
    assert storm["indicator"] == "critical"

    chdb = Chdb()
    migrations.apply(chdb.execute, chdb.rows, "26.1", now)
    for statement in [*history_statements(now), *extra_statements(now)]:
        chdb.execute(statement)
    bound = params(now + 1, ROOMS, 90)
    results = {name: chdb.rows(sql, bound) for name, sql in QUERIES.items()}
    assert summary(assemble(now + 1, results, ROOMS, 50)) == storm


@pytest.mark.integration
def test_reader_cannot_write_notes(seeded_history: SeededHistory, settings: Settings) -> None:
    """The page reads as the read-only user: even a bug in it could not write."""
    from clickhouse_driver.errors import Error

    reader = seeded_history.target.with_user(settings.clickhouse.reader_user, settings.clickhouse.reader_password)
    with pytest.raises(Error):
        execute(reader, "INSERT INTO status_notes (incident_id, note_id, created_at, body, inserted_at) "
                        "SELECT 'x', 'y', now(), 'z', now()")
