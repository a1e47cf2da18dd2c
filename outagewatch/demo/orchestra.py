"""Starting, feeding, watching and stopping the demo's processes."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from core.config import Settings
from outagewatch.demo.receiver import WebhookReceiver
from outagewatch.demo.watch import Replay, Watcher
from outagewatch.pipeline.running import Pipeline
from outagewatch.stack.process import StackError

log = logging.getLogger("outagewatch.demo")


class Orchestra:
    def __init__(self, settings: Settings, run_dir: Path, keep: bool = False) -> None:
        self.settings = settings
        self.run_dir = run_dir
        self.keep = keep
        self.started_stack: set[str] = set()
        # Set once this run has its own topics: only then may stop() delete them.
        self.isolated = False
        self.receiver = WebhookReceiver(run_dir / "alerts-received.ndjson")
        self.collector: Any = None
        self.pipeline: Pipeline | None = None
        self.watcher: Watcher
        self.delivery: Any = None
        self.feed_error: BaseException | None = None
        self.report_prefix = ""
        self._replay: Replay | None = None
        self._range_ms = (0, 0)

    def start(self) -> None:
        from core.kafka_admin import ensure_topics
        from history.api import migrate
        from outagewatch.pipeline.isolation import isolated
        from outagewatch.stack import manager

        self.run_dir.mkdir(parents=True, exist_ok=True)
        log.info("bringing the local stack up (first run: fetches Kafka, installs ClickHouse)")
        state = manager.up(self.settings)
        self.started_stack = set(state.get("started_seconds", {}))
        # Topics and consumer groups of this run only: a backlog left by an
        # earlier (interrupted) run must not stand between the story and its
        # alerts. The ClickHouse database stays the configured one, so the
        # dashboards and analysts find every run there.
        self.settings, isolation_env = isolated(self.settings, self.run_dir.name.lower())
        self.isolated = True
        ensure_topics(self.settings.kafka.bootstrap, dict.fromkeys(self.settings.topics.all(), self.settings.kafka.partitions),
                      self.settings.kafka.replication_factor)
        applied = migrate(self.settings)
        log.info("ClickHouse migrations: %s", applied)
        self.receiver.start()
        env = child_env(self.settings, self.receiver.url)
        env.update(isolation_env)
        self.pipeline = Pipeline(self.settings, self.run_dir, env, prefer_default_ports=True)
        self.pipeline.start()
        self.collector = self.pipeline.collector
        self.watcher = Watcher(self.settings).start()
        log.info("webhook receiver %s", self.receiver.url)

    def replay(self, scenario: str, seed: int, scale: float, duration_s: int, start_ms: int,
               story_start_ms: int, speed: float, send_from_ms: int | None = None) -> Replay:
        """Replay ``scenario`` through the collector in a thread; ticks ending before ``send_from_ms`` are not sent.

        The simulated world still lives through them (audiences build up), so
        what is sent from then on is the same as in a full replay.
        """
        from outagewatch.simulator import HttpPolicy, generate, send_http

        replay = Replay(scenario=scenario, total_event_s=duration_s)
        self._replay = replay
        self._range_ms = (start_ms, start_ms + duration_s * 1000)
        self.report_prefix = f"{scenario}-{seed}-"
        api_key = self._pipeline.fleet_secret

        def ticks() -> Iterator[Any]:
            for tick in generate(scenario, seed=seed, scale=scale, duration_s=duration_s, start_ms=start_ms):
                replay.event_ms = tick.end_ms
                replay.done_event_s = (tick.end_ms - start_ms) / 1000
                if send_from_ms is not None and tick.end_ms <= send_from_ms:
                    continue
                replay.reports_sent += tick.n_reports
                yield tick

        def feed() -> None:
            try:
                self.delivery = send_http(ticks(), self.collector.url, api_key,
                                          policy=HttpPolicy(batch_size=500, concurrency=4, gzip=False),
                                          pacer=StoryPacer(speed, story_start_ms))
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                self.feed_error = exc
                log.error("the replay stopped: %s", exc)
            finally:
                replay.finished = True

        threading.Thread(target=feed, name="demo-feeder", daemon=True).start()
        return replay

    @property
    def _pipeline(self) -> Pipeline:
        if self.pipeline is None:
            raise StackError("the demo's pipeline has not been started")
        return self.pipeline

    def check_children(self) -> None:
        self._pipeline.check()
        if self.feed_error is not None:
            raise StackError(f"the replay failed: {self.feed_error}")

    def accepted(self) -> tuple[int, int]:
        counts = self._pipeline.collector_counts()
        return counts.accepted, counts.sampled_out

    def stored(self) -> int:
        return self._pipeline.stored(self.report_prefix, *self._range_ms).rows

    def drained(self) -> bool:
        accepted, sampled_out = self.accepted()
        return accepted > 0 and self.stored() >= accepted - sampled_out and self.watcher.live.lag == 0

    def summary(self, scenario: str, labels_doc: dict[str, Any], seed: int, wall_s: float) -> dict[str, Any]:
        from outagewatch.demo.summary import summarise

        # Let the last windows close and their alerts arrive.
        time.sleep(max(3.0, self.settings.streams.window_seconds * 1.5))
        accepted, sampled_out = self.accepted()
        # The story's alerts: once its reports end, every key goes dark and the worker rightly says so
        # (streams.dark), but that is the replay stopping, not the story.
        story_end = self._range_ms[1]
        summary = summarise(
            scenario=scenario, labels=labels_doc,
            alerts=[a for a in self.watcher.snapshot_alerts() if a.starts_at < story_end],
            sent=self.delivery.reports if self.delivery else (self._replay.reports_sent if self._replay else 0),
            accepted=accepted, sampled_out=sampled_out, stored=self.stored(),
            notifications=sum(int(n.get("starts_at", 0)) < story_end for n in self.receiver.received),
            wall_s=wall_s, where=run_dir_files(self.run_dir))
        summary["seed"] = seed
        return summary

    def stop(self) -> None:
        if getattr(self, "watcher", None) is not None:
            self.watcher.stop()
        if self.keep:
            log.info("--keep: leaving the collector, worker, sink and stack running (logs in %s)", self.run_dir)
            self.receiver.stop()
            return
        # The supervisor first (it would restart them), then the children, the sink last, so what the
        # worker flushed on the way out is stored.
        if self.pipeline is not None:
            self.pipeline.stop()
        self.receiver.stop()
        if self.isolated:
            self._delete_run_topics()
        if self.started_stack:
            from outagewatch.stack import manager

            log.info("stopping the stack components this demo started: %s", ", ".join(sorted(self.started_stack)))
            manager.down(self.settings)

    def _delete_run_topics(self) -> None:
        """This run's topics go; its data stays in ClickHouse."""
        from kafka.admin import KafkaAdminClient

        admin = KafkaAdminClient(bootstrap_servers=self.settings.kafka.bootstrap)
        try:
            admin.delete_topics(list(self.settings.topics.all()))
        except Exception as exc:  # noqa: BLE001 - cleanup only
            log.warning("could not delete this run's topics: %s", exc)
        finally:
            admin.close()


