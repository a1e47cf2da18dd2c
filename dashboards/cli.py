"""`outagewatch dashboards build | push`: Grafana boards, datasource and provisioning as code."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from core.config import ConfigError, Settings

log = logging.getLogger(__name__)

DEFAULT_OUT = Path("deploy/grafana")
# The compose file's ClickHouse service, as Grafana's container sees it.
COMPOSE_CLICKHOUSE_HOST = "clickhouse"
COMPOSE_CLICKHOUSE_PORT = 9000


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "dashboards",
        help="build the Grafana provisioning tree, or push boards to a running Grafana",
        description="Grafana dashboards for the ClickHouse history, as code (grafana-foundation-sdk).",
    )
    commands = parser.add_subparsers(dest="dashboards_command", metavar="ACTION", required=True)

    build = commands.add_parser(
        "build",
        help="write provisioning/datasources, provisioning/dashboards and dashboards/*.json",
        description="Write the tree deploy/docker-compose.yml mounts into Grafana. Files whose "
                    "content is unchanged are not rewritten.",
    )
    build.add_argument("--out", type=Path, default=DEFAULT_OUT,
                       help=f"directory to write (default: {DEFAULT_OUT}, what the compose file mounts)")
    build.add_argument("--clickhouse-host", default=COMPOSE_CLICKHOUSE_HOST,
                       help="ClickHouse host as Grafana reaches it (default: the compose service "
                            f"'{COMPOSE_CLICKHOUSE_HOST}')")
    build.add_argument("--clickhouse-port", type=int, default=COMPOSE_CLICKHOUSE_PORT,
                       help=f"ClickHouse native port as Grafana reaches it (default: {COMPOSE_CLICKHOUSE_PORT})")
    build.set_defaults(func=_build)

    push = commands.add_parser(
        "push",
        help="create or update the folder, datasource and dashboards in a running Grafana",
        description="Idempotent: reports each object as created, updated or unchanged, and the "
                    "datasource health check. Exit status 1 if the health check fails.",
    )
    push.add_argument("--url", help="Grafana base URL (default: setting grafana.url)")
    push.add_argument("--token", help="service account token with Editor rights on the folder and "
                                      "datasources (default: setting grafana.token)")
    push.add_argument("--clickhouse-host",
                      help="ClickHouse host as Grafana reaches it (default: the host in clickhouse.url)")
    push.add_argument("--clickhouse-port", type=int,
                      help="ClickHouse native port as Grafana reaches it (default: the port in clickhouse.url)")
    push.add_argument("--force", action="store_true",
                      help="re-send the datasource (e.g. after a password change) and every dashboard")
    push.set_defaults(func=_push)


def _build(settings: Settings, args: argparse.Namespace) -> int:
    from dashboards import provisioning

    target = provisioning.DatasourceTarget.from_settings(settings, args.clickhouse_host, args.clickhouse_port)
    boards = provisioning.dashboards(settings.streams.window_seconds)
    files = provisioning.write_tree(args.out, target, boards, folder_uid=settings.grafana.folder_uid)
    for path, action in files.items():
        sys.stdout.write(json.dumps({"file": str(args.out / path), "action": action}) + "\n")
    log.info("provisioning for ClickHouse at %s:%d written to %s", target.host, target.port, args.out)
    return 0


def _push(settings: Settings, args: argparse.Namespace) -> int:
    from dashboards import provisioning, push

    url = args.url or settings.grafana.url
    token = args.token or settings.grafana.token
    if not token:
        raise ConfigError("dashboards push needs a Grafana service account token: --token or OUTAGEWATCH_GRAFANA_TOKEN")
    target = provisioning.DatasourceTarget.from_settings(settings, args.clickhouse_host, args.clickhouse_port)
    api = push.connect(url, token)
    changes = push.push_all(api, provisioning.datasource(target),
                            provisioning.dashboards(settings.streams.window_seconds),
                            settings.grafana.folder_uid, provisioning.FOLDER_TITLE, force=args.force)
    for change in changes:
        sys.stdout.write(json.dumps(change.as_dict()) + "\n")
    failed = [c for c in changes if c.action == "failed"]
    for change in failed:
        log.error("Grafana cannot query ClickHouse through datasource %s: %s", change.uid, change.detail)
    return 1 if failed else 0
