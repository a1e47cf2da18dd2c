"""A Kafka broker and a ClickHouse server of one benchmark run: free ports, data dirs of their own.

The chaos benchmark restarts the broker and stops ClickHouse; doing that to
the configured stack would hurt everyone else using it. The local stack's
own code (``outagewatch.stack``) runs these two, with the ports and data
directory taken from settings made for the run.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from core.config import Settings
from history.client import parse_url
from outagewatch.stack import manager
from outagewatch.stack.process import free_port

log = logging.getLogger("outagewatch.bench.pipeline")


def private_settings(settings: Settings, home: Path) -> Settings:
    """``settings`` aimed at a broker and a ClickHouse on free ports, with their data under ``home``."""
    parts = urlsplit(settings.clickhouse.url)
    credentials = parts.netloc.rpartition("@")[0]
    netloc = f"{credentials}@127.0.0.1:{free_port()}" if credentials else f"127.0.0.1:{free_port()}"
    url = urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
    return dataclasses.replace(
        settings,
        kafka=dataclasses.replace(settings.kafka, bootstrap=f"127.0.0.1:{free_port()}", controller_port=free_port()),
        clickhouse=dataclasses.replace(settings.clickhouse, url=url, http_port=free_port()),
        # The jars stay where every run finds them; data, logs and pid files are the run's.
        stack=dataclasses.replace(settings.stack, data_dir=home, kafka_heap="768m"),
    )


class PrivateStack:
    """Start with ``up``; ``restart_broker`` and ``stop_clickhouse`` / ``start_clickhouse`` for faults."""

    def __init__(self, settings: Settings, home: Path, keep: bool = False) -> None:
        self.home = home
        self.keep = keep
        self.settings = private_settings(settings, home)

    def up(self) -> dict[str, Any]:
        self.home.mkdir(parents=True, exist_ok=True)
        state = manager.up(self.settings)
        log.info("private stack: Kafka %s, ClickHouse %s, data in %s", self.settings.kafka.bootstrap,
                 parse_url(self.settings.clickhouse.url).describe(), self.home)
        return state

    def restart_broker(self) -> float:
        """Stop the broker (SIGTERM) and start it again; returns the seconds it was gone."""
        node = manager.kafka_node(self.settings)
        began = time.monotonic()
        node.stop()
        node.start(timeout=self.settings.stack.ready_timeout_seconds)
        return time.monotonic() - began

    def stop_clickhouse(self) -> None:
        manager.clickhouse_node(self.settings).stop()

    def start_clickhouse(self) -> None:
        manager.clickhouse_node(self.settings).start(timeout=self.settings.stack.ready_timeout_seconds)

    def down(self) -> None:
        manager.down(self.settings)
        if not self.keep:
            shutil.rmtree(self.home, ignore_errors=True)
