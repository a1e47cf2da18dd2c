"""`outagewatch history migrate | query | sink | rebuild-rollups`."""

from __future__ import annotations

import argparse
import csv
import json
import logging
import re
import signal
import sys
import threading
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any, TextIO

from core import gctune
from core.config import Settings
from history.queries import NAMED_QUERIES

log = logging.getLogger("history")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "history", help="ClickHouse history: schema, sink, analyst queries",
        description="Keep every report, window and alert in ClickHouse and query it.")
    commands = parser.add_subparsers(dest="history_command", metavar="SUBCOMMAND", required=True)

    migrate = commands.add_parser(
        "migrate", help="create the database and apply pending schema migrations (idempotent)",
        description="Create the database in clickhouse.url if missing and apply every migration not yet "
                    "recorded in schema_migrations; print what was applied.")
    migrate.add_argument("--create-reader", action="store_true",
                         help="also create the read-only user clickhouse.reader_user with SELECT on the database "
                              "(servers with CREATE USER, 20.5+; older servers define it in users.xml)")
    migrate.set_defaults(func=_migrate)

    query = commands.add_parser(
        "query", help="run a read-only SQL query as the reader user",
        description="Run one SQL statement as clickhouse.reader_user (readonly). Parameters are bound by the "
                    "driver: write %%(name)s in the SQL and pass --param name=value. Named queries: "
                    + "; ".join(f"{q.name} ({', '.join(q.params)}): {q.description}" for q in NAMED_QUERIES.values()),
        epilog="Example: outagewatch history query \"SELECT * FROM room_health FINAL WHERE key = %(room)s "
               "LIMIT 10\" --param room=room-17")
    query.add_argument("sql", help="the SQL statement, or @NAME for a named query (e.g. @top_rooms)")
    query.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                       help="a bound parameter (repeatable); integers are passed as numbers, the rest as strings")
    query.add_argument("--format", choices=("table", "csv", "json"), default="table",
                       help="table (aligned, for people), csv (with a header row) or json (one object per line)")
    query.set_defaults(func=_query)

    sink = commands.add_parser(
        "sink", help="consume every topic into ClickHouse (runs until Ctrl-C / SIGTERM)",
        description="A consumer group of its own reading client-reports, room-health, service-health, "
                    "server-metrics, alerts, anomaly-scores and dead-letter into their tables: batches by rows "
                    "and seconds, "
                    "commits offsets only after ClickHouse acknowledged, pauses and retries while ClickHouse "
                    "is down. Serves /healthz, /readyz and /metrics on --health-port. Tuning: the "
                    "history.sink_* and health.* settings.")
    sink.add_argument("--group-id", help="consumer group (default: history.sink_group_id)")
    sink.add_argument("--topic", action="append", dest="topics", metavar="TOPIC",
                      help="consume only this topic (repeatable; default: all seven)")
    sink.add_argument("--no-migrate", action="store_true", help="do not apply migrations before starting")
    sink.add_argument("--health-port", type=int, default=None, metavar="PORT",
                      help="port of the sink's /healthz (liveness), /readyz and /metrics (default: "
                           "history.sink_health_port, 16067; 0: none). Input waiting while nothing is written for "
                           "health.stall_seconds makes the sink log why and exit with status 75")
    sink.set_defaults(func=_sink)

    rebuild = commands.add_parser(
        "rebuild-rollups", help="recompute room_health_1m/_1h for a range from room_health FINAL",
        description="After a crash replayed room-health windows into ClickHouse, the rollups may count them "
                    "twice. This deletes the rollup buckets of the range (widened to whole hours) and re-inserts "
                    "them from the deduplicated windows. Run it for closed ranges only.")
    rebuild.add_argument("--since", required=True, help="start, RFC 3339 (2026-11-22T05:00:00Z) or epoch seconds")
    rebuild.add_argument("--until", required=True, help="end (exclusive), RFC 3339 or epoch seconds")
    rebuild.set_defaults(func=_rebuild)


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from history.api import migrate

    result = migrate(settings, create_reader=args.create_reader)
    print(f"database {result.target} (ClickHouse {result.server_version})")
    if result.applied:
        from history.migrations import MIGRATIONS

        names = {m.version: m.name for m in MIGRATIONS}
        for version in result.applied:
            print(f"applied migration {version} {names[version]}")
    else:
        print("schema up to date: no migration applied")
    for statement in result.optional:
        print(f"applied (server feature): {statement}")
    print(result.reader)
    return 0


