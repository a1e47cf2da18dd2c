"""`outagewatch bench [NAME ...]`: measure and print figures as JSON lines.

Each benchmark is a module in ``outagewatch.bench`` with ``run(**options)``
returning a list of result dicts; add one to ``BENCHMARKS`` to register it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Any

from outagewatch.config import Settings

BENCHMARKS: dict[str, tuple[str, str]] = {
    "schemas": ("outagewatch.bench.schemas", "decode+validate 100k client reports: msgspec vs pydantic"),
    "dashboards": ("outagewatch.bench.dashboards", "p50/p95 of every dashboard query, 7 d x 1,000 rooms in ClickHouse"),
    "detectors": ("outagewatch.bench.detectors", "detector us per call, ensemble windows/s, detect-csv rows/s"),
    "streams": ("outagewatch.bench.streams", "reports/s through `outagewatch worker`, Kafka in -> room-health out"),
    "peer": ("outagewatch.bench.peer", "per-room 10 s windows: our worker vs Quix Streams vs a naive Faust agent"),
}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="run benchmarks and print figures as JSON lines",
        description="Benchmarks: " + "; ".join(f"{name}: {text}" for name, (_, text) in BENCHMARKS.items()),
    )
    parser.add_argument("names", nargs="*", metavar="NAME", choices=[[], *BENCHMARKS],
                        help=f"which to run (default: all): {', '.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="smaller inputs, for a smoke run")
    parser.set_defaults(func=_run)


def _run(settings: Settings, args: argparse.Namespace) -> int:
    names = args.names or list(BENCHMARKS)
    for name in names:
        module = importlib.import_module(BENCHMARKS[name][0])
        results: list[dict[str, Any]] = module.run(settings=settings, quick=args.quick)
        for result in results:
            sys.stdout.write(json.dumps(result) + "\n")
            sys.stdout.flush()
    return 0
