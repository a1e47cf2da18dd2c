"""`outagewatch simulate`: generate a scenario and send it to files, Kafka or the collector."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from core.config import Settings
from core.timeutil import format_ms, parse_event_time

from .engine import generate
from .http_target import HttpPolicy, send_http
from .labels import labels
from .pacing import Delivery, Pacer, Progress
from .scenarios import SCENARIOS
from .targets import TargetError, send_kafka, write_files
from .world import DEFAULT_START_MS

log = logging.getLogger("outagewatch.simulate")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="generate client reports, server metrics and ground-truth labels for a scenario",
        description=(
            "Simulate listeners of live-audio rooms (Zipf audiences, daily rhythm, heartbeats every 30 s, "
            "joins, leaves, a normal background of errors) and servers (room-api, audio-edge, auth per "
            "cluster), with an incident scenario injected after a normal warm-up of 45 minutes of event "
            "time. Prints one JSON summary line on stdout; progress goes to stderr."
        ),
        epilog="Scenarios: " + "; ".join(f"{name}: {s.description}" for name, s in SCENARIOS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--list", action="store_true", help="list the scenarios (name, duration, labels) and exit")
    parser.add_argument("--list-families", action="store_true",
                        help="list the randomised scenario families (name, kind, what they draw) and exit")
    parser.add_argument("--family", metavar="NAME",
                        help="write one seeded draw of a scenario family (reports.ndjson in arrival order, "
                             "labels.json, draw.json, with --with-metrics metrics.ndjson) into --out, instead of "
                             "a scenario: what `outagewatch evaluate --sweep` replays for that family and --seed")
    parser.add_argument("--quick", action="store_true", help="with --family: the draw of a --quick sweep")
    parser.add_argument("--with-metrics", action="store_true",
                        help="with --family: also generate the simulated services' metrics (and label their incidents)")
    parser.add_argument("--scenario", default="launch_night", choices=sorted(SCENARIOS), metavar="NAME",
                        help="which scenario to run (default: launch_night; --list shows all)")
    parser.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives byte-identical output (default 0)")
    parser.add_argument("--scale", type=float, default=0.05,
                        help="multiplies every audience; report counts scale with it, ratios do not "
                             "(default 0.05; 1 = full size, ~23k reports/s at the launch-night peak)")
    parser.add_argument("--duration", type=int, metavar="SECONDS",
                        help="event-time length in seconds (default: the scenario's, warm-up included)")
    parser.add_argument("--rooms", type=int, help="number of background rooms (default: the scenario's, 200)")
    parser.add_argument("--start", metavar="TIME",
                        help="event time of the first second, RFC 3339 (default: "
                             f"{format_ms(DEFAULT_START_MS)} for --to files, so the same seed writes the same "
                             "files; for kafka and http, the duration before now, so every report is inside the "
                             "collector's and the worker's event-time bound, event_time.max_age_seconds)")
    parser.add_argument("--speed", type=float, default=0.0,
                        help="time compression: 60 replays an hour of event time in a minute; "
                             "event times are kept; 0 = as fast as possible (default)")
    parser.add_argument("--to", dest="target", choices=("files", "kafka", "http"), default="files",
                        help="files: reports.ndjson, metrics.ndjson, labels.json in --out; kafka: produce to the "
                             "client-reports and server-metrics topics of the settings; http: POST to the collector")
    parser.add_argument("--out", default="simulation", metavar="DIR", help="directory for --to files (default ./simulation)")
    parser.add_argument("--url", help="collector base URL for --to http (default http://<collector.host>:<collector.port>)")
    parser.add_argument("--api-key", help="API key secret for --to http (default: the secret of the first "
                                          "collector.api_keys entry); a key with the relay scope keeps the "
                                          "simulated clients apart, under a reports key they are one source "
                                          "(one address) and their errors count as one script's")
    parser.add_argument("--concurrency", type=int, default=4, help="HTTP connections at once for --to http (default 4)")
    parser.add_argument("--labels-out", metavar="FILE", help="also write labels.json here (kafka and http targets)")
    parser.set_defaults(func=_run)


def _run(settings: Settings, args: argparse.Namespace) -> int:
    if args.list_families or args.family:
        return _run_family(args)
    if args.list:
        for name, scenario in SCENARIOS.items():
            doc = labels(scenario)
            sys.stdout.write(json.dumps({
                "scenario": name, "duration_s": scenario.duration_s, "warmup_s": scenario.warmup_s,
                "should_alert": scenario.should_alert,
                "incidents": [f"{i['scope']}:{i['key']}:{i['kind']}" for i in doc["incidents"]],
                "description": scenario.description,
            }) + "\n")
        return 0
    try:
        start_ms = _start_ms(args)
    except ValueError as exc:
        log.error("simulate: --start: %s", exc)
        return 1
    label_doc = labels(args.scenario, duration_s=args.duration, start_ms=start_ms)
    ticks = generate(args.scenario, args.seed, args.scale, duration_s=args.duration, rooms=args.rooms,
                     start_ms=start_ms)
    pacer = Pacer(args.speed)
    progress = Progress(args.target)
    log.info("simulating %s (seed %d, scale %g) to %s at speed %s", args.scenario, args.seed, args.scale,
             args.target, args.speed or "max")
    try:
        delivery = _deliver(settings, args, ticks, label_doc, pacer, progress)
    except (TargetError, ValueError) as exc:
        log.error("simulate: %s", exc)
        return 1
    if args.labels_out:
        with open(args.labels_out, "w") as handle:
            json.dump(label_doc, handle, indent=2)
    summary = {
        "scenario": args.scenario, "target": delivery.target, "reports": delivery.reports, "metrics": delivery.metrics,
        "requests": delivery.requests, "retries": delivery.retries, "rejected": delivery.rejected,
        "wall_s": round(delivery.wall_s, 3), "reports_per_s": round(delivery.reports_per_s),
        "incidents": len(label_doc["incidents"]),
    }
    sys.stdout.write(json.dumps(summary) + "\n")
    return 0 if delivery.rejected == 0 else 1


def _run_family(args: argparse.Namespace) -> int:
    from .families import FAMILIES, FULL, QUICK, draw
    from .recording import Recording

    if args.list_families:
        for name, family in FAMILIES.items():
            sys.stdout.write(json.dumps({"family": name, "kind": family.kind, "summary": family.summary}) + "\n")
        return 0
    if args.target != "files":
        log.error("simulate: --family writes files (--out DIR); replay them with outagewatch evaluate")
        return 2
    try:
        drawn = draw(args.family, args.seed, QUICK if args.quick else FULL)
    except ValueError as exc:
        log.error("simulate: %s", exc)
        return 2
    out = Path(args.out)
    log.info("simulating family %s (seed %d) into %s", args.family, args.seed, out)
    summary = Recording(drawn, with_metrics=args.with_metrics).write(out)
    sys.stdout.write(json.dumps({"family": args.family, "seed": args.seed, "out": str(out),
                                 "reports": summary["reports"], "incidents": summary["incidents"],
                                 "duration_s": summary["duration_s"]}) + "\n")
    return 0


def _deliver(settings: Settings, args: argparse.Namespace, ticks: Any, label_doc: dict[str, Any],
             pacer: Pacer, progress: Progress) -> Delivery:
    if args.target == "files":
        return write_files(ticks, args.out, label_doc, pacer=pacer, progress=progress)
    if args.target == "kafka":
        return send_kafka(ticks, settings.kafka.bootstrap, settings.topics.client_reports,
                          settings.topics.server_metrics, pacer=pacer, progress=progress)
    url = args.url or f"http://{settings.collector.host}:{settings.collector.port}"
    api_key = args.api_key or _first_secret(settings.collector.api_keys)
    return send_http(ticks, url, api_key, policy=HttpPolicy(concurrency=args.concurrency), pacer=pacer, progress=progress)


def _start_ms(args: argparse.Namespace) -> int:
    if args.start:
        return parse_event_time(args.start)
    if args.target == "files":
        return DEFAULT_START_MS
    duration_s = args.duration if args.duration is not None else SCENARIOS[args.scenario].duration_s
    return (time.time_ns() // 1_000_000 - duration_s * 1000) // 1000 * 1000


def _first_secret(api_keys: tuple[str, ...]) -> str:
    """The secret of the first ``name:secret[:scopes]`` entry.

    >>> _first_secret(("demo:demo-key", "other:x")), _first_secret(("fleet:s3cret:reports+relay",))
    ('demo-key', 's3cret')
    """
    from collectors.auth import secret_of

    if not api_keys:
        raise ValueError("no collector.api_keys configured: pass --api-key")
    return secret_of(api_keys[0])
