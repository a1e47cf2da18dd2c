"""Benchmark: reports/s through `outagewatch worker`, Kafka in -> room-health out.

For 1 and then 2 workers (only 1 with ``--quick``), each on fresh topics:

1. **throughput**: N reports (default 1M, one message per room and request,
   20 reports each, as the collector sends them) are produced first; then the
   worker(s) start (``outagewatch worker --progress-every``, the real worker)
   and ``reports_per_s`` is N over the time from the first message a worker
   took to the end of the batch that folded the last report (state written to
   the changelog). Startup and group join are excluded, as for the peers.
2. **lag**: with the backlog done, live reports (event time = now) are
   produced at ``lag_rate`` per second for ``lag_seconds``. A room window can
   close once the watermark passes its end by the allowed lateness, so its
   lag is the room-health record time minus (window end + lateness); the p95
   is over the windows that live traffic closed (not those closed by the
   idle clock at the end).
3. ``worker_peak_rss_mb``: VmHWM of each worker process.

The worker counts every report it folded (``items``); the run checks that it
is exactly N, so nothing was lost or double-counted on the way in.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from typing import Any

from core import schemas
from core.codec import encode_reports
from core.config import Settings
from outagewatch.stack.process import free_port

REPORTS_PER_MESSAGE = 20


def _reports(count: int, rooms: int, start_ms: int, span_ms: int, first: int = 0) -> list[schemas.ClientReport]:
    out = []
    for index in range(first, first + count):
        kind = "error" if index % 10 == 0 else "heartbeat"
        out.append(schemas.ClientReport(
            report_id=f"r{index}", ts=start_ms + (index - first) * span_ms // count, client_id=f"c{index % 50_000}",
            room_id=f"room-{index % rooms}", kind=kind, platform=schemas.PLATFORMS[index % 4],  # type: ignore[arg-type]
            error_code="crash" if kind == "error" else None, region="eu", app_version="5.1",
            latency_ms=float(index % 300)))
    return out


def _send_by_room(producer: Any, topic: str, reports: list[schemas.ClientReport]) -> int:
    """One message per room per REPORTS_PER_MESSAGE * rooms reports, like collector requests."""
    by_room: dict[str, list[schemas.ClientReport]] = {}
    for report in reports:
        by_room.setdefault(report.room_id, []).append(report)
    for room, items in by_room.items():
        producer.send(topic, key=room.encode(), value=encode_reports(items))
    return len(by_room)


def produce_backlog(bootstrap: str, topic: str, count: int, rooms: int, start_ms: int, span_ms: int) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, batch_size=512 * 1024)
    step = rooms * REPORTS_PER_MESSAGE
    for offset in range(0, count, step):
        chunk = min(step, count - offset)
        _send_by_room(producer, topic, _reports(chunk, rooms, start_ms + offset * span_ms // count,
                                                 chunk * span_ms // count, first=offset))
    producer.flush()
    producer.close()


class WorkerRun:
    """``workers`` x `outagewatch worker` on fresh output topics, reading their progress lines."""

    def __init__(self, settings: Settings, input_topic: str, workers: int, window_seconds: int | None = None,
                 lateness_seconds: int | None = None) -> None:
        from core.kafka_admin import ensure_topics

        self.bootstrap = settings.kafka.bootstrap
        suffix = uuid.uuid4().hex[:8]
        self.topics = {name: f"bench-{name.replace('_', '-')}-{suffix}" for name in settings.topics.__dataclass_fields__}
        self.topics["client_reports"] = input_topic
        ensure_topics(self.bootstrap, {topic: settings.kafka.partitions for name, topic in self.topics.items()
                                       if name != "client_reports"})
        self.app_id = f"bench-streams-{suffix}"
        env = dict(os.environ)
        env.update({f"OUTAGEWATCH_TOPICS_{name.upper()}": topic for name, topic in self.topics.items()})
        env.update({"OUTAGEWATCH_STREAMS_APP_ID": self.app_id, "OUTAGEWATCH_KAFKA_BOOTSTRAP": self.bootstrap})
        if window_seconds:
            env["OUTAGEWATCH_STREAMS_WINDOW_SECONDS"] = str(window_seconds)
        if lateness_seconds is not None:
            env["OUTAGEWATCH_STREAMS_ALLOWED_LATENESS_SECONDS"] = str(lateness_seconds)
        self.progress: list[dict[str, Any]] = [{} for _ in range(workers)]
        # Worker logs go to temporary files: their tail explains a failed run.
        self.logs = [tempfile.TemporaryFile() for _ in range(workers)]  # noqa: SIM115 - closed in stop()
        self.processes = [subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "outagewatch", "worker", "--web-port", str(free_port()), "--idle-seconds", "2",
             "--progress-every", "0.2"], env=env, stdout=subprocess.PIPE, stderr=log)
            for log in self.logs]
        for index, process in enumerate(self.processes):
            threading.Thread(target=self._read, args=(index, process), daemon=True).start()

    def _read(self, index: int, process: subprocess.Popen[bytes]) -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith(b"{"):
                self.progress[index] = json.loads(line)

    def items(self) -> int:
        return sum(p.get("items", 0) for p in self.progress)

    def wait_items(self, expect: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.items() >= expect:
                time.sleep(0.3)  # the next progress line: the batch's flush time
                return True
            if any(process.poll() is not None for process in self.processes):
                return False
            time.sleep(0.05)
        return False

    def figures(self) -> dict[str, Any]:
        """Throughput from the first message any worker took to the last batch any worker folded."""
        firsts = [p["first_message_ms"] for p in self.progress if p.get("first_message_ms")]
        lasts = [p["last_fold_ms"] for p in self.progress if p.get("last_fold_ms")]
        items = self.items()
        seconds = (max(lasts) - min(firsts)) / 1000 if firsts and lasts else 0.0
        # The machine is shared: the workers' own CPU seconds over the same span say what
        # the work costs when wall time is noisy (all threads of each worker process).
        cpu = sum(p.get("last_fold_cpu_s", 0.0) - p.get("first_message_cpu_s", 0.0) for p in self.progress)
        return {"reports": items, "seconds": round(seconds, 3),
                "reports_per_s": round(items / seconds) if seconds > 0 else None,
                "reports_per_cpu_s": round(items / cpu) if cpu > 0 else None,
                "windows_out": sum(p.get("windows_out", 0) for p in self.progress),
                "dead_letters": sum(p.get("dead_letters", 0) for p in self.progress)}

    def log_tail(self, chars: int = 1500) -> str:
        tails = []
        for log in self.logs:
            log.seek(0)
            tails.append(log.read().decode(errors="replace")[-chars:])
        return "\n---\n".join(tails)

    def peak_rss_mb(self) -> list[float | None]:
        return [_peak_rss_mb(process.pid) for process in self.processes]

    def stop(self, delete_topics: bool = True) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in self.logs:
            log.close()
        if delete_topics:
            outputs = [topic for name, topic in self.topics.items() if name != "client_reports"]
            delete_topics_like(self.bootstrap, outputs, prefixes=(self.app_id,))


def consume_prepared(settings: Settings, topic: str, reports: int, workers: int = 1,
                     timeout_s: float = 600) -> dict[str, Any]:
    """Our worker(s) over an already-prepared topic of room-keyed report messages (packed, as the collector
    writes them, or JSON).

    Measured as the peers measure: from the first message taken to the batch
    that folded the ``reports``-th report. Returns ``{"reports", "seconds",
    "reports_per_s", "windows_out", "workers", "worker_peak_rss_mb"}``.
    """
    run = WorkerRun(settings, topic, workers)
    try:
        finished = run.wait_items(reports, timeout_s)
        figure = run.figures()
        figure.update({"workers": workers, "worker_peak_rss_mb": run.peak_rss_mb()})
        if not finished:
            figure["error"] = f"folded {run.items()} of {reports} reports within {timeout_s:.0f} s: {run.log_tail()}"
    finally:
        run.stop()
    return figure


def run(settings: Settings, quick: bool = False, count: int = 1_000_000, rooms: int = 1000,
        workers: tuple[int, ...] | None = None, lag_rate: int = 50_000, lag_seconds: float = 30.0) -> list[dict[str, Any]]:
    """One result per worker count: (1,) with ``quick``, else (1, 2)."""
    window_s = lateness_s = None
    if quick:
        count, rooms, lag_rate, lag_seconds, window_s, lateness_s = 100_000, 200, 20_000, 6.0, 2, 1
    return [_run_once(settings, count, rooms, n, lag_rate, lag_seconds, window_s, lateness_s)
            for n in (workers or ((1,) if quick else (1, 2)))]


def _run_once(settings: Settings, count: int, rooms: int, workers: int, lag_rate: int, lag_seconds: float,
              window_s: int | None, lateness_s: int | None) -> dict[str, Any]:
    from core.kafka_admin import ensure_topics

    bootstrap = settings.kafka.bootstrap
    topic = f"bench-client-reports-{uuid.uuid4().hex[:8]}"
    ensure_topics(bootstrap, {topic: settings.kafka.partitions})
    window_ms = (window_s or settings.streams.window_seconds) * 1000
    lateness_ms = (lateness_s if lateness_s is not None else settings.streams.allowed_lateness_seconds) * 1000
    # The backlog's event time ends where the live traffic starts: now.
    now = int(time.time() * 1000)
    span_ms = 50_000
    produce_backlog(bootstrap, topic, count, rooms, now - span_ms, span_ms)
    run = WorkerRun(settings, topic, workers, window_s, lateness_s)
    result: dict[str, Any] = {"bench": "streams", "workers": workers, "rooms": rooms}
    try:
        finished = run.wait_items(count, 600)
        result.update(run.figures())
        if not finished:
            result["error"] = f"folded {run.items()} of {count} reports within 600 s: {run.log_tail()}"
        else:
            result.update(_lag(run, bootstrap, topic, rooms, lag_rate, lag_seconds, window_ms, lateness_ms,
                               expect_items=count))
        result["worker_peak_rss_mb"] = run.peak_rss_mb()
    finally:
        run.stop()
        delete_topics_like(bootstrap, [topic])
    result["lost_or_doubled"] = result.get("items_expected", count) - run.items()
    return result


def _lag(run: WorkerRun, bootstrap: str, topic: str, rooms: int, rate: int, seconds: float, window_ms: int,
         lateness_ms: int, expect_items: int) -> dict[str, Any]:
    from kafka import KafkaConsumer, KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=5, batch_size=512 * 1024)
    consumer = KafkaConsumer(run.topics["room_health"], bootstrap_servers=bootstrap, auto_offset_reset="latest",
                             group_id=None, consumer_timeout_ms=100)
    consumer.poll(timeout_ms=1000)  # join the partitions now, so "latest" is before the live traffic
    started = time.monotonic()
    live_start_ms = int(time.time() * 1000)
    sent = 0
    # Small steps (about 50 a second, a few rooms each, rooms in turn) keep event time
    # advancing smoothly, as from many clients; one big step per second would add
    # up to a step's duration to every window's lag.
    rooms_per_step = max(1, min(rooms, rate // (REPORTS_PER_MESSAGE * 50)))
    next_room = 0
    while time.monotonic() - started < seconds:
        due = int((time.monotonic() - started) * rate)
        while sent < due:
            now = int(time.time() * 1000)
            for _ in range(rooms_per_step):
                room = f"room-{next_room}"
                next_room = (next_room + 1) % rooms
                batch = [schemas.ClientReport(
                    report_id=f"r{expect_items + sent + i}", ts=now, client_id=f"c{(sent + i) % 50_000}",
                    room_id=room, kind="heartbeat", platform="ios", region="eu", app_version="5.1")
                    for i in range(REPORTS_PER_MESSAGE)]
                producer.send(topic, key=room.encode(), value=encode_reports(batch))
                sent += REPORTS_PER_MESSAGE
        time.sleep(0.005)
    producer.flush()
    producer.close()
    produced_s = time.monotonic() - started
    last_live_ms = int(time.time() * 1000)
    run.wait_items(expect_items + sent, 60)
    lags: list[float] = []
    deadline = time.monotonic() + (window_ms + lateness_ms) / 1000 + 4
    while time.monotonic() < deadline:
        for message in consumer:
            if schemas.is_event_time_mark(message.value):
                continue
            health = schemas.decode(message.value, schemas.RoomHealth)
            # Only windows that live traffic closed (the watermark passed end + lateness while it ran).
            if (health.scope == "room" and health.window_start >= live_start_ms - window_ms
                    and health.window_end + lateness_ms <= last_live_ms):
                lags.append((message.timestamp - (health.window_end + lateness_ms)) / 1000)
    consumer.close()
    lags.sort()
    return {"lag_rate_reports_per_s": round(sent / produced_s), "lag_windows": len(lags),
            "lag_p50_s": round(lags[len(lags) // 2], 3) if lags else None,
            "lag_p95_s": round(lags[int(len(lags) * 0.95)], 3) if lags else None,
            "items_expected": expect_items + sent}


def delete_topics_like(bootstrap: str, names: list[str], prefixes: tuple[str, ...] = (),
                       contains: tuple[str, ...] = ()) -> None:
    """Delete a run's topics: ``names`` and those Kafka clients created for it (changelogs, repartitions)."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        existing = set(admin.list_topics())
        doomed = sorted({name for name in existing if name in names or name.startswith(prefixes)
                         or any(part in name for part in contains)})
        for offset in range(0, len(doomed), 50):
            admin.delete_topics(doomed[offset:offset + 50])
    finally:
        admin.close()


def _peak_rss_mb(pid: int) -> float | None:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None
