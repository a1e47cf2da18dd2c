"""`outagewatch evaluate`: score the production pipeline on recorded input, or on a sweep of generated families."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from core.config import Settings

log = logging.getLogger("outagewatch.evaluate")

DEFAULT_SEEDS = 12


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="replay recorded reports (or --sweep generated families) through windows, detectors and alerting; "
             "score the alerts against labels",
        description=(
            "Stream recorded client reports (and optionally server metric samples) through the same windowing, "
            "detectors and alert engine as a worker, in event time, and print one JSON object: incidents, "
            "detected, recall, precision, f1, delay_s {p50, p95, max}, false_alerts, false_alerts_per_room_day, "
            "alerts. Window length, lateness and alert policy come from the settings (streams.*, alerting.*); "
            "the silences of 'outagewatch silence' are not read, so a recording scores the same on every machine. "
            "With --sweep, generate N seeded draws of each scenario family instead (in memory, nothing written), "
            "replay and score each the same way, and print one table by family (see docs/evaluation.md)."
        ),
    )
    parser.add_argument("--reports", type=Path, metavar="R.ndjson",
                        help="client reports, one JSON object per line in arrival order (.gz accepted)")
    parser.add_argument("--labels", type=Path, metavar="L.json",
                        help='labelled incidents: {"incidents": [{"id", "scope", "key", "kind", "start", "end"}]}')
    parser.add_argument("--metrics", type=Path, default=None, metavar="M.ndjson",
                        help="server metric samples, one JSON object per line (optional)")
    parser.add_argument("--alerts-out", type=Path, default=None, metavar="FILE",
                        help="write every page (alert event not muted) as one JSON object per line: the alert, its "
                             "evidence and labels, and 'matched': the incident ids it covers, or false (with --sweep: "
                             "every draw's pages, each with its family and seed)")
    sweep = parser.add_argument_group("sweep", "seeded draws of the scenario families (outagewatch simulate --list-families)")
    sweep.add_argument("--sweep", action="store_true", help="run the families sweep instead of scoring one recording")
    sweep.add_argument("--families", metavar="A,B", default="",
                       help="comma-separated families to run (default: all)")
    sweep.add_argument("--seeds", type=int, default=None, metavar="N",
                       help=f"draws per family (default {DEFAULT_SEEDS}; 1 with --quick)")
    sweep.add_argument("--first-seed", type=int, default=0, metavar="S",
                       help="seeds run from S to S+N-1 (default 0): tune on some seeds, check on others")
    sweep.add_argument("--jobs", type=int, default=os.cpu_count() or 1, metavar="J",
                       help="processes running draws at once (default: the CPU count)")
    sweep.add_argument("--quick", action="store_true",
                       help="a smoke run: 1 draw per family, 10-minute warm-ups, the hours-long family 30 minutes "
                            "(other draws than the full sweep's: its figures are not the yardstick)")
    sweep.add_argument("--with-metrics", action="store_true",
                       help="also generate the simulated services' metrics (and label their incidents); "
                            "about 1.5 CPU seconds per event minute more per draw")
    sweep.add_argument("--json", action="store_true", help="print the board as one JSON object instead of the table")
    sweep.add_argument("--misses", action="store_true",
                       help="after the table, list every missed incident and false page with its draw")
    parser.set_defaults(func=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    if args.sweep:
        return run_sweep(settings, args)
    if args.reports is None or args.labels is None:
        log.error("evaluate: give --reports and --labels (a recording to score), or --sweep")
        return 2
    from outagewatch.evaluate.replay import EvaluateError, evaluate

    started = time.perf_counter()
    try:
        result = evaluate(args.reports, args.labels, args.metrics, settings, alerts_out=args.alerts_out)
    except EvaluateError as exc:
        log.error("evaluate: %s", exc)
        return 1
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    log.info("evaluate took %.2f s", time.perf_counter() - started)
    return 0


def run_sweep(settings: Settings, args: argparse.Namespace) -> int:
    from alerting.policy import AlertingPolicy
    from outagewatch.evaluate import scoreboard, sweep
    from outagewatch.evaluate.replay import EvaluateError, write_pages
    from outagewatch.simulator.families import FAMILIES, FULL, QUICK

    if args.reports or args.labels or args.metrics:
        log.error("evaluate: --sweep generates its own recordings; drop --reports/--labels/--metrics")
        return 2
    names = [name.strip() for name in args.families.split(",") if name.strip()] or list(FAMILIES)
    unknown = [name for name in names if name not in FAMILIES]
    if unknown:
        log.error("evaluate: unknown families %s; known: %s", ", ".join(unknown), ", ".join(FAMILIES))
        return 2
    seeds = args.seeds if args.seeds is not None else (1 if args.quick else DEFAULT_SEEDS)
    if seeds < 1 or args.jobs < 1:
        log.error("evaluate: --seeds and --jobs must be at least 1")
        return 2
    jobs = sweep.plan(names, range(args.first_seed, args.first_seed + seeds), budget=QUICK if args.quick else FULL,
                      window_s=settings.streams.window_seconds, lateness_s=settings.streams.allowed_lateness_seconds,
                      dark_key_s=settings.streams.dark_key_seconds,
                      policy=AlertingPolicy.from_settings(settings.alerting, live_silences=False),
                      with_metrics=args.with_metrics, keep_pages=args.alerts_out is not None)
    log.info("sweep: %d families x %d seeds = %d draws in %d processes", len(names), seeds, len(jobs), args.jobs)
    started = time.perf_counter()

    def progress(result: sweep.DrawResult, done: int, total: int) -> None:
        found = len(result.incidents)
        hits = sum(1 for i in result.incidents if i.detected)
        log.info("[%d/%d] %s seed %d: %d/%d detected, %d false pages, %d reports, %.1f CPU s (%.0f s elapsed)",
                 done, total, result.family, result.seed, hits, found, len(result.false_pages), result.reports,
                 result.cpu_s, time.perf_counter() - started)

    # A terminated sweep stops its worker processes too (sweep.run cleans up on SystemExit).
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        results = sweep.run(jobs, min(args.jobs, len(jobs)), progress)
    finally:
        signal.signal(signal.SIGTERM, previous)
    wall_s = time.perf_counter() - started
    board = scoreboard.summarise(results)
    board["run"] = {"families": len(names), "seeds": seeds, "first_seed": args.first_seed, "quick": args.quick,
                    "draws": len(results), "jobs": args.jobs, "wall_s": round(wall_s, 1),
                    "cpu_s": board["total"]["cpu_s"],
                    "cpu_us_per_report": round(1e6 * board["total"]["cpu_s"] / max(1, board["total"]["reports"]), 1)}
    board["misses"] = scoreboard.misses(results, args.quick)
    if args.alerts_out is not None:
        try:
            write_pages(args.alerts_out, (page for result in results for page in result.pages))
        except EvaluateError as exc:
            log.error("evaluate: %s", exc)
            return 1
    if args.json:
        json.dump(board, sys.stdout)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(scoreboard.table(board) + "\n")
        run_figures = board["run"]
        sys.stdout.write(f"\n{run_figures['draws']} draws in {run_figures['wall_s']:.0f} s wall, "
                         f"{run_figures['cpu_s']:.0f} CPU s, {run_figures['cpu_us_per_report']} CPU us per report\n")
        if args.misses:
            sys.stdout.write(scoreboard.miss_lines(board["misses"]))
    return 0


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)
