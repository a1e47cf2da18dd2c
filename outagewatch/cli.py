"""The `outagewatch` command.

Each subcommand lives beside the code it runs, in a module with a
``register(subparsers)`` function that adds its parser and sets ``func``.
Adding a command means adding one line to ``COMMANDS``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from core.config import ConfigError, Settings, load_settings
from core.logs import setup_logging
from outagewatch import __version__
from outagewatch.stack.process import StackError

COMMANDS: tuple[str, ...] = (
    "outagewatch.stack.cli",
    "outagewatch.bench.cli",
    "dashboards.cli",
    "dashboards.status.cli",
    "outagewatch.evaluate.detect_csv",
    "streams.cli",
    "outagewatch.simulator.cli",
    "history.cli",
    "outagewatch.demo.cli",
    "collectors.cli",
    "outagewatch.evaluate.cli",
    "alerting.cli",
)

log = logging.getLogger("outagewatch")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="outagewatch",
        description=(
            "Real-time outage detection for live-audio rooms: ingest client reports and server "
            "metrics into Kafka, compute per-room health, alert on spikes, keep history in ClickHouse."
        ),
        epilog="Settings come from OUTAGEWATCH_* environment variables or a TOML file; see docs/configuration.md.",
    )
    parser.add_argument("--version", action="version", version=f"outagewatch {__version__}")
    parser.add_argument("--config", metavar="FILE", help="TOML settings file (default: $OUTAGEWATCH_CONFIG, ./outagewatch.toml)")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in COMMANDS:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        settings: Settings = load_settings(args.config)
        return int(args.func(settings, args) or 0)
    except (ConfigError, StackError) as exc:
        log.error("%s", exc)
        return 1
    except KeyboardInterrupt:
        log.warning("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
