"""`outagewatch stack up | down | status | check`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from core.config import Settings


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "stack",
        help="run the local Kafka and ClickHouse",
        description=(
            "Start, stop or inspect the local stack: a single-node Kafka (KRaft, jars fetched with mvn "
            "on first use) and a ClickHouse server (Debian's package), both on 127.0.0.1 with their "
            "data under the data directory. Components whose configured address is not on this "
            "machine, or already answered by someone else, are used as they are."
        ),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("up", help="start what is missing, wait until healthy, create topics and database"
                       ).set_defaults(func=_up)
    actions.add_parser("down", help="stop only what `up` started (data is kept)").set_defaults(func=_down)
    actions.add_parser("status", help="print each component's address and health as JSON; exit 1 if unhealthy"
                       ).set_defaults(func=_status)
    actions.add_parser("check", help="prove the stack works: Kafka round trip and ClickHouse insert/select"
                       ).set_defaults(func=_check)


def _print(value: object) -> None:
    json.dump(value, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def _healthy(state: dict[str, Any]) -> bool:
    return all(component.get("healthy") for component in state.values() if isinstance(component, dict) and "healthy" in component)


def _up(settings: Settings, args: argparse.Namespace) -> int:
    from outagewatch.stack import manager

    begin = time.monotonic()
    state = manager.up(settings)
    state["seconds"] = round(time.monotonic() - begin, 1)
    _print(state)
    return 0 if _healthy(state) else 1


def _down(settings: Settings, args: argparse.Namespace) -> int:
    from outagewatch.stack import manager

    _print({"stopped": manager.down(settings)})
    return 0


def _status(settings: Settings, args: argparse.Namespace) -> int:
    from outagewatch.stack import manager

    state = manager.status(settings)
    _print(state)
    return 0 if _healthy(state) else 1


def _check(settings: Settings, args: argparse.Namespace) -> int:
    from outagewatch.stack.smoke import smoke_check

    result = smoke_check(settings)
    _print(result)
    return 0 if result["ok"] else 1
