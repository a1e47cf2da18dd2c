"""`outagewatch status-page [--host H] [--port P]` and `outagewatch status-page note INCIDENT "text"`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import time
import uuid
from typing import Any

from core.config import ConfigError, Settings

log = logging.getLogger("dashboards.status")

INCIDENT_ID = re.compile(r"^[0-9a-f]{16}-[0-9]{1,12}$")
MAX_NOTE_CHARS = 2000


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "status-page", help="serve the public status page (HTML, Statuspage-compatible JSON, Atom), or add a note",
        description="A public status page from the ClickHouse history, read as clickhouse.reader_user: components "
                    "(services, regions, platforms, and the rooms in status_page.rooms) with their status from open "
                    "incidents, 24 hours of error reports against the learned baseline, top error kinds; incidents "
                    "with their timeline and a history of status_page.history_days days. Serves /, "
                    "/api/v2/summary.json, /api/v2/status.json, /api/v2/incidents.json, /api/v2/components.json, "
                    "/history.atom and /healthz, from a cache of status_page.cache_seconds (one ClickHouse refresh "
                    "per period however many visitors; the last good page, marked stale, while ClickHouse is down).")
    parser.add_argument("--host", help="address to listen on (default: status_page.host, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on (default: status_page.port, 18090)")
    parser.set_defaults(func=_serve)
    commands = parser.add_subparsers(dest="status_page_command", metavar="ACTION")
    note = commands.add_parser(
        "note", help="add a public note to an incident (shown in its timeline, the JSON API and the feed)",
        description="Store a public note on an incident in ClickHouse (table status_notes), as the writer user of "
                    "clickhouse.url. INCIDENT is the id the page and /api/v2/incidents.json show: "
                    "<alert fingerprint>-<start, epoch seconds>. The page shows it within status_page.cache_seconds.",
        epilog='Example: outagewatch status-page note 4676650f04e6de4c-1795323600 "A fix is rolling out."')
    note.add_argument("incident", help="incident id, e.g. 4676650f04e6de4c-1795323600")
    note.add_argument("text", help=f"the note, plain text shown to the public (at most {MAX_NOTE_CHARS} characters)")
    note.set_defaults(func=_note)


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    from dashboards.status.server import build, serve

    page, _ = build(settings)
    host = args.host or settings.status_page.host
    port = settings.status_page.port if args.port is None else args.port
    try:
        asyncio.run(serve(page, host, port))
    except OSError as exc:
        raise ConfigError(f"status page cannot listen on {host}:{port} ({exc}); pass --port or set "
                          "OUTAGEWATCH_STATUS_PAGE_PORT") from None
    return 0


def validate_note(incident: str, text: str) -> str:
    """The note's text, stripped; a ConfigError says what is wrong.

    >>> validate_note("4676650f04e6de4c-1795323600", "  Fix deployed. ")
    'Fix deployed.'
    >>> validate_note("room-17", "x")
    Traceback (most recent call last):
    ...
    core.config.ConfigError: incident 'room-17' is not an incident id: expected <16 hex digits>-<epoch seconds>, as /api/v2/incidents.json shows
    """
    if not INCIDENT_ID.match(incident):
        raise ConfigError(f"incident {incident!r} is not an incident id: expected <16 hex digits>-<epoch seconds>, "
                          "as /api/v2/incidents.json shows")
    body = text.strip()
    if not body:
        raise ConfigError("the note is empty: pass the text to publish")
    if len(body) > MAX_NOTE_CHARS:
        raise ConfigError(f"the note has {len(body)} characters; at most {MAX_NOTE_CHARS}")
    return body


def _note(settings: Settings, args: argparse.Namespace) -> int:
    from history.api import writer_target
    from history.client import connect
    from history.migrations import MIGRATIONS

    body = validate_note(args.incident, args.text)
    fingerprint, _, start = args.incident.partition("-")
    client = connect(writer_target(settings))
    try:
        known = client.execute("SELECT count() FROM alerts WHERE fingerprint = %(f)s AND toUInt32(starts_at) = %(s)s",
                               {"f": fingerprint, "s": int(start)})[0][0]
        if not known:
            raise ConfigError(f"no incident {args.incident} in the alerts table of {writer_target(settings).describe()}")
        applied = {int(r[0]) for r in client.execute("SELECT version FROM schema_migrations")}
        if not {m.version for m in MIGRATIONS if m.name == "status_notes"} <= applied:
            raise ConfigError("the status_notes table is missing: run `outagewatch history migrate` first")
        now = int(time.time())
        note_id = uuid.uuid4().hex[:12]
        client.execute("INSERT INTO status_notes (incident_id, note_id, created_at, body, inserted_at) VALUES",
                       [{"incident_id": args.incident, "note_id": note_id, "created_at": now, "body": body,
                         "inserted_at": now}])
    finally:
        client.disconnect()
    print(f"note {note_id} added to incident {args.incident}; the status page shows it within "
          f"{settings.status_page.cache_seconds:g} s")
    return 0
