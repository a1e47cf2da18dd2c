"""`outagewatch evaluate`: score the production pipeline on recorded input and labelled incidents."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from core.config import Settings

log = logging.getLogger("outagewatch.evaluate")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="replay recorded reports through windows, detectors and alerting; score the alerts against labels",
        description=(
            "Stream recorded client reports (and optionally server metric samples) through the same windowing, "
            "detectors and alert engine as a worker, in event time, and print one JSON object: incidents, "
            "detected, recall, precision, f1, delay_s {p50, p95, max}, false_alerts, false_alerts_per_room_day, "
            "alerts. Window length, lateness and alert policy come from the settings (streams.*, alerting.*)."
        ),
    )
    parser.add_argument("--reports", required=True, type=Path, metavar="R.ndjson",
                        help="client reports, one JSON object per line in arrival order (.gz accepted)")
    parser.add_argument("--labels", required=True, type=Path, metavar="L.json",
                        help='labelled incidents: {"incidents": [{"id", "scope", "key", "kind", "start", "end"}]}')
    parser.add_argument("--metrics", type=Path, default=None, metavar="M.ndjson",
                        help="server metric samples, one JSON object per line (optional)")
    parser.set_defaults(func=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    from outagewatch.evaluate.replay import EvaluateError, evaluate

    started = time.perf_counter()
    try:
        result = evaluate(args.reports, args.labels, args.metrics, settings)
    except EvaluateError as exc:
        log.error("evaluate: %s", exc)
        return 1
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    log.info("evaluate took %.2f s", time.perf_counter() - started)
    return 0
