"""What every peer program shares: arguments, the window key, the result line."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

WINDOW_MS = 10_000


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--bootstrap", required=True, help="Kafka bootstrap servers")
    parser.add_argument("--topic", required=True, help="prepared topic of ReportBatch messages")
    parser.add_argument("--expect", type=int, required=True, help="reports to consume before stopping")
    parser.add_argument("--state-dir", default=str(Path(tempfile.gettempdir()) / "outagewatch-peer"),
                        help="state / data directory (created if missing)")
    parser.add_argument("--group", default=None,
                        help="consumer group / app id (default: a fresh one); its internal topics are named after it")
    args = parser.parse_args()
    # Faust and Quix create their own folder inside it, not its parents: on a
    # fresh machine nothing else has made it.
    Path(args.state_dir).mkdir(parents=True, exist_ok=True)
    return args


def new_window() -> dict[str, Any]:
    # Counts only. Our windows also count distinct listeners and error
    # clients and latency quantiles; a per-window set of clients stored as
    # the peers store state (re-serialised on every update) would be
    # quadratic and make the comparison meaningless. So the peers do strictly
    # less work than we do: the ratio we print is conservative.
    return {"reports": 0, "errors": 0, "heartbeats": 0}


def add_report(window: dict[str, Any], report: dict[str, Any]) -> dict[str, Any]:
    window["reports"] += 1
    if report["kind"] == "error":
        window["errors"] += 1
    elif report["kind"] in ("heartbeat", "join"):
        window["heartbeats"] += 1
    return window


def emit(result: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
