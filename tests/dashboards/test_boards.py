"""The generated dashboard JSON is valid for Grafana 11.6 (schemaVersion 41)."""

from __future__ import annotations

from typing import Any

import pytest

from dashboards import provisioning
from dashboards.boards import BOARDS
from dashboards.grafana import DATASOURCE_UID, PLUGIN_ID

SCHEMA_VERSION = 41  # Grafana 11.6
REQUIRED = ("uid", "title", "schemaVersion", "panels", "time", "templating", "annotations", "timezone")
PANEL_REQUIRED = ("id", "type", "title", "gridPos", "datasource", "targets")
BOARDS_JSON = provisioning.dashboards()


def _all_panels(board: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for panel in board["panels"]:
        found.append(panel)
        found.extend(panel.get("panels", []))
    return found


@pytest.mark.parametrize("board", BOARDS_JSON, ids=lambda b: b["uid"])
def test_board_has_the_keys_grafana_requires(board: dict[str, Any]) -> None:
    for key in REQUIRED:
        assert key in board, f"{board['uid']} lacks {key}"
    assert board["schemaVersion"] == SCHEMA_VERSION
    assert board["time"]["from"].startswith("now-") and board["time"]["to"] == "now"
    for panel in _all_panels(board):
        required = ("id", "type", "title", "gridPos") if panel["type"] == "row" else PANEL_REQUIRED
        for key in required:
            assert key in panel, f"{board['uid']} panel {panel.get('title')} lacks {key}"


@pytest.mark.parametrize("board", BOARDS_JSON, ids=lambda b: b["uid"])
def test_panel_ids_are_unique_and_grid_positions_fit(board: dict[str, Any]) -> None:
    panels = _all_panels(board)
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    occupied: set[tuple[int, int]] = set()
    for panel in panels:
        pos = panel["gridPos"]
        assert set(pos) == {"x", "y", "w", "h"}
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24 and pos["h"] > 0 and pos["w"] > 0, panel["title"]
        cells = {(pos["x"] + dx, pos["y"] + dy) for dx in range(pos["w"]) for dy in range(pos["h"])}
        assert not cells & occupied, f"{panel['title']} overlaps another panel"
        occupied |= cells


@pytest.mark.parametrize("board", BOARDS_JSON, ids=lambda b: b["uid"])
def test_every_datasource_reference_is_the_provisioned_clickhouse(board: dict[str, Any]) -> None:
    references = []
    for panel in _all_panels(board):
        if panel["type"] == "row":
            continue
        references.append(panel["datasource"])
        references.extend(target["datasource"] for target in panel["targets"])
    references.extend(v["datasource"] for v in board["templating"].get("list", []) if v["type"] == "query")
    references.extend(a["datasource"] for a in board["annotations"].get("list", []))
    assert references
    assert all(ref == {"type": PLUGIN_ID, "uid": DATASOURCE_UID} for ref in references)
    for panel in _all_panels(board):
        for target in panel.get("targets", []):
            assert target["editorType"] == "sql" and target["format"] in (0, 1) and target["rawSql"]
            assert target["queryType"] == {0: "timeseries", 1: "table"}[target["format"]]


def test_uids_are_stable_and_distinct() -> None:
    uids = [board["uid"] for board in BOARDS_JSON]
    assert uids == [board.UID for board in BOARDS]
    assert uids == ["outagewatch-exec", "outagewatch-room", "outagewatch-services", "outagewatch-incidents"]
    assert provisioning.dashboards() == BOARDS_JSON  # deterministic: two builds are identical


def test_exec_overview_reads_in_two_seconds() -> None:
    board = BOARDS_JSON[0]
    assert board["refresh"] == "10s"
    stats = [p for p in board["panels"] if p["type"] == "stat"]
    assert [p["title"] for p in stats] == ["Live listeners", "Reports / s", "Error ratio", "Rooms in trouble",
                                           "Services in trouble", "Open incidents"]
    for panel in stats:
        assert panel["options"]["colorMode"] == "background"
        assert panel["fieldConfig"]["defaults"]["color"]["mode"] == "thresholds"
        assert panel["fieldConfig"]["defaults"]["thresholds"]["steps"][0]["value"] is None
    assert any(p["type"] == "state-timeline" and "region" in p["title"] for p in board["panels"])


def test_room_board_has_a_searchable_room_variable_and_alert_annotations() -> None:
    board = BOARDS_JSON[1]
    room = next(v for v in board["templating"]["list"] if v["name"] == "room")
    assert room["type"] == "query" and "room_health" in room["query"] and room["refresh"] == 2
    assert [a["name"] for a in board["annotations"]["list"]] == ["Alerts"]
    assert "FROM alerts" in board["annotations"]["list"][0]["target"]["rawSql"]


def test_incident_tables_are_sortable_and_filterable() -> None:
    board = BOARDS_JSON[3]
    tables = [p for p in board["panels"] if p["type"] == "table"]
    assert tables
    for panel in tables:
        assert panel["fieldConfig"]["defaults"]["custom"]["filterable"] is True
        assert panel["options"]["sortBy"]