def parse_params(pairs: Sequence[str]) -> dict[str, Any]:
    """``name=value`` pairs; integers become numbers.

    >>> parse_params(["room=room-1", "limit=5", "note=a=b"])
    {'room': 'room-1', 'limit': 5, 'note': 'a=b'}
    """
    params: dict[str, Any] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"--param {pair!r}: expected NAME=VALUE")
        params[name] = int(value) if value.lstrip("-").isdigit() else value
    return params


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_cell(v) for v in value]
    return value


def write_result(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str, out: TextIO) -> None:
    """Print a result as an aligned table, CSV or JSON lines.

    >>> write_result(["room", "errors"], [("r1", 3.0), ("room-22", 10.5)], "table", sys.stdout)
    room    | errors
    --------+-------
    r1      | 3.0
    room-22 | 10.5
    (2 rows)
    >>> write_result(["room", "errors"], [("r1", 3.0)], "json", sys.stdout)
    {"room": "r1", "errors": 3.0}
    """
    cells = [[_cell(v) for v in row] for row in rows]
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(cells)
    elif fmt == "json":
        for row in cells:
            out.write(json.dumps(dict(zip(columns, row, strict=True)), default=str) + "\n")
    else:
        text = [[str(v) for v in row] for row in cells]
        widths = [max([len(c)] + [len(row[i]) for row in text]) for i, c in enumerate(columns)]
        out.write(" | ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip() + "\n")
        out.write("-+-".join("-" * w for w in widths) + "\n")
        for row in text:
            out.write(" | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() + "\n")
        out.write(f"({len(rows)} row{'s' if len(rows) != 1 else ''})\n")


def _query(settings: Settings, args: argparse.Namespace) -> int:
    from clickhouse_driver.errors import Error as ClickHouseError

    from history.api import query
    from history.writer import describe_error

    sql = args.sql
    if sql.startswith("@"):
        named = NAMED_QUERIES.get(sql[1:])
        if named is None:
            log.error("no named query %r; known: %s", sql[1:], ", ".join(NAMED_QUERIES))
            return 2
        sql = named.sql
    params = parse_params(args.param)
    missing = sorted(set(re.findall(r"%\((\w+)\)s", sql)) - set(params))
    if missing:
        log.error("the query uses parameter(s) %s; pass each with --param %s=VALUE", ", ".join(missing), missing[0])
        return 2
    try:
        columns, rows = query(sql, params, settings)
    except ClickHouseError as exc:
        log.error("query failed: %s", describe_error(exc))
        return 1
    write_result(columns, rows, args.format, sys.stdout)
    return 0


def _sink(settings: Settings, args: argparse.Namespace) -> int:
    from core.health import Health, LivenessGuard, LivenessPolicy
    from history.health import SinkHealthServer
    from history.sink import run

    health = Health("history sink", policy=LivenessPolicy.from_settings(settings))
    port = settings.history.sink_health_port if args.health_port is None else args.health_port
    server = None
    if port:
        try:
            server = SinkHealthServer(health, port).start()
        except OSError as exc:
            log.error("history sink not started: its health port %d is not free (%s); pass --health-port or set "
                      "OUTAGEWATCH_HISTORY_SINK_HEALTH_PORT (0: no health endpoints)", port, exc)
            return 1
    stop = threading.Event()

    def request_stop(signum: int, _frame: Any) -> None:
        log.info("history sink: %s received, flushing and stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    gctune.for_throughput()
    LivenessGuard(health).start()
    try:
        run(settings, stop, group_id=args.group_id, topics=args.topics, migrate=not args.no_migrate, health=health,
            on_built=server.attach if server is not None else None)
    finally:
        if server is not None:
            server.stop()
    return 0


def _rebuild(settings: Settings, args: argparse.Namespace) -> int:
    from history.api import rebuild_rollups
    from history.queries import epoch_seconds

    since = int(args.since) if args.since.isdigit() else args.since
    until = int(args.until) if args.until.isdigit() else args.until
    start, end = rebuild_rollups(epoch_seconds(since), epoch_seconds(until), settings)
    print(f"rebuilt room_health_1m and room_health_1h for [{datetime.utcfromtimestamp(start):%Y-%m-%d %H:%M}, "
          f"{datetime.utcfromtimestamp(end):%Y-%m-%d %H:%M}) UTC from room_health FINAL")
    return 0
