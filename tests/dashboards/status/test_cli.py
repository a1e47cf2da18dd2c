"""`outagewatch status-page note`: a public note lands in status_notes and on the page; bad input is refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.config import Settings
from history.client import ClickHouseTarget, connect
from outagewatch.cli import main
from tests.dashboards.status.statuskit import (
    FINGERPRINT,
    SeededHistory,
    alert_event,
    execute,
    page_settings,
    serving,
)
from tests.dashboards.status.test_server import get


def environment(monkeypatch: pytest.MonkeyPatch, target: ClickHouseTarget, tmp_path: Path) -> None:
    monkeypatch.setenv("OUTAGEWATCH_CLICKHOUSE_URL",
                       f"clickhouse://{target.user}:{target.password}@{target.host}:{target.port}/{target.database}")
    monkeypatch.chdir(tmp_path)


@pytest.mark.integration
def test_note_is_stored_and_shown(seeded_history: SeededHistory, settings: Settings, monkeypatch: pytest.MonkeyPatch,
                                  tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target, now = seeded_history.target, seeded_history.now
    start = now - 300
    execute(target, alert_event(now, FINGERPRINT, "firing", "platform", "ios", "crash", "warning", start,
                                start + 10))
    environment(monkeypatch, target, tmp_path)
    incident = f"{FINGERPRINT}-{start}"
    assert main(["status-page", "note", incident, "A fix for the <iOS> crash is rolling out."]) == 0
    assert f"added to incident {incident}" in capsys.readouterr().out

    client = connect(target)
    assert client.execute("SELECT incident_id, body FROM status_notes") == [
        (incident, "A fix for the <iOS> crash is rolling out.")]
    client.disconnect()
    with serving(page_settings(settings, target)) as server:
        page = get(server.url + "/")[1]
        assert "A fix for the &lt;iOS&gt; crash is rolling out." in page and "<iOS>" not in page
        (found,) = json.loads(get(server.url + "/api/v2/incidents.json")[1])["incidents"][:1]
        assert found["id"] == incident and found["status"] == "identified"
        assert found["incident_updates"][0]["body"] == "A fix for the <iOS> crash is rolling out."


@pytest.mark.integration
def test_note_refuses_unknown_and_malformed_incidents(seeded_history: SeededHistory, monkeypatch: pytest.MonkeyPatch,
                                                      tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = seeded_history.target
    environment(monkeypatch, target, tmp_path)
    assert main(["status-page", "note", "'; DROP TABLE alerts; --", "x"]) == 1
    assert main(["status-page", "note", f"{FINGERPRINT}-1", "x"]) == 1
    assert main(["status-page", "note", f"{FINGERPRINT}-1", "   "]) == 1
    messages = capsys.readouterr().err
    assert "is not an incident id" in messages and f"no incident {FINGERPRINT}-1" in messages
    assert "the note is empty" in messages
