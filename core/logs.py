"""Logging an on-call engineer can read at 3 am: time, level, component, message."""

from __future__ import annotations

import logging
import sys

# Client libraries log every reconnect at INFO; that drowns our own lines.
NOISY_LIBRARIES = ("kafka", "aiokafka", "faust", "mode", "clickhouse_driver", "urllib3", "aiohttp.access")


def setup_logging(verbosity: int = 0, process: str = "") -> None:
    """Lines to stderr; ``process`` tags each line of one of several like processes (``collector-1``)."""
    level = logging.DEBUG if verbosity >= 2 else logging.INFO
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format=f"%(asctime)s %(levelname)-7s %(name)s{f'[{process}]' if process else ''}: %(message)s",
        datefmt="%Y-%m-%dT%H:%M:%S",
        force=True,
    )
    quiet_noisy_libraries(logging.DEBUG if verbosity >= 2 else logging.WARNING)


def quiet_noisy_libraries(level: int = logging.WARNING) -> None:
    """Set the client libraries' loggers to ``level`` (the CLI, and the tests' failure reports)."""
    for name in NOISY_LIBRARIES:
        logging.getLogger(name).setLevel(level)
