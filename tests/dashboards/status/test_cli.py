"""`outagewatch status-page note`: a public note lands in status_notes and on the page; bad input is refused."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from core.config import Settings
from history.client import ClickHouseTarget, connect
from outagewatch.cli import main
from tests.dashboards.status.statuskit import (
    FINGERPRINT,
    alert_event,
    execute,
    migrate_and_seed,
    page_settings,
    serving,
)
from tests.dashboards.status.test_server import get


def environment(monkeypatch: pytest.MonkeyPatch, target: ClickHouseTarget, tmp_path: Path) -> None:
    monkeypatch.setenv("OUTAGEWATCH_CLICKHOUSE_URL",
                       f"clickhouse://{target.user}:{target.password}@{target.host}:{target.port}/{target.database}")
    monkeypatch.chdir(tmp_path)


@pytest.mark.integration
def test_note_is_stored_and_shown(clickhouse_db: ClickHouseTarget, settings: Settings, monkeypatch: pytest.MonkeyPatch,
                                  tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    now = int(time.time())
    migrate_and_seed(clickhouse_db, now)
    start = now - 300
    execute(clickhouse_db, alert_event(now, FINGERPRINT, "firing", "platform", "ios", "crash", "warning", start,
                                       start + 10))
    environment(monkeypatch, clickhouse_db, tmp_path)
    incident = f"{FINGERPRINT}-{start}"
    assert main(["status-page", "note", incident, "A fix for the <iOS> crash is rolling out."]) == 0
    assert f"added to incident {incident}" in capsys.readouterr().out

    client = connect(clickhouse_db)
    assert client.execute("SELECT incident_id, body FROM status_notes") == [
        (incident, "A fix for the <iOS> crash is rolling out.")]
    client.disconnect()
    with serving(page_settings(settings, clickhouse_db)) as server:
        page = get(server.url + "/")[1]
        assert "A fix for the &lt;iOS&gt; crash is rolling out." in page and "<iOS>" not in page
        (found,) = json.loads(get(server.url + "/api/v2/incidents.json")[1])["incidents"][:1]
        assert found["id"] == incident and found["status"] == "identified"
        assert found["incident_updates"][0]["body"] == "A fix for the <iOS> crash is rolling out."


@pytest.mark.integration
def test_note_refuses_unknown_and_malformed_incidents(clickhouse_db: ClickHouseTarget, monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    migrate_and_seed(clickhouse_db, int(time.time()))
    environment(monkeypatch, clickhouse_db, tmp_path)
    assert main(["status-page", "note", "'; DROP TABLE alerts; --", "x"]) == 1
    assert main(["status-page", "note", f"{FINGERPRINT}-1", "x"]) == 1
    assert main(["status-page", "note", f"{FINGERPRINT}-1", "   "]) == 1
    messages = capsys.readouterr().err
    assert "is not an incident id" in messages and f"no incident {FINGERPRINT}-1" in messages
    assert "the note is empty" in messages
