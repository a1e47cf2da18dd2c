"""`outagewatch demo`: the launch-night story through the whole real pipeline.

Stack up → migrations → collector, worker and ClickHouse sink as child
processes → the simulator replays the scenario through the collector over
HTTP (warm-up as fast as possible, the story time-compressed) → a live view
→ a summary with each incident's detection delay against the ground truth.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Iterator
from typing import Any

from core.config import Settings

log = logging.getLogger("outagewatch.demo")


def register(subparsers: Any) -> None:
    from outagewatch.simulator import SCENARIOS

    parser = subparsers.add_parser(
        "demo",
        help="run the whole pipeline on the local stack with the launch-night story",
        description=(
            "Bring the local stack up, apply the ClickHouse migrations, start the collector, a worker and "
            "the ClickHouse sink, replay a scenario through the collector over HTTP (the warm-up as fast "
            "as possible, then the story time-compressed), show a live view, and end with a summary: "
            "reports ingested and stored, alerts raised, each incident's detection delay. Data stays in "
            "ClickHouse for the dashboards; processes stop at the end unless --keep. Ctrl-C stops cleanly."
        ),
    )
    parser.add_argument("--scenario", default="launch_night", choices=sorted(SCENARIOS),
                        help="which story to replay (default: launch_night)")
    parser.add_argument("--speed", type=float, default=20.0,
                        help="story speed in event seconds per wall second (default 20: the story's first hour "
                             "in 3 minutes); 0 = as fast as possible. The warm-up is always sent at full speed")
    parser.add_argument("--scale", type=float, default=0.02,
                        help="audience scale (default 0.02: the 700k-listener room has 14k simulated clients)")
    parser.add_argument("--seed", type=int, default=None, help="simulator seed (default: a new one per run)")
    parser.add_argument("--duration", type=int, default=None, help="event seconds to replay (default: the scenario's)")
    parser.add_argument("--warmup-minutes", type=float, default=15.0,
                        help="minutes of the scenario's normal warm-up to send before the story (default 15; the "
                             "detectors need about 2). The simulator lives through the whole warm-up either way; "
                             "sending less of it lets the worker catch up sooner")
    parser.add_argument("--drain-timeout", type=float, default=180.0,
                        help="seconds to wait after the replay for everything to reach ClickHouse (default 180)")
    parser.add_argument("--keep", action="store_true",
                        help="leave the stack, collector, worker and sink running at the end")
    parser.add_argument("--no-view", action="store_true",
                        help="log progress lines instead of the live view (automatic when stdout is not a terminal)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--smoke", action="store_true",
                        help="a short check for CI: small scale, no pacing, and exit 1 unless everything accepted "
                             "was stored and the scenario raised an alert (or, for a scenario without "
                             "incidents such as benign_surge or spammer, raised none)")
    parser.set_defaults(func=run)


def run(settings: Settings, args: argparse.Namespace) -> int:
    from outagewatch.simulator import get_scenario

    if args.smoke:
        args.scale, args.speed, args.no_view = min(args.scale, 0.01), 0.0, True
    seed = args.seed if args.seed is not None else int(time.time()) % 1_000_000
    scenario = get_scenario(args.scenario)
    duration_s = int(args.duration or scenario.duration_s)
    run_dir = settings.stack.data_dir / "demo" / time.strftime("%Y%m%dT%H%M%S")
    started_wall = time.monotonic()

    from outagewatch.demo.orchestra import Orchestra

    orchestra = Orchestra(settings, run_dir, keep=args.keep)
    try:
        orchestra.start()
        # Event time ends about now, so "last 6 hours" on the boards shows the run.
        start_ms = (int(time.time()) - duration_s) * 1000
        labels_doc = _labels(args.scenario, duration_s, start_ms)
        (run_dir / "labels.json").write_text(json.dumps(labels_doc, indent=2))
        story_start_ms = start_ms + scenario.warmup_s * 1000
        replay = orchestra.replay(args.scenario, seed, args.scale, duration_s, start_ms,
                                  story_start_ms=story_start_ms, speed=args.speed,
                                  # A replay that stops inside the warm-up sends all of it.
                                  send_from_ms=(story_start_ms - int(args.warmup_minutes * 60_000)
                                                if duration_s > scenario.warmup_s else None))
        _watch(orchestra, replay, live_view=not args.no_view and sys.stdout.isatty(),
               drain_timeout=args.drain_timeout)
        summary = orchestra.summary(args.scenario, labels_doc, seed, time.monotonic() - started_wall)
    except KeyboardInterrupt:
        log.warning("interrupted: stopping what the demo started")
        return 130
    finally:
        orchestra.stop()
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        from outagewatch.demo.report import print_summary

        print_summary(summary)
    if args.smoke:
        return _smoke_verdict(summary)
    return 0


def _labels(scenario: str, duration_s: int, start_ms: int) -> dict[str, Any]:
    from outagewatch.simulator import labels

    return labels(scenario, duration_s=duration_s, start_ms=start_ms)


def _watch(orchestra: Any, replay: Any, live_view: bool, drain_timeout: float) -> None:
    """Show progress until the replay is done and everything accepted is stored (or the timeout)."""
    from outagewatch.demo.view import progress_line, render

    def frames() -> Iterator[None]:
        deadline = None
        while True:
            orchestra.check_children()
            if replay.finished and deadline is None:
                deadline = time.monotonic() + drain_timeout
                log.info("replay finished; waiting for the pipeline to drain (up to %.0fs). No report comes after "
                         "the story's end: the worker will page that silence too (not counted in the summary)",
                         drain_timeout)
            if deadline is not None and (orchestra.drained() or time.monotonic() > deadline):
                return
            yield None

    if live_view:
        from rich.live import Live as RichLive

        with RichLive(render(replay, orchestra.watcher.live), refresh_per_second=2, screen=False) as screen:
            for _ in frames():
                with orchestra.watcher.lock:
                    screen.update(render(replay, orchestra.watcher.live))
                time.sleep(0.5)
    else:
        last = 0.0
        for _ in frames():
            if time.monotonic() - last > 5:
                last = time.monotonic()
                with orchestra.watcher.lock:
                    log.info("%s", progress_line(replay, orchestra.watcher.live))
            time.sleep(0.5)


def _smoke_verdict(summary: dict[str, Any]) -> int:
    reports, alerts = summary["reports"], summary["alerts"]
    problems = []
    if reports["accepted"] <= 0:
        problems.append("nothing was accepted by the collector")
    if reports["lost"]:
        problems.append(f"only {reports['stored']} of {reports['accepted'] - reports['sampled_out']} accepted "
                        "reports (not sampled out) reached ClickHouse")
    if summary["incidents"] and alerts["firing_events"] == 0:
        problems.append("no alert fired")
    if not summary["incidents"] and alerts["firing_events"]:
        problems.append(f"{alerts['firing_events']} alert events fired in a scenario with no incident "
                        f"(by scope: {alerts['by_scope']})")
    for problem in problems:
        log.error("smoke check: %s", problem)
    return 1 if problems else 0
