"""`outagewatch collect`: run the HTTP collector and the metric scraper."""

from __future__ import annotations

import argparse
import dataclasses
import logging
from typing import Any

from core import gctune
from core.config import Settings

log = logging.getLogger("collectors")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "collect",
        help="run the collector: POST /v1/reports and /v1/metrics into Kafka, OTLP and remote-write, scrape "
             "server metrics",
        description=(
            "Accept client reports (POST /v1/reports) and pushed server metrics (POST /v1/metrics), "
            "authenticated by API key, and produce them to Kafka; take OTLP/HTTP metrics (POST /v1/metrics on "
            "--otlp-port, 4318) and Prometheus remote-write 1.0 (POST /api/v1/write) from servers (a key with the "
            "metrics scope, sent as 'Authorization: Bearer <secret>'); scrape Prometheus endpoints into the "
            "server-metrics topic. Serves /healthz, /readyz and /metrics. Stops on SIGINT/SIGTERM; SIGHUP "
            "re-reads collector.api_keys_file. Refuses to listen off loopback with the README's demo key "
            "(collector.allow_demo_key overrides). See docs/security.md for what each key may do."
        ),
        epilog="Every flag overrides its OUTAGEWATCH_COLLECTOR_* setting (see docs/configuration.md).",
    )
    parser.add_argument("--host", help="address to listen on (default: collector.host, 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port to listen on; 0 picks a free one (default: collector.port, 18080)")
    parser.add_argument("--processes", type=int, metavar="N",
                        help="collector processes sharing --port (SO_REUSEPORT), about one a core, under one "
                             "supervisor that restarts any that dies; the rate limits are shared out among them "
                             "(default: collector.processes, 1; see docs/operations.md)")
    parser.add_argument("--otlp-port", type=int, metavar="PORT",
                        help="port of the OTLP/HTTP metrics receiver (POST /v1/metrics in OTLP protobuf or JSON, "
                             "on --host); 0 picks a free one, -1 runs none (default: collector.otlp_port, 4318)")
    parser.add_argument("--scrape", action="append", metavar="URL=SERVICE[:CLUSTER]", default=[],
                        help="a Prometheus endpoint to scrape, with the service (and cluster) its samples belong "
                             "to, e.g. http://127.0.0.1:9100/metrics=audio-edge:eu-1; repeat for more; replaces "
                             "collector.scrape_targets")
    parser.add_argument("--scrape-interval", type=float, metavar="SECONDS",
                        help="seconds between scrapes (default: collector.scrape_interval_seconds, 15)")
    parser.add_argument("--api-key", action="append", metavar="NAME:SECRET[:SCOPES]", default=[],
                        help="an accepted API key, with its scopes joined by '+' (reports: client apps; metrics: "
                             "servers; relay: an edge tier batching many clients' reports; none given: "
                             "reports+metrics); repeat for more; replaces collector.api_keys")
    parser.set_defaults(func=_collect)


def _collect(settings: Settings, args: argparse.Namespace) -> int:
    from collectors.auth import KeyConfigError
    from collectors.scraper import TargetError
    from collectors.server import run
    from collectors.sink import SinkUnavailable
    from collectors.sources import SourceConfigError

    changes: dict[str, Any] = {}
    if args.scrape:
        changes["scrape_targets"] = tuple(args.scrape)
    if args.scrape_interval is not None:
        changes["scrape_interval_seconds"] = args.scrape_interval
    if args.otlp_port is not None:
        changes["otlp_port"] = args.otlp_port
    if args.processes is not None:
        changes["processes"] = args.processes
    if args.api_key:
        changes["api_keys"] = tuple(args.api_key)
    if changes:
        settings = dataclasses.replace(settings, collector=dataclasses.replace(settings.collector, **changes))
    try:
        if settings.collector.processes > 1:
            from collectors import processes

            return processes.run(settings, host=args.host, port=args.port, verbosity=args.verbose)
        gctune.for_throughput()
        run(settings, host=args.host, port=args.port)
    except (SinkUnavailable, KeyConfigError, SourceConfigError, TargetError, OSError) as exc:
        log.error("collector not started: %s", exc)
        return 1
    return 0
