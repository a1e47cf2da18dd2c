"""The status page server over the real ClickHouse: the Statuspage-shaped JSON validates against a JSON Schema
of that shape, a crowd of visitors costs one refresh per cache period, visitors' paths and query strings
change nothing, and a failing or absent ClickHouse serves the last good page marked stale, never a 5xx."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
import xml.etree.ElementTree as ET
from typing import Any

import aiohttp
import jsonschema
import pytest

from core.config import Settings
from history.client import ClickHouseTarget, connect
from outagewatch.stack.process import free_port
from tests.dashboards.status.statuskit import (
    FINGERPRINT,
    SeededHistory,
    alert_event,
    execute,
    page_settings,
    serving,
)

TIMESTAMP = {"type": "string", "format": "date-time", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$"}
NULLABLE_TIMESTAMP = {"anyOf": [TIMESTAMP, {"type": "null"}]}
PAGE = {"type": "object", "required": ["id", "name", "url", "time_zone", "updated_at"],
        "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "url": {"type": "string"},
                       "time_zone": {"type": "string"}, "updated_at": TIMESTAMP}}
STATUS = {"type": "object", "required": ["indicator", "description"],
          "properties": {"indicator": {"enum": ["none", "minor", "major", "critical"]},
                         "description": {"type": "string"}}}
COMPONENT = {"type": "object",
             "required": ["id", "name", "status", "created_at", "updated_at", "position", "description", "showcase",
                          "start_date", "group_id", "page_id", "group", "only_show_if_degraded"],
             "properties": {"id": {"type": "string"}, "name": {"type": "string"},
                            "status": {"enum": ["operational", "degraded_performance", "partial_outage",
                                                "major_outage"]},
                            "created_at": TIMESTAMP, "updated_at": TIMESTAMP, "position": {"type": "integer"},
                            "description": {"type": ["string", "null"]}, "showcase": {"type": "boolean"},
                            "group_id": {"type": ["string", "null"]}, "page_id": {"type": "string"},
                            "group": {"type": "boolean"}, "only_show_if_degraded": {"type": "boolean"}}}
INCIDENT_STATUS = {"enum": ["investigating", "identified", "monitoring", "resolved", "postmortem"]}
UPDATE = {"type": "object",
          "required": ["id", "status", "body", "incident_id", "created_at", "updated_at", "display_at"],
          "properties": {"id": {"type": "string"}, "status": INCIDENT_STATUS, "body": {"type": "string"},
                         "incident_id": {"type": "string"}, "created_at": TIMESTAMP, "updated_at": TIMESTAMP,
                         "display_at": TIMESTAMP}}
INCIDENT = {"type": "object",
            "required": ["id", "name", "status", "impact", "created_at", "updated_at", "monitoring_at", "resolved_at",
                         "started_at", "shortlink", "page_id", "incident_updates", "components"],
            "properties": {"id": {"type": "string"}, "name": {"type": "string"}, "status": INCIDENT_STATUS,
                           "impact": {"enum": ["none", "minor", "major", "critical"]}, "created_at": TIMESTAMP,
                           "updated_at": TIMESTAMP, "monitoring_at": NULLABLE_TIMESTAMP,
                           "resolved_at": NULLABLE_TIMESTAMP, "started_at": TIMESTAMP,
                           "shortlink": {"type": "string"}, "page_id": {"type": "string"},
                           "incident_updates": {"type": "array", "items": UPDATE, "minItems": 1},
                           "components": {"type": "array", "items": COMPONENT}}}
SCHEMAS: dict[str, dict[str, Any]] = {
    "/api/v2/status.json": {"type": "object", "required": ["page", "status"],
                            "properties": {"page": PAGE, "status": STATUS}},
    "/api/v2/summary.json": {"type": "object",
                             "required": ["page", "status", "components", "incidents", "scheduled_maintenances"],
                             "properties": {"page": PAGE, "status": STATUS,
                                            "components": {"type": "array", "items": COMPONENT},
                                            "incidents": {"type": "array", "items": INCIDENT},
                                            "scheduled_maintenances": {"type": "array"}}},
    "/api/v2/incidents.json": {"type": "object", "required": ["page", "incidents"],
                               "properties": {"page": PAGE, "incidents": {"type": "array", "items": INCIDENT}}},
}


async def fetch(url: str) -> tuple[int, str, dict[str, str]]:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        return response.status, await response.text(), dict(response.headers)


def get(url: str) -> tuple[int, str, dict[str, str]]:
    return asyncio.run(fetch(url))


async def crowd(url: str, visitors: int) -> list[int]:
    async with aiohttp.ClientSession() as session:
        async def one() -> int:
            async with session.get(url) as response:
                await response.read()
                return response.status
        return list(await asyncio.gather(*(one() for _ in range(visitors))))


@pytest.mark.integration
def test_json_api_validates_and_a_crowd_costs_one_refresh(seeded_history: SeededHistory, settings: Settings) -> None:
    target, now = seeded_history.target, seeded_history.now
    start = now - 300
    execute(target, alert_event(now, FINGERPRINT, "firing", "service", "auth", "server_anomaly", "critical",
                                start, start + 10))
    tuned = page_settings(settings, target, cache_seconds=30.0)
    with serving(tuned) as server:
        documents = {}
        for path, schema in SCHEMAS.items():
            status, body, headers = get(server.url + path)
            assert status == 200 and headers["Content-Type"].startswith("application/json")
            documents[path] = json.loads(body)
            jsonschema.validate(documents[path], schema, format_checker=jsonschema.FormatChecker())
        summary = documents["/api/v2/summary.json"]
        assert summary["status"]["indicator"] == "major"  # a critical service alert: partial outage
        assert [i["id"] for i in summary["incidents"]] == [f"{FINGERPRINT}-{start}"]
        assert {c["name"]: c["status"] for c in summary["components"]}["Service auth"] == "partial_outage"
        assert len(documents["/api/v2/incidents.json"]["incidents"]) == 2  # the open one and last week's

        feed = ET.fromstring(get(server.url + "/history.atom")[1])
        atom = "{http://www.w3.org/2005/Atom}"
        assert [e.findtext(f"{atom}id") for e in feed.findall(f"{atom}entry")][0] == f"urn:outagewatch:incident:{FINGERPRINT}-{start}"

        queries_before = server.page.cache.refreshes
        statuses = asyncio.run(crowd(server.url + "/?x=<script>&" + "a" * 2000, 300))
        assert set(statuses) == {200}
        assert server.page.cache.refreshes == queries_before  # within the period: no new ClickHouse read

        for hostile in ("/../../etc/passwd", "/api/v2/%00.json", "/%3Cscript%3E", "/api/v2/summary.json/extra"):
            status, body, _ = get(server.url + hostile)
            assert status == 404 and "<script>" not in body


@pytest.mark.integration
def test_failing_clickhouse_serves_the_last_good_page_marked_stale(
        seeded_history: SeededHistory, settings: Settings) -> None:
    target = seeded_history.target
    with serving(page_settings(settings, target, cache_seconds=0.3)) as server:
        status, body, headers = get(server.url + "/")
        assert status == 200 and headers["X-Data-Stale"] == "false" and 'id="stale"' not in body
        admin = connect(target.with_database("default"))
        admin.execute(f"DROP DATABASE {target.database}")  # every read now fails on the real server
        admin.disconnect()
        time.sleep(0.4)
        get(server.url + "/")  # starts the refresh that fails
        status, body, headers = get(server.url + "/")
        assert status == 200 and headers["X-Data-Stale"] == "true"
        assert 'id="stale"' in body and "Data as of" in body and "Service auth" in body
        status, body, _ = get(server.url + "/api/v2/summary.json")
        assert status == 200 and json.loads(body)["components"]
        admin = connect(target.with_database("default"))
        admin.execute(f"CREATE DATABASE {target.database}")  # for the fixture's drop
        admin.disconnect()


@pytest.mark.integration
def test_no_clickhouse_at_all_is_a_200_that_says_so(settings: Settings) -> None:
    nowhere = ClickHouseTarget(host="127.0.0.1", port=free_port(), database="nothing_here")
    tuned = page_settings(settings, nowhere)
    tuned = dataclasses.replace(tuned, status_page=dataclasses.replace(tuned.status_page, query_timeout_seconds=3.0))
    with serving(tuned) as server:
        status, body, headers = get(server.url + "/")
        assert status == 200 and headers["X-Data-Stale"] == "true"
        assert "Status data is not available right now" in body
        status, body, _ = get(server.url + "/api/v2/status.json")
        assert status == 200 and json.loads(body)["status"]["description"].startswith("Status data unavailable")