class StoryPacer:
    """No waiting during the warm-up, then ``speed`` event seconds per wall second."""

    def __init__(self, speed: float, story_start_ms: int) -> None:
        from outagewatch.simulator import Pacer

        self.story_start_ms = story_start_ms
        self.pacer = Pacer(speed)

    def delay_s(self, event_ms: int) -> float:
        if event_ms < self.story_start_ms:
            return 0.0
        return float(self.pacer.delay_s(event_ms))


def child_env(settings: Settings, webhook_url: str) -> dict[str, str]:
    """The environment of the pipeline's children: ours, with the demo's webhook receiver added."""
    env = dict(os.environ)
    hooks = [url for url in settings.alerting.webhook_urls if url]
    env["OUTAGEWATCH_ALERTING_WEBHOOK_URLS"] = ",".join([*hooks, webhook_url])
    return env


def run_dir_files(run_dir: Path) -> dict[str, str]:
    """Where the summary tells the user to look next."""
    return {
        "logs": str(run_dir),
        "alert_notifications": str(run_dir / "alerts-received.ndjson"),
        "labels": str(run_dir / "labels.json"),
        "clickhouse": "outagewatch history query \"SELECT scope, key, kind, status, event_ts FROM alerts FINAL "
                      "ORDER BY event_ts\"",
        "grafana": "outagewatch dashboards build  # then docker compose -f deploy/docker-compose.yml up -d",
    }


