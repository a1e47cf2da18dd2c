"""The snapshot in Atlassian Statuspage's public API v2 shape, and as an Atom feed.

``/api/v2/status.json``: ``page`` and ``status`` (``indicator`` none, minor,
major or critical, and its ``description``); ``/api/v2/summary.json``: also
``components`` and the unresolved ``incidents`` (and an empty
``scheduled_maintenances``); ``/api/v2/incidents.json``: ``page`` and every
incident of the history period, newest first. Incidents carry
``incident_updates``; component statuses are operational,
degraded_performance, partial_outage or major_outage; incident statuses are
investigating, identified or resolved; impacts none, minor, major or critical.

>>> from dashboards.status.model import Snapshot
>>> page = PageInfo("outagewatch status", "https://status.example")
>>> status_json(Snapshot(as_of=0, components=(), incidents=()), page)["status"]
{'indicator': 'none', 'description': 'All Systems Operational'}
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape as xml_escape

from dashboards.status.model import INDICATOR_DESCRIPTIONS, Component, Incident, Snapshot, Update

EPOCH_CREATED = 0


@dataclass(frozen=True)
class PageInfo:
    name: str
    url: str  # the public address, "" when not configured

    @property
    def id(self) -> str:
        return hashlib.sha256(self.name.encode()).hexdigest()[:12]

    def link(self, fragment: str = "") -> str:
        base = self.url.rstrip("/") + "/" if self.url else "/"
        return base + (f"#{fragment}" if fragment else "")


def timestamp(epoch_s: int) -> str:
    """ISO 8601 in UTC, as Statuspage writes it.

    >>> timestamp(1795323600)
    '2026-11-22T05:00:00.000Z'
    """
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _page(snapshot: Snapshot, page: PageInfo) -> dict[str, Any]:
    return {"id": page.id, "name": page.name, "url": page.link(), "time_zone": "Etc/UTC",
            "updated_at": timestamp(snapshot.as_of)}


def _component(component: Component, position: int, page: PageInfo, as_of: int) -> dict[str, Any]:
    return {"id": component.ref.id, "name": component.name, "status": component.status,
            "created_at": timestamp(EPOCH_CREATED), "updated_at": timestamp(as_of), "position": position,
            "description": None, "showcase": False, "start_date": None, "group_id": None, "page_id": page.id,
            "group": False, "only_show_if_degraded": False}


def _update(update: Update, index: int, incident: Incident) -> dict[str, Any]:
    return {"id": hashlib.sha256(f"{incident.id}:{index}:{update.at}".encode()).hexdigest()[:12],
            "status": update.status, "body": update.body, "incident_id": incident.id,
            "created_at": timestamp(update.at), "updated_at": timestamp(update.at),
            "display_at": timestamp(update.at), "affected_components": None}


def incident_json(incident: Incident, snapshot: Snapshot, page: PageInfo) -> dict[str, Any]:
    touched = {c.ref for c in incident.components}
    components = [_component(c, n, page, snapshot.as_of) for n, c in enumerate(snapshot.components, start=1)
                  if not touched or c.ref.ref in touched]
    return {
        "id": incident.id, "name": incident.name, "status": incident.status, "impact": incident.impact,
        "created_at": timestamp(incident.detected_at), "updated_at": timestamp(incident.updated_at),
        "monitoring_at": None, "resolved_at": timestamp(incident.resolved_at) if incident.resolved_at else None,
        "started_at": timestamp(incident.started_at), "shortlink": page.link(f"incident-{incident.id}"),
        "page_id": page.id,
        "incident_updates": [_update(u, n, incident) for n, u in reversed(list(enumerate(incident.updates)))],
        "components": components,
    }


def status_json(snapshot: Snapshot, page: PageInfo) -> dict[str, Any]:
    indicator = snapshot.indicator
    return {"page": _page(snapshot, page),
            "status": {"indicator": indicator, "description": INDICATOR_DESCRIPTIONS[indicator]}}


def summary_json(snapshot: Snapshot, page: PageInfo) -> dict[str, Any]:
    return {**status_json(snapshot, page),
            "components": [_component(c, n, page, snapshot.as_of) for n, c in enumerate(snapshot.components, start=1)],
            "incidents": [incident_json(i, snapshot, page) for i in snapshot.open_incidents],
            "scheduled_maintenances": []}


def components_json(snapshot: Snapshot, page: PageInfo) -> dict[str, Any]:
    return {"page": _page(snapshot, page),
            "components": [_component(c, n, page, snapshot.as_of) for n, c in enumerate(snapshot.components, start=1)]}


def incidents_json(snapshot: Snapshot, page: PageInfo) -> dict[str, Any]:
    return {"page": _page(snapshot, page), "incidents": [incident_json(i, snapshot, page) for i in snapshot.incidents]}


def atom_feed(snapshot: Snapshot, page: PageInfo) -> str:
    """Every incident of the period as an Atom 1.0 entry (RFC 4287), newest update first."""
    feed_id = f"urn:outagewatch:status:{page.id}"
    entries = []
    for incident in sorted(snapshot.incidents, key=lambda i: i.updated_at, reverse=True):
        lines = "\n".join(f"{timestamp(u.at)} {u.kind}: {u.body}" for u in incident.updates)
        entries.append(
            "<entry>"
            f"<id>urn:outagewatch:incident:{xml_escape(incident.id)}</id>"
            f"<title>{xml_escape(incident.name)} ({xml_escape(incident.status)})</title>"
            f"<updated>{timestamp(incident.updated_at)}</updated>"
            f"<published>{timestamp(incident.detected_at)}</published>"
            f'<link rel="alternate" href="{xml_escape(page.link(f"incident-{incident.id}"))}"/>'
            f'<content type="text">{xml_escape(lines)}</content>'
            "</entry>")
    return ('<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
            f"<id>{feed_id}</id><title>{xml_escape(page.name)}: incident history</title>"
            f"<updated>{timestamp(snapshot.as_of)}</updated><author><name>{xml_escape(page.name)}</name></author>"
            f'<link rel="alternate" href="{xml_escape(page.link())}"/>' + "".join(entries) + "</feed>\n")
