"""`outagewatch bench [NAME ...]`: measure and print figures as JSON lines.

Each benchmark is a module in ``outagewatch.bench`` with ``run(**options)``
returning a list of result dicts; add one to ``BENCHMARKS`` to register it.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import sys
from typing import Any

from core.config import Settings

BENCHMARKS: dict[str, tuple[str, str]] = {
    "schemas": ("outagewatch.bench.schemas", "decode+validate 100k client reports: msgspec vs pydantic"),
    "dashboards": ("outagewatch.bench.dashboards", "p50/p95 of every dashboard query, 7 d x 1,000 rooms in ClickHouse"),
    "detectors": ("outagewatch.bench.detectors", "detector us per call, ensemble windows/s, detect-csv rows/s"),
    "alerting": ("outagewatch.bench.alerting", "decisions/s and CPU us per decision of the one alerting consumer "
                 "(decode + AlertStage) at 1k, 10k, 100k rooms x every kind per 10 s window; fits one core?"),
    "streams": ("outagewatch.bench.streams", "reports/s through `outagewatch worker`, Kafka in -> room-health out"),
    "history-sink": ("outagewatch.bench.history_sink", "reports/s through the ClickHouse sink: Kafka backlog -> rows -> ClickHouse"),
    "ingest": ("outagewatch.bench.ingest", "reports/s through POST /v1/reports into Kafka, p99 latency, RSS in a 10x surge"),
    "kafka-clients": ("outagewatch.bench.kafka_clients", "CPU per report producing and consuming our packed records: "
                      "kafka-python (what we run) vs librdkafka (confluent-kafka), alternating"),
    "e2e": ("outagewatch.bench.pipeline.e2e", "load -> collector -> Kafka -> worker, sink -> ClickHouse at --rate for --seconds; zero loss counted"),
    "latency": ("outagewatch.bench.pipeline.latency", "injected onset -> first firing alert under background load, event and wall time"),
    "storm": ("outagewatch.bench.pipeline.storm", "10x and 100x error surges: shed vs accepted, peak RSS per process, lag, alert"),
    "cluster": ("outagewatch.bench.cluster", "faults in the cluster topology under load (broker, worker, ClickHouse replica, "
                "ZooKeeper, rebalance): lost, duplicated, the incident paged, each fault's effect"),
    "peer": ("outagewatch.bench.peer", "per-room 10 s windows: our worker vs Quix Streams vs a naive Faust agent"),
    "receivers": ("outagewatch.bench.receivers", "CPU per data point of the OTLP/HTTP and remote-write receivers "
                  "(decode, and the whole HTTP path) beside our JSON /v1/metrics"),
    "fuzz": ("outagewatch.bench.fuzz", "generated and mutated bodies against a real collector over HTTP: answers by "
                                       "status, 5xx (must be 0), still serving, bodies/s"),
    "status-page": ("outagewatch.bench.status_page", "a flood of anonymous visitors on the status page: requests/s, "
                    "p50/p99, and the ClickHouse queries it caused per cache period and component"),
    "chaos": ("outagewatch.bench.pipeline.chaos", "the pipeline at half its capacity on a private Kafka and ClickHouse "
              "while the collector, worker and sink are SIGKILLed, the broker restarts and ClickHouse stops for "
              "60 s, with an incident in the middle: recovery times, loss, duplicates, duplicate pages, page delay"),
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
    parser.add_argument("--seconds", type=float, default=None,
                        help="load duration for the whole-pipeline benchmarks (e2e default 60, latency/storm: "
                             "their own phases); ignored by the others")
    parser.add_argument("--rate", type=float, default=None,
                        help="background reports/s offered to the collector by e2e, latency and storm (default "
                             "100000; the figures report the rate actually acknowledged); ignored by the others")
    parser.add_argument("--minutes", type=float, default=None,
                        help="chaos: minutes of load while the faults run (default 10; --quick: 2.5); ignored by the "
                             "others")
    parser.add_argument("--connections", type=int, default=None,
                        help="keep-alive connections the e2e load (default 16) and the fuzz (default 24) post on. Each waits for its "
                             "answer, so too few make the load generator, not the pipeline, the limit")
    parser.add_argument("--bodies", type=int, default=None,
                        help="fuzz: bodies to send (default 100000, 2000 with --quick; the full campaign is "
                             "1000000); ignored by the others")
    parser.add_argument("--seed", type=int, default=None,
                        help="fuzz: seed of the generated bodies (default 0; the same seed sends the same bodies); "
                             "ignored by the others")
    parser.set_defaults(func=_run)


def _run(settings: Settings, args: argparse.Namespace) -> int:
    names = args.names or list(BENCHMARKS)
    for name in names:
        module = importlib.import_module(BENCHMARKS[name][0])
        options = {name: getattr(args, name, None) for name in ("seconds", "rate", "connections", "bodies", "seed",
                                                                "minutes")}
        accepted = inspect.signature(module.run).parameters
        takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in accepted.values())
        options = {k: v for k, v in options.items() if v is not None and (takes_any or k in accepted)}
        results: list[dict[str, Any]] = module.run(settings=settings, quick=args.quick, **options)
        for result in results:
            sys.stdout.write(json.dumps(result) + "\n")
            sys.stdout.flush()
    return 0
