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
            "machine, or already answered by someone else, are used as they are. "
            "--topology cluster runs, beside it on its own ports ([cluster] settings), three replicated "
            "brokers, ZooKeeper, ClickHouse as 2 shards x 2 replicas and the pipeline's processes."
        ),
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    for name, func, text in (
        ("up", _up, "start what is missing, wait until healthy, create topics and database"),
        ("down", _down, "stop only what `up` started (data is kept)"),
        ("status", _status, "print each component's address and health as JSON; exit 1 if unhealthy"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument(
            "--topology", choices=("single", "cluster"), default="single",
            help="single (default): one broker and one ClickHouse server on 19092/19000. cluster: three KRaft "
                 "brokers (replication 3, min.insync.replicas 2), ZooKeeper, ClickHouse 2 shards x 2 replicas, "
                 "2 collectors, 3 workers and 2 sinks, on the [cluster] ports under <data_dir>/cluster; `up` "
                 "writes the OUTAGEWATCH_* variables that point other commands at it to "
                 "<data_dir>/cluster/outagewatch.env")
        action.set_defaults(func=func)
    actions.add_parser("check", help="prove the stack works: Kafka round trip and ClickHouse insert/select"
                       ).set_defaults(func=_check)


def _print(value: object) -> None:
    json.dump(value, sys.stdout, indent=2, default=str)
    sys.stdout.write("\n")


def _healthy(state: dict[str, Any]) -> bool:
    return all(component.get("healthy") for component in state.values() if isinstance(component, dict) and "healthy" in component)


def _manager(args: argparse.Namespace) -> Any:
    if getattr(args, "topology", "single") == "cluster":
        from outagewatch.stack import cluster

        return cluster
    from outagewatch.stack import manager

    return manager


def _up(settings: Settings, args: argparse.Namespace) -> int:
    begin = time.monotonic()
    state = _manager(args).up(settings)
    state["seconds"] = round(time.monotonic() - begin, 1)
    _print(state)
    return 0 if _healthy(state) else 1


def _down(settings: Settings, args: argparse.Namespace) -> int:
    _print({"stopped": _manager(args).down(settings)})
    return 0


def _status(settings: Settings, args: argparse.Namespace) -> int:
    state = _manager(args).status(settings)
    _print(state)
    return 0 if _healthy(state) else 1


def _check(settings: Settings, args: argparse.Namespace) -> int:
    from outagewatch.stack.smoke import smoke_check

    result = smoke_check(settings)
    _print(result)
    return 0 if result["ok"] else 1
